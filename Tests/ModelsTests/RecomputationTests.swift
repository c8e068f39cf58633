import Engine
import XCTest
@testable import Models

/// `recompute: .blocks` re-runs each residual block's forward in the backward: the loss and
/// every gradient must be those of the ordinary path bit for bit (same ops, same order, the
/// same dropout masks from the same seeds), for less peak memory.
final class RecomputationTests: XCTestCase {
    struct Pass { var loss: Float; var grads: [Float]; var peakBytes: Int }

    func pass(_ config: SaShiMiConfig, _ recompute: Recomputation, length: Int = 64, batch: Int = 2) -> Pass {
        let backend = CPUBackend(threads: 2)
        let model = SaShiMi(config: config, backend: backend, seed: 11)
        let tokens = testTokens(batch: batch, length: length + 1, seed: 5)
        var inputs: [Int32] = [], targets: [Int32] = []
        for b in 0..<batch {
            let row = tokens[(b * (length + 1))..<((b + 1) * (length + 1))]
            inputs += row.dropLast()
            targets += row.dropFirst()
        }
        let x = backend.indices(inputs, shape: [batch, length]), y = backend.indices(targets, shape: [batch, length])
        model.store.zeroGrad()
        let before = backend.memoryInUse.live
        backend.resetPeakMemory()
        let tape = Tape()
        let loss = model.loss(inputs: x, targets: y, tape: tape, training: true, seed: 99, recompute: recompute)
        tape.backward(from: loss)
        let peak = backend.memoryInUse.peak - before
        return Pass(loss: loss.value.floats()[0], grads: model.store.grads!.floats(), peakBytes: peak)
    }

    func check(_ outer: BlockKind, _ center: BlockKind, _ backbone: Backbone, dropout: Float,
               file: StaticString = #filePath, line: UInt = #line) {
        var c = smallTestConfig(outer, center, dState: 4, backbone: backbone)
        c.dropout = dropout
        c.mhaHeads = 4
        let plain = pass(c, .none), again = pass(c, .blocks)
        XCTAssertEqual(plain.loss.bitPattern, again.loss.bitPattern, "loss", file: file, line: line)
        XCTAssertEqual(plain.grads.count, again.grads.count, file: file, line: line)
        let differing = zip(plain.grads, again.grads).filter { $0.bitPattern != $1.bitPattern }.count
        XCTAssertEqual(differing, 0, "\(differing) of \(plain.grads.count) gradients differ", file: file, line: line)
        XCTAssertTrue(plain.grads.contains { $0 != 0 }, file: file, line: line)
    }

    func testSaShiMiMambaGradientsAreBitwiseEqual() { check(.mamba, .mambaComplex, .sashimi, dropout: 0.1) }
    func testSaShiMiS4DGradientsAreBitwiseEqual() { check(.s4d, .s4d, .sashimi, dropout: 0.1) }
    func testUNetMambaGradientsAreBitwiseEqual() { check(.mamba, .mamba, .unet, dropout: 0.1) }
    func testUNetMixedGradientsAreBitwiseEqual() { check(.s4d, .mambaComplex, .unet, dropout: 0) }
    func testAttentionAndLTIGradientsAreBitwiseEqual() { check(.mambaLTI, .mha, .unet, dropout: 0.1) }

    /// Only the blocks' inputs stay on the tape, so the peak falls, more so as blocks deepen.
    func testPeakMemoryDrops() {
        var c = smallTestConfig(.mamba, .mamba, dState: 4, backbone: .unet)
        c.nLayers = 4
        let plain = pass(c, .none, length: 512, batch: 1), again = pass(c, .blocks, length: 512, batch: 1)
        XCTAssertLessThan(Double(again.peakBytes), 0.6 * Double(plain.peakBytes),
                          "peak \(again.peakBytes) B with recomputation against \(plain.peakBytes) B without")
    }

    /// Outside training (an inference tape) recomputation changes nothing and records nothing.
    func testInferenceTapeIgnoresRecomputation() {
        let backend = CPUBackend()
        let model = SaShiMi(config: smallTestConfig(.mamba, .s4d, dState: 4), backend: backend, seed: 2)
        let x = backend.indices(testTokens(batch: 1, length: 32, seed: 1), shape: [1, 32])
        let tape = Tape.inference()
        let a = model.logits(x, tape: tape).value.floats()
        let b = model.logits(x, tape: tape, recompute: .blocks).value.floats()
        XCTAssertEqual(a.map(\.bitPattern), b.map(\.bitPattern))
        XCTAssertEqual(tape.count, 0)
    }
}
