import Support

/// Short-time Fourier transform of real signals, matching `torch.stft(x, n_fft, hop_length,
/// window=torch.hann_window(n_fft), center=True, pad_mode="reflect", normalized=False,
/// onesided=True)` followed by |·|² (power) or |·| (magnitude).
///
/// Frame f covers samples [f·hop − nFFT/2, f·hop − nFFT/2 + nFFT) of the signal when
/// `center` is true (so frame f is centred on sample f·hop), the signal extended past both
/// ends by reflection without repeating the edge sample (x[−1] = x[1]); it covers
/// [f·hop, f·hop + nFFT) when `center` is false.
///
/// Layouts, row-major Float: signals (clips, length); spectrogram (clips, frames, bins),
/// bins = nFFT/2 + 1, bin k at frequency k·sampleRate/nFFT.
public struct STFT: Sendable {
    /// What each time-frequency cell holds.
    public enum Scale: Sendable {
        /// |X|², torchaudio's `Spectrogram(power=2)` (the MelSpectrogram default).
        case power
        /// |X|, `power=1`.
        case magnitude
    }

    /// FFT length = window length, in samples. Default 512 (32 ms at 16 kHz).
    public let nFFT: Int
    /// Samples between frame starts. Default 128 (8 ms at 16 kHz, 4× overlap).
    public let hop: Int
    /// Centre frames on multiples of `hop`, reflect-padding nFFT/2 samples at both ends.
    /// Default true.
    public let center: Bool
    /// The analysis window: periodic Hann of length nFFT, not normalised.
    public let window: [Float]

    let cache: FFTPlanCache

    /// - Parameters:
    ///   - nFFT: FFT and window length, ≥ 2 (default 512).
    ///   - hop: hop length ≥ 1 (default 128).
    ///   - center: reflect-pad and centre frames as torch.stft (default true).
    ///   - cache: where the FFT plans are made and kept.
    public init(nFFT: Int = 512, hop: Int = 128, center: Bool = true, cache: FFTPlanCache) {
        precondition(nFFT >= 2 && hop >= 1, "STFT needs nFFT ≥ 2 and hop ≥ 1")
        self.nFFT = nFFT
        self.hop = hop
        self.center = center
        self.window = Window.hann(nFFT)
        self.cache = cache
    }

    /// Frequency bins per frame: nFFT/2 + 1.
    public var bins: Int { nFFT / 2 + 1 }

    /// Samples of reflection added at each end: nFFT/2 when centred, else 0.
    var padding: Int { center ? nFFT / 2 : 0 }

    /// Frames of a signal of `length` samples: 1 + (length + 2·padding − nFFT) / hop
    /// (= 1 + length/hop when centred with even nFFT). Zero if the signal is too short.
    public func frameCount(length: Int) -> Int {
        let padded = length + 2 * padding
        return padded < nFFT ? 0 : 1 + (padded - nFFT) / hop
    }

    /// Spectrograms of `clips` signals, threaded over clips.
    /// - Parameters:
    ///   - signals: (clips, length) samples.
    ///   - length: samples per clip; must exceed nFFT/2 when centred (reflection needs it),
    ///     and be at least nFFT otherwise.
    ///   - output: (clips, frameCount(length), bins), overwritten.
    ///   - scale: power (default) or magnitude.
    public func spectrogram(signals: UnsafePointer<Float>, clips: Int, length: Int, output: UnsafeMutablePointer<Float>,
                            scale: Scale = .power, pool: ThreadPool) {
        let frames = frameCount(length: length)
        let perClip = frames * bins
        pool.forRanges(clips, grain: 1) { range in
            let work = Workspace(self, length: length)
            for clip in range {
                transform(signals + clip * length, work, output: output + clip * perClip, scale: scale)
            }
        }
    }

    /// Scratch for one clip at a time, and the plan for its frame count.
    final class Workspace {
        let length: Int
        let frames: Int
        let padded: UnsafeMutablePointer<Float>  // the reflect-padded clip
        let real: AlignedFloats  // frames × nFFT windowed samples
        let spectra: AlignedFloats  // frames × spectrumPitch complex
        let spectrumPitch: Int
        let plan: FFTPlan

        init(_ stft: STFT, length: Int) {
            precondition(stft.center ? length > stft.padding : length >= stft.nFFT,
                         "STFT: a clip of \(length) samples is too short for nFFT \(stft.nFFT) (center: \(stft.center))")
            self.length = length
            frames = stft.frameCount(length: length)
            padded = .allocate(capacity: length + 2 * stft.padding)
            // Complex rows padded to a multiple of 8 values so every frame's spectrum shares
            // the first one's SIMD alignment.
            spectrumPitch = (stft.bins + 7) / 8 * 8
            real = AlignedFloats(count: frames * stft.nFFT)
            spectra = AlignedFloats(count: 2 * frames * spectrumPitch)
            plan = stft.cache.plan(RealFFTShape(direction: .forward, size: stft.nFFT, count: frames,
                                                realStride: 1, realDistance: stft.nFFT,
                                                complexStride: 1, complexDistance: spectrumPitch))
        }

        deinit { padded.deallocate() }
    }

    /// One clip → (frames, bins) at `output`.
    func transform(_ signal: UnsafePointer<Float>, _ work: Workspace, output: UnsafeMutablePointer<Float>, scale: Scale) {
        let L = work.length, pad = padding, nFFT = self.nFFT, bins = self.bins
        // Reflect-pad (numpy/torch "reflect": the edge sample is not repeated).
        let padded = work.padded
        for i in 0..<(L + 2 * pad) {
            var s = i - pad
            if s < 0 { s = -s }
            if s >= L { s = 2 * (L - 1) - s }
            padded[i] = signal[s]
        }
        window.withUnsafeBufferPointer { w in
            for f in 0..<work.frames {
                let src = padded + f * hop, dst = work.real.pointer + f * nFFT
                for i in 0..<nFFT { dst[i] = src[i] * w[i] }
            }
        }
        work.plan.forward(work.real.pointer, work.spectra.pointer)
        for f in 0..<work.frames {
            let x = work.spectra.pointer + 2 * f * work.spectrumPitch, out = output + f * bins
            switch scale {
            case .power:
                for k in 0..<bins { out[k] = x[2 * k] * x[2 * k] + x[2 * k + 1] * x[2 * k + 1] }
            case .magnitude:
                for k in 0..<bins { out[k] = (x[2 * k] * x[2 * k] + x[2 * k + 1] * x[2 * k + 1]).squareRoot() }
            }
        }
    }
}
