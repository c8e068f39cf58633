import Kernels

// The S4D baseline's host kernels (Kernels' S4DKernel, S4DRecurrence): the convolution kernel K
// and its gradient in Double, and the recurrent step. The long convolution stays in Layers'
// fftConvolution (Spectral's FFTW plans, owned by the model).
extension CPUBackend {
    private func s4dParameters<R>(_ logDt: Tensor, _ C: Tensor, _ logAReal: Tensor, _ AImag: Tensor,
                                  _ body: (S4DKernelParameters) -> R) -> R {
        let H = logDt.count, M = logAReal.count / max(1, H)
        precondition(C.count == 2 * H * M && AImag.count == H * M, "S4D kernel: parameter shapes do not match (H \(H), M \(M))")
        for t in [logDt, C, logAReal, AImag] { precondition(t.isContiguous, "S4D kernel: parameters must be contiguous") }
        return body(S4DKernelParameters(logDt: logDt.pointer, c: C.pointer, logAReal: logAReal.pointer, aImag: AImag.pointer,
                                        channels: H, modes: M))
    }

    public func s4dKernel(logDt: Tensor, C: Tensor, logAReal: Tensor, AImag: Tensor, length L: Int, kernel: Tensor) {
        s4dParameters(logDt, C, logAReal, AImag) { p in
            precondition(kernel.isContiguous && kernel.count == p.channels * L,
                         "S4D kernel: output \(kernel.shape), expected (\(p.channels), \(L))")
            S4DKernel.forward(p, length: L, kernel: kernel.pointer, pool: pool)
        }
    }

    public func s4dKernelBackward(logDt: Tensor, C: Tensor, logAReal: Tensor, AImag: Tensor, length L: Int, dKernel: Tensor,
                                  dLogDt: Tensor, dC: Tensor, dLogAReal: Tensor, dAImag: Tensor) {
        s4dParameters(logDt, C, logAReal, AImag) { p in
            precondition(dKernel.isContiguous && dKernel.count == p.channels * L,
                         "S4D kernel backward: dK \(dKernel.shape), expected (\(p.channels), \(L))")
            S4DKernel.backward(p, length: L, dKernel: dKernel.pointer,
                               gradients: S4DKernelGradients(logDt: dLogDt.pointer, c: dC.pointer, logAReal: dLogAReal.pointer,
                                                             aImag: dAImag.pointer),
                               pool: pool)
        }
    }
}

/// S4D's recurrence for `batch` streams on the host (Kernels' `S4DRecurrence`): Double
/// coefficients w, B̃, C taken from the parameters (host tensors) when it is made, state and
/// scratch allocated once, so a step allocates nothing.
public final class S4DHostRecurrence {
    let recurrence: S4DRecurrence

    public init(logDt: Tensor, C: Tensor, logAReal: Tensor, AImag: Tensor, batch: Int) {
        let H = logDt.count, M = logAReal.count / max(1, H)
        precondition(C.count == 2 * H * M && AImag.count == H * M, "S4D step: parameter shapes do not match (H \(H), M \(M))")
        for t in [logDt, C, logAReal, AImag] {
            precondition(t.isContiguous && t.backend is any HostBackend, "S4D step: parameters must be contiguous host tensors")
        }
        recurrence = S4DRecurrence(S4DKernelParameters(logDt: logDt.pointer, c: C.pointer, logAReal: logAReal.pointer,
                                                       aImag: AImag.pointer, channels: H, modes: M), batch: batch)
    }

    /// y[b, h] = 2·Re Σ_n C·x_t + D·u after advancing every stream (u: batch × H, row stride
    /// ldu; y: batch × H contiguous; D: H).
    public func step(u: UnsafePointer<Float>, ldu: Int, D: UnsafePointer<Float>, y: UnsafeMutablePointer<Float>, pool: ThreadPool) {
        recurrence.step(u: u, ldu: ldu, D: D, y: y, pool: pool)
    }

    /// Forgets every stream's history (state x = 0).
    public func reset() { recurrence.reset() }
}
