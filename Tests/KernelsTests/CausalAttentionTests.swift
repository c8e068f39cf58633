import Foundation
import XCTest
@testable import Kernels

/// The tiled causal attention (forward, backward, KV-cache step) against the direct O(L²)
/// formulas in Double, on shapes whose lengths are not multiples of the 64-row tiles, with
/// several heads and sequences, column-slice inputs and gradients, and sharp softmaxes (large
/// scores, so that the running max moves between tiles).
final class CausalAttentionTests: XCTestCase {
    /// Outputs of the direct formulas: o, lse, dq, dk, dv, all (batch·L, E) except lse (batch, heads, L).
    struct Reference { var o, lse, dq, dk, dv: [Double] }

    static func reference(q: [Float], k: [Float], v: [Float], dOut: [Float], _ s: AttentionShape) -> Reference {
        let L = s.length, D = s.headDim, E = s.width, sc = Double(s.scale)
        let n = s.batch * L * E
        var r = Reference(o: .init(repeating: 0, count: n), lse: .init(repeating: 0, count: s.batch * s.heads * L),
                          dq: .init(repeating: 0, count: n), dk: .init(repeating: 0, count: n), dv: .init(repeating: 0, count: n))
        for b in 0..<s.batch {
            for h in 0..<s.heads {
                func at(_ t: Int, _ d: Int) -> Int { (b * L + t) * E + h * D + d }
                for i in 0..<L {
                    var scores = [Double](repeating: 0, count: i + 1)
                    for j in 0...i {
                        var dot = 0.0
                        for d in 0..<D { dot += Double(q[at(i, d)]) * Double(k[at(j, d)]) }
                        scores[j] = sc * dot
                    }
                    let m = scores.max()!
                    let z = scores.reduce(0) { $0 + exp($1 - m) }
                    let p = scores.map { exp($0 - m) / z }
                    r.lse[(b * s.heads + h) * L + i] = m + log(z)
                    for d in 0..<D {
                        var o = 0.0
                        for j in 0...i { o += p[j] * Double(v[at(j, d)]) }
                        r.o[at(i, d)] = o
                    }
                    var delta = 0.0
                    for d in 0..<D { delta += Double(dOut[at(i, d)]) * r.o[at(i, d)] }
                    for j in 0...i {
                        var dp = 0.0
                        for d in 0..<D { dp += Double(dOut[at(i, d)]) * Double(v[at(j, d)]) }
                        let ds = p[j] * (dp - delta)
                        for d in 0..<D {
                            r.dq[at(i, d)] += sc * ds * Double(k[at(j, d)])
                            r.dk[at(j, d)] += sc * ds * Double(q[at(i, d)])
                            r.dv[at(j, d)] += p[j] * Double(dOut[at(i, d)])
                        }
                    }
                }
            }
        }
        return r
    }

    /// max |a − b| / max |b|.
    static func error(_ a: [Float], _ b: [Double]) -> Double {
        var num = 0.0, den = 0.0
        for (x, y) in zip(a, b) {
            if !x.isFinite { return .infinity }
            num = max(num, abs(Double(x) - y))
            den = max(den, abs(y))
        }
        return num / max(den, 1e-30)
    }

    /// q, k, v as column slices of one (rows, 3E + 3) buffer (as in_proj's output, plus padding),
    /// and the gradients as column slices of another.
    func run(batch: Int, length L: Int, heads: Int, headDim D: Int, scale: Float? = nil, spread: Float = 2, threads: Int = 2, seed: UInt64) {
        let s = AttentionShape(batch: batch, length: L, heads: heads, headDim: D, scale: scale)
        let E = s.width, rows = batch * L, ld = 3 * E + 3
        var rng = TestRNG(seed)
        let packed = Buf(rng.floats(rows * ld, -spread, spread))
        let dOut = Buf(rng.floats(rows * E))
        func slice(_ base: UnsafeMutablePointer<Float>, _ part: Int) -> AttentionRows { AttentionRows(base + 1 + part * E, stride: ld) }
        func column(_ buf: Buf, _ part: Int) -> [Float] {
            (0..<rows).flatMap { r in (0..<E).map { buf.p[r * ld + 1 + part * E + $0] } }
        }
        let out = Buf(count: rows * E), lse = Buf(count: batch * heads * L)
        let grads = Buf(count: rows * ld, value: .nan)
        let pool = ThreadPool(threads: threads)
        CausalAttention.forward(q: slice(packed.p, 0), k: slice(packed.p, 1), v: slice(packed.p, 2), out: AttentionRows(out.p, stride: E),
                                logSumExp: lse.p, shape: s, pool: pool)
        CausalAttention.backward(dOut: AttentionRows(dOut.p, stride: E), q: slice(packed.p, 0), k: slice(packed.p, 1), v: slice(packed.p, 2),
                                 out: AttentionRows(out.p, stride: E), logSumExp: lse.c, dq: slice(grads.p, 0), dk: slice(grads.p, 1),
                                 dv: slice(grads.p, 2), shape: s, pool: pool)
        let ref = Self.reference(q: column(packed, 0), k: column(packed, 1), v: column(packed, 2), dOut: dOut.a, s)
        let errors = [("out", Self.error(out.a, ref.o)), ("lse", Self.error(lse.a, ref.lse)),
                      ("dq", Self.error(column(grads, 0), ref.dq)), ("dk", Self.error(column(grads, 1), ref.dk)),
                      ("dv", Self.error(column(grads, 2), ref.dv))]
        print("attention \(s), scale \(s.scale): " + errors.map { "\($0.0) \(String(format: "%.1e", $0.1))" }.joined(separator: ", "))
        for (name, e) in errors { XCTAssertLessThanOrEqual(e, 2e-5, "\(s): \(name)") }
        // The padding columns around the slices are not written.
        for r in 0..<rows { XCTAssertTrue(grads.p[r * ld].isNaN && grads.p[r * ld + 3 * E + 1].isNaN, "row \(r): a gradient slice spilled") }
    }

    func testOneToken() { run(batch: 1, length: 1, heads: 1, headDim: 4, seed: 1) }

    func testLengthsAcrossTileBoundaries() {
        run(batch: 2, length: 65, heads: 3, headDim: 5, seed: 2)
        run(batch: 1, length: 130, heads: 2, headDim: 16, seed: 3)
        run(batch: 3, length: 64, heads: 1, headDim: 24, threads: 1, seed: 4)
    }

    /// Scores of tens: each row's softmax is nearly one-hot and its max moves between tiles.
    func testSharpSoftmax() {
        run(batch: 2, length: 150, heads: 2, headDim: 33, scale: 2, spread: 2, seed: 5)
    }

    func testWideHeads() { run(batch: 1, length: 97, heads: 2, headDim: 64, seed: 6) }

    /// The KV-cache step at every position equals the parallel forward's row (batch 3, L 40,
    /// head dim 20: a tail after a whole SIMD16 vector), and the position counter advances.
    func testStepMatchesForward() {
        let s = AttentionShape(batch: 3, length: 40, heads: 2, headDim: 20)
        let E = s.width, L = s.length, rows = s.batch * L
        var rng = TestRNG(7)
        let q = Buf(rng.floats(rows * E, -2, 2)), k = Buf(rng.floats(rows * E, -2, 2)), v = Buf(rng.floats(rows * E))
        let out = Buf(count: rows * E), lse = Buf(count: s.batch * s.heads * L)
        let pool = ThreadPool(threads: 2)
        CausalAttention.forward(q: AttentionRows(q.p, stride: E), k: AttentionRows(k.p, stride: E), v: AttentionRows(v.p, stride: E),
                                out: AttentionRows(out.p, stride: E), logSumExp: lse.p, shape: s, pool: pool)
        let maxLength = 45
        let kc = Buf(count: s.batch * maxLength * E), vc = Buf(count: s.batch * maxLength * E)
        let position = IBuf([0])
        let qt = Buf(count: s.batch * E), kt = Buf(count: s.batch * E), vt = Buf(count: s.batch * E), yt = Buf(count: s.batch * E)
        var worst = 0.0
        for t in 0..<L {
            for b in 0..<s.batch {
                for c in 0..<E {
                    qt.p[b * E + c] = q.p[(b * L + t) * E + c]; kt.p[b * E + c] = k.p[(b * L + t) * E + c]; vt.p[b * E + c] = v.p[(b * L + t) * E + c]
                }
            }
            CausalAttention.step(q: AttentionRows(qt.p, stride: E), k: AttentionRows(kt.p, stride: E), v: AttentionRows(vt.p, stride: E),
                                 keyCache: kc.p, valueCache: vc.p, maxLength: maxLength, position: position.p, out: AttentionRows(yt.p, stride: E),
                                 batch: s.batch, heads: s.heads, headDim: s.headDim, scale: s.scale, pool: pool)
            XCTAssertEqual(position.p[0], Int32(t + 1))
            for b in 0..<s.batch {
                for c in 0..<E { worst = max(worst, Double(abs(yt.p[b * E + c] - out.p[(b * L + t) * E + c]))) }
            }
        }
        print("attention step vs forward: max abs diff \(worst)")
        XCTAssertLessThanOrEqual(worst, 1e-5)
    }
}
