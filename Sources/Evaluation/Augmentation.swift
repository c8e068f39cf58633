import AudioIO
import Foundation

/// Light, seeded waveform augmentation for the classifier, aimed at what generated clips
/// differ in from the corpus: level, background noise, the word's position in the second,
/// and 8-bit μ-law quantisation after per-clip min-max scaling (exactly how a SaShiMi
/// model's output is made).
public struct Augmentation: Codable, Sendable, Equatable {
    /// Gain drawn uniformly in dB.
    public var gainDB: ClosedRange<Double> = -18...12
    /// Probability of adding white noise, and its SNR range in dB (re. the clip's RMS).
    public var noiseProbability: Double = 0.5
    public var noiseSNR: ClosedRange<Double> = 5...40
    /// Largest time shift either way, in samples (zero fill).
    public var maxShift: Int = 1600
    /// Probability of an 8-bit μ-law round trip of the min-max scaled clip.
    public var mulawProbability: Double = 0.4

    public init() {}

    /// No change at all (evaluation, or `--no-augment`).
    public static let none: Augmentation = {
        var a = Augmentation()
        a.gainDB = 0...0
        a.noiseProbability = 0
        a.maxShift = 0
        a.mulawProbability = 0
        return a
    }()

    /// Augments `clip` in place.
    public func apply(_ clip: inout [Float], rng: inout SplitMix64) {
        let n = clip.count
        if maxShift > 0 {
            let shift = Int(rng.next() % UInt64(2 * maxShift + 1)) - maxShift
            if shift != 0 {
                var shifted = [Float](repeating: 0, count: n)
                for i in 0..<n where i - shift >= 0 && i - shift < n { shifted[i] = clip[i - shift] }
                clip = shifted
            }
        }
        if rng.uniform() < noiseProbability {
            let rms = (clip.reduce(0) { $0 + Double($1) * Double($1) } / Double(max(1, n))).squareRoot()
            let snr = noiseSNR.lowerBound + rng.uniform() * (noiseSNR.upperBound - noiseSNR.lowerBound)
            let sigma = max(rms, 1e-4) * pow(10, -snr / 20)
            for i in 0..<n { clip[i] += Float(sigma * rng.normal()) }
        }
        let db = gainDB.lowerBound + rng.uniform() * (gainDB.upperBound - gainDB.lowerBound)
        if db != 0 {
            let g = Float(pow(10, db / 20))
            for i in 0..<n { clip[i] *= g }
        }
        if rng.uniform() < mulawProbability {
            clip = Quantization.mulaw.decode(Quantization.mulaw.encode(Quantization.minMaxScaled(clip)))
        }
    }
}
