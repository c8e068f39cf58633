import XCTest
@testable import Kernels

final class GemmTests: XCTestCase {
    /// Naive C = alpha·op(A)·op(B) + beta·C in double.
    func refGemm(_ tA: Bool, _ tB: Bool, _ m: Int, _ n: Int, _ k: Int, _ alpha: Double, _ a: [Float], _ lda: Int,
                 _ b: [Float], _ ldb: Int, _ beta: Double, _ c: [Float], _ ldc: Int) -> [Double] {
        var out = c.map(Double.init)
        for i in 0..<m {
            for j in 0..<n {
                var s = 0.0
                for p in 0..<k {
                    let av = tA ? a[p * lda + i] : a[i * lda + p]
                    let bv = tB ? b[j * ldb + p] : b[p * ldb + j]
                    s += Double(av) * Double(bv)
                }
                out[i * ldc + j] = alpha * s + beta * Double(c[i * ldc + j])
            }
        }
        return out
    }

    func testSgemmAllTransposes() {
        var rng = TestRNG(1)
        var worst = 0.0
        for (m, n, k) in [(1, 1, 1), (3, 5, 7), (37, 13, 9), (17, 64, 130)] {
            for tA in [false, true] {
                for tB in [false, true] {
                    for (alpha, beta) in [(Float(1), Float(0)), (0.5, 1.5)] {
                        let lda = (tA ? m : k) + 2, ldb = (tB ? k : n) + 1, ldc = n + 3
                        let a = rng.floats((tA ? k : m) * lda), b = rng.floats((tB ? n : k) * ldb), c0 = rng.floats(m * ldc)
                        let cb = Buf(c0), ab = Buf(a), bb = Buf(b)
                        Gemm.sgemm(transA: tA, transB: tB, m: m, n: n, k: k, alpha: alpha, a: ab.c, lda: lda,
                                   b: bb.c, ldb: ldb, beta: beta, c: cb.p, ldc: ldc)
                        let ref = refGemm(tA, tB, m, n, k, Double(alpha), a, lda, b, ldb, Double(beta), c0, ldc)
                        let e = normRelErr(cb.a, ref)
                        worst = max(worst, e)
                        XCTAssertLessThan(e, 1e-5, "m\(m) n\(n) k\(k) tA\(tA) tB\(tB)")
                    }
                }
            }
        }
        print("sgemm max norm-rel err: \(worst)")
    }

    func testBatchedBothStrategies() {
        var rng = TestRNG(2)
        let (batch, m, n, k) = (5, 7, 9, 11)
        let a = rng.floats(batch * m * k), b = rng.floats(k * n) // B broadcast (stride 0)
        var ref = [Double]()
        for i in 0..<batch {
            ref += refGemm(false, false, m, n, k, 1, Array(a[(i * m * k)..<((i + 1) * m * k)]), k, b, n, 0,
                           [Float](repeating: 0, count: m * n), n)
        }
        let ab = Buf(a), bb = Buf(b)
        for strategy in [Gemm.BatchStrategy.blas, .pool, .automatic] {
            let c = Buf(count: batch * m * n, value: .nan)
            Gemm.batched(transA: false, transB: false, batch: batch, m: m, n: n, k: k, a: ab.c, lda: k, strideA: m * k,
                         b: bb.c, ldb: n, strideB: 0, c: c.p, ldc: n, strideC: m * n, strategy: strategy, pool: pool2)
            let e = normRelErr(c.a, ref)
            print("batched \(strategy): err \(e)")
            XCTAssertLessThan(e, 1e-5)
        }
    }

    func refLinear(_ x: [Double], _ w: [Double], _ b: [Double]?, rows: Int, inF: Int, outF: Int) -> [Double] {
        var y = [Double](repeating: 0, count: rows * outF)
        for r in 0..<rows {
            for o in 0..<outF {
                var s = b?[o] ?? 0
                for i in 0..<inF { s += x[r * inF + i] * w[o * inF + i] }
                y[r * outF + o] = s
            }
        }
        return y
    }

    func testLinearForwardBackward() {
        var rng = TestRNG(3)
        for (rows, inF, outF) in [(1, 1, 1), (3, 7, 5), (37, 13, 20)] {
            let x = rng.floats(rows * inF), w = rng.floats(outF * inF), b = rng.floats(outF)
            let y = Buf(count: rows * outF, value: .nan)
            let xb = Buf(x), wb = Buf(w), bb = Buf(b)
            Gemm.linearForward(x: xb.c, weight: wb.c, bias: bb.c, y: y.p, rows: rows, inFeatures: inF,
                               outFeatures: outF, pool: pool2)
            let xd = x.map(Double.init), wd = w.map(Double.init), bd = b.map(Double.init)
            let fe = normRelErr(y.a, refLinear(xd, wd, bd, rows: rows, inF: inF, outF: outF))
            XCTAssertLessThan(fe, 1e-5)
            // Backward against finite differences of L = Σ y·r (double reference forward).
            let r = rng.floats(rows * outF).map(Double.init)
            let dy = Buf(r.map(Float.init))
            let init1: Float = 0.25
            let dx = Buf(count: rows * inF, value: init1), dw = Buf(count: outF * inF, value: init1), db = Buf(count: outF, value: init1)
            Gemm.linearBackward(dy: dy.c, x: xb.c, weight: wb.c, dx: dx.p, dWeight: dw.p, dBias: db.p,
                                rows: rows, inFeatures: inF, outFeatures: outF, pool: pool2)
            let gx = fdGradient(xd) { dotD(refLinear($0, wd, bd, rows: rows, inF: inF, outF: outF), r) }
            let gw = fdGradient(wd) { dotD(refLinear(xd, $0, bd, rows: rows, inF: inF, outF: outF), r) }
            let gb = fdGradient(bd) { dotD(refLinear(xd, wd, $0, rows: rows, inF: inF, outF: outF), r) }
            let ex = normRelErr(dx.a, gx.map { $0 + 0.25 }), ew = normRelErr(dw.a, gw.map { $0 + 0.25 })
            let eb = normRelErr(db.a, gb.map { $0 + 0.25 })
            print("linear \(rows)x\(inF)->\(outF): fwd \(fe) dx \(ex) dW \(ew) db \(eb)")
            XCTAssertLessThan(max(ex, ew, eb), 1e-4)
            // Overwrite mode.
            let dx2 = Buf(count: rows * inF, value: .nan)
            Gemm.linearBackward(dy: dy.c, x: xb.c, weight: wb.c, dx: dx2.p, dWeight: nil, dBias: nil,
                                rows: rows, inFeatures: inF, outFeatures: outF, accumulate: false, pool: pool2)
            XCTAssertLessThan(normRelErr(dx2.a, gx), 1e-4)
        }
    }

    /// Prints the timing behind `Gemm.batchedPoolThreshold` (not an assertion).
    func testBatchedStrategyTiming() throws {
        guard ProcessInfo.processInfo.environment["WAVEMAMBA_BENCH"] != nil else { throw XCTSkip("set WAVEMAMBA_BENCH=1") }
        var rng = TestRNG(4)
        for (batch, m, n, k) in [(64, 16, 16, 16), (64, 32, 32, 32), (32, 64, 64, 64), (16, 128, 128, 128), (8, 256, 256, 256)] {
            let a = Buf(rng.floats(batch * m * k)), b = Buf(rng.floats(batch * k * n)), c = Buf(count: batch * m * n)
            var times = [String]()
            for s in [Gemm.BatchStrategy.blas, .pool] {
                let t = Bandwidth.bestTime(repeats: 5) {
                    Gemm.batched(transA: false, transB: false, batch: batch, m: m, n: n, k: k, a: a.c, lda: k, strideA: m * k,
                                 b: b.c, ldb: n, strideB: k * n, c: c.p, ldc: n, strideC: m * n, strategy: s, pool: pool2)
                }
                times.append("\(s) \(String(format: "%.3f", t * 1e3)) ms")
            }
            print("batched \(batch)x(\(m),\(n),\(k)): \(times.joined(separator: ", "))")
        }
    }
}
