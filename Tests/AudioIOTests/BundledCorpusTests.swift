import Foundation
import XCTest
@testable import AudioIO

/// The corpora bundled in Assets/ load through the dataset pipeline with their manifests'
/// speaker / piece splits.
final class BundledCorpusTests: XCTestCase {
    static let assets = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("Assets")

    func testDigitsLoadWithSpeakerDisjointSplits() throws {
        var warnings = 0
        let ds = try AudioDataset(folder: Self.assets.appendingPathComponent("digits"),
                                  options: DatasetOptions(sampleRate: 16000, segmentLength: 16000)) { _ in warnings += 1 }
        XCTAssertEqual(warnings, 0)
        XCTAssertGreaterThanOrEqual(ds.files.count, 200)
        XCTAssertTrue(ds.fitsInMemory)
        let words: Set<String> = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
        XCTAssertEqual(Set(ds.files.compactMap(\.label)), words)
        // Speakers (file name before the last '_') never straddle splits.
        var splitOf: [String: Split] = [:]
        for f in ds.files {
            let name = (f.relativePath as NSString).lastPathComponent
            let speaker = String(name[..<name.lastIndex(of: "_")!])
            if let s = splitOf[speaker] { XCTAssertEqual(s, f.split, "speaker \(speaker) is in two splits") }
            splitOf[speaker] = f.split
            XCTAssertEqual(f.frames, 16000, f.relativePath)
        }
        for split in Split.allCases { XCTAssertFalse(ds.segments(split).isEmpty, "\(split) is empty") }
        let seg = try ds.read(ds.segments(.test)[0])
        let rms = (seg.reduce(0) { $0 + Double($1 * $1) } / Double(seg.count)).squareRoot()
        XCTAssertGreaterThan(rms, 0.01, "bundled clip is silent")
    }

    func testPianoLoads() throws {
        let ds = try AudioDataset(folder: Self.assets.appendingPathComponent("piano"),
                                  options: DatasetOptions(sampleRate: 16000, segmentLength: 16000))
        XCTAssertGreaterThanOrEqual(ds.files.count, 20)
        for split in Split.allCases { XCTAssertFalse(ds.segments(split).isEmpty, "\(split) is empty") }
        XCTAssertEqual(Set(ds.files.map(\.info.sampleRate)), [16000])
    }
}
