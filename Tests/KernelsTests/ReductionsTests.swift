import XCTest
@testable import Kernels

final class ReductionsTests: XCTestCase {
    func testFlatReductions() {
        var rng = TestRNG(30)
        for n in [0, 1, 7, 37, 130, 8191, 70_001, 1_000_003] {
            let a = rng.floats(n), b = rng.floats(n)
            let ab = Buf(a), bb = Buf(b)
            var s = 0.0, ss = 0.0, d = 0.0
            for i in 0..<n { s += Double(a[i]); ss += Double(a[i]) * Double(a[i]); d += Double(a[i]) * Double(b[i]) }
            let ks = Reductions.sum(ab.c, count: n, pool: pool2)
            let kss = Reductions.sumOfSquares(ab.c, count: n, pool: pool2)
            let kd = Reductions.dot(ab.c, bb.c, count: n, pool: pool2)
            let km = Reductions.mean(ab.c, count: n, pool: pool2)
            // Errors relative to Σ|terms| (the sum itself can cancel).
            var sa = 1e-30, sd = 1e-30
            for i in 0..<n { sa += abs(Double(a[i])); sd += abs(Double(a[i]) * Double(b[i])) }
            let e = max(abs(ks - s) / sa, abs(kss - ss) / max(ss, 1e-30), abs(kd - d) / sd)
            if n >= 70_001 { print("flat reductions n=\(n): max err relative to Σ|terms| \(e)") }
            XCTAssertLessThan(e, 1e-6, "n\(n)")
            XCTAssertEqual(km, n > 0 ? ks / Double(n) : 0)
            // Bit-identical for any thread count.
            for p in [pool1, pool3] {
                XCTAssertEqual(Reductions.sum(ab.c, count: n, pool: p).bitPattern, ks.bitPattern)
                XCTAssertEqual(Reductions.sumOfSquares(ab.c, count: n, pool: p).bitPattern, kss.bitPattern)
                XCTAssertEqual(Reductions.dot(ab.c, bb.c, count: n, pool: p).bitPattern, kd.bitPattern)
            }
        }
    }

    func testColumnAndRowSums() {
        var rng = TestRNG(31)
        for (rows, cols) in [(1, 1), (3, 7), (37, 64), (130, 130), (1000, 17), (5, 600), (70, 1030)] {
            let ld = cols + 3
            let x = rng.floats(rows * ld), y = rng.floats(rows * ld)
            let xb = Buf(x)
            // Errors are judged relative to Σ|terms| (the summation error bound's scale).
            var cs = [Double](repeating: 0, count: cols), rs = [Double](repeating: 0, count: rows)
            var ca = [Double](repeating: 0, count: cols), ra = [Double](repeating: 0, count: rows)
            for r in 0..<rows {
                for c in 0..<cols {
                    let v = Double(x[r * ld + c])
                    cs[c] += v; rs[r] += v; ca[c] += abs(v); ra[r] += abs(v)
                }
            }
            let out = Buf(count: cols, value: .nan)
            Reductions.columnSums(xb.c, rows: rows, cols: cols, ldx: ld, out: out.p, pool: pool2)
            let e1 = scaledErr(out.a, cs, ca)
            let acc = Buf(count: cols, value: 1)
            Reductions.columnSums(xb.c, rows: rows, cols: cols, ldx: ld, out: acc.p, accumulate: true, pool: pool2)
            let e2 = scaledErr(acc.a, cs.map { $0 + 1 }, ca.map { $0 + 1 })
            let ro = Buf(count: rows, value: .nan)
            Reductions.rowSums(xb.c, rows: rows, cols: cols, ldx: ld, out: ro.p, pool: pool2)
            let e3 = scaledErr(ro.a, rs, ra)
            // columnDot on contiguous matrices.
            let xc = Buf((0..<(rows * cols)).map { x[($0 / cols) * ld + $0 % cols] })
            let yc = Buf((0..<(rows * cols)).map { y[($0 / cols) * ld + $0 % cols] })
            var cd = [Double](repeating: 0, count: cols), cda = [Double](repeating: 0, count: cols)
            for r in 0..<rows {
                for c in 0..<cols {
                    let v = Double(xc.a[r * cols + c]) * Double(yc.a[r * cols + c])
                    cd[c] += v; cda[c] += abs(v)
                }
            }
            let dout = Buf(count: cols, value: .nan)
            Reductions.columnDot(xc.c, yc.c, rows: rows, cols: cols, out: dout.p, pool: pool2)
            let e4 = scaledErr(dout.a, cd, cda)
            print("column/row sums (err / Σ|terms|) \(rows)x\(cols): \(e1) \(e2) \(e3) \(e4)")
            XCTAssertLessThan(max(e1, e2, e3, e4), 1e-6)
            for p in [pool1, pool3] {
                let out1 = Buf(count: cols)
                Reductions.columnSums(xb.c, rows: rows, cols: cols, ldx: ld, out: out1.p, pool: p)
                XCTAssertTrue(bitsEqual(out1.a, out.a))
            }
        }
    }
}
