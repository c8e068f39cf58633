import Foundation

// Causal multi-head scaled-dot-product attention, FlashAttention's way (Dao et al. 2022;
// Dao 2023, FlashAttention-2): keys and values are visited in tiles with an online softmax (a
// running max m and sum ℓ per query row; the accumulated output is rescaled by e^{m_old − m_new}
// when the max grows), so a task never holds more than a tile of scores, and the backward
// recomputes them from the saved row log-sum-exp m + log ℓ. At L = 16 000 the L×L scores of one
// head would be 1 GB.
//
//     s_ij = scale·q_i·k_j (j ≤ i),   p_ij = exp(s_ij − lse_i),   o_i = Σ_j p_ij·v_j
//     backward (δ_i = do_i·o_i):  dv_j = Σ_i p_ij·do_i,   ds_ij = p_ij·(do_i·v_j − δ_i),
//                                 dq_i = scale·Σ_j ds_ij·k_j,   dk_j = scale·Σ_i ds_ij·q_i
//
// Layout: token-major rows (batch·L, heads·headDim); head h reads columns
// h·headDim..<(h+1)·headDim; any row stride (q, k, v are column slices of one in_proj output).

/// Sizes of one causal attention: `batch` sequences of `length` tokens, `heads` heads of
/// `headDim` channels.
public struct AttentionShape: Sendable, Equatable, CustomStringConvertible {
    public var batch: Int
    public var length: Int
    public var heads: Int
    public var headDim: Int
    /// Multiplies q·k: 1/√headDim unless given (PyTorch's default).
    public var scale: Float

    public init(batch: Int, length: Int, heads: Int, headDim: Int, scale: Float? = nil) {
        precondition(batch >= 0 && length >= 0 && heads > 0 && headDim > 0, "attention shape: batch \(batch), L \(length), heads \(heads), headDim \(headDim)")
        self.batch = batch
        self.length = length
        self.heads = heads
        self.headDim = headDim
        self.scale = scale ?? 1 / Float(headDim).squareRoot()
    }

    /// Columns of q, k, v and the output: heads·headDim.
    public var width: Int { heads * headDim }

    public var description: String { "batch \(batch), L \(length), \(heads) heads of \(headDim)" }
}

/// A row-major matrix and its row stride in floats (a column slice has a stride above its width).
public struct AttentionRows: @unchecked Sendable {
    public let base: UnsafeMutablePointer<Float>
    public let stride: Int

    public init(_ base: UnsafeMutablePointer<Float>, stride: Int) {
        self.base = base
        self.stride = stride
    }

    @inline(__always) func row(_ r: Int) -> UnsafeMutablePointer<Float> { base + r * stride }
}

public enum CausalAttention {
    /// Query rows per forward task; keys per tile (four SIMD16 groups of scores).
    public static let queryTile = 64
    public static let keyTile = 64

    /// headDim rounded up to whole SIMD16 vectors (scratch rows are zero-padded to it).
    @inline(__always) static func padded(_ d: Int) -> Int { (d + 15) & ~15 }

    @inline(__always) static func laneMask(_ group: Int, below valid: Int) -> SIMDMask<SIMD16<Int32>> {
        SIMD16<Int32>(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15) &+ Int32(16 * group) .< Int32(valid)
    }

    /// out (batch·L, width) and logSumExp (batch, heads, L) from q, k, v. Tasks: (batch, head,
    /// query tile); each allocates O(tile·headDim) scratch.
    public static func forward(q: AttentionRows, k: AttentionRows, v: AttentionRows, out: AttentionRows,
                               logSumExp: UnsafeMutablePointer<Float>, shape s: AttentionShape, pool: ThreadPool) {
        let tiles = (s.length + queryTile - 1) / queryTile
        pool.forEach(s.batch * s.heads * tiles) { task in
            let bh = task / tiles
            forwardTile(q: q, k: k, v: v, out: out, lse: logSumExp + bh * s.length, shape: s,
                        batch: bh / s.heads, head: bh % s.heads, tile: task % tiles)
        }
    }

    static func forwardTile(q: AttentionRows, k: AttentionRows, v: AttentionRows, out: AttentionRows,
                            lse: UnsafeMutablePointer<Float>, shape s: AttentionShape, batch b: Int, head h: Int, tile: Int) {
        let L = s.length, D = s.headDim, P = padded(D), BQ = queryTile, BK = keyTile
        let i0 = tile * BQ, i1 = min(L, i0 + BQ), nq = i1 - i0
        let first = b * L, col = h * D
        let scratch = UnsafeMutablePointer<Float>.allocate(capacity: 2 * BQ * P + D * BK + BK * P + 2 * BQ + BK)
        defer { scratch.deallocate() }
        // Scaled queries and output accumulators (BQ × P), the key tile d-major (D × BK), the
        // value tile (BK × P), the running max and sum (BQ), one row's probabilities (BK).
        let Qs = scratch, acc = Qs + BQ * P, Kt = acc + BQ * P, Vp = Kt + D * BK, m = Vp + BK * P, l = m + BQ, pRow = l + BQ
        for r in 0..<nq {
            let src = q.row(first + i0 + r) + col, dst = Qs + r * P
            for d in 0..<D { dst[d] = s.scale * src[d] }
            for d in D..<P { dst[d] = 0 }
            (acc + r * P).initialize(repeating: 0, count: P)
            m[r] = -.infinity
            l[r] = 0
        }
        // Keys past the tile's last query are masked for all its rows.
        for j0 in stride(from: 0, to: i1, by: BK) {
            let nk = min(j0 + BK, i1) - j0
            loadTransposed(k, rows: first + j0, count: nk, column: col, width: D, into: Kt, tile: BK)
            for c in 0..<nk {
                let src = v.row(first + j0 + c) + col, dst = Vp + c * P
                dst.update(from: src, count: D)
                for d in D..<P { dst[d] = 0 }
            }
            for r in 0..<nq {
                let i = i0 + r
                if j0 > i { continue }
                let valid = min(nk, i + 1 - j0)
                // Sixteen keys' scores per SIMD16 FMA: Kt holds the tile d-major.
                var s0 = F16(), s1 = F16(), s2 = F16(), s3 = F16()
                let qr = Qs + r * P
                for d in 0..<D {
                    let qd = F16(repeating: qr[d]), kr = Kt + d * BK
                    s0 = s0.addingProduct(qd, load16(kr))
                    s1 = s1.addingProduct(qd, load16(kr + 16))
                    s2 = s2.addingProduct(qd, load16(kr + 32))
                    s3 = s3.addingProduct(qd, load16(kr + 48))
                }
                let m0 = laneMask(0, below: valid), m1 = laneMask(1, below: valid), m2 = laneMask(2, below: valid), m3 = laneMask(3, below: valid)
                let ninf = F16(repeating: -.infinity)
                s0 = simdSelect(m0, s0, ninf); s1 = simdSelect(m1, s1, ninf); s2 = simdSelect(m2, s2, ninf); s3 = simdSelect(m3, s3, ninf)
                let tileMax = max(hmax(simdMax(s0, s1)), hmax(simdMax(s2, s3)))
                let mOld = m[r], mNew = max(mOld, tileMax)
                let alpha: Float = mOld == -.infinity ? 0 : Foundation.exp(mOld - mNew)
                let mv = F16(repeating: mNew), zero = F16()
                // Masked lanes are set to 0 explicitly (fastExp(−inf) is 1e-38, not 0).
                let p0 = simdSelect(m0, fastExp(s0 - mv), zero), p1 = simdSelect(m1, fastExp(s1 - mv), zero)
                let p2 = simdSelect(m2, fastExp(s2 - mv), zero), p3 = simdSelect(m3, fastExp(s3 - mv), zero)
                l[r] = l[r] * alpha + hsum((p0 + p1) + (p2 + p3))
                m[r] = mNew
                store16(p0, pRow); store16(p1, pRow + 16); store16(p2, pRow + 32); store16(p3, pRow + 48)
                let ar = acc + r * P
                var c = 0
                while c < P {
                    var a = load16(ar + c) * alpha
                    for j in 0..<valid { a = a.addingProduct(F16(repeating: pRow[j]), load16(Vp + j * P + c)) }
                    store16(a, ar + c)
                    c += 16
                }
            }
        }
        for r in 0..<nq {
            let inv = 1 / l[r], ar = acc + r * P, dst = out.row(first + i0 + r) + col
            for d in 0..<D { dst[d] = ar[d] * inv }
            lse[i0 + r] = m[r] + Foundation.log(l[r])
        }
    }

    /// Rows first..<first+count of one head's columns, transposed into `dst` (width × tile,
    /// d-major), columns count..<tile zero.
    @inline(__always)
    static func loadTransposed(_ x: AttentionRows, rows first: Int, count: Int, column: Int, width D: Int,
                               into dst: UnsafeMutablePointer<Float>, tile: Int) {
        for c in 0..<count {
            let src = x.row(first + c) + column
            for d in 0..<D { dst[d * tile + c] = src[d] }
        }
        if count < tile {
            for d in 0..<D { (dst + d * tile + count).initialize(repeating: 0, count: tile - count) }
        }
    }

    /// dq, dk, dv (overwritten) from dOut and the forward's out and logSumExp. Tasks: (batch,
    /// head), key tiles outermost (FlashAttention-2's order: dk, dv of a tile stay in scratch
    /// while the queries at or after it pass); each allocates O(L·headDim) scratch (δ and the dq
    /// accumulators) plus O(tile·headDim).
    public static func backward(dOut: AttentionRows, q: AttentionRows, k: AttentionRows, v: AttentionRows, out: AttentionRows,
                                logSumExp: UnsafePointer<Float>, dq: AttentionRows, dk: AttentionRows, dv: AttentionRows,
                                shape s: AttentionShape, pool: ThreadPool) {
        pool.forEach(s.batch * s.heads) { bh in
            backwardHead(dOut: dOut, q: q, k: k, v: v, out: out, lse: logSumExp + bh * s.length, dq: dq, dk: dk, dv: dv,
                         shape: s, batch: bh / s.heads, head: bh % s.heads)
        }
    }

    static func backwardHead(dOut: AttentionRows, q: AttentionRows, k: AttentionRows, v: AttentionRows, out: AttentionRows,
                             lse: UnsafePointer<Float>, dq: AttentionRows, dk: AttentionRows, dv: AttentionRows,
                             shape s: AttentionShape, batch b: Int, head h: Int) {
        let L = s.length, D = s.headDim, P = padded(D), BK = keyTile
        let first = b * L, col = h * D
        let count = L + L * P + 2 * D * BK + 3 * BK * P + 2 * P + 2 * BK
        let scratch = UnsafeMutablePointer<Float>.allocate(capacity: count)
        defer { scratch.deallocate() }
        let delta = scratch, dQacc = delta + L, Kt = dQacc + L * P, Vt = Kt + D * BK, Kp = Vt + D * BK
        let dKacc = Kp + BK * P, dVacc = dKacc + BK * P, qp = dVacc + BK * P, dop = qp + P, pRow = dop + P, dsRow = pRow + BK
        for i in 0..<L {
            let g = dOut.row(first + i) + col, o = out.row(first + i) + col
            var t: Float = 0
            for d in 0..<D { t += g[d] * o[d] }
            delta[i] = t
        }
        dQacc.initialize(repeating: 0, count: L * P)
        for d in D..<P { qp[d] = 0; dop[d] = 0 }
        let zero = F16()
        for j0 in stride(from: 0, to: L, by: BK) {
            let nk = min(j0 + BK, L) - j0
            loadTransposed(k, rows: first + j0, count: nk, column: col, width: D, into: Kt, tile: BK)
            loadTransposed(v, rows: first + j0, count: nk, column: col, width: D, into: Vt, tile: BK)
            for c in 0..<nk {
                let src = k.row(first + j0 + c) + col, dst = Kp + c * P
                dst.update(from: src, count: D)
                for d in D..<P { dst[d] = 0 }
            }
            dKacc.initialize(repeating: 0, count: nk * P)
            dVacc.initialize(repeating: 0, count: nk * P)
            // Queries before j0 see none of these keys.
            for i in j0..<L {
                let valid = min(nk, i + 1 - j0)
                qp.update(from: q.row(first + i) + col, count: D)
                dop.update(from: dOut.row(first + i) + col, count: D)
                var s0 = F16(), s1 = F16(), s2 = F16(), s3 = F16()
                var g0 = F16(), g1 = F16(), g2 = F16(), g3 = F16()
                for d in 0..<D {
                    let qd = F16(repeating: qp[d]), kr = Kt + d * BK
                    s0 = s0.addingProduct(qd, load16(kr))
                    s1 = s1.addingProduct(qd, load16(kr + 16))
                    s2 = s2.addingProduct(qd, load16(kr + 32))
                    s3 = s3.addingProduct(qd, load16(kr + 48))
                }
                for d in 0..<D {
                    let gd = F16(repeating: dop[d]), vr = Vt + d * BK
                    g0 = g0.addingProduct(gd, load16(vr))
                    g1 = g1.addingProduct(gd, load16(vr + 16))
                    g2 = g2.addingProduct(gd, load16(vr + 32))
                    g3 = g3.addingProduct(gd, load16(vr + 48))
                }
                let sc = F16(repeating: s.scale), lv = F16(repeating: lse[i]), dl = F16(repeating: delta[i])
                let m0 = laneMask(0, below: valid), m1 = laneMask(1, below: valid), m2 = laneMask(2, below: valid), m3 = laneMask(3, below: valid)
                let p0 = simdSelect(m0, fastExp(s0 * sc - lv), zero), p1 = simdSelect(m1, fastExp(s1 * sc - lv), zero)
                let p2 = simdSelect(m2, fastExp(s2 * sc - lv), zero), p3 = simdSelect(m3, fastExp(s3 * sc - lv), zero)
                store16(p0, pRow); store16(p1, pRow + 16); store16(p2, pRow + 32); store16(p3, pRow + 48)
                store16(p0 * (g0 - dl), dsRow); store16(p1 * (g1 - dl), dsRow + 16)
                store16(p2 * (g2 - dl), dsRow + 32); store16(p3 * (g3 - dl), dsRow + 48)
                let dqr = dQacc + i * P
                var c = 0
                while c < P {
                    let gv = load16(dop + c), qv = load16(qp + c)
                    var dqv = load16(dqr + c)
                    for j in 0..<valid {
                        let pj = F16(repeating: pRow[j]), dsj = F16(repeating: dsRow[j])
                        store16(load16(dVacc + j * P + c).addingProduct(pj, gv), dVacc + j * P + c)
                        store16(load16(dKacc + j * P + c).addingProduct(dsj, qv), dKacc + j * P + c)
                        dqv = dqv.addingProduct(dsj, load16(Kp + j * P + c))
                    }
                    store16(dqv, dqr + c)
                    c += 16
                }
            }
            for c in 0..<nk {
                let kd = dk.row(first + j0 + c) + col, vd = dv.row(first + j0 + c) + col
                for d in 0..<D {
                    kd[d] = s.scale * dKacc[c * P + d]
                    vd[d] = dVacc[c * P + d]
                }
            }
        }
        for i in 0..<L {
            let dst = dq.row(first + i) + col, src = dQacc + i * P
            for d in 0..<D { dst[d] = s.scale * src[d] }
        }
    }

    /// One generation step for `batch` streams over a KV cache of `maxLength` rows per stream:
    /// writes k, v (batch, heads·headDim) as row `position[0]` of keyCache and valueCache
    /// ((batch, maxLength, heads·headDim), contiguous), sets out (batch, heads·headDim) to the
    /// attention of q over rows 0…position, then increments position[0]. Allocates nothing
    /// (scores go through 16 at a time, in stack scratch).
    public static func step(q: AttentionRows, k: AttentionRows, v: AttentionRows, keyCache: UnsafeMutablePointer<Float>,
                            valueCache: UnsafeMutablePointer<Float>, maxLength: Int, position: UnsafeMutablePointer<Int32>,
                            out: AttentionRows, batch: Int, heads: Int, headDim D: Int, scale: Float, pool: ThreadPool) {
        let pos = Int(position[0])
        precondition(pos >= 0 && pos < maxLength, "attention step: the KV cache holds \(maxLength) positions; step \(pos + 1) does not fit")
        let E = heads * D, P = padded(D)
        pool.forEach(batch * heads) { task in
            let b = task / heads, h = task % heads
            let kc = keyCache + b * maxLength * E + h * D, vc = valueCache + b * maxLength * E + h * D
            (kc + pos * E).update(from: k.row(b) + h * D, count: D)
            (vc + pos * E).update(from: v.row(b) + h * D, count: D)
            withUnsafeTemporaryAllocation(of: Float.self, capacity: 2 * P + 16) { buf in
                let qs = buf.baseAddress!, acc = qs + P, sRow = acc + P
                let src = q.row(b) + h * D
                for d in 0..<D { qs[d] = scale * src[d] }
                for d in D..<P { qs[d] = 0 }
                acc.initialize(repeating: 0, count: P)
                var m = -Float.infinity, l: Float = 0
                for j0 in stride(from: 0, through: pos, by: 16) {
                    let n = min(16, pos + 1 - j0)
                    for c in 0..<n {
                        let kr = kc + (j0 + c) * E
                        var t = F16(), d = 0
                        while d + 16 <= D { t = t.addingProduct(load16(qs + d), load16(kr + d)); d += 16 }
                        if d < D { t = t.addingProduct(load16(qs + d), loadPartial(kr + d, D - d)) }
                        sRow[c] = hsum(t)
                    }
                    let mask = laneMask(0, below: n)
                    let sv = simdSelect(mask, load16(sRow), F16(repeating: -.infinity))
                    let mNew = max(m, hmax(sv))
                    let alpha: Float = m == -.infinity ? 0 : Foundation.exp(m - mNew)
                    let pv = simdSelect(mask, fastExp(sv - F16(repeating: mNew)), F16())
                    l = l * alpha + hsum(pv)
                    m = mNew
                    store16(pv, sRow)
                    var d = 0
                    while d < P {
                        let w = min(16, D - d)
                        var a = load16(acc + d) * alpha
                        for c in 0..<n {
                            let vr = vc + (j0 + c) * E + d
                            a = a.addingProduct(F16(repeating: sRow[c]), w == 16 ? load16(vr) : loadPartial(vr, w))
                        }
                        store16(a, acc + d)
                        d += 16
                    }
                }
                let dst = out.row(b) + h * D, inv = 1 / l
                for d in 0..<D { dst[d] = acc[d] * inv }
            }
        }
        position[0] += 1
    }
}
