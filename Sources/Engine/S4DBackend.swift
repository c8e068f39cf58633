/// A device backend that runs the S4D baseline's causal long convolution by FFT (and its
/// gradient) itself. The CPU runs it in Layers' fftConvolution (Spectral's FFTW plans, owned
/// by the model); the CPU backend does not conform. (The S4D kernel K is `Backend.s4dKernel`,
/// which every backend implements.)
///
/// Shapes: K (H, L); u, y (batch·L, H) token-major, contiguous.
public protocol S4DBackend: Backend {
    /// y[b, t, h] = Σ_{s ≤ t} K[h, s]·u[b, t − s, h] (overwritten).
    func causalConvolution(u: Tensor, kernel: Tensor, batch: Int, y: Tensor)
    /// du[b, s, h] = Σ_{t ≥ s} dy[b, t, h]·K[h, t − s] and dK[h, s] = Σ_b Σ_t dy[b, t, h]·u[b, t − s, h]
    /// (each overwritten when given).
    func causalConvolutionBackward(dy: Tensor, u: Tensor, kernel: Tensor, batch: Int, du: Tensor?, dKernel: Tensor?)
}
