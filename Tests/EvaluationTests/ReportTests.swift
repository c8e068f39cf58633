import AudioIO
import Foundation
import XCTest
@testable import Evaluation

final class ReportTests: XCTestCase {
    func testChecksums() {
        XCTAssertEqual(PNGWriter.crc32(Array("IEND".utf8)), 0xAE42_6082)  // every PNG's last 4 bytes
        XCTAssertEqual(PNGWriter.crc32(Array("123456789".utf8)), 0xCBF4_3926)  // the CRC-32 check value
        XCTAssertEqual(PNGWriter.adler32(Array("Wikipedia".utf8)), 0x11E6_0398)
    }

    func testStoredZlibBlocks() {
        let data = (0..<70000).map { UInt8($0 % 251) }
        let z = PNGWriter.zlibStored(data)
        XCTAssertEqual(Array(z.prefix(2)), [0x78, 0x01])
        XCTAssertEqual((Int(z[0]) << 8 | Int(z[1])) % 31, 0)
        // Two blocks: 65535 bytes (not final), then 4465 (final), each with a 5-byte header.
        XCTAssertEqual(z.count, 2 + 5 + 65535 + 5 + 4465 + 4)
        XCTAssertEqual(z[2], 0)
        XCTAssertEqual(Array(z[3...6]), [0xFF, 0xFF, 0x00, 0x00])
        XCTAssertEqual(z[2 + 5 + 65535], 1)
        var inflated = [UInt8]()
        inflated += z[7..<(7 + 65535)]
        inflated += z[(7 + 65535 + 5)..<(z.count - 4)]
        XCTAssertEqual(inflated, data)
    }

    func testPNGStructure() {
        let png = [UInt8](PNGWriter.encode(width: 3, height: 2, rgb: [UInt8](repeating: 200, count: 18)))
        XCTAssertEqual(Array(png.prefix(8)), [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A])
        XCTAssertEqual(Array(png[12..<16]), Array("IHDR".utf8))
        XCTAssertEqual(Array(png[16..<24]), [0, 0, 0, 3, 0, 0, 0, 2])
        XCTAssertEqual(Array(png.suffix(8)), [0x49, 0x45, 0x4E, 0x44, 0xAE, 0x42, 0x60, 0x82])
        // Decodes with Python's zlib-based reader where Python is present.
        if let decoded = python("import sys,zlib,struct\nd=open(sys.argv[1],'rb').read()\ni=d.index(b'IDAT')\nn=struct.unpack('>I',d[i-4:i])[0]\nprint(list(zlib.decompress(d[i+4:i+4+n])))", png) {
            XCTAssertEqual(decoded.trimmingCharacters(in: .whitespacesAndNewlines), "[0, 200, 200, 200, 200, 200, 200, 200, 200, 200, 0, 200, 200, 200, 200, 200, 200, 200, 200, 200]")
        }
    }

    func python(_ script: String, _ bytes: [UInt8]) -> String? {
        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/python3") else { return nil }
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("png-\(getpid()).png")
        try? Data(bytes).write(to: file)
        defer { try? FileManager.default.removeItem(at: file) }
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
        p.arguments = ["-c", script, file.path]
        let out = Pipe()
        p.standardOutput = out
        guard (try? p.run()) != nil else { return nil }
        let data = out.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return p.terminationStatus == 0 ? String(decoding: data, as: UTF8.self) : nil
    }

    func testWAVBytes() {
        let wav = [UInt8](WAVBytes.encode([0, 1, -1, 0.5], sampleRate: 16000))
        XCTAssertEqual(wav.count, 44 + 8)
        XCTAssertEqual(Array(wav[0..<4]), Array("RIFF".utf8))
        XCTAssertEqual(Array(wav[44..<52]), [0, 0, 0xFF, 0x7F, 0x01, 0x80, 0x00, 0x40])
    }

    func testTrainingCurvesAreLenient() {
        let text = """
        {"type":"start","step":0,"time":1}
        {"type":"train","step":0,"loss":6.0}
        {"type":"train","step":10,"loss":5.5,"train_bits":7.9}
        not json
        {"type":"train","step":20,"loss":5.0,"train_bits":7.2,"lr":0.001}
        {"type":"valid","step":20,"loss":5.2,"valid_bits":7.5}
        {"step":30,"bits_per_sample":"7.0"}
        {"type":"train","step":40,"loss":null}
        {"type":"train","step":4
        """
        let c = TrainingCurves.parse(text)
        XCTAssertEqual(c.skippedLines, 2)
        let names = c.series.map(\.name)
        XCTAssertEqual(names, ["loss", "train_bits", "valid_bits", "bits_per_sample", "valid loss"])
        XCTAssertEqual(c.series[0].points.map(\.step), [0, 10, 20])
        XCTAssertEqual(c.series[0].points.map(\.value), [6.0, 5.5, 5.0])
        XCTAssertEqual(c.groups.map(\.title), ["loss (nats)", "bits per sample"])
        let svg = TrainingCurves.svg(title: "loss", series: c.groups[0].series)
        XCTAssertTrue(svg.hasPrefix("<svg"))
        XCTAssertTrue(svg.contains("<polyline"))
        XCTAssertTrue(svg.contains("valid loss"))
    }

    static func sampleResult() -> EvaluationResult {
        let m = MetricSet(clips: 10, referenceClips: 20, fid: 12.5, inceptionScore: 3.2, modifiedInceptionScore: 5.1, amScore: 1.4,
                          melFrechetDistance: 40, flatnessWasserstein: 0.01, flatnessKS: 0.2, centroidWasserstein: 150, centroidKS: 0.3,
                          labelShares: [0.5, 0.5], meanConfidence: 0.8, accuracy: nil, eventRate: 0.125, referenceEventRate: 0.875)
        return EvaluationResult(generated: .init(folder: "gen <&>", clips: 10, skippedFiles: 1), reference: .init(folder: "ref", clips: 20, skippedFiles: 0),
                                classifier: .init(file: "c.safetensors", labels: ["a", "b"], parameters: 100, embeddingDimension: 8, testAccuracy: "0.9"),
                                features: LogMelSettings(), metrics: m, ceiling: m, referenceInceptionScore: 1.9, referenceModifiedInceptionScore: 2.0,
                                nll: .init(checkpoint: "/x/model.safetensors", bitsPerSample: 7.1, clips: 3, clipsFrom: "test split"),
                                warnings: ["too few clips"], date: "2026-01-01")
    }

    static func sampleReport() -> Report {
        let frames = 126, mels = 64
        let logMel = (0..<(frames * mels)).map { i in Float(-13 + 10 * sin(Double(i % mels) / 9) + Double(i / mels) / 20) }
        let clip = Report.Clip(name: "zero/a.wav", group: "generated", samples: (0..<16000).map { Float(sin(Double($0) / 10) * 0.3) },
                               sampleRate: 16000, logMel: logMel, frames: frames, nMels: mels, predicted: "a", confidence: 0.93)
        var ref = clip
        ref.group = "reference"
        let curves = TrainingCurves.parse("{\"step\":1,\"loss\":5}\n{\"step\":2,\"loss\":4}\n{\"type\":\"valid\",\"step\":2,\"valid_bits\":6}")
        return Report(result: sampleResult(), clips: [clip, ref], curves: curves, runFolder: "runs/x")
    }

    /// `samples` lines (scores of clips generated while training) plot as their own charts,
    /// the EMA weights' round as separate series.
    func testTrainingCurvesPlotSampleScores() {
        let c = TrainingCurves.parse("""
        {"type":"train","step":2,"loss":5.0}
        {"type":"samples","step":2,"weights":"current","clips":4,"is":1.5,"fid":900,"event_rate":0.25,"generated_event_rate":0.25,"reference_event_rate":0.8}
        {"type":"samples","step":2,"weights":"ema","clips":4,"is":1.2,"fid":950,"event_rate":0,"generated_event_rate":0,"reference_event_rate":0.8}
        {"type":"samples","step":4,"weights":"current","clips":4,"is":1.7,"fid":700,"event_rate":0.5,"generated_event_rate":0.5,"reference_event_rate":0.8}
        """)
        XCTAssertEqual(c.series.first { $0.name == "samples fid" }?.points.map(\.value), [900, 700])
        XCTAssertEqual(c.series.first { $0.name == "samples fid (ema)" }?.points.map(\.value), [950])
        XCTAssertEqual(c.groups.map(\.title), ["loss (nats)", "FID of samples (lower is better)", "IS of samples (higher is better)",
                                              "event rate of samples (near the valid clips' is best)"])
        XCTAssertEqual(c.groups[3].series.map(\.name), ["samples generated_event_rate", "samples reference_event_rate",
                                                       "samples generated_event_rate (ema)", "samples reference_event_rate (ema)"])
        let report = Report(result: Self.sampleResult(), clips: [], curves: c, runFolder: "runs/x").html()
        XCTAssertTrue(report.contains("FID of samples") && report.contains("samples fid (ema)"))
    }

    /// The likelihood selection drops the highest-bits (least likely) and lowest-bits clips.
    func testLikelihoodSelection() {
        let pick = LikelihoodSelection.kept(bitsPerSample: [5, 1, 9, 3, 7], dropLeast: 0.2, dropMost: 0.2)
        XCTAssertEqual(pick.kept, [0, 3, 4])
        XCTAssertEqual(pick.least, 1)
        XCTAssertEqual(pick.most, 1)
        let big = LikelihoodSelection.kept(bitsPerSample: (0..<512).map { Double(($0 * 37) % 512) }, dropLeast: 0.4, dropMost: 0.05)
        XCTAssertEqual(big.kept.count, 281)
        XCTAssertEqual(Set(big.kept.map { ($0 * 37) % 512 }), Set(26..<(512 - 205)))
        let s = LikelihoodSelection(manifest: "/g/manifest.jsonl", clips: 512, droppedLeastLikely: 205, droppedMostLikely: 26,
                                    dropLeastFraction: 0.4, dropMostFraction: 0.05)
        XCTAssertTrue(s.summary.hasPrefix("scored 281 of 512 clips: dropped the 205 least and 26 most likely"), s.summary)
    }

    func testHTMLIsSelfContained() throws {
        let html = Self.sampleReport().html()
        XCTAssertTrue(html.hasPrefix("<!DOCTYPE html>"))
        XCTAssertTrue(html.contains("gen &lt;&amp;&gt;"), "folder names are escaped")
        XCTAssertTrue(html.contains("<td class=\"num\">12.500</td>"))
        XCTAssertTrue(html.contains("data:image/png;base64,iVBORw0KGgo"))
        XCTAssertTrue(html.contains("data:audio/wav;base64,UklGR"))
        XCTAssertTrue(html.contains("<polyline"))
        XCTAssertTrue(html.contains("too few clips"))
        XCTAssertTrue(html.contains("7.1000"), "NLL row")
        XCTAssertFalse(html.contains("src=\"http"), "nothing is loaded from elsewhere")
        let json = try JSONSerialization.jsonObject(with: try Self.sampleResult().json()) as? [String: Any]
        XCTAssertEqual((json?["metrics"] as? [String: Any])?["fid"] as? Double, 12.5)
        XCTAssertEqual((json?["metrics"] as? [String: Any])?["eventRate"] as? Double, 0.125)
        XCTAssertEqual((json?["metrics"] as? [String: Any])?["referenceEventRate"] as? Double, 0.875)
        XCTAssertTrue(html.contains("event rate (scored / reference)</td><td class=\"num\">0.125 / 0.875</td>"), "event rate row")
    }

    /// Renders the report in headless Chromium (skipped where it is not installed) and checks
    /// that a non-blank screenshot comes out.
    func testRendersInHeadlessChromium() throws {
        let browser = ["/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome"].first { FileManager.default.isExecutableFile(atPath: $0) }
        guard let browser else { throw XCTSkip("no Chromium installed (apt-get install chromium)") }
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("report-test-\(getpid())")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let page = dir.appendingPathComponent("report.html"), shot = dir.appendingPathComponent("shot.png")
        try Data(Self.sampleReport().html().utf8).write(to: page)
        let p = Process()
        p.executableURL = URL(fileURLWithPath: browser)
        p.arguments = ["--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--user-data-dir=\(dir.path)/profile",
                       "--window-size=1200,1600", "--screenshot=\(shot.path)", page.absoluteString]
        p.standardOutput = FileHandle.nullDevice
        p.standardError = FileHandle.nullDevice
        try p.run()
        p.waitUntilExit()
        let png = try Data(contentsOf: shot)
        XCTAssertGreaterThan(png.count, 10_000, "screenshot is (nearly) blank")
        XCTAssertEqual([UInt8](png.prefix(4)), [0x89, 0x50, 0x4E, 0x47])
    }
}
