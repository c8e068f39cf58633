// Causal depthwise 1-D convolution over time (the Mamba block's conv, d_conv = 4; any width K),
// token-major, with optional bias and an optional fused SiLU on the output.
//
//   z[b, t, c] = bias[c] + Σ_{k=0}^{K−1} w[c, k] · x[b, t − (K−1) + k, c]     (x = 0 for negative time)
//   y = z, or y = silu(z) when `silu`
//
// x: (batch, L, C) with row stride ldx (x[b, t, c] at x + (b·L + t)·ldx + c), so x may be a
// column slice of a wider tensor; y likewise with ldy. weight: (C, K), PyTorch's Conv1d weight
// (C, 1, K) squeezed; bias: C or nil.
//
// Work is cut into tiles of (one batch entry, up to `tileLength` time steps); within a tile
// the channels are walked in 16-wide groups so the K weights of a group sit in registers and
// the tile's rows stay in cache. The backward's weight/bias gradients are reduced through
// per-tile partials (caller's scratch) summed in tile order: deterministic for any thread count.
// K = 4 (Mamba's d_conv) has register-resident fast paths; other widths take a generic path.
// Allocation-free for K ≤ 21 (per-group weights and windows live in a fixed 4 KiB stack buffer;
// wider kernels allocate it per tile).

public enum CausalConv1d {
    /// Time steps per tile.
    public static let tileLength = 256

    @inline(__always)
    static func tiles(batch: Int, length L: Int) -> (perBatch: Int, total: Int) {
        let per = (L + tileLength - 1) / tileLength
        return (per, batch * per)
    }

    @inline(__always)
    static func ld(_ p: UnsafePointer<Float>, _ w: Int) -> F16 { w == 16 ? load16(p) : loadPartial(p, w) }
    @inline(__always)
    static func ld(_ p: UnsafeMutablePointer<Float>, _ w: Int) -> F16 { w == 16 ? load16(p) : loadPartial(p, w) }
    @inline(__always)
    static func st(_ v: F16, _ p: UnsafeMutablePointer<Float>, _ w: Int) { if w == 16 { store16(v, p) } else { storePartial(v, p, w) } }

    /// Loads the group's weights transposed: wv[k][j] = weight[(c0 + j)·K + k] (0 beyond w).
    @inline(__always)
    static func loadWeights(_ weight: UnsafePointer<Float>, c0: Int, w: Int, K: Int, into wv: UnsafeMutablePointer<F16>) {
        for k in 0..<K {
            var v = F16()
            for j in 0..<w { v[j] = weight[(c0 + j) * K + k] }
            wv[k] = v
        }
    }

    /// Pre-activation z at (row t of a batch entry whose row 0 is at xb) for one channel group.
    @inline(__always)
    static func preActivation(_ xb: UnsafePointer<Float>, ldx: Int, t: Int, c0: Int, w: Int, K: Int,
                              bias: F16, wv: UnsafeMutablePointer<F16>) -> F16 {
        var acc = bias
        let kStart = max(0, K - 1 - t)
        var p = xb + (t - (K - 1) + kStart) * ldx + c0
        for k in kStart..<K {
            acc = acc.addingProduct(wv[k], ld(p, w))
            p += ldx
        }
        return acc
    }

    /// Forward: y (overwrite) = conv(x) [+ SiLU]. Shapes in the file header.
    public static func forward(x: UnsafePointer<Float>, weight: UnsafePointer<Float>, bias: UnsafePointer<Float>?,
                               y: UnsafeMutablePointer<Float>, batch: Int, length L: Int, channels C: Int, width K: Int,
                               ldx: Int? = nil, ldy: Int? = nil, silu: Bool = false, pool: ThreadPool) {
        let ldx = ldx ?? C, ldy = ldy ?? C
        let (perBatch, total) = tiles(batch: batch, length: L)
        pool.forEach(total) { tile in
            let b = tile / perBatch
            let t0 = (tile % perBatch) * tileLength, t1 = min(L, t0 + tileLength)
            let xb = x + b * L * ldx, yb = y + b * L * ldy
            withStackF16(count: K) { wv in
                var c0 = 0
                while c0 < C {
                    let w = min(16, C - c0)
                    loadWeights(weight, c0: c0, w: w, K: K, into: wv)
                    let bv = bias.map { ld($0 + c0, w) } ?? F16()
                    if K == 4 {
                        forwardGroup4(xb, ldx: ldx, yb, ldy: ldy, t0: t0, t1: t1, c0: c0, w: w, bias: bv, wv: wv, silu: silu)
                    } else {
                        for t in t0..<t1 {
                            var z = preActivation(xb, ldx: ldx, t: t, c0: c0, w: w, K: K, bias: bv, wv: wv)
                            if silu { z = silu16(z) }
                            st(z, yb + t * ldy + c0, w)
                        }
                    }
                    c0 += 16
                }
            }
        }
    }

    /// K = 4 forward of one channel group over rows t0..<t1: weights and the three previous
    /// input rows stay in registers. Same arithmetic order as `preActivation`.
    @inline(__always)
    static func forwardGroup4(_ xb: UnsafePointer<Float>, ldx: Int, _ yb: UnsafeMutablePointer<Float>, ldy: Int,
                              t0: Int, t1: Int, c0: Int, w: Int, bias: F16, wv: UnsafeMutablePointer<F16>, silu: Bool) {
        let w0 = wv[0], w1 = wv[1], w2 = wv[2], w3 = wv[3]
        // Inputs at t−3, t−2, t−1 (zero before the sequence start).
        var xm3 = t0 >= 3 ? ld(xb + (t0 - 3) * ldx + c0, w) : F16()
        var xm2 = t0 >= 2 ? ld(xb + (t0 - 2) * ldx + c0, w) : F16()
        var xm1 = t0 >= 1 ? ld(xb + (t0 - 1) * ldx + c0, w) : F16()
        var px = xb + t0 * ldx + c0
        var py = yb + t0 * ldy + c0
        for _ in t0..<t1 {
            let xt = ld(px, w)
            var z = bias.addingProduct(w0, xm3)
            z = z.addingProduct(w1, xm2)
            z = z.addingProduct(w2, xm1)
            z = z.addingProduct(w3, xt)
            if silu { z = silu16(z) }
            st(z, py, w)
            xm3 = xm2; xm2 = xm1; xm1 = xt
            px += ldx; py += ldy
        }
    }

    /// Floats of scratch that `backward` needs for dWeight/dBias partials: tiles × (K + 1) × C
    /// (0 when neither is requested is also accepted: pass any pointer).
    public static func backwardScratchCount(batch: Int, length: Int, channels: Int, width: Int) -> Int {
        tiles(batch: batch, length: length).total * (width + 1) * channels
    }

    /// Backward of `forward` (same x, weight, bias, silu flag; the pre-activation is recomputed):
    ///   dz = dy (· silu'(z) when `silu`)
    ///   dx[b, t, c]   (+)= Σ_k w[c, k] · dz[b, t + (K−1) − k, c]   (ld ldx, like x)
    ///   dWeight[c, k] (+)= Σ_{b,t} dz[b, t, c] · x[b, t − (K−1) + k, c]
    ///   dBias[c]      (+)= Σ_{b,t} dz[b, t, c]
    /// dy: like y (ld ldy). Any gradient may be nil. `accumulate` (default true) adds into all
    /// gradients; false overwrites. scratch: `backwardScratchCount(...)` floats, clobbered
    /// (unused when dWeight and dBias are nil).
    public static func backward(dy: UnsafePointer<Float>, x: UnsafePointer<Float>, weight: UnsafePointer<Float>,
                                bias: UnsafePointer<Float>?, dx: UnsafeMutablePointer<Float>?,
                                dWeight: UnsafeMutablePointer<Float>?, dBias: UnsafeMutablePointer<Float>?,
                                batch: Int, length L: Int, channels C: Int, width K: Int,
                                ldx: Int? = nil, ldy: Int? = nil, silu: Bool = false,
                                scratch: UnsafeMutablePointer<Float>, accumulate: Bool = true, pool: ThreadPool) {
        let ldx = ldx ?? C, ldy = ldy ?? C
        let (perBatch, total) = tiles(batch: batch, length: L)
        let needParams = dWeight != nil || dBias != nil
        let partialStride = (K + 1) * C
        pool.forEach(total) { tile in
            let b = tile / perBatch
            let t0 = (tile % perBatch) * tileLength, t1 = min(L, t0 + tileLength)
            let xb = x + b * L * ldx, gb = dy + b * L * ldy
            let dxb = dx.map { $0 + b * L * ldx }
            let part = scratch + tile * partialStride
            // Stack buffer: K weights, K dz window, K dweight accumulators.
            withStackF16(count: 3 * K) { wv in
                let win = wv + K, dw = wv + 2 * K
                var c0 = 0
                while c0 < C {
                    let w = min(16, C - c0)
                    loadWeights(weight, c0: c0, w: w, K: K, into: wv)
                    let bv = bias.map { ld($0 + c0, w) } ?? F16()
                    var db = F16()
                    if K == 4 {
                        backwardGroup4(xb, ldx: ldx, gb, ldy: ldy, dxb, L: L, t0: t0, t1: t1, c0: c0, w: w, bias: bv, wv: wv,
                                       silu: silu, needParams: needParams, accumulate: accumulate, dw: dw, db: &db)
                    } else {
                        for k in 0..<K { win[k] = F16(); dw[k] = F16() }
                        // win[j] holds dz(t − (K−1) + j) for the current t.
                        for t in t0..<(t1 + K - 1) {
                            var dz = F16()
                            if t < L {
                                dz = ld(gb + t * ldy + c0, w)
                                if silu {
                                    dz *= siluGrad16(preActivation(xb, ldx: ldx, t: t, c0: c0, w: w, K: K, bias: bv, wv: wv))
                                }
                                if needParams && t < t1 {
                                    db += dz
                                    let kStart = max(0, K - 1 - t)
                                    var p = xb + (t - (K - 1) + kStart) * ldx + c0
                                    for k in kStart..<K {
                                        dw[k] = dw[k].addingProduct(dz, ld(p, w))
                                        p += ldx
                                    }
                                }
                            }
                            for j in 0..<(K - 1) { win[j] = win[j + 1] }
                            win[K - 1] = dz
                            let tp = t - (K - 1)
                            if let dxb, tp >= t0 {
                                var g = F16()
                                for k in 0..<K { g = g.addingProduct(wv[k], win[K - 1 - k]) }
                                let o = dxb + tp * ldx + c0
                                if accumulate { g += ld(o, w) }
                                st(g, o, w)
                            }
                        }
                    }
                    if needParams {
                        for k in 0..<K { st(dw[k], part + k * C + c0, w) }
                        st(db, part + K * C + c0, w)
                    }
                    c0 += 16
                }
            }
        }
        guard needParams else { return }
        // Sum the tile partials in tile order, in double.
        pool.forRanges(C, grain: 16) { cr in
            for c in cr {
                for k in 0...K {
                    var s = 0.0
                    for tile in 0..<total { s += Double(scratch[tile * partialStride + k * C + c]) }
                    if k < K {
                        if let dWeight { let o = c * K + k; dWeight[o] = accumulate ? Float(Double(dWeight[o]) + s) : Float(s) }
                    } else if let dBias {
                        dBias[c] = accumulate ? Float(Double(dBias[c]) + s) : Float(s)
                    }
                }
            }
        }
    }

    /// K = 4 backward of one channel group over the tile's rows t0..<t1 (plus a 3-row halo of
    /// dz after it for dx), everything in registers. Writes dw[0..<4] and db.
    @inline(__always)
    static func backwardGroup4(_ xb: UnsafePointer<Float>, ldx: Int, _ gb: UnsafePointer<Float>, ldy: Int,
                               _ dxb: UnsafeMutablePointer<Float>?, L: Int, t0: Int, t1: Int, c0: Int, w: Int,
                               bias: F16, wv: UnsafeMutablePointer<F16>, silu: Bool, needParams: Bool,
                               accumulate: Bool, dw: UnsafeMutablePointer<F16>, db: inout F16) {
        let w0 = wv[0], w1 = wv[1], w2 = wv[2], w3 = wv[3]
        var xm3 = t0 >= 3 ? ld(xb + (t0 - 3) * ldx + c0, w) : F16()
        var xm2 = t0 >= 2 ? ld(xb + (t0 - 2) * ldx + c0, w) : F16()
        var xm1 = t0 >= 1 ? ld(xb + (t0 - 1) * ldx + c0, w) : F16()
        // dz at t−3, t−2, t−1.
        var dm3 = F16(), dm2 = F16(), dm1 = F16()
        var a0 = F16(), a1 = F16(), a2 = F16(), a3 = F16(), ab = F16()
        let tEnd = min(L, t1 + 3)
        for t in t0..<(t1 + 3) {
            var dz = F16(), xt = F16()
            if t < tEnd {
                xt = ld(xb + t * ldx + c0, w)
                dz = ld(gb + t * ldy + c0, w)
                if silu {
                    var z = bias.addingProduct(w0, xm3)
                    z = z.addingProduct(w1, xm2)
                    z = z.addingProduct(w2, xm1)
                    z = z.addingProduct(w3, xt)
                    dz *= siluGrad16(z)
                }
                if needParams && t < t1 {
                    ab += dz
                    a0 = a0.addingProduct(dz, xm3)
                    a1 = a1.addingProduct(dz, xm2)
                    a2 = a2.addingProduct(dz, xm1)
                    a3 = a3.addingProduct(dz, xt)
                }
            }
            if let dxb, t >= t0 + 3 {
                // dx(t − 3) = Σ_k w_k dz(t − k), same order as the generic path.
                var g = w0 * dz
                g = g.addingProduct(w1, dm1)
                g = g.addingProduct(w2, dm2)
                g = g.addingProduct(w3, dm3)
                let o = dxb + (t - 3) * ldx + c0
                if accumulate { g += ld(o, w) }
                st(g, o, w)
            }
            xm3 = xm2; xm2 = xm1; xm1 = xt
            dm3 = dm2; dm2 = dm1; dm1 = dz
        }
        dw[0] = a0; dw[1] = a1; dw[2] = a2; dw[3] = a3
        db = ab
    }

    /// One generation step. state: (batch, C, K − 1), the last K − 1 inputs per channel, oldest
    /// first; x: (batch, C) (row stride ldx); y: (batch, C) (row stride ldy), overwritten:
    ///   y[b, c] = bias[c] + Σ_{k<K−1} w[c, k]·state[b, c, k] + w[c, K−1]·x[b, c]   (then SiLU if `silu`)
    /// and state[b, c, :] is shifted left in place with x[b, c] appended. Allocation-free.
    public static func step(x: UnsafePointer<Float>, state: UnsafeMutablePointer<Float>, weight: UnsafePointer<Float>,
                            bias: UnsafePointer<Float>?, y: UnsafeMutablePointer<Float>, batch: Int, channels C: Int,
                            width K: Int, ldx: Int? = nil, ldy: Int? = nil, silu: Bool = false, pool: ThreadPool) {
        let ldx = ldx ?? C, ldy = ldy ?? C
        let S = K - 1
        pool.forRanges(batch, grain: max(1, 4096 / max(1, C * K))) { br in
            for b in br {
                var c0 = 0
                while c0 < C {
                    let w = min(16, C - c0)
                    var acc = F16()
                    for j in 0..<w {
                        let c = c0 + j
                        let s = state + (b * C + c) * S, wc = weight + c * K
                        let xv = x[b * ldx + c]
                        var a = bias?[c] ?? 0
                        for k in 0..<S { a += wc[k] * s[k] }
                        a += wc[S] * xv
                        if S > 0 {
                            for k in 0..<(S - 1) { s[k] = s[k + 1] }
                            s[S - 1] = xv
                        }
                        acc[j] = a
                    }
                    if silu { acc = silu16(acc) }
                    st(acc, y + b * ldy + c0, w)
                    c0 += 16
                }
            }
        }
    }
}

/// Runs body with a buffer of `count` F16 values: a fixed 64-entry (4 KiB) stack array when
/// it fits, a heap allocation otherwise. (withUnsafeTemporaryAllocation only uses the stack
/// up to 1 KiB.)
@inline(__always)
func withStackF16(count: Int, _ body: (UnsafeMutablePointer<F16>) -> Void) {
    if count <= 64 {
        var buf = StackF16x64()
        withUnsafeMutableBytes(of: &buf) { body($0.baseAddress!.assumingMemoryBound(to: F16.self)) }
    } else {
        let p = UnsafeMutablePointer<F16>.allocate(capacity: count)
        body(p)
        p.deallocate()
    }
}

/// 64 SIMD16<Float> of stack storage.
struct StackF16x64 {
    var a = (F16(), F16(), F16(), F16(), F16(), F16(), F16(), F16(), F16(), F16(), F16(), F16(), F16(), F16(), F16(), F16())
    var b = (F16(), F16(), F16(), F16(), F16(), F16(), F16(), F16(), F16(), F16(), F16(), F16(), F16(), F16(), F16(), F16())
    var c = (F16(), F16(), F16(), F16(), F16(), F16(), F16(), F16(), F16(), F16(), F16(), F16(), F16(), F16(), F16(), F16())
    var d = (F16(), F16(), F16(), F16(), F16(), F16(), F16(), F16(), F16(), F16(), F16(), F16(), F16(), F16(), F16(), F16())
}
