import Foundation
import SafeTensors
import XCTest
@testable import Engine

final class CheckpointTests: XCTestCase {
    func makeStore(_ b: CPUBackend, seed: UInt64) -> ParameterStore {
        let s = ParameterStore(backend: b)
        s.add("layers.0.mixer.in_proj.weight", shape: [8, 4]) { b.fillNormal($0, mean: 0, std: 1, seed: seed) }
        s.add("layers.0.mixer.A_log", shape: [4, 2], options: .ssm) { b.fillUniform($0, low: 0, high: 1, seed: seed + 1) }
        s.add("norm_f.weight", shape: [4], values: [1, 1, 1, 1], options: .noDecay)
        s.finalize()
        return s
    }

    func testWeightsAndOptimizerRoundTrip() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("ckpt-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let b = CPUBackend()
        let a = makeStore(b, seed: 1)
        let optA = AdamWOptimizer(store: a)
        a.grads!.copy(from: (0..<a.count).map { Float($0) / 10 })
        optA.update(learningRate: 1e-3)
        let url = dir.appendingPathComponent("model.safetensors")
        try Checkpoint.saveWeights(a, to: url, metadata: [Checkpoint.configKey: #"{"d_model":4}"#])
        try Checkpoint.saveOptimizer(optA, ema: nil, to: Checkpoint.companionURL(url), metadata: ["data_step": "1"])
        XCTAssertEqual(Checkpoint.companionURL(url).lastPathComponent, "model.optim.safetensors")

        let c = makeStore(b, seed: 99)
        let optC = AdamWOptimizer(store: c)
        let file = try Checkpoint.loadWeights(c, from: url)
        XCTAssertEqual(file.metadata["config"], #"{"d_model":4}"#)
        XCTAssertEqual(file.metadata["format"], "wavemamba")
        XCTAssertEqual(c.values!.floats(), a.values!.floats())
        let meta = try Checkpoint.loadOptimizer(optC, ema: nil, from: Checkpoint.companionURL(url))
        XCTAssertEqual(meta["data_step"], "1")
        XCTAssertEqual(optC.step, 1)
        XCTAssertEqual(optC.m.floats(), optA.m.floats())
        XCTAssertEqual(optC.v.floats(), optA.v.floats())
        // Names and shapes as registered (what PyTorch's load_state_dict sees).
        XCTAssertEqual(file.shape("layers.0.mixer.in_proj.weight"), [8, 4])
    }

    func testMismatchedCheckpointIsRejectedWithNames() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("ckpt-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        var w = SafeTensorsWriter()
        w.add("layers.0.mixer.in_proj.weight", shape: [4, 8], values: [Float](repeating: 0, count: 32))
        w.add("other", shape: [1], values: [0])
        let url = dir.appendingPathComponent("bad.safetensors")
        try w.write(to: url)
        let b = CPUBackend()
        XCTAssertThrowsError(try Checkpoint.loadWeights(makeStore(b, seed: 1), from: url)) { e in
            let text = "\(e)"
            XCTAssertTrue(text.contains("in_proj.weight' has shape [4, 8], the model needs [8, 4]"), text)
            XCTAssertTrue(text.contains("missing 'layers.0.mixer.A_log'"), text)
            XCTAssertTrue(text.contains("unexpected 'other'"), text)
        }
    }
}
