// RMSNorm over the last dimension (Mamba's RMSNorm, eps 1e-5), forward and backward.
// Same deterministic parameter-gradient scheme as LayerNorm (per-chunk double partials).

public enum RMSNorm {
    public static let defaultEps: Float = 1e-5

    /// y[r, :] = x[r, :]·rstd_r·weight, rstd_r = 1/√(mean(x[r, :]²) + eps).
    /// x, y: rows × channels contiguous (y may alias x); weight: channels or nil (= 1);
    /// rstd: rows, written (overwrite) when non-nil — the backward needs it.
    public static func forward(x: UnsafePointer<Float>, weight: UnsafePointer<Float>?,
                               y: UnsafeMutablePointer<Float>, rstd: UnsafeMutablePointer<Float>?,
                               rows: Int, channels C: Int, eps: Float = defaultEps, pool: ThreadPool) {
        // Large outputs with whole 64-byte rows take the streaming-store path (same arithmetic).
        let stream = rows * C >= streamingStoreMinCount && C % 16 == 0
            && Int(bitPattern: UInt(bitPattern: y)) & 63 == 0
        pool.forRanges(rows, grain: max(1, elementwiseGrain / max(1, C))) { rr in
            if stream {
                forwardRowsStreamed(x: x, weight: weight, y: y, rstd: rstd, rows: rr, C: C, eps: eps)
                return
            }
            for r in rr {
                let xr = x + r * C, yr = y + r * C
                var s = F16()
                var i = 0
                while i + 16 <= C { let v = load16(xr + i); s += v * v; i += 16 }
                if i < C { let v = loadPartial(xr + i, C - i); s += v * v }
                let rs = 1 / (hsum(s) / Float(C) + eps).squareRoot()
                rstd?[r] = rs
                i = 0
                while i < C {
                    let m = min(16, C - i)
                    var o = (m == 16 ? load16(xr + i) : loadPartial(xr + i, m)) * rs
                    if let weight { o *= (m == 16 ? load16(weight + i) : loadPartial(weight + i, m)) }
                    if m == 16 { store16(o, yr + i) } else { storePartial(o, yr + i, m) }
                    i += 16
                }
            }
        }
    }

    /// `forward` on rows `rows` with streaming stores (C a multiple of 16, y 64-byte aligned;
    /// bit-identical to the plain path; see LayerNorm.forwardRowsStreamed).
    @inline(never)
    static func forwardRowsStreamed(x: UnsafePointer<Float>, weight: UnsafePointer<Float>?, y: UnsafeMutablePointer<Float>,
                                    rstd: UnsafeMutablePointer<Float>?, rows: Range<Int>, C: Int, eps: Float) {
        for r in rows {
            let xr = x + r * C, yr = y + r * C
            var s = F16()
            var i = 0
            while i < C { let v = load16(xr + i); s += v * v; i += 16 }
            let rs = 1 / (hsum(s) / Float(C) + eps).squareRoot()
            rstd?[r] = rs
            i = 0
            while i < C {
                var o = load16(xr + i) * rs
                if let weight { o *= load16(weight + i) }
                streamStore16(o, yr + i)
                i += 16
            }
        }
        storeFence()
    }

    /// Doubles of scratch that `backward` needs: chunks × channels.
    public static func backwardScratchCount(rows: Int, channels: Int) -> Int {
        normChunkCount(rows: rows) * channels
    }

    /// Backward of `forward` with the saved rstd (rows):
    ///   dx (rows × C) (+)= rstd·(g − x̂·mean(g·x̂)),  g = dy·weight, x̂ = x·rstd
    ///   dWeight (C)   (+)= Σ_r dy·x̂   (deterministic)
    /// Either gradient may be nil. `accumulate` (default true) adds; false overwrites.
    /// scratch: `backwardScratchCount(rows:channels:)` doubles, clobbered.
    public static func backward(dy: UnsafePointer<Float>, x: UnsafePointer<Float>, weight: UnsafePointer<Float>?,
                                rstd: UnsafePointer<Float>, dx: UnsafeMutablePointer<Float>?,
                                dWeight: UnsafeMutablePointer<Float>?, rows: Int, channels C: Int,
                                scratch: UnsafeMutablePointer<Double>, accumulate: Bool = true, pool: ThreadPool) {
        if rows <= 0 || C <= 0 { return }
        let chunks = normChunkCount(rows: rows)
        pool.forEach(chunks) { ch in
            let pw = scratch + ch * C
            if dWeight != nil { pw.initialize(repeating: 0, count: C) }
            for r in chunkRange(ch, chunks: chunks, n: rows) {
                let xr = x + r * C, gr = dy + r * C
                let rs = rstd[r]
                var s2 = F16()
                var i = 0
                while i < C {
                    let m = min(16, C - i)
                    let full = m == 16
                    let xh = (full ? load16(xr + i) : loadPartial(xr + i, m)) * rs
                    let d = full ? load16(gr + i) : loadPartial(gr + i, m)
                    var g = d
                    if let weight { g *= full ? load16(weight + i) : loadPartial(weight + i, m) }
                    s2 += g * xh
                    if dWeight != nil { addToDouble(d * xh, pw + i, m) }
                    i += 16
                }
                guard let dx else { continue }
                let c2 = hsum(s2) / Float(C)
                let dxr = dx + r * C
                i = 0
                while i < C {
                    let m = min(16, C - i)
                    let full = m == 16
                    let xh = (full ? load16(xr + i) : loadPartial(xr + i, m)) * rs
                    var g = full ? load16(gr + i) : loadPartial(gr + i, m)
                    if let weight { g *= full ? load16(weight + i) : loadPartial(weight + i, m) }
                    var o = rs * (g - xh * c2)
                    if accumulate { o += full ? load16(dxr + i) : loadPartial(dxr + i, m) }
                    if full { store16(o, dxr + i) } else { storePartial(o, dxr + i, m) }
                    i += 16
                }
            }
        }
        if let dWeight {
            reduceDoublePartials(scratch, chunks: chunks, stride: C, count: C, out: dWeight, accumulate: accumulate)
        }
    }
}
