import Engine
import Foundation
import SafeTensors
import XCTest
@testable import Layers

final class MambaBlockTests: XCTestCase {
    /// Every `mamba_block` file in the golden folder: forward output and every gradient
    /// within 1e-4 relative of the official implementation (float64 reference).
    func testGoldenMambaBlocks() throws {
        let cases = try Golden.files(kind: "mamba_block")
        XCTAssertFalse(cases.isEmpty, "no mamba_block golden files in \(Golden.directory.path)")
        for (name, f) in cases {
            let m = f.metadata
            let batch = Int(m["batch"]!)!, L = Int(m["seqlen"]!)!, dModel = Int(m["d_model"]!)!
            var cfg = MambaConfig(dModel: dModel, dState: Int(m["d_state"]!)!, dConv: Int(m["d_conv"]!)!, expand: Int(m["expand"]!)!,
                                  dtRank: Int(m["dt_rank"]!)!, isComplex: m["complex"] == "True")
            cfg.scanChunk = 8 // several chunks, so the backward recomputes from checkpoints
            let backend = CPUBackend()
            let store = ParameterStore(backend: backend)
            let block = MambaBlock(store, prefix: "", config: cfg, seed: 1)
            store.finalize()
            for p in store.parameters {
                XCTAssertEqual(f.shape("param_" + p.name!), p.shape, "\(name): shape of \(p.name!)")
                p.value.copy(from: try f.floats("param_" + p.name!))
            }
            let x = Variable(backend.tensor(try f.floats("in_x"), shape: [batch * L, dModel]), requiresGrad: true)
            let tape = Tape()
            let y = block(x, batch: batch, tape)
            let loss = Op.weightedSum(y, backend.tensor(try f.floats("in_dy"), shape: [batch * L, dModel]), tape)
            tape.backward(from: loss)
            var errors: [(String, Double)] = [("out_y", Golden.relativeError(y.value.floats(), try f.floats("out_y"))),
                                              ("grad_x", Golden.relativeError(x.grad!.floats(), try f.floats("grad_x")))]
            for p in store.parameters {
                errors.append(("grad_" + p.name!, Golden.relativeError(p.grad!.floats(), try f.floats("grad_" + p.name!))))
            }
            let worst = errors.max { $0.1 < $1.1 }!
            let bad = errors.filter { $0.1 > 1e-4 }
            print(bad.isEmpty ? "golden \(name): ok (max rel err \(String(format: "%.2e", worst.1)))"
                              : "golden \(name): FAIL \(bad.map { "\($0.0) \(String(format: "%.2e", $0.1))" }.joined(separator: ", "))")
            XCTAssertTrue(bad.isEmpty, "\(name): \(bad)")
        }
    }

    func testParameterNamesAndShapesMatchTheOfficialStateDict() {
        let store = ParameterStore(backend: CPUBackend())
        _ = MambaBlock(store, prefix: "layers.0.mixer", config: MambaConfig(dModel: 64, isComplex: true), seed: 3)
        let shapes = Dictionary(uniqueKeysWithValues: store.parameters.map { ($0.name!, $0.shape) })
        XCTAssertEqual(shapes["layers.0.mixer.in_proj.weight"], [256, 64])
        XCTAssertEqual(shapes["layers.0.mixer.conv1d.weight"], [128, 1, 4])
        XCTAssertEqual(shapes["layers.0.mixer.conv1d.bias"], [128])
        XCTAssertEqual(shapes["layers.0.mixer.x_proj.weight"], [4 + 64, 128]) // dt_rank 4 + 2·(2·16)
        XCTAssertEqual(shapes["layers.0.mixer.dt_proj.weight"], [128, 4])
        XCTAssertEqual(shapes["layers.0.mixer.dt_proj.bias"], [128])
        XCTAssertEqual(shapes["layers.0.mixer.A_log"], [128, 16])
        XCTAssertEqual(shapes["layers.0.mixer.A_imag"], [128, 16])
        XCTAssertEqual(shapes["layers.0.mixer.D"], [128])
        XCTAssertEqual(shapes["layers.0.mixer.out_proj.weight"], [64, 128])
        XCTAssertEqual(store.parameters.count, 10)
    }

    func testInitialisation() {
        let store = ParameterStore(backend: CPUBackend())
        let block = MambaBlock(store, prefix: "", config: MambaConfig(dModel: 32), seed: 9)
        // S4D-Real: A = −(1…N); Δ = softplus(bias) ∈ [1e-3, 0.1].
        let aLog = block.ALog.value.floats()
        XCTAssertEqual(Double(aLog[0]), 0, accuracy: 1e-7)
        XCTAssertEqual(Double(aLog[15]), log(16.0), accuracy: 1e-6)
        for bias in block.dtProj.bias!.value.floats() {
            let dt = log1p(exp(Double(bias)))
            XCTAssertGreaterThanOrEqual(dt, 0.001 * 0.999)
            XCTAssertLessThanOrEqual(dt, 0.1 * 1.001)
        }
        XCTAssertEqual(block.D.value.floats(), [Float](repeating: 1, count: 64))
        let complex = MambaBlock(ParameterStore(backend: CPUBackend()), prefix: "", config: MambaConfig(dModel: 32, isComplex: true), seed: 9)
        XCTAssertEqual(Double(complex.ALog.value.floats()[5]), log(0.5), accuracy: 1e-7)
        XCTAssertEqual(complex.AImag!.value.floats()[3], 3 * .pi, accuracy: 1e-5)
    }

    /// Running the sequence one step at a time gives the parallel forward's output at every
    /// position, for real and complex blocks, batched over streams.
    func testStepModeEqualsParallelForward() {
        for complex in [false, true] {
            let backend = CPUBackend()
            let store = ParameterStore(backend: backend)
            let cfg = MambaConfig(dModel: 24, dState: 8, isComplex: complex)
            let block = MambaBlock(store, prefix: "", config: cfg, seed: 21)
            store.finalize()
            let batch = 3, L = 37
            let x = backend.empty([batch * L, 24])
            backend.fillNormal(x, mean: 0, std: 1, seed: 5)
            let parallel = block(Variable(x), batch: batch, Tape.inference()).value.floats()
            let state = block.makeStepState(batch: batch)
            let xs = x.floats()
            let xt = backend.empty([batch, 24])
            var stepped = [Float](repeating: 0, count: parallel.count)
            for t in 0..<L {
                var row: [Float] = []
                for b in 0..<batch { row += xs[((b * L + t) * 24)..<((b * L + t + 1) * 24)] }
                xt.copy(from: row)
                let y = block.step(xt, state).floats()
                for b in 0..<batch { for c in 0..<24 { stepped[(b * L + t) * 24 + c] = y[b * 24 + c] } }
            }
            let err = Golden.relativeError(stepped, parallel)
            print("mamba step vs parallel (complex: \(complex)): rel err \(err)")
            XCTAssertLessThanOrEqual(err, 1e-5)
        }
    }
}
