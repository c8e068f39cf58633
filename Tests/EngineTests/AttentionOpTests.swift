import Foundation
import XCTest
@testable import Engine

/// Op.causalAttention on the tape: finite differences of every input, the shared-input case
/// (q = k = v, whose three gradient contributions add up), and the forward against the
/// direct softmax formula in Double.
final class AttentionOpTests: XCTestCase {
    let backend = CPUBackend(threads: 2)
    var gc: GradCheck { GradCheck(backend: backend) }

    /// Two sequences of 66 tokens (one past a 64-row tile), two heads of 3.
    func testGradientsByFiniteDifferences() {
        gc.check("causalAttention", inputs: [("q", [132, 6], true, nil), ("k", [132, 6], true, nil), ("v", [132, 6], true, nil)]) { v, t in
            Op.causalAttention(v[0], v[1], v[2], batch: 2, heads: 2, t)
        }
    }

    /// q = k = v = the in_proj output split in three, and q = k = v one variable: the gradients
    /// of the parts and of the shared input accumulate.
    func testSharedAndSplitInputs() {
        gc.check("causalAttention(split)", inputs: [("x", [3 * 21, 12], true, nil)]) { v, t in
            let parts = Op.split(v[0], [4, 4, 4], t)
            return Op.causalAttention(parts[0], parts[1], parts[2], batch: 3, heads: 2, t)
        }
        gc.check("causalAttention(x, x, x)", inputs: [("x", [2 * 13, 4], true, nil)]) { v, t in
            Op.causalAttention(v[0], v[0], v[0], batch: 2, heads: 1, scale: 0.9, t)
        }
    }

    func testForwardMatchesTheSoftmaxFormula() {
        let batch = 2, L = 70, heads = 3, D = 4, E = heads * D
        let q = gc.random([batch * L, E], seed: 1, low: -2, high: 2), k = gc.random([batch * L, E], seed: 2, low: -2, high: 2)
        let v = gc.random([batch * L, E], seed: 3)
        let y = Op.causalAttention(Variable(backend.tensor(q, shape: [batch * L, E])), Variable(backend.tensor(k, shape: [batch * L, E])),
                                   Variable(backend.tensor(v, shape: [batch * L, E])), batch: batch, heads: heads, Tape.inference()).value.floats()
        var worst = 0.0
        let scale = 1 / Double(D).squareRoot()
        for b in 0..<batch {
            for h in 0..<heads {
                for i in 0..<L {
                    let scores = (0...i).map { j in scale * (0..<D).reduce(0.0) { $0 + Double(q[(b * L + i) * E + h * D + $1]) * Double(k[(b * L + j) * E + h * D + $1]) } }
                    let m = scores.max()!, z = scores.reduce(0) { $0 + exp($1 - m) }
                    for d in 0..<D {
                        let o = (0...i).reduce(0.0) { $0 + exp(scores[$1] - m) / z * Double(v[(b * L + $1) * E + h * D + d]) }
                        worst = max(worst, abs(o - Double(y[(b * L + i) * E + h * D + d])))
                    }
                }
            }
        }
        print("Op.causalAttention vs formula: max abs err \(worst)")
        XCTAssertLessThanOrEqual(worst, 1e-5)
    }
}
