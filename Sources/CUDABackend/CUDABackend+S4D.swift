import Engine

// The S4D baseline on the GPU (s4d.cu): the kernel K and its gradient in Double on the
// device, the causal long convolution through cuFFT (zero-padded to 2L, so the circular
// convolution is the causal one).
extension CUDABackend: S4DBackend {
    private func s4dModes(_ logDt: Tensor, _ C: Tensor, _ logAReal: Tensor, _ AImag: Tensor) -> (Tensor, Int, Int) {
        let H = logDt.count, M = logAReal.count / max(1, H)
        precondition(C.count == 2 * H * M && AImag.count == H * M, "S4D kernel: parameter shapes do not match (H \(H), M \(M))")
        for t in [logDt, C, logAReal, AImag] { precondition(t.isContiguous, "S4D kernel: parameters must be contiguous") }
        let modes = scratch(2 * 4 * H * M)   // (H, M, 4) doubles
        launch(.s4d, "wm_s4d_modes", grid: ((H * M + 127) / 128, 1, 1), block: (128, 1, 1),
               [.pointer(ptr(logDt)), .pointer(ptr(C)), .pointer(ptr(logAReal)), .pointer(ptr(AImag)), .pointer(ptr(modes)),
                .int32(Int32(H)), .int32(Int32(M))])
        return (modes, H, M)
    }

    public func s4dKernel(logDt: Tensor, C: Tensor, logAReal: Tensor, AImag: Tensor, length L: Int, kernel: Tensor) {
        let (modes, H, M) = s4dModes(logDt, C, logAReal, AImag)
        precondition(kernel.isContiguous && kernel.count == H * L, "S4D kernel: output \(kernel.shape), expected (\(H), \(L))")
        launch(.s4d, "wm_s4d_kernel", grid: ((L + 255) / 256, H, 1), block: (256, 1, 1), shared: 8 * 4 * M,
               [.pointer(ptr(modes)), .pointer(ptr(kernel)), .int32(Int32(M)), .int64(L)])
    }

    public func s4dKernelBackward(logDt: Tensor, C: Tensor, logAReal: Tensor, AImag: Tensor, length L: Int, dKernel: Tensor,
                                  dLogDt: Tensor, dC: Tensor, dLogAReal: Tensor, dAImag: Tensor) {
        let (modes, H, M) = s4dModes(logDt, C, logAReal, AImag)
        precondition(dKernel.isContiguous && dKernel.count == H * L, "S4D kernel backward: dK \(dKernel.shape), expected (\(H), \(L))")
        let sums = scratch(2 * 4 * H * M)    // (H, M, 4) doubles: S re, S im, P re, P im
        fill(sums, value: 0)
        launch(.s4d, "wm_s4d_sums", grid: ((L + 255) / 256, H, 1), block: (256, 1, 1), shared: 8 * (4 * M + 4 * 256),
               [.pointer(ptr(modes)), .pointer(ptr(dKernel)), .pointer(ptr(sums)), .int32(Int32(M)), .int64(L)])
        launch(.s4d, "wm_s4d_grads", grid: (H, 1, 1), block: (32, 1, 1), shared: 8 * 32,
               [.pointer(ptr(logDt)), .pointer(ptr(C)), .pointer(ptr(logAReal)), .pointer(ptr(AImag)), .pointer(ptr(sums)),
                .int32(Int32(M)), .pointer(ptr(dLogDt)), .pointer(ptr(dC)), .pointer(ptr(dLogAReal)), .pointer(ptr(dAImag))])
    }

    /// The tied mask is dropout applied to ones (the same generator words and keep rule), so
    /// it matches the CPU's mask for every (seed, offset).
    public func tiedDropoutMask(_ mask: Tensor, p: Float, seed: UInt64, offset: UInt64) {
        let ones = scratch(mask.count)
        fill(ones, value: 1)
        dropout(x: ones, y: mask, p: p, seed: seed, offset: offset)
    }

    /// One row-vector product per sequence (batch is small): y_b (+)= x_b·mask[b].
    public func scaleByTiedMask(x: Tensor, mask: Tensor, y: Tensor, batch: Int, accumulate: Bool) {
        let C = x.columns, L = x.rows / batch
        precondition(x.isContiguous && y.isContiguous && mask.isContiguous && x.shape == y.shape && mask.count == batch * C
                     && x.rows == batch * L, "scaleByTiedMask: x \(x.shape), y \(y.shape), mask \(mask.shape), batch \(batch)")
        let x2 = x.reshaped([batch * L, C]), y2 = y.reshaped([batch * L, C]), m2 = mask.reshaped([batch, C])
        let product = accumulate ? scratch(L * C).reshaped([L, C]) : nil
        for b in 0..<batch {
            let xb = x2.slice(rows: b * L..<(b + 1) * L), yb = y2.slice(rows: b * L..<(b + 1) * L)
            let mb = m2.slice(rows: b..<(b + 1)).reshaped([C])
            if let product {
                mulRowVector(xb, mb, out: product)
                add(yb, product, out: yb)
            } else {
                mulRowVector(xb, mb, out: yb)
            }
        }
    }

    /// cuFFT, opened on first use.
    private var fft: CuFFT {
        if let f = cuFFTInstance { return f }
        do {
            let f = try CuFFT(stream: stream)
            cuFFTInstance = f
            return f
        } catch {
            fatalError("\(device): \(error)")
        }
    }

    private func grid1D(_ n: Int) -> (Int, Int, Int) { ((n + 255) / 256, 1, 1) }

    /// Spectra of a token-major (batch·L, H) tensor's zero-padded channel rows: (batch·H, L + 1) complex.
    private func spectrumOfColumns(_ x: Tensor, batch: Int, L: Int, H: Int) -> Tensor {
        let padded = scratch(batch * H * 2 * L)
        launch(.s4d, "wm_fft_pad", grid: grid1D(batch * H * 2 * L), block: (256, 1, 1),
               [.pointer(ptr(x)), .pointer(ptr(padded)), .int64(batch), .int64(L), .int64(H)])
        let spectrum = scratch(batch * H * 2 * (L + 1))
        fft.forward(ptr(padded), ptr(spectrum), length: 2 * L, batch: batch * H)
        return spectrum
    }

    private func spectrumOfKernel(_ k: Tensor, H: Int, L: Int) -> Tensor {
        let padded = scratch(H * 2 * L)
        launch(.s4d, "wm_fft_pad_rows", grid: grid1D(H * 2 * L), block: (256, 1, 1),
               [.pointer(ptr(k)), .pointer(ptr(padded)), .int64(H), .int64(L)])
        let spectrum = scratch(H * 2 * (L + 1))
        fft.forward(ptr(padded), ptr(spectrum), length: 2 * L, batch: H)
        return spectrum
    }

    /// Inverse transform of (batch·H, L + 1) spectra into a token-major (batch·L, H) tensor (first L, / 2L).
    private func columnsOfSpectrum(_ spectrum: Tensor, into y: Tensor, batch: Int, L: Int, H: Int) {
        let padded = scratch(batch * H * 2 * L)
        fft.inverse(ptr(spectrum), ptr(padded), length: 2 * L, batch: batch * H)
        launch(.s4d, "wm_fft_unpad", grid: grid1D(batch * L * H), block: (256, 1, 1),
               [.pointer(ptr(padded)), .pointer(ptr(y)), .int64(batch), .int64(L), .int64(H), .float(1 / Float(2 * L))])
    }

    private func checkConvolution(_ u: Tensor, _ kernel: Tensor, batch: Int) -> (L: Int, H: Int) {
        precondition(u.isContiguous && kernel.isContiguous, "causal convolution: tensors must be contiguous")
        let H = u.columns, L = u.rows / max(1, batch)
        precondition(u.rows == batch * L && kernel.shape == [H, L], "causal convolution: u \(u.shape), kernel \(kernel.shape), batch \(batch)")
        return (L, H)
    }

    public func causalConvolution(u: Tensor, kernel: Tensor, batch: Int, y: Tensor) {
        let (L, H) = checkConvolution(u, kernel, batch: batch)
        precondition(y.isContiguous && y.shape == u.shape, "causal convolution: y \(y.shape), expected \(u.shape)")
        if L == 0 || H == 0 || batch == 0 { return }
        let U = spectrumOfColumns(u, batch: batch, L: L, H: H)
        let K = spectrumOfKernel(kernel, H: H, L: L)
        launch(.s4d, "wm_fft_mul", grid: grid1D(batch * H * (L + 1)), block: (256, 1, 1),
               [.pointer(ptr(U)), .pointer(ptr(K)), .int64(batch), .int64(H), .int64(L + 1), .int32(0)])
        columnsOfSpectrum(U, into: y, batch: batch, L: L, H: H)
    }

    public func causalConvolutionBackward(dy: Tensor, u: Tensor, kernel: Tensor, batch: Int, du: Tensor?, dKernel: Tensor?) {
        let (L, H) = checkConvolution(u, kernel, batch: batch)
        precondition(dy.isContiguous && dy.shape == u.shape, "causal convolution backward: dy \(dy.shape), expected \(u.shape)")
        if L == 0 || H == 0 || batch == 0 {
            if let du { fill(du, value: 0) }
            if let dKernel { fill(dKernel, value: 0) }
            return
        }
        let DY = spectrumOfColumns(dy, batch: batch, L: L, H: H)
        if let dKernel {
            // dK[h] = Σ_b correlation of dy with u: Σ_b DY·conj(U), inverse, first L.
            let U = spectrumOfColumns(u, batch: batch, L: L, H: H)
            let G = scratch(H * 2 * (L + 1))
            launch(.s4d, "wm_fft_cross", grid: grid1D(H * (L + 1)), block: (256, 1, 1),
                   [.pointer(ptr(DY)), .pointer(ptr(U)), .pointer(ptr(G)), .int64(batch), .int64(H), .int64(L + 1)])
            let padded = scratch(H * 2 * L)
            fft.inverse(ptr(G), ptr(padded), length: 2 * L, batch: H)
            launch(.s4d, "wm_fft_unpad_rows", grid: grid1D(H * L), block: (256, 1, 1),
                   [.pointer(ptr(padded)), .pointer(ptr(dKernel)), .int64(H), .int64(L), .float(1 / Float(2 * L))])
        }
        if let du {
            // du = correlation of dy with K: DY·conj(K), inverse, first L.
            let K = spectrumOfKernel(kernel, H: H, L: L)
            launch(.s4d, "wm_fft_mul", grid: grid1D(batch * H * (L + 1)), block: (256, 1, 1),
                   [.pointer(ptr(DY)), .pointer(ptr(K)), .int64(batch), .int64(H), .int64(L + 1), .int32(1)])
            columnsOfSpectrum(DY, into: du, batch: batch, L: L, H: H)
        }
    }
}
