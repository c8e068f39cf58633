import AudioIO
import Fixtures
import Foundation
import SafeTensors
import XCTest

/// The bundled digits model (Assets/models/digits.safetensors): found by name, generated
/// from on the CPU, with the metadata its model card relies on.
final class BundledModelTests: XCTestCase {
    func testBundledDigitsModelGeneratesSoundOnTheCPU() throws {
        let out = FileManager.default.temporaryDirectory.appendingPathComponent("wm-bundled-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: out) }
        let r = try CLI.run(["generate", "digits", "--count", "4", "--seconds", "0.25", "--out", out.path, "--device", "cpu", "--seed", "3"])
        XCTAssertEqual(r.status, 0, r.stderr)
        let files = try FileManager.default.contentsOfDirectory(atPath: out.path).filter { $0.hasSuffix(".wav") }.sorted()
        XCTAssertEqual(files.count, 4)
        for f in files {
            let audio = try AudioFile.read(out.appendingPathComponent(f).path)
            XCTAssertEqual(audio.sampleRate, 16000)
            XCTAssertEqual(audio.frames, 4000)
            // Not silent: the level around the clip's mean (its DC) is far above digital silence.
            let x = audio.samples, mean = x.reduce(0, +) / Float(x.count)
            let rms = (x.reduce(Float(0)) { $0 + ($1 - mean) * ($1 - mean) } / Float(x.count)).squareRoot()
            XCTAssertGreaterThan(20 * log10(max(rms, 1e-10)), -60, "\(f) is silent")
        }
        XCTAssertTrue(FileManager.default.fileExists(atPath: out.appendingPathComponent("manifest.jsonl").path))
    }

    func testBundledModelMetadataAndUnknownNames() throws {
        let file = try SafeTensorsFile(contentsOf: Fixtures.repository.appendingPathComponent("Assets/models/digits.safetensors"))
        XCTAssertEqual(file.metadata["weights_dtype"], "BF16")
        XCTAssertNotNil(file.metadata["training_steps"].flatMap(Int.init))
        XCTAssertTrue(file.tensors.allSatisfy { $0.dtype == .BF16 })
        XCTAssertLessThanOrEqual(try Data(contentsOf: URL(fileURLWithPath: file.path)).count, 16 << 20, "a bundled model must stay within 16 MB")
        XCTAssertTrue(FileManager.default.fileExists(atPath: Fixtures.repository.appendingPathComponent("Assets/models/digits.md").path),
                      "every bundled model has a model card")
        let r = try CLI.run(["generate", "speech", "--out", "/tmp/never"])
        XCTAssertEqual(r.status, 1)
        XCTAssertTrue(r.stderr.contains("or a bundled model: digits"), r.stderr)
    }
}
