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

/// The Double buffers of S4D's recurrence for `batch` streams, allocated once (a step
/// allocates nothing): the coefficients w, B̃ and C taken from the parameters when it is
/// made, the state x, and the per-step partial sums. Make a new one after the parameters change.
public final class S4DRecurrence {
    public let batch: Int
    let channels: Int
    /// Groups of four modes (`S4DStepKernel.Lanes`); padding modes have w = B̃ = C = 0.
    let groups: Int
    /// (H, groups) lanes each: w, B̃ and C, re and im apart (six blocks).
    let coefficients: UnsafeMutablePointer<S4DStepKernel.Lanes>
    /// (H, groups, batch) lanes: the state's re block, then its im block.
    let state: UnsafeMutablePointer<S4DStepKernel.Lanes>
    /// (batch, H) lanes: the partial sums Σ C·x of the current step.
    let sums: UnsafeMutablePointer<S4DStepKernel.Lanes>

    public init(_ p: S4DKernelParameters, batch: Int) {
        let H = p.channels, M = p.modes, G = (M + 3) / 4
        self.batch = batch
        channels = H
        groups = G
        coefficients = .allocate(capacity: 6 * H * G)
        coefficients.initialize(repeating: .zero, count: 6 * H * G)
        state = .allocate(capacity: 2 * batch * H * G)
        sums = .allocate(capacity: batch * H)
        sums.initialize(repeating: .zero, count: batch * H)
        let block = H * G
        for h in 0..<H {
            for n in 0..<M {
                let mode = p.mode(h, n), g = h * G + n / 4, lane = n % 4
                for (k, v) in [mode.w, mode.bBar, p.cValue(h, n)].enumerated() {
                    coefficients[2 * k * block + g][lane] = v.re
                    coefficients[(2 * k + 1) * block + g][lane] = v.im
                }
            }
        }
        reset()
    }

    deinit {
        coefficients.deallocate()
        state.deallocate()
        sums.deallocate()
    }

    /// One step of every stream (see `S4DStepKernel.step`). Allocation-free.
    public func step(u: UnsafePointer<Float>, ldu: Int, D: UnsafePointer<Float>, y: UnsafeMutablePointer<Float>, pool: ThreadPool) {
        S4DStepKernel.step(coefficients: coefficients, state: state, sums: sums, batch: batch, channels: channels, groups: groups,
                           u: u, ldu: ldu, D: D, y: y, pool: pool)
    }

    /// Forgets every stream's history (state x = 0).
    public func reset() {
        state.update(repeating: .zero, count: 2 * batch * channels * groups)
    }
}
