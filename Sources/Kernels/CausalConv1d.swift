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
// Work is cut into tiles of (one batch entry, up to `tileLength` time steps). A tile walks its
// rows in time order (sequential memory streams), each row over 16-wide channel groups; the
// groups' transposed weights (and, in the backward, the last K rows of dz and the weight/bias
// gradient accumulators) live in a fixed 8 KiB stack buffer, in channel blocks that fit it.
// K = 4 (Mamba's d_conv) has its own unrolled, time-major paths (see "K = 4 paths").
// The backward's weight/bias gradients are reduced through per-tile partials (caller's
// scratch) summed in tile order: deterministic for any thread count. Allocation-free for
// K ≤ 42 (wider kernels allocate the buffer per tile).

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

    /// Channel groups per block when each group needs `slots` F16 values of the stack buffer.
    @inline(__always)
    static func groupsPerBlock(channels C: Int, slots: Int) -> Int {
        min((C + 15) / 16, max(1, stackF16Slots / slots))
    }

    /// Transposed weights and bias of groups g0..<g1: w[k·gpb + j] = weight[(16(g0+j) + lane)·K + k]
    /// (0 beyond C), bias at w[K·gpb + j]. Built lane by lane, so callers do it once per tile
    /// and channel block, not per row block (a vector read right after lane writes stalls).
    @inline(__always)
    static func loadBlock(_ weight: UnsafePointer<Float>, _ bias: UnsafePointer<Float>?, C: Int, K: Int,
                          g0: Int, g1: Int, gpb: Int, into buf: UnsafeMutablePointer<F16>) {
        for g in g0..<g1 {
            let c0 = 16 * g, w = min(16, C - c0), j = g - g0
            for k in 0..<K {
                var v = F16()
                for l in 0..<w { v[l] = weight[(c0 + l) * K + k] }
                buf[k * gpb + j] = v
            }
            buf[K * gpb + j] = bias.map { ld($0 + c0, w) } ?? F16()
        }
    }

    /// z for one group at row t (row pointer xt = x row t + c0; rows before it at −ldx steps).
    @inline(__always)
    static func preActivation(_ xt: UnsafePointer<Float>, ldx: Int, t: Int, w: Int, K: Int,
                              wT: UnsafeMutablePointer<F16>, gpb: Int, j: Int) -> F16 {
        var z = wT[K * gpb + j]
        if K == 4 && t >= 3 {
            z = z.addingProduct(wT[j], ld(xt - 3 * ldx, w))
            z = z.addingProduct(wT[gpb + j], ld(xt - 2 * ldx, w))
            z = z.addingProduct(wT[2 * gpb + j], ld(xt - ldx, w))
            z = z.addingProduct(wT[3 * gpb + j], ld(xt, w))
        } else {
            let kStart = max(0, K - 1 - t)
            var p = xt - (K - 1 - kStart) * ldx
            for k in kStart..<K {
                z = z.addingProduct(wT[k * gpb + j], ld(p, w))
                p += ldx
            }
        }
        return z
    }

    /// Forward: y (overwrite) = conv(x) [+ SiLU]. Shapes in the file header.
    public static func forward(x: UnsafePointer<Float>, weight: UnsafePointer<Float>, bias: UnsafePointer<Float>?,
                               y: UnsafeMutablePointer<Float>, batch: Int, length L: Int, channels C: Int, width K: Int,
                               ldx: Int? = nil, ldy: Int? = nil, silu: Bool = false, pool: ThreadPool) {
        let ldx = ldx ?? C, ldy = ldy ?? C
        let (perBatch, total) = tiles(batch: batch, length: L)
        let ng = (C + 15) / 16
        let gpb = groupsPerBlock(channels: C, slots: K + 1)
        pool.forEach(total) { tile in
            let b = tile / perBatch
            let t0 = (tile % perBatch) * tileLength, t1 = min(L, t0 + tileLength)
            let xb = x + b * L * ldx, yb = y + b * L * ldy
            if K == 4 {
                forwardTile4(xb, ldx: ldx, yb, ldy: ldy, weight: weight, bias: bias, C: C, t0: t0, t1: t1, silu: silu)
                return
            }
            withStackF16(count: gpb * (K + 1)) { wT in
                var g0 = 0
                while g0 < ng {
                    let g1 = min(ng, g0 + gpb)
                    loadBlock(weight, bias, C: C, K: K, g0: g0, g1: g1, gpb: gpb, into: wT)
                    for t in t0..<t1 {
                        let xr = xb + t * ldx, yr = yb + t * ldy
                        for g in g0..<g1 {
                            let c0 = 16 * g, w = min(16, C - c0)
                            var z = preActivation(xr + c0, ldx: ldx, t: t, w: w, K: K, wT: wT, gpb: gpb, j: g - g0)
                            if silu { z = silu16(z) }
                            st(z, yr + c0, w)
                        }
                    }
                    g0 = g1
                }
            }
        }
    }

    /// Floats of scratch that `backward` needs for dWeight/dBias partials: tiles × (K + 1) × C
    /// (0 when neither is requested is also accepted: pass any pointer).
    public static func backwardScratchCount(batch: Int, length: Int, channels: Int, width: Int) -> Int {
        tiles(batch: batch, length: length).total * (width + 1) * channels
    }

    /// Backward of `forward` (same x, weight, bias, silu flag; the pre-activation is recomputed):
    ///   dz = dy (· silu'(z) when `silu`)
    ///   dx[b, t, c]   (+)= Σ_k w[c, k] · dz[b, t + (K−1) − k, c]   (row stride ldDx, default ldx)
    ///   dWeight[c, k] (+)= Σ_{b,t} dz[b, t, c] · x[b, t − (K−1) + k, c]
    ///   dBias[c]      (+)= Σ_{b,t} dz[b, t, c]
    /// dy: like y (ld ldy). Any gradient may be nil. `accumulate` (default true) adds into all
    /// gradients; false overwrites. scratch: `backwardScratchCount(...)` floats, clobbered
    /// (unused when dWeight and dBias are nil).
    public static func backward(dy: UnsafePointer<Float>, x: UnsafePointer<Float>, weight: UnsafePointer<Float>,
                                bias: UnsafePointer<Float>?, dx: UnsafeMutablePointer<Float>?,
                                dWeight: UnsafeMutablePointer<Float>?, dBias: UnsafeMutablePointer<Float>?,
                                batch: Int, length L: Int, channels C: Int, width K: Int,
                                ldx: Int? = nil, ldy: Int? = nil, ldDx: Int? = nil, silu: Bool = false,
                                scratch: UnsafeMutablePointer<Float>, accumulate: Bool = true, pool: ThreadPool) {
        let ldx = ldx ?? C, ldy = ldy ?? C, lddx = ldDx ?? ldx
        let (perBatch, total) = tiles(batch: batch, length: L)
        let needParams = dWeight != nil || dBias != nil
        let partialStride = (K + 1) * C
        let ng = (C + 15) / 16
        // Per group: K weights + bias, K dweight accumulators + dbias, K rows of dz.
        let gpb = groupsPerBlock(channels: C, slots: 3 * K + 2)
        pool.forEach(total) { tile in
            let b = tile / perBatch
            let t0 = (tile % perBatch) * tileLength, t1 = min(L, t0 + tileLength)
            let xb = x + b * L * ldx, gb = dy + b * L * ldy
            let dxb = dx.map { $0 + b * L * lddx }
            let part = scratch + tile * partialStride
            if K == 4 {
                backwardTile4(xb, ldx: ldx, gb, ldy: ldy, dxb, lddx: lddx, weight: weight, bias: bias, C: C, L: L, t0: t0, t1: t1,
                              silu: silu, needParams: needParams, accumulate: accumulate, part: part)
                return
            }
            withStackF16(count: gpb * (3 * K + 2)) { buf in
                let wT = buf, acc = buf + (K + 1) * gpb, ring = buf + (2 * K + 2) * gpb
                var g0 = 0
                while g0 < ng {
                    let g1 = min(ng, g0 + gpb)
                    loadBlock(weight, bias, C: C, K: K, g0: g0, g1: g1, gpb: gpb, into: wT)
                    acc.initialize(repeating: F16(), count: (K + 1) * gpb)
                    // ring[slot·gpb + j]: dz of the row whose slot is `slot`; row t uses slot `head`.
                    ring.initialize(repeating: F16(), count: K * gpb)
                    var head = 0
                    for t in t0..<(t1 + K - 1) {
                        let inside = t < L
                        let xr = xb + t * ldx, gr = gb + t * ldy
                        let tp = t - (K - 1)
                        let dxr = dxb.map { $0 + tp * lddx }
                        for g in g0..<g1 {
                            let c0 = 16 * g, w = min(16, C - c0), j = g - g0
                            var dz = F16()
                            if inside {
                                dz = ld(gr + c0, w)
                                if silu {
                                    dz *= siluGrad16(preActivation(xr + c0, ldx: ldx, t: t, w: w, K: K, wT: wT, gpb: gpb, j: j))
                                }
                                if needParams && t < t1 {
                                    acc[K * gpb + j] += dz
                                    if K == 4 && t >= 3 {
                                        let xt = xr + c0
                                        acc[j] = acc[j].addingProduct(dz, ld(xt - 3 * ldx, w))
                                        acc[gpb + j] = acc[gpb + j].addingProduct(dz, ld(xt - 2 * ldx, w))
                                        acc[2 * gpb + j] = acc[2 * gpb + j].addingProduct(dz, ld(xt - ldx, w))
                                        acc[3 * gpb + j] = acc[3 * gpb + j].addingProduct(dz, ld(xt, w))
                                    } else {
                                        let kStart = max(0, K - 1 - t)
                                        var p = xr + c0 - (K - 1 - kStart) * ldx
                                        for k in kStart..<K {
                                            acc[k * gpb + j] = acc[k * gpb + j].addingProduct(dz, ld(p, w))
                                            p += ldx
                                        }
                                    }
                                }
                            }
                            ring[head * gpb + j] = dz
                            // dx(tp) = Σ_k w_k · dz(tp + K−1 − k) = Σ_k w_k · dz(t − k).
                            if let dxr, tp >= t0 {
                                var s = head
                                var gsum = F16()
                                for k in 0..<K {
                                    gsum = gsum.addingProduct(wT[k * gpb + j], ring[s * gpb + j])
                                    s = s == 0 ? K - 1 : s - 1
                                }
                                let o = dxr + c0
                                if accumulate { gsum += ld(o, w) }
                                st(gsum, o, w)
                            }
                        }
                        head = head == K - 1 ? 0 : head + 1
                    }
                    if needParams {
                        for g in g0..<g1 {
                            let c0 = 16 * g, w = min(16, C - c0), j = g - g0
                            for k in 0...K { st(acc[k * gpb + j], part + k * C + c0, w) }
                        }
                    }
                    g0 = g1
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

    // MARK: K = 4 paths
    //
    // Time-major: a tile is walked row by row, each row over all its channel groups, with the
    // per-group vectors in the stack buffer and the previous rows read back from L1. Memory is
    // streamed sequentially. (A group-major walk over 32-row blocks with everything in
    // registers was slower on large inputs, its strided first touches waiting on memory;
    // docs/performance.md, "Causal conv".)

    /// K = 4 forward of one tile, time-major: row by row, all channel groups of the row, with
    /// the groups' weights (w0..w3, bias: 5 vectors per group, contiguous) in the stack buffer
    /// and the three previous rows read back from L1. Sequential memory streams, which the
    /// hardware prefetchers follow (a group-major walk over row blocks was slower on large
    /// inputs for the same CPU work).
    static func forwardTile4(_ xb: UnsafePointer<Float>, ldx: Int, _ yb: UnsafeMutablePointer<Float>, ldy: Int,
                             weight: UnsafePointer<Float>, bias: UnsafePointer<Float>?, C: Int, t0: Int, t1: Int, silu: Bool) {
        let ng = (C + 15) / 16
        let gpb = groupsPerBlock(channels: C, slots: 5)
        withStackF16(count: gpb * 5) { wT in
            var g0 = 0
            while g0 < ng {
                let g1 = min(ng, g0 + gpb)
                // Group-contiguous layout: wT[5j + k], k = 0..3 weights, 4 bias.
                for g in g0..<g1 {
                    let c0 = 16 * g, w = min(16, C - c0), j = g - g0
                    for k in 0..<4 {
                        var v = F16()
                        for l in 0..<w { v[l] = weight[(c0 + l) * 4 + k] }
                        wT[5 * j + k] = v
                    }
                    wT[5 * j + 4] = bias.map { ld($0 + c0, w) } ?? F16()
                }
                let fullEnd = min(g1, C / 16) // groups g0..<fullEnd are 16 wide
                for t in t0..<t1 {
                    let xr = xb + t * ldx, yr = yb + t * ldy
                    if t >= 3 {
                        var g = g0
                        while g < fullEnd {
                            let c0 = 16 * g, wp = wT + 5 * (g - g0)
                            var z = wp[4].addingProduct(wp[0], load16(xr - 3 * ldx + c0))
                            z = z.addingProduct(wp[1], load16(xr - 2 * ldx + c0))
                            z = z.addingProduct(wp[2], load16(xr - ldx + c0))
                            z = z.addingProduct(wp[3], load16(xr + c0))
                            if silu { z = silu16(z) }
                            store16(z, yr + c0)
                            g += 1
                        }
                        if fullEnd < g1 {
                            let c0 = 16 * fullEnd
                            var z = preActivation(xr + c0, ldx: ldx, t: t, w: C - c0, K: 4, wT: wT + 5 * (fullEnd - g0), gpb: 1, j: 0)
                            if silu { z = silu16(z) }
                            st(z, yr + c0, C - c0)
                        }
                    } else {
                        for g in g0..<g1 {
                            let c0 = 16 * g, w = min(16, C - c0)
                            var z = preActivation(xr + c0, ldx: ldx, t: t, w: w, K: 4, wT: wT + 5 * (g - g0), gpb: 1, j: 0)
                            if silu { z = silu16(z) }
                            st(z, yr + c0, w)
                        }
                    }
                }
                g0 = g1
            }
        }
    }

    /// K = 4 backward of one tile, time-major like the forward: rows t0 ..< t1 + 3 (the last
    /// three only feed dx through the dz window), each over all channel groups. Per group the
    /// stack buffer holds 13 vectors: w0..w3, bias, the dweight/dbias accumulators a0..a3, ab,
    /// and dz of the three previous rows.
    static func backwardTile4(_ xb: UnsafePointer<Float>, ldx: Int, _ gb: UnsafePointer<Float>, ldy: Int,
                              _ dxb: UnsafeMutablePointer<Float>?, lddx: Int, weight: UnsafePointer<Float>, bias: UnsafePointer<Float>?,
                              C: Int, L: Int, t0: Int, t1: Int, silu: Bool, needParams: Bool, accumulate: Bool,
                              part: UnsafeMutablePointer<Float>) {
        let ng = (C + 15) / 16
        let slots = 13
        let gpb = groupsPerBlock(channels: C, slots: slots)
        withStackF16(count: gpb * slots) { buf in
            var g0 = 0
            while g0 < ng {
                let g1 = min(ng, g0 + gpb)
                for g in g0..<g1 {
                    let c0 = 16 * g, w = min(16, C - c0), p = buf + slots * (g - g0)
                    for k in 0..<4 {
                        var v = F16()
                        for l in 0..<w { v[l] = weight[(c0 + l) * 4 + k] }
                        p[k] = v
                    }
                    p[4] = bias.map { ld($0 + c0, w) } ?? F16()
                    for k in 5..<slots { p[k] = F16() }
                }
                let fullEnd = min(g1, C / 16)
                for t in t0..<(t1 + 3) {
                    let inside = t < L, paramRow = needParams && t < t1
                    let xr = xb + t * ldx, gr = gb + t * ldy
                    let dxr = t >= t0 + 3 ? dxb.map { $0 + (t - 3) * lddx } : nil
                    if inside && t >= 3 {
                        // Fast path: full groups, all four input rows present.
                        var g = g0
                        while g < fullEnd {
                            let c0 = 16 * g, p = buf + slots * (g - g0)
                            var dz = load16(gr + c0)
                            if silu || paramRow {
                                let x3 = load16(xr - 3 * ldx + c0), x2 = load16(xr - 2 * ldx + c0)
                                let x1 = load16(xr - ldx + c0), x0 = load16(xr + c0)
                                backwardRow4Inputs(dz: &dz, x3, x2, x1, x0, silu: silu, paramRow: paramRow, p: p)
                            }
                            if let dxr {
                                var s = backwardRow4Dx(dz, p: p)
                                if accumulate { s += load16(dxr + c0) }
                                store16(s, dxr + c0)
                            }
                            p[12] = p[11]; p[11] = p[10]; p[10] = dz
                            g += 1
                        }
                        if fullEnd < g1 {
                            backwardRow4General(xr, ldx: ldx, gr, dxr, t: t, inside: inside, paramRow: paramRow, silu: silu,
                                                accumulate: accumulate, c0: 16 * fullEnd, w: C - 16 * fullEnd,
                                                p: buf + slots * (fullEnd - g0))
                        }
                    } else {
                        for g in g0..<g1 {
                            backwardRow4General(xr, ldx: ldx, gr, dxr, t: t, inside: inside, paramRow: paramRow, silu: silu,
                                                accumulate: accumulate, c0: 16 * g, w: min(16, C - 16 * g),
                                                p: buf + slots * (g - g0))
                        }
                    }
                }
                if needParams {
                    for g in g0..<g1 {
                        let c0 = 16 * g, w = min(16, C - c0), p = buf + slots * (g - g0)
                        for k in 0..<5 { st(p[5 + k], part + k * C + c0, w) }
                    }
                }
                g0 = g1
            }
        }
    }

    /// The arithmetic of one row of one group of `backwardTile4` that reads the inputs, shared by
    /// the fast path and `backwardRow4General`: the SiLU gradient at the recomputed
    /// pre-activation z = bias + Σ w·x (into dz), then the weight and bias partials. `p` holds
    /// the group's taps (0…3), bias (4), partials (5…9) and the last three dz (10…12).
    /// `@_transparent`, not `@inline(__always)`: with the latter the backward was slower in
    /// `bench engine`, with this as fast as the code written out (docs/performance.md).
    @_transparent
    static func backwardRow4Inputs(dz: inout F16, _ x3: F16, _ x2: F16, _ x1: F16, _ x0: F16, silu: Bool, paramRow: Bool,
                                   p: UnsafeMutablePointer<F16>) {
        if silu {
            var z = p[4].addingProduct(p[0], x3)
            z = z.addingProduct(p[1], x2)
            z = z.addingProduct(p[2], x1)
            z = z.addingProduct(p[3], x0)
            dz *= siluGrad16(z)
        }
        if paramRow {
            p[5] = p[5].addingProduct(dz, x3)
            p[6] = p[6].addingProduct(dz, x2)
            p[7] = p[7].addingProduct(dz, x1)
            p[8] = p[8].addingProduct(dz, x0)
            p[9] += dz
        }
    }

    /// dx of row t − 3 (x[t − 3] feeds outputs t − 3 … t): row t's dz against tap 0 and the three
    /// previous rows' dz (kept in p[10…12], newest first) against taps 1…3.
    @_transparent
    static func backwardRow4Dx(_ dz: F16, p: UnsafeMutablePointer<F16>) -> F16 {
        var s = p[0] * dz
        s = s.addingProduct(p[1], p[10])
        s = s.addingProduct(p[2], p[11])
        return s.addingProduct(p[3], p[12])
    }

    /// One row of one group of `backwardTile4` with all boundary checks (t < 3, t ≥ L, partial
    /// width). Same arithmetic as the fast path.
    @inline(__always)
    static func backwardRow4General(_ xr: UnsafePointer<Float>, ldx: Int, _ gr: UnsafePointer<Float>,
                                    _ dxr: UnsafeMutablePointer<Float>?, t: Int, inside: Bool, paramRow: Bool, silu: Bool,
                                    accumulate: Bool, c0: Int, w: Int, p: UnsafeMutablePointer<F16>) {
        var dz = F16()
        if inside {
            dz = ld(gr + c0, w)
            let x3 = t >= 3 ? ld(xr - 3 * ldx + c0, w) : F16()
            let x2 = t >= 2 ? ld(xr - 2 * ldx + c0, w) : F16()
            let x1 = t >= 1 ? ld(xr - ldx + c0, w) : F16()
            let x0 = ld(xr + c0, w)
            backwardRow4Inputs(dz: &dz, x3, x2, x1, x0, silu: silu, paramRow: paramRow, p: p)
        }
        if let dxr {
            var s = backwardRow4Dx(dz, p: p)
            if accumulate { s += ld(dxr + c0, w) }
            st(s, dxr + c0, w)
        }
        p[12] = p[11]; p[11] = p[10]; p[10] = dz
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

/// F16 slots of the fixed stack buffer.
let stackF16Slots = 128

/// Runs body with a buffer of `count` F16 values: a fixed 128-entry (8 KiB) stack array when
/// it fits, a heap allocation otherwise. (withUnsafeTemporaryAllocation only uses the stack
/// up to 1 KiB.)
@inline(__always)
func withStackF16(count: Int, _ body: (UnsafeMutablePointer<F16>) -> Void) {
    if count <= stackF16Slots {
        var buf = StackF16x128()
        withUnsafeMutableBytes(of: &buf) { body($0.baseAddress!.assumingMemoryBound(to: F16.self)) }
    } else {
        let p = UnsafeMutablePointer<F16>.allocate(capacity: count)
        body(p)
        p.deallocate()
    }
}

/// 128 SIMD16<Float> of stack storage.
struct StackF16x128 {
    var a = (F16(), F16(), F16(), F16(), F16(), F16(), F16(), F16(), F16(), F16(), F16(), F16(), F16(), F16(), F16(), F16())
    var b = (F16(), F16(), F16(), F16(), F16(), F16(), F16(), F16(), F16(), F16(), F16(), F16(), F16(), F16(), F16(), F16())
    var c = (F16(), F16(), F16(), F16(), F16(), F16(), F16(), F16(), F16(), F16(), F16(), F16(), F16(), F16(), F16(), F16())
    var d = (F16(), F16(), F16(), F16(), F16(), F16(), F16(), F16(), F16(), F16(), F16(), F16(), F16(), F16(), F16(), F16())
    var e = (F16(), F16(), F16(), F16(), F16(), F16(), F16(), F16(), F16(), F16(), F16(), F16(), F16(), F16(), F16(), F16())
    var f = (F16(), F16(), F16(), F16(), F16(), F16(), F16(), F16(), F16(), F16(), F16(), F16(), F16(), F16(), F16(), F16())
    var g = (F16(), F16(), F16(), F16(), F16(), F16(), F16(), F16(), F16(), F16(), F16(), F16(), F16(), F16(), F16(), F16())
    var h = (F16(), F16(), F16(), F16(), F16(), F16(), F16(), F16(), F16(), F16(), F16(), F16(), F16(), F16(), F16(), F16())
}
