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
        discussion: """
        Clips are cut and quantised exactly as in training (the checkpoint's audio settings). \
        --clip-length N scores clips of N samples instead of the checkpoint's training length \
        (N a multiple of the model's pooling product): files are cut into N-sample segments and \
        a file shorter than N is zero-padded to N (the data loader's short-file rule), so score \
        lengths within the files' durations to measure real audio. --per-position B also \
        reports the NLL in B equal buckets of position (B divides N): how the likelihood \
        changes along the clip, e.g. beyond the length the model was trained at.
        """)

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

    @Option(name: .customLong("clip-length"), help: "Score clips of this many samples (default: the checkpoint's clip length); a multiple of the pooling product.")
    var clipLength: Int?

    @Option(name: .customLong("per-position"), help: "Also report the NLL in this many equal buckets of position (must divide the clip length).")
    var perPosition: Int?

    @Option(help: "Write the numbers (full precision) as JSON to this file.")
    var json: String?

    @Option(help: "Worker threads (default: all cores).")
    var threads: Int?

    @OptionGroup var deviceOptions: DeviceOptions

    func run() throws {
        let backend = try deviceOptions.makeBackend(threads: threads)
        let (model, audio, _) = try loadCheckpoint(checkpoint, backend: backend)
        let tokens = try AudioTokens(audio)
        let length = clipLength ?? audio.clipLength
        let pool = model.config.totalPool
        if length <= 0 || length % pool != 0 {
            Console.error("--clip-length \(length) is not a positive multiple of the model's pooling product \(pool) (pool \(model.config.pool)); use e.g. \(max(1, length / pool) * pool)")
            throw ExitCode(1)
        }
        if let b = perPosition, b <= 0 || length % b != 0 {
            Console.error("--per-position \(b) does not divide the clip length \(length) into equal buckets; use a divisor of \(length)")
            throw ExitCode(1)
        }
        let dataset: AudioDataset
        do {
            dataset = try AudioDataset(folder: URL(fileURLWithPath: data),
                                       options: DatasetOptions(sampleRate: audio.sampleRate, segmentLength: length)) {
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
        let result = try NLL.evaluate(model: model, tokens: tokens, dataset: dataset, segments: segments, batch: batch,
                                      buckets: perPosition ?? 0) { done in
            _ = done
        }
        if perFile {
            for (file, bits) in result.perFile.sorted(by: { $0.key < $1.key }) {
                print(String(format: "%.4f  %@", bits, dataset.files[file].relativePath))
            }
        }
        if !result.perPosition.isEmpty {
            let width = length / result.perPosition.count
            print("bits per sample by position (\(result.perPosition.count) buckets of \(width) samples):")
            for (j, bits) in result.perPosition.enumerated() {
                print(String(format: "  %8d ..< %8d  %.6f", j * width, (j + 1) * width, bits))
            }
        }
        print(String(format: "%@ split: %.4f bits per sample over %d clips of %d samples (%d samples)", split.rawValue, result.bitsPerSample,
                     segments.count, length, result.samples))
        if let json {
            var object: [String: Any] = ["checkpoint": checkpoint, "data": data, "split": split.rawValue, "clip_length": length,
                                         "trained_clip_length": audio.clipLength, "clips": segments.count, "samples": result.samples,
                                         "bits_per_sample": result.bitsPerSample]
            if !result.perPosition.isEmpty {
                let width = length / result.perPosition.count
                object["per_position"] = result.perPosition.enumerated().map { j, bits in
                    ["start": j * width, "end": (j + 1) * width, "bits_per_sample": bits] as [String: Any]
                }
            }
            let bytes = try JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys])
            try bytes.write(to: URL(fileURLWithPath: json), options: .atomic)
        }
    }
}

extension Split: ExpressibleByArgument {}

/// Scoring a split: mean next-sample cross-entropy in bits, in inference mode.
enum NLL {
    struct Result {
        var bitsPerSample: Double
        var samples: Int
        var perFile: [Int: Double]
        /// With `buckets` > 0: bits per sample in each equal bucket of position, over all clips.
        var perPosition: [Double] = []
    }

    /// `buckets` > 0 (dividing the segment length) also fills `perPosition`.
    static func evaluate(model: SaShiMi, tokens: AudioTokens, dataset: AudioDataset, segments: [Segment], batch: Int,
                         buckets: Int = 0, progress: (Int) -> Void) throws -> Result {
        let L = dataset.options.segmentLength
        var totalNats = 0.0, count = 0
        var fileNats: [Int: (Double, Int)] = [:]
        var bucketNats = [Double](repeating: 0, count: buckets)
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
            let (clipNats, perBucket) = TeacherForcedNLL.nats(model: model, inputs: inputs, targets: targets, clips: group.count, length: L,
                                                              buckets: buckets)
            for clip in perBucket { for j in 0..<buckets { bucketNats[j] += clip[j] } }
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
        let perBucket = Double(segments.count * (buckets > 0 ? L / buckets : 0))
        return Result(bitsPerSample: Op.bits(fromNats: totalNats / Double(count)), samples: count,
                      perFile: fileNats.mapValues { Op.bits(fromNats: $0.0 / Double($0.1)) },
                      perPosition: bucketNats.map { Op.bits(fromNats: $0 / perBucket) })
    }
}
