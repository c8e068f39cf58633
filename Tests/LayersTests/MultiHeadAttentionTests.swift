import Engine
import Foundation
import XCTest
@testable import Layers

final class MultiHeadAttentionTests: XCTestCase {
    func testParameterNamesAndShapesAreNNMultiheadAttentions() {
        let store = ParameterStore(backend: CPUBackend())
        let layer = MultiHeadAttention(store, prefix: "center.0.mixer", width: 64, seed: 1)
        XCTAssertEqual(store.parameters.map { $0.name! },
                       ["center.0.mixer.in_proj_weight", "center.0.mixer.in_proj_bias", "center.0.mixer.out_proj.weight", "center.0.mixer.out_proj.bias"])
        XCTAssertEqual(store.parameters.map(\.shape), [[192, 64], [192], [64, 64], [64]])
        XCTAssertEqual(layer.heads, 8)
        XCTAssertEqual(layer.headDim, 8)
        XCTAssertEqual(MultiHeadAttention(ParameterStore(backend: CPUBackend()), prefix: "", width: 32, config: MultiHeadAttentionConfig(heads: 2),
                                          seed: 1).headDim, 16)
    }

    /// nn.MultiheadAttention's initialisation: Xavier-uniform in_proj_weight, zero biases,
    /// out_proj.weight as nn.Linear.
    func testInitialisation() {
        let store = ParameterStore(backend: CPUBackend())
        let layer = MultiHeadAttention(store, prefix: "", width: 48, config: MultiHeadAttentionConfig(heads: 4), seed: 3)
        let xavier = (6.0 / Double(4 * 48)).squareRoot(), linear = 1 / 48.0.squareRoot()
        let w = layer.inProjWeight.value.floats().map { Double(abs($0)) }, o = layer.outProj.weight.value.floats().map { Double(abs($0)) }
        XCTAssertLessThanOrEqual(w.max()!, xavier)
        XCTAssertGreaterThan(w.max()!, 0.95 * xavier)
        XCTAssertLessThanOrEqual(o.max()!, linear)
        XCTAssertGreaterThan(o.max()!, 0.95 * linear)
        XCTAssertEqual(layer.inProjBias.value.floats(), [Float](repeating: 0, count: 144))
        XCTAssertEqual(layer.outProj.bias!.value.floats(), [Float](repeating: 0, count: 48))
    }

    /// Running the sequences one step at a time through the KV cache (batch 3, L 150: more
    /// than two 64-row tiles) gives the parallel forward's output at every position within
    /// 1e-5; no tensor is allocated per step; reset() starts the streams over.
    func testStepModeMatchesParallelForward() {
        let backend = CPUBackend(threads: 2)
        let store = ParameterStore(backend: backend)
        let B = 3, L = 150, E = 24
        let layer = MultiHeadAttention(store, prefix: "", width: E, config: MultiHeadAttentionConfig(heads: 3), seed: 5)
        store.finalize()
        // Non-zero biases, so that the step's bias handling is checked too.
        backend.fillUniform(layer.inProjBias.value, low: -0.5, high: 0.5, seed: 6)
        backend.fillUniform(layer.outProj.bias!.value, low: -0.5, high: 0.5, seed: 7)
        let x = backend.empty([B * L, E])
        backend.fillNormal(x, mean: 0, std: 1, seed: 2)
        let parallel = layer(Variable(x), batch: B, Tape.inference()).value.floats()
        let xs = x.floats()
        let state = layer.makeStepState(batch: B, maxLength: L)
        let xt = backend.empty([B, E])
        func row(_ t: Int) -> [Float] {
            var r: [Float] = []
            for b in 0..<B { let start = (b * L + t) * E; r += xs[start..<(start + E)] }
            return r
        }
        var worst = 0.0, peakDuringSteps = 0
        for t in 0..<L {
            xt.copy(from: row(t))
            if t == 1 { backend.resetPeakMemory() }
            let y = layer.step(xt, state).floats()
            if t >= 1 { peakDuringSteps = max(peakDuringSteps, backend.memoryInUse.peak) }
            for b in 0..<B {
                for c in 0..<E { worst = max(worst, Double(abs(y[b * E + c] - parallel[(b * L + t) * E + c]))) }
            }
        }
        print("MHA step vs parallel: max abs diff \(worst)")
        XCTAssertLessThanOrEqual(worst, 1e-5)
        XCTAssertEqual(state.length, L)
        XCTAssertEqual(state.position.int32s(), [Int32(L)])
        XCTAssertLessThanOrEqual(peakDuringSteps, backend.memoryInUse.live, "a step allocated tensors")

        state.reset()
        xt.copy(from: row(0))
        let first = layer.step(xt, state).floats()
        for b in 0..<B {
            for c in 0..<E { XCTAssertEqual(first[b * E + c], parallel[b * L * E + c], accuracy: 1e-5) }
        }
    }
}
