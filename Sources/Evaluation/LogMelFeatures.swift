import Foundation
import Support
import Spectral

/// The spectral front end of evaluation: log-mel spectrograms through the Spectral layer.
///
/// Parameters (the SC09 evaluation's, as the classifier of the SaShiMi / DiffWave scripts):
/// - 16 kHz, 1 s clips (16000 samples);
/// - STFT with a periodic Hann window of 512 samples (32 ms), hop 128 (8 ms), centred frames
///   with reflect padding → 126 frames per second, 257 bins;
/// - 64 HTK-mel triangular filters from 0 to 8 kHz, unnormalised (torchaudio's
///   `MelSpectrogram` defaults);
/// - natural log of the mel power plus a floor of 1e-6 (silence → log 1e-6 ≈ −13.8).
///
/// FFT plans are made once per shape in the `FFTPlanCache` and reused by every call.
public struct LogMelSettings: Codable, Sendable, Equatable {
    public var sampleRate: Int = 16000
    public var clipLength: Int = 16000
    public var nFFT: Int = 512
    public var hop: Int = 128
    public var nMels: Int = 64
    public var floor: Float = 1e-6

    public init(sampleRate: Int = 16000, clipLength: Int = 16000, nFFT: Int = 512, hop: Int = 128, nMels: Int = 64, floor: Float = 1e-6) {
        self.sampleRate = sampleRate
        self.clipLength = clipLength
        self.nFFT = nFFT
        self.hop = hop
        self.nMels = nMels
        self.floor = floor
    }
}

public struct LogMelFeatures: Sendable {
    public let settings: LogMelSettings
    public let logMel: LogMel
    /// STFT frames per clip (126 for 1 s at hop 128).
    public let frames: Int

    public init(_ settings: LogMelSettings = LogMelSettings(), cache: FFTPlanCache) {
        self.settings = settings
        logMel = LogMel(sampleRate: Double(settings.sampleRate), nFFT: settings.nFFT, hop: settings.hop, nMels: settings.nMels,
                        floor: settings.floor, cache: cache)
        frames = logMel.frameCount(length: settings.clipLength)
    }

    public var nMels: Int { settings.nMels }
    /// Floats per clip of features: frames · nMels.
    public var perClip: Int { frames * settings.nMels }

    /// (clips, frames, nMels) log-mel features of `clips` clips of `clipLength` samples.
    public func compute(_ samples: UnsafePointer<Float>, clips: Int, into output: UnsafeMutablePointer<Float>, pool: ThreadPool) {
        guard clips > 0 else { return }
        logMel.features(signals: samples, clips: clips, length: settings.clipLength, output: output, pool: pool)
    }

    /// Features of a whole set, (count, frames, nMels) flat.
    public func compute(_ set: ClipSet, pool: ThreadPool) -> [Float] {
        precondition(set.length == settings.clipLength && set.sampleRate == settings.sampleRate,
                     "clip set at \(set.sampleRate) Hz × \(set.length) for log-mel settings \(settings.sampleRate) Hz × \(settings.clipLength)")
        var out = [Float](repeating: 0, count: set.count * perClip)
        set.samples.withUnsafeBufferPointer { s in
            out.withUnsafeMutableBufferPointer { o in compute(s.baseAddress!, clips: set.count, into: o.baseAddress!, pool: pool) }
        }
        return out
    }

    /// Per clip, the time average of its log-mel frames: (count, nMels) rows in Double. The
    /// classifier-free Fréchet distance fits Gaussians to these.
    public func meanLogMel(_ features: [Float], clips: Int) -> [[Double]] {
        let m = nMels, f = frames
        return (0..<clips).map { c in
            var row = [Double](repeating: 0, count: m)
            for t in 0..<f {
                let base = (c * f + t) * m
                for k in 0..<m { row[k] += Double(features[base + k]) }
            }
            return row.map { $0 / Double(f) }
        }
    }
}
