import XCTest
@testable import Kernels

final class ElementwiseTests: XCTestCase {
    let sizes = [1, 7, 16, 37, 130, 70_001]

    func testBinaryAndScalarOps() {
        var rng = TestRNG(10)
        for n in sizes {
            let a = rng.floats(n), b = rng.floats(n)
            let ab = Buf(a), bb = Buf(b), o = Buf(count: n, value: .nan)
            Elementwise.add(ab.c, bb.c, o.p, count: n, pool: pool2)
            XCTAssertEqual(o.a, zip(a, b).map { $0 + $1 })
            Elementwise.sub(ab.c, bb.c, o.p, count: n, pool: pool2)
            XCTAssertEqual(o.a, zip(a, b).map { $0 - $1 })
            Elementwise.mul(ab.c, bb.c, o.p, count: n, pool: pool2)
            XCTAssertEqual(o.a, zip(a, b).map { $0 * $1 })
            Elementwise.mul(ab.c, bb.c, o.p, count: n, accumulate: true, pool: pool2)
            XCTAssertEqual(o.a, zip(a, b).map { $0 * $1 + $0 * $1 })
            Elementwise.addScalar(ab.c, 0.5, o.p, count: n, pool: pool2)
            XCTAssertEqual(o.a, a.map { $0 + 0.5 })
            Elementwise.scale(ab.c, -3, o.p, count: n, pool: pool2)
            XCTAssertEqual(o.a, a.map { $0 * -3 })
            let y = Buf(b)
            Elementwise.axpy(alpha: 2, ab.c, y.p, count: n, pool: pool2)
            XCTAssertEqual(y.a, zip(a, b).map { $1 + $0 * 2 })
            let z = Buf(b)
            Elementwise.axpby(alpha: 0.25, ab.c, beta: 0.75, z.p, count: n, pool: pool2)
            XCTAssertLessThan(maxRelErr(z.a, zip(a, b).map { 0.25 * Double($0) + 0.75 * Double($1) }, floor: 1e-2), 1e-6)
            Elementwise.copy(ab.c, o.p, count: n, pool: pool2)
            XCTAssertEqual(o.a, a)
            Elementwise.copy(bb.c, o.p, count: n, accumulate: true, pool: pool2)
            XCTAssertEqual(o.a, zip(a, b).map { $0 + $1 })
            Elementwise.fill(o.p, value: 7, count: n, pool: pool2)
            XCTAssertEqual(o.a, [Float](repeating: 7, count: n))
            // In place: out aliases a.
            let ip = Buf(a)
            Elementwise.add(ip.c, bb.c, ip.p, count: n, pool: pool2)
            XCTAssertEqual(ip.a, zip(a, b).map { $0 + $1 })
        }
    }

    func testMulBackward() {
        var rng = TestRNG(11)
        let n = 37
        let a = rng.floats(n), b = rng.floats(n), dy = rng.floats(n)
        let ab = Buf(a), bb = Buf(b), g = Buf(dy)
        let da = Buf(count: n, value: 1), db = Buf(count: n, value: .nan)
        Elementwise.mulBackward(dy: g.c, a: ab.c, b: bb.c, da: da.p, db: nil, count: n, pool: pool2)
        Elementwise.mulBackward(dy: g.c, a: ab.c, b: bb.c, da: nil, db: db.p, count: n, accumulate: false, pool: pool2)
        XCTAssertEqual(da.a, (0..<n).map { 1 + dy[$0] * b[$0] })
        XCTAssertEqual(db.a, (0..<n).map { dy[$0] * a[$0] })
    }

    func testRowVectorOps() {
        var rng = TestRNG(12)
        for (rows, cols) in [(1, 1), (3, 7), (37, 130), (5, 64)] {
            let x = rng.floats(rows * cols), v = rng.floats(cols), r = rng.floats(rows * cols)
            let xb = Buf(x), vb = Buf(v), o = Buf(count: rows * cols, value: .nan)
            Elementwise.addRowVector(xb.c, vb.c, o.p, rows: rows, cols: cols, pool: pool2)
            XCTAssertEqual(o.a, (0..<(rows * cols)).map { x[$0] + v[$0 % cols] })
            Elementwise.mulRowVector(xb.c, vb.c, o.p, rows: rows, cols: cols, pool: pool2)
            XCTAssertEqual(o.a, (0..<(rows * cols)).map { x[$0] * v[$0 % cols] })
            // Backward vs finite differences of Σ (x·v)·r.
            let xd = x.map(Double.init), vd = v.map(Double.init), rd = r.map(Double.init)
            func f(_ x: [Double], _ v: [Double]) -> Double {
                var s = 0.0
                for i in 0..<(rows * cols) { s += x[i] * v[i % cols] * rd[i] }
                return s
            }
            let gx = fdGradient(xd) { f($0, vd) }, gv = fdGradient(vd) { f(xd, $0) }
            let dx = Buf(count: rows * cols, value: 0.5), dv = Buf(count: cols, value: 0.5)
            let rb = Buf(r)
            Elementwise.mulRowVectorBackward(dy: rb.c, x: xb.c, v: vb.c, dx: dx.p, dv: dv.p, rows: rows, cols: cols, pool: pool2)
            let ex = normRelErr(dx.a, gx.map { $0 + 0.5 }), ev = normRelErr(dv.a, gv.map { $0 + 0.5 })
            print("mulRowVector backward \(rows)x\(cols): dx \(ex) dv \(ev)")
            XCTAssertLessThan(max(ex, ev), 1e-5)
        }
    }
}
