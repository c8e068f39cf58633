import XCTest
@testable import Engine

/// A finite-difference check for every differentiable op.
final class OpGradientTests: XCTestCase {
    let backend = CPUBackend()
    var gc: GradCheck { GradCheck(backend: backend) }

    func testLinear() {
        gc.check("linear", inputs: [("x", [5, 7], true, nil), ("W", [3, 7], true, nil), ("b", [3], true, nil)]) { v, t in
            Op.linear(v[0], v[1], v[2], t)
        }
        // 3-D input, no bias.
        gc.check("linear3d", inputs: [("x", [2, 3, 4], true, nil), ("W", [6, 4], true, nil)]) { v, t in Op.linear(v[0], v[1], nil, t) }
    }

    func testLinearOnColumnSliceOfSplit() {
        gc.check("split+linear", inputs: [("x", [4, 9], true, nil), ("W", [2, 5], true, nil)]) { v, t in
            let parts = Op.split(v[0], [3, 5, 1], t)
            // Part 2 is unused: its columns of dx must come back as zeros.
            return Op.concat([Op.linear(parts[1], v[1], nil, t), parts[0]], t)
        }
    }

    func testMatmulAllTransposes() {
        for (ta, tb) in [(false, false), (true, false), (false, true), (true, true)] {
            let a = ta ? [2, 4, 3] : [2, 3, 4], b = tb ? [2, 5, 4] : [2, 4, 5]
            gc.check("matmul(\(ta),\(tb))", inputs: [("A", a, true, nil), ("B", b, true, nil)]) { v, t in
                Op.matmul(v[0], v[1], transA: ta, transB: tb, t)
            }
        }
    }

    func testActivations() {
        for kind: ActivationKind in [.silu, .softplus, .exp, .sigmoid, .tanh, .gelu] {
            gc.check("\(kind)", inputs: [("x", [3, 11], true, nil)]) { v, t in Op.activation(kind, v[0], t) }
        }
        // ReLU away from its kink.
        let x = (0..<20).map { Float($0 % 2 == 0 ? 1 : -1) * (0.2 + Float($0) / 40) }
        gc.check("relu", inputs: [("x", [20], true, x)]) { v, t in Op.activation(.relu, v[0], t) }
    }

    func testElementwise() {
        gc.check("add", inputs: [("a", [4, 5], true, nil), ("b", [4, 5], true, nil)]) { v, t in Op.add(v[0], v[1], t) }
        gc.check("mul", inputs: [("a", [4, 5], true, nil), ("b", [4, 5], true, nil)]) { v, t in Op.mul(v[0], v[1], t) }
        gc.check("scale", inputs: [("x", [7], true, nil)]) { v, t in Op.scale(v[0], -2.5, t) }
        gc.check("mulRowVector", inputs: [("x", [6, 5], true, nil), ("v", [5], true, nil)]) { v, t in Op.mulRowVector(v[0], v[1], t) }
        gc.check("glu", inputs: [("x", [3, 8], true, nil)]) { v, t in Op.glu(v[0], t) }
        gc.check("dropout", inputs: [("x", [5, 8], true, nil)]) { v, t in
            // Same seed in every evaluation: the mask is a fixed linear map.
            Op.dropout(v[0], p: 0.3, seed: 7, training: true, t)
        }
    }

    func testNorms() {
        gc.check("layerNorm", inputs: [("x", [4, 9], true, nil), ("w", [9], true, nil), ("b", [9], true, nil)]) { v, t in
            Op.layerNorm(v[0], v[1], v[2], t)
        }
        gc.check("layerNorm-noaffine", inputs: [("x", [3, 16], true, nil)]) { v, t in Op.layerNorm(v[0], nil, nil, t) }
        gc.check("rmsNorm", inputs: [("x", [4, 9], true, nil), ("w", [9], true, nil)]) { v, t in Op.rmsNorm(v[0], v[1], t) }
    }

    func testCrossEntropy() {
        let targets = backend.indices([3, 0, 255, 17, 128, 9], shape: [6])
        gc.check("crossEntropy", inputs: [("logits", [6, 256], true, nil)], tolerance: 5e-3, step: 1e-2) { v, t in
            Op.crossEntropy(v[0], targets: targets, t)
        }
        // Uniform logits: ln V nats per row.
        let loss = Op.crossEntropy(Variable(backend.zeros([4, 256])), targets: backend.indices([1, 2, 3, 4], shape: [4]), Tape.inference())
        XCTAssertEqual(Double(loss.value.floats()[0]), log(256.0), accuracy: 1e-5)
        XCTAssertEqual(Op.bits(fromNats: log(256.0)), 8, accuracy: 1e-12)
    }

    func testEmbedding() {
        let idx = backend.indices([2, 0, 2, 4, 1, 2], shape: [2, 3])
        gc.check("embedding", inputs: [("table", [5, 4], true, nil)]) { v, t in Op.embedding(v[0], indices: idx, t) }
    }

    func testCausalConv1d() {
        for silu in [false, true] {
            gc.check("causalConv1d(silu: \(silu))", inputs: [("x", [2 * 6, 3], true, nil), ("w", [3, 1, 4], true, nil), ("b", [3], true, nil)]) { v, t in
                Op.causalConv1d(v[0], v[1], v[2], batch: 2, silu: silu, t)
            }
        }
        // On a column slice (Mamba: the x half of in_proj).
        gc.check("causalConv1d(slice)", inputs: [("xz", [2 * 5, 6], true, nil), ("w", [3, 4], true, nil)]) { v, t in
            let parts = Op.split(v[0], [3, 3], t)
            return Op.mul(Op.causalConv1d(parts[0], v[1], nil, batch: 2, silu: true, t), parts[1], t)
        }
    }

    func testLayoutOps() {
        gc.check("reshape", inputs: [("x", [2, 6], true, nil)]) { v, t in Op.mul(Op.reshape(v[0], [3, 4], t), Variable(self.backend.tensor((0..<12).map { Float($0) }, shape: [3, 4])), t) }
        gc.check("concat", inputs: [("a", [3, 2], true, nil), ("b", [3, 5], true, nil)]) { v, t in Op.concat([v[0], v[1]], t) }
        gc.check("transpose", inputs: [("x", [2, 3, 5], true, nil)]) { v, t in Op.transpose(v[0], batch: 2, rows: 3, cols: 5, t) }
        gc.check("shiftRight", inputs: [("x", [2 * 4, 3], true, nil)]) { v, t in Op.shiftRight(v[0], batch: 2, steps: 1, t) }
    }

    func testShiftRightValues() {
        let x = Variable(backend.tensor((1...8).map(Float.init), shape: [4, 2]))
        let y = Op.shiftRight(x, batch: 2, steps: 1, Tape.inference()).value.floats()
        XCTAssertEqual(y, [0, 0, 1, 2, 0, 0, 5, 6])
    }
}
