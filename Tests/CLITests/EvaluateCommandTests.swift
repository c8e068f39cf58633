import AudioIO
import Engine
import Foundation
import Models
import XCTest

/// `wavemamba evaluate` and `wavemamba classifier test` run as a user would, with the
/// bundled classifier.
final class EvaluateCommandTests: XCTestCase {
    static let assets = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("Assets")
    var dir: URL!

    override func setUpWithError() throws {
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("wm-eval-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: dir) }

    /// A small reference (two digit folders) and "generated" clips at another rate, in stereo.
    func makeSets() throws -> (generated: URL, reference: URL) {
        let ref = dir.appendingPathComponent("reference"), gen = dir.appendingPathComponent("generated")
        for word in ["zero", "one"] {
            try FileManager.default.createDirectory(at: ref.appendingPathComponent(word), withIntermediateDirectories: true)
            let src = Self.assets.appendingPathComponent("digits/\(word)")
            for name in try FileManager.default.contentsOfDirectory(atPath: src.path).sorted().prefix(12) {
                try FileManager.default.copyItem(at: src.appendingPathComponent(name), to: ref.appendingPathComponent("\(word)/\(name)"))
            }
        }
        try FileManager.default.createDirectory(at: gen, withIntermediateDirectories: true)
        var seed: UInt64 = 1
        for i in 0..<10 {
            // 22.05 kHz stereo noise bursts of 0.7 s: resampled, mixed and padded to 1 s.
            var s: [Float] = []
            for _ in 0..<(15435 * 2) {
                seed = seed &* 6364136223846793005 &+ 1442695040888963407
                s.append(Float(Int64(bitPattern: seed >> 11) % 1000) / 4000)
            }
            try AudioFile.write(Audio(samples: s, sampleRate: 22050, channels: 2), to: gen.appendingPathComponent("sample_\(i).wav").path)
        }
        return (gen, ref)
    }

    func testEvaluateWritesTableJSONAndReport() throws {
        let (gen, ref) = try makeSets()
        // A tiny random SaShiMi checkpoint, for the NLL row.
        var config = SaShiMiConfig()
        config.dModel = 8
        config.nLayers = 1
        config.outer = .mamba
        config.center = .mamba
        let model = SaShiMi(config: config, backend: CPUBackend(threads: 2), seed: 0)
        let checkpoint = dir.appendingPathComponent("model.safetensors")
        try ModelCheckpoint.save(model, audio: AudioSettings(), to: checkpoint)
        let run = dir.appendingPathComponent("run")
        try FileManager.default.createDirectory(at: run, withIntermediateDirectories: true)
        try "{\"type\":\"train\",\"step\":10,\"loss\":5.0}\n{\"type\":\"train\",\"step\":20,\"loss\":4.0}\n{\"type\":\"valid\",\"step\":20,\"valid_bits\":6.1}\n"
            .write(to: run.appendingPathComponent("metrics.jsonl"), atomically: true, encoding: .utf8)
        let json = dir.appendingPathComponent("eval.json"), report = dir.appendingPathComponent("report.html")

        let r = try CLI.run(["evaluate", "--generated", gen.path, "--reference", ref.path, "--json", json.path, "--report", report.path,
                             "--run", run.path, "--checkpoint", checkpoint.path, "--nll-clips", "2", "--examples", "2"])
        XCTAssertEqual(r.status, 0, r.stderr)
        for row in ["FID", "IS", "mIS", "AM", "mel FD", "flatness W1", "centroid KS", "test NLL (bits/sample)", "10 vs 24", "12 vs 12", "event rate (scored / ref)"] {
            XCTAssertTrue(r.stdout.contains(row), "missing \(row) in\n\(r.stdout)")
        }
        XCTAssertTrue(r.stderr.contains("at least 128"), "small sets must be warned about: \(r.stderr)")

        let obj = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(contentsOf: json)) as? [String: Any])
        let metrics = try XCTUnwrap(obj["metrics"] as? [String: Any]), ceiling = try XCTUnwrap(obj["ceiling"] as? [String: Any])
        let fid = try XCTUnwrap(metrics["fid"] as? Double), ceilingFID = try XCTUnwrap(ceiling["fid"] as? Double)
        XCTAssertGreaterThan(fid, ceilingFID, "noise must score worse than real digits")
        XCTAssertEqual(metrics["clips"] as? Int, 10)
        // Steady noise (its zero padding aside) holds no sound event; spoken digits mostly do.
        XCTAssertEqual(metrics["eventRate"] as? Double, 0)
        XCTAssertGreaterThan(try XCTUnwrap(metrics["referenceEventRate"] as? Double), 0.5)
        let nll = try XCTUnwrap(obj["nll"] as? [String: Any])
        // An untrained model is close to uniform over 256 classes: about 8 bits per sample.
        XCTAssertEqual(try XCTUnwrap(nll["bitsPerSample"] as? Double), 8, accuracy: 0.5)

        let html = try String(contentsOf: report, encoding: .utf8)
        XCTAssertTrue(html.contains("<polyline"), "training curves")
        XCTAssertTrue(html.contains("data:image/png;base64,"), "spectrograms")
        XCTAssertTrue(html.contains("data:audio/wav;base64,"), "audio players")
        XCTAssertTrue(html.contains("sample_0.wav"))
        XCTAssertTrue(html.contains("event rate (scored / reference)"))
    }

    /// `generate` writes manifest.jsonl (the model's likelihood of each clip); `evaluate
    /// --drop-least-likely/--drop-most-likely` scores the middle of that ranking and says so;
    /// without a manifest it is an error that says where one comes from.
    func testGenerateManifestAndLikelihoodSelection() throws {
        let (noise, ref) = try makeSets()
        var config = SaShiMiConfig()
        config.dModel = 8
        config.nLayers = 1
        config.pool = [2, 2]
        config.dState = 4
        let checkpoint = dir.appendingPathComponent("model.safetensors")
        try ModelCheckpoint.save(SaShiMi(config: config, backend: CPUBackend(threads: 2), seed: 0), audio: AudioSettings(), to: checkpoint)
        let gen = dir.appendingPathComponent("gen")
        let g = try CLI.run(["generate", checkpoint.path, "--count", "6", "--batch", "4", "--seconds", "0.02", "--temperature", "0.9",
                             "--top-p", "0.95", "--seed", "3", "--out", gen.path, "--device", "cpu"])
        XCTAssertEqual(g.status, 0, g.stderr)
        let lines = try String(contentsOf: gen.appendingPathComponent("manifest.jsonl"), encoding: .utf8).split(separator: "\n")
        XCTAssertEqual(lines.count, 6)
        for (k, line) in lines.enumerated() {
            let e = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
            XCTAssertEqual(e["file"] as? String, String(format: "sample_%03d.wav", k))
            XCTAssertEqual(e["samples"] as? Int, 320)
            XCTAssertEqual(e["seed"] as? Int, 3)
            XCTAssertEqual(e["temperature"] as? Double ?? 0, 0.9, accuracy: 1e-6)
            XCTAssertEqual(e["top_p"] as? Double ?? 0, 0.95, accuracy: 1e-6)
            let bits = try XCTUnwrap(e["bits_per_sample"] as? Double), nats = try XCTUnwrap(e["log_likelihood_nats"] as? Double)
            XCTAssertEqual(bits, -nats / 320 / log(2), accuracy: 1e-9)
            // An untrained model is near uniform over 256 classes: about 8 bits per sample.
            XCTAssertEqual(bits, 8, accuracy: 0.5)
        }
        let json = dir.appendingPathComponent("sel.json"), report = dir.appendingPathComponent("sel.html")
        let r = try CLI.run(["evaluate", "--generated", gen.path, "--reference", ref.path, "--drop-least-likely", "0.34",
                             "--drop-most-likely", "0.17", "--json", json.path, "--report", report.path, "--examples", "0"])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertTrue(r.stdout.contains("scored 3 of 6 clips: dropped the 2 least and 1 most likely"), r.stdout)
        let obj = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(contentsOf: json)) as? [String: Any])
        let selection = try XCTUnwrap(obj["selection"] as? [String: Any])
        XCTAssertEqual(selection["scored"] as? Int, 3)
        XCTAssertEqual((obj["metrics"] as? [String: Any])?["clips"] as? Int, 3)
        XCTAssertTrue(try String(contentsOf: report, encoding: .utf8).contains("scored 3 of 6 clips"))

        let none = try CLI.run(["evaluate", "--generated", noise.path, "--reference", ref.path, "--drop-least-likely", "0.4"])
        XCTAssertEqual(none.status, 1)
        XCTAssertTrue(none.stderr.contains("no manifest") && none.stderr.contains("wavemamba generate"), none.stderr)
    }

    func testBadInputsNameTheFileAndTheFix() throws {
        let missing = dir.appendingPathComponent("nothing-here").path
        let r = try CLI.run(["evaluate", "--generated", missing, "--reference", Self.assets.appendingPathComponent("digits").path])
        XCTAssertEqual(r.status, 1)
        XCTAssertTrue(r.stderr.contains(missing) && r.stderr.contains("no such folder"), r.stderr)

        let notClassifier = dir.appendingPathComponent("x.safetensors")
        try "not safetensors".write(to: notClassifier, atomically: true, encoding: .utf8)
        let r2 = try CLI.run(["classifier", "test", "--data", Self.assets.appendingPathComponent("digits").path, "--classifier", notClassifier.path])
        XCTAssertEqual(r2.status, 1)
        XCTAssertTrue(r2.stderr.contains(notClassifier.path), r2.stderr)
    }

    func testClassifierTestPrintsConfusionTable() throws {
        let r = try CLI.run(["classifier", "test", "--data", Self.assets.appendingPathComponent("digits").path, "--split", "test"])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertTrue(r.stdout.contains("accuracy: "), r.stdout)
        XCTAssertTrue(r.stdout.contains("(30 clips, split test"), r.stdout)
    }
}
