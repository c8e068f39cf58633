import ArgumentParser
import AudioIO
import Engine
import Evaluation
import Foundation
import Spectral

struct ClassifierCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "classifier",
        abstract: "Train or test the audio classifier that `evaluate` scores clips with.",
        subcommands: [ClassifierTrainCommand.self, ClassifierTestCommand.self, ClassifierCalibrateCommand.self])
}

struct ClassifierTrainCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train",
        abstract: "Train a folder-labelled classifier (log-mel → Mamba blocks → mean pool → linear) and save it as safetensors.",
        discussion: """
        DIR holds one folder per class (zero/…, one/…; any labels). Its splits.tsv (or \
        train/valid/test folders, else a hash of the path) decides the splits: the model trains \
        on train with light augmentation (gain, noise, time shift, 8-bit μ-law), keeps the epoch \
        with the best valid accuracy, and reports test accuracy. The file's metadata holds the \
        config, the label names and the accuracies. Train in release mode \
        (`swift run -c release wavemamba classifier train …`).
        """)

    @Option(help: "Corpus folder with one subfolder per label.")
    var data: String

    @Option(help: "Output file (.safetensors).")
    var out: String

    @Option(help: "Passes over the training split.")
    var epochs: Int = 30

    @Option(help: "Clips per batch.")
    var batch: Int = 32

    @Option(name: .customLong("lr"), help: "Peak learning rate (AdamW, warm-up then cosine decay).")
    var learningRate: Float = 2e-3

    @Option(name: .customLong("d-model"), help: "Model width (= embedding size for FID).")
    var dModel: Int = 64

    @Option(help: "Residual Mamba layers.")
    var layers: Int = 3

    @Flag(help: "Causal (forward-only) Mamba blocks instead of forward + reversed.")
    var unidirectional = false

    @Flag(name: .customLong("no-augment"), help: "Train on the clean clips only.")
    var noAugment = false

    @Option(help: "Random seed (initialisation, order, augmentation).")
    var seed: UInt64 = 0

    @Option(help: "Worker threads (default: all cores).")
    var threads: Int?

    func validate() throws {
        guard epochs > 0, batch > 0, dModel > 0, layers > 0 else { throw ValidationError("--epochs, --batch, --d-model and --layers must be positive") }
        guard learningRate > 0 else { throw ValidationError("--lr must be positive") }
    }

    func run() throws {
        var options = ClassifierTrainingOptions()
        options.epochs = epochs
        options.batch = batch
        options.learningRate = learningRate
        options.dModel = dModel
        options.layers = layers
        options.bidirectional = !unidirectional
        options.seed = seed
        if noAugment { options.augmentation = .none }
        let trainer: ClassifierTrainer
        do {
            trainer = try ClassifierTrainer(folder: URL(fileURLWithPath: data), options: options) { Console.warning("\($0)") }
        } catch {
            Console.error("\(error)")
            throw ExitCode(1)
        }
        Console.note("classifier: \(trainer.labels.count) labels (\(trainer.labels.joined(separator: ", "))); clips: train \(trainer.train.count), valid \(trainer.valid?.count ?? 0), test \(trainer.test?.count ?? 0)")
        let backend = CPUBackend(threads: threads)
        let cache = FFTPlanCache()
        var bar: ProgressBar?
        let started = Date()
        var extra = ["trained_on": (data as NSString).lastPathComponent, "epochs": String(epochs),
                     "train_clips": String(trainer.train.count), "seed": String(seed), "augmentation": noAugment ? "none" : "gain, noise, shift, mulaw"]
        let (model, best) = trainer.run(backend: backend, cache: cache, progress: { epoch, b, batches, loss in
            if bar == nil { bar = ProgressBar("epoch \(epoch)/\(epochs)", total: batches, unit: "batches") }
            bar!.update(b, String(format: "loss %.4f", loss))
        }, epochDone: { e in
            bar?.finish()
            bar = nil
            let valid = e.validAccuracy.map { String(format: ", valid acc %.3f", $0) } ?? ""
            Console.note(String(format: "epoch %d: train loss %.4f, train acc %.3f%@ (%.1f s)", e.epoch, e.trainLoss, e.trainAccuracy, valid, e.seconds))
        }, improved: { model, e in
            // The best epoch so far is on disk at once: an interrupted run leaves a usable file.
            var partial = extra
            partial["best_epoch"] = String(e.epoch)
            if let v = e.validAccuracy { partial["valid_accuracy"] = String(format: "%.4f", v) }
            do { try model.save(to: URL(fileURLWithPath: out), extra: partial) } catch { Console.warning("could not save the best epoch so far: \(error)") }
        })
        let testAccuracy = trainer.test.flatMap { model.accuracy($0) }
        let validAccuracy = trainer.valid.flatMap { model.accuracy($0) }
        extra["best_epoch"] = String(best.epoch)
        if let t = model.config.temperature { extra["temperature"] = String(format: "%.4f", t) }
        if let testAccuracy { extra["test_accuracy"] = String(format: "%.4f", testAccuracy); extra["test_clips"] = String(trainer.test!.count) }
        if let validAccuracy { extra["valid_accuracy"] = String(format: "%.4f", validAccuracy) }
        do {
            try model.save(to: URL(fileURLWithPath: out), extra: extra)
        } catch {
            Console.error("\(error)")
            throw ExitCode(1)
        }
        print("classifier: \(model.parameterCount) parameters, best epoch \(best.epoch) of \(epochs), \(formatDuration(Date().timeIntervalSince(started)))")
        if let t = model.config.temperature { print(String(format: "softmax temperature (fitted on valid): %.3f", t)) }
        if let validAccuracy { print(String(format: "valid accuracy: %.4f (%d clips)", validAccuracy, trainer.valid!.count)) }
        if let testAccuracy { print(String(format: "test accuracy: %.4f (%d clips)", testAccuracy, trainer.test!.count)) }
        else { print("test accuracy: n/a (the corpus has no test split)") }
        print("wrote \(out)")
    }
}

struct ClassifierTestCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "test",
        abstract: "Accuracy of a classifier on a folder-labelled corpus (one split or all of it), with a confusion table.")

    @Option(help: "Corpus folder with one subfolder per label.")
    var data: String

    @Option(help: "Classifier file (default: Assets/classifier-digits.safetensors).")
    var classifier: String?

    @Option(help: "Split to score: train, valid, test or all.")
    var split: String = "test"

    @Option(help: "Worker threads (default: all cores).")
    var threads: Int?

    func run() throws {
        let chosen: Split?
        if split == "all" { chosen = nil } else if let s = Split(rawValue: split) { chosen = s } else {
            throw ValidationError("--split must be train, valid, test or all")
        }
        let backend = CPUBackend(threads: threads)
        let cache = FFTPlanCache()
        do {
            let url = try classifierURL(classifier)
            let (model, _) = try DigitClassifier.load(url, backend: backend, cache: cache)
            let s = model.config.features
            let set = try ClipSet.load(folder: URL(fileURLWithPath: data), sampleRate: s.sampleRate, length: s.clipLength, split: chosen) {
                Console.warning("\($0)")
            }
            let output = model.classify(set)
            guard let accuracy = model.accuracy(set, output: output) else {
                Console.error("\(data): no clip is in a label folder; put clips in folders named after their class")
                throw ExitCode(1)
            }
            let labels = model.config.labels
            var rows: [[String]] = []
            for truth in labels {
                let idx = set.labels.indices.filter { set.labels[$0] == truth }
                guard !idx.isEmpty else { continue }
                var counts = [Int](repeating: 0, count: labels.count)
                for i in idx { counts[output.predictions[i]] += 1 }
                rows.append([truth] + counts.map(String.init) + [String(format: "%.2f", Double(counts[labels.firstIndex(of: truth)!]) / Double(idx.count))])
            }
            print(formatTable(["true \\ predicted"] + labels + ["recall"], rows, rightAligned: Set(1...(labels.count + 1))))
            print(String(format: "accuracy: %.4f (%d clips, split %@, classifier %@)", accuracy, set.count, split, url.path))
        } catch let e as ExitCode {
            throw e
        } catch {
            Console.error("\(error)")
            throw ExitCode(1)
        }
    }
}

struct ClassifierCalibrateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "calibrate",
        abstract: "Fit a classifier's softmax temperature on a labelled split and write it into the file.",
        discussion: """
        `classifier train` does this on its valid split already. The temperature minimises the         split's NLL; IS, mIS and AM then read calibrated probabilities (mIS of an over-confident         classifier explodes). The weights are not changed.
        """)

    @Option(help: "Classifier file to calibrate.")
    var classifier: String

    @Option(help: "Corpus folder with one subfolder per label.")
    var data: String

    @Option(help: "Split to fit on: train, valid, test or all.")
    var split: String = "valid"

    @Option(help: "Write the calibrated classifier here (default: overwrite --classifier).")
    var out: String?

    func run() throws {
        let chosen: Split?
        if split == "all" { chosen = nil } else if let s = Split(rawValue: split) { chosen = s } else {
            throw ValidationError("--split must be train, valid, test or all")
        }
        do {
            let url = URL(fileURLWithPath: classifier)
            let (model, metadata) = try DigitClassifier.load(url, backend: CPUBackend(), cache: FFTPlanCache())
            let s = model.config.features
            let set = try ClipSet.load(folder: URL(fileURLWithPath: data), sampleRate: s.sampleRate, length: s.clipLength, split: chosen) {
                Console.warning("\($0)")
            }
            guard let fit = model.calibrate(on: set) else {
                Console.error("\(data): no clip of the \(split) split has a label the classifier knows; put clips in folders named after its labels")
                throw ExitCode(1)
            }
            var extra = metadata
            extra["temperature"] = String(format: "%.4f", fit.temperature)
            extra["temperature_fitted_on"] = "\((data as NSString).lastPathComponent) \(split) (\(set.count) clips)"
            try model.save(to: out.map { URL(fileURLWithPath: $0) } ?? url, extra: extra)
            print(String(format: "temperature %.4f: NLL %.4f → %.4f nats on %d clips; wrote %@", fit.temperature, fit.nllBefore, fit.nllAfter, set.count, out ?? classifier))
        } catch let e as ExitCode {
            throw e
        } catch {
            Console.error("\(error)")
            throw ExitCode(1)
        }
    }
}

/// The classifier to use: the given path, else $WAVEMAMBA_CLASSIFIER, else the bundled
/// Assets/classifier-digits.safetensors found from the working directory or the executable
/// (…/.build/<config>/wavemamba → …/Assets).
func classifierURL(_ given: String?) throws -> URL {
    if let given { return URL(fileURLWithPath: given) }
    let name = "Assets/classifier-digits.safetensors"
    var candidates: [URL] = []
    if let env = ProcessInfo.processInfo.environment["WAVEMAMBA_CLASSIFIER"] { candidates.append(URL(fileURLWithPath: env)) }
    candidates += BundledAssets.candidates(name)
    if let found = candidates.first(where: { FileManager.default.fileExists(atPath: $0.path) }) { return found }
    throw EvaluationError(path: name, "the bundled classifier was not found (looked in \(candidates.map(\.path).joined(separator: ", ")))",
                          fix: "pass --classifier FILE, set WAVEMAMBA_CLASSIFIER, or run from the repository root")
}
