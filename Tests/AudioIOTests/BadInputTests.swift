import XCTest
@testable import AudioIO

/// Every kind of bad input gets an error naming the path, the reason and a fix; none traps.
final class BadInputTests: XCTestCase {
    var dir: URL!
    override func setUpWithError() throws { dir = try TestSignals.scratch() }
    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: dir) }

    private func expect(_ kind: AudioIOError.Kind, _ path: URL, verify: Bool = true, _ body: (String) throws -> Void,
                        file: StaticString = #filePath, line: UInt = #line) {
        do {
            try body(path.path)
            XCTFail("no error for \(path.lastPathComponent)", file: file, line: line)
        } catch let e as AudioIOError {
            XCTAssertEqual(e.kind, kind, e.description, file: file, line: line)
            XCTAssertEqual(e.path, path.path, file: file, line: line)
            XCTAssertFalse(e.fix.isEmpty, "no fix in: \(e.description)", file: file, line: line)
        } catch {
            XCTFail("unexpected \(error)", file: file, line: line)
        }
    }

    /// A good file and a set of bad ones beside it.
    private func makeMixedFolder() throws -> (good: [URL], bad: [(URL, AudioIOError.Kind)]) {
        let good = dir.appendingPathComponent("good.wav")
        try TestSignals.writeWav(TestSignals.sine(440, rate: 16000, seconds: 1), rate: 16000, to: good)
        let flac = dir.appendingPathComponent("sub/good.flac")
        try FileManager.default.createDirectory(at: flac.deletingLastPathComponent(), withIntermediateDirectories: true)
        try AudioFile.write(Audio(samples: TestSignals.noise(count: 22050, seed: 1), sampleRate: 22050), to: flac.path)

        let truncWav = dir.appendingPathComponent("truncated.wav")
        try TestSignals.truncatedCopy(of: good, bytes: 3000, to: truncWav)
        let truncFlac = dir.appendingPathComponent("sub/truncated.flac")
        try TestSignals.truncatedCopy(of: flac, bytes: 4000, to: truncFlac)
        let text = dir.appendingPathComponent("notes.wav")
        try "this is not audio\n".write(to: text, atomically: true, encoding: .utf8)
        let empty = dir.appendingPathComponent("empty.flac")
        FileManager.default.createFile(atPath: empty.path, contents: Data())
        var garbage = Data("RIFF".utf8)
        garbage.append(Data((0..<2000).map { UInt8(truncatingIfNeeded: $0 &* 131) }))
        let corrupt = dir.appendingPathComponent("garbage.wav")
        try garbage.write(to: corrupt)
        return ([good, flac], [(truncWav, .truncated), (truncFlac, .corrupt), (text, .notAudio), (empty, .emptyFile), (corrupt, .notAudio)])
    }

    func testEachBadFileGetsItsOwnError() throws {
        let (good, bad) = try makeMixedFolder()
        for g in good { XCTAssertNoThrow(try AudioFile.info(g.path)) }
        for (url, kind) in bad {
            expect(kind, url) { _ = try AudioFile.info($0) }
            expect(kind, url) { _ = try AudioFile.read($0) }
        }
        expect(.notFound, dir.appendingPathComponent("missing.wav")) { _ = try AudioFile.read($0) }
        expect(.invalidArgument, dir.appendingPathComponent("sub")) { _ = try AudioFile.read($0) }
    }

    func testUnreadableFile() throws {
        guard getuid() != 0 else {
            // root reads everything; the CLI test runs this case as an unprivileged user.
            throw XCTSkip("running as root: permission bits are not enforced")
        }
        let url = dir.appendingPathComponent("locked.wav")
        try TestSignals.writeWav([0, 0.1], rate: 8000, to: url)
        chmod(url.path, 0)
        expect(.permissionDenied, url) { _ = try AudioFile.read($0) }
    }

    func testFolders() throws {
        let empty = dir.appendingPathComponent("empty")
        try FileManager.default.createDirectory(at: empty, withIntermediateDirectories: true)
        expect(.emptyFolder, empty) { _ = try AudioFolder(URL(fileURLWithPath: $0)) }
        let texts = dir.appendingPathComponent("texts")
        try FileManager.default.createDirectory(at: texts, withIntermediateDirectories: true)
        try "x".write(to: texts.appendingPathComponent("a.txt"), atomically: true, encoding: .utf8)
        expect(.noAudio, texts) { _ = try AudioFolder(URL(fileURLWithPath: $0)) }
        expect(.notFound, dir.appendingPathComponent("nope")) { _ = try AudioFolder(URL(fileURLWithPath: $0)) }
    }

    func testDatasetSkipsBadFilesAndFailsWhenNothingRemains() throws {
        let (good, bad) = try makeMixedFolder()
        var warnings: [AudioIOError] = []
        let ds = try AudioDataset(folder: dir, options: DatasetOptions(sampleRate: 16000, segmentLength: 8000, validFraction: 0, testFraction: 0)) { warnings.append($0) }
        XCTAssertEqual(Set(ds.files.map(\.path)), Set(good.map(\.path)))
        XCTAssertEqual(ds.skipped.count, bad.count)
        XCTAssertEqual(Set(warnings.map(\.path)), Set(bad.map(\.0.path)))
        XCTAssertEqual(ds.segments(.train).count, 2 + 2)

        for g in good { try FileManager.default.removeItem(at: g) }
        do {
            _ = try AudioDataset(folder: dir, options: DatasetOptions())
            XCTFail("a folder of bad files gave a dataset")
        } catch let e as AudioIOError {
            XCTAssertEqual(e.kind, .noAudio)
            XCTAssertTrue(e.description.contains("none of the \(bad.count) audio files"), e.description)
        }
    }
}
