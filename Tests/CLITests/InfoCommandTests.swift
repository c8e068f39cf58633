import AudioIO
import Fixtures
import Foundation
import XCTest

final class InfoCommandTests: XCTestCase {
    var dir: URL!

    override func setUpWithError() throws {
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("wm-cli-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir.appendingPathComponent("sub"), withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: dir) }

    private func tone(_ seconds: Double, rate: Int, channels: Int) -> Audio {
        let n = Int(seconds * Double(rate))
        var s: [Float] = []
        for i in 0..<n { for c in 0..<channels { s.append(Float(0.3 * sin(Double(i) * 0.05 * Double(c + 1)))) } }
        return Audio(samples: s, sampleRate: rate, channels: channels)
    }

    func testHelpListsTheCommands() throws {
        let r = try CLI.run(["--help"])
        XCTAssertEqual(r.status, 0)
        for cmd in ["info", "checkpoint"] { XCTAssertTrue(r.stdout.contains(cmd), r.stdout) }
    }

    /// The scenario: stereo 44.1 kHz WAV, FLAC and OGG beside broken files.
    func testMixedFolderListsGoodFilesAndReportsBadOnes() throws {
        try AudioFile.write(tone(1.5, rate: 44100, channels: 2), to: dir.appendingPathComponent("stereo.wav").path)
        try AudioFile.write(tone(0.5, rate: 22050, channels: 1), to: dir.appendingPathComponent("sub/mono.flac").path)
        try AudioFile.write(tone(2, rate: 48000, channels: 2), to: dir.appendingPathComponent("music.ogg").path)
        try Data(try Data(contentsOf: dir.appendingPathComponent("stereo.wav")).prefix(5000)).write(to: dir.appendingPathComponent("cut.wav"))
        try "hello".write(to: dir.appendingPathComponent("text.wav"), atomically: true, encoding: .utf8)
        FileManager.default.createFile(atPath: dir.appendingPathComponent("zero.flac").path, contents: Data())
        try "notes".write(to: dir.appendingPathComponent("README.txt"), atomically: true, encoding: .utf8)

        let r = try CLI.run(["info", dir.path])
        XCTAssertEqual(r.status, 1, "exit status must be 1 when a file failed")
        let lines = r.stdout.split(separator: "\n").map(String.init)
        func row(_ name: String) -> String? { lines.first { $0.hasPrefix(dir.appendingPathComponent(name).path + " ") } }
        XCTAssertTrue(row("stereo.wav")?.contains("44100") == true && row("stereo.wav")?.contains(" 2 ") == true, r.stdout)
        XCTAssertTrue(row("stereo.wav")?.contains("66150") == true, r.stdout)
        XCTAssertTrue(row("sub/mono.flac")?.contains("FLAC") == true, r.stdout)
        XCTAssertTrue(row("music.ogg")?.contains("OGG/VORBIS") == true && row("music.ogg")?.contains("96000") == true, r.stdout)
        XCTAssertTrue(r.stdout.contains("3 audio files"), r.stdout)
        let errors = r.stderr.split(separator: "\n").map(String.init)
        XCTAssertEqual(errors.count, 3, r.stderr)
        for name in ["cut.wav", "text.wav", "zero.flac"] {
            XCTAssertTrue(errors.contains { $0.hasPrefix("error: \(dir.appendingPathComponent(name).path): ") }, r.stderr)
        }
        XCTAssertFalse(r.stderr.contains("README.txt"))
        XCTAssertFalse(r.stderr.contains("Fatal") || r.stderr.contains("crashed"))

        // Good files only: exit 0, nothing on stderr.
        let ok = try CLI.run(["info", dir.appendingPathComponent("stereo.wav").path, dir.appendingPathComponent("music.ogg").path])
        XCTAssertEqual(ok.status, 0)
        XCTAssertEqual(ok.stderr, "")
    }

    func testEmptyFolderAndMissingPath() throws {
        let empty = dir.appendingPathComponent("sub")
        let r = try CLI.run(["info", empty.path, dir.appendingPathComponent("nope.wav").path])
        XCTAssertEqual(r.status, 1)
        XCTAssertTrue(r.stderr.contains("error: \(empty.path): folder is empty"), r.stderr)
        XCTAssertTrue(r.stderr.contains("nope.wav: no such file"), r.stderr)
    }

    /// Root reads every file, so the permission case runs the CLI as `nobody` via setpriv.
    func testUnreadableFileAsUnprivilegedUser() throws {
        let good = dir.appendingPathComponent("ok.wav"), locked = dir.appendingPathComponent("locked.wav")
        try AudioFile.write(tone(0.2, rate: 8000, channels: 1), to: good.path)
        try AudioFile.write(tone(0.2, rate: 8000, channels: 1), to: locked.path)
        chmod(dir.path, 0o755)
        chmod(good.path, 0o644)
        chmod(locked.path, 0o000)
        var prefix: [String] = []
        if getuid() == 0 {
            guard FileManager.default.isExecutableFile(atPath: "/usr/bin/setpriv") else { throw XCTSkip("setpriv not available") }
            prefix = ["/usr/bin/setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
        }
        let r = try CLI.run(["info", good.path, locked.path], prefix: prefix)
        if r.stderr.contains("Permission denied") && !r.stderr.contains("locked.wav") {
            throw XCTSkip("the binary is not reachable by an unprivileged user here: \(r.stderr)")
        }
        XCTAssertEqual(r.status, 1, r.stderr)
        XCTAssertTrue(r.stdout.contains(good.path), r.stdout)
        XCTAssertTrue(r.stderr.contains("error: \(locked.path): permission denied"), r.stderr)
    }

    func testCheckpointInspect() throws {
        let golden = Fixtures.golden.appendingPathComponent("scan_real_small.safetensors")
        let r = try CLI.run(["checkpoint", "inspect", golden.path])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertTrue(r.stdout.contains("in_u") && r.stdout.contains("F32") && r.stdout.contains("kind: selective_scan"), r.stdout)
        let bad = dir.appendingPathComponent("bad.safetensors")
        try Data([1, 2, 3]).write(to: bad)
        let b = try CLI.run(["checkpoint", "inspect", bad.path])
        XCTAssertEqual(b.status, 1)
        XCTAssertEqual(b.stderr.split(separator: "\n").count, 1, b.stderr)
        XCTAssertTrue(b.stderr.hasPrefix("error: \(bad.path): "), b.stderr)
    }
}
