// Small SIMD helpers of the selective scan: partial-lane loads/stores, a vectorised sincos for
// the complex scan, and an 8×8 transpose-and-sum for the backward's reductions over channels.
#if arch(x86_64)
import _Builtin_intrinsics.intel
#endif

typealias V8 = SIMD8<Float>

/// Loads `lanes` (1…8) consecutive floats; missing lanes are 0. Unaligned.
@inline(__always)
func loadLanes(_ p: UnsafePointer<Float>, _ lanes: Int) -> V8 {
    if lanes == 8 { return UnsafeRawPointer(p).loadUnaligned(as: V8.self) }
    var v = V8()
    for i in 0..<lanes { v[i] = p[i] }
    return v
}

/// Stores the first `lanes` (1…8) lanes of `v`. Unaligned.
@inline(__always)
func storeLanes(_ v: V8, _ p: UnsafeMutablePointer<Float>, _ lanes: Int) {
    if lanes == 8 { UnsafeMutableRawPointer(p).storeBytes(of: v, as: V8.self); return }
    for i in 0..<lanes { p[i] = v[i] }
}

@inline(__always)
func loadV(_ p: UnsafePointer<Float>) -> V8 { UnsafeRawPointer(p).loadUnaligned(as: V8.self) }

@inline(__always)
func storeV(_ v: V8, _ p: UnsafeMutablePointer<Float>) { UnsafeMutableRawPointer(p).storeBytes(of: v, as: V8.self) }

// Non-generic SIMD8 versions of FastMath's exp / log / softplus / sigmoid for the scan's hot
// loops. Same Cephes schemes and coefficients as FastMath.swift (≈ 1 ulp: exp ≤ 7.9e-8, log
// ≤ 6e-8 relative; remeasured in SelectiveScanMathTests), but the range clamps are single
// vminps/vmaxps: FastMath's `SIMD.clamped` compiles (Swift 6.3) to an out-of-line call to
// the stdlib's pointwiseMin/Max, which handles NaN lane by lane in scalar code — that alone
// made the scan 10× slower.

@inline(__always)
func vmin(_ a: V8, _ b: V8) -> V8 {
    #if arch(x86_64)
    return _mm256_min_ps(a, b)
    #else
    return a.replacing(with: b, where: b .< a)
    #endif
}

@inline(__always)
func vmax(_ a: V8, _ b: V8) -> V8 {
    #if arch(x86_64)
    return _mm256_max_ps(a, b)
    #else
    return a.replacing(with: b, where: b .> a)
    #endif
}

/// e^x lane-wise; x is clamped to [−87.34, 88.38] (below: ≈ 0 (1e-38), above: ≈ FLT_MAX).
@inline(__always)
func scanExp(_ x: V8) -> V8 {
    let magic: Float = 12582912.0
    var x = vmin(vmax(x, V8(repeating: -87.3365447504019)), V8(repeating: 88.3762626647949))
    let t = V8(repeating: magic).addingProduct(x, V8(repeating: 1.44269504088896341))
    let n = t - magic
    x = x.addingProduct(n, V8(repeating: -0.693359375))
    x = x.addingProduct(n, V8(repeating: 2.12194440e-4))
    var p = V8(repeating: 1.9875691500e-4)
    p = V8(repeating: 1.3981999507e-3).addingProduct(p, x)
    p = V8(repeating: 8.3334519073e-3).addingProduct(p, x)
    p = V8(repeating: 4.1665795894e-2).addingProduct(p, x)
    p = V8(repeating: 1.6666665459e-1).addingProduct(p, x)
    p = V8(repeating: 5.0000001201e-1).addingProduct(p, x)
    let r = (x + 1).addingProduct(p, x * x)
    let ti = unsafeBitCast(t, to: SIMD8<Int32>.self) &- unsafeBitCast(V8(repeating: magic), to: SIMD8<Int32>.self)
    return r * unsafeBitCast((ti &+ 127) &<< 23, to: V8.self)
}

/// Natural log lane-wise, for positive finite x.
@inline(__always)
func scanLog(_ x: V8) -> V8 {
    let xi = unsafeBitCast(vmax(x, V8(repeating: Float.leastNormalMagnitude)), to: SIMD8<Int32>.self)
    let ei = ((xi &>> 23) & 0xff) &- 126
    var e = unsafeBitCast(ei &+ 0x4B40_0000, to: V8.self) - 12582912.0
    var m = unsafeBitCast((xi & 0x007f_ffff) | 0x3f00_0000, to: V8.self)
    let small = m - 0.707106781186547524          // negative ⇔ m < √½
    e = selectBySign(small, e - 1, e)
    m = selectBySign(small, m + m, m)
    m = m - 1
    let z = m * m
    var y = V8(repeating: 7.0376836292e-2)
    y = V8(repeating: -1.1514610310e-1).addingProduct(y, m)
    y = V8(repeating: 1.1676998740e-1).addingProduct(y, m)
    y = V8(repeating: -1.2420140846e-1).addingProduct(y, m)
    y = V8(repeating: 1.4249322787e-1).addingProduct(y, m)
    y = V8(repeating: -1.6668057665e-1).addingProduct(y, m)
    y = V8(repeating: 2.0000714765e-1).addingProduct(y, m)
    y = V8(repeating: -2.4999993993e-1).addingProduct(y, m)
    y = V8(repeating: 3.3333331174e-1).addingProduct(y, m)
    y = y * m * z
    y = y.addingProduct(e, V8(repeating: -2.12194440e-4))
    y = y.addingProduct(z, V8(repeating: -0.5))
    return (m + y).addingProduct(e, V8(repeating: 0.693359375))
}

/// softplus(x) = max(x, 0) + log1p(e^−|x|), and x itself above 20 (PyTorch's threshold).
@inline(__always)
func scanSoftplus(_ x: V8) -> V8 {
    let ax = vmax(x, -x)
    let t = scanExp(-ax)
    // log1p(t) = log(u)·t/(u − 1) with u = 1 + t (exact when u = 1).
    let u = 1 + t
    let d = u - 1
    let lp = selectBySign(d - 1e-30, t, scanLog(u) * t / d)   // d = 0 ⇒ log1p(t) = t
    let r = vmax(x, V8()) + lp
    return selectBySign(20 - x, x, r)                           // x > 20 ⇒ x
}

/// 1 / (1 + e^−x)
@inline(__always)
func scanSigmoid(_ x: V8) -> V8 { 1 / (1 + scanExp(-x)) }

/// silu(z) = z·σ(z) and its derivative σ(z)·(1 + z·(1 − σ(z))).
@inline(__always)
func siluAndDerivative(_ z: V8) -> (silu: V8, dsilu: V8) {
    let s = scanSigmoid(z)
    return (z * s, s * (1 + z * (1 - s)))
}

/// 2^y lane-wise: y is clamped to [−126, 127], split into k = round(y) and f = y − k ∈ [−½, ½],
/// 2^f by a degree-5 minimax polynomial (fitted with p(0) = 1: 8.7e-8 relative in exact
/// arithmetic), 2^k from the bits of the rounding sum. 11 vector ops. The scan computes
/// exp(s·A) as scanExp2(s·(A·log2 e)) with A·log2 e precomputed per channel group.
/// Measured (SelectiveScanMathTests, against libm in double): ≤ 1.8e-7 relative on [−126, 127].
@inline(__always)
func scanExp2(_ y: V8) -> V8 {
    // 1.5·2^23 + 127: adding it rounds to an integer k and leaves k + 127 in the low bits.
    let magic: Float = 12583039.0
    let y = vmin(vmax(y, V8(repeating: -126)), V8(repeating: 127))
    let t = y + magic
    let f = y - (t - magic)
    var p = V8(repeating: 1.3277654070407152e-3)
    p = V8(repeating: 9.671973995864391e-3).addingProduct(p, f)
    p = V8(repeating: 5.550685152411461e-2).addingProduct(p, f)
    p = V8(repeating: 2.4022231996059418e-1).addingProduct(p, f)
    p = V8(repeating: 6.931470036506653e-1).addingProduct(p, f)
    p = V8(repeating: 1).addingProduct(p, f)
    // (k + 127) << 23: the magic's upper bits shift out, leaving the biased exponent.
    return p * unsafeBitCast(unsafeBitCast(t, to: SIMD8<Int32>.self) &<< 23, to: V8.self)
}

let scanLog2e: Float = 1.44269504088896341
let scanTwoOverPi: Float = 0.636619772367581343

/// (sin(π/2·y), cos(π/2·y)) lane-wise. q = round(y), f = y − q ∈ [−½, ½] (exact), minimax
/// polynomials in f (sin: f·P(f²), degree 7; cos: 1 + f²·Q(f²), degree 8), then the quadrant
/// q mod 4 swaps and negates by bit operations. The scan evaluates the phase s·A_imag as
/// y = s·(A_imag·2/π) with the factor precomputed. Measured (SelectiveScanMathTests, against
/// libm in double on y·π/2): absolute error ≤ 1.5e-7 for |y| ≤ 64, growing only with the
/// rounding of y itself beyond (≈ 6e-8·|y|·π/2).
@inline(__always)
func scanSinCosHalfPi(_ y: V8) -> (sin: V8, cos: V8) {
    let magic: Float = 12582912.0           // 1.5·2^23: rounds to the nearest integer
    let t = y + magic
    let f = y - (t - magic)
    let z = f * f
    var sp = V8(repeating: -4.613869823515415e-3)
    sp = V8(repeating: 7.96855241060257e-2).addingProduct(sp, z)
    sp = V8(repeating: -6.459640860557556e-1).addingProduct(sp, z)
    sp = V8(repeating: 1.5707963705062866).addingProduct(sp, z)
    let sinf = sp * f
    var cp = V8(repeating: 9.056526469066739e-4)
    cp = V8(repeating: -2.0861152559518814e-2).addingProduct(cp, z)
    cp = V8(repeating: 2.536693811416626e-1).addingProduct(cp, z)
    cp = V8(repeating: -1.2337005138397217).addingProduct(cp, z)
    let cosf = V8(repeating: 1).addingProduct(cp, z)
    let qi = unsafeBitCast(t, to: SIMD8<Int32>.self)    // low bits: q (two's complement mod 2^22)
    // Odd quadrant: swap sin and cos. The select keys on the sign bit (q's bit 0 moved there),
    // which avoids Swift's SIMDMask codegen (a scalar loop for integer-vector compares).
    let odd = unsafeBitCast(qi &<< 31, to: V8.self)
    let s0 = selectBySign(odd, cosf, sinf)
    let c0 = selectBySign(odd, sinf, cosf)
    let sinSign = (qi & 2) &<< 30
    let cosSign = ((qi &+ 1) & 2) &<< 30
    let s = unsafeBitCast(unsafeBitCast(s0, to: SIMD8<Int32>.self) ^ sinSign, to: V8.self)
    let c = unsafeBitCast(unsafeBitCast(c0, to: SIMD8<Int32>.self) ^ cosSign, to: V8.self)
    return (s, c)
}

/// Lane-wise `key`'s sign bit set ? ifNegative : otherwise (vblendvps on x86).
@inline(__always)
func selectBySign(_ key: V8, _ ifNegative: V8, _ otherwise: V8) -> V8 {
    #if arch(x86_64)
    return _mm256_blendv_ps(otherwise, ifNegative, key)
    #else
    var r = otherwise
    for i in 0..<8 where key[i].sign == .minus { r[i] = ifNegative[i] }
    return r
    #endif
}

/// The 8 lane sums of 8 vectors: result[i] = v[i].sum(). (vhaddps tree on x86.)
@inline(__always)
func transposeSum8(_ v: UnsafePointer<V8>) -> V8 {
    #if arch(x86_64)
    let a = _mm256_hadd_ps(v[0], v[1]), b = _mm256_hadd_ps(v[2], v[3])
    let c = _mm256_hadd_ps(v[4], v[5]), d = _mm256_hadd_ps(v[6], v[7])
    let e = _mm256_hadd_ps(a, b), f = _mm256_hadd_ps(c, d)
    // e = [s0lo s1lo s2lo s3lo | s0hi s1hi s2hi s3hi], f likewise for 4…7.
    return V8(lowHalf: e.lowHalf + e.highHalf, highHalf: f.lowHalf + f.highHalf)
    #else
    var r = V8()
    for i in 0..<8 { r[i] = v[i].sum() }
    return r
    #endif
}

/// dst[k] += v[k].sum() for k in 0..<count, 8 at a time through `transposeSum8`.
@inline(__always)
func addLaneSums(_ v: UnsafePointer<V8>, _ count: Int, to dst: UnsafeMutablePointer<Float>) {
    var k = 0
    while k + 8 <= count {
        storeV(loadV(dst + k) + transposeSum8(v + k), dst + k)
        k += 8
    }
    while k < count {
        dst[k] += v[k].sum()
        k += 1
    }
}
