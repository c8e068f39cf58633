// Vectorised exp and log for the hot loops (selective scan, activations, softmax).
//
// Both follow the classic Cephes single-precision scheme: range reduction by powers of two,
// then a short polynomial. Everything is lane-wise SIMD arithmetic and bit manipulation,
// so it compiles to a handful of AVX2/FMA instructions — no libm call per lane.
// Polynomials are evaluated with fused multiply-adds (`addingProduct`, vfmadd).
// Measured error (Tests/KernelsTests/FastMathTests, against libm in double): exp ≤ 7.9e-8
// relative on [-87, 88] (about 1 ulp); log ≤ 6e-8 relative on [1e-6, 1e6]. Below -87.3 exp
// flushes to 0.
//
// Each function is written out for the concrete types SIMD4/8/16<Float> (generated from one
// template; edit all three alike). Not generic on purpose: in generic code the stdlib's SIMD
// comparisons, `replacing(with:where:)`, `pointwiseMin/Max` and `clamped` are per-lane loops
// that LLVM often leaves scalar, with branches (measured: fastExp on SIMD16 at 20 M/s generic
// vs > 700 M/s concrete); on concrete types the stdlib maps comparisons and bit operations to
// vector builtins, and `replacing(with:where:)` after a comparison becomes a blend. (A
// hand-written bitwise blend through the mask's Int32 storage is worse: LLVM round-trips the
// <N x i1> mask through general registers.)

@usableFromInline let expHi: Float = 88.3762626647949
@usableFromInline let expLo: Float = -87.3365447504019
@usableFromInline let log2e: Float = 1.44269504088896341
// ln 2 split in two so that n·ln2 is exact in the first part (Cody–Waite).
@usableFromInline let ln2Hi: Float = 0.693359375
@usableFromInline let ln2Lo: Float = -2.12194440e-4
// 1.5 · 2^23: adding it rounds to the nearest integer and leaves that integer in the low bits.
@usableFromInline let roundMagic: Float = 12582912.0

// MARK: - SIMD4<Float>

/// m ? a : b, lane-wise (compiles to vblendvps, and with a comparison to vminps/vmaxps).
@_transparent
public func simdSelect(_ m: SIMDMask<SIMD4<Int32>>, _ a: SIMD4<Float>, _ b: SIMD4<Float>) -> SIMD4<Float> {
    b.replacing(with: a, where: m)
}

/// Lane-wise min(a, b); a NaN in `a` propagates.
@_transparent
public func simdMin(_ a: SIMD4<Float>, _ b: SIMD4<Float>) -> SIMD4<Float> { simdSelect(b .< a, b, a) }

/// Lane-wise max(a, b); a NaN in `a` propagates.
@_transparent
public func simdMax(_ a: SIMD4<Float>, _ b: SIMD4<Float>) -> SIMD4<Float> { simdSelect(b .> a, b, a) }

/// e^x, lane-wise. Inputs below -87.3 give 0 (≈ 1.2e-38); above 88.4 give the largest finite float's order.
@_transparent
public func fastExp(_ x: SIMD4<Float>) -> SIMD4<Float> {
    typealias V = SIMD4<Float>
    var x = simdMax(simdMin(x, V(repeating: expHi)), V(repeating: expLo))
    let t = V(repeating: roundMagic).addingProduct(x, V(repeating: log2e))
    let n = t - roundMagic
    x = x.addingProduct(n, V(repeating: -ln2Hi))
    x = x.addingProduct(n, V(repeating: -ln2Lo))
    var p = V(repeating: 1.9875691500e-4)
    p = V(repeating: 1.3981999507e-3).addingProduct(p, x)
    p = V(repeating: 8.3334519073e-3).addingProduct(p, x)
    p = V(repeating: 4.1665795894e-2).addingProduct(p, x)
    p = V(repeating: 1.6666665459e-1).addingProduct(p, x)
    p = V(repeating: 5.0000001201e-1).addingProduct(p, x)
    let r = x.addingProduct(p, x * x) + 1
    // 2^n built from bits: the integer n sits in t's low mantissa bits.
    let ti = unsafeBitCast(t, to: SIMD4<Int32>.self)
    let mi = unsafeBitCast(V(repeating: roundMagic), to: SIMD4<Int32>.self)
    let pow2 = unsafeBitCast((ti &- mi &+ 127) &<< 23, to: V.self)
    return r * pow2
}

/// Natural log, lane-wise, for positive normal inputs (0 gives about -87.3; callers pass
/// positive values only).
@_transparent
public func fastLog(_ x: SIMD4<Float>) -> SIMD4<Float> {
    typealias V = SIMD4<Float>
    let xi = unsafeBitCast(simdMax(simdMin(x, V(repeating: Float.greatestFiniteMagnitude)),
                                   V(repeating: Float.leastNormalMagnitude)),
                           to: SIMD4<Int32>.self)
    // x = m · 2^e with m in [0.5, 1).
    let ei = ((xi &>> 23) & 0xff) &- 126
    // Small integer → float without a per-lane conversion: bits of 1.5·2^23 + e, minus 1.5·2^23.
    var e = unsafeBitCast(ei &+ 0x4B40_0000, to: V.self) - roundMagic
    var m = unsafeBitCast((xi & 0x007f_ffff) | 0x3f00_0000, to: V.self)
    // Keep m in [sqrt(1/2), sqrt(2)) for the polynomial.
    let small = m .< 0.707106781186547524
    e = simdSelect(small, e - 1, e)
    m = simdSelect(small, m + m, m)
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
    y = y + e * ln2Lo
    y = y - 0.5 * z
    return m + y + e * ln2Hi
}

/// log(1 + t) for t ≥ 0, accurate for tiny t (Goldberg's trick: log(u)·t/(u−1), u = 1 + t).
@_transparent
public func fastLog1p(_ t: SIMD4<Float>) -> SIMD4<Float> {
    let u = 1 + t
    let d = u - 1
    let r = fastLog(u) * t / d
    return simdSelect(d .== 0, t, r)
}

/// Logistic sigmoid 1 / (1 + e^-x), stable for large |x|.
@_transparent
public func fastSigmoid(_ x: SIMD4<Float>) -> SIMD4<Float> {
    1 / (1 + fastExp(-x))
}

/// softplus(x) = log(1 + e^x), with PyTorch's threshold: x > 20 returns x.
@_transparent
public func fastSoftplus(_ x: SIMD4<Float>) -> SIMD4<Float> {
    // max(x, 0) + log1p(e^-|x|): never overflows, and keeps full relative accuracy for very
    // negative x where softplus(x) ≈ e^x.
    let neg = x .< 0
    let ax = simdSelect(neg, -x, x)
    let r = simdSelect(neg, SIMD4<Float>(), x) + fastLog1p(fastExp(-ax))
    return simdSelect(x .> 20, x, r)
}

/// tanh(x) = sign(x)·(1 − e^{−2|x|}) / (1 + e^{−2|x|}) (absolute error ~1e-7 near 0; the
/// activation kernel uses a variant with full relative accuracy there).
@_transparent
public func fastTanh(_ x: SIMD4<Float>) -> SIMD4<Float> {
    let neg = x .< 0
    let ax = simdSelect(neg, -x, x)
    let e = fastExp(-2 * ax)
    let t = (1 - e) / (1 + e)
    return simdSelect(neg, -t, t)
}

// MARK: - SIMD8<Float>

/// m ? a : b, lane-wise (compiles to vblendvps, and with a comparison to vminps/vmaxps).
@_transparent
public func simdSelect(_ m: SIMDMask<SIMD8<Int32>>, _ a: SIMD8<Float>, _ b: SIMD8<Float>) -> SIMD8<Float> {
    b.replacing(with: a, where: m)
}

/// Lane-wise min(a, b); a NaN in `a` propagates.
@_transparent
public func simdMin(_ a: SIMD8<Float>, _ b: SIMD8<Float>) -> SIMD8<Float> { simdSelect(b .< a, b, a) }

/// Lane-wise max(a, b); a NaN in `a` propagates.
@_transparent
public func simdMax(_ a: SIMD8<Float>, _ b: SIMD8<Float>) -> SIMD8<Float> { simdSelect(b .> a, b, a) }

/// e^x, lane-wise. Inputs below -87.3 give 0 (≈ 1.2e-38); above 88.4 give the largest finite float's order.
@_transparent
public func fastExp(_ x: SIMD8<Float>) -> SIMD8<Float> {
    typealias V = SIMD8<Float>
    var x = simdMax(simdMin(x, V(repeating: expHi)), V(repeating: expLo))
    let t = V(repeating: roundMagic).addingProduct(x, V(repeating: log2e))
    let n = t - roundMagic
    x = x.addingProduct(n, V(repeating: -ln2Hi))
    x = x.addingProduct(n, V(repeating: -ln2Lo))
    var p = V(repeating: 1.9875691500e-4)
    p = V(repeating: 1.3981999507e-3).addingProduct(p, x)
    p = V(repeating: 8.3334519073e-3).addingProduct(p, x)
    p = V(repeating: 4.1665795894e-2).addingProduct(p, x)
    p = V(repeating: 1.6666665459e-1).addingProduct(p, x)
    p = V(repeating: 5.0000001201e-1).addingProduct(p, x)
    let r = x.addingProduct(p, x * x) + 1
    // 2^n built from bits: the integer n sits in t's low mantissa bits.
    let ti = unsafeBitCast(t, to: SIMD8<Int32>.self)
    let mi = unsafeBitCast(V(repeating: roundMagic), to: SIMD8<Int32>.self)
    let pow2 = unsafeBitCast((ti &- mi &+ 127) &<< 23, to: V.self)
    return r * pow2
}

/// Natural log, lane-wise, for positive normal inputs (0 gives about -87.3; callers pass
/// positive values only).
@_transparent
public func fastLog(_ x: SIMD8<Float>) -> SIMD8<Float> {
    typealias V = SIMD8<Float>
    let xi = unsafeBitCast(simdMax(simdMin(x, V(repeating: Float.greatestFiniteMagnitude)),
                                   V(repeating: Float.leastNormalMagnitude)),
                           to: SIMD8<Int32>.self)
    // x = m · 2^e with m in [0.5, 1).
    let ei = ((xi &>> 23) & 0xff) &- 126
    // Small integer → float without a per-lane conversion: bits of 1.5·2^23 + e, minus 1.5·2^23.
    var e = unsafeBitCast(ei &+ 0x4B40_0000, to: V.self) - roundMagic
    var m = unsafeBitCast((xi & 0x007f_ffff) | 0x3f00_0000, to: V.self)
    // Keep m in [sqrt(1/2), sqrt(2)) for the polynomial.
    let small = m .< 0.707106781186547524
    e = simdSelect(small, e - 1, e)
    m = simdSelect(small, m + m, m)
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
    y = y + e * ln2Lo
    y = y - 0.5 * z
    return m + y + e * ln2Hi
}

/// log(1 + t) for t ≥ 0, accurate for tiny t (Goldberg's trick: log(u)·t/(u−1), u = 1 + t).
@_transparent
public func fastLog1p(_ t: SIMD8<Float>) -> SIMD8<Float> {
    let u = 1 + t
    let d = u - 1
    let r = fastLog(u) * t / d
    return simdSelect(d .== 0, t, r)
}

/// Logistic sigmoid 1 / (1 + e^-x), stable for large |x|.
@_transparent
public func fastSigmoid(_ x: SIMD8<Float>) -> SIMD8<Float> {
    1 / (1 + fastExp(-x))
}

/// softplus(x) = log(1 + e^x), with PyTorch's threshold: x > 20 returns x.
@_transparent
public func fastSoftplus(_ x: SIMD8<Float>) -> SIMD8<Float> {
    // max(x, 0) + log1p(e^-|x|): never overflows, and keeps full relative accuracy for very
    // negative x where softplus(x) ≈ e^x.
    let neg = x .< 0
    let ax = simdSelect(neg, -x, x)
    let r = simdSelect(neg, SIMD8<Float>(), x) + fastLog1p(fastExp(-ax))
    return simdSelect(x .> 20, x, r)
}

/// tanh(x) = sign(x)·(1 − e^{−2|x|}) / (1 + e^{−2|x|}) (absolute error ~1e-7 near 0; the
/// activation kernel uses a variant with full relative accuracy there).
@_transparent
public func fastTanh(_ x: SIMD8<Float>) -> SIMD8<Float> {
    let neg = x .< 0
    let ax = simdSelect(neg, -x, x)
    let e = fastExp(-2 * ax)
    let t = (1 - e) / (1 + e)
    return simdSelect(neg, -t, t)
}

// MARK: - SIMD16<Float>

/// m ? a : b, lane-wise (compiles to vblendvps, and with a comparison to vminps/vmaxps).
@_transparent
public func simdSelect(_ m: SIMDMask<SIMD16<Int32>>, _ a: SIMD16<Float>, _ b: SIMD16<Float>) -> SIMD16<Float> {
    b.replacing(with: a, where: m)
}

/// Lane-wise min(a, b); a NaN in `a` propagates.
@_transparent
public func simdMin(_ a: SIMD16<Float>, _ b: SIMD16<Float>) -> SIMD16<Float> { simdSelect(b .< a, b, a) }

/// Lane-wise max(a, b); a NaN in `a` propagates.
@_transparent
public func simdMax(_ a: SIMD16<Float>, _ b: SIMD16<Float>) -> SIMD16<Float> { simdSelect(b .> a, b, a) }

/// e^x, lane-wise. Inputs below -87.3 give 0 (≈ 1.2e-38); above 88.4 give the largest finite float's order.
@_transparent
public func fastExp(_ x: SIMD16<Float>) -> SIMD16<Float> {
    typealias V = SIMD16<Float>
    var x = simdMax(simdMin(x, V(repeating: expHi)), V(repeating: expLo))
    let t = V(repeating: roundMagic).addingProduct(x, V(repeating: log2e))
    let n = t - roundMagic
    x = x.addingProduct(n, V(repeating: -ln2Hi))
    x = x.addingProduct(n, V(repeating: -ln2Lo))
    var p = V(repeating: 1.9875691500e-4)
    p = V(repeating: 1.3981999507e-3).addingProduct(p, x)
    p = V(repeating: 8.3334519073e-3).addingProduct(p, x)
    p = V(repeating: 4.1665795894e-2).addingProduct(p, x)
    p = V(repeating: 1.6666665459e-1).addingProduct(p, x)
    p = V(repeating: 5.0000001201e-1).addingProduct(p, x)
    let r = x.addingProduct(p, x * x) + 1
    // 2^n built from bits: the integer n sits in t's low mantissa bits.
    let ti = unsafeBitCast(t, to: SIMD16<Int32>.self)
    let mi = unsafeBitCast(V(repeating: roundMagic), to: SIMD16<Int32>.self)
    let pow2 = unsafeBitCast((ti &- mi &+ 127) &<< 23, to: V.self)
    return r * pow2
}

/// Natural log, lane-wise, for positive normal inputs (0 gives about -87.3; callers pass
/// positive values only).
@_transparent
public func fastLog(_ x: SIMD16<Float>) -> SIMD16<Float> {
    typealias V = SIMD16<Float>
    let xi = unsafeBitCast(simdMax(simdMin(x, V(repeating: Float.greatestFiniteMagnitude)),
                                   V(repeating: Float.leastNormalMagnitude)),
                           to: SIMD16<Int32>.self)
    // x = m · 2^e with m in [0.5, 1).
    let ei = ((xi &>> 23) & 0xff) &- 126
    // Small integer → float without a per-lane conversion: bits of 1.5·2^23 + e, minus 1.5·2^23.
    var e = unsafeBitCast(ei &+ 0x4B40_0000, to: V.self) - roundMagic
    var m = unsafeBitCast((xi & 0x007f_ffff) | 0x3f00_0000, to: V.self)
    // Keep m in [sqrt(1/2), sqrt(2)) for the polynomial.
    let small = m .< 0.707106781186547524
    e = simdSelect(small, e - 1, e)
    m = simdSelect(small, m + m, m)
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
    y = y + e * ln2Lo
    y = y - 0.5 * z
    return m + y + e * ln2Hi
}

/// log(1 + t) for t ≥ 0, accurate for tiny t (Goldberg's trick: log(u)·t/(u−1), u = 1 + t).
@_transparent
public func fastLog1p(_ t: SIMD16<Float>) -> SIMD16<Float> {
    let u = 1 + t
    let d = u - 1
    let r = fastLog(u) * t / d
    return simdSelect(d .== 0, t, r)
}

/// Logistic sigmoid 1 / (1 + e^-x), stable for large |x|.
@_transparent
public func fastSigmoid(_ x: SIMD16<Float>) -> SIMD16<Float> {
    1 / (1 + fastExp(-x))
}

/// softplus(x) = log(1 + e^x), with PyTorch's threshold: x > 20 returns x.
@_transparent
public func fastSoftplus(_ x: SIMD16<Float>) -> SIMD16<Float> {
    // max(x, 0) + log1p(e^-|x|): never overflows, and keeps full relative accuracy for very
    // negative x where softplus(x) ≈ e^x.
    let neg = x .< 0
    let ax = simdSelect(neg, -x, x)
    let r = simdSelect(neg, SIMD16<Float>(), x) + fastLog1p(fastExp(-ax))
    return simdSelect(x .> 20, x, r)
}

/// tanh(x) = sign(x)·(1 − e^{−2|x|}) / (1 + e^{−2|x|}) (absolute error ~1e-7 near 0; the
/// activation kernel uses a variant with full relative accuracy there).
@_transparent
public func fastTanh(_ x: SIMD16<Float>) -> SIMD16<Float> {
    let neg = x .< 0
    let ax = simdSelect(neg, -x, x)
    let e = fastExp(-2 * ax)
    let t = (1 - e) / (1 + e)
    return simdSelect(neg, -t, t)
}
