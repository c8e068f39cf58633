import Engine
import Kernels

extension S4D {
    /// The recurrent form of an S4D layer for step-by-step generation, for `batch`
    /// independent streams. Per channel h and mode n, with w = exp(dt·A) and B̃ = (w − 1)/A
    /// (zero-order hold, B = 1):
    ///
    ///     x_t = w·x_{t−1} + B̃·u_t,      y_t = 2·Re Σ_n C_n·x_t,n + D·u_t
    ///
    /// which unrolls to the convolution with K[l] = 2·Re Σ C·B̃·w^l of the parallel form.
    /// Every buffer is allocated here, once: a step allocates nothing.
    ///
    /// The state and the coefficients are Double: a mode with |w| = e^{−dt/2} forgets its
    /// rounding errors only over ~2/dt steps (2000 at dt = 1e-3), so Float32 state would
    /// carry relative errors up to ~1e-4 in long generations.
    ///
    /// The coefficients w, B̃, C are taken from the parameters when the state is made; make
    /// a new state after the parameters change. D and output_linear are read at each step.
    public final class StepState {
        public let batch: Int
        let channels: Int
        let modes: Int
        /// (H, N/2) each: w, B̃ and C as separate re/im rows.
        let coefficients: UnsafeMutablePointer<Double>
        /// (batch, H, N/2) re rows then im rows.
        let state: UnsafeMutablePointer<Double>
        /// (batch, H): the SSM output y, then GELU(y); (batch, 2H) before the GLU.
        let y, activated, expanded: Tensor
        /// (batch, H): the layer's output of the last step.
        public let out: Tensor

        init(layer: S4D, batch: Int) {
            let H = layer.channels, M = layer.config.modes, b = layer.D.backend
            self.batch = batch
            channels = H
            modes = M
            coefficients = .allocate(capacity: 6 * H * M)
            state = .allocate(capacity: 2 * batch * H * M)
            y = b.empty([batch, H])
            activated = b.empty([batch, H])
            expanded = b.empty([batch, 2 * H])
            out = b.empty([batch, H])
            let values = [layer.logDt, layer.C, layer.logAReal, layer.AImag].map { $0.value.floats() }
            layer.withParameters(values) { p in
                let count = H * M
                for h in 0..<H {
                    for n in 0..<M {
                        let mode = p.mode(h, n), bBar = mode.bBar, c = p.cValue(h, n), i = h * M + n
                        for (row, v) in [mode.w, bBar, c].enumerated() {
                            coefficients[2 * row * count + i] = v.re
                            coefficients[(2 * row + 1) * count + i] = v.im
                        }
                    }
                }
            }
            reset()
        }

        deinit {
            coefficients.deallocate()
            state.deallocate()
        }

        /// Forgets every stream's history (state x = 0).
        public func reset() {
            state.update(repeating: 0, count: 2 * batch * channels * modes)
        }
    }

    public func makeStepState(batch: Int) -> StepState { StepState(layer: self, batch: batch) }

    /// One time step of every stream: u (batch, H) → `state.out` (batch, H). Equal to the
    /// parallel forward's output at the same position (without dropout).
    @discardableResult
    public func step(_ u: Tensor, _ s: StepState) -> Tensor {
        precondition(u.shape == [s.batch, channels], "S4D step: input \(u.shape), expected \([s.batch, channels])")
        let backend = u.backend, pool = cpuPool(backend)
        let H = channels, M = s.modes, count = H * M
        let co = s.coefficients
        let wRe = co, wIm = co + count, bRe = co + 2 * count, bIm = co + 3 * count, cRe = co + 4 * count, cIm = co + 5 * count
        let xRe = s.state, xIm = s.state + s.batch * count
        let uPtr = u.pointer, ld = u.rowStride, dPtr = D.value.pointer, yPtr = s.y.pointer
        pool.forRanges(s.batch * H, grain: 64) { rows in
            for r in rows {
                let b = r / H, h = r % H
                let ut = Double(uPtr[b * ld + h])
                let o = h * M, so = r * M
                var sum = 0.0
                for n in 0..<M {
                    let xr = xRe[so + n], xi = xIm[so + n]
                    let nr = wRe[o + n] * xr - wIm[o + n] * xi + bRe[o + n] * ut
                    let ni = wRe[o + n] * xi + wIm[o + n] * xr + bIm[o + n] * ut
                    xRe[so + n] = nr
                    xIm[so + n] = ni
                    sum += cRe[o + n] * nr - cIm[o + n] * ni
                }
                yPtr[r] = Float(2 * sum + Double(dPtr[h]) * ut)
            }
        }
        backend.activation(.gelu, x: s.y, y: s.activated)
        backend.linear(x: s.activated, weight: outputWeight.value, bias: outputBias.value, y: s.expanded)
        backend.glu(x: s.expanded, y: s.out)
        return s.out
    }
}
