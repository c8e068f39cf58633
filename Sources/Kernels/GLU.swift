// Gated linear unit along the last dimension (PyTorch F.glu(x, dim=-1); SaShiMi's S4 block output).

public enum GLU {
    /// y[r, j] = a·σ(b), a = x[r, j], b = x[r, H + j], j < H.
    /// x: rows × 2H contiguous; y: rows × H (overwrite).
    public static func forward(x: UnsafePointer<Float>, y: UnsafeMutablePointer<Float>, rows: Int, half H: Int,
                               pool: ThreadPool) {
        pool.forRanges(rows, grain: max(1, elementwiseGrain / max(1, 2 * H))) { rr in
            for r in rr {
                let a = x + r * 2 * H, b = a + H, o = y + r * H
                var j = 0
                while j < H {
                    let m = min(16, H - j)
                    if m == 16 {
                        store16(load16(a + j) * fastSigmoid(load16(b + j)), o + j)
                    } else {
                        storePartial(loadPartial(a + j, m) * fastSigmoid(loadPartial(b + j, m)), o + j, m)
                    }
                    j += 16
                }
            }
        }
    }

    /// dx[r, j] (+)= dy·σ(b);  dx[r, H + j] (+)= dy·a·σ(b)(1 − σ(b)).
    /// dy: rows × H; x: the forward input; dx: rows × 2H. `accumulate` (default true) adds.
    public static func backward(dy: UnsafePointer<Float>, x: UnsafePointer<Float>, dx: UnsafeMutablePointer<Float>,
                                rows: Int, half H: Int, accumulate: Bool = true, pool: ThreadPool) {
        pool.forRanges(rows, grain: max(1, elementwiseGrain / max(1, 2 * H))) { rr in
            for r in rr {
                let a = x + r * 2 * H, b = a + H, g = dy + r * H
                let da = dx + r * 2 * H, db = da + H
                var j = 0
                while j < H {
                    let m = min(16, H - j)
                    let full = m == 16
                    let av = full ? load16(a + j) : loadPartial(a + j, m)
                    let s = fastSigmoid(full ? load16(b + j) : loadPartial(b + j, m))
                    let gv = full ? load16(g + j) : loadPartial(g + j, m)
                    var ga = gv * s
                    var gb = gv * av * s * (1 - s)
                    if accumulate {
                        ga += full ? load16(da + j) : loadPartial(da + j, m)
                        gb += full ? load16(db + j) : loadPartial(db + j, m)
                    }
                    if full { store16(ga, da + j); store16(gb, db + j) } else { storePartial(ga, da + j, m); storePartial(gb, db + j, m) }
                    j += 16
                }
            }
        }
    }
}
