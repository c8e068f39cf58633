import Kernels

/// Causal long convolution by FFT: the LTI path of an S4D layer (SaShiMi's S4, Mamba's
/// non-selective baseline), where each channel has its own length-L kernel.
///
///     y[b, t, h] = Σ_{s=0..t} k[h, s] · u[b, t − s, h]      for 0 ≤ t < L
///
/// Layouts, all row-major Float:
/// - `u`, `y`, `dy`, `du`: token-major (batch, length, channels): [b, t, h] at (b·L + t)·H + h.
/// - `kernel`, `dKernel`: (channels, length): [h, s] at h·L + s.
/// - kernel spectrum: (channels, n/2 + 1) complex, interleaved (re, im), made by
///   `kernelSpectrum`; compute it once per kernel and pass it to `forward` and `backward`.
///
/// How: zero-pad each channel to `fftSize` = n ≥ 2L − 1 (a 7-smooth length), multiply
/// spectra, transform back and keep the first L samples. n ≥ 2L − 1 means the circular
/// wrap-around of the n-point transform lands only on samples t ≥ L, which are dropped.
///
/// Work is split into tasks of `channelBlock` adjacent channels. A task transposes its
/// channels out of the (B, L, H) layout into a private zero-padded buffer of `width`
/// contiguous rows of n samples, and FFTW transforms the rows with one batched plan.
/// (FFTW's strided plans straight on the token-major layout were slower per transform than
/// contiguous rows by more than the transpose costs; docs/performance.md.) Plans come from the
/// `FFTPlanCache` and run concurrently on per-thread buffers.
///
/// Deterministic: every task does its arithmetic in a fixed order that does not depend on
/// which thread runs it, and `backward` sums over the batch in order b = 0, 1, …; the
/// results are bit-identical for any thread count (given the same plans: see
/// `FFTPlanCache.Rigor`).
public struct FFTConvolution: Sendable {
    /// Sequence length L (samples per channel, and kernel length).
    public let length: Int
    /// Channels H.
    public let channels: Int
    /// Transform length n: the smallest 7-smooth number ≥ 2L − 1.
    public let fftSize: Int
    /// Channels per task (the last task takes the remainder).
    public let channelBlock: Int
    /// Floats between channel rows of a block buffer, and complex values between rows of a
    /// block spectrum: n and n/2 + 1 rounded up to a 64-byte multiple plus one cache line.
    /// Rows then all share row 0's SIMD alignment, and a row pitch of 2^k bytes — which would
    /// map every row's element t to the same cache set while transposing — is avoided.
    let realPitch: Int
    let spectrumPitch: Int

    let cache: FFTPlanCache  // keeps the plans alive
    let fullPlans: BlockPlans
    let tailPlans: BlockPlans?

    struct BlockPlans: Sendable {
        let forward: FFTPlan  // r2c over `width` contiguous rows
        let inverse: FFTPlan  // c2r, same layout
    }

    struct Block: Sendable {
        let start: Int  // first channel
        let width: Int  // channels in this block
        let plans: BlockPlans
    }

    /// - Parameters:
    ///   - length: L ≥ 1, the sequence and kernel length.
    ///   - channels: H ≥ 1.
    ///   - cache: where plans are made and kept; shared by every convolution of a model.
    ///   - channelBlock: channels per task (default 16). The transpose in and out of the
    ///     token-major layout reads `channelBlock` floats per token, so 16 uses whole 64-byte
    ///     cache lines (8 gave slower loads); smaller gives more tasks, which matters
    ///     for `backward`, parallel over channel blocks only. Results do not depend on it
    ///     beyond rounding (different plans).
    public init(length: Int, channels: Int, cache: FFTPlanCache, channelBlock: Int = 16) {
        precondition(length >= 1 && channels >= 1, "FFTConvolution needs length ≥ 1 and channels ≥ 1")
        precondition(channelBlock >= 1, "channelBlock must be ≥ 1")
        self.length = length
        self.channels = channels
        self.fftSize = FFTSize.smooth(atLeast: 2 * length - 1)
        self.channelBlock = min(channelBlock, channels)
        self.cache = cache
        let n = fftSize
        realPitch = (n + 15) / 16 * 16 + 16
        spectrumPitch = (n / 2 + 1 + 7) / 8 * 8 + 8
        let realPitch = self.realPitch, spectrumPitch = self.spectrumPitch
        func plans(width: Int) -> BlockPlans {
            var shape = RealFFTShape(direction: .forward, size: n, count: width,
                                     realStride: 1, realDistance: realPitch, complexStride: 1, complexDistance: spectrumPitch)
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
    /// Layout: (H, bins) complex; bin f of channel h is the (re, im) pair at 2·(h·bins + f).
    public func kernelSpectrum(kernel: UnsafePointer<Float>, spectrum: UnsafeMutablePointer<Float>, pool: ThreadPool) {
        let bins = self.bins
        pool.forRanges(blockCount, grain: 1) { range in
            let real = AlignedFloats(count: realPitch * channelBlock)
            let spec = AlignedFloats(count: 2 * spectrumPitch * channelBlock)
            for c in range {
                let blk = block(c)
                loadKernel(kernel, blk, real.pointer)
                blk.plans.forward.forward(real.pointer, spec.pointer)
                for j in 0..<blk.width {
                    (spectrum + 2 * bins * (blk.start + j)).update(from: spec.pointer + 2 * spectrumPitch * j, count: 2 * bins)
                }
            }
        }
    }

    // MARK: Forward

    /// y = k ∗ u (causal, per channel). Overwrites `y`. `y` may be `u` (in place: each task
    /// reads all of its slab before writing it), but must not partly overlap it.
    /// - Parameters:
    ///   - u: (batch, L, H) input.
    ///   - spectrum: from `kernelSpectrum`.
    ///   - y: (batch, L, H) output.
    public func forward(u: UnsafePointer<Float>, spectrum: UnsafePointer<Float>, y: UnsafeMutablePointer<Float>,
                        batch: Int, pool: ThreadPool) {
        let n = fftSize, L = length, H = channels, blocks = blockCount
        let scale = 1 / Float(n)  // FFTW's inverse is unnormalised
        pool.forRanges(batch * blocks, grain: 1) { range in
            let real = AlignedFloats(count: realPitch * channelBlock)
            let spec = AlignedFloats(count: 2 * spectrumPitch * channelBlock)
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
        let n = fftSize, L = length, H = channels
        let scale = 1 / Float(n)
        // Tasks are channel blocks, each looping over the batch, so the dKernel sum needs no
        // cross-thread reduction and keeps a fixed order.
        pool.forRanges(blockCount, grain: 1) { range in
            let real = AlignedFloats(count: realPitch * channelBlock)
            let dySpec = AlignedFloats(count: 2 * spectrumPitch * channelBlock)
            let uSpec = dKernel == nil ? nil : AlignedFloats(count: 2 * spectrumPitch * channelBlock)
            let kSpec = dKernel == nil ? nil : AlignedFloats(count: 2 * spectrumPitch * channelBlock)
            for c in range {
                let blk = block(c)
                let count = spectrumPitch * blk.width  // whole rows; the gaps between rows are ignored by FFTW
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
    // A block buffer holds `width` channels as rows of n samples: sample t of channel
    // start + j at j·realPitch + t; its spectrum has rows of `bins` complex values, row j
    // starting at complex index j·spectrumPitch.

    /// One batch element's (L, H) slab → block rows (a transpose), zero-padded to n.
    @inline(__always)
    func loadTokens(_ src: UnsafePointer<Float>, _ blk: Block, _ real: UnsafeMutablePointer<Float>) {
        let w = blk.width, H = channels, L = length, n = fftSize, p = realPitch
        // Reading a short contiguous run per token and writing `width` sequential streams.
        for t in 0..<L {
            let s = src + t * H + blk.start
            for j in 0..<w { real[j * p + t] = s[j] }
        }
        for j in 0..<w { (real + j * p + L).update(repeating: 0, count: n - L) }
    }

    /// Block rows' first L samples, times `scale` → one batch element's (L, H) slab.
    @inline(__always)
    func storeTokens(_ real: UnsafePointer<Float>, _ blk: Block, _ dst: UnsafeMutablePointer<Float>, scale: Float) {
        let w = blk.width, H = channels, p = realPitch
        for t in 0..<length {
            let d = dst + t * H + blk.start
            for j in 0..<w { d[j] = real[j * p + t] * scale }
        }
    }

    /// Kernel rows (H, L) → block rows, zero-padded to n.
    @inline(__always)
    func loadKernel(_ kernel: UnsafePointer<Float>, _ blk: Block, _ real: UnsafeMutablePointer<Float>) {
        let L = length, n = fftSize, p = realPitch
        for j in 0..<blk.width {
            (real + j * p).update(from: kernel + (blk.start + j) * L, count: L)
            (real + j * p + L).update(repeating: 0, count: n - L)
        }
    }

    /// Block rows' first L samples, times `scale` → kernel-shaped (H, L) rows.
    @inline(__always)
    func storeKernel(_ real: UnsafePointer<Float>, _ blk: Block, _ dst: UnsafeMutablePointer<Float>, scale: Float) {
        let L = length, p = realPitch
        for j in 0..<blk.width {
            let s = real + j * p, d = dst + (blk.start + j) * L
            for t in 0..<L { d[t] = s[t] * scale }
        }
    }

    /// Block spectrum ← block spectrum · K (or · conj K) for the block's channels.
    @inline(__always)
    func multiplyBySpectrum(_ spec: UnsafeMutablePointer<Float>, _ spectrum: UnsafePointer<Float>, _ blk: Block,
                            conjugate: Bool) {
        for j in 0..<blk.width {
            let x = spec + 2 * spectrumPitch * j, k = spectrum + 2 * bins * (blk.start + j)
            if conjugate {
                complexMultiplyConjugate(x, by: k, count: bins)
            } else {
                complexMultiply(x, by: k, count: bins)
            }
        }
    }
}
