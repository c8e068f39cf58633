import Foundation

/// SplitMix64: a seeded generator so every test sees the same "random" data.
struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// `count` floats uniform in [-1, 1).
func randomFloats(_ count: Int, seed: UInt64) -> [Float] {
    var rng = SplitMix64(seed: seed)
    return (0..<count).map { _ in Float.random(in: -1..<1, using: &rng) }
}

/// max |a − b| / max |b|: error relative to the reference's scale. (Per-element relative
/// error is meaningless where the reference crosses zero.)
func maxRelativeError(_ a: [Float], _ b: [Double]) -> Double {
    precondition(a.count == b.count)
    var err = 0.0, scale = 0.0
    for i in a.indices {
        err = max(err, abs(Double(a[i]) - b[i]))
        scale = max(scale, abs(b[i]))
    }
    return scale == 0 ? err : err / scale
}

/// Direct O(L²) references in double precision, straight from the definitions.
enum DirectConvolution {
    /// y[b,t,h] = Σ_{s≤t} k[h,s] u[b,t−s,h]
    static func forward(u: [Double], kernel: [Double], batch B: Int, length L: Int, channels H: Int) -> [Double] {
        var y = [Double](repeating: 0, count: B * L * H)
        for b in 0..<B { for t in 0..<L { for h in 0..<H {
            var acc = 0.0
            for s in 0...t { acc += kernel[h * L + s] * u[(b * L + t - s) * H + h] }
            y[(b * L + t) * H + h] = acc
        } } }
        return y
    }

    /// du[b,t,h] = Σ_{t'≥t} dy[b,t',h] k[h,t'−t];  dk[h,s] = Σ_b Σ_{t≥s} dy[b,t,h] u[b,t−s,h]
    static func backward(dy: [Float], u: [Float], kernel: [Float], batch B: Int, length L: Int, channels H: Int)
        -> (du: [Double], dKernel: [Double])
    {
        var du = [Double](repeating: 0, count: B * L * H)
        var dk = [Double](repeating: 0, count: H * L)
        for b in 0..<B { for h in 0..<H { for t in 0..<L {
            var acc = 0.0
            for tp in t..<L { acc += Double(dy[(b * L + tp) * H + h]) * Double(kernel[h * L + tp - t]) }
            du[(b * L + t) * H + h] = acc
        } } }
        for h in 0..<H { for s in 0..<L {
            var acc = 0.0
            for b in 0..<B { for t in s..<L { acc += Double(dy[(b * L + t) * H + h]) * Double(u[(b * L + t - s) * H + h]) } }
            dk[h * L + s] = acc
        } }
        return (du, dk)
    }
}
