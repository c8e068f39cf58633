import ArgumentParser
import AudioIO
import Engine
import Foundation
import Generation
import Models

struct NLLCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "nll",
        abstract: "Negative log-likelihood of a data split under a checkpoint, in bits per sample.",
        discussion: "Clips are cut and quantised exactly as in training (the checkpoint's audio settings).")

    @Argument(help: "A checkpoint written by `wavemamba train`.")
    var checkpoint: String

    @Option(help: "Folder of audio files.")
    var data: String

    @Option(help: "Split to score: train, valid or test.")
    var split: Split = .test

    @Option(help: "Clips per forward pass.")
    var batch = 4

    @Flag(help: "Also print each file's bits per sample.")
    var perFile = false

    @Option(help: "Worker threads (default: all cores).")
    var threads: Int?

    @OptionGroup var deviceOptions: DeviceOptions

    func run() throws {
        let backend = try deviceOptions.makeBackend(threads: threads)
        let (model, audio, _) = try loadCheckpoint(checkpoint, backend: backend)
        let tokens = try AudioTokens(audio)
        let dataset: AudioDataset
        do {
            dataset = try AudioDataset(folder: URL(fileURLWithPath: data),
                                       options: DatasetOptions(sampleRate: audio.sampleRate, segmentLength: audio.clipLength)) {
                Console.warning($0.description)
            }
        } catch let e as AudioIOError {
            Console.error(e.description)
            throw ExitCode(1)
        }
        let segments = dataset.segments(split)
        guard !segments.isEmpty else {
            Console.error("\(data): the \(split.rawValue) split is empty; pass --split with another split or a folder with more files")
            throw ExitCode(1)
        }
        let result = try NLL.evaluate(model: model, tokens: tokens, dataset: dataset, segments: segments, batch: batch) { done in
            _ = done
        }
        if perFile {
            for (file, bits) in result.perFile.sorted(by: { $0.key < $1.key }) {
                print(String(format: "%.4f  %@", bits, dataset.files[file].relativePath))
            }
        }
        print(String(format: "%@ split: %.4f bits per sample over %d clips (%d samples)", split.rawValue, result.bitsPerSample, segments.count, result.samples))
    }
}

extension Split: ExpressibleByArgument {}

/// Scoring a split: mean next-sample cross-entropy in bits, in inference mode.
enum NLL {
    struct Result {
        var bitsPerSample: Double
        var samples: Int
        var perFile: [Int: Double]
    }

    static func evaluate(model: SaShiMi, tokens: AudioTokens, dataset: AudioDataset, segments: [Segment], batch: Int,
                         progress: (Int) -> Void) throws -> Result {
        let L = dataset.options.segmentLength
        var totalNats = 0.0, count = 0
        var fileNats: [Int: (Double, Int)] = [:]
        let bar = ProgressBar("nll", total: segments.count, unit: "clips")
        var i = 0
        while i < segments.count {
            let group = Array(segments[i..<min(i + batch, segments.count)])
            var inputs: [Int32] = [], targets: [Int32] = []
            for s in group {
                let pair = tokens.teacherForcing(try dataset.read(s))
                inputs += pair.inputs
                targets += pair.targets
            }
            // Per-clip losses: one forward per batch, then each clip's rows.
            let clipNats = TeacherForcedNLL.clipNats(model: model, inputs: inputs, targets: targets, clips: group.count, length: L)
            for (k, s) in group.enumerated() {
                let nats = clipNats[k]
                totalNats += nats
                count += L
                let prev = fileNats[s.file] ?? (0, 0)
                fileNats[s.file] = (prev.0 + nats, prev.1 + L)
            }
            i += group.count
            bar.update(i)
            progress(i)
        }
        bar.finish()
        return Result(bitsPerSample: Op.bits(fromNats: totalNats / Double(count)), samples: count,
                      perFile: fileNats.mapValues { Op.bits(fromNats: $0.0 / Double($0.1)) })
    }
}
