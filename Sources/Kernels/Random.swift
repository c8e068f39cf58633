import Foundation

// Counter-based random numbers: Philox4x32-10 (Salmon et al., SC'11; Random123, cuRAND,
// PyTorch). Word i of a stream keyed by a 64-bit seed is word (i mod 4) of
// Philox(counter = (i / 4) as a 128-bit integer, key = seed): any element can be generated
// independently, so results never depend on thread scheduling or thread count.
// Eight blocks are computed at once in SIMD lanes (the 32×32→64 products map to vpmuludq).

@usableFromInline let philoxM0: UInt64 = 0xD251_1F53
@usableFromInline let philoxM1: UInt64 = 0xCD9E_8D57
@usableFromInline let philoxW0: UInt32 = 0x9E37_79B9
@usableFromInline let philoxW1: UInt32 = 0xBB67_AE85

typealias U8 = SIMD8<UInt32>

@inline(__always)
func mulhilo(_ a: U8, _ m: UInt64) -> (hi: U8, lo: U8) {
    let p = SIMD8<UInt64>(truncatingIfNeeded: a) &* m
    return (U8(truncatingIfNeeded: p &>> 32), U8(truncatingIfNeeded: p))
}

/// Philox4x32-10 on eight counters at once (lane-wise); returns the four output words.
@inline(__always)
func philox8(_ c0: U8, _ c1: U8, _ c2: U8, _ c3: U8, key: (UInt32, UInt32)) -> (U8, U8, U8, U8) {
    var (x0, x1, x2, x3) = (c0, c1, c2, c3)
    var k0 = key.0, k1 = key.1
    for round in 0..<10 {
        if round > 0 { k0 &+= philoxW0; k1 &+= philoxW1 }
        let (h0, l0) = mulhilo(x0, philoxM0)
        let (h1, l1) = mulhilo(x2, philoxM1)
        x0 = h1 ^ x1 ^ k0
        x1 = l1
        x2 = h0 ^ x3 ^ k1
        x3 = l0
    }
    return (x0, x1, x2, x3)
}

/// Writes the 32 words of blocks block0 ..< block0 + 8 (stream order) to `out`.
@inline(__always)
func philoxWords32(block0: UInt64, key: (UInt32, UInt32), into out: UnsafeMutablePointer<UInt32>) {
    let lanes = SIMD8<UInt64>(0, 1, 2, 3, 4, 5, 6, 7) &+ block0
    let c0 = U8(truncatingIfNeeded: lanes)
    let c1 = U8(truncatingIfNeeded: lanes &>> 32)
    let (r0, r1, r2, r3) = philox8(c0, c1, U8(), U8(), key: key)
    for l in 0..<8 {
        out[4 * l] = r0[l]; out[4 * l + 1] = r1[l]; out[4 * l + 2] = r2[l]; out[4 * l + 3] = r3[l]
    }
}

/// Runs `body(words, i, count)` over 0..<n (split over the pool): `words[j]` is stream word
/// `offset + i + j` for j < count (count ≤ 32).
@inline(__always)
func forEachRandomWords(_ n: Int, seed: UInt64, offset: UInt64, pool: ThreadPool,
                        _ body: (UnsafePointer<UInt32>, Int, Int) -> Void) {
    let key = (UInt32(truncatingIfNeeded: seed), UInt32(truncatingIfNeeded: seed >> 32))
    pool.forRanges(n, grain: 16384) { r in
        withUnsafeTemporaryAllocation(of: UInt32.self, capacity: 32) { buf in
            let words = buf.baseAddress!
            var i = r.lowerBound
            while i < r.upperBound {
                let g = offset &+ UInt64(i)
                let base = g & ~31
                philoxWords32(block0: base / 4, key: key, into: words)
                let start = Int(g - base)
                let count = min(32 - start, r.upperBound - i)
                body(UnsafePointer(words + start), i, count)
                i += count
            }
        }
    }
}

/// 24 random bits → float in [0, 1).
@inline(__always)
func unitFloat(_ w: UInt32) -> Float { Float(w >> 8) * 0x1p-24 }

public enum Random {
    /// One Philox4x32-10 block: four words for a 128-bit counter and 64-bit key.
    public static func philox(counter: (UInt32, UInt32, UInt32, UInt32), key: (UInt32, UInt32)) -> (UInt32, UInt32, UInt32, UInt32) {
        let (r0, r1, r2, r3) = philox8(U8(repeating: counter.0), U8(repeating: counter.1), U8(repeating: counter.2),
                                       U8(repeating: counter.3), key: key)
        return (r0[0], r1[0], r2[0], r3[0])
    }

    /// Word `index` of the stream keyed by `seed`.
    public static func word(seed: UInt64, index: UInt64) -> UInt32 {
        let c = index / 4
        let r = philox(counter: (UInt32(truncatingIfNeeded: c), UInt32(truncatingIfNeeded: c >> 32), 0, 0),
                       key: (UInt32(truncatingIfNeeded: seed), UInt32(truncatingIfNeeded: seed >> 32)))
        switch index % 4 {
        case 0: return r.0
        case 1: return r.1
        case 2: return r.2
        default: return r.3
        }
    }

    /// out[i] = low + (high − low)·u_i, u_i = (word(seed, offset + i) >> 8)·2⁻²⁴ ∈ [0, 1).
    /// count floats, overwrite. Same (seed, offset + i) ⇒ same value, for any thread count.
    public static func uniform(_ out: UnsafeMutablePointer<Float>, count n: Int, low: Float = 0, high: Float = 1,
                               seed: UInt64, offset: UInt64 = 0, pool: ThreadPool) {
        let span = high - low
        forEachRandomWords(n, seed: seed, offset: offset, pool: pool) { w, i, count in
            for j in 0..<count { out[i + j] = low + span * unitFloat(w[j]) }
        }
    }

    /// out[i] = mean + std·z_i, z_i standard normal by Box–Muller on word pairs: stream words
    /// (2m, 2m + 1) give z_{2m} = ρ cos θ, z_{2m+1} = ρ sin θ, ρ = √(−2 ln u₁), u₁ ∈ (0, 1],
    /// θ = 2π u₂ (computed in double). Element i is a function of (seed, offset + i) only
    /// (the pair is recomputed at unaligned range ends). count floats, overwrite.
    public static func normal(_ out: UnsafeMutablePointer<Float>, count n: Int, mean: Float = 0, std: Float = 1,
                              seed: UInt64, offset: UInt64 = 0, pool: ThreadPool) {
        let key = (UInt32(truncatingIfNeeded: seed), UInt32(truncatingIfNeeded: seed >> 32))
        pool.forRanges(n, grain: 4096) { r in
            withUnsafeTemporaryAllocation(of: UInt32.self, capacity: 32) { buf in
                let words = buf.baseAddress!
                var cachedBase = UInt64.max
                for i in r {
                    let g = offset &+ UInt64(i)
                    let base = g & ~31
                    if base != cachedBase { philoxWords32(block0: base / 4, key: key, into: words); cachedBase = base }
                    let e = Int(g - base) & ~1
                    let u1 = (Double(words[e] >> 8) + 1) * 0x1p-24
                    let u2 = Double(words[e + 1] >> 8) * 0x1p-24
                    let rho = (-2 * Foundation.log(u1)).squareRoot()
                    let th = 2 * Double.pi * u2
                    let z = (g & 1) == 0 ? rho * Foundation.cos(th) : rho * Foundation.sin(th)
                    out[i] = mean + std * Float(z)
                }
            }
        }
    }
}
