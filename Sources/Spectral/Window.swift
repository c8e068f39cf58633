import Foundation

/// Analysis windows for the STFT.
public enum Window {
    /// The periodic Hann window of `length` samples: w[i] = 0.5 − 0.5·cos(2πi / length),
    /// as `torch.hann_window(length)` (periodic=True). Periodic rather than symmetric
    /// (÷ (length − 1)) so that overlapping copies at hop length/4 sum to a constant.
    /// Computed in double precision, rounded once to Float.
    public static func hann(_ length: Int) -> [Float] {
        (0..<length).map { i in Float(0.5 - 0.5 * cos(2 * Double.pi * Double(i) / Double(length))) }
    }
}
