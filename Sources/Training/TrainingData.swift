import AudioIO
import Foundation

/// A batch of token sequences, row-major (batch, length), ready for `SaShiMi.loss`.
public struct TokenBatch: Sendable, Equatable {
    public var batch: Int
    public var length: Int
    /// The clip shifted right by one behind the silence class: [128, q0 … q_{L−2}].
    public var inputs: [Int32]
    /// The clip: [q0 … q_{L−1}].
    public var targets: [Int32]
}

/// The recipe's data: a dataset folder cut into clips, its train and valid segments, and the
/// conversion of clips to tokens as SaShiMi does it (state-spaces/s4 `audio.py`): each clip
/// scaled to [-1, 1] by its own min and max, quantised to 256 classes (μ-law or linear), and
/// fed shifted right by one behind the silence class 128.
public final class TrainingData {
    public let folder: URL
    public let dataset: AudioDataset
    public let settings: Recipe.DataSettings
    public let train: [Segment]
    public let valid: [Segment]
    /// The silence class that starts every input sequence (μ-law and linear: 128).
    public static let silence: Int32 = 128

    /// Scans and (within the memory budget) decodes `folder`. Bad files are reported through
    /// `warn` and skipped; an empty train or valid split is an error naming the fix.
    public init(folder: URL, settings: Recipe.DataSettings, batchSize: Int, warn: (AudioIOError) -> Void = { _ in }) throws {
        try settings.layout.check(folder)
        let dataset: AudioDataset
        do {
            dataset = try AudioDataset(folder: folder, options: settings.datasetOptions, warn: warn)
        } catch let e as AudioIOError {
            throw TrainingError(path: e.path, e.reason, fix: e.fix)
        }
        self.folder = folder
        self.dataset = dataset
        self.settings = settings
        train = dataset.segments(.train)
        valid = dataset.segments(.valid)
        let clip = "\(settings.clipLength)-sample clips at \(settings.sampleRate) Hz"
        func files(_ s: Split) -> Int { dataset.files.filter { $0.split == s }.count }
        if train.count < batchSize {
            throw TrainingError(path: folder.path,
                                "the train split has \(train.count) \(clip) (from \(files(.train)) files), fewer than one batch of \(batchSize)",
                                fix: "add audio, lower [train] batch_size or [data] clip_length, or set short_files = \"pad\"")
        }
        if valid.isEmpty {
            let how = settings.layout == .sc09 ? "add files to the valid/ folder"
                : "raise [data] valid_fraction (now \(settings.validFraction)) or add a valid/ folder beside train/"
            throw TrainingError(path: folder.path, "the valid split has no \(clip) (from \(files(.valid)) files)", fix: how)
        }
    }

    /// Files per split (usable ones).
    public func fileCount(_ split: Split) -> Int { dataset.files.filter { $0.split == split }.count }

    /// Reads, normalises and quantises `segments` into one batch.
    public func batch(_ segments: [Segment]) throws -> TokenBatch {
        let L = settings.clipLength
        var inputs = [Int32](repeating: 0, count: segments.count * L)
        var targets = [Int32](repeating: 0, count: segments.count * L)
        for (b, segment) in segments.enumerated() {
            let q = try tokens(segment)
            for t in 0..<L {
                targets[b * L + t] = q[t]
                inputs[b * L + t] = t == 0 ? Self.silence : q[t - 1]
            }
        }
        return TokenBatch(batch: segments.count, length: L, inputs: inputs, targets: targets)
    }

    /// One segment as classes 0…255.
    public func tokens(_ segment: Segment) throws -> [Int32] {
        var x: [Float]
        do {
            x = try dataset.read(segment)
        } catch let e as AudioIOError {
            throw TrainingError(path: e.path, e.reason, fix: e.fix)
        }
        x = settings.normalization.apply(x)
        let q = settings.quantization
        return x.map { Int32(q.encode($0)) }
    }
}
