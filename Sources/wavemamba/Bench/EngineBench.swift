import COpenBLAS
import Engine
import Foundation
import Kernels

/// `bench engine`: the engine's overhead over raw BLAS on the models' matrix shapes, the
/// memory-bound kernels against memcpy bandwidth measured in the same run, and one
/// training step of a small MLP.
struct EngineBench {
    let backend: CPUBackend
    let quick: Bool

    func run() -> BenchReport {
        var report = BenchReport(title: "wavemamba bench engine", threads: backend.pool.threads)
        let repeats = quick ? 3 : 7
        let copyGBps = Bandwidth.memcpyGBps(bytes: quick ? 32 << 20 : 256 << 20, repeats: repeats, pool: backend.pool)
        report.add("memory", "memcpy (baseline)", ["GB/s": copyGBps, "ratio": 1])

        // Matrix shapes of SaShiMi-small (d_model 64, expand 2, d_state 16) at batch 8 × 16000
        // samples: the outer stage's in/out/x projections, and the pooled stages'.
        let tokens = quick ? 8 * 2000 : 8 * 16000
        let shapes: [(String, rows: Int, inF: Int, outF: Int)] = [
            ("in_proj 64→256 (outer)", tokens, 64, 256),
            ("out_proj 128→64 (outer)", tokens, 128, 64),
            ("x_proj 128→68 (complex)", tokens, 128, 68),
            ("in_proj 128→512 (pool 4)", tokens / 4, 128, 512),
            ("in_proj 256→1024 (pool 16)", tokens / 16, 256, 1024),
            ("head 64→256", tokens, 64, 256),
        ]
        for (name, rows, inF, outF) in shapes {
            let x = backend.empty([rows, inF]), w = backend.empty([outF, inF])
            backend.fillNormal(x, mean: 0, std: 1, seed: 1)
            backend.fillNormal(w, mean: 0, std: 0.1, seed: 2)
            let flops = 2.0 * Double(rows * inF * outF)
            let raw = backend.empty([rows, outF])
            let tRaw = Bandwidth.bestTime(repeats: repeats) {
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(rows), Int32(outF), Int32(inF), 1,
                            x.pointer, Int32(inF), w.pointer, Int32(inF), 0, raw.pointer, Int32(outF))
            }
            let xv = Variable(x), wv = Variable(w)
            let tEngine = Bandwidth.bestTime(repeats: repeats) {
                _ = Op.linear(xv, wv, nil, Tape.inference())
            }
            report.add("matmul", name, ["GFLOP/s engine": flops / tEngine / 1e9, "GFLOP/s sgemm": flops / tRaw / 1e9,
                                        "ratio": tRaw / tEngine])
        }

        // Memory-bound kernels on (batch 8 × L × 64 channels), far larger than the caches.
        let rows = quick ? 8 * 4000 : 8 * 16000, c = 64, n = rows * c
        let x = backend.empty([rows, c]), y = backend.empty([rows, c]), dy = backend.empty([rows, c]), dx = backend.empty([rows, c])
        for (t, s) in [(x, 3), (y, 4), (dy, 5)] { backend.fillNormal(t, mean: 0, std: 1, seed: UInt64(s)) }
        let wLN = backend.tensor([Float](repeating: 1, count: c), shape: [c]), bLN = backend.zeros([c])
        let mean = backend.empty([rows]), rstd = backend.empty([rows])
        let dW = backend.zeros([c]), dB = backend.zeros([c])
        let convW = backend.empty([c, 1, 4]); backend.fillNormal(convW, mean: 0, std: 0.5, seed: 6)
        let dConvW = backend.zeros([c, 1, 4])
        let f = 4 // bytes per float
        let kernels: [(String, Int, () -> Void)] = [
            ("SiLU fwd", 2 * n * f, { backend.activation(.silu, x: x, y: y) }),
            ("SiLU bwd", 3 * n * f, { backend.activationBackward(.silu, saved: x, dy: dy, dx: dx, accumulate: false) }),
            ("softplus fwd", 2 * n * f, { backend.activation(.softplus, x: x, y: y) }),
            ("add", 3 * n * f, { backend.add(x, dy, out: y) }),
            ("mul", 3 * n * f, { backend.mul(x, dy, out: y, accumulate: false) }),
            ("LayerNorm fwd", 2 * n * f, { backend.layerNorm(x: x, weight: wLN, bias: bLN, y: y, mean: mean, rstd: rstd) }),
            ("LayerNorm bwd", 3 * n * f, { backend.layerNormBackward(dy: dy, x: x, weight: wLN, mean: mean, rstd: rstd, dx: dx, dWeight: dW, dBias: dB) }),
            ("RMSNorm fwd", 2 * n * f, { backend.rmsNorm(x: x, weight: wLN, y: y, rstd: rstd) }),
            ("causal conv1d fwd (K=4, SiLU)", 2 * n * f, { backend.causalConv1d(x: x, weight: convW, bias: nil, y: y, batch: 8, silu: true) }),
            ("causal conv1d bwd (K=4, SiLU)", 3 * n * f, {
                backend.causalConv1dBackward(dy: dy, x: x, weight: convW, bias: nil, dx: dx, dWeight: dConvW, dBias: nil, batch: 8, silu: true)
            }),
        ]
        for (name, bytes, body) in kernels {
            let gbps = Bandwidth.measureGBps(bytesMoved: bytes, repeats: repeats, body)
            report.add("memory", name, ["GB/s": gbps, "ratio": gbps / copyGBps])
        }
        // Cross-entropy over 256 classes reads the logits once (fwd) and writes dlogits (bwd).
        let ceRows = rows / 4
        let logits = backend.empty([ceRows, 256]); backend.fillNormal(logits, mean: 0, std: 1, seed: 8)
        let dLogits = backend.empty([ceRows, 256]), lse = backend.empty([ceRows])
        let targets = backend.indices((0..<ceRows).map { Int32($0 % 256) }, shape: [ceRows])
        let ceF = Bandwidth.measureGBps(bytesMoved: ceRows * 256 * f, repeats: repeats) { _ = backend.crossEntropy(logits: logits, targets: targets, logSumExp: lse) }
        report.add("memory", "cross-entropy fwd (V=256)", ["GB/s": ceF, "ratio": ceF / copyGBps])
        let ceB = Bandwidth.measureGBps(bytesMoved: 2 * ceRows * 256 * f, repeats: repeats) {
            backend.crossEntropyBackward(logits: logits, targets: targets, logSumExp: lse, scale: 1, dLogits: dLogits, accumulate: false)
        }
        report.add("memory", "cross-entropy bwd (V=256)", ["GB/s": ceB, "ratio": ceB / copyGBps])

        // One training step of a small MLP (256 → 1024 → 256 classes, 4096 rows).
        let store = ParameterStore(backend: backend)
        let w1 = store.add("fc1.weight", shape: [1024, 256]) { backend.fillNormal($0, mean: 0, std: 0.06, seed: 11) }
        let b1 = store.add("fc1.bias", shape: [1024], values: [Float](repeating: 0, count: 1024), options: .noDecay)
        let w2 = store.add("fc2.weight", shape: [256, 1024]) { backend.fillNormal($0, mean: 0, std: 0.03, seed: 12) }
        store.finalize()
        let opt = AdamWOptimizer(store: store)
        let mlpRows = quick ? 1024 : 4096
        let input = backend.empty([mlpRows, 256]); backend.fillNormal(input, mean: 0, std: 1, seed: 13)
        let labels = backend.indices((0..<mlpRows).map { Int32($0 % 256) }, shape: [mlpRows])
        let stepTime = Bandwidth.bestTime(repeats: repeats) {
            store.zeroGrad()
            let tape = Tape()
            let h = Op.gelu(Op.linear(Variable(input), w1, b1, tape), tape)
            let loss = Op.crossEntropy(Op.linear(h, w2, nil, tape), targets: labels, tape)
            tape.backward(from: loss)
            opt.update(learningRate: 1e-3)
        }
        let flops = 6.0 * Double(mlpRows) * Double(256 * 1024 * 2)
        report.add("training step", "MLP 256→1024→256, \(mlpRows) rows", ["ms": stepTime * 1e3, "GFLOP/s": flops / stepTime / 1e9])
        report.notes.append("ratio (matmul) = raw cblas_sgemm time / engine time on the same shape; target ≥ 0.85")
        report.notes.append("ratio (memory) = kernel GB/s / memcpy GB/s, both counting bytes read + written; target ≥ 0.6")
        return report
    }

    static let columns: [String: [String]] = [
        "matmul": ["GFLOP/s engine", "GFLOP/s sgemm", "ratio"],
        "memory": ["GB/s", "ratio"],
        "training step": ["ms", "GFLOP/s"],
    ]
}
