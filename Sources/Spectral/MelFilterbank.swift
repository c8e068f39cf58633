import Foundation

/// Triangular mel filters on the bins of a one-sided spectrum, built as torchaudio's
/// `melscale_fbanks(n_freqs: nFFT/2+1, f_min, f_max, n_mels, sample_rate, norm=None,
/// mel_scale="htk")` — the defaults of `torchaudio.transforms.MelSpectrogram`:
///
/// - HTK mel scale: mel(f) = 2595 · log10(1 + f/700).
/// - nMels + 2 edge frequencies evenly spaced in mel from mel(fMin) to mel(fMax); filter m
///   rises linearly from edge m to 1 at edge m+1 and falls to 0 at edge m+2.
/// - Bin k sits at frequency k · ⌊sampleRate/2⌋ / (bins − 1) (= k·sampleRate/nFFT for
///   even rates; torchaudio takes `sample_rate // 2`).
/// - No normalisation (norm=None): peaks are 1 and overlapping neighbours sum to 1 between
///   the first and last centre frequency — not Slaney's equal-area scaling.
///
/// `weights` is (nMels, bins) row-major; applying it maps a (frames, bins) spectrogram to
/// (frames, nMels).
public struct MelFilterbank: Sendable {
    /// Sample rate in Hz (default 16000).
    public let sampleRate: Double
    /// FFT length of the spectrogram it applies to (default 512).
    public let nFFT: Int
    /// Number of filters (default 64).
    public let nMels: Int
    /// Lowest edge frequency in Hz (default 0).
    public let fMin: Double
    /// Highest edge frequency in Hz (default ⌊sampleRate/2⌋, as torchaudio).
    public let fMax: Double
    /// nMels + 2 edge frequencies in Hz; filter m spans edges[m]…edges[m+2], peak at edges[m+1].
    public let edges: [Double]
    /// (nMels, bins) row-major weights, computed in double precision and rounded to Float.
    public let weights: [Float]
    /// Per filter, the bins with non-zero weight (possibly empty when filters are narrower
    /// than a bin); `apply` sums over these only.
    public let bands: [Range<Int>]

    /// One-sided spectrum bins: nFFT/2 + 1.
    public var bins: Int { nFFT / 2 + 1 }
    /// Peak (centre) frequency of each filter in Hz.
    public var centerFrequencies: ArraySlice<Double> { edges[1...nMels] }

    /// - Parameters:
    ///   - sampleRate: Hz (default 16000, SC09).
    ///   - nFFT: FFT length (default 512).
    ///   - nMels: filters (default 64).
    ///   - fMin: Hz (default 0).
    ///   - fMax: Hz (default nil = ⌊sampleRate/2⌋).
    public init(sampleRate: Double = 16000, nFFT: Int = 512, nMels: Int = 64, fMin: Double = 0, fMax: Double? = nil) {
        let fMax = fMax ?? (sampleRate / 2).rounded(.down)
        precondition(nFFT >= 2 && nMels >= 1 && 0 <= fMin && fMin < fMax, "bad mel filterbank parameters")
        self.sampleRate = sampleRate
        self.nFFT = nFFT
        self.nMels = nMels
        self.fMin = fMin
        self.fMax = fMax
        let (lo, hi) = (Self.hzToMel(fMin), Self.hzToMel(fMax))
        let edges = (0..<(nMels + 2)).map { i in Self.melToHz(lo + (hi - lo) * Double(i) / Double(nMels + 1)) }
        self.edges = edges

        let bins = nFFT / 2 + 1
        var weights = [Float](repeating: 0, count: nMels * bins)
        var bands: [Range<Int>] = []
        for m in 0..<nMels {
            var first = bins, last = 0
            for k in 0..<bins {
                let w = Self.triangle(edges, m, Self.binFrequency(k, bins: bins, sampleRate: sampleRate))
                weights[m * bins + k] = Float(w)
                if w > 0 { first = min(first, k); last = k + 1 }
            }
            bands.append(first < last ? first..<last : 0..<0)
        }
        self.weights = weights
        self.bands = bands
    }

    /// HTK mel: 2595 · log10(1 + hz/700).
    public static func hzToMel(_ hz: Double) -> Double { 2595 * log10(1 + hz / 700) }
    /// Inverse of `hzToMel`: 700 · (10^(mel/2595) − 1).
    public static func melToHz(_ mel: Double) -> Double { 700 * (pow(10, mel / 2595) - 1) }

    /// Frequency of bin k: torchaudio's linspace(0, sample_rate // 2, bins).
    static func binFrequency(_ k: Int, bins: Int, sampleRate: Double) -> Double {
        bins == 1 ? 0 : Double(k) * (sampleRate / 2).rounded(.down) / Double(bins - 1)
    }

    /// Filter m's response at frequency f: max(0, min(rising, falling)).
    static func triangle(_ edges: [Double], _ m: Int, _ f: Double) -> Double {
        let rising = (f - edges[m]) / (edges[m + 1] - edges[m])
        let falling = (edges[m + 2] - f) / (edges[m + 2] - edges[m + 1])
        return max(0, min(rising, falling))
    }

    /// Filter m's (continuous) response at `frequency` Hz: 1 at its centre, 0 outside its band.
    public func response(filter m: Int, frequency: Double) -> Double { Self.triangle(edges, m, frequency) }

    /// mel[t, m] = Σ_k spectrogram[t, k] · weights[m, k], summed over k in increasing order.
    /// - Parameters:
    ///   - spectrogram: (frames, bins).
    ///   - output: (frames, nMels), overwritten.
    public func apply(spectrogram: UnsafePointer<Float>, frames: Int, output: UnsafeMutablePointer<Float>) {
        let bins = self.bins
        weights.withUnsafeBufferPointer { w in
            for t in 0..<frames {
                let s = spectrogram + t * bins, out = output + t * nMels
                for m in 0..<nMels {
                    var acc: Float = 0
                    let row = w.baseAddress! + m * bins
                    for k in bands[m] { acc += s[k] * row[k] }
                    out[m] = acc
                }
            }
        }
    }
}
