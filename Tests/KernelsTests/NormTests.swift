import XCTest
import Foundation
@testable import Kernels

final class NormTests: XCTestCase {
    static func refLayerNorm(_ x: [Double], _ w: [Double], _ b: [Double], rows: Int, C: Int) -> [Double] {
        var y = [Double](repeating: 0, count: rows * C)
        for r in 0..<rows {
            var mu = 0.0
            for c in 0..<C { mu += x[r * C + c] }
            mu /= Double(C)
            var v = 0.0
            for c in 0..<C { v += (x[r * C + c] - mu) * (x[r * C + c] - mu) }
            v /= Double(C)
            let rs = 1 / (v + 1e-5).squareRoot()
            for c in 0..<C { y[r * C + c] = (x[r * C + c] - mu) * rs * w[c] + b[c] }
        }
        return y
    }

    static func refRMSNorm(_ x: [Double], _ w: [Double], rows: Int, C: Int) -> [Double] {
        var y = [Double](repeating: 0, count: rows * C)
        for r in 0..<rows {
            var s = 0.0
            for c in 0..<C { s += x[r * C + c] * x[r * C + c] }
            let rs = 1 / (s / Double(C) + 1e-5).squareRoot()
            for c in 0..<C { y[r * C + c] = x[r * C + c] * rs * w[c] }
        }
        return y
    }

    func testLayerNormForwardBackward() {
        var rng = TestRNG(40)
        for (rows, C) in [(1, 1), (3, 7), (37, 64), (5, 130)] {
            let x = rng.floats(rows * C, -2, 3), w = rng.floats(C, 0.5, 1.5), b = rng.floats(C), r = rng.floats(rows * C)
            let xb = Buf(x), wb = Buf(w), bb = Buf(b)
            let y = Buf(count: rows * C, value: .nan), mean = Buf(count: rows), rstd = Buf(count: rows)
            LayerNorm.forward(x: xb.c, weight: wb.c, bias: bb.c, y: y.p, mean: mean.p, rstd: rstd.p, rows: rows, channels: C, pool: pool2)
            let xd = x.map(Double.init), wd = w.map(Double.init), bd = b.map(Double.init), rd = r.map(Double.init)
            let fe = normRelErr(y.a, Self.refLayerNorm(xd, wd, bd, rows: rows, C: C))
            XCTAssertLessThan(fe, 2e-6)
            let dx = Buf(count: rows * C, value: 0.5), dw = Buf(count: C, value: 0.5), db = Buf(count: C, value: 0.5)
            let scratch = DBuf(count: LayerNorm.backwardScratchCount(rows: rows, channels: C))
            let rb = Buf(r)
            LayerNorm.backward(dy: rb.c, x: xb.c, weight: wb.c, mean: mean.c, rstd: rstd.c, dx: dx.p, dWeight: dw.p, dBias: db.p,
                               rows: rows, channels: C, scratch: scratch.p, pool: pool2)
            let gx = fdGradient(xd) { dotD(Self.refLayerNorm($0, wd, bd, rows: rows, C: C), rd) }
            let gw = fdGradient(wd) { dotD(Self.refLayerNorm(xd, $0, bd, rows: rows, C: C), rd) }
            let gb = fdGradient(bd) { dotD(Self.refLayerNorm(xd, wd, $0, rows: rows, C: C), rd) }
            let ex = normRelErr(dx.a, gx.map { $0 + 0.5 }), ew = normRelErr(dw.a, gw.map { $0 + 0.5 }), eb = normRelErr(db.a, gb.map { $0 + 0.5 })
            print("layernorm \(rows)x\(C): fwd \(fe) dx \(ex) dw \(ew) db \(eb)")
            XCTAssertLessThan(max(ex, ew, eb), 1e-5)
        }
    }

    func testLayerNormNoAffineAndOverwrite() {
        var rng = TestRNG(41)
        let (rows, C) = (4, 9)
        let x = rng.floats(rows * C), r = rng.floats(rows * C)
        let xb = Buf(x), rb = Buf(r)
        let y = Buf(count: rows * C), mean = Buf(count: rows), rstd = Buf(count: rows)
        LayerNorm.forward(x: xb.c, weight: nil, bias: nil, y: y.p, mean: mean.p, rstd: rstd.p, rows: rows, channels: C, pool: pool2)
        let ones = [Double](repeating: 1, count: C), zeros = [Double](repeating: 0, count: C)
        XCTAssertLessThan(normRelErr(y.a, Self.refLayerNorm(x.map(Double.init), ones, zeros, rows: rows, C: C)), 2e-6)
        let dx = Buf(count: rows * C, value: .nan)
        let scratch = DBuf(count: LayerNorm.backwardScratchCount(rows: rows, channels: C))
        LayerNorm.backward(dy: rb.c, x: xb.c, weight: nil, mean: mean.c, rstd: rstd.c, dx: dx.p, dWeight: nil, dBias: nil,
                           rows: rows, channels: C, scratch: scratch.p, accumulate: false, pool: pool2)
        let gx = fdGradient(x.map(Double.init)) { dotD(Self.refLayerNorm($0, ones, zeros, rows: rows, C: C), r.map(Double.init)) }
        XCTAssertLessThan(normRelErr(dx.a, gx), 1e-5)
    }

    func testLayerNormDeterministicParamGrads() {
        var rng = TestRNG(42)
        let (rows, C) = (3001, 37)
        let xb = Buf(rng.floats(rows * C)), wb = Buf(rng.floats(C)), bb = Buf(rng.floats(C)), rb = Buf(rng.floats(rows * C))
        let y = Buf(count: rows * C), mean = Buf(count: rows), rstd = Buf(count: rows)
        LayerNorm.forward(x: xb.c, weight: wb.c, bias: bb.c, y: y.p, mean: mean.p, rstd: rstd.p, rows: rows, channels: C, pool: pool2)
        let scratch = DBuf(count: LayerNorm.backwardScratchCount(rows: rows, channels: C))
        var results = [[Float]]()
        for p in [pool1, pool2, pool3, pool2] {
            let dx = Buf(count: rows * C), dw = Buf(count: C), db = Buf(count: C)
            LayerNorm.backward(dy: rb.c, x: xb.c, weight: wb.c, mean: mean.c, rstd: rstd.c, dx: dx.p, dWeight: dw.p, dBias: db.p,
                               rows: rows, channels: C, scratch: scratch.p, pool: p)
            results.append(dw.a + db.a + dx.a)
        }
        for r in results.dropFirst() { XCTAssertTrue(bitsEqual(r, results[0])) }
        // RMSNorm too.
        let rscratch = DBuf(count: RMSNorm.backwardScratchCount(rows: rows, channels: C))
        RMSNorm.forward(x: xb.c, weight: wb.c, y: y.p, rstd: rstd.p, rows: rows, channels: C, pool: pool2)
        var rr = [[Float]]()
        for p in [pool1, pool3] {
            let dx = Buf(count: rows * C), dw = Buf(count: C)
            RMSNorm.backward(dy: rb.c, x: xb.c, weight: wb.c, rstd: rstd.c, dx: dx.p, dWeight: dw.p, rows: rows, channels: C,
                             scratch: rscratch.p, pool: p)
            rr.append(dw.a + dx.a)
        }
        XCTAssertTrue(bitsEqual(rr[0], rr[1]))
    }

    func testRMSNormForwardBackward() {
        var rng = TestRNG(43)
        for (rows, C) in [(1, 1), (3, 7), (37, 64), (5, 130)] {
            let x = rng.floats(rows * C, -2, 3), w = rng.floats(C, 0.5, 1.5), r = rng.floats(rows * C)
            let xb = Buf(x), wb = Buf(w), rb = Buf(r)
            let y = Buf(count: rows * C, value: .nan), rstd = Buf(count: rows)
            RMSNorm.forward(x: xb.c, weight: wb.c, y: y.p, rstd: rstd.p, rows: rows, channels: C, pool: pool2)
            let xd = x.map(Double.init), wd = w.map(Double.init), rd = r.map(Double.init)
            let fe = normRelErr(y.a, Self.refRMSNorm(xd, wd, rows: rows, C: C))
            XCTAssertLessThan(fe, 2e-6)
            let dx = Buf(count: rows * C, value: 0.5), dw = Buf(count: C, value: 0.5)
            let scratch = DBuf(count: RMSNorm.backwardScratchCount(rows: rows, channels: C))
            RMSNorm.backward(dy: rb.c, x: xb.c, weight: wb.c, rstd: rstd.c, dx: dx.p, dWeight: dw.p, rows: rows, channels: C,
                             scratch: scratch.p, pool: pool2)
            let gx = fdGradient(xd) { dotD(Self.refRMSNorm($0, wd, rows: rows, C: C), rd) }
            let gw = fdGradient(wd) { dotD(Self.refRMSNorm(xd, $0, rows: rows, C: C), rd) }
            let ex = normRelErr(dx.a, gx.map { $0 + 0.5 }), ew = normRelErr(dw.a, gw.map { $0 + 0.5 })
            print("rmsnorm \(rows)x\(C): fwd \(fe) dx \(ex) dw \(ew)")
            XCTAssertLessThan(max(ex, ew), 1e-5)
            // Overwrite mode. (With C = 1 the true dx is ~eps/|x|³ and the kernel's is a float
            // cancellation residue, as in any float implementation: judge it against the O(rstd)
            // scale of the terms, floor 0.1.)
            let dx2 = Buf(count: rows * C, value: .nan), dw2 = Buf(count: C, value: .nan)
            RMSNorm.backward(dy: rb.c, x: xb.c, weight: wb.c, rstd: rstd.c, dx: dx2.p, dWeight: dw2.p, rows: rows, channels: C,
                             scratch: scratch.p, accumulate: false, pool: pool2)
            XCTAssertLessThan(max(normRelErr(dx2.a, gx, floor: 0.1), normRelErr(dw2.a, gw, floor: 0.1)), 1e-5)
        }
    }
}
