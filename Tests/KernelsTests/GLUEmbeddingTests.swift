import XCTest
import Foundation
@testable import Kernels

final class GLUEmbeddingTests: XCTestCase {
    static func refGLU(_ x: [Double], rows: Int, H: Int) -> [Double] {
        var y = [Double](repeating: 0, count: rows * H)
        for r in 0..<rows { for j in 0..<H {
            y[r * H + j] = x[r * 2 * H + j] / (1 + Foundation.exp(-x[r * 2 * H + H + j]))
        } }
        return y
    }

    func testGLU() {
        var rng = TestRNG(80)
        for (rows, H) in [(1, 1), (3, 7), (37, 64), (2, 130)] {
            let x = rng.floats(rows * 2 * H, -4, 4), r = rng.floats(rows * H)
            let xb = Buf(x), rb = Buf(r), y = Buf(count: rows * H, value: .nan)
            GLU.forward(x: xb.c, y: y.p, rows: rows, half: H, pool: pool2)
            let xd = x.map(Double.init)
            let fe = maxRelErr(y.a, Self.refGLU(xd, rows: rows, H: H), floor: 1e-3)
            let dx = Buf(count: rows * 2 * H, value: 0.5)
            GLU.backward(dy: rb.c, x: xb.c, dx: dx.p, rows: rows, half: H, pool: pool2)
            let g = fdGradient(xd) { dotD(Self.refGLU($0, rows: rows, H: H), r.map(Double.init)) }
            let e = normRelErr(dx.a, g.map { $0 + 0.5 })
            let dx2 = Buf(count: rows * 2 * H, value: .nan)
            GLU.backward(dy: rb.c, x: xb.c, dx: dx2.p, rows: rows, half: H, accumulate: false, pool: pool2)
            let e2 = normRelErr(dx2.a, g)
            print("GLU \(rows)x\(H): fwd \(fe) dx \(e) overwrite \(e2)")
            XCTAssertLessThan(fe, 1e-6)
            XCTAssertLessThan(max(e, e2), 1e-5)
        }
    }

    func testEmbeddingForwardBackward() {
        var rng = TestRNG(81)
        for (V, C, n) in [(1, 1, 1), (256, 7, 37), (256, 64, 1000), (5, 130, 33)] {
            let table = rng.floats(V * C)
            let idx = (0..<n).map { _ in Int32(rng.int(V)) }
            let tb = Buf(table), ib = IBuf(idx), out = Buf(count: n * C, value: .nan)
            Embedding.forward(table: tb.c, indices: ib.c, count: n, channels: C, out: out.p, pool: pool2)
            var ref = [Float]()
            for i in idx { ref += table[(Int(i) * C)..<((Int(i) + 1) * C)] }
            XCTAssertEqual(out.a, ref)
            let dOut = rng.floats(n * C)
            let gb = Buf(dOut)
            var refG = [Double](repeating: 0.5, count: V * C)
            for i in 0..<n { for c in 0..<C { refG[Int(idx[i]) * C + c] += Double(dOut[i * C + c]) } }
            var results = [[Float]]()
            for p in [pool1, pool2, pool3] {
                let dT = Buf(count: V * C, value: 0.5)
                Embedding.backward(dOut: gb.c, indices: ib.c, count: n, channels: C, vocab: V, dTable: dT.p, pool: p)
                results.append(dT.a)
            }
            let e = normRelErr(results[0], refG)
            print("embedding V\(V) C\(C) n\(n): backward err \(e)")
            XCTAssertLessThan(e, 1e-5)
            XCTAssertTrue(bitsEqual(results[0], results[1]) && bitsEqual(results[0], results[2]))
        }
    }

    func testEmbeddingBackwardDeterministicLarge() {
        // Enough work for the table to be split across threads; heavy repetition of indices.
        var rng = TestRNG(82)
        let (V, C, n) = (256, 64, 4000)
        let idx = IBuf((0..<n).map { _ in Int32(rng.int(8) * 32) })
        let g = Buf(rng.floats(n * C))
        var results = [[Float]]()
        for p in [pool1, pool2, pool3, ThreadPool(threads: 7)] {
            let dT = Buf(count: V * C)
            Embedding.backward(dOut: g.c, indices: idx.c, count: n, channels: C, vocab: V, dTable: dT.p, pool: p)
            results.append(dT.a)
        }
        for r in results.dropFirst() { XCTAssertTrue(bitsEqual(r, results[0])) }
    }
}
