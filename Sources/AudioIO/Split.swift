import Foundation

/// Train / validation / test.
public enum Split: String, Sendable, CaseIterable, Codable {
    case train, valid, test
}

/// Decides each file's split.
///
/// 1. A published split wins: a `splits.tsv` manifest (columns `path` and `split`, as the
///    corpora of `recipes/data` write it: speakers or pieces never straddle splits), a
///    top-level folder named `train`, `valid`/`validation`/`val` or `test` (SC09 as
///    distributed for WaveGAN/SaShiMi), or Speech Commands' `validation_list.txt` /
///    `testing_list.txt` beside the word folders.
/// 2. Otherwise a hash of the file's relative path picks the split, so adding or removing
///    files never moves an existing file to another split. FNV-1a 64 is used because
///    Swift's `Hasher` is seeded per process.
public struct SplitRule: Sendable {
    public var validFraction: Double
    public var testFraction: Double
    /// Relative paths listed by a manifest or Speech Commands' validation/testing lists.
    public var listed: [String: Split]
    /// `listed` comes from a full manifest (splits.tsv): files it does not list fall back to
    /// the hash rule; with Speech Commands' lists unlisted files are training files.
    public var manifest: Bool

    public init(validFraction: Double = 0.1, testFraction: Double = 0.1, listed: [String: Split] = [:], manifest: Bool = false) {
        self.validFraction = validFraction
        self.testFraction = testFraction
        self.listed = listed
        self.manifest = manifest
    }

    /// Reads `splits.tsv`, or `validation_list.txt` and `testing_list.txt`, from `root` if present.
    public static func forFolder(_ root: URL, validFraction: Double = 0.1, testFraction: Double = 0.1) -> SplitRule {
        var listed: [String: Split] = [:]
        if let text = try? String(contentsOf: root.appendingPathComponent("splits.tsv"), encoding: .utf8) {
            let lines = text.split(whereSeparator: \.isNewline).map { $0.split(separator: "\t", omittingEmptySubsequences: false).map(String.init) }
            if let header = lines.first, let pi = header.firstIndex(of: "path"), let si = header.firstIndex(of: "split") {
                for row in lines.dropFirst() where row.count > max(pi, si) {
                    if let split = Split(rawValue: row[si]) { listed[row[pi]] = split }
                }
                return SplitRule(validFraction: validFraction, testFraction: testFraction, listed: listed, manifest: true)
            }
        }
        for (file, split) in [("validation_list.txt", Split.valid), ("testing_list.txt", Split.test)] {
            if let text = try? String(contentsOf: root.appendingPathComponent(file), encoding: .utf8) {
                for line in text.split(whereSeparator: \.isNewline) {
                    let p = line.trimmingCharacters(in: .whitespaces)
                    if !p.isEmpty { listed[p] = split }
                }
            }
        }
        return SplitRule(validFraction: validFraction, testFraction: testFraction, listed: listed)
    }

    public func split(of relativePath: String) -> Split {
        if let s = listed[relativePath] { return s }
        if !listed.isEmpty && !manifest { return .train } // Speech Commands: unlisted files are training files.
        let first = relativePath.split(separator: "/", maxSplits: 1).first.map(String.init)?.lowercased() ?? ""
        if relativePath.contains("/") {
            switch first {
            case "train", "training": return .train
            case "valid", "validation", "val", "dev": return .valid
            case "test", "testing": return .test
            default: break
            }
        }
        let u = Double(Self.fnv1a(relativePath) >> 11) / Double(1 << 53)
        if u < testFraction { return .test }
        if u < testFraction + validFraction { return .valid }
        return .train
    }

    /// FNV-1a, 64-bit, over the UTF-8 bytes.
    public static func fnv1a(_ s: String) -> UInt64 {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for b in s.utf8 {
            h ^= UInt64(b)
            h = h &* 0x100_0000_01b3
        }
        // Final avalanche so that nearby paths spread over [0, 1).
        h ^= h >> 33
        h = h &* 0xff51_afd7_ed55_8ccd
        h ^= h >> 33
        return h
    }
}
