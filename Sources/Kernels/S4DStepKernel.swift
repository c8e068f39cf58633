// One step of S4D's diagonal recurrence for many streams (step-mode generation), in Double:
//   x_t = w·x_{t−1} + B̃·u_t,   y_t = 2·Re Σ_n C_n·x_t,n + D·u_t
// per channel h and mode n. Modes come in groups of 4 (SIMD4<Double> lanes); coefficients and
// state are stored as separate re / im blocks. Here (not in Layers) so that it is compiled with
// the kernels' AVX2/FMA flags.

public enum S4DStepKernel {
    public typealias Lanes = SIMD4<Double>

    /// - Parameters:
    ///   - coefficients: six (H, G) blocks: w re, w im, B̃ re, B̃ im, C re, C im.
    ///   - state: two (H, G, batch) blocks: re, then im; updated in place. Streams innermost:
    ///     the kernel reads the state as one sequential stream (at batch 16 it is megabytes).
    ///   - sums: batch × H lanes of scratch.
    ///   - u: (batch, H), row stride ldu; y: (batch, H) contiguous; D: H.
    /// Channel-major: a group's coefficients are loaded once and applied to every stream. Per
    /// (stream, channel) the sum runs over the groups in order.
    public static func step(coefficients co: UnsafePointer<Lanes>, state: UnsafeMutablePointer<Lanes>, sums: UnsafeMutablePointer<Lanes>,
                            batch: Int, channels H: Int, groups G: Int,
                            u uPtr: UnsafePointer<Float>, ldu ld: Int, D dPtr: UnsafePointer<Float>,
                            y yPtr: UnsafeMutablePointer<Float>, pool: ThreadPool) {
        let block = H * G
        let wRe = co, wIm = co + block, bRe = co + 2 * block, bIm = co + 3 * block, cRe = co + 4 * block, cIm = co + 5 * block
        let xRe = state, xIm = state + batch * block
        pool.forRanges(H, grain: max(1, 64 / max(1, batch))) { channels in
            for h in channels {
                let c = h * G
                for b in 0..<batch { sums[b * H + h] = .zero }
                for g in 0..<G {
                    let wr = wRe[c + g], wi = wIm[c + g], br = bRe[c + g], bi = bIm[c + g], cr = cRe[c + g], ci = cIm[c + g]
                    for b in 0..<batch {
                        let ut = Lanes(repeating: Double(uPtr[b * ld + h]))
                        let x = (c + g) * batch + b
                        let xr = xRe[x], xi = xIm[x]
                        let nr = wr * xr - wi * xi + br * ut
                        let ni = wr * xi + wi * xr + bi * ut
                        xRe[x] = nr
                        xIm[x] = ni
                        sums[b * H + h] += cr * nr - ci * ni
                    }
                }
                for b in 0..<batch {
                    let ut = Double(uPtr[b * ld + h])
                    yPtr[b * H + h] = Float(2 * sums[b * H + h].sum() + Double(dPtr[h]) * ut)
                }
            }
        }
    }
}
