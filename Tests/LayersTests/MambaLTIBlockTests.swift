import Engine
import Foundation
import XCTest
@testable import Layers

final class MambaLTIBlockTests: XCTestCase {
    /// MambaBlock's names for what the two blocks share; dt_bias, B and C instead of x_proj and
    /// dt_proj; the exact count.
    func testParameterNamesShapesAndCount() {
        for complex in [false, true] {
            let store = ParameterStore(backend: CPUBackend())
            _ = MambaLTIBlock(store, prefix: "layers.0.mixer", config: MambaConfig(dModel: 64, isComplex: complex), seed: 3)
            let shapes = Dictionary(uniqueKeysWithValues: store.parameters.map { ($0.name!, $0.shape) })
            let W = complex ? 32 : 16
            var expected: [String: [Int]] = [
                "in_proj.weight": [256, 64], "conv1d.weight": [128, 1, 4], "conv1d.bias": [128], "dt_bias": [128],
                "B": [W], "C": [W], "A_log": [128, 16], "D": [128], "out_proj.weight": [64, 128],
            ]
            if complex { expected["A_imag"] = [128, 16] }
            XCTAssertEqual(shapes, Dictionary(uniqueKeysWithValues: expected.map { ("layers.0.mixer." + $0.key, $0.value) }))
            // 16384 + 512 + 128 + 128 + 2W + 2048 (+ 2048) + 128 + 8192: x_proj's 128·(4 + 2W) and dt_proj's 640 are gone.
            XCTAssertEqual(store.count, complex ? 29_632 : 27_552)
        }
    }

    /// With the same prefix and seed, the parameters the two blocks share start equal
    /// (mamba_simple.py's initialisation); Δ = softplus(dt_bias) ∈ [dtMin, dtMax]; B = 1.
    func testInitialisationIsMambas() {
        for complex in [false, true] {
            let cfg = MambaConfig(dModel: 32, dState: 8, isComplex: complex)
            let lti = MambaLTIBlock(ParameterStore(backend: CPUBackend()), prefix: "m", config: cfg, seed: 9)
            let mamba = MambaBlock(ParameterStore(backend: CPUBackend()), prefix: "m", config: cfg, seed: 9)
            XCTAssertEqual(lti.inProj.weight.value.floats(), mamba.inProj.weight.value.floats())
            XCTAssertEqual(lti.conv1dWeight.value.floats(), mamba.conv1dWeight.value.floats())
            XCTAssertEqual(lti.conv1dBias.value.floats(), mamba.conv1dBias.value.floats())
            XCTAssertEqual(lti.ALog.value.floats(), mamba.ALog.value.floats())
            XCTAssertEqual(lti.AImag?.value.floats(), mamba.AImag?.value.floats())
            XCTAssertEqual(lti.D.value.floats(), mamba.D.value.floats())
            XCTAssertEqual(lti.outProj.weight.value.floats(), mamba.outProj.weight.value.floats())
            let dt = lti.dtBias.value.floats().map { log1p(exp(Double($0))) }
            XCTAssertTrue(dt.allSatisfy { $0 >= 0.001 * 0.999 && $0 <= 0.1 * 1.001 }, "\(dt)")
            XCTAssertGreaterThan(dt.max()! / dt.min()!, 5, "Δ is spread log-uniformly over the channels")
            XCTAssertEqual(lti.B.value.floats(), complex ? [1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0] : [Float](repeating: 1, count: 8))
            XCTAssertGreaterThan(lti.C.value.floats().map(abs).max()!, 0.1)
        }
    }

    /// The SSM is the convolution of the conv's output with the fixed kernel
    /// K_d[k] = Δ_d Σ_n C_n B_n e^{k·Δ_d·A_dn} (Δ = softplus(dt_bias)): the same at every position
    /// and for every input. Computed here in Double from the parameters, against the block.
    func testOutputIsTheFixedKernelsConvolution() {
        let backend = CPUBackend()
        let store = ParameterStore(backend: backend)
        let cfg = MambaConfig(dModel: 8, dState: 4)
        let block = MambaLTIBlock(store, prefix: "", config: cfg, seed: 4)
        store.finalize()
        backend.fillNormal(block.C.value, mean: 0, std: 1, seed: 8)
        backend.fillNormal(block.B.value, mean: 1, std: 0.5, seed: 6)
        // Δ in [0.05, 0.5]: the state carries over a few steps, not hundreds.
        block.dtBias.value.copy(from: (0..<cfg.dInner).map { Float(log(expm1(0.05 + 0.45 * Double($0) / Double(cfg.dInner - 1)))) })
        let batch = 2, L = 20, H = 8, dInner = cfg.dInner, N = cfg.dState
        let x = backend.empty([batch * L, H])
        backend.fillNormal(x, mean: 0, std: 1, seed: 5)
        let out = block(Variable(x), batch: batch, Tape.inference()).value.floats()

        let tape = Tape.inference()
        let xz = Op.split(block.inProj(Variable(x), tape), [dInner, dInner], tape)
        let u = Op.causalConv1d(xz[0], block.conv1dWeight, block.conv1dBias, batch: batch, silu: true, tape).value.floats().map(Double.init)
        let z = xz[1].value.contiguous().floats().map(Double.init)
        let delta = block.dtBias.value.floats().map { log1p(exp(Double($0))) }
        let A = block.ALog.value.floats().map { -exp(Double($0)) }
        let Bv = block.B.value.floats().map(Double.init), Cv = block.C.value.floats().map(Double.init)
        let Dv = block.D.value.floats().map(Double.init), W = block.outProj.weight.value.floats().map(Double.init)
        var expected = [Float](repeating: 0, count: batch * L * H)
        for b in 0..<batch {
            for t in 0..<L {
                var y = [Double](repeating: 0, count: dInner)
                for d in 0..<dInner {
                    var s = Dv[d] * u[(b * L + t) * dInner + d]
                    for k in 0...t {
                        var K = 0.0
                        for n in 0..<N { K += delta[d] * Cv[n] * Bv[n] * exp(Double(k) * delta[d] * A[d * N + n]) }
                        s += K * u[(b * L + t - k) * dInner + d]
                    }
                    let g = z[(b * L + t) * dInner + d]
                    y[d] = s * g / (1 + exp(-g))
                }
                for h in 0..<H { expected[(b * L + t) * H + h] = Float((0..<dInner).reduce(0.0) { $0 + W[h * dInner + $1] * y[$1] }) }
            }
        }
        let err = Golden.relativeError(out, expected)
        print("mamba-lti vs its fixed-kernel convolution: rel err \(err)")
        XCTAssertLessThanOrEqual(err, 1e-5)
    }

    /// Every parameter's and the input's gradient against fourth-order finite differences of
    /// the whole block (batch 2, L = 16, d_model 4, N = 4, scan chunk 4 so the backward
    /// recomputes from checkpoints), real and complex. Δ in [0.05, 0.5] so that the state,
    /// not only the D skip, shapes the output.
    func testGradientsMatchFiniteDifferences() {
        for complex in [false, true] {
            let backend = CPUBackend(threads: 2)
            let store = ParameterStore(backend: backend)
            var cfg = MambaConfig(dModel: 4, dState: 4, isComplex: complex)
            cfg.dtMin = 0.05
            cfg.dtMax = 0.5
            cfg.scanChunk = 4
            let block = MambaLTIBlock(store, prefix: "", config: cfg, seed: 17)
            store.finalize()
            let batch = 2, L = 16
            let x = backend.empty([batch * L, 4])
            backend.fillNormal(x, mean: 0, std: 1, seed: 3)
            let input = Variable(x, requiresGrad: true)
            let leaves = store.parameters.map { ($0.name!, $0) } + [("input", input)]
            let errors = LayerGradCheck(backend: backend, step: 1e-2).errors(leaves: leaves) { tape in block(input, batch: batch, tape) }
            print("mamba-lti gradcheck (complex: \(complex)): " + errors.map { "d\($0.0) \(format($0.1))" }.joined(separator: ", "))
            for (name, e) in errors { XCTAssertLessThanOrEqual(e, 1e-3, "complex \(complex): d\(name)") }
        }
    }

    /// Running the sequence one step at a time gives the parallel forward's output at every
    /// position, for real and complex blocks, batched over streams; a step allocates nothing.
    func testStepModeEqualsParallelForward() {
        for complex in [false, true] {
            let backend = CPUBackend()
            let store = ParameterStore(backend: backend)
            let block = MambaLTIBlock(store, prefix: "", config: MambaConfig(dModel: 24, dState: 8, isComplex: complex), seed: 21)
            store.finalize()
            backend.fillNormal(block.B.value, mean: 0, std: 1, seed: 2)
            let batch = 3, L = 37
            let x = backend.empty([batch * L, 24])
            backend.fillNormal(x, mean: 0, std: 1, seed: 5)
            let parallel = block(Variable(x), batch: batch, Tape.inference()).value.floats()
            let state = block.makeStepState(batch: batch)
            let xs = x.floats()
            let xt = backend.empty([batch, 24])
            var stepped = [Float](repeating: 0, count: parallel.count)
            backend.resetPeakMemory()
            let liveBefore = backend.memoryInUse.live
            for t in 0..<L {
                var row: [Float] = []
                for b in 0..<batch { row += xs[((b * L + t) * 24)..<((b * L + t + 1) * 24)] }
                xt.copy(from: row)
                let y = block.step(xt, state).floats()
                for b in 0..<batch { for c in 0..<24 { stepped[(b * L + t) * 24 + c] = y[b * 24 + c] } }
            }
            XCTAssertLessThanOrEqual(backend.memoryInUse.peak, liveBefore, "a step allocated tensors")
            let err = Golden.relativeError(stepped, parallel)
            print("mamba-lti step vs parallel (complex: \(complex)): rel err \(err)")
            XCTAssertLessThanOrEqual(err, 1e-5)
            // A reset state starts over: the first step again equals position 0.
            state.reset()
            xt.copy(from: (0..<batch).flatMap { b in xs[(b * L * 24)..<(b * L * 24 + 24)] })
            XCTAssertEqual(block.step(xt, state).floats(), (0..<batch).flatMap { b in stepped[(b * L * 24)..<(b * L * 24 + 24)] })
        }
    }
}
