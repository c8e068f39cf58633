import Foundation

/// What to do with a file shorter than one segment.
public enum ShortFilePolicy: String, Sendable, Codable, CaseIterable {
    /// Keep it, zero-padded at the end to the segment length (SaShiMi pads SC09 clips).
    case pad
    /// Leave it out.
    case drop
}

public struct DatasetOptions: Sendable {
    /// Every file is mixed to mono and resampled to this rate.
    public var sampleRate: Int
    /// Samples per segment (SC09: 16 000 = 1 s at 16 kHz).
    public var segmentLength: Int
    public var shortFiles: ShortFilePolicy
    /// Decoded audio up to this many bytes is kept in memory; beyond it files are decoded
    /// on demand and only the most recently used ones are cached (streaming).
    public var memoryBudgetBytes: Int
    public var validFraction: Double
    public var testFraction: Double
    /// Split by position in natural file order instead of by hash: the first files train, then
    /// valid, then test (YouTubeMix as SaShiMi splits it: 88 / 6 / 6 %).
    public var orderedSplit: Bool = false

    public init(sampleRate: Int = 16000, segmentLength: Int = 16000, shortFiles: ShortFilePolicy = .pad,
                memoryBudgetBytes: Int = 2 << 30, validFraction: Double = 0.1, testFraction: Double = 0.1) {
        self.sampleRate = sampleRate
        self.segmentLength = segmentLength
        self.shortFiles = shortFiles
        self.memoryBudgetBytes = memoryBudgetBytes
        self.validFraction = validFraction
        self.testFraction = testFraction
    }
}

/// One usable file of a dataset.
public struct DatasetFile: Sendable {
    public let relativePath: String
    public let path: String
    public let info: AudioInfo
    public let split: Split
    /// Length after resampling to the dataset's rate.
    public let frames: Int
    /// The label folder: the first path component that is not a split folder
    /// (`zero/…` → "zero", `train/zero/…` → "zero"); nil for files at the top level.
    public let label: String?
}

/// `length` samples of file `file` from `start` (the rest of the segment is zero padding).
public struct Segment: Sendable, Hashable {
    public let file: Int
    public let start: Int
    public let length: Int
}

/// A folder of audio files as fixed-length mono segments at one rate, split into
/// train / valid / test. Bad files are skipped with a warning each; if none is usable the
/// constructor throws. Decoding is lazy and cached within a memory budget, so a corpus
/// larger than memory streams from disk.
public final class AudioDataset: @unchecked Sendable {
    public let folder: AudioFolder
    public let options: DatasetOptions
    public let files: [DatasetFile]
    /// Files that could not be used, with the reason.
    public let skipped: [AudioIOError]
    private let cache: DecodedAudioCache

    /// Total decoded size of all usable files, in bytes.
    public var decodedBytes: Int { files.reduce(0) { $0 + $1.frames * MemoryLayout<Float>.size } }
    /// Whether the whole corpus fits the memory budget (otherwise it is streamed).
    public var fitsInMemory: Bool { decodedBytes <= options.memoryBudgetBytes }

    /// Scans `root`. Headers are read for every file; when the whole corpus fits the memory
    /// budget it is also decoded now (so truncated or corrupt files are caught up front and
    /// training never touches the disk again). A larger corpus is streamed: its files are
    /// decoded on first use, and a file that fails then throws from `read`.
    public init(folder root: URL, options: DatasetOptions, warn: (AudioIOError) -> Void = { _ in }) throws {
        let folder = try AudioFolder(root)
        self.folder = folder
        self.options = options
        let rule = SplitRule.forFolder(folder.root, validFraction: options.validFraction, testFraction: options.testFraction)
        let ordered = options.orderedSplit ? Self.orderedSplits(folder.relativePaths, valid: options.validFraction, test: options.testFraction) : [:]
        let cache = DecodedAudioCache(budgetBytes: options.memoryBudgetBytes)
        var candidates: [DatasetFile] = []
        var skipped: [AudioIOError] = []
        for rel in folder.relativePaths {
            let path = folder.url(rel).path
            do {
                let info = try AudioFile.info(path, verify: false)
                let frames = Int((Double(info.frames) * Double(options.sampleRate) / Double(info.sampleRate)).rounded())
                candidates.append(DatasetFile(relativePath: rel, path: path, info: info, split: ordered[rel] ?? rule.split(of: rel), frames: frames,
                                              label: Self.label(of: rel)))
            } catch let e as AudioIOError {
                skipped.append(e)
                warn(e)
            }
        }
        var files = candidates
        if candidates.reduce(0, { $0 + $1.frames * MemoryLayout<Float>.size }) <= options.memoryBudgetBytes {
            files = []
            for f in candidates {
                do {
                    let samples = try Self.decode(f, sampleRate: options.sampleRate)
                    _ = try cache.value(for: files.count) { samples }
                    files.append(f)
                } catch let e as AudioIOError {
                    skipped.append(e)
                    warn(e)
                }
            }
        }
        guard !files.isEmpty else {
            throw AudioIOError(.noAudio, path: folder.root.path,
                               reason: "none of the \(folder.relativePaths.count) audio files could be read",
                               fix: "see the warnings above for each file; replace or remove the bad files")
        }
        self.files = files
        self.skipped = skipped
        self.cache = cache
    }

    /// Mono at `sampleRate`, exactly `file.frames` long (the resampler's output can differ
    /// from the header-based estimate by a sample).
    static func decode(_ f: DatasetFile, sampleRate: Int) throws -> [Float] {
        var x = try AudioFile.readMono(f.path, sampleRate: sampleRate)
        if x.count < f.frames { x += [Float](repeating: 0, count: f.frames - x.count) }
        if x.count > f.frames { x.removeLast(x.count - f.frames) }
        return x
    }

    /// Natural-order position split (file2 before file10).
    static func orderedSplits(_ paths: [String], valid: Double, test: Double) -> [String: Split] {
        let sorted = paths.sorted { $0.compare($1, options: [.numeric]) == .orderedAscending }
        let n = sorted.count
        let trainEnd = Int((Double(n) * (1 - valid - test)).rounded()), validEnd = Int((Double(n) * (1 - test)).rounded())
        var out: [String: Split] = [:]
        for (i, p) in sorted.enumerated() { out[p] = i < trainEnd ? .train : (i < validEnd ? .valid : .test) }
        return out
    }

    static func label(of relativePath: String) -> String? {
        var parts = relativePath.split(separator: "/").map(String.init)
        parts.removeLast()
        if let first = parts.first, ["train", "training", "valid", "validation", "val", "dev", "test", "testing"].contains(first.lowercased()) {
            parts.removeFirst()
        }
        return parts.first
    }

    /// The segments of one split, in file order. A long file gives ⌊frames / length⌋
    /// segments (the tail is dropped); a file shorter than one segment gives one padded
    /// segment or none, as `shortFiles` says.
    public func segments(_ split: Split) -> [Segment] {
        let n = options.segmentLength
        var out: [Segment] = []
        for (i, f) in files.enumerated() where f.split == split {
            if f.frames < n {
                if options.shortFiles == .pad { out.append(Segment(file: i, start: 0, length: f.frames)) }
                continue
            }
            for s in 0..<(f.frames / n) { out.append(Segment(file: i, start: s * n, length: n)) }
        }
        return out
    }

    /// The decoded file: mono at the dataset's rate (cached within the budget).
    public func audio(ofFile index: Int) throws -> [Float] {
        let f = files[index]
        return try cache.value(for: index) { try Self.decode(f, sampleRate: options.sampleRate) }
    }

    /// One segment as `segmentLength` samples (zero-padded at the end).
    public func read(_ segment: Segment) throws -> [Float] {
        var out = [Float](repeating: 0, count: options.segmentLength)
        let audio = try audio(ofFile: segment.file)
        out.withUnsafeMutableBufferPointer { o in
            audio.withUnsafeBufferPointer { a in
                let n = min(segment.length, a.count - segment.start)
                if n > 0 { o.baseAddress!.update(from: a.baseAddress! + segment.start, count: n) }
            }
        }
        return out
    }
}

/// Least-recently-used cache of decoded files, bounded in bytes; thread-safe.
final class DecodedAudioCache: @unchecked Sendable {
    private let budget: Int
    private let lock = NSLock()
    private var entries: [Int: (samples: [Float], lastUse: UInt64)] = [:]
    private var bytes = 0
    private var clock: UInt64 = 0

    init(budgetBytes: Int) { budget = budgetBytes }

    func value(for key: Int, load: () throws -> [Float]) throws -> [Float] {
        lock.lock()
        clock += 1
        if let e = entries[key] {
            entries[key] = (e.samples, clock)
            lock.unlock()
            return e.samples
        }
        lock.unlock()
        let samples = try load()
        let size = samples.count * MemoryLayout<Float>.size
        lock.lock()
        defer { lock.unlock() }
        guard size <= budget else { return samples } // larger than the budget: never cached
        while bytes + size > budget, let victim = entries.min(by: { $0.value.lastUse < $1.value.lastUse }) {
            bytes -= victim.value.samples.count * MemoryLayout<Float>.size
            entries[victim.key] = nil
        }
        clock += 1
        entries[key] = (samples, clock)
        bytes += size
        return samples
    }

    var cachedBytes: Int { lock.lock(); defer { lock.unlock() }; return bytes }
}
