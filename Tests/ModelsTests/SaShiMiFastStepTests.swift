import Engine
import Foundation
import XCTest
@testable import Models

/// The CPU fast step path (`SaShiMiFastStepState`) against the parallel forward and against
/// the Backend-generic step path.
final class SaShiMiFastStepTests: XCTestCase {
    /// dModel 16 (widths 16, 32, 64), dState 16: complex x_proj has 1 + 64 outputs (a partial
    /// 16-column panel), real 1 + 32.
    func config(_ outer: BlockKind, _ center: BlockKind, _ backbone: Backbone) -> SaShiMiConfig {
        smallTestConfig(outer, center, dState: 16, backbone: backbone)
    }

    func tokens(batch: Int, length: Int, seed: UInt64) -> [Int32] { testTokens(batch: batch, length: length, seed: seed) }

    static let cases: [(BlockKind, BlockKind, Backbone)] = [(.mambaComplex, .mambaComplex, .sashimi), (.mamba, .mamba, .sashimi), (.s4d, .s4d, .sashimi),
                                                          (.s4d, .mambaComplex, .sashimi), (.mamba, .mamba, .unet), (.s4d, .mambaComplex, .unet)]

    func relativeError(_ a: [Float], _ b: [Float]) -> Double {
        var num = 0.0, den = 0.0
        for i in a.indices {
            let d = Double(a[i] - b[i])
            num += d * d
            den += Double(b[i]) * Double(b[i])
        }
        return (num / den).squareRoot()
    }

    /// Teacher-forced fast steps reproduce the parallel forward's logits at every position, for
    /// 5 different streams split over two threads (parts of 4 and 1 rows: both linear kernels).
    func testFastStepLogitsEqualParallelForwardAtEveryPosition() throws {
        for (outer, center, backbone) in Self.cases {
            let backend = CPUBackend(threads: 2)
            let model = SaShiMi(config: config(outer, center, backbone), backend: backend, seed: 7)
            let batch = 5, L = 48
            let toks = tokens(batch: batch, length: L, seed: 11)
            let parallel = model.logits(backend.indices(toks, shape: [batch, L]), tape: Tape.inference()).value.floats()
            let state = try XCTUnwrap(model.makeFastStepState(batch: batch))
            XCTAssertEqual(state.partRanges, [0..<4, 4..<5])
            var worst = 0.0
            for t in 0..<L {
                let out = model.fastStepLogits(tokens: (0..<batch).map { toks[$0 * L + t] }, state)
                var want = [Float](), got = [Float]()
                for b in 0..<batch {
                    want += parallel[((b * L + t) * 256)..<((b * L + t + 1) * 256)]
                    got += out[(b * 256)..<((b + 1) * 256)]
                }
                let rel = relativeError(got, want)
                worst = max(worst, rel)
                XCTAssertLessThanOrEqual(rel, 1e-4, "\(backbone) \(outer.rawValue)/\(center.rawValue): position \(t)")
            }
            // The streams really differ (a test of the rows, not of one row copied).
            XCTAssertNotEqual(Array(parallel[0..<256]).description, Array(parallel[(L * 256)..<(L * 256 + 256)]).description)
            print("\(backbone) fast step vs parallel (\(outer.rawValue) / \(center.rawValue)): worst per-position rel err \(worst)")
        }
    }

    /// The fast path equals the generic path step by step (three streams on one part, four on
    /// another), and a reset state starts over exactly.
    func testFastStepEqualsGenericStepAndResets() throws {
        for (outer, center, backbone) in Self.cases {
            let backend = CPUBackend(threads: 2)
            let model = SaShiMi(config: config(outer, center, backbone), backend: backend, seed: 3)
            let batch = 7, L = 40
            let toks = tokens(batch: batch, length: L, seed: 5)
            let generic = model.makeStepState(batch: batch)
            let fast = try XCTUnwrap(model.makeFastStepState(batch: batch))
            var first: [[Float]] = []
            for t in 0..<L {
                let step = (0..<batch).map { toks[$0 * L + t] }
                let want = model.step(tokens: step, generic).floats()
                let got = model.fastStepLogits(tokens: step, fast)
                first.append(got)
                XCTAssertLessThanOrEqual(relativeError(got, want), 1e-5, "\(backbone) \(outer.rawValue)/\(center.rawValue): step \(t)")
            }
            fast.reset()
            for t in 0..<L {
                let got = model.fastStepLogits(tokens: (0..<batch).map { toks[$0 * L + t] }, fast)
                XCTAssertEqual(got, first[t], "\(backbone) \(outer.rawValue)/\(center.rawValue): after reset, step \(t)")
            }
        }
    }

    /// A stream's logits do not depend on the batch around it or on the split over threads.
    func testStreamIndependentOfBatchAndThreads() throws {
        let model = SaShiMi(config: config(.mambaComplex, .mamba, .unet), backend: CPUBackend(threads: 2), seed: 9)
        let L = 24
        let toks = tokens(batch: 6, length: L, seed: 2)
        let six = try XCTUnwrap(model.makeFastStepState(batch: 6)), one = try XCTUnwrap(model.makeFastStepState(batch: 1))
        for t in 0..<L {
            let a = model.fastStepLogits(tokens: (0..<6).map { toks[$0 * L + t] }, six)
            let b = model.fastStepLogits(tokens: [toks[5 * L + t]], one)
            XCTAssertEqual(Array(a[(5 * 256)..<(6 * 256)]), b, "step \(t)")
        }
    }
}
