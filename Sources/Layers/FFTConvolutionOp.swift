import Engine
import Spectral

extension Op {
    /// Causal per-channel long convolution y[b, t, h] = Σ_{s ≤ t} k[h, s]·u[b, t − s, h]
    /// by FFT (`Spectral.FFTConvolution` on the CPU, the backend's own on an `S4DBackend`),
    /// as a differentiable op.
    /// u: (batch·L, H) token-major (any leading shape with H columns); kernel: (H, L).
    /// The kernel's spectrum is computed once and kept for the backward's du.
    public static func fftConvolution(_ u: Variable, _ kernel: Variable, batch: Int, cache: FFTPlanCache, _ tape: Tape) -> Variable {
        let uv = u.value.contiguous(), kv = kernel.value.contiguous()
        let H = uv.columns, rows = uv.rows
        precondition(rows % batch == 0, "fftConvolution: \(rows) rows for batch \(batch)")
        let L = rows / batch
        precondition(kv.shape == [H, L], "fftConvolution: kernel \(kv.shape), expected \([H, L])")
        let backend = u.backend
        // The two implementations: FFTW on the CPU (the kernel's spectrum computed once and kept
        // for the backward's du), or the device's own (cuFFT). Both overwrite their outputs.
        let forward: (_ y: Tensor) -> Void
        let backward: (_ dy: Tensor, _ du: Tensor?, _ dKernel: Tensor?) -> Void
        if let device = backend as? any S4DBackend {
            forward = { device.causalConvolution(u: uv, kernel: kv, batch: batch, y: $0) }
            backward = { device.causalConvolutionBackward(dy: $0, u: uv, kernel: kv, batch: batch, du: $1, dKernel: $2) }
        } else {
            let pool = hostPool(backend, for: "fftConvolution without an S4DBackend")
            let conv = FFTConvolution(length: L, channels: H, cache: cache)
            let spectrum = backend.empty([conv.spectrumCount])
            conv.kernelSpectrum(kernel: kv.pointer, spectrum: spectrum.pointer, pool: pool)
            forward = { conv.forward(u: uv.pointer, spectrum: spectrum.pointer, y: $0.pointer, batch: batch, pool: pool) }
            backward = { dy, du, dk in
                conv.backward(dy: dy.pointer, u: uv.pointer, spectrum: spectrum.pointer, du: du?.pointer, dKernel: dk?.pointer,
                              batch: batch, pool: pool)
            }
        }
        let y = backend.empty(uv.shape)
        forward(y)
        let out = Variable(y, requiresGrad: tape.needsGrad(u, kernel))
        guard out.requiresGrad else { return out }
        tape.record("fftConvolution") {
            guard let dy = out.grad else { return }
            // The implementations overwrite their outputs: write straight into a fresh gradient
            // buffer, or into a temporary that is then added to a live one.
            func target(_ v: Variable) -> (Tensor, Tensor?)? {
                guard v.requiresGrad else { return nil }
                var result: (Tensor, Tensor?)?
                v.withGrad { g, acc in result = acc ? (backend.empty(g.shape), g) : (g, nil) }
                return result
            }
            let du = target(u), dk = target(kernel)
            backward(dy.contiguous(), du?.0, dk?.0)
            for case let (t, live?)? in [du, dk] { backend.add(live, t, out: live) }
        }
        return out
    }
}
