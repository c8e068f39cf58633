// Vectorised exp and log for the hot loops (selective scan, activations, softmax).
//
// Both follow the classic Cephes single-precision scheme: range reduction by powers of two,
// then a short polynomial. Everything is lane-wise SIMD arithmetic and bit manipulation,
// so it compiles to a handful of AVX2/FMA instructions — no libm call per lane.
// Measured error (Tests/KernelsTests/FastMathTests, against libm in double): exp ≤ 7.9e-8
// relative on [-87, 88] (about 1 ulp); log ≤ 6e-8 relative on [1e-6, 1e6]. Below -87.3 exp
// flushes to 0.

@usableFromInline let expHi: Float = 88.3762626647949
@usableFromInline let expLo: Float = -87.3365447504019
@usableFromInline let log2e: Float = 1.44269504088896341
// ln 2 split in two so that n·ln2 is exact in the first part (Cody–Waite).
@usableFromInline let ln2Hi: Float = 0.693359375
@usableFromInline let ln2Lo: Float = -2.12194440e-4
// 1.5 · 2^23: adding it rounds to the nearest integer and leaves that integer in the low bits.
@usableFromInline let roundMagic: Float = 12582912.0

/// e^x, lane-wise. Inputs below -87.3 give 0; above 88.4 give the largest finite float's order.
@inlinable @inline(__always)
public func fastExp<V: SIMD>(_ x: V) -> V where V.Scalar == Float, V.MaskStorage.Scalar == Int32 {
    var x = x.clamped(lowerBound: V(repeating: expLo), upperBound: V(repeating: expHi))
    let t = x * log2e + roundMagic
    let n = t - roundMagic
    x = x - n * ln2Hi
    x = x - n * ln2Lo
    var p = V(repeating: 1.9875691500e-4)
    p = p * x + 1.3981999507e-3
    p = p * x + 8.3334519073e-3
    p = p * x + 4.1665795894e-2
    p = p * x + 1.6666665459e-1
    p = p * x + 5.0000001201e-1
    let r = p * (x * x) + x + 1
    // 2^n built from bits: the integer n sits in t's low mantissa bits.
    let ti = unsafeBitCast(t, to: V.MaskStorage.self)
    let mi = unsafeBitCast(V(repeating: roundMagic), to: V.MaskStorage.self)
    let pow2 = unsafeBitCast((ti &- mi &+ 127) &<< 23, to: V.self)
    return r * pow2
}

/// Natural log, lane-wise, for positive normal inputs (0 gives -inf-like -88.7·…, negatives NaN-free garbage:
/// callers pass positive values only).
@inlinable @inline(__always)
public func fastLog<V: SIMD>(_ x: V) -> V where V.Scalar == Float, V.MaskStorage.Scalar == Int32 {
    let xi = unsafeBitCast(x.clamped(lowerBound: V(repeating: Float.leastNormalMagnitude),
                                     upperBound: V(repeating: Float.greatestFiniteMagnitude)),
                           to: V.MaskStorage.self)
    // x = m · 2^e with m in [0.5, 1).
    let ei = ((xi &>> 23) & 0xff) &- 126
    // Small integer → float without a per-lane conversion: bits of 1.5·2^23 + e, minus 1.5·2^23.
    var e = unsafeBitCast(ei &+ 0x4B40_0000, to: V.self) - roundMagic
    var m = unsafeBitCast((xi & 0x007f_ffff) | 0x3f00_0000, to: V.self)
    // Keep m in [sqrt(1/2), sqrt(2)) for the polynomial.
    let small = m .< 0.707106781186547524
    e.replace(with: e - 1, where: small)
    m.replace(with: m + m, where: small)
    m = m - 1
    let z = m * m
    var y = V(repeating: 7.0376836292e-2)
    y = y * m - 1.1514610310e-1
    y = y * m + 1.1676998740e-1
    y = y * m - 1.2420140846e-1
    y = y * m + 1.4249322787e-1
    y = y * m - 1.6668057665e-1
    y = y * m + 2.0000714765e-1
    y = y * m - 2.4999993993e-1
    y = y * m + 3.3333331174e-1
    y = y * m * z
    y = y + e * ln2Lo
    y = y - 0.5 * z
    return m + y + e * ln2Hi
}

/// log(1 + t) for t ≥ 0, accurate for tiny t (Goldberg's trick: log(u)·t/(u−1), u = 1 + t).
@inlinable @inline(__always)
public func fastLog1p<V: SIMD>(_ t: V) -> V where V.Scalar == Float, V.MaskStorage.Scalar == Int32 {
    let u = 1 + t
    let d = u - 1
    let r = fastLog(u) * t / d
    return r.replacing(with: t, where: d .== 0)
}

/// Logistic sigmoid 1 / (1 + e^-x), stable for large |x|.
@inlinable @inline(__always)
public func fastSigmoid<V: SIMD>(_ x: V) -> V where V.Scalar == Float, V.MaskStorage.Scalar == Int32 {
    1 / (1 + fastExp(-x))
}

/// softplus(x) = log(1 + e^x), with PyTorch's threshold: x > 20 returns x.
@inlinable @inline(__always)
public func fastSoftplus<V: SIMD>(_ x: V) -> V where V.Scalar == Float, V.MaskStorage.Scalar == Int32 {
    // max(x, 0) + log1p(e^-|x|): never overflows, and keeps full relative accuracy for very
    // negative x where softplus(x) ≈ e^x.
    let ax = x.replacing(with: -x, where: x .< 0)
    let r = x.replacing(with: 0, where: x .< 0) + fastLog1p(fastExp(-ax))
    return r.replacing(with: x, where: x .> 20)
}

/// tanh(x) = sign(x)·(1 − e^{−2|x|}) / (1 + e^{−2|x|}).
@inlinable @inline(__always)
public func fastTanh<V: SIMD>(_ x: V) -> V where V.Scalar == Float, V.MaskStorage.Scalar == Int32 {
    let ax = x.replacing(with: -x, where: x .< 0)
    let e = fastExp(-2 * ax)
    let t = (1 - e) / (1 + e)
    return t.replacing(with: -t, where: x .< 0)
}
