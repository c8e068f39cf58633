// Vectorised exp, log, sigmoid, SiLU and softplus for the hot loops (activations,
// softmax, the causal conv's SiLU). Everything is lane-wise SIMD arithmetic and bit
// manipulation, so it compiles to a handful of AVX2/FMA instructions — no libm call per lane.
// Polynomials are evaluated with fused multiply-adds (`addingProduct`, vfmadd).
//
// exp: e^x = 2^k · 2^f with k = round(x·log2 e) and f = x·log2 e − k ∈ [−½, ½] computed with one
// fma on a two-part log2 e (exact product, one rounding), 2^f by a degree-6 minimax polynomial
// (2.0e-9 relative in exact arithmetic), 2^k inserted as exponent bits: the clamp is the only
// range check. 10 multiply-class ops (Cephes' scheme needed 11 plus 4 adds).
// sigmoid and SiLU keep one true division rather than vrcpps plus a Newton step (3 more FMAs):
// the FMA pipes are the bottleneck while the divider is otherwise idle.
// softplus: max(x, 0) + log1p(e^−|x|), log1p on [0, 1] by a degree-8 minimax polynomial of
// log1p(u)/u (3.3e-8 relative) — no log, no division.
// Measured max relative error (Tests/KernelsTests/FastMathTests, against libm in double):
// exp 9.7e-8 on [−87, 88]; sigmoid 1.5e-7 and SiLU 1.9e-7 on [−87, 88];
// softplus 1.8e-7 on [−87, 88]; log ≤ 6e-8 relative on [1e-6, 1e6] (Cephes). Below −87.3
// exp flushes to 1.2e-38 (≈ 0).
//
// Each function is written out for the concrete types SIMD4/8/16<Float>: edit the SIMD4
// section, then run scripts/gen-fastmath.py, which writes the SIMD8 and SIMD16 sections from
// it (`swift test` checks that it has been run). Not generic on purpose: in generic code the stdlib's SIMD
// comparisons, `replacing(with:where:)`, `pointwiseMin/Max` and `clamped` are per-lane loops
// that LLVM often leaves scalar, with branches (docs/performance.md); on concrete types the stdlib maps comparisons and bit operations to
// vector builtins, and `replacing(with:where:)` after a comparison becomes a blend. (A
// hand-written bitwise blend through the mask's Int32 storage is worse: LLVM round-trips the
// <N x i1> mask through general registers.)

@usableFromInline let expHi: Float = 88.3762626647949
@usableFromInline let expLo: Float = -87.3365447504019
@usableFromInline let log2e: Float = 1.44269504088896341
// log2 e in two parts: x·log2eHi is exact inside an fma, log2eLo (the rest) adds the last bits.
@usableFromInline let log2eHi: Float = 1.4426950216293335
@usableFromInline let log2eLo: Float = 1.925963033500011e-08
// ln 2 split in two so that n·ln2 is exact in the first part (Cody–Waite; used by fastLog).
@usableFromInline let ln2Hi: Float = 0.693359375
@usableFromInline let ln2Lo: Float = -2.12194440e-4
// 1.5 · 2^23: adding it rounds to the nearest integer and leaves that integer in the low bits.
@usableFromInline let roundMagic: Float = 12582912.0
// 1.5 · 2^23 + 127: the same, with the exponent bias added, so `bits << 23` is 2^k.
@usableFromInline let exp2Magic: Float = 12583039.0
// 2^f on [−½, ½], degree 6, p(0) = 1 (minimax in relative error).
@usableFromInline let exp2C1: Float = 0.6931471824645996
@usableFromInline let exp2C2: Float = 0.24022647738456726
@usableFromInline let exp2C3: Float = 0.055503323674201965
@usableFromInline let exp2C4: Float = 0.00961843691766262
@usableFromInline let exp2C5: Float = 0.0013398875016719103
@usableFromInline let exp2C6: Float = 0.00015353361959569156
// log1p(u)/u on [0, 1], degree 8, p(0) = 1 (minimax in relative error).
@usableFromInline let l1pC1: Float = -0.49999648332595825
@usableFromInline let l1pC2: Float = 0.3332132399082184
@usableFromInline let l1pC3: Float = -0.24857163429260254
@usableFromInline let l1pC4: Float = 0.1915365308523178
@usableFromInline let l1pC5: Float = -0.13753798604011536
@usableFromInline let l1pC6: Float = 0.0792044997215271
@usableFromInline let l1pC7: Float = -0.03006576932966709
@usableFromInline let l1pC8: Float = 0.005364818498492241

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

/// |x| lane-wise (clears the sign bit: one vandps).
@_transparent
public func simdAbs(_ x: SIMD4<Float>) -> SIMD4<Float> {
    unsafeBitCast(unsafeBitCast(x, to: SIMD4<UInt32>.self) & 0x7fff_ffff, to: SIMD4<Float>.self)
}

/// e^x, lane-wise (2^k · 2^f, see the file header). Inputs below −87.3 give 1.2e-38 (≈ 0);
/// above 88.4 give about 2.4e38; NaN stays NaN.
@_transparent
public func fastExp(_ x: SIMD4<Float>) -> SIMD4<Float> {
    typealias V = SIMD4<Float>
    let x = simdMax(simdMin(x, V(repeating: expHi)), V(repeating: expLo))
    let t = V(repeating: exp2Magic).addingProduct(x, V(repeating: log2eHi)) // low bits: k + 127
    let mk = V(repeating: exp2Magic) - t                                     // −k, exact
    var f = mk.addingProduct(x, V(repeating: log2eHi))
    f = f.addingProduct(x, V(repeating: log2eLo))
    var p = V(repeating: exp2C5).addingProduct(V(repeating: exp2C6), f)
    p = V(repeating: exp2C4).addingProduct(p, f)
    p = V(repeating: exp2C3).addingProduct(p, f)
    p = V(repeating: exp2C2).addingProduct(p, f)
    p = V(repeating: exp2C1).addingProduct(p, f)
    p = V(repeating: 1).addingProduct(p, f)
    // (k + 127) << 23: the magic's upper bits shift out, leaving 2^k's exponent field.
    return p * unsafeBitCast(unsafeBitCast(t, to: SIMD4<Int32>.self) &<< 23, to: V.self)
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

/// log(1 + u) for u in [0, 1] (degree-8 polynomial, no log and no division; 1.2e-7 relative).
@_transparent
public func fastLog1pUnit(_ u: SIMD4<Float>) -> SIMD4<Float> {
    typealias V = SIMD4<Float>
    var p = V(repeating: l1pC7).addingProduct(V(repeating: l1pC8), u)
    p = V(repeating: l1pC6).addingProduct(p, u)
    p = V(repeating: l1pC5).addingProduct(p, u)
    p = V(repeating: l1pC4).addingProduct(p, u)
    p = V(repeating: l1pC3).addingProduct(p, u)
    p = V(repeating: l1pC2).addingProduct(p, u)
    p = V(repeating: l1pC1).addingProduct(p, u)
    p = V(repeating: 1).addingProduct(p, u)
    return p * u
}

/// Logistic sigmoid 1 / (1 + e^-x), stable for large |x| (about 4e-39 below −88.4).
@_transparent
public func fastSigmoid(_ x: SIMD4<Float>) -> SIMD4<Float> {
    1 / (1 + fastExp(-x))
}

/// silu(x) = x·σ(x) = x / (1 + e^−x) (one division; −inf gives −inf).
@_transparent
public func fastSiLU(_ x: SIMD4<Float>) -> SIMD4<Float> {
    x / (1 + fastExp(-x))
}

/// softplus(x) = log(1 + e^x) = max(x, 0) + log1p(e^−|x|): never overflows, keeps full relative
/// accuracy for very negative x (≈ e^x), and equals x above 17 — so PyTorch's threshold
/// (x > 20 returns x) holds without a test: the correction is below half an ulp of x there.
@_transparent
public func fastSoftplus(_ x: SIMD4<Float>) -> SIMD4<Float> {
    simdMax(x, SIMD4<Float>()) + fastLog1pUnit(fastExp(-simdAbs(x)))
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

/// |x| lane-wise (clears the sign bit: one vandps).
@_transparent
public func simdAbs(_ x: SIMD8<Float>) -> SIMD8<Float> {
    unsafeBitCast(unsafeBitCast(x, to: SIMD8<UInt32>.self) & 0x7fff_ffff, to: SIMD8<Float>.self)
}

/// e^x, lane-wise (2^k · 2^f, see the file header). Inputs below −87.3 give 1.2e-38 (≈ 0);
/// above 88.4 give about 2.4e38; NaN stays NaN.
@_transparent
public func fastExp(_ x: SIMD8<Float>) -> SIMD8<Float> {
    typealias V = SIMD8<Float>
    let x = simdMax(simdMin(x, V(repeating: expHi)), V(repeating: expLo))
    let t = V(repeating: exp2Magic).addingProduct(x, V(repeating: log2eHi)) // low bits: k + 127
    let mk = V(repeating: exp2Magic) - t                                     // −k, exact
    var f = mk.addingProduct(x, V(repeating: log2eHi))
    f = f.addingProduct(x, V(repeating: log2eLo))
    var p = V(repeating: exp2C5).addingProduct(V(repeating: exp2C6), f)
    p = V(repeating: exp2C4).addingProduct(p, f)
    p = V(repeating: exp2C3).addingProduct(p, f)
    p = V(repeating: exp2C2).addingProduct(p, f)
    p = V(repeating: exp2C1).addingProduct(p, f)
    p = V(repeating: 1).addingProduct(p, f)
    // (k + 127) << 23: the magic's upper bits shift out, leaving 2^k's exponent field.
    return p * unsafeBitCast(unsafeBitCast(t, to: SIMD8<Int32>.self) &<< 23, to: V.self)
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

/// log(1 + u) for u in [0, 1] (degree-8 polynomial, no log and no division; 1.2e-7 relative).
@_transparent
public func fastLog1pUnit(_ u: SIMD8<Float>) -> SIMD8<Float> {
    typealias V = SIMD8<Float>
    var p = V(repeating: l1pC7).addingProduct(V(repeating: l1pC8), u)
    p = V(repeating: l1pC6).addingProduct(p, u)
    p = V(repeating: l1pC5).addingProduct(p, u)
    p = V(repeating: l1pC4).addingProduct(p, u)
    p = V(repeating: l1pC3).addingProduct(p, u)
    p = V(repeating: l1pC2).addingProduct(p, u)
    p = V(repeating: l1pC1).addingProduct(p, u)
    p = V(repeating: 1).addingProduct(p, u)
    return p * u
}

/// Logistic sigmoid 1 / (1 + e^-x), stable for large |x| (about 4e-39 below −88.4).
@_transparent
public func fastSigmoid(_ x: SIMD8<Float>) -> SIMD8<Float> {
    1 / (1 + fastExp(-x))
}

/// silu(x) = x·σ(x) = x / (1 + e^−x) (one division; −inf gives −inf).
@_transparent
public func fastSiLU(_ x: SIMD8<Float>) -> SIMD8<Float> {
    x / (1 + fastExp(-x))
}

/// softplus(x) = log(1 + e^x) = max(x, 0) + log1p(e^−|x|): never overflows, keeps full relative
/// accuracy for very negative x (≈ e^x), and equals x above 17 — so PyTorch's threshold
/// (x > 20 returns x) holds without a test: the correction is below half an ulp of x there.
@_transparent
public func fastSoftplus(_ x: SIMD8<Float>) -> SIMD8<Float> {
    simdMax(x, SIMD8<Float>()) + fastLog1pUnit(fastExp(-simdAbs(x)))
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

/// |x| lane-wise (clears the sign bit: one vandps).
@_transparent
public func simdAbs(_ x: SIMD16<Float>) -> SIMD16<Float> {
    unsafeBitCast(unsafeBitCast(x, to: SIMD16<UInt32>.self) & 0x7fff_ffff, to: SIMD16<Float>.self)
}

/// e^x, lane-wise (2^k · 2^f, see the file header). Inputs below −87.3 give 1.2e-38 (≈ 0);
/// above 88.4 give about 2.4e38; NaN stays NaN.
@_transparent
public func fastExp(_ x: SIMD16<Float>) -> SIMD16<Float> {
    typealias V = SIMD16<Float>
    let x = simdMax(simdMin(x, V(repeating: expHi)), V(repeating: expLo))
    let t = V(repeating: exp2Magic).addingProduct(x, V(repeating: log2eHi)) // low bits: k + 127
    let mk = V(repeating: exp2Magic) - t                                     // −k, exact
    var f = mk.addingProduct(x, V(repeating: log2eHi))
    f = f.addingProduct(x, V(repeating: log2eLo))
    var p = V(repeating: exp2C5).addingProduct(V(repeating: exp2C6), f)
    p = V(repeating: exp2C4).addingProduct(p, f)
    p = V(repeating: exp2C3).addingProduct(p, f)
    p = V(repeating: exp2C2).addingProduct(p, f)
    p = V(repeating: exp2C1).addingProduct(p, f)
    p = V(repeating: 1).addingProduct(p, f)
    // (k + 127) << 23: the magic's upper bits shift out, leaving 2^k's exponent field.
    return p * unsafeBitCast(unsafeBitCast(t, to: SIMD16<Int32>.self) &<< 23, to: V.self)
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

/// log(1 + u) for u in [0, 1] (degree-8 polynomial, no log and no division; 1.2e-7 relative).
@_transparent
public func fastLog1pUnit(_ u: SIMD16<Float>) -> SIMD16<Float> {
    typealias V = SIMD16<Float>
    var p = V(repeating: l1pC7).addingProduct(V(repeating: l1pC8), u)
    p = V(repeating: l1pC6).addingProduct(p, u)
    p = V(repeating: l1pC5).addingProduct(p, u)
    p = V(repeating: l1pC4).addingProduct(p, u)
    p = V(repeating: l1pC3).addingProduct(p, u)
    p = V(repeating: l1pC2).addingProduct(p, u)
    p = V(repeating: l1pC1).addingProduct(p, u)
    p = V(repeating: 1).addingProduct(p, u)
    return p * u
}

/// Logistic sigmoid 1 / (1 + e^-x), stable for large |x| (about 4e-39 below −88.4).
@_transparent
public func fastSigmoid(_ x: SIMD16<Float>) -> SIMD16<Float> {
    1 / (1 + fastExp(-x))
}

/// silu(x) = x·σ(x) = x / (1 + e^−x) (one division; −inf gives −inf).
@_transparent
public func fastSiLU(_ x: SIMD16<Float>) -> SIMD16<Float> {
    x / (1 + fastExp(-x))
}

/// softplus(x) = log(1 + e^x) = max(x, 0) + log1p(e^−|x|): never overflows, keeps full relative
/// accuracy for very negative x (≈ e^x), and equals x above 17 — so PyTorch's threshold
/// (x > 20 returns x) holds without a test: the correction is below half an ulp of x there.
@_transparent
public func fastSoftplus(_ x: SIMD16<Float>) -> SIMD16<Float> {
    simdMax(x, SIMD16<Float>()) + fastLog1pUnit(fastExp(-simdAbs(x)))
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
