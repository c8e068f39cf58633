import XCTest
import Foundation
@testable import Kernels

final class AdamWTests: XCTestCase {
    func testMatchesReferenceOverSteps() {
        var rng = TestRNG(100)
        for wd: Float in [0, 0.1] {
            let n = 1037
            let cfg = AdamW.Config(lr: 3e-3, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: wd)
            let p0 = rng.floats(n)
            let p = Buf(p0), m = Buf(count: n), v = Buf(count: n)
            var rp = p0.map(Double.init), rm = [Double](repeating: 0, count: n), rv = rm
            for t in 1...5 {
                let g = rng.floats(n)
                let gb = Buf(g)
                let gs: Float = t == 3 ? 0.5 : 1
                AdamW.update(params: p.p, grads: gb.c, m: m.p, v: v.p, count: n, step: t, config: cfg, gradScale: gs, pool: pool2)
                let lr = Double(cfg.lr), b1 = Double(cfg.beta1), b2 = Double(cfg.beta2)
                for i in 0..<n {
                    let gi = Double(g[i]) * Double(gs)
                    rp[i] *= 1 - lr * Double(wd)
                    rm[i] = b1 * rm[i] + (1 - b1) * gi
                    rv[i] = b2 * rv[i] + (1 - b2) * gi * gi
                    let mh = rm[i] / (1 - pow(b1, Double(t))), vh = rv[i] / (1 - pow(b2, Double(t)))
                    rp[i] -= lr * mh / (vh.squareRoot() + Double(cfg.eps))
                }
            }
            let e = maxRelErr(p.a, rp, floor: 1e-2)
            let em = normRelErr(m.a, rm), ev = normRelErr(v.a, rv)
            print("AdamW wd=\(wd) after 5 steps: params \(e) m \(em) v \(ev)")
            XCTAssertLessThan(max(e, em, ev), 1e-5)
        }
    }

    func testGlobalNormClipAndEMA() {
        var rng = TestRNG(101)
        let a = rng.floats(1000), b = rng.floats(37)
        let ab = Buf(a), bb = Buf(b)
        let ss = (a + b).reduce(0.0) { $0 + Double($1) * Double($1) }
        let norm = AdamW.globalNorm([(ab.c, a.count), (bb.c, b.count)], pool: pool2)
        XCTAssertEqual(norm, ss.squareRoot(), accuracy: 1e-9 * ss)
        XCTAssertEqual(AdamW.sumOfSquares([(ab.c, a.count), (bb.c, b.count)], pool: pool1).bitPattern,
                       AdamW.sumOfSquares([(ab.c, a.count), (bb.c, b.count)], pool: pool3).bitPattern)
        let f = AdamW.clipFactor(norm: norm, maxNorm: 1)
        XCTAssertEqual(Double(f), 1 / (norm + 1e-6), accuracy: 1e-7)
        XCTAssertEqual(AdamW.clipFactor(norm: 0.5, maxNorm: 1), 1)
        AdamW.scale(ab.p, count: a.count, by: f, pool: pool2)
        AdamW.scale(bb.p, count: b.count, by: f, pool: pool2)
        XCTAssertEqual(AdamW.globalNorm([(ab.c, a.count), (bb.c, b.count)], pool: pool2), 1, accuracy: 1e-5)
        let ema = Buf(count: 37, value: 1)
        AdamW.emaUpdate(ema: ema.p, params: bb.c, count: 37, decay: 0.99, pool: pool2)
        XCTAssertLessThan(maxRelErr(ema.a, bb.a.map { 0.99 + 0.01 * Double($0) }), 1e-6)
    }
}
