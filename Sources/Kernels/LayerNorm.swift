// LayerNorm over the last dimension (PyTorch nn.LayerNorm(C), eps 1e-5), forward and backward.
//
// Rows are independent in the forward. In the backward, dweight/dbias are reduced
// deterministically: the rows are cut into a number of chunks that depends only on `rows`;
// each chunk adds its rows' contributions, in order, into its own double-precision partial
// (caller's scratch), and the partials are summed in chunk order at the end. The result is
// bit-identical for any thread count.

/// Number of row chunks for the deterministic parameter-gradient reduction of a norm layer.
@inline(__always)
func normChunkCount(rows: Int) -> Int {
    max(1, min(64, rows / 32))
}

@inline(__always)
func chunkRange(_ c: Int, chunks: Int, n: Int) -> Range<Int> {
    let base = n / chunks, extra = n % chunks
    let lo = c * base + min(c, extra)
    return lo..<(lo + base + (c < extra ? 1 : 0))
}

/// p[0..<16] += v (in double); the first `n` lanes only when n < 16.
@inline(__always)
func addToDouble(_ v: F16, _ p: UnsafeMutablePointer<Double>, _ n: Int) {
    if n == 16 {
        let raw = UnsafeMutableRawPointer(p)
        let lo = raw.loadUnaligned(as: SIMD8<Double>.self) + SIMD8<Double>(v.lowHalf)
        let hi = raw.loadUnaligned(fromByteOffset: 64, as: SIMD8<Double>.self) + SIMD8<Double>(v.highHalf)
        raw.storeBytes(of: lo, as: SIMD8<Double>.self)
        raw.storeBytes(of: hi, toByteOffset: 64, as: SIMD8<Double>.self)
    } else {
        for i in 0..<n { p[i] += Double(v[i]) }
    }
}

/// out[c] (+)= Σ_chunk partials[chunk · stride + c] in chunk order.
@inline(__always)
func reduceDoublePartials(_ partials: UnsafePointer<Double>, chunks: Int, stride: Int, count: Int,
                          out: UnsafeMutablePointer<Float>, accumulate: Bool) {
    for c in 0..<count {
        var s = 0.0
        for k in 0..<chunks { s += partials[k * stride + c] }
        out[c] = accumulate ? Float(Double(out[c]) + s) : Float(s)
    }
}

public enum LayerNorm {
    public static let defaultEps: Float = 1e-5

    /// y[r, :] = (x[r, :] − μ_r)·rstd_r·weight + bias, rstd_r = 1/√(var_r + eps) (biased variance).
    /// x, y: rows × channels contiguous (y may alias x); weight, bias: channels or nil
    /// (nil = 1 and 0). mean, rstd: rows, written (overwrite) when non-nil — the backward needs them.
    public static func forward(x: UnsafePointer<Float>, weight: UnsafePointer<Float>?, bias: UnsafePointer<Float>?,
                               y: UnsafeMutablePointer<Float>, mean: UnsafeMutablePointer<Float>?,
                               rstd: UnsafeMutablePointer<Float>?, rows: Int, channels C: Int,
                               eps: Float = defaultEps, pool: ThreadPool) {
        // Large outputs with whole 64-byte rows take the streaming-store path (same arithmetic).
        let stream = rows * C >= streamingStoreMinCount && C % 16 == 0
            && Int(bitPattern: UInt(bitPattern: y)) & 63 == 0
        pool.forRanges(rows, grain: max(1, elementwiseGrain / max(1, C))) { rr in
            if stream {
                forwardRowsStreamed(x: x, weight: weight, bias: bias, y: y, mean: mean, rstd: rstd,
                                    rows: rr, C: C, eps: eps)
                return
            }
            for r in rr {
                let xr = x + r * C, yr = y + r * C
                // Two passes over the row (it stays in L1): mean, then centred variance.
                var s = F16()
                var i = 0
                while i + 16 <= C { s += load16(xr + i); i += 16 }
                if i < C { s += loadPartial(xr + i, C - i) }
                let mu = hsum(s) / Float(C)
                var v = F16()
                i = 0
                while i + 16 <= C { let d = load16(xr + i) - mu; v += d * d; i += 16 }
                if i < C {
                    let m = C - i
                    let d = simdSelect(laneMask(m), F16(), loadPartial(xr + i, m) - mu)
                    v += d * d
                }
                let rs = 1 / (hsum(v) / Float(C) + eps).squareRoot()
                mean?[r] = mu
                rstd?[r] = rs
                i = 0
                while i < C {
                    let m = min(16, C - i)
                    let xv = m == 16 ? load16(xr + i) : loadPartial(xr + i, m)
                    var o = (xv - mu) * rs
                    if let weight { o *= (m == 16 ? load16(weight + i) : loadPartial(weight + i, m)) }
                    if let bias { o += (m == 16 ? load16(bias + i) : loadPartial(bias + i, m)) }
                    if m == 16 { store16(o, yr + i) } else { storePartial(o, yr + i, m) }
                    i += 16
                }
            }
        }
    }

    /// `forward` on rows `rows` when C is a multiple of 16 and y is 64-byte aligned, with
    /// streaming stores (see `streamingStoreMinCount`); the arithmetic is that of `forward`'s
    /// full-vector path, so results are bit-identical. Out of line and free of stack buffers
    /// (see `streamUnary`).
    @inline(never)
    static func forwardRowsStreamed(x: UnsafePointer<Float>, weight: UnsafePointer<Float>?, bias: UnsafePointer<Float>?,
                                    y: UnsafeMutablePointer<Float>, mean: UnsafeMutablePointer<Float>?,
                                    rstd: UnsafeMutablePointer<Float>?, rows: Range<Int>, C: Int, eps: Float) {
        for r in rows {
            let xr = x + r * C, yr = y + r * C
            var s = F16()
            var i = 0
            while i < C { s += load16(xr + i); i += 16 }
            let mu = hsum(s) / Float(C)
            var v = F16()
            i = 0
            while i < C { let d = load16(xr + i) - mu; v += d * d; i += 16 }
            let rs = 1 / (hsum(v) / Float(C) + eps).squareRoot()
            mean?[r] = mu
            rstd?[r] = rs
            i = 0
            while i < C {
                var o = (load16(xr + i) - mu) * rs
                if let weight { o *= load16(weight + i) }
                if let bias { o += load16(bias + i) }
                streamStore16(o, yr + i)
                i += 16
            }
        }
        storeFence()
    }

    /// Doubles of scratch that `backward` needs: chunks × 2 × channels.
    public static func backwardScratchCount(rows: Int, channels: Int) -> Int {
        normChunkCount(rows: rows) * 2 * channels
    }

    /// Backward of `forward` with the saved mean and rstd (rows):
    ///   dx (rows × C)  (+)= rstd·(g − mean(g) − x̂·mean(g·x̂)),  g = dy·weight, x̂ = (x − μ)·rstd
    ///   dWeight (C)    (+)= Σ_r dy·x̂        dBias (C) (+)= Σ_r dy     (deterministic)
    /// Any gradient may be nil. `accumulate` (default true) adds into all gradients; false overwrites.
    /// scratch: `backwardScratchCount(rows:channels:)` doubles, contents ignored and clobbered.
    public static func backward(dy: UnsafePointer<Float>, x: UnsafePointer<Float>, weight: UnsafePointer<Float>?,
                                mean: UnsafePointer<Float>, rstd: UnsafePointer<Float>,
                                dx: UnsafeMutablePointer<Float>?, dWeight: UnsafeMutablePointer<Float>?,
                                dBias: UnsafeMutablePointer<Float>?, rows: Int, channels C: Int,
                                scratch: UnsafeMutablePointer<Double>, accumulate: Bool = true, pool: ThreadPool) {
        if rows <= 0 || C <= 0 { return }
        let chunks = normChunkCount(rows: rows)
        let needParams = dWeight != nil || dBias != nil
        pool.forEach(chunks) { ch in
            let pw = scratch + ch * 2 * C, pb = pw + C
            if needParams { pw.initialize(repeating: 0, count: 2 * C) }
            for r in chunkRange(ch, chunks: chunks, n: rows) {
                let xr = x + r * C, gr = dy + r * C
                let mu = mean[r], rs = rstd[r]
                var s1 = F16(), s2 = F16()
                var i = 0
                while i < C {
                    let m = min(16, C - i)
                    let full = m == 16
                    let xh = ((full ? load16(xr + i) : loadPartial(xr + i, m)) - mu) * rs
                    let d = full ? load16(gr + i) : loadPartial(gr + i, m)
                    var g = d
                    if let weight { g *= full ? load16(weight + i) : loadPartial(weight + i, m) }
                    s1 += g
                    s2 += g * xh
                    if needParams {
                        addToDouble(d * xh, pw + i, m)
                        addToDouble(d, pb + i, m)
                    }
                    i += 16
                }
                guard let dx else { continue }
                let c1 = hsum(s1) / Float(C), c2 = hsum(s2) / Float(C)
                let dxr = dx + r * C
                i = 0
                while i < C {
                    let m = min(16, C - i)
                    let full = m == 16
                    let xh = ((full ? load16(xr + i) : loadPartial(xr + i, m)) - mu) * rs
                    let d = full ? load16(gr + i) : loadPartial(gr + i, m)
                    var g = d
                    if let weight { g *= full ? load16(weight + i) : loadPartial(weight + i, m) }
                    var o = rs * (g - c1 - xh * c2)
                    if accumulate { o += full ? load16(dxr + i) : loadPartial(dxr + i, m) }
                    if full { store16(o, dxr + i) } else { storePartial(o, dxr + i, m) }
                    i += 16
                }
            }
        }
        if let dWeight {
            reduceDoublePartials(scratch, chunks: chunks, stride: 2 * C, count: C, out: dWeight, accumulate: accumulate)
        }
        if let dBias {
            reduceDoublePartials(scratch + C, chunks: chunks, stride: 2 * C, count: C, out: dBias, accumulate: accumulate)
        }
    }
}

/// Lanes ≥ m set (for masking padded tail lanes).
@inline(__always)
func laneMask(_ m: Int) -> SIMDMask<SIMD16<Int32>> {
    let idx = SIMD16<Int32>(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15)
    return idx .>= SIMD16<Int32>(repeating: Int32(m))
}
