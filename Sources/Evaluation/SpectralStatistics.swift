import Foundation
import Support
import Spectral

/// Classifier-free per-clip statistics of the power spectrogram (the same STFT as the
/// log-mel features: Hann 512, hop 128, centred), and distances between two sets of them.
///
/// - Spectral flatness of a frame: geometric mean / arithmetic mean of its power spectrum
///   (Wiener entropy; 1 for white noise, → 0 for a pure tone); per clip, the mean over its
///   active frames.
/// - Spectral centroid of a clip: Σ f·P / Σ P over all its frames and bins, in Hz (energy-
///   weighted, so silence does not pull it).
///
/// Active frames are those within `activeRange` dB (60) of the clip's loudest frame, so
/// the silence around a word (or digital zero padding) does not count as perfectly flat or
/// perfectly tonal. An all-zero clip has flatness 0 and centroid 0.
public struct SpectralStatistics: Sendable {
    public let stft: STFT
    public let sampleRate: Int
    public let activeRange: Double

    public init(sampleRate: Int = 16000, nFFT: Int = 512, hop: Int = 128, activeRange: Double = 60, cache: FFTPlanCache) {
        stft = STFT(nFFT: nFFT, hop: hop, center: true, cache: cache)
        self.sampleRate = sampleRate
        self.activeRange = activeRange
    }

    public struct Values: Sendable, Equatable {
        public var flatness: [Double]
        public var centroid: [Double]
    }

    /// Flatness and centroid of every clip of `set`.
    public func compute(_ set: ClipSet, pool: ThreadPool) -> Values {
        let frames = stft.frameCount(length: set.length), bins = stft.bins
        var power = [Float](repeating: 0, count: set.count * frames * bins)
        set.samples.withUnsafeBufferPointer { s in
            power.withUnsafeMutableBufferPointer { p in
                stft.spectrogram(signals: s.baseAddress!, clips: set.count, length: set.length, output: p.baseAddress!, scale: .power, pool: pool)
            }
        }
        var values = Values(flatness: [], centroid: [])
        let binHz = Double(sampleRate) / Double(stft.nFFT)
        for c in 0..<set.count {
            let base = c * frames * bins
            var energies = [Double](repeating: 0, count: frames)
            var weighted = 0.0, total = 0.0
            for t in 0..<frames {
                var e = 0.0
                for k in 0..<bins {
                    let p = Double(power[base + t * bins + k])
                    e += p
                    weighted += p * Double(k) * binHz
                }
                energies[t] = e
                total += e
            }
            values.centroid.append(total > 0 ? weighted / total : 0)
            let loudest = energies.max() ?? 0
            guard loudest > 0 else { values.flatness.append(0); continue }
            let threshold = loudest * Foundation.pow(10, -activeRange / 10)
            var sum = 0.0, active = 0
            for t in 0..<frames where energies[t] >= threshold {
                // Per-bin floor relative to the frame's mean keeps log finite for exact zeros.
                let mean = energies[t] / Double(bins), eps = mean * 1e-10
                var logSum = 0.0
                for k in 0..<bins { logSum += Foundation.log(Double(power[base + t * bins + k]) + eps) }
                sum += Foundation.exp(logSum / Double(bins)) / (mean + eps)
                active += 1
            }
            values.flatness.append(sum / Double(active))
        }
        return values
    }
}

/// Distances between two one-dimensional samples (e.g. the per-clip flatness of the
/// generated and the reference set).
public enum DistributionDistance {
    /// Wasserstein-1 (earth mover's) distance between the two empirical distributions:
    /// ∫ |F_a(x) − F_b(x)| dx, as `scipy.stats.wasserstein_distance`. In the values' unit.
    public static func wasserstein1(_ a: [Double], _ b: [Double]) -> Double {
        guard !a.isEmpty, !b.isEmpty else { return .nan }
        let sa = a.sorted(), sb = b.sorted()
        let all = (sa + sb).sorted()
        var i = 0, j = 0, total = 0.0
        for k in 0..<(all.count - 1) {
            let x = all[k]
            while i < sa.count && sa[i] <= x { i += 1 }
            while j < sb.count && sb[j] <= x { j += 1 }
            let fa = Double(i) / Double(sa.count), fb = Double(j) / Double(sb.count)
            total += abs(fa - fb) * (all[k + 1] - x)
        }
        return total
    }

    /// Two-sample Kolmogorov–Smirnov statistic sup_x |F_a(x) − F_b(x)| (0 … 1).
    public static func kolmogorovSmirnov(_ a: [Double], _ b: [Double]) -> Double {
        guard !a.isEmpty, !b.isEmpty else { return .nan }
        let sa = a.sorted(), sb = b.sorted()
        var i = 0, j = 0, d = 0.0
        while i < sa.count && j < sb.count {
            let x = min(sa[i], sb[j])
            while i < sa.count && sa[i] <= x { i += 1 }
            while j < sb.count && sb[j] <= x { j += 1 }
            d = max(d, abs(Double(i) / Double(sa.count) - Double(j) / Double(sb.count)))
        }
        return d
    }
}
