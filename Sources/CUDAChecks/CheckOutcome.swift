import Foundation

/// One GPU-vs-CPU comparison: its name, the worst relative error (max |gpu − cpu| over the
/// reference's max magnitude, per output tensor) and whether it is within tolerance.
public struct CheckOutcome: Sendable, CustomStringConvertible {
    public var name: String
    public var error: Double
    public var tolerance: Double
    public var detail: String

    public var passed: Bool { error <= tolerance }

    public var description: String {
        "\(passed ? "ok  " : "FAIL") \(name): max rel err \(String(format: "%.2e", error)) (tol \(String(format: "%.0e", tolerance)))"
            + (detail.isEmpty ? "" : "; \(detail)")
    }
}

/// max |a − b| / max |b| (0 when both are zero; NaN anywhere fails).
func relativeError(_ a: [Float], _ b: [Float]) -> Double {
    precondition(a.count == b.count, "compared tensors differ in size: \(a.count) vs \(b.count)")
    var num = 0.0, den = 0.0
    for i in 0..<a.count {
        if !a[i].isFinite || !b[i].isFinite { return a[i] == b[i] || (a[i].isNaN && b[i].isNaN) ? num : .infinity }
        num = max(num, Double(abs(a[i] - b[i])))
        den = max(den, Double(abs(b[i])))
    }
    return den == 0 ? num : num / den
}

/// Deterministic host values in [lo, hi) (a 64-bit LCG; same seed, same values).
func hostValues(_ n: Int, seed: UInt64, _ lo: Float = -1, _ hi: Float = 1) -> [Float] {
    var s = seed &* 0x9E37_79B9_7F4A_7C15 &+ 1
    return (0..<n).map { _ in
        s = s &* 6364136223846793005 &+ 1442695040888963407
        return lo + (hi - lo) * Float(s >> 40) / Float(1 << 24)
    }
}
