import Engine
import Foundation
import Kernels
import Spectral
import XCTest
@testable import Layers

final class S4DTests: XCTestCase {
    /// s4d.py's state_dict, in its order: S4D's own D, then kernel (C assigned before the
    /// registered log_dt, log_A_real, A_imag), then output_linear's Conv1d.
    func testParameterNamesShapesAndOptionsMatchS4DStateDict() {
        let store = ParameterStore(backend: CPUBackend())
        _ = S4D(store, prefix: "layers.0", channels: 8, seed: 1, cache: FFTPlanCache())
        let expected: [(String, [Int], ParameterOptions)] = [
            ("layers.0.D", [8], .noDecay),
            ("layers.0.kernel.C", [8, 32, 2], ParameterOptions()),
            ("layers.0.kernel.log_dt", [8], .ssm),
            ("layers.0.kernel.log_A_real", [8, 32], .ssm),
            ("layers.0.kernel.A_imag", [8, 32], .ssm),
            ("layers.0.output_linear.0.weight", [16, 8, 1], ParameterOptions()),
            ("layers.0.output_linear.0.bias", [16], .noDecay),
        ]
        XCTAssertEqual(store.names, expected.map(\.0))
        XCTAssertEqual(store.parameters.map(\.shape), expected.map(\.1))
        XCTAssertEqual(store.options, expected.map(\.2))
        let bare = ParameterStore(backend: CPUBackend())
        _ = S4D(bare, prefix: "", channels: 2, config: S4DConfig(dState: 4), seed: 1, cache: FFTPlanCache())
        XCTAssertEqual(bare.names, ["D", "kernel.C", "kernel.log_dt", "kernel.log_A_real", "kernel.A_imag",
                                    "output_linear.0.weight", "output_linear.0.bias"])
    }

    /// s4d.py's initialisation: S4D-Lin A, log-uniform Δ, complex-normal C (E|C|² = 1),
    /// standard-normal D, Conv1d's U(±1/√H).
    func testInitialisation() {
        let H = 64
        let store = ParameterStore(backend: CPUBackend())  // owns the backend the parameters live on
        let layer = S4D(store, prefix: "", channels: H, seed: 7, cache: FFTPlanCache())
        XCTAssertTrue(layer.logAReal.value.floats().allSatisfy { abs(Double($0) - log(0.5)) < 1e-7 })
        let aImag = layer.AImag.value.floats()
        XCTAssertEqual(aImag[5], 5 * .pi, accuracy: 1e-5)
        XCTAssertEqual(aImag[32 + 31], 31 * .pi, accuracy: 1e-5)
        let logDt = layer.logDt.value.floats().map(Double.init)
        XCTAssertTrue(logDt.allSatisfy { $0 >= log(0.001) - 1e-6 && $0 <= log(0.1) + 1e-6 })
        XCTAssertGreaterThan(logDt.max()! - logDt.min()!, 3)  // spread over the range, not constant
        func std(_ x: [Float]) -> Double {
            let m = x.reduce(0.0) { $0 + Double($1) } / Double(x.count)
            return (x.reduce(0.0) { $0 + (Double($1) - m) * (Double($1) - m) } / Double(x.count)).squareRoot()
        }
        XCTAssertEqual(std(layer.C.value.floats()), 0.5.squareRoot(), accuracy: 0.03)  // 4096 samples
        XCTAssertEqual(std(layer.D.value.floats()), 1, accuracy: 0.3)  // 64 samples
        let bound = 1 / Float(H).squareRoot()
        for w in [layer.outputWeight, layer.outputBias] {
            let v = w.value.floats()
            XCTAssertTrue(v.allSatisfy { abs($0) <= bound })
            XCTAssertGreaterThan(v.map(abs).max()!, 0.9 * bound)
        }
    }

    /// Every parameter's and the input's gradient against fourth-order finite differences of
    /// the whole layer (B = 2, L = 16, H = 4, N = 8): tiedDropout, GELU, GLU and the D skip
    /// included. In the first case Δ is initialised in [0.05, 0.5] so that the SSM, not the
    /// skip, shapes the output over 16 steps; its phases dt·A_imag·l reach 70 rad, so the
    /// loss oscillates fast in log_dt and needs a small step (h = 5e-3; 3e-2 gives 1.5e-2
    /// from truncation). The second runs s4d.py's default Δ range, where the A gradients are
    /// small and a larger step (3e-2) keeps Float32 rounding out (5e-3 gives 1.3e-3).
    func testGradientsMatchFiniteDifferences() {
        let cases: [(String, S4DConfig, UInt64?, Float)] = [
            ("dt [0.05, 0.5], dropout 0.25", S4DConfig(dState: 8, dtMin: 0.05, dtMax: 0.5, dropout: 0.25), 1234, 5e-3),
            ("dt [0.001, 0.1]", S4DConfig(dState: 8), nil, 3e-2),
        ]
        for (label, config, dropoutSeed, step) in cases {
            let backend = CPUBackend(threads: 2)
            let store = ParameterStore(backend: backend)
            let B = 2, L = 16, H = 4
            let layer = S4D(store, prefix: "s4", channels: H, config: config, seed: 3, cache: FFTPlanCache())
            store.finalize()
            let x = backend.empty([B * L, H])
            backend.fillNormal(x, mean: 0, std: 1, seed: 9)
            let input = Variable(x, requiresGrad: true)
            let leaves = store.parameters.map { ($0.name!, $0) } + [("input", input)]
            let errors = LayerGradCheck(backend: backend, step: step).errors(leaves: leaves) { tape in
                layer(input, batch: B, tape, dropoutSeed: dropoutSeed)
            }
            print("S4D gradcheck (\(label)): " + errors.map { "d\($0.0) \(format($0.1))" }.joined(separator: ", "))
            for (name, e) in errors { XCTAssertLessThanOrEqual(e, 1e-3, "\(label): d\(name)") }
        }
    }

    /// Running the sequences one step at a time (batch 3) gives the parallel forward's
    /// output at every position within 1e-4 relative (per position, over batch and channels),
    /// over a length (1000) where slow modes still carry state; N = 12 (six modes: a padded
    /// lane group); no allocation per step.
    func testStepModeMatchesParallelForward() {
        let backend = CPUBackend(threads: 2)
        let store = ParameterStore(backend: backend)
        let B = 3, L = 1000, H = 6
        let layer = S4D(store, prefix: "", channels: H, config: S4DConfig(dState: 12), seed: 13, cache: FFTPlanCache())
        store.finalize()
        let x = backend.empty([B * L, H])
        backend.fillNormal(x, mean: 0, std: 1, seed: 2)
        let parallel = layer(Variable(x), batch: B, Tape.inference()).value.floats()
        let xs = x.floats()
        let state = layer.makeStepState(batch: B)
        let ut = backend.empty([B, H])
        var worst = (error: 0.0, t: -1)
        var peakDuringSteps = 0
        for t in 0..<L {
            var row = [Float](repeating: 0, count: B * H)
            for b in 0..<B { for h in 0..<H { row[b * H + h] = xs[(b * L + t) * H + h] } }
            ut.copy(from: row)
            if t == 1 { backend.resetPeakMemory() }
            let y = layer.step(ut, state).floats()
            if t >= 1 { peakDuringSteps = max(peakDuringSteps, backend.memoryInUse.peak) }
            var num = 0.0, den = 0.0
            for b in 0..<B {
                for h in 0..<H {
                    let p = Double(parallel[(b * L + t) * H + h]), s = Double(y[b * H + h])
                    num += (s - p) * (s - p)
                    den += p * p
                }
            }
            let e = (num / max(den, 1e-30)).squareRoot()
            if e > worst.error { worst = (e, t) }
        }
        print("S4D step vs parallel: max per-position rel err \(format(worst.error)) at t = \(worst.t)")
        XCTAssertLessThanOrEqual(worst.error, 1e-4)
        let liveAfter = backend.memoryInUse.live
        XCTAssertLessThanOrEqual(peakDuringSteps, liveAfter, "a step allocated tensors")

        // reset() forgets the streams: the first step again equals position 0.
        state.reset()
        var row = [Float](repeating: 0, count: B * H)
        for b in 0..<B { for h in 0..<H { row[b * H + h] = xs[b * L * H + h] } }
        ut.copy(from: row)
        let first = layer.step(ut, state).floats()
        for b in 0..<B { for h in 0..<H { XCTAssertEqual(first[b * H + h], parallel[b * L * H + h], accuracy: 1e-5) } }
    }

    /// DropoutNd(tie = True): per (batch, channel) either every position is dropped or
    /// every position is scaled by 1/(1 − p); without a seed the layer is deterministic.
    func testTiedDropoutMaskIsSharedOverTheSequence() {
        let backend = CPUBackend(threads: 2)
        let B = 3, L = 50, C = 40
        let x = backend.tensor((0..<(B * L * C)).map { Float($0 % 7) + 1 }, shape: [B * L, C])
        let y = Op.tiedDropout(Variable(x), batch: B, p: 0.5, seed: 42, Tape.inference()).value.floats()
        let xs = x.floats()
        var dropped = 0
        for b in 0..<B {
            for c in 0..<C {
                let ratios = (0..<L).map { t in y[(b * L + t) * C + c] / xs[(b * L + t) * C + c] }
                XCTAssertTrue(ratios.allSatisfy { $0 == ratios[0] }, "mask varies over positions at b \(b), c \(c)")
                XCTAssertTrue(ratios[0] == 0 || ratios[0] == 2)
                if ratios[0] == 0 { dropped += 1 }
            }
        }
        XCTAssertGreaterThan(dropped, 30)  // of 120, p = ½
        XCTAssertLessThan(dropped, 90)
        XCTAssertEqual(Op.tiedDropout(Variable(x), batch: B, p: 0.5, seed: nil, Tape.inference()).value.floats(), xs)
    }

    /// Missing keys decode to the defaults (s4d.py's: N = 64, Δ ∈ [1e-3, 0.1], no dropout).
    func testConfigDecodesWithDefaults() throws {
        let c = try JSONDecoder().decode(S4DConfig.self, from: Data(#"{"dState": 16}"#.utf8))
        XCTAssertEqual(c, S4DConfig(dState: 16))
        XCTAssertEqual(S4DConfig(), S4DConfig(dState: 64, dtMin: 0.001, dtMax: 0.1, dropout: 0))
        let round = try JSONDecoder().decode(S4DConfig.self, from: JSONEncoder().encode(S4DConfig(dropout: 0.1)))
        XCTAssertEqual(round.dropout, 0.1)
    }
}
