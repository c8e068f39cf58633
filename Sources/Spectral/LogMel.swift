import Support
import Foundation

/// Log-mel spectrogram features: log(mel(|STFT|²) + floor), natural log.
///
/// The STFT and mel filterbank are torchaudio's `MelSpectrogram(sample_rate, n_fft,
/// hop_length, n_mels, f_min, f_max)` with its other defaults (periodic Hann window of
/// length nFFT, center=True with reflect padding, power=2, HTK mel scale, norm=None).
/// The log uses an additive floor (default 1e-6) rather than clamping, so silence maps to
/// exactly log(floor) ≈ −13.8 and the features stay smooth near zero.
///
/// Defaults are those of SC09 evaluation: 16 kHz, nFFT 512, hop 128, 64 mels; a 1 s clip
/// (16000 samples) gives 126 frames.
///
/// Layouts, row-major Float: signals (clips, length) → features (clips, frames, nMels).
public struct LogMel: Sendable {
    /// The spectrogram (power scale is used).
    public let stft: STFT
    /// The mel filters applied to each power-spectrum frame.
    public let filterbank: MelFilterbank
    /// Added to every mel energy before the log (default 1e-6).
    public let floor: Float

    /// - Parameters:
    ///   - sampleRate: Hz (default 16000).
    ///   - nFFT: FFT and window length (default 512).
    ///   - hop: samples between frames (default 128).
    ///   - nMels: mel filters (default 64).
    ///   - fMin: lowest mel edge in Hz (default 0).
    ///   - fMax: highest mel edge in Hz (default nil = ⌊sampleRate/2⌋).
    ///   - floor: added before the log (default 1e-6).
    ///   - cache: where the FFT plans are made and kept.
    public init(sampleRate: Double = 16000, nFFT: Int = 512, hop: Int = 128, nMels: Int = 64,
                fMin: Double = 0, fMax: Double? = nil, floor: Float = 1e-6, cache: FFTPlanCache) {
        stft = STFT(nFFT: nFFT, hop: hop, center: true, cache: cache)
        filterbank = MelFilterbank(sampleRate: sampleRate, nFFT: nFFT, nMels: nMels, fMin: fMin, fMax: fMax)
        self.floor = floor
    }

    /// Features per frame: nMels.
    public var melCount: Int { filterbank.nMels }

    /// Frames of a clip of `length` samples (1 + length/hop with the defaults).
    public func frameCount(length: Int) -> Int { stft.frameCount(length: length) }

    /// Log-mel features of `clips` signals, threaded over clips.
    /// - Parameters:
    ///   - signals: (clips, length) samples; length > nFFT/2.
    ///   - output: (clips, frameCount(length), nMels), overwritten.
    public func features(signals: UnsafePointer<Float>, clips: Int, length: Int, output: UnsafeMutablePointer<Float>,
                         pool: ThreadPool) {
        let frames = frameCount(length: length), nMels = melCount
        pool.forRanges(clips, grain: 1) { range in
            let work = STFT.Workspace(stft, length: length)
            let power = UnsafeMutablePointer<Float>.allocate(capacity: max(1, frames * stft.bins))
            defer { power.deallocate() }
            for clip in range {
                stft.transform(signals + clip * length, work, output: power, scale: .power)
                let out = output + clip * frames * nMels
                filterbank.apply(spectrogram: power, frames: frames, output: out)
                for i in 0..<(frames * nMels) { out[i] = Foundation.log(out[i] + floor) }
            }
        }
    }
}
