import Engine
import Foundation
import Kernels

/// Every Backend method of the CUDA backend against the CPU backend on the same inputs.
/// `body` builds its inputs on the backend it is given (from the same host values) and
/// returns the tensors to compare; it runs once on each backend.
public struct KernelChecks {
    public let gpu: any Backend
    public let cpu: any Backend
    public var tolerance = 1e-4

    public init(gpu: any Backend, cpu: any Backend) {
        self.gpu = gpu
        self.cpu = cpu
    }

    func check(_ name: String, tolerance tol: Double? = nil, _ body: (any Backend) -> [Tensor]) -> CheckOutcome {
        let g = body(gpu).map { $0.floats() }, c = body(cpu).map { $0.floats() }
        var worst = 0.0, at = 0
        for i in 0..<c.count {
            let e = relativeError(g[i], c[i])
            if e > worst || e.isNaN { worst = e.isNaN ? .infinity : e; at = i }
        }
        return CheckOutcome(name: name, error: worst, tolerance: tol ?? tolerance, detail: c.count > 1 ? "worst output #\(at)" : "")
    }

    func t(_ b: any Backend, _ shape: [Int], seed: UInt64, _ lo: Float = -1, _ hi: Float = 1) -> Tensor {
        b.tensor(hostValues(shape.reduce(1, *), seed: seed, lo, hi), shape: shape)
    }

    public func all() -> [CheckOutcome] {
        var out: [CheckOutcome] = []
        out.append(check("fill + copy2D (strided, accumulate)") { b in
            let big = t(b, [7, 10], seed: 1)
            b.fill(big.columns(2..<5), value: 0.5)
            let dst = t(b, [7, 4], seed: 2)
            b.copy2D(from: big.columns(1..<5), to: dst, accumulate: true)
            let dense = b.empty([7, 3]); b.copy2D(from: big.columns(3..<6), to: dense, accumulate: false)
            return [big, dst, dense]
        })
        out.append(check("linear (column-slice x, bias)") { b in
            let x = t(b, [37, 50], seed: 3), w = t(b, [29, 20], seed: 4), bias = t(b, [29], seed: 5)
            let y = b.empty([37, 29]); b.linear(x: x.columns(10..<30), weight: w, bias: bias, y: y)
            let y2 = t(b, [37, 40], seed: 6); b.linear(x: x.columns(0..<20), weight: w, bias: nil, y: y2.columns(5..<34))
            return [y, y2]
        })
        out.append(check("linearBackward (dx, dW, dBias accumulate)") { b in
            let x = t(b, [37, 50], seed: 7), w = t(b, [29, 20], seed: 8), dy = t(b, [37, 29], seed: 9)
            let dx = t(b, [37, 50], seed: 10), dw = t(b, [29, 20], seed: 11), db = t(b, [29], seed: 12)
            b.linearBackward(dy: dy, x: x.columns(5..<25), weight: w, dx: dx.columns(5..<25), dWeight: dw, dBias: db)
            return [dx, dw, db]
        })
        for (ta, tb) in [(false, false), (true, false), (false, true), (true, true)] {
            out.append(check("matmul batched transA \(ta) transB \(tb)") { b in
                let a = t(b, ta ? [3, 17, 13] : [3, 13, 17], seed: 13), bb = t(b, tb ? [3, 11, 17] : [3, 17, 11], seed: 14)
                let c = t(b, [3, 13, 11], seed: 15)
                b.matmul(a, transA: ta, bb, transB: tb, c: c, alpha: 0.7, beta: 0.3)
                return [c]
            })
        }
        for kind in [ActivationKind.identity, .silu, .softplus, .exp, .sigmoid, .tanh, .gelu, .relu] {
            out.append(check("activation \(kind) forward + backward") { b in
                let x = t(b, [1000], seed: 16, -6, 6), y = b.empty([1000])
                b.activation(kind, x: x, y: y)
                let dy = t(b, [1000], seed: 17), dx = t(b, [1000], seed: 18)
                b.activationBackward(kind, saved: kind.backwardUsesOutput ? y : x, dy: dy, dx: dx, accumulate: true)
                let dx2 = b.empty([1000])
                b.activationBackward(kind, saved: kind.backwardUsesOutput ? y : x, dy: dy, dx: dx2, accumulate: false)
                return [y, dx, dx2]
            })
        }
        out.append(check("add, mul, scale, mulRowVector (+ backward), columnSums") { b in
            let x = t(b, [33, 21], seed: 19), v = t(b, [33, 21], seed: 20), r = t(b, [21], seed: 21)
            let s = b.empty([33, 21]); b.add(x, v, out: s)
            let m = t(b, [33, 21], seed: 22); b.mul(x, v, out: m, accumulate: true)
            let sc = t(b, [33, 21], seed: 23); b.scale(x, by: -1.7, out: sc, accumulate: true)
            let mr = b.empty([33, 21]); b.mulRowVector(x, r, out: mr)
            let dx = t(b, [33, 21], seed: 24), dv = t(b, [21], seed: 25)
            b.mulRowVectorBackward(dy: v, x: x, v: r, dx: dx, dv: dv)
            let wide = t(b, [300, 40], seed: 26), cs = t(b, [17], seed: 27)
            b.columnSums(wide.columns(3..<20), out: cs, accumulate: true)
            return [s, m, sc, mr, dx, dv, cs]
        })
        out.append(check("sum, sumOfSquares") { b in
            let x = t(b, [100_003], seed: 28)
            return [b.tensor([Float(b.sum(x)), Float(b.sumOfSquares(x))], shape: [2])]
        })
        out.append(check("layerNorm forward + backward") { b in
            let x = t(b, [45, 70], seed: 29, -3, 3), w = t(b, [70], seed: 30), bias = t(b, [70], seed: 31)
            let y = b.empty([45, 70]), mean = b.empty([45]), rstd = b.empty([45])
            b.layerNorm(x: x, weight: w, bias: bias, y: y, mean: mean, rstd: rstd)
            let dy = t(b, [45, 70], seed: 32), dx = t(b, [45, 70], seed: 33), dw = t(b, [70], seed: 34), db = t(b, [70], seed: 35)
            b.layerNormBackward(dy: dy, x: x, weight: w, mean: mean, rstd: rstd, dx: dx, dWeight: dw, dBias: db)
            return [y, mean, rstd, dx, dw, db]
        })
        out.append(check("rmsNorm forward + backward") { b in
            let x = t(b, [45, 70], seed: 36, -3, 3), w = t(b, [70], seed: 37)
            let y = b.empty([45, 70]), rstd = b.empty([45])
            b.rmsNorm(x: x, weight: w, y: y, rstd: rstd)
            let dy = t(b, [45, 70], seed: 38), dx = t(b, [45, 70], seed: 39), dw = t(b, [70], seed: 40)
            b.rmsNormBackward(dy: dy, x: x, weight: w, rstd: rstd, dx: dx, dWeight: dw)
            return [y, rstd, dx, dw]
        })
        out.append(check("crossEntropy (+ ignored row), backward, softmax") { b in
            let logits = t(b, [40, 256], seed: 41, -4, 4)
            var targets = hostValues(40, seed: 42, 0, 256).map { Int32($0) }
            targets[3] = -1
            let tt = b.indices(targets, shape: [40]), lse = b.empty([40])
            let loss = b.crossEntropy(logits: logits, targets: tt, logSumExp: lse)
            let dl = t(b, [40, 256], seed: 43)
            b.crossEntropyBackward(logits: logits, targets: tt, logSumExp: lse, scale: 1.0 / 40, dLogits: dl, accumulate: true)
            let probs = b.empty([40, 256]); b.softmax(logits: logits, probs: probs, temperature: 0.8)
            return [b.tensor([Float(loss)], shape: [1]), lse, dl, probs]
        })
        out.append(check("embedding forward + backward (repeated indices)") { b in
            let table = t(b, [50, 24], seed: 44)
            let idx = b.indices(hostValues(64, seed: 45, 0, 50).map { Int32($0) }, shape: [64])
            let o = b.empty([64, 24]); b.embedding(table: table, indices: idx, out: o)
            let d = t(b, [50, 24], seed: 46); b.embeddingBackward(dOut: t(b, [64, 24], seed: 47), indices: idx, dTable: d)
            return [o, d]
        })
        for silu in [false, true] {
            out.append(check("causalConv1d forward + backward (silu \(silu), column slices)") { b in
                let batch = 3, L = 70, C = 40, K = 4
                let xw = t(b, [batch * L, 2 * C], seed: 48), w = t(b, [C, 1, K], seed: 49), bias = t(b, [C], seed: 50)
                let x = xw.columns(C..<(2 * C))
                let y = b.empty([batch * L, C]); b.causalConv1d(x: x, weight: w, bias: bias, y: y, batch: batch, silu: silu)
                let dy = t(b, [batch * L, C], seed: 51), dxw = t(b, [batch * L, 2 * C], seed: 52)
                let dw = t(b, [C, 1, K], seed: 53), db = t(b, [C], seed: 54)
                b.causalConv1dBackward(dy: dy, x: x, weight: w, bias: bias, dx: dxw.columns(C..<(2 * C)), dWeight: dw, dBias: db,
                                       batch: batch, silu: silu)
                let state = t(b, [batch, C, K - 1], seed: 55), ys = b.empty([batch, C])
                b.causalConv1dStep(x: t(b, [batch, 2 * C], seed: 56).columns(0..<C), state: state, weight: w, bias: bias, y: ys, silu: silu)
                return [y, dxw, dw, db, state, ys]
            })
        }
        out.append(check("transpose (accumulate)") { b in
            let x = t(b, [3, 37, 45], seed: 57), o = t(b, [3, 45, 37], seed: 58)
            b.transpose(x, batch: 3, rows: 37, cols: 45, out: o, accumulate: true)
            return [o]
        })
        out.append(check("fillNormal, fillUniform, dropout (+ backward): same streams") { b in
            let n = b.empty([4099]); b.fillNormal(n, mean: 0.5, std: 2, seed: 99)
            let u = b.empty([4099]); b.fillUniform(u, low: -3, high: 1, seed: 98)
            let x = t(b, [4099], seed: 59), y = b.empty([4099]); b.dropout(x: x, y: y, p: 0.3, seed: 97)
            let dx = t(b, [4099], seed: 60); b.dropoutBackward(dy: x, dx: dx, p: 0.3, seed: 97, accumulate: true)
            return [n, u, y, dx]
        })
        out.append(check("dropout with a sample offset (+ backward)") { b in
            // A data-parallel rank's call (offset = its first element) must give the same mask as
            // the matching part of one whole-batch call; offsets past 2³² exercise the 64-bit counter.
            let x = t(b, [2, 1031], seed: 71), whole = b.empty([2, 1031]); b.dropout(x: x, y: whole, p: 0.4, seed: 5, offset: 0)
            let part = b.empty([1, 1031]); b.dropout(x: x.slice(rows: 1..<2), y: part, p: 0.4, seed: 5, offset: 1031)
            let far = b.empty([1031]); b.dropout(x: x.reshaped([2062]).slice(rows: 0..<1031), y: far, p: 0.4, seed: 5, offset: (1 << 32) + 3)
            let dx = t(b, [1031], seed: 72)
            b.dropoutBackward(dy: x.reshaped([2062]).slice(rows: 0..<1031), dx: dx, p: 0.4, seed: 5, offset: (1 << 32) + 3, accumulate: true)
            return [whole, part, far, dx]
        })
        out.append(check("glu forward + backward") { b in
            let x = t(b, [31, 48], seed: 61), y = b.empty([31, 24]); b.glu(x: x, y: y)
            let dx = t(b, [31, 48], seed: 62); b.gluBackward(dy: t(b, [31, 24], seed: 63), x: x, dx: dx, accumulate: true)
            return [y, dx]
        })
        out.append(check("adamW (3 steps, decay, clip scale), ema") { b in
            let p = t(b, [5000], seed: 64), m = b.zeros([5000]), v = b.zeros([5000]), avg = t(b, [5000], seed: 65)
            for step in 1...3 {
                b.adamW(parameters: p, gradients: t(b, [5000], seed: 66 + UInt64(step)), m: m, v: v, step: step, learningRate: 1e-2,
                        beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.01, gradientScale: 0.7)
                b.ema(avg, toward: p, decay: 0.9)
            }
            return [p, m, v, avg]
        })
        out += ScanChecks(gpu: gpu, cpu: cpu).all()
        return out
    }
}
