import Engine

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
    /// rounding errors only over ~2/dt steps (2000 at dt = 1e-3), so a Float32 state could
    /// accumulate up to 2000·6e-8 ≈ 1e-4 relative error (when roundings line up) — the
    /// whole tolerance of the step-vs-parallel check. Double costs nothing that matters here.
    ///
    /// The coefficients w, B̃, C are taken from the parameters when the state is made; make
    /// a new state after the parameters change. D and output_linear are read at each step.
    public final class StepState {
        public let batch: Int
        let channels: Int
        /// The Double coefficients, state and scratch (the Engine's host recurrence).
        let recurrence: S4DHostRecurrence
        /// (batch, H): the SSM output y, then GELU(y); (batch, 2H) before the GLU.
        let y, activated, expanded: Tensor
        /// (batch, H): the layer's output of the last step.
        public let out: Tensor

        init(layer: S4D, batch: Int) {
            let H = layer.channels, b = layer.D.backend
            self.batch = batch
            channels = H
            y = b.empty([batch, H])
            activated = b.empty([batch, H])
            expanded = b.empty([batch, 2 * H])
            out = b.empty([batch, H])
            let p = [layer.logDt, layer.C, layer.logAReal, layer.AImag].map { $0.value.contiguous() }
            recurrence = S4DHostRecurrence(logDt: p[0], C: p[1], logAReal: p[2], AImag: p[3], batch: batch)
        }

        /// Advances every stream's state by one step and writes the SSM output (before the GELU):
        /// y[b, h] = 2·Re Σ_n C·x_t + D·u (u: batch × H, row stride ldu; y: batch × H contiguous;
        /// D: H). Allocation-free.
        public func advance(u uPtr: UnsafePointer<Float>, ldu ld: Int, D dPtr: UnsafePointer<Float>,
                            y yPtr: UnsafeMutablePointer<Float>, pool: ThreadPool) {
            recurrence.step(u: uPtr, ldu: ld, D: dPtr, y: yPtr, pool: pool)
        }

        /// Forgets every stream's history (state x = 0).
        public func reset() { recurrence.reset() }
    }

    public func makeStepState(batch: Int) -> StepState { StepState(layer: self, batch: batch) }

    /// One time step of every stream: u (batch, H) → `state.out` (batch, H). Equal to the
    /// parallel forward's output at the same position (without dropout).
    @discardableResult
    public func step(_ u: Tensor, _ s: StepState) -> Tensor {
        precondition(u.shape == [s.batch, channels], "S4D step: input \(u.shape), expected \([s.batch, channels])")
        let backend = u.backend
        s.advance(u: u.pointer, ldu: u.rowStride, D: D.value.pointer, y: s.y.pointer, pool: hostPool(backend, for: "S4D's step"))
        backend.activation(.gelu, x: s.y, y: s.activated)
        backend.linear(x: s.activated, weight: outputWeight.value, bias: outputBias.value, y: s.expanded)
        backend.glu(x: s.expanded, y: s.out)
        return s.out
    }
}
