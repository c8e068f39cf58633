// One time step of the selective scan for many streams (autoregressive generation).
// The state is (batch, D, W) contiguous — the layout `forward(lastState:)` writes — so a prompt
// can be scanned with `forward` and continued with `step`. SIMD8 over the state index
// (contiguous in that layout) with one horizontal sum per channel; allocation-free.

#if arch(x86_64)
import _Builtin_intrinsics.intel
#endif

extension SelectiveScan {
    /// Advances `state` by one step and writes y.
    ///
    /// `x.shape.length` must be 1. Then u, delta, z and out are (batch, D) with row strides
    /// `x.strideU` … `strideOut` (one row per batch element), B and C are (batch, W) with row
    /// strides `x.strideB`, `x.strideC`.
    /// - Parameters:
    ///   - state: (batch, D, W) contiguous, updated in place (complex: re/im interleaved).
    ///   - out: (batch, D), row stride `strideOut` (default D).
    public static func step(_ x: SelectiveScanInputs, state: UnsafeMutablePointer<Float>,
                            out: UnsafeMutablePointer<Float>, strideOut: Int? = nil, pool: ThreadPool) {
        x.validate()
        precondition(x.shape.length == 1, "selective scan step: shape.length must be 1")
        let shape = x.shape
        let strideOut = strideOut ?? shape.channels
        let groups = shape.channelGroups
        let units = shape.batch * groups
        if units == 0 { return }
        // Work per unit ≈ 8·W updates; stay on one thread for small problems.
        let grain = max(1, 32768 / (8 * shape.stateWidth))
        pool.forRanges(units, grain: grain) { r in
            for unit in r {
                stepGroup(x, b: unit / groups, g: unit % groups, state: state, out: out, strideOut: strideOut)
            }
        }
    }

    @inline(__always)
    static func stepGroup(_ x: SelectiveScanInputs, b: Int, g: Int, state: UnsafeMutablePointer<Float>,
                          out: UnsafeMutablePointer<Float>, strideOut: Int) {
        let shape = x.shape
        let D = shape.channels, N = shape.dState, W = shape.stateWidth
        let d0 = g * 8, lanes = min(8, D - d0)
        let bias = x.deltaBias.map { loadLanes($0 + d0, lanes) } ?? V8()
        let s = scanSoftplus(loadLanes(x.delta + b * x.strideDelta + d0, lanes) + bias)
        let uv = loadLanes(x.u + b * x.strideU + d0, lanes)
        let su = s * uv
        let pb = x.B + b * x.strideB, pc = x.C + b * x.strideC
        var y = V8()
        for i in 0..<lanes {
            let d = d0 + i
            let sd = V8(repeating: s[i]), sud = V8(repeating: su[i])
            let h = state + (b * D + d) * W
            let a = x.A + d * N
            var acc = V8()
            if shape.isComplex {
                let ai = x.AImag! + d * N
                // 8 complex states per block: h, B, C as 16 interleaved floats.
                var n = 0
                while n < N {
                    let m = min(8, N - n)
                    let hr: V8, hi: V8, br: V8, bi: V8, cr: V8, ci: V8
                    if m == 8 {
                        let h16 = UnsafeRawPointer(h + 2 * n).loadUnaligned(as: SIMD16<Float>.self)
                        let b16 = UnsafeRawPointer(pb + 2 * n).loadUnaligned(as: SIMD16<Float>.self)
                        let c16 = UnsafeRawPointer(pc + 2 * n).loadUnaligned(as: SIMD16<Float>.self)
                        hr = h16.evenHalf; hi = h16.oddHalf; br = b16.evenHalf; bi = b16.oddHalf
                        cr = c16.evenHalf; ci = c16.oddHalf
                    } else {
                        var t = (V8(), V8(), V8(), V8(), V8(), V8())
                        for k in 0..<m {
                            t.0[k] = h[2 * (n + k)]; t.1[k] = h[2 * (n + k) + 1]
                            t.2[k] = pb[2 * (n + k)]; t.3[k] = pb[2 * (n + k) + 1]
                            t.4[k] = pc[2 * (n + k)]; t.5[k] = pc[2 * (n + k) + 1]
                        }
                        (hr, hi, br, bi, cr, ci) = t
                    }
                    let e = scanExp2(sd * (loadLanes(a + n, m) * scanLog2e))
                    let sc = scanSinCosHalfPi(sd * (loadLanes(ai + n, m) * scanTwoOverPi))
                    let ar = e * sc.cos, aim = e * sc.sin
                    let nr = (sud * br).addingProduct(ar, hr).addingProduct(-aim, hi)
                    let ni = (sud * bi).addingProduct(ar, hi).addingProduct(aim, hr)
                    acc = acc.addingProduct(cr, nr).addingProduct(-ci, ni)
                    if m == 8 {
                        storeInterleaved(nr, ni, h + 2 * n)
                    } else {
                        for k in 0..<m { h[2 * (n + k)] = nr[k]; h[2 * (n + k) + 1] = ni[k] }
                    }
                    n += 8
                }
                y[i] = 2 * acc.sum()
            } else {
                var n = 0
                while n < N {
                    let m = min(8, N - n)
                    let av = loadLanes(a + n, m)
                    let hn = (sud * loadLanes(pb + n, m)).addingProduct(scanExp2(sd * (av * scanLog2e)), loadLanes(h + n, m))
                    storeLanes(hn, h + n, m)
                    acc = acc.addingProduct(loadLanes(pc + n, m), hn)
                    n += 8
                }
                y[i] = acc.sum()
            }
        }
        if let dp = x.D { y = y.addingProduct(loadLanes(dp + d0, lanes), uv) }
        if let z = x.z {
            let zv = loadLanes(z + b * x.strideZ + d0, lanes)
            y = y * (zv * scanSigmoid(zv))
        }
        storeLanes(y, out + b * strideOut + d0, lanes)
    }

    /// Stores re/im lanes interleaved: p[2k] = re[k], p[2k+1] = im[k] (16 floats).
    @inline(__always)
    static func storeInterleaved(_ re: V8, _ im: V8, _ p: UnsafeMutablePointer<Float>) {
        #if arch(x86_64)
        let lo = _mm256_unpacklo_ps(re, im)   // r0 i0 r1 i1 | r4 i4 r5 i5
        let hi = _mm256_unpackhi_ps(re, im)   // r2 i2 r3 i3 | r6 i6 r7 i7
        storeV(V8(lowHalf: lo.lowHalf, highHalf: hi.lowHalf), p)
        storeV(V8(lowHalf: lo.highHalf, highHalf: hi.highHalf), p + 8)
        #else
        for k in 0..<8 { p[2 * k] = re[k]; p[2 * k + 1] = im[k] }
        #endif
    }
}
