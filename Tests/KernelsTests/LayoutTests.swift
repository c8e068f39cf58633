import XCTest
@testable import Kernels

final class LayoutTests: XCTestCase {
    func testBatchedTranspose() {
        var rng = TestRNG(70)
        for (batch, rows, cols) in [(1, 1, 1), (2, 3, 7), (3, 37, 64), (1, 130, 33), (2, 65, 100)] {
            let lds = cols + 2, ldd = rows + 3
            let ss = rows * lds + 5, sd = cols * ldd + 1
            let src = rng.floats(batch * ss)
            let sb = Buf(src), d = Buf(count: batch * sd, value: -7)
            Layout.transpose(src: sb.c, dst: d.p, batch: batch, rows: rows, cols: cols, ldSrc: lds, ldDst: ldd,
                             strideSrc: ss, strideDst: sd, pool: pool2)
            var ok = true
            let da = d.a
            for i in 0..<batch {
                for r in 0..<rows { for c in 0..<cols where da[i * sd + c * ldd + r] != src[i * ss + r * lds + c] { ok = false } }
                // Padding untouched.
                for c in 0..<cols { for r in rows..<ldd where c * ldd + r < sd && da[i * sd + c * ldd + r] != -7 { ok = false } }
            }
            XCTAssertTrue(ok, "\(batch)x\(rows)x\(cols)")
            // Accumulate: transposing again adds.
            Layout.transpose(src: sb.c, dst: d.p, batch: batch, rows: rows, cols: cols, ldSrc: lds, ldDst: ldd,
                             strideSrc: ss, strideDst: sd, accumulate: true, pool: pool2)
            let db = d.a
            for i in 0..<batch { for r in 0..<rows { for c in 0..<cols {
                XCTAssertEqual(db[i * sd + c * ldd + r], 2 * src[i * ss + r * lds + c])
            } } }
        }
        // Defaults (contiguous).
        let s = Buf((0..<12).map(Float.init)), d = Buf(count: 12)
        Layout.transpose(src: s.c, dst: d.p, rows: 3, cols: 4, pool: pool1)
        XCTAssertEqual(d.a, [0, 4, 8, 1, 5, 9, 2, 6, 10, 3, 7, 11])
    }

    func testConcatSplitWithCopy2D() {
        var rng = TestRNG(71)
        let rows = 37, ca = 7, cb = 130
        let a = rng.floats(rows * ca), b = rng.floats(rows * cb)
        let ab = Buf(a), bb = Buf(b), cat = Buf(count: rows * (ca + cb), value: .nan)
        Layout.copy2D(src: ab.c, ldSrc: ca, dst: cat.p, ldDst: ca + cb, rows: rows, cols: ca, pool: pool2)
        Layout.copy2D(src: bb.c, ldSrc: cb, dst: cat.p + ca, ldDst: ca + cb, rows: rows, cols: cb, pool: pool2)
        var ref = [Float]()
        for r in 0..<rows {
            ref.append(contentsOf: a[(r * ca)..<((r + 1) * ca)])
            ref.append(contentsOf: b[(r * cb)..<((r + 1) * cb)])
        }
        XCTAssertEqual(cat.a, ref)
        // Split back (with accumulate onto ones).
        let a2 = Buf(count: rows * ca, value: 1), b2 = Buf(count: rows * cb, value: 1)
        Layout.copy2D(src: cat.c, ldSrc: ca + cb, dst: a2.p, ldDst: ca, rows: rows, cols: ca, accumulate: true, pool: pool2)
        Layout.copy2D(src: cat.c + ca, ldSrc: ca + cb, dst: b2.p, ldDst: cb, rows: rows, cols: cb, accumulate: true, pool: pool2)
        XCTAssertEqual(a2.a, a.map { $0 + 1 })
        XCTAssertEqual(b2.a, b.map { $0 + 1 })
    }

    func testCopyStridedPermute() {
        var rng = TestRNG(72)
        // (B, L, C) → (B, C, L) permutation, and a 4-d slice with a negative stride.
        let (B, L, C) = (3, 17, 5)
        let x = rng.floats(B * L * C)
        let xb = Buf(x), y = Buf(count: B * C * L, value: .nan)
        Layout.copyStrided(src: xb.c, srcStrides: [L * C, 1, C], dst: y.p, dstStrides: [C * L, L, 1], shape: [B, C, L], pool: pool2)
        var ok = true
        for b in 0..<B { for l in 0..<L { for c in 0..<C where y.a[b * C * L + c * L + l] != x[b * L * C + l * C + c] { ok = false } } }
        XCTAssertTrue(ok)
        // Reverse time with a negative stride, into a contiguous buffer, accumulating onto 1.
        let z = Buf(count: B * L * C, value: 1)
        Layout.copyStrided(src: xb.c + (L - 1) * C, srcStrides: [L * C, -C, 1], dst: z.p, dstStrides: [L * C, C, 1],
                           shape: [B, L, C], accumulate: true, pool: pool3)
        ok = true
        for b in 0..<B { for l in 0..<L { for c in 0..<C where z.a[(b * L + l) * C + c] != 1 + x[(b * L + (L - 1 - l)) * C + c] { ok = false } } }
        XCTAssertTrue(ok)
        // Rank 1 with stride 2.
        let w = Buf(count: 10, value: 0)
        Layout.copyStrided(src: xb.c, srcStrides: [1], dst: w.p, dstStrides: [2], shape: [5], pool: pool1)
        XCTAssertEqual(w.a, [x[0], 0, x[1], 0, x[2], 0, x[3], 0, x[4], 0])
    }
}
