import Foundation
import XCTest
@testable import Engine

final class OptimizerTests: XCTestCase {
    let backend = CPUBackend()

    /// Three steps of AdamW against a Double-precision transcription of PyTorch's update,
    /// with weight decay on one parameter, off on another, and an LR cap on a third.
    func testAdamWMatchesReferenceWithOptionsAndClipping() {
        let store = ParameterStore(backend: backend)
        let w = store.add("w", shape: [3], values: [0.5, -1, 2])
        let b = store.add("b", shape: [2], values: [0.1, -0.2], options: .noDecay)
        let a = store.add("A_log", shape: [2], values: [1, 2], options: .ssm)
        store.finalize()
        var cfg = AdamWOptimizer.Config(weightDecay: 0.1, gradientClip: 1.0)
        cfg.eps = 1e-8
        let opt = AdamWOptimizer(store: store, config: cfg)
        let lr: Float = 3e-3

        var p: [[Double]] = [[0.5, -1, 2], [0.1, -0.2], [1, 2]]
        var m = p.map { $0.map { _ in 0.0 } }, v = m
        let grads: [[[Float]]] = [[[0.3, -0.1, 2.0], [0.5, 0.5], [-1, 0.2]],
                                  [[0.01, 0.02, -0.03], [0, 1e-3], [0.3, 0.1]],
                                  [[1, 1, 1], [-2, 0], [0, 0]]]
        for (t, g) in grads.enumerated() {
            store.zeroGrad()
            w.grad!.copy(from: g[0]); b.grad!.copy(from: g[1]); a.grad!.copy(from: g[2])
            let norm = opt.update(learningRate: lr)
            let refNorm = g.flatMap { $0 }.reduce(0.0) { $0 + Double($1) * Double($1) }.squareRoot()
            XCTAssertEqual(norm, refNorm, accuracy: 1e-5)
            let clip = refNorm > 1 ? 1 / (refNorm + 1e-6) : 1
            for i in 0..<3 {
                let wd = i == 0 ? 0.1 : 0.0
                let lri = i == 2 ? min(Double(lr), 1e-3) : Double(lr)
                for j in 0..<p[i].count {
                    let gij = Double(g[i][j]) * clip
                    p[i][j] -= lri * wd * p[i][j]
                    m[i][j] = 0.9 * m[i][j] + 0.1 * gij
                    v[i][j] = 0.999 * v[i][j] + 0.001 * gij * gij
                    let mh = m[i][j] / (1 - pow(0.9, Double(t + 1))), vh = v[i][j] / (1 - pow(0.999, Double(t + 1)))
                    p[i][j] -= lri * mh / (vh.squareRoot() + 1e-8)
                }
            }
        }
        for (i, v) in [w, b, a].enumerated() {
            for (x, y) in zip(v.value.floats(), p[i]) { XCTAssertEqual(Double(x), y, accuracy: 1e-6, v.name!) }
        }
        XCTAssertEqual(opt.step, 3)
        // Runs: w alone (decay), b (no decay), A_log (ssm) — three optimiser calls.
        XCTAssertEqual(store.optionRuns.count, 3)
    }

    /// S4's convention (the default) against mamba_ssm's, parameter kind by kind.
    func testSSMTreatment() {
        let lr: Float = 2e-3
        let s4 = AdamWOptimizer.Config()
        var mamba = AdamWOptimizer.Config()
        mamba.ssmLearningRate = nil
        mamba.ssmWeightDecay = true
        let kinds: [(ParameterOptions, s4: (Float, Bool), mamba: (Float, Bool))] = [
            (ParameterOptions(), (lr, true), (lr, true)),
            (.noDecay, (lr, false), (lr, false)),
            (.ssm, (1e-3, false), (lr, false)),             // A_log, A_imag, dt_proj.bias
            (.ssmProjection, (1e-3, false), (lr, true)),    // dt_proj.weight
        ]
        for k in kinds {
            let a = s4.treatment(k.0, learningRate: lr), b = mamba.treatment(k.0, learningRate: lr)
            XCTAssertEqual(a.learningRate, k.s4.0); XCTAssertEqual(a.decays, k.s4.1)
            XCTAssertEqual(b.learningRate, k.mamba.0); XCTAssertEqual(b.decays, k.mamba.1)
        }
        // Below the cap the peak rate applies as it is.
        XCTAssertEqual(s4.treatment(.ssm, learningRate: 5e-4).learningRate, 5e-4)
    }

    func testLearningRateSchedule() {
        let s = LearningRateSchedule(peak: 1e-3, warmupSteps: 10, totalSteps: 110, decay: .cosine, finalFraction: 0.1)
        XCTAssertEqual(s.learningRate(at: 0), 1e-4, accuracy: 1e-9)
        XCTAssertEqual(s.learningRate(at: 9), 1e-3, accuracy: 1e-9)
        XCTAssertEqual(s.learningRate(at: 60), 0.55e-3, accuracy: 1e-7)
        XCTAssertEqual(s.learningRate(at: 110), 1e-4, accuracy: 1e-8)
        XCTAssertEqual(s.learningRate(at: 500), 1e-4, accuracy: 1e-8)
        XCTAssertEqual(LearningRateSchedule(peak: 2e-3, warmupSteps: 0, totalSteps: 5, decay: .constant).learningRate(at: 4), 2e-3)
    }

    func testEMA() {
        let store = ParameterStore(backend: backend)
        let p = store.add("p", shape: [2], values: [0, 0])
        store.finalize()
        let ema = ExponentialMovingAverage(store: store, decay: 0.9)
        p.value.copy(from: [Float(1), 2])
        ema.update()
        let avg = ema.average.floats()
        XCTAssertEqual(avg[0], 0.1, accuracy: 1e-6)
        XCTAssertEqual(avg[1], 0.2, accuracy: 1e-6)
    }

    /// A tiny MLP fits a fixed batch: the loss drops by orders of magnitude. Exercises
    /// the tape, the store, the optimiser and the schedule together.
    func testSmallMLPTrains() {
        let store = ParameterStore(backend: backend)
        func normal(_ shape: [Int], _ seed: UInt64, _ std: Float) -> [Float] {
            let t = backend.empty(shape); backend.fillNormal(t, mean: 0, std: std, seed: seed); return t.floats()
        }
        let w1 = store.add("fc1.weight", shape: [32, 8], values: normal([32, 8], 1, 0.35))
        let b1 = store.add("fc1.bias", shape: [32], values: [Float](repeating: 0, count: 32), options: .noDecay)
        let w2 = store.add("fc2.weight", shape: [4, 32], values: normal([4, 32], 2, 0.18))
        store.finalize()
        let opt = AdamWOptimizer(store: store, config: .init(weightDecay: 0, gradientClip: nil))
        let x = backend.tensor(normal([16, 8], 3, 1), shape: [16, 8])
        let targets = backend.indices((0..<16).map { Int32($0 % 4) }, shape: [16])
        var first = 0.0, last = 0.0
        for step in 0..<150 {
            store.zeroGrad()
            let tape = Tape()
            let h = Op.gelu(Op.linear(Variable(x), w1, b1, tape), tape)
            let loss = Op.crossEntropy(Op.linear(h, w2, nil, tape), targets: targets, tape)
            let l = Double(loss.value.floats()[0])
            if step == 0 { first = l }
            last = l
            tape.backward(from: loss)
            XCTAssertEqual(tape.count, 0)
            opt.update(learningRate: 1e-2)
        }
        XCTAssertEqual(first, log(4.0), accuracy: 0.5)
        XCTAssertLessThan(last, 0.05, "loss \(first) → \(last)")
    }
}
