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

/// silu(z) = z·σ(z) and its derivative σ(z)·(1 + z·(1 − σ(z))).
@inline(__always)
func siluAndDerivative(_ z: V8) -> (silu: V8, dsilu: V8) {
    let s = fastSigmoid(z)
    return (z * s, s * (1 + z * (1 - s)))
}

/// (sin x, cos x), lane-wise. Cody–Waite reduction by π/2 in three parts, then the Cephes
/// single-precision minimax polynomials on [−π/4, π/4] and a quadrant fix-up by bit ops.
/// Measured (SelectiveScanMathTests, against libm in double): absolute error ≤ 1.2e-7 for
/// |x| ≤ 100, ≤ 3e-7 for |x| ≤ 1e4 (the argument itself is only known to ½ ulp there).
@inline(__always)
func fastSinCos(_ x: V8) -> (sin: V8, cos: V8) {
    let magic: Float = 12582912.0           // 1.5·2^23: rounds to the nearest integer
    let twoOverPi: Float = 0.636619772367581343
    let t = (V8(repeating: magic)).addingProduct(x, V8(repeating: twoOverPi))
    let q = t - magic
    // π/2 = p1 + p2 + p3, p1 and p2 with few mantissa bits so q·p1, q·p2 are exact.
    var r = x.addingProduct(q, V8(repeating: -1.5703125))
    r = r.addingProduct(q, V8(repeating: -4.837512969970703125e-4))
    r = r.addingProduct(q, V8(repeating: -7.54978995489188216e-8))
    let z = r * r
    // sin(r) = r + r³·P(z), cos(r) = 1 − z/2 + z²·Q(z)
    var sp = V8(repeating: -1.9515295891e-4)
    sp = (V8(repeating: 8.3321608736e-3)).addingProduct(sp, z)
    sp = (V8(repeating: -1.6666654611e-1)).addingProduct(sp, z)
    let sinr = r.addingProduct(sp * z, r)
    var cp = V8(repeating: 2.443315711809948e-5)
    cp = (V8(repeating: -1.388731625493765e-3)).addingProduct(cp, z)
    cp = (V8(repeating: 4.166664568298827e-2)).addingProduct(cp, z)
    let cosr = (V8(repeating: 1)).addingProduct(z, V8(repeating: -0.5)).addingProduct(cp * z, z)
    let qi = unsafeBitCast(t, to: SIMD8<Int32>.self) &- unsafeBitCast(V8(repeating: magic), to: SIMD8<Int32>.self)
    let swap = (qi & 1) .!= 0
    let s0 = sinr.replacing(with: cosr, where: swap)
    let c0 = cosr.replacing(with: sinr, where: swap)
    let sinSign = (qi & 2) &<< 30
    let cosSign = ((qi &+ 1) & 2) &<< 30
    let s = unsafeBitCast(unsafeBitCast(s0, to: SIMD8<Int32>.self) ^ sinSign, to: V8.self)
    let c = unsafeBitCast(unsafeBitCast(c0, to: SIMD8<Int32>.self) ^ cosSign, to: V8.self)
    return (s, c)
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
