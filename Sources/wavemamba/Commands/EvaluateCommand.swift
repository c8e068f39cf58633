import ArgumentParser
import AudioIO
import Engine
import Evaluation
import Foundation
import Spectral

struct EvaluateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "evaluate",
        abstract: "Score generated clips against a reference set: FID, IS, mIS, AM and classifier-free spectral distances.",
        discussion: """
        Every audio file in GENERATED and REFERENCE (recursively; any format and rate) is mixed \
        to mono, resampled to 16 kHz and cut or zero-padded to 1 s. The classifier (default: the \
        bundled Assets/classifier-digits.safetensors, trained on spoken digits) gives the \
        embeddings for FID and the class probabilities for IS / mIS / AM. The reference set is \
        also scored against itself (one random half against the other) as the ceiling. \
        FID needs at least 2 × the embedding size in clips per set (128 for the bundled \
        classifier) to be stable; fewer gives a warning. With --checkpoint, the model's test \
        NLL (bits per sample) on the reference folder's test split is added.
        """)

    @Option(help: "Folder of generated clips.")
    var generated: String

    @Option(help: "Folder of reference (real) clips.")
    var reference: String

    @Option(help: "Classifier file (default: Assets/classifier-digits.safetensors).")
    var classifier: String?

    @Option(help: "Write all numbers as JSON to this file.")
    var json: String?

    @Option(help: "Write a self-contained HTML report to this file.")
    var report: String?

    @Option(name: .customLong("run"), help: "A training run folder: its metrics.jsonl is plotted in the report.")
    var runFolder: String?

    @Option(help: "A model checkpoint: adds its test NLL in bits per sample.")
    var checkpoint: String?

    @Option(name: .customLong("nll-clips"), help: "Score at most this many reference test clips for the NLL.")
    var nllClips: Int = 64

    @Option(name: .customLong("drop-least-likely"),
            help: "Drop this fraction of the generated clips that the model found least likely (highest bits/sample in the generated folder's manifest.jsonl, written by `wavemamba generate`) before scoring, e.g. 0.4 (SaShiMi's protocol).")
    var dropLeastLikely: Double = 0

    @Option(name: .customLong("drop-most-likely"),
            help: "Drop this fraction of the most likely generated clips (lowest bits/sample in manifest.jsonl; often silence) before scoring, e.g. 0.05.")
    var dropMostLikely: Double = 0

    @Option(help: "Example clips of each set shown in the report.")
    var examples: Int = 4

    @Option(help: "Seed of the reference's half/half split for the ceiling.")
    var seed: UInt64 = 0

    @Option(help: "Worker threads (default: all cores).")
    var threads: Int?

    @OptionGroup var deviceOptions: DeviceOptions

    func validate() throws {
        guard examples >= 0 else { throw ValidationError("--examples must be 0 or more") }
        guard nllClips > 0 else { throw ValidationError("--nll-clips must be positive") }
        guard dropLeastLikely >= 0, dropMostLikely >= 0, dropLeastLikely + dropMostLikely < 1 else {
            throw ValidationError("--drop-least-likely and --drop-most-likely must be fractions ≥ 0 whose sum is below 1")
        }
    }

    func run() throws {
        do {
            try evaluate()
        } catch let e as ExitCode {
            throw e
        } catch {
            Console.error("\(error)")
            throw ExitCode(1)
        }
    }

    private func evaluate() throws {
        // Log-mel features and the classifier run on the CPU (FFTW); the model NLL of
        // --checkpoint runs on the chosen device.
        let backend = CPUBackend(threads: threads)
        let modelBackend: any Backend = checkpoint == nil ? backend : try deviceOptions.makeBackend(threads: threads)
        let cache = FFTPlanCache()
        let classifierFile = try classifierURL(classifier)
        let (model, metadata) = try DigitClassifier.load(classifierFile, backend: backend, cache: cache)
        let s = model.config.features
        func load(_ folder: String) throws -> (ClipSet, Int) {
            var skipped = 0
            let set = try ClipSet.load(folder: URL(fileURLWithPath: folder), sampleRate: s.sampleRate, length: s.clipLength) {
                Console.warning("\($0)")
                skipped += 1
            }
            return (set, skipped)
        }
        var (gen, genSkipped) = try load(generated)
        var selection: LikelihoodSelection?
        if dropLeastLikely > 0 || dropMostLikely > 0 {
            (gen, selection) = try selectByLikelihood(gen)
            print(selection!.summary)
        }
        let (ref, refSkipped) = try load(reference)
        Console.note("scoring \(gen.count) generated clips against \(ref.count) reference clips with \((classifierFile.path as NSString).lastPathComponent)")
        let evaluator = Evaluator(classifier: model, cache: cache, pool: backend.pool)
        let genA = try evaluator.analyze(gen), refA = try evaluator.analyze(ref)
        let (halfA, halfB) = try evaluator.halves(refA, seed: seed)
        let metrics = evaluator.compare(genA, reference: refA)
        let ceiling = evaluator.compare(halfA, reference: halfB)
        var warnings = evaluator.sampleWarnings([gen, ref, halfA.set, halfB.set])
        if gen.count != ref.count {
            warnings.append("the sets differ in size (\(gen.count) generated, \(ref.count) reference); FID depends on the sample count, so compare runs at equal counts")
        }
        var nll: EvaluationResult.ModelNLL?
        if let checkpoint {
            let r = try modelTestNLL(checkpoint: checkpoint, referenceFolder: reference, maxClips: nllClips, backend: modelBackend)
            nll = .init(checkpoint: checkpoint, bitsPerSample: r.bits, clips: r.clips, clipsFrom: r.from)
        }
        var result = EvaluationResult(
            generated: .init(folder: generated, clips: gen.count, skippedFiles: genSkipped),
            reference: .init(folder: reference, clips: ref.count, skippedFiles: refSkipped),
            classifier: .init(file: classifierFile.path, labels: model.config.labels, parameters: model.parameterCount,
                              embeddingDimension: model.config.embeddingDimension, testAccuracy: metadata["test_accuracy"]),
            features: s, metrics: metrics, ceiling: ceiling,
            referenceInceptionScore: InceptionScores.inceptionScore(refA.classifier.probabilities),
            referenceModifiedInceptionScore: InceptionScores.modifiedInceptionScore(refA.classifier.probabilities),
            nll: nll, warnings: warnings, date: ISO8601DateFormatter().string(from: Date()))
        result.selection = selection

        for w in warnings { Console.warning(w) }
        print(Self.table(result))
        if let json {
            try result.json().write(to: URL(fileURLWithPath: json), options: .atomic)
            print("wrote \(json)")
        }
        if let report {
            var curves: TrainingCurves?
            if let runFolder { curves = try TrainingCurves.load(URL(fileURLWithPath: runFolder)) }
            let clips = Self.examples(genA, "generated", examples, model) + Self.examples(refA, "reference", examples, model)
            let html = Report(result: result, clips: clips, curves: curves, runFolder: runFolder).html()
            try Data(html.utf8).write(to: URL(fileURLWithPath: report), options: .atomic)
            print("wrote \(report)")
        }
    }

    /// The generated clips left after dropping the least and most likely fractions, ranked by
    /// the bits/sample of the folder's manifest.jsonl.
    private func selectByLikelihood(_ gen: ClipSet) throws -> (ClipSet, LikelihoodSelection) {
        let entries = try GenerationManifest.load(generated)
        var bits: [String: Double] = [:]
        for e in entries { bits[e.file] = e.bits_per_sample }
        let missing = gen.names.filter { bits[$0] == nil }
        guard missing.isEmpty else {
            throw ValidationError("\(generated): \(missing.count) clip(s) have no likelihood in \(GenerationManifest.fileName) (e.g. \(missing[0])); rank only folders written by one `wavemamba generate`, or drop nothing")
        }
        let pick = LikelihoodSelection.kept(bitsPerSample: gen.names.map { bits[$0]! }, dropLeast: dropLeastLikely, dropMost: dropMostLikely)
        guard pick.kept.count >= 2 else {
            throw ValidationError("dropping \(pick.least) + \(pick.most) of \(gen.count) clips leaves \(pick.kept.count); the metrics need at least 2")
        }
        let manifest = URL(fileURLWithPath: generated).appendingPathComponent(GenerationManifest.fileName).path
        let selection = LikelihoodSelection(manifest: manifest, clips: gen.count, droppedLeastLikely: pick.least, droppedMostLikely: pick.most,
                                            dropLeastFraction: dropLeastLikely, dropMostFraction: dropMostLikely)
        return (gen.subset(pick.kept, source: gen.source + " (likelihood-selected)"), selection)
    }

    /// The printed table: each metric for generated vs reference beside the ceiling.
    static func table(_ r: EvaluationResult) -> String {
        let m = r.metrics, c = r.ceiling
        func v(_ x: Double?, _ f: String = "%.3f") -> String { x.map { $0.isFinite ? String(format: f, $0) : "n/a" } ?? "" }
        var rows: [[String]] = [
            ["clips", "\(m.clips) vs \(m.referenceClips)", "\(c.clips) vs \(c.referenceClips)", ""],
            ["FID", v(m.fid), v(c.fid), "lower"],
            ["IS", v(m.inceptionScore), v(c.inceptionScore), "higher"],
            ["mIS", v(m.modifiedInceptionScore), v(c.modifiedInceptionScore), "higher"],
            ["AM", v(m.amScore), v(c.amScore), "lower"],
            ["mel FD", v(m.melFrechetDistance), v(c.melFrechetDistance), "lower"],
            ["flatness W1", v(m.flatnessWasserstein, "%.4f"), v(c.flatnessWasserstein, "%.4f"), "lower"],
            ["flatness KS", v(m.flatnessKS), v(c.flatnessKS), "lower"],
            ["centroid W1 (Hz)", v(m.centroidWasserstein, "%.1f"), v(c.centroidWasserstein, "%.1f"), "lower"],
            ["centroid KS", v(m.centroidKS), v(c.centroidKS), "lower"],
            ["confidence", v(m.meanConfidence), v(c.meanConfidence), "higher"],
        ]
        if m.accuracy != nil || c.accuracy != nil { rows.append(["accuracy", v(m.accuracy), v(c.accuracy), "higher"]) }
        if let g = m.eventRate, let r = m.referenceEventRate {
            rows.append(["event rate (scored / ref)", "\(v(g)) / \(v(r))", c.eventRate.map { "\(v($0)) / \(v(c.referenceEventRate))" } ?? "", "near ref"])
        }
        if let nll = r.nll { rows.append(["test NLL (bits/sample)", v(nll.bitsPerSample, "%.4f"), "", "lower"]) }
        return formatTable(["metric", "generated vs reference", "reference half vs half", "better"], rows, rightAligned: [1, 2])
    }

    /// `n` clips spread evenly over a set (so over its label folders), with their
    /// spectrograms and labels, for the report.
    static func examples(_ a: SetAnalysis, _ group: String, _ n: Int, _ model: DigitClassifier) -> [Report.Clip] {
        let f = model.features, count = a.set.count, n = min(n, count)
        return (0..<n).map { j in
            let i = j * count / n
            let clip = a.set.clip(i)
            var logMel = [Float](repeating: 0, count: f.perClip)
            clip.withUnsafeBufferPointer { s in logMel.withUnsafeMutableBufferPointer { f.compute(s.baseAddress!, clips: 1, into: $0.baseAddress!, pool: model.cpuPool) } }
            let p = a.classifier.probabilities[i], k = a.classifier.predictions[i]
            return Report.Clip(name: a.set.names[i], group: group, samples: clip, sampleRate: a.set.sampleRate, logMel: logMel,
                               frames: f.frames, nMels: f.nMels, predicted: model.config.labels[k], confidence: p[k])
        }
    }
}
