// Inverted dropout with a counter-based mask: element i is kept when
// u_i = (Random.word(seed, offset + i) >> 8)·2⁻²⁴ ≥ p, and kept values are scaled by 1/(1 − p).
// The backward regenerates the same mask from (seed, offset): nothing is stored, and the mask
// does not depend on the thread count.

public enum Dropout {
    /// y[i] = keep_i ? x[i]/(1 − p) : 0  (count floats, overwrite; y may alias x).
    /// p in [0, 1]; p = 0 copies, p = 1 zeroes. Use a fresh (seed, offset) per call site and step.
    public static func forward(x: UnsafePointer<Float>, y: UnsafeMutablePointer<Float>, count n: Int, p: Float,
                               seed: UInt64, offset: UInt64 = 0, pool: ThreadPool) {
        apply(x, y, n, p: p, seed: seed, offset: offset, accumulate: false, pool: pool)
    }

    /// dx[i] (+)= keep_i ? dy[i]/(1 − p) : 0, the mask regenerated from (seed, offset).
    /// `accumulate` (default true) adds into dx; false overwrites.
    public static func backward(dy: UnsafePointer<Float>, dx: UnsafeMutablePointer<Float>, count n: Int, p: Float,
                                seed: UInt64, offset: UInt64 = 0, accumulate: Bool = true, pool: ThreadPool) {
        apply(dy, dx, n, p: p, seed: seed, offset: offset, accumulate: accumulate, pool: pool)
    }

    /// mask[i] = keep_i ? 1/(1 − p) : 0 (for tests and debugging).
    public static func mask(_ out: UnsafeMutablePointer<Float>, count n: Int, p: Float, seed: UInt64, offset: UInt64 = 0,
                            pool: ThreadPool) {
        let scale: Float = p < 1 ? 1 / (1 - p) : 0
        forEachRandomWords(n, seed: seed, offset: offset, pool: pool) { w, i, count in
            for j in 0..<count { out[i + j] = unitFloat(w[j]) >= p ? scale : 0 }
        }
    }

    /// S4's DropoutNd (tie = True): y[b, t, c] (+)= x[b, t, c]·mask[b, c] for token-major
    /// x, y (batch·L, C) and a (batch, C) mask from `mask`, shared by every position.
    public static func scaleByTiedMask(_ x: UnsafePointer<Float>, _ mask: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>,
                                       batch: Int, length L: Int, channels C: Int, accumulate: Bool, pool: ThreadPool) {
        pool.forRanges(batch * L, grain: max(1, 16384 / C)) { rows in
            for r in rows {
                let m = mask + (r / L) * C, xr = x + r * C, yr = y + r * C
                if accumulate {
                    for c in 0..<C { yr[c] += xr[c] * m[c] }
                } else {
                    for c in 0..<C { yr[c] = xr[c] * m[c] }
                }
            }
        }
    }

    @inline(__always)
    static func apply(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, _ n: Int, p: Float,
                      seed: UInt64, offset: UInt64, accumulate: Bool, pool: ThreadPool) {
        let scale: Float = p < 1 ? 1 / (1 - p) : 0
        forEachRandomWords(n, seed: seed, offset: offset, pool: pool) { w, i, count in
            if count == 32 {
                let raw = UnsafeRawPointer(w)
                for h in 0..<2 {
                    let bits = raw.loadUnaligned(fromByteOffset: 64 * h, as: SIMD16<UInt32>.self)
                    let u = F16(bits &>> 8) * 0x1p-24
                    let o = i + 16 * h
                    var v = simdSelect(u .< p, F16(), load16(x + o) * scale)
                    if accumulate { v += load16(y + o) }
                    store16(v, y + o)
                }
            } else {
                for j in 0..<count {
                    let v: Float = unitFloat(w[j]) >= p ? x[i + j] * scale : 0
                    y[i + j] = accumulate ? y[i + j] + v : v
                }
            }
        }
    }
}
