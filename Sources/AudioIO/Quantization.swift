import Foundation

/// 8-bit quantisation to 256 classes as SaShiMi's audio pipeline does it
/// (state-spaces/s4 `src/dataloaders/audio.py`): companding (μ-law, μ = 255) or none
/// (linear) maps [-1, 1] to y ∈ [-1, 1]; then `q = ⌊(y+1)/2 · (256 − 0.01) + 0.005⌋`.
/// Decoding returns the centre of the class, `y = (q + ½)/128 − 1`: SaShiMi returns the
/// lower edge (q/128 − 1), which re-encodes one class low for every q > 128 and doubles the
/// worst-case error; the centre makes encode∘decode the identity. Class 128 is silence.
public enum Quantization: String, Sendable, CaseIterable {
    case mulaw
    case linear

    public static let levels = 256
    static let mu: Float = 255
    static let epsilon: Float = 0.01

    /// Sample in [-1, 1] (clipped) → class in 0…255.
    @inline(__always)
    public func encode(_ x: Float) -> UInt8 {
        let x = min(max(x, -1), 1)
        let y: Float
        switch self {
        case .mulaw:
            // y = sign(x)·ln(1 + μ|x|)/ln(1 + μ)
            y = (x < 0 ? -1 : 1) * log1pf(Self.mu * abs(x)) / log1pf(Self.mu)
        case .linear:
            y = x
        }
        let q = ((y + 1) / 2 * (Float(Self.levels) - Self.epsilon) + Self.epsilon / 2).rounded(.down)
        return UInt8(min(max(q, 0), 255))
    }

    /// Class in 0…255 → sample in (-1, 1), the centre of the class.
    @inline(__always)
    public func decode(_ q: UInt8) -> Float {
        let y = (Float(q) + 0.5) / Float(Self.levels / 2) - 1
        switch self {
        case .mulaw:
            return (y < 0 ? -1 : 1) * (powf(1 + Self.mu, abs(y)) - 1) / Self.mu
        case .linear:
            return y
        }
    }

    public func encode(_ xs: [Float]) -> [UInt8] { xs.map(encode) }
    public func decode(_ qs: [UInt8]) -> [Float] { qs.map(decode) }

    /// Each clip divided by its largest magnitude: [-1, 1] with zero kept at zero, so that
    /// silence is the silence class in every clip (a silent clip stays silent).
    public static func peakScaled(_ xs: [Float]) -> [Float] {
        let peak = xs.reduce(Float(0)) { max($0, abs($1)) }
        guard peak > 0 else { return xs }
        return xs.map { $0 / peak }
    }

    /// SaShiMi scales every clip to [-1, 1] by its own minimum and maximum before
    /// quantising (`minmax_scale`, with 1e-6 added to the range). A silent clip maps to -1…
    /// so callers may prefer `peakNormalized` for near-silent input.
    public static func minMaxScaled(_ xs: [Float]) -> [Float] {
        guard let lo = xs.min(), let hi = xs.max() else { return xs }
        let scale = 2 / (hi - lo + 1e-6)
        return xs.map { ($0 - lo) * scale - 1 }
    }
}

/// Per-clip scaling before quantisation.
public enum Normalization: String, Sendable, CaseIterable {
    /// Each clip scaled to [-1, 1] by its own minimum and maximum (SaShiMi's `minmax_scale`):
    /// silence lands at a per-clip offset from the silence class.
    case minmax
    /// Each clip divided by its peak magnitude: silence stays at the silence class.
    case peak
    /// The samples as decoded.
    case none

    public func apply(_ xs: [Float]) -> [Float] {
        switch self {
        case .minmax: return Quantization.minMaxScaled(xs)
        case .peak: return Quantization.peakScaled(xs)
        case .none: return xs
        }
    }
}
