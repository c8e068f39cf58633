import Fixtures
import Foundation
import XCTest

/// `wavemamba nll --clip-length N --per-position B`: scoring at another length than the
/// checkpoint's, and the NLL by position.
final class NLLCommandTests: XCTestCase {
    var dir: URL!

    override func setUpWithError() throws {
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("wm-nll-cli-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: dir) }

    /// A checkpoint trained 2 steps on 256-sample clips of the bundled digits (8 kHz).
    func checkpoint() throws -> URL {
        let recipe = dir.appendingPathComponent("tiny.toml")
        try """
        [data]
        sample_rate = 8000
        clip_length = 256
        [model]
        backbone = "unet"
        d_model = 8
        n_layers = 1
        pool = [4, 4]
        outer = "mamba"
        center = "mamba"
        d_state = 4
        [train]
        batch_size = 2
        steps = 2
        validate_every = 0
        validation_batches = 1
        """.write(to: recipe, atomically: true, encoding: .utf8)
        let run = dir.appendingPathComponent("run")
        let r = try CLI.run(["train", recipe.path, "--data", Fixtures.repository.appendingPathComponent("Assets/digits").path, "--out", run.path,
                             "--device", "cpu", "--threads", "1"])
        XCTAssertEqual(r.status, 0, r.stderr)
        return run.appendingPathComponent("latest.safetensors")
    }

    /// Twice the training length: the whole-clip NLL (the per-clip mean losses of the
    /// training code) equals the mean of the per-position buckets (the backend's per-row sums)
    /// to 1e-6, and the buckets differ from each other (a real curve, not one number copied).
    func testClipLengthTwiceTrainingEqualsMeanOfPerPositionCurve() throws {
        let ckpt = try checkpoint()
        let json = dir.appendingPathComponent("nll.json")
        let r = try CLI.run(["nll", ckpt.path, "--data", Fixtures.repository.appendingPathComponent("Assets/digits").path, "--clip-length", "512",
                             "--per-position", "8", "--json", json.path, "--device", "cpu", "--threads", "1"])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertTrue(r.stdout.contains("clips of 512 samples"), r.stdout)
        XCTAssertTrue(r.stdout.contains("8 buckets of 64 samples"), r.stdout)
        let object = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(contentsOf: json)) as? [String: Any])
        XCTAssertEqual(object["clip_length"] as? Int, 512)
        XCTAssertEqual(object["trained_clip_length"] as? Int, 256)
        let whole = try XCTUnwrap(object["bits_per_sample"] as? Double)
        let buckets = try XCTUnwrap(object["per_position"] as? [[String: Any]]).map { try XCTUnwrap($0["bits_per_sample"] as? Double) }
        XCTAssertEqual(buckets.count, 8)
        XCTAssertEqual(whole, buckets.reduce(0, +) / 8, accuracy: 1e-6)
        XCTAssertGreaterThan(buckets.max()! - buckets.min()!, 1e-4, "\(buckets)")
        XCTAssertTrue(whole > 1 && whole < 9, "\(whole)")
    }

    func testLengthsThatDoNotFitThePoolingAreOneLineErrors() throws {
        let ckpt = try checkpoint()
        let data = Fixtures.repository.appendingPathComponent("Assets/digits").path
        let bad = try CLI.run(["nll", ckpt.path, "--data", data, "--clip-length", "500", "--device", "cpu"])
        XCTAssertEqual(bad.status, 1)
        XCTAssertTrue(bad.stderr.contains("--clip-length 500 is not a positive multiple of the model's pooling product 16"), bad.stderr)
        let buckets = try CLI.run(["nll", ckpt.path, "--data", data, "--clip-length", "512", "--per-position", "3", "--device", "cpu"])
        XCTAssertEqual(buckets.status, 1)
        XCTAssertTrue(buckets.stderr.contains("--per-position 3 does not divide the clip length 512"), buckets.stderr)
    }
}
