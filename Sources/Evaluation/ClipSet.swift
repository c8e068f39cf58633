import AudioIO
import Foundation

/// A set of equal-length mono clips in one flat buffer, with their names and (folder) labels.
///
/// Every file becomes exactly one clip: mixed to mono, resampled to the set's rate, and cut
/// or zero-padded at the end to `length` samples (SC09's 1 s at 16 kHz by default), as the
/// SC09 evaluation scripts fix the length of each file.
public struct ClipSet: Sendable {
    /// Where the clips came from (a folder, or a description for synthetic sets).
    public var source: String
    public var sampleRate: Int
    /// Samples per clip.
    public var length: Int
    /// Clip i is `samples[i·length ..< (i+1)·length]`.
    public var samples: [Float]
    /// Relative paths (or made-up names), one per clip.
    public var names: [String]
    /// The label folder of each clip (`zero/…` → "zero"), nil at the top level.
    public var labels: [String?]
    /// The split of each clip in its corpus (nil for synthetic sets).
    public var splits: [Split?]

    public var count: Int { names.count }

    public init(source: String, sampleRate: Int, length: Int, samples: [Float], names: [String], labels: [String?]? = nil,
                splits: [Split?]? = nil) {
        precondition(samples.count == names.count * length, "ClipSet: \(samples.count) samples for \(names.count) clips of \(length)")
        self.source = source
        self.sampleRate = sampleRate
        self.length = length
        self.samples = samples
        self.names = names
        self.labels = labels ?? [String?](repeating: nil, count: names.count)
        self.splits = splits ?? [Split?](repeating: nil, count: names.count)
    }

    /// Clip i as an array.
    public func clip(_ i: Int) -> [Float] { Array(samples[(i * length)..<((i + 1) * length)]) }

    /// The clips at `indices`, in that order.
    public func subset(_ indices: [Int], source: String? = nil) -> ClipSet {
        var out = [Float]()
        out.reserveCapacity(indices.count * length)
        for i in indices { out += samples[(i * length)..<((i + 1) * length)] }
        return ClipSet(source: source ?? self.source, sampleRate: sampleRate, length: length, samples: out,
                       names: indices.map { names[$0] }, labels: indices.map { labels[$0] }, splits: indices.map { splits[$0] })
    }

    /// Reads every audio file below `folder` (recursively; bad files are skipped, each passed
    /// to `warn`). With `split`, only the files of that split (by the folder's `splits.tsv`,
    /// split folders, or the path hash, as `AudioDataset` decides).
    public static func load(folder: URL, sampleRate: Int = 16000, length: Int = 16000, split: Split? = nil,
                            warn: (AudioIOError) -> Void = { _ in }) throws -> ClipSet {
        let options = DatasetOptions(sampleRate: sampleRate, segmentLength: length, shortFiles: .pad)
        let dataset = try AudioDataset(folder: folder, options: options, warn: warn)
        let chosen = dataset.files.indices.filter { split == nil || dataset.files[$0].split == split }
        guard !chosen.isEmpty else {
            throw EvaluationError(path: folder.path, "no \(split.map { "\($0.rawValue) " } ?? "")clips among its \(dataset.files.count) audio files",
                                  fix: "check the folder's splits.tsv (or train/valid/test folders), or evaluate the whole folder")
        }
        var samples = [Float](repeating: 0, count: chosen.count * length)
        for (k, i) in chosen.enumerated() {
            let audio = try dataset.audio(ofFile: i)
            let n = min(length, audio.count)
            samples.withUnsafeMutableBufferPointer { out in
                audio.withUnsafeBufferPointer { a in (out.baseAddress! + k * length).update(from: a.baseAddress!, count: n) }
            }
        }
        return ClipSet(source: folder.path, sampleRate: sampleRate, length: length, samples: samples,
                       names: chosen.map { dataset.files[$0].relativePath }, labels: chosen.map { dataset.files[$0].label },
                       splits: chosen.map { dataset.files[$0].split })
    }

    /// The clips of one split (nil when it has none).
    public func split(_ s: Split) -> ClipSet? {
        let idx = indices(where: { splits[$0] == s })
        return idx.isEmpty ? nil : subset(idx, source: source + " (\(s.rawValue))")
    }

    func indices(where keep: (Int) -> Bool) -> [Int] { (0..<count).filter(keep) }

    /// Two disjoint halves for the real-vs-real ceiling: clips alternate by a seeded shuffle,
    /// grouped by label, so both halves hold every label about equally often.
    public func halves(seed: UInt64 = 0) -> (ClipSet, ClipSet) {
        let (a, b) = halfIndices(seed: seed)
        return (subset(a, source: source + " (half A)"), subset(b, source: source + " (half B)"))
    }

    /// The clip indices of `halves(seed:)`.
    public func halfIndices(seed: UInt64 = 0) -> ([Int], [Int]) {
        var rng = SplitMix64(seed: seed)
        var order = Array(0..<count)
        rng.shuffle(&order)
        // Group by label, keeping the shuffled order within a label, so that the
        // alternation balances labels.
        let rank = Dictionary(uniqueKeysWithValues: order.enumerated().map { ($0.element, $0.offset) })
        order.sort { (labels[$0] ?? "", rank[$0]!) < (labels[$1] ?? "", rank[$1]!) }
        let a = order.enumerated().filter { $0.offset % 2 == 0 }.map(\.element)
        let b = order.enumerated().filter { $0.offset % 2 == 1 }.map(\.element)
        return (a, b)
    }
}

/// Draws for evaluation and augmentation from AudioIO's seeded SplitMix64, so both are
/// reproducible without global random state.
extension SplitMix64 {
    /// Uniform in [0, 1).
    public mutating func uniform() -> Double { Double(next() >> 11) * 0x1p-53 }

    /// Standard normal (Box–Muller).
    public mutating func normal() -> Double {
        let u1 = max(uniform(), 1e-300), u2 = uniform()
        return (-2 * Foundation.log(u1)).squareRoot() * cos(2 * .pi * u2)
    }

    /// Fisher–Yates shuffle in place.
    public mutating func shuffle<T>(_ a: inout [T]) {
        guard a.count > 1 else { return }
        for i in stride(from: a.count - 1, to: 0, by: -1) {
            let j = Int(next() % UInt64(i + 1))
            a.swapAt(i, j)
        }
    }
}
