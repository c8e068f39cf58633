import XCTest
import Foundation
@testable import Kernels

final class CrossEntropyTests: XCTestCase {
    static func refLosses(_ z: [Double], _ t: [Int32], rows: Int, V: Int) -> [Double] {
        (0..<rows).map { r in
            if t[r] < 0 { return 0 }
            let row = z[(r * V)..<((r + 1) * V)]
            let m = row.max()!
            let lse = m + Foundation.log(row.reduce(0) { $0 + Foundation.exp($1 - m) })
            return lse - z[r * V + Int(t[r])]
        }
    }

    func testUniformLogitsGiveLnV() {
        let rows = 37, V = 256
        let z = Buf(count: rows * V, value: 3.25)
        let t = IBuf((0..<rows).map { Int32($0 * 7 % V) })
        let losses = Buf(count: rows)
        let total = CrossEntropy.forward(logits: z.c, targets: t.c, rows: rows, classes: V, losses: losses.p, logSumExp: nil, pool: pool2)
        let lnV = Foundation.log(Double(V))
        for l in losses.a { XCTAssertEqual(Double(l), lnV, accuracy: 1e-5) }
        XCTAssertEqual(total / Double(rows), lnV, accuracy: 1e-5)
        XCTAssertEqual(CrossEntropy.natsToBits(lnV), 8, accuracy: 1e-12)
    }

    func testForwardBackwardAgainstReference() {
        var rng = TestRNG(50)
        for (rows, V) in [(1, 256), (3, 7), (37, 256), (5, 130), (2, 1)] {
            let z = rng.floats(rows * V, -8, 8)
            var t = (0..<rows).map { _ in Int32(rng.int(V)) }
            if rows > 2 { t[1] = -1 } // ignored row
            let zb = Buf(z), tb = IBuf(t)
            let losses = Buf(count: rows, value: .nan), lse = Buf(count: rows, value: .nan)
            let total = CrossEntropy.forward(logits: zb.c, targets: tb.c, rows: rows, classes: V, losses: losses.p,
                                             logSumExp: lse.p, pool: pool2)
            let zd = z.map(Double.init)
            let ref = Self.refLosses(zd, t, rows: rows, V: V)
            let fe = maxRelErr(losses.a, ref, floor: 1e-3)
            XCTAssertLessThan(fe, 1e-5)
            XCTAssertEqual(total, ref.reduce(0, +), accuracy: 1e-5 * Double(rows))
            // Backward: mean loss with per-row upstream gradients, vs FD; with and without saved lse.
            let scale = 1 / Float(rows)
            let dl = rng.floats(rows, 0.5, 1.5), dlb = Buf(dl)
            // The loss is a sum of per-row terms: differentiate row by row (same FD, far cheaper).
            var fd = [Double]()
            for r in 0..<rows {
                let zr = Array(zd[(r * V)..<((r + 1) * V)])
                fd += fdGradient(zr) { Self.refLosses($0, [t[r]], rows: 1, V: V)[0] * Double(dl[r]) * Double(scale) }
            }
            for saved in [true, false] {
                let g = Buf(count: rows * V, value: 0.5)
                CrossEntropy.backward(logits: zb.c, targets: tb.c, logSumExp: saved ? lse.c : nil, dLoss: dlb.c, scale: scale,
                                      dLogits: g.p, rows: rows, classes: V, pool: pool2)
                let e = normRelErr(g.a, fd.map { $0 + 0.5 })
                let e0 = normRelErr(g.a.map { $0 - 0.5 }, fd)
                print("cross-entropy \(rows)x\(V) saved-lse \(saved): fwd \(fe) dlogits \(e0)")
                XCTAssertLessThan(max(e, e0), 1e-5)
            }
            let g2 = Buf(count: rows * V, value: .nan)
            CrossEntropy.backward(logits: zb.c, targets: tb.c, logSumExp: nil, dLoss: dlb.c, scale: scale,
                                  dLogits: g2.p, rows: rows, classes: V, accumulate: false, pool: pool2)
            XCTAssertLessThan(normRelErr(g2.a, fd), 1e-5)
        }
    }

    func testStableForHugeLogitsAndDeterministic() {
        let V = 256, rows = 300
        var rng = TestRNG(51)
        let z = Buf(rng.floats(rows * V, -1e4, 1e4))
        let t = IBuf((0..<rows).map { _ in Int32(rng.int(V)) })
        let l1 = Buf(count: rows), l2 = Buf(count: rows)
        let a = CrossEntropy.forward(logits: z.c, targets: t.c, rows: rows, classes: V, losses: l1.p, logSumExp: nil, pool: pool1)
        let b = CrossEntropy.forward(logits: z.c, targets: t.c, rows: rows, classes: V, losses: l2.p, logSumExp: nil, pool: pool3)
        XCTAssertTrue(a.isFinite)
        XCTAssertEqual(a.bitPattern, b.bitPattern)
        XCTAssertTrue(bitsEqual(l1.a, l2.a))
    }

    func testSoftmax() {
        var rng = TestRNG(52)
        let rows = 5, V = 130
        let z = rng.floats(rows * V, -5, 5)
        let zb = Buf(z), p = Buf(count: rows * V)
        CrossEntropy.softmax(logits: zb.c, probs: p.p, rows: rows, classes: V, temperature: 0.7, pool: pool2)
        var ref = [Double]()
        for r in 0..<rows {
            let row = z[(r * V)..<((r + 1) * V)].map { Double($0) / 0.7 }
            let m = row.max()!
            let s = row.reduce(0) { $0 + Foundation.exp($1 - m) }
            ref += row.map { Foundation.exp($0 - m) / s }
        }
        let e = maxRelErr(p.a, ref, floor: 1e-6)
        print("softmax max rel err: \(e)")
        XCTAssertLessThan(e, 2e-6)
    }
}
