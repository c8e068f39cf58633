/// A device backend that runs the S4D baseline's two long-sequence parts itself: the
/// convolution kernel K from the S4D parameters (and its gradient), and the causal long
/// convolution by FFT (and its gradient). The CPU computes both in Layers (S4DKernel with
/// Double arithmetic, Spectral's FFTW convolution); the CPU backend does not conform.
///
/// Shapes as s4d.py: log_dt (H), C (H, M, 2) as (re, im), log_A_real (H, M), A_imag (H, M),
/// M complex modes per channel; K (H, L); u, y (batch·L, H) token-major, contiguous.
public protocol S4DBackend: Backend {
    /// K[h, l] = 2·Re Σ_n C'_n·exp(dt·A_n·l), C' = C·(exp(dt·A) − 1)/A, dt = exp(log_dt),
    /// A = −exp(log_A_real) + i·A_imag (in Double on the device, as the CPU).
    func s4dKernel(logDt: Tensor, C: Tensor, logAReal: Tensor, AImag: Tensor, length: Int, kernel: Tensor)
    /// Gradients of Σ dK·K with respect to the four parameters (overwritten).
    func s4dKernelBackward(logDt: Tensor, C: Tensor, logAReal: Tensor, AImag: Tensor, length: Int, dKernel: Tensor,
                           dLogDt: Tensor, dC: Tensor, dLogAReal: Tensor, dAImag: Tensor)
    /// y[b, t, h] = Σ_{s ≤ t} K[h, s]·u[b, t − s, h] (overwritten).
    func causalConvolution(u: Tensor, kernel: Tensor, batch: Int, y: Tensor)
    /// du[b, s, h] = Σ_{t ≥ s} dy[b, t, h]·K[h, t − s] and dK[h, s] = Σ_b Σ_t dy[b, t, h]·u[b, t − s, h]
    /// (each overwritten when given).
    func causalConvolutionBackward(dy: Tensor, u: Tensor, kernel: Tensor, batch: Int, du: Tensor?, dKernel: Tensor?)
}
