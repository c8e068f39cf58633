import XCTest
import Foundation
@testable import Kernels

final class CausalConv1dTests: XCTestCase {
    /// Reference in double; x: (B, L, C) with row stride ldx; returns (B, L, C) contiguous.
    static func ref(_ x: [Double], _ w: [Double], _ b: [Double]?, B: Int, L: Int, C: Int, K: Int, ldx: Int, silu: Bool) -> [Double] {
        var y = [Double](repeating: 0, count: B * L * C)
        for bi in 0..<B {
            for t in 0..<L {
                for c in 0..<C {
                    var z = b?[c] ?? 0
                    for k in 0..<K {
                        let ts = t - (K - 1) + k
                        if ts >= 0 { z += w[c * K + k] * x[(bi * L + ts) * ldx + c] }
                    }
                    y[(bi * L + t) * C + c] = silu ? z / (1 + Foundation.exp(-z)) : z
                }
            }
        }
        return y
    }

    // Includes channel counts spanning several stack-buffer channel blocks (C = 450 at K = 4,
    // K = 40) and sequences spanning several 256-step tiles.
    let shapes: [(B: Int, L: Int, C: Int, K: Int)] = [(1, 1, 1, 4), (2, 5, 7, 4), (1, 33, 64, 4), (2, 33, 130, 3),
                                                       (1, 5, 7, 1), (1, 6, 17, 6), (2, 300, 20, 4), (1, 3, 450, 4),
                                                       (1, 45, 50, 40)]

    func testForward() {
        var rng = TestRNG(60)
        for (B, L, C, K) in shapes {
            for silu in [false, true] {
                for useBias in [true, false] {
                    let ldx = C + 5
                    let x = rng.floats(B * L * ldx, -2, 2), w = rng.floats(C * K), b = rng.floats(C)
                    let xb = Buf(x), wb = Buf(w), bb = Buf(b)
                    let y = Buf(count: B * L * C, value: .nan)
                    CausalConv1d.forward(x: xb.c, weight: wb.c, bias: useBias ? bb.c : nil, y: y.p, batch: B, length: L, channels: C,
                                         width: K, ldx: ldx, silu: silu, pool: pool2)
                    let r = Self.ref(x.map(Double.init), w.map(Double.init), useBias ? b.map(Double.init) : nil,
                                     B: B, L: L, C: C, K: K, ldx: ldx, silu: silu)
                    let e = normRelErr(y.a, r)
                    XCTAssertLessThan(e, 1e-6, "B\(B) L\(L) C\(C) K\(K) silu \(silu)")
                }
            }
        }
    }

    func testBackwardFiniteDifferences() {
        var rng = TestRNG(61)
        for (B, L, C, K) in shapes where B * L * C * K <= 12_000 {
            for silu in [false, true] {
                let ldx = C + 2
                let x = rng.floats(B * L * ldx, -2, 2), w = rng.floats(C * K), b = rng.floats(C), r = rng.floats(B * L * C)
                let xd = x.map(Double.init), wd = w.map(Double.init), bd = b.map(Double.init), rd = r.map(Double.init)
                let xb = Buf(x), wb = Buf(w), bb = Buf(b), rb = Buf(r)
                let dx = Buf(count: B * L * ldx, value: 0.5), dw = Buf(count: C * K, value: 0.5), db = Buf(count: C, value: 0.5)
                let scratch = Buf(count: CausalConv1d.backwardScratchCount(batch: B, length: L, channels: C, width: K), value: .nan)
                CausalConv1d.backward(dy: rb.c, x: xb.c, weight: wb.c, bias: bb.c, dx: dx.p, dWeight: dw.p, dBias: db.p,
                                      batch: B, length: L, channels: C, width: K, ldx: ldx, silu: silu,
                                      scratch: scratch.p, pool: pool2)
                func loss(_ x: [Double], _ w: [Double], _ b: [Double]) -> Double {
                    dotD(Self.ref(x, w, b, B: B, L: L, C: C, K: K, ldx: ldx, silu: silu), rd)
                }
                var gx = fdGradient(xd) { loss($0, wd, bd) }
                // Padding columns of x (c ≥ C) get no gradient: the kernel must leave them untouched.
                for i in 0..<gx.count where i % ldx >= C { gx[i] = 0 }
                let gw = fdGradient(wd) { loss(xd, $0, bd) }, gb = fdGradient(bd) { loss(xd, wd, $0) }
                let ex = normRelErr(dx.a, gx.map { $0 + 0.5 }), ew = normRelErr(dw.a, gw.map { $0 + 0.5 })
                let eb = normRelErr(db.a, gb.map { $0 + 0.5 })
                print("causal conv backward B\(B) L\(L) C\(C) K\(K) silu \(silu): dx \(ex) dw \(ew) db \(eb)")
                XCTAssertLessThan(max(ex, ew, eb), 1e-5)
            }
        }
    }

    /// Long sequences (several 256-step tiles, tile edges inside) against a double-precision
    /// reference backward (FD there would be too slow).
    func testBackwardAcrossTiles() {
        var rng = TestRNG(64)
        for (B, L, C, K) in [(2, 600, 20, 4), (1, 513, 17, 5), (1, 257, 3, 2), (1, 300, 300, 4), (1, 40, 70, 40)] {
            let x = rng.floats(B * L * C, -2, 2), w = rng.floats(C * K), b = rng.floats(C), r = rng.floats(B * L * C)
            let xb = Buf(x), wb = Buf(w), bb = Buf(b), rb = Buf(r)
            let dx = Buf(count: B * L * C, value: .nan), dw = Buf(count: C * K, value: .nan), db = Buf(count: C, value: .nan)
            let scratch = Buf(count: CausalConv1d.backwardScratchCount(batch: B, length: L, channels: C, width: K))
            CausalConv1d.backward(dy: rb.c, x: xb.c, weight: wb.c, bias: bb.c, dx: dx.p, dWeight: dw.p, dBias: db.p,
                                  batch: B, length: L, channels: C, width: K, silu: true, scratch: scratch.p,
                                  accumulate: false, pool: pool2)
            // Reference: dz = r·silu'(z), then the adjoint of the convolution.
            var dz = [Double](repeating: 0, count: B * L * C)
            var rdx = [Double](repeating: 0, count: B * L * C), rdw = [Double](repeating: 0, count: C * K)
            var rdb = [Double](repeating: 0, count: C)
            for bi in 0..<B {
                for t in 0..<L {
                    for c in 0..<C {
                        var z = Double(b[c])
                        for k in 0..<K where t - (K - 1) + k >= 0 { z += Double(w[c * K + k]) * Double(x[(bi * L + t - (K - 1) + k) * C + c]) }
                        let s = 1 / (1 + Foundation.exp(-z))
                        dz[(bi * L + t) * C + c] = Double(r[(bi * L + t) * C + c]) * s * (1 + z * (1 - s))
                    }
                }
                for t in 0..<L {
                    for c in 0..<C {
                        let g = dz[(bi * L + t) * C + c]
                        rdb[c] += g
                        for k in 0..<K where t - (K - 1) + k >= 0 {
                            let src = (bi * L + t - (K - 1) + k) * C + c
                            rdw[c * K + k] += g * Double(x[src])
                            rdx[src] += g * Double(w[c * K + k])
                        }
                    }
                }
            }
            let ex = normRelErr(dx.a, rdx), ew = normRelErr(dw.a, rdw), eb = normRelErr(db.a, rdb)
            print("causal conv backward across tiles B\(B) L\(L) C\(C) K\(K): dx \(ex) dw \(ew) db \(eb)")
            XCTAssertLessThan(max(ex, ew, eb), 1e-5)
        }
    }

    func testBackwardOverwriteAndDeterminism() {
        var rng = TestRNG(62)
        let (B, L, C, K) = (3, 700, 37, 4)
        let xb = Buf(rng.floats(B * L * C)), wb = Buf(rng.floats(C * K)), bb = Buf(rng.floats(C)), rb = Buf(rng.floats(B * L * C))
        let scratch = Buf(count: CausalConv1d.backwardScratchCount(batch: B, length: L, channels: C, width: K))
        var results = [[Float]]()
        for (p, acc) in [(pool1, false), (pool2, false), (pool3, false), (pool2, true)] {
            let dx = Buf(count: B * L * C, value: acc ? 0 : .nan), dw = Buf(count: C * K, value: acc ? 0 : .nan)
            let db = Buf(count: C, value: acc ? 0 : .nan)
            CausalConv1d.backward(dy: rb.c, x: xb.c, weight: wb.c, bias: bb.c, dx: dx.p, dWeight: dw.p, dBias: db.p,
                                  batch: B, length: L, channels: C, width: K, silu: true, scratch: scratch.p,
                                  accumulate: acc, pool: p)
            results.append(dx.a + dw.a + db.a)
        }
        for r in results.dropFirst() { XCTAssertTrue(bitsEqual(r, results[0])) }
    }

    func testStepMatchesForward() {
        var rng = TestRNG(63)
        for (B, L, C, K) in [(2, 9, 7, 4), (1, 5, 33, 3), (3, 4, 16, 1)] {
            for silu in [false, true] {
                let x = rng.floats(B * L * C), w = rng.floats(C * K), b = rng.floats(C)
                let xb = Buf(x), wb = Buf(w), bb = Buf(b)
                let y = Buf(count: B * L * C)
                CausalConv1d.forward(x: xb.c, weight: wb.c, bias: bb.c, y: y.p, batch: B, length: L, channels: C, width: K,
                                     silu: silu, pool: pool2)
                let state = Buf(count: max(1, B * C * (K - 1)), value: 0)
                let xs = Buf(count: B * C), ys = Buf(count: B * C)
                var worst = 0.0
                for t in 0..<L {
                    for bi in 0..<B { for c in 0..<C { xs.p[bi * C + c] = x[(bi * L + t) * C + c] } }
                    CausalConv1d.step(x: xs.c, state: state.p, weight: wb.c, bias: bb.c, y: ys.p, batch: B, channels: C, width: K,
                                      silu: silu, pool: pool2)
                    for bi in 0..<B {
                        for c in 0..<C {
                            let a = ys.a[bi * C + c], r = y.a[(bi * L + t) * C + c]
                            worst = max(worst, Double(abs(a - r)) / max(1, Double(abs(r))))
                        }
                    }
                }
                XCTAssertLessThan(worst, 1e-6, "B\(B) L\(L) C\(C) K\(K)")
            }
        }
    }
}
