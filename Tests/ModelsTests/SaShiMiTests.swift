import Engine
import Foundation
import XCTest
@testable import Models

final class SaShiMiTests: XCTestCase {
    func smallConfig(_ outer: BlockKind, _ center: BlockKind, _ backbone: Backbone = .sashimi) -> SaShiMiConfig {
        smallTestConfig(outer, center, dState: 4, backbone: backbone)
    }

    func tokens(batch: Int, length: Int, seed: UInt64) -> [Int32] { testTokens(batch: batch, length: length, seed: seed) }

    /// Teacher-forced step mode reproduces the parallel forward's logits at every position, for
    /// both backbones and every block kind.
    func testStepModeLogitsEqualParallelForward() {
        let kinds: [(BlockKind, BlockKind)] = [(.mambaComplex, .mambaComplex), (.mamba, .mamba), (.s4d, .s4d), (.s4d, .mambaComplex),
                                               (.mamba, .mha), (.mha, .mamba), (.mambaLTI, .mambaLTI), (.mamba, .mambaLTI)]
        for backbone in Backbone.allCases {
          for (outer, center) in kinds {
            let backend = CPUBackend()
            let model = SaShiMi(config: smallConfig(outer, center, backbone), backend: backend, seed: 7)
            let batch = 3, L = 48
            let toks = tokens(batch: batch, length: L, seed: 11)
            let parallel = model.logits(backend.indices(toks, shape: [batch, L]), tape: Tape.inference()).value.floats()
            let state = model.makeStepState(batch: batch, maxSamples: L)
            var stepped = [Float](repeating: 0, count: parallel.count)
            for t in 0..<L {
                let out = model.step(tokens: (0..<batch).map { toks[$0 * L + t] }, state).floats()
                for b in 0..<batch { for k in 0..<256 { stepped[(b * L + t) * 256 + k] = out[b * 256 + k] } }
            }
            var num = 0.0, den = 0.0, worstPos = (0, 0.0)
            for i in 0..<parallel.count {
                let d = Double(stepped[i] - parallel[i])
                num += d * d; den += Double(parallel[i]) * Double(parallel[i])
                if abs(d) > worstPos.1 { worstPos = (i / 256 % L, abs(d)) }
            }
            let rel = (num / den).squareRoot()
            print("\(backbone) step vs parallel (\(outer.rawValue) / \(center.rawValue)): rel err \(rel), worst at t = \(worstPos.0)")
            XCTAssertLessThanOrEqual(rel, 1e-5, "\(backbone) \(outer.rawValue) / \(center.rawValue)")
          }
        }
    }

    /// Output at t must not depend on inputs after t (the UpPool shift keeps it causal).
    func testCausality() {
      for backbone in Backbone.allCases {
        let backend = CPUBackend()
        let model = SaShiMi(config: smallConfig(.mambaComplex, .mamba, backbone), backend: backend, seed: 3)
        let L = 32
        var toks = tokens(batch: 1, length: L, seed: 5)
        let a = model.logits(backend.indices(toks, shape: [1, L]), tape: Tape.inference()).value.floats()
        toks[20] = (toks[20] + 100) % 256
        let b = model.logits(backend.indices(toks, shape: [1, L]), tape: Tape.inference()).value.floats()
        XCTAssertEqual(Array(a[0..<(20 * 256)]), Array(b[0..<(20 * 256)]), "logits before t = 20 changed")
        XCTAssertNotEqual(Array(a[(20 * 256)..<(21 * 256)]), Array(b[(20 * 256)..<(21 * 256)]))
      }
    }

    /// The unet backbone's parameter names (docs/parameters.md): down blocks before the
    /// DownPool, which takes the index after them.
    func testUNetParameterNames() {
        let model = SaShiMi(config: smallConfig(.s4d, .mamba, .unet), backend: CPUBackend(), seed: 1)
        let names = Set(model.store.names)
        // s4d outer: each of the 2 layers is an S4D block and an FF block (indices 0…3), the DownPool is 4.
        for n in ["down.0.0.norm.weight", "down.0.0.mixer.kernel.log_dt", "down.0.1.mixer.fc1.weight", "down.0.3.mixer.fc2.bias",
                  "down.0.4.linear.weight", "down.1.4.linear.bias", "center.1.mixer.A_log", "up.0.0.linear.weight", "up.1.4.mixer.fc2.weight"] {
            XCTAssertTrue(names.contains(n), "missing \(n)")
        }
        XCTAssertFalse(names.contains("down.0.linear.weight"))
        XCTAssertEqual(model.downBlocks.map(\.count), [4, 4])
        XCTAssertEqual(model.up.map(\.blocks.count), [4, 4])
    }

    func testDefaultParameterCountAndNames() {
        let model = SaShiMi(config: SaShiMiConfig(), backend: CPUBackend(), seed: 1)
        print("SaShiMi-small (complex Mamba) parameters: \(model.parameterCount)")
        let names = Set(model.store.names)
        for n in ["embedding.weight", "down.0.linear.weight", "down.1.linear.bias", "center.3.mixer.in_proj.weight", "center.7.norm.weight",
                  "up.0.0.linear.weight", "up.0.1.mixer.A_imag", "up.1.8.mixer.out_proj.weight", "norm.weight", "head.weight"] {
            XCTAssertTrue(names.contains(n), "missing \(n)")
        }
        XCTAssertGreaterThan(model.parameterCount, 4_000_000)
        XCTAssertLessThan(model.parameterCount, 8_000_000)
    }
}
