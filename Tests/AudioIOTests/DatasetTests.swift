import XCTest
@testable import AudioIO

final class DatasetTests: XCTestCase {
    var dir: URL!
    override func setUpWithError() throws { dir = try TestSignals.scratch() }
    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: dir) }

    func testHashSplitIsStableWhenFilesAreAdded() {
        let rule = SplitRule()
        let first = (0..<2000).map { "speaker\($0 % 97)/clip_\($0).wav" }
        let before = first.map(rule.split(of:))
        let more = first + (0..<1000).map { "new/clip_\($0).flac" }
        let after = more.map(rule.split(of:))
        XCTAssertEqual(Array(after.prefix(first.count)), before)
        let counts = Dictionary(grouping: after, by: { $0 }).mapValues(\.count)
        XCTAssertEqual(Double(counts[.train]!) / 3000, 0.8, accuracy: 0.03)
        XCTAssertEqual(Double(counts[.valid]!) / 3000, 0.1, accuracy: 0.02)
        XCTAssertEqual(Double(counts[.test]!) / 3000, 0.1, accuracy: 0.02)
        // The hash is a fixed function (not Swift's per-process seeded Hasher).
        XCTAssertEqual(SplitRule.fnv1a("zero/a.wav"), SplitRule.fnv1a("zero/a.wav"))
        XCTAssertNotEqual(SplitRule.fnv1a("zero/a.wav"), SplitRule.fnv1a("zero/b.wav"))
    }

    func testPublishedSplitsWin() throws {
        let rule = SplitRule()
        XCTAssertEqual(rule.split(of: "train/Zero_abc_nohash_0.wav"), .train)
        XCTAssertEqual(rule.split(of: "valid/One_abc_nohash_0.wav"), .valid)
        XCTAssertEqual(rule.split(of: "test/Two_abc_nohash_0.wav"), .test)
        // Speech Commands lists.
        try "one/b_nohash_0.wav\n".write(to: dir.appendingPathComponent("validation_list.txt"), atomically: true, encoding: .utf8)
        try "two/c_nohash_0.wav\n".write(to: dir.appendingPathComponent("testing_list.txt"), atomically: true, encoding: .utf8)
        let sc = SplitRule.forFolder(dir)
        XCTAssertEqual(sc.split(of: "one/b_nohash_0.wav"), .valid)
        XCTAssertEqual(sc.split(of: "two/c_nohash_0.wav"), .test)
        XCTAssertEqual(sc.split(of: "one/a_nohash_0.wav"), .train)
        // A splits.tsv manifest (recipes/data) wins over folders and the hash.
        let m = dir.appendingPathComponent("manifest")
        try FileManager.default.createDirectory(at: m, withIntermediateDirectories: true)
        try "path\tsplit\tspeaker\nzero/s1_0.flac\ttest\ts1\ntrain/x.flac\tvalid\ts2\n".write(to: m.appendingPathComponent("splits.tsv"), atomically: true, encoding: .utf8)
        let mr = SplitRule.forFolder(m)
        XCTAssertEqual(mr.split(of: "zero/s1_0.flac"), .test)
        XCTAssertEqual(mr.split(of: "train/x.flac"), .valid)
        XCTAssertEqual(mr.split(of: "unlisted/y.flac"), SplitRule().split(of: "unlisted/y.flac"))
        XCTAssertEqual(AudioDataset.label(of: "train/zero/a.wav"), "zero")
        XCTAssertEqual(AudioDataset.label(of: "zero/a.wav"), "zero")
        XCTAssertNil(AudioDataset.label(of: "a.wav"))
    }

    func testOrderedSplitUsesNaturalOrder() {
        let paths = (1...50).map { "youtube_mix/out\($0).wav" }.shuffled()
        let s = AudioDataset.orderedSplits(paths, valid: 0.06, test: 0.06)
        XCTAssertEqual(s["youtube_mix/out1.wav"], .train)
        XCTAssertEqual(s["youtube_mix/out44.wav"], .train)
        XCTAssertEqual(s["youtube_mix/out45.wav"], .valid)
        XCTAssertEqual(s["youtube_mix/out47.wav"], .valid)
        XCTAssertEqual(s["youtube_mix/out48.wav"], .test)
        XCTAssertEqual(s["youtube_mix/out50.wav"], .test)
    }

    func testSegmentsPaddingDroppingAndLongFiles() throws {
        let rate = 8000
        try TestSignals.writeWav(TestSignals.sine(200, rate: rate, seconds: 0.5), rate: rate, to: dir.appendingPathComponent("short.wav"))
        try TestSignals.writeWav(TestSignals.sine(300, rate: rate, seconds: 3.5), rate: rate, to: dir.appendingPathComponent("long.wav"))
        // 16 kHz stereo source, resampled to 8 kHz.
        let x = TestSignals.sine(250, rate: 16000, seconds: 2)
        try AudioFile.write(Audio(samples: TestSignals.interleave([x, x]), sampleRate: 16000, channels: 2),
                            to: dir.appendingPathComponent("hi.flac").path)
        var opts = DatasetOptions(sampleRate: rate, segmentLength: rate, shortFiles: .pad, validFraction: 0, testFraction: 0)
        let padded = try AudioDataset(folder: dir, options: opts)
        XCTAssertEqual(padded.files.map(\.relativePath), ["hi.flac", "long.wav", "short.wav"])
        XCTAssertEqual(padded.files.map(\.frames), [16000, 28000, 4000])
        let segs = padded.segments(.train)
        XCTAssertEqual(segs.count, 2 + 3 + 1)
        let short = try padded.read(segs.last!)
        XCTAssertEqual(short.count, rate)
        XCTAssertGreaterThan(TestSignals.rms(short[0..<4000]), 0.3)
        XCTAssertEqual(TestSignals.rms(short[4000...]), 0)
        let second = try padded.read(segs[1])
        XCTAssertEqual(TestSignals.frequency(second, rate: rate), 250, accuracy: 0.5)
        opts.shortFiles = .drop
        XCTAssertEqual(try AudioDataset(folder: dir, options: opts).segments(.train).count, 5)
    }

    func testStreamingWithinMemoryBudgetGivesTheSameSamples() throws {
        for i in 0..<6 {
            try TestSignals.writeWav(TestSignals.noise(count: 8000, seed: UInt64(i)), rate: 8000, to: dir.appendingPathComponent("n\(i).wav"))
        }
        let inMemory = try AudioDataset(folder: dir, options: DatasetOptions(sampleRate: 8000, segmentLength: 4000, validFraction: 0, testFraction: 0))
        XCTAssertTrue(inMemory.fitsInMemory)
        // Room for two decoded files only.
        let streamed = try AudioDataset(folder: dir, options: DatasetOptions(sampleRate: 8000, segmentLength: 4000, memoryBudgetBytes: 2 * 8000 * 4, validFraction: 0, testFraction: 0))
        XCTAssertFalse(streamed.fitsInMemory)
        for s in inMemory.segments(.train) {
            XCTAssertEqual(try streamed.read(s), try inMemory.read(s))
        }
    }

    func testBatchOrderIsSeededAndResumable() {
        let order = BatchOrder(count: 10, seed: 42)
        XCTAssertEqual(order.permutation(epoch: 0), BatchOrder(count: 10, seed: 42).permutation(epoch: 0))
        XCTAssertNotEqual(order.permutation(epoch: 0), order.permutation(epoch: 1))
        XCTAssertNotEqual(order.permutation(epoch: 0), BatchOrder(count: 10, seed: 43).permutation(epoch: 0))
        XCTAssertEqual(order.permutation(epoch: 3).sorted(), Array(0..<10))
        // Steps 0–4 with batch 2 cover epoch 0 exactly once; step 5 starts epoch 1.
        let epoch0 = (0..<5).flatMap { order.batch(step: $0, batchSize: 2).indices }
        XCTAssertEqual(epoch0, order.permutation(epoch: 0))
        XCTAssertEqual(order.batch(step: 5, batchSize: 2).epoch, 1)
    }
}
