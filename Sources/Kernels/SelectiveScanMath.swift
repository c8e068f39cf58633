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

// SIMD versions of FastMath's exp / log / softplus / sigmoid for the scan's hot loops, plus
// exp2 and sincos. Same Cephes schemes and coefficients as FastMath.swift for exp/log (≈ 1 ulp;
// remeasured in SelectiveScanMathTests), but min/max/select are single vminps/vmaxps/vblendvps:
// FastMath's `SIMD.clamped` compiles (Swift 6.3) to an out-of-line call to the stdlib's
// pointwiseMin/Max, which handles NaN lane by lane in scalar code (that alone made the whole
// scan several times slower), and SIMDMask results of integer-vector compares are built lane by lane.
//
// The functions are generic over `ScanVector`: SIMD8<Float> (one AVX register) and
// SIMD16<Float> (two). The SIMD16 form is used to evaluate two independent rows at once: its
// operations are emitted op by op for both halves, so two dependency chains are interleaved —
// on Zen 1 (256-bit ops split in two, ~190-µop window) a single softplus chain (exp → log →
// divide, ~40 dependent ops) is otherwise latency-bound.

/// A float SIMD vector with single-instruction min, max and sign-keyed select.
protocol ScanVector: SIMD where Scalar == Float, MaskStorage.Scalar == Int32 {
    static func vmin(_ a: Self, _ b: Self) -> Self
    static func vmax(_ a: Self, _ b: Self) -> Self
    /// Lane-wise: `key`'s sign bit set ? ifNegative : otherwise.
    static func select(bySign key: Self, _ ifNegative: Self, _ otherwise: Self) -> Self
}

extension SIMD8: ScanVector where Scalar == Float {
    @inline(__always)
    static func vmin(_ a: Self, _ b: Self) -> Self {
        #if arch(x86_64)
        return _mm256_min_ps(a, b)
        #else
        var r = a
        for i in 0..<8 where b[i] < a[i] { r[i] = b[i] }
        return r
        #endif
    }
    @inline(__always)
    static func vmax(_ a: Self, _ b: Self) -> Self {
        #if arch(x86_64)
        return _mm256_max_ps(a, b)
        #else
        var r = a
        for i in 0..<8 where b[i] > a[i] { r[i] = b[i] }
        return r
        #endif
    }
    @inline(__always)
    static func select(bySign key: Self, _ ifNegative: Self, _ otherwise: Self) -> Self {
        #if arch(x86_64)
        return _mm256_blendv_ps(otherwise, ifNegative, key)
        #else
        var r = otherwise
        for i in 0..<8 where key[i].sign == .minus { r[i] = ifNegative[i] }
        return r
        #endif
    }
}

extension SIMD16: ScanVector where Scalar == Float {
    @inline(__always)
    static func vmin(_ a: Self, _ b: Self) -> Self {
        Self(lowHalf: V8.vmin(a.lowHalf, b.lowHalf), highHalf: V8.vmin(a.highHalf, b.highHalf))
    }
    @inline(__always)
    static func vmax(_ a: Self, _ b: Self) -> Self {
        Self(lowHalf: V8.vmax(a.lowHalf, b.lowHalf), highHalf: V8.vmax(a.highHalf, b.highHalf))
    }
    @inline(__always)
    static func select(bySign key: Self, _ ifNegative: Self, _ otherwise: Self) -> Self {
        Self(lowHalf: V8.select(bySign: key.lowHalf, ifNegative.lowHalf, otherwise.lowHalf),
             highHalf: V8.select(bySign: key.highHalf, ifNegative.highHalf, otherwise.highHalf))
    }
}

@inline(__always) func vmin<V: ScanVector>(_ a: V, _ b: V) -> V { V.vmin(a, b) }
@inline(__always) func vmax<V: ScanVector>(_ a: V, _ b: V) -> V { V.vmax(a, b) }
/// Lane-wise `key`'s sign bit set ? ifNegative : otherwise (vblendvps on x86).
@inline(__always) func selectBySign<V: ScanVector>(_ key: V, _ ifNegative: V, _ otherwise: V) -> V {
    V.select(bySign: key, ifNegative, otherwise)
}
@inline(__always) func asBits<V: ScanVector>(_ x: V) -> V.MaskStorage { unsafeBitCast(x, to: V.MaskStorage.self) }
@inline(__always) func asFloats<V: ScanVector>(_ x: V.MaskStorage, _: V.Type = V.self) -> V { unsafeBitCast(x, to: V.self) }

let scanLog2e: Float = 1.44269504088896341
let scanTwoOverPi: Float = 0.636619772367581343

/// Generic implementations (see `ScanVector`).
enum ScanMath {
    /// e^x lane-wise; x is clamped to [−87.34, 88.38] (below: ≈ 0 (1e-38), above: ≈ FLT_MAX).
    @inline(__always)
    static func exp<V: ScanVector>(_ x: V) -> V {
        let magic: Float = 12582912.0
        var x = vmin(vmax(x, V(repeating: -87.3365447504019)), V(repeating: 88.3762626647949))
        let t = V(repeating: magic).addingProduct(x, V(repeating: 1.44269504088896341))
        let n = t - magic
        x = x.addingProduct(n, V(repeating: -0.693359375))
        x = x.addingProduct(n, V(repeating: 2.12194440e-4))
        var p = V(repeating: 1.9875691500e-4)
        p = V(repeating: 1.3981999507e-3).addingProduct(p, x)
        p = V(repeating: 8.3334519073e-3).addingProduct(p, x)
        p = V(repeating: 4.1665795894e-2).addingProduct(p, x)
        p = V(repeating: 1.6666665459e-1).addingProduct(p, x)
        p = V(repeating: 5.0000001201e-1).addingProduct(p, x)
        let r = (x + 1).addingProduct(p, x * x)
        let ti = asBits(t) &- asBits(V(repeating: magic))
        return r * unsafeBitCast((ti &+ 127) &<< 23, to: V.self)
    }

    /// Natural log lane-wise, for positive finite x.
    @inline(__always)
    static func log<V: ScanVector>(_ x: V) -> V {
        let xi = unsafeBitCast(vmax(x, V(repeating: Float.leastNormalMagnitude)), to: V.MaskStorage.self)
        let ei = ((xi &>> 23) & 0xff) &- 126
        var e = unsafeBitCast(ei &+ 0x4B40_0000, to: V.self) - 12582912.0
        var m = unsafeBitCast((xi & 0x007f_ffff) | 0x3f00_0000, to: V.self)
        let small = m - 0.707106781186547524          // negative ⇔ m < √½
        e = selectBySign(small, e - 1, e)
        m = selectBySign(small, m + m, m)
        m = m - 1
        let z = m * m
        var y = V(repeating: 7.0376836292e-2)
        y = V(repeating: -1.1514610310e-1).addingProduct(y, m)
        y = V(repeating: 1.1676998740e-1).addingProduct(y, m)
        y = V(repeating: -1.2420140846e-1).addingProduct(y, m)
        y = V(repeating: 1.4249322787e-1).addingProduct(y, m)
        y = V(repeating: -1.6668057665e-1).addingProduct(y, m)
        y = V(repeating: 2.0000714765e-1).addingProduct(y, m)
        y = V(repeating: -2.4999993993e-1).addingProduct(y, m)
        y = V(repeating: 3.3333331174e-1).addingProduct(y, m)
        y = y * m * z
        y = y.addingProduct(e, V(repeating: -2.12194440e-4))
        y = y.addingProduct(z, V(repeating: -0.5))
        return (m + y).addingProduct(e, V(repeating: 0.693359375))
    }

    /// (softplus(x), σ(x)) from one exp, one log and one division: with e = e^−|x| and
    /// u = 1 + e, r = 1/u: softplus = max(x, 0) + log1p(e), where log1p(e) = log(u) − ((u − 1) − e)·r
    /// (the first-order correction for the rounding of u; exact e for tiny e), and x itself above
    /// 20 (PyTorch's threshold); σ(x) = r for x ≥ 0, e·r below.
    @inline(__always)
    static func softplusAndSigmoid<V: ScanVector>(_ x: V) -> (softplus: V, sigmoid: V) {
        let e = ScanMath.exp(-vmax(x, -x))
        let u = 1 + e
        let r = 1 / u
        let lp = ScanMath.log(u) - ((u - 1) - e) * r
        let sp = selectBySign(20 - x, x, vmax(x, V()) + lp)
        return (sp, selectBySign(x, e * r, r))
    }

    /// softplus(x) = log(1 + e^x) (x above 20).
    @inline(__always)
    static func softplus<V: ScanVector>(_ x: V) -> V { ScanMath.softplusAndSigmoid(x).softplus }

    /// 1 / (1 + e^−x)
    @inline(__always)
    static func sigmoid<V: ScanVector>(_ x: V) -> V { 1 / (1 + ScanMath.exp(-x)) }

    /// silu(z) = z·σ(z) and its derivative σ(z)·(1 + z·(1 − σ(z))).
    @inline(__always)
    static func siluAndDerivative<V: ScanVector>(_ z: V) -> (silu: V, dsilu: V) {
        let s = ScanMath.sigmoid(z)
        return (z * s, s * (1 + z * (1 - s)))
    }

    /// 2^y lane-wise: y is clamped to [−126, 127], split into k = round(y) and f = y − k ∈ [−½, ½],
    /// 2^f by a degree-5 minimax polynomial (fitted with p(0) = 1: 8.7e-8 relative in exact
    /// arithmetic), 2^k from the bits of the rounding sum. 11 vector ops. The scan computes
    /// exp(s·A) as ScanMath.exp2(s·(A·log2 e)) with A·log2 e precomputed per channel group.
    /// Measured (SelectiveScanMathTests, against libm in double): ≤ 1.8e-7 relative on [−126, 127].
    @inline(__always)
    static func exp2<V: ScanVector>(_ y: V) -> V {
        // 1.5·2^23 + 127: adding it rounds to an integer k and leaves k + 127 in the low bits.
        let magic: Float = 12583039.0
        let y = vmin(vmax(y, V(repeating: -126)), V(repeating: 127))
        let t = y + magic
        let f = y - (t - magic)
        var p = V(repeating: 1.3277654070407152e-3)
        p = V(repeating: 9.671973995864391e-3).addingProduct(p, f)
        p = V(repeating: 5.550685152411461e-2).addingProduct(p, f)
        p = V(repeating: 2.4022231996059418e-1).addingProduct(p, f)
        p = V(repeating: 6.931470036506653e-1).addingProduct(p, f)
        p = V(repeating: 1).addingProduct(p, f)
        // (k + 127) << 23: the magic's upper bits shift out, leaving the biased exponent.
        return p * unsafeBitCast(asBits(t) &<< 23, to: V.self)
    }


    /// (sin(π/2·y), cos(π/2·y)) lane-wise. q = round(y), f = y − q ∈ [−½, ½] (exact), minimax
    /// polynomials in f (sin: f·P(f²), degree 7; cos: 1 + f²·Q(f²), degree 8), then the quadrant
    /// q mod 4 swaps and negates by bit operations. The scan evaluates the phase s·A_imag as
    /// y = s·(A_imag·2/π) with the factor precomputed. Measured (SelectiveScanMathTests, against
    /// libm in double on y·π/2): absolute error ≤ 1.5e-7 for |y| ≤ 64, growing only with the
    /// rounding of y itself beyond (≈ 6e-8·|y|·π/2).
    @inline(__always)
    static func sinCosHalfPi<V: ScanVector>(_ y: V) -> (sin: V, cos: V) {
        let magic: Float = 12582912.0           // 1.5·2^23: rounds to the nearest integer
        let t = y + magic
        let f = y - (t - magic)
        let z = f * f
        var sp = V(repeating: -4.613869823515415e-3)
        sp = V(repeating: 7.96855241060257e-2).addingProduct(sp, z)
        sp = V(repeating: -6.459640860557556e-1).addingProduct(sp, z)
        sp = V(repeating: 1.5707963705062866).addingProduct(sp, z)
        let sinf = sp * f
        var cp = V(repeating: 9.056526469066739e-4)
        cp = V(repeating: -2.0861152559518814e-2).addingProduct(cp, z)
        cp = V(repeating: 2.536693811416626e-1).addingProduct(cp, z)
        cp = V(repeating: -1.2337005138397217).addingProduct(cp, z)
        let cosf = V(repeating: 1).addingProduct(cp, z)
        let qi = asBits(t)    // low bits: q (two's complement mod 2^22)
        // Odd quadrant: swap sin and cos. The select keys on the sign bit (q's bit 0 moved there),
        // which avoids Swift's SIMDMask codegen (a scalar loop for integer-vector compares).
        let odd = unsafeBitCast(qi &<< 31, to: V.self)
        let s0 = selectBySign(odd, cosf, sinf)
        let c0 = selectBySign(odd, sinf, cosf)
        let sinSign = (qi & 2) &<< 30
        let cosSign = ((qi &+ 1) & 2) &<< 30
        let s = unsafeBitCast(unsafeBitCast(s0, to: V.MaskStorage.self) ^ sinSign, to: V.self)
        let c = unsafeBitCast(unsafeBitCast(c0, to: V.MaskStorage.self) ^ cosSign, to: V.self)
        return (s, c)
    }
}

// Concrete entry points. The generic bodies above are specialised here, in their own file:
// SwiftPM's debug builds compile file by file (no WMO), where a generic helper from another file
// would run unspecialised (orders of magnitude slower); in release (WMO) these wrappers inline away.
@inline(__always) func scanExp(_ x: V8) -> V8 { ScanMath.exp(x) }
@inline(__always) func scanLog(_ x: V8) -> V8 { ScanMath.log(x) }
@inline(__always) func scanExp2(_ x: V8) -> V8 { ScanMath.exp2(x) }
@inline(__always) func scanSigmoid(_ x: V8) -> V8 { ScanMath.sigmoid(x) }
@inline(__always) func scanSoftplus(_ x: V8) -> V8 { ScanMath.softplus(x) }
@inline(__always) func scanSoftplusAndSigmoid(_ x: V8) -> (softplus: V8, sigmoid: V8) { ScanMath.softplusAndSigmoid(x) }
@inline(__always) func siluAndDerivative(_ x: V8) -> (silu: V8, dsilu: V8) { ScanMath.siluAndDerivative(x) }
@inline(__always) func scanSinCosHalfPi(_ x: V8) -> (sin: V8, cos: V8) { ScanMath.sinCosHalfPi(x) }
@inline(__always) func scanExp(_ x: SIMD16<Float>) -> SIMD16<Float> { ScanMath.exp(x) }
@inline(__always) func scanLog(_ x: SIMD16<Float>) -> SIMD16<Float> { ScanMath.log(x) }
@inline(__always) func scanExp2(_ x: SIMD16<Float>) -> SIMD16<Float> { ScanMath.exp2(x) }
@inline(__always) func scanSigmoid(_ x: SIMD16<Float>) -> SIMD16<Float> { ScanMath.sigmoid(x) }
@inline(__always) func scanSoftplus(_ x: SIMD16<Float>) -> SIMD16<Float> { ScanMath.softplus(x) }
@inline(__always) func scanSoftplusAndSigmoid(_ x: SIMD16<Float>) -> (softplus: SIMD16<Float>, sigmoid: SIMD16<Float>) { ScanMath.softplusAndSigmoid(x) }
@inline(__always) func siluAndDerivative(_ x: SIMD16<Float>) -> (silu: SIMD16<Float>, dsilu: SIMD16<Float>) { ScanMath.siluAndDerivative(x) }
@inline(__always) func scanSinCosHalfPi(_ x: SIMD16<Float>) -> (sin: SIMD16<Float>, cos: SIMD16<Float>) { ScanMath.sinCosHalfPi(x) }

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
