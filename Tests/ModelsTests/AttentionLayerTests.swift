import Engine
import Layers
import XCTest
@testable import Models

final class AttentionLayerTests: XCTestCase {
    /// Table 5's MHA + MLP layer: nn.MultiheadAttention's names under `.mixer`, then the FF block.
    func testParameterNamesAndShapes() {
        let store = ParameterStore(backend: CPUBackend())
        let blocks = ResidualBlock.attentionLayer(store, prefix: "center", index: 2, width: 64, attention: MultiHeadAttentionConfig(heads: 4),
                                                  ff: 2, dropout: 0, seed: 1)
        XCTAssertEqual(blocks.count, 2)
        guard case .attention(let mha) = blocks[0].mixer, case .feedForward = blocks[1].mixer else { return XCTFail("MHA, then FF") }
        XCTAssertEqual(mha.heads, 4)
        let expected: [(String, [Int])] = [
            ("center.2.norm.weight", [64]), ("center.2.norm.bias", [64]),
            ("center.2.mixer.in_proj_weight", [192, 64]), ("center.2.mixer.in_proj_bias", [192]),
            ("center.2.mixer.out_proj.weight", [64, 64]), ("center.2.mixer.out_proj.bias", [64]),
            ("center.3.norm.weight", [64]), ("center.3.norm.bias", [64]),
            ("center.3.mixer.fc1.weight", [128, 64]), ("center.3.mixer.fc1.bias", [128]),
            ("center.3.mixer.fc2.weight", [64, 128]), ("center.3.mixer.fc2.bias", [64]),
        ]
        XCTAssertEqual(store.parameters.map { $0.name! }, expected.map(\.0))
        XCTAssertEqual(store.parameters.map(\.shape), expected.map(\.1))
        let alone = ResidualBlock.attentionLayer(ParameterStore(backend: CPUBackend()), prefix: "up.0", index: 1, width: 32, ff: 0,
                                                 dropout: 0, seed: 1)
        XCTAssertEqual(alone.count, 1, "ff 0: no FF block")
    }

    /// The two residual blocks stepped one sample at a time (LayerNorm, the KV-cached attention
    /// step or the FF step, residual add) give their parallel forward at every position.
    func testStepMatchesParallelForward() {
        let backend = CPUBackend(threads: 2)
        let store = ParameterStore(backend: backend)
        let B = 2, L = 80, H = 32
        let blocks = ResidualBlock.attentionLayer(store, prefix: "center", index: 0, width: H, attention: MultiHeadAttentionConfig(heads: 4),
                                                  ff: 2, dropout: 0, seed: 9)
        store.finalize()
        guard case .attention(let mha) = blocks[0].mixer, case .feedForward(let ff) = blocks[1].mixer else { return XCTFail("MHA, then FF") }
        let x = backend.empty([B * L, H])
        backend.fillNormal(x, mean: 0, std: 1, seed: 4)
        var y = Variable(x)
        for block in blocks { y = block(y, batch: B, Tape.inference(), training: false, seed: 0) }
        let parallel = y.value.floats(), xs = x.floats()

        let state = mha.makeStepState(batch: B, maxLength: L)
        let xt = backend.empty([B, H]), normed = backend.empty([B, H]), mean = backend.empty([B]), rstd = backend.empty([B])
        let h1 = backend.empty([B, H]), hidden = backend.empty([B, 2 * H]), mixed = backend.empty([B, H]), h2 = backend.empty([B, H])
        var worst: Float = 0
        for t in 0..<L {
            var row: [Float] = []
            for b in 0..<B { row += xs[((b * L + t) * H)..<((b * L + t + 1) * H)] }
            xt.copy(from: row)
            backend.layerNorm(x: xt, weight: blocks[0].norm.weight.value, bias: blocks[0].norm.bias.value, y: normed, mean: mean, rstd: rstd)
            backend.add(mha.step(normed, state), xt, out: h1)
            backend.layerNorm(x: h1, weight: blocks[1].norm.weight.value, bias: blocks[1].norm.bias.value, y: normed, mean: mean, rstd: rstd)
            ff.step(normed, hidden: hidden, out: mixed)
            backend.add(mixed, h1, out: h2)
            let out = h2.floats()
            for b in 0..<B {
                for c in 0..<H { worst = max(worst, abs(out[b * H + c] - parallel[(b * L + t) * H + c])) }
            }
        }
        print("MHA + FF step vs parallel: max abs diff \(worst)")
        XCTAssertLessThanOrEqual(worst, 1e-5)
    }
}
