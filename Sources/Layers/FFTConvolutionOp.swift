import Engine
import Kernels
import Spectral

extension Op {
    /// Causal per-channel long convolution y[b, t, h] = Σ_{s ≤ t} k[h, s]·u[b, t − s, h]
    /// by FFT (`Spectral.FFTConvolution`), as a differentiable op.
    /// u: (batch·L, H) token-major (any leading shape with H columns); kernel: (H, L).
    /// The kernel's spectrum is computed once and kept for the backward's du.
    public static func fftConvolution(_ u: Variable, _ kernel: Variable, batch: Int, cache: FFTPlanCache, _ tape: Tape) -> Variable {
        let uv = u.value.contiguous(), kv = kernel.value.contiguous()
        let H = uv.columns, rows = uv.rows
        precondition(rows % batch == 0, "fftConvolution: \(rows) rows for batch \(batch)")
        let L = rows / batch
        precondition(kv.shape == [H, L], "fftConvolution: kernel \(kv.shape), expected \([H, L])")
        let backend = u.backend
        if let device = backend as? any S4DBackend {
            return deviceConvolution(device, u, kernel, uv: uv, kv: kv, batch: batch, tape)
        }
        let pool = cpuPool(backend)
        let conv = FFTConvolution(length: L, channels: H, cache: cache)
        let spectrum = backend.empty([conv.spectrumCount])
        conv.kernelSpectrum(kernel: kv.pointer, spectrum: spectrum.pointer, pool: pool)
        let y = backend.empty(uv.shape)
        conv.forward(u: uv.pointer, spectrum: spectrum.pointer, y: y.pointer, batch: batch, pool: pool)
        let out = Variable(y, requiresGrad: tape.needsGrad(u, kernel))
        guard out.requiresGrad else { return out }
        tape.record("fftConvolution") {
            guard let dy = out.grad else { return }
            // FFTConvolution overwrites its outputs: write straight into a fresh gradient
            // buffer, or into a temporary that is then added to a live one.
            func target(_ v: Variable) -> (Tensor, Tensor?)? {
                guard v.requiresGrad else { return nil }
                var result: (Tensor, Tensor?)?
                v.withGrad { g, acc in result = acc ? (backend.empty(g.shape), g) : (g, nil) }
                return result
            }
            let du = target(u), dk = target(kernel)
            conv.backward(dy: dy.contiguous().pointer, u: uv.pointer, spectrum: spectrum.pointer, du: du?.0.pointer,
                          dKernel: dk?.0.pointer, batch: batch, pool: pool)
            for case let (t, live?)? in [du, dk] { backend.add(live, t, out: live) }
        }
        return out
    }

    /// `fftConvolution` on a device backend (cuFFT there).
    static func deviceConvolution(_ b: any S4DBackend, _ u: Variable, _ kernel: Variable, uv: Tensor, kv: Tensor, batch: Int,
                                  _ tape: Tape) -> Variable {
        let y = b.empty(uv.shape)
        b.causalConvolution(u: uv, kernel: kv, batch: batch, y: y)
        let out = Variable(y, requiresGrad: tape.needsGrad(u, kernel))
        guard out.requiresGrad else { return out }
        tape.record("fftConvolution") {
            guard let dy = out.grad else { return }
            func target(_ v: Variable) -> (Tensor, Tensor?)? {
                guard v.requiresGrad else { return nil }
                var result: (Tensor, Tensor?)?
                v.withGrad { g, acc in result = acc ? (b.empty(g.shape), g) : (g, nil) }
                return result
            }
            let du = target(u), dk = target(kernel)
            b.causalConvolutionBackward(dy: dy.contiguous(), u: uv, kernel: kv, batch: batch, du: du?.0, dKernel: dk?.0)
            for case let (t, live?)? in [du, dk] { b.add(live, t, out: live) }
        }
        return out
    }
}
