import Kernels

/// Causal long convolution by FFT: the LTI path of an S4D layer (SaShiMi's S4, Mamba's
/// non-selective baseline), where each channel has its own length-L kernel.
///
///     y[b, t, h] = Σ_{s=0..t} k[h, s] · u[b, t − s, h]      for 0 ≤ t < L
///
/// Layouts, all row-major Float:
/// - `u`, `y`, `dy`, `du`: token-major (batch, length, channels): [b, t, h] at (b·L + t)·H + h.
/// - `kernel`, `dKernel`: (channels, length): [h, s] at h·L + s.
/// - kernel spectrum: `spectrumCount` floats, an opaque layout made by `kernelSpectrum`;
///   compute it once per kernel and pass it to both `forward` and `backward`.
///
/// How: zero-pad each channel to `fftSize` = n ≥ 2L − 1 (a 7-smooth length), multiply
/// spectra, transform back and keep the first L samples. n ≥ 2L − 1 means the circular
/// wrap-around of the n-point transform lands only on samples t ≥ L, which are dropped.
///
/// Work is split into tasks of `channelBlock` adjacent channels. A task copies its channels
/// out of the (B, L, H) layout into a private zero-padded buffer laid out (n, width) — the
/// same token-major order, so the copy is a run of short contiguous rows — and FFTW
/// transforms the `width` columns with one strided batched plan. Plans come from the
/// `FFTPlanCache` and are executed concurrently on per-thread buffers.
///
/// Deterministic: every task does its arithmetic in a fixed order that does not depend on
/// which thread runs it, and `backward` sums over the batch in order b = 0, 1, …; the
/// results are bit-identical for any thread count (given the same plans: see
/// `FFTPlanCache.Rigor`).
public struct FFTConvolution: @unchecked Sendable {
    /// Sequence length L (samples per channel, and kernel length).
    public let length: Int
    /// Channels H.
    public let channels: Int
    /// Transform length n: the smallest 7-smooth number ≥ 2L − 1.
    public let fftSize: Int
    /// Channels per task (the last task takes the remainder).
    public let channelBlock: Int

    let cache: FFTPlanCache  // keeps the plans alive
    let fullPlans: BlockPlans
    let tailPlans: BlockPlans?

    struct BlockPlans {
        let forward: FFTPlan  // r2c over `width` strided columns
        let inverse: FFTPlan  // c2r, same layout
    }

    struct Block {
        let start: Int  // first channel
        let width: Int  // channels in this block
        let plans: BlockPlans
    }

    /// - Parameters:
    ///   - length: L ≥ 1, the sequence and kernel length.
    ///   - channels: H ≥ 1.
    ///   - cache: where plans are made and kept; shared by every convolution of a model.
    ///   - channelBlock: channels per task (default 8). Smaller gives more tasks (backward
    ///     parallelises over channel blocks only); larger gives FFTW more columns per plan.
    public init(length: Int, channels: Int, cache: FFTPlanCache, channelBlock: Int = 8) {
        precondition(length >= 1 && channels >= 1, "FFTConvolution needs length ≥ 1 and channels ≥ 1")
        precondition(channelBlock >= 1, "channelBlock must be ≥ 1")
        self.length = length
        self.channels = channels
        self.fftSize = FFTSize.smooth(atLeast: 2 * length - 1)
        self.channelBlock = min(channelBlock, channels)
        self.cache = cache
        let n = fftSize
        func plans(width: Int) -> BlockPlans {
            var shape = RealFFTShape(direction: .forward, size: n, count: width,
                                     realStride: width, realDistance: 1, complexStride: width, complexDistance: 1)
            let forward = cache.plan(shape)
            shape.direction = .inverse
            return BlockPlans(forward: forward, inverse: cache.plan(shape))
        }
        fullPlans = plans(width: self.channelBlock)
        let tail = channels % self.channelBlock
        tailPlans = tail == 0 ? nil : plans(width: tail)
    }

    /// Frequency bins per channel: n/2 + 1.
    public var bins: Int { fftSize / 2 + 1 }
    /// Floats in a kernel spectrum (2 per bin per channel).
    public var spectrumCount: Int { 2 * bins * channels }
    /// Number of channel blocks (tasks per batch element).
    public var blockCount: Int { (channels + channelBlock - 1) / channelBlock }

    func block(_ c: Int) -> Block {
        let start = c * channelBlock
        let width = min(channelBlock, channels - start)
        return Block(start: start, width: width, plans: width == channelBlock ? fullPlans : tailPlans!)
    }

    // MARK: Kernel spectrum

    /// Transforms `kernel` (H, L) into `spectrum` (`spectrumCount` floats, any alignment).
    /// Layout: bin f of channel h is the complex pair at 2·(f·H + h).
    public func kernelSpectrum(kernel: UnsafePointer<Float>, spectrum: UnsafeMutablePointer<Float>, pool: ThreadPool) {
        let n = fftSize, bins = self.bins, H = channels
        pool.forRanges(blockCount, grain: 1) { range in
            let real = AlignedFloats(count: n * channelBlock)
            let spec = AlignedFloats(count: 2 * bins * channelBlock)
            for c in range {
                let blk = block(c)
                loadKernel(kernel, blk, real.pointer)
                blk.plans.forward.forward(real.pointer, spec.pointer)
                for f in 0..<bins {
                    (spectrum + 2 * (f * H + blk.start)).update(from: spec.pointer + 2 * f * blk.width, count: 2 * blk.width)
                }
            }
        }
    }

    // MARK: Forward

    /// y = k ∗ u (causal, per channel). Overwrites `y`; `u` and `y` must not overlap.
    /// - Parameters:
    ///   - u: (batch, L, H) input.
    ///   - spectrum: from `kernelSpectrum`.
    ///   - y: (batch, L, H) output.
    public func forward(u: UnsafePointer<Float>, spectrum: UnsafePointer<Float>, y: UnsafeMutablePointer<Float>,
                        batch: Int, pool: ThreadPool) {
        let n = fftSize, bins = self.bins, L = length, H = channels, blocks = blockCount
        let scale = 1 / Float(n)  // FFTW's inverse is unnormalised
        pool.forRanges(batch * blocks, grain: 1) { range in
            let real = AlignedFloats(count: n * channelBlock)
            let spec = AlignedFloats(count: 2 * bins * channelBlock)
            for task in range {
                let b = task / blocks, blk = block(task % blocks)
                loadTokens(u + b * L * H, blk, real.pointer)
                blk.plans.forward.forward(real.pointer, spec.pointer)
                multiplyBySpectrum(spec.pointer, spectrum, blk, conjugate: false)
                blk.plans.inverse.inverse(spec.pointer, real.pointer)
                storeTokens(real.pointer, blk, y + b * L * H, scale: scale)
            }
        }
    }

    /// `forward` with the kernel given in the time domain; its spectrum is computed into a
    /// temporary. Prefer the spectrum overload when backward follows with the same kernel.
    public func forward(u: UnsafePointer<Float>, kernel: UnsafePointer<Float>, y: UnsafeMutablePointer<Float>,
                        batch: Int, pool: ThreadPool) {
        let spectrum = AlignedFloats(count: spectrumCount)
        kernelSpectrum(kernel: kernel, spectrum: spectrum.pointer, pool: pool)
        forward(u: u, spectrum: spectrum.pointer, y: y, batch: batch, pool: pool)
    }

    // MARK: Backward

    /// Gradients of y = k ∗ u, given dy = ∂loss/∂y. Both outputs are overwritten (not
    /// accumulated); pass nil for one that is not needed to skip its work.
    ///
    ///     du[b, t, h]  = Σ_{t' ≥ t} dy[b, t', h] · k[h, t' − t]          (correlation with k)
    ///     dKernel[h, s] = Σ_b Σ_{t ≥ s} dy[b, t, h] · u[b, t − s, h]      (summed over the batch)
    ///
    /// - Parameters:
    ///   - dy: (batch, L, H).
    ///   - u: (batch, L, H), the forward input; read only when `dKernel` is wanted.
    ///   - spectrum: the kernel's spectrum from `kernelSpectrum`; read only when `du` is wanted.
    ///   - du: (batch, L, H) or nil.
    ///   - dKernel: (H, L) or nil. Sums over b in order 0, 1, … in the frequency domain.
    public func backward(dy: UnsafePointer<Float>, u: UnsafePointer<Float>, spectrum: UnsafePointer<Float>,
                         du: UnsafeMutablePointer<Float>?, dKernel: UnsafeMutablePointer<Float>?,
                         batch: Int, pool: ThreadPool) {
        if du == nil && dKernel == nil { return }
        if batch == 0 {
            dKernel?.update(repeating: 0, count: channels * length)
            return
        }
        let n = fftSize, bins = self.bins, L = length, H = channels
        let scale = 1 / Float(n)
        // Tasks are channel blocks, each looping over the batch, so the dKernel sum needs no
        // cross-thread reduction and keeps a fixed order.
        pool.forRanges(blockCount, grain: 1) { range in
            let real = AlignedFloats(count: n * channelBlock)
            let dySpec = AlignedFloats(count: 2 * bins * channelBlock)
            let uSpec = dKernel == nil ? nil : AlignedFloats(count: 2 * bins * channelBlock)
            let kSpec = dKernel == nil ? nil : AlignedFloats(count: 2 * bins * channelBlock)
            for c in range {
                let blk = block(c)
                let count = bins * blk.width
                for b in 0..<batch {
                    loadTokens(dy + b * L * H, blk, real.pointer)
                    blk.plans.forward.forward(real.pointer, dySpec.pointer)
                    if let uSpec, let kSpec {
                        loadTokens(u + b * L * H, blk, real.pointer)
                        blk.plans.forward.forward(real.pointer, uSpec.pointer)
                        complexCorrelate(kSpec.pointer, dySpec.pointer, uSpec.pointer, count: count, accumulate: b > 0)
                    }
                    if let du {
                        multiplyBySpectrum(dySpec.pointer, spectrum, blk, conjugate: true)
                        blk.plans.inverse.inverse(dySpec.pointer, real.pointer)
                        storeTokens(real.pointer, blk, du + b * L * H, scale: scale)
                    }
                }
                if let kSpec, let dKernel {
                    blk.plans.inverse.inverse(kSpec.pointer, real.pointer)
                    storeKernel(real.pointer, blk, dKernel, scale: scale)
                }
            }
        }
    }

    /// `backward` with the kernel given in the time domain (its spectrum is computed into a
    /// temporary when `du` is wanted).
    public func backward(dy: UnsafePointer<Float>, u: UnsafePointer<Float>, kernel: UnsafePointer<Float>,
                         du: UnsafeMutablePointer<Float>?, dKernel: UnsafeMutablePointer<Float>?,
                         batch: Int, pool: ThreadPool) {
        let spectrum = AlignedFloats(count: du == nil ? 0 : spectrumCount)
        if du != nil { kernelSpectrum(kernel: kernel, spectrum: spectrum.pointer, pool: pool) }
        backward(dy: dy, u: u, spectrum: spectrum.pointer, du: du, dKernel: dKernel, batch: batch, pool: pool)
    }

    // MARK: Block buffers
    // A block buffer holds `width` channels as an (n, width) row-major matrix: sample t of
    // channel start + j at t·width + j; its spectrum is (bins, width) complex likewise.

    /// One batch element's (L, H) slab → block buffer, zero rows L..<n.
    @inline(__always)
    func loadTokens(_ src: UnsafePointer<Float>, _ blk: Block, _ real: UnsafeMutablePointer<Float>) {
        let w = blk.width, H = channels, L = length
        for t in 0..<L {
            (real + t * w).update(from: src + t * H + blk.start, count: w)
        }
        (real + L * w).update(repeating: 0, count: (fftSize - L) * w)
    }

    /// Block buffer rows 0..<L, times `scale` → one batch element's (L, H) slab.
    @inline(__always)
    func storeTokens(_ real: UnsafePointer<Float>, _ blk: Block, _ dst: UnsafeMutablePointer<Float>, scale: Float) {
        let w = blk.width, H = channels
        for t in 0..<length {
            let s = real + t * w, d = dst + t * H + blk.start
            for j in 0..<w { d[j] = s[j] * scale }
        }
    }

    /// Kernel rows (H, L) → block buffer (a small transpose), zero rows L..<n.
    @inline(__always)
    func loadKernel(_ kernel: UnsafePointer<Float>, _ blk: Block, _ real: UnsafeMutablePointer<Float>) {
        let w = blk.width, L = length
        for j in 0..<w {
            let s = kernel + (blk.start + j) * L
            for t in 0..<L { real[t * w + j] = s[t] }
        }
        (real + L * w).update(repeating: 0, count: (fftSize - L) * w)
    }

    /// Block buffer rows 0..<L, times `scale` → kernel-shaped (H, L) rows.
    @inline(__always)
    func storeKernel(_ real: UnsafePointer<Float>, _ blk: Block, _ dst: UnsafeMutablePointer<Float>, scale: Float) {
        let w = blk.width, L = length
        for j in 0..<w {
            let d = dst + (blk.start + j) * L
            for t in 0..<L { d[t] = real[t * w + j] * scale }
        }
    }

    /// Block spectrum ← block spectrum · K (or · conj K) for the block's channels.
    @inline(__always)
    func multiplyBySpectrum(_ spec: UnsafeMutablePointer<Float>, _ spectrum: UnsafePointer<Float>, _ blk: Block,
                            conjugate: Bool) {
        let w = blk.width, H = channels
        for f in 0..<bins {
            let x = spec + 2 * f * w, k = spectrum + 2 * (f * H + blk.start)
            if conjugate {
                complexMultiplyConjugate(x, by: k, count: w)
            } else {
                complexMultiply(x, by: k, count: w)
            }
        }
    }
}
