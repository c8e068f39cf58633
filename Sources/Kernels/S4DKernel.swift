import Foundation

// The S4D convolution kernel (Gu et al., "On the Parameterization and Initialization of
// Diagonal State Space Models", 2022; s4d.py's S4DKernel) and its gradient, on raw pointers.
//
// Per channel h and mode n (N/2 modes; the conjugate half is the "2·Re"):
//
//     dt = exp(log_dt),  A = −exp(log_A_real) + i·A_imag,  w = exp(dt·A)
//     C' = C·(w − 1)/A                                       (zero-order hold, B = 1)
//     K[l] = 2·Re Σ_n C'_n · w_n^l,     l = 0 … L−1
//
// All arithmetic is in Double: the phase dt·A_imag·l reaches 10⁵ rad at audio lengths,
// where Float would lose the kernel's tail (PyTorch's complex64 does). Only K is Float.
// The backends call it (CPUBackend's `s4dKernel`); Layers' S4D reaches it through them.

/// A complex number in Double (the kernel's working precision).
struct ComplexDouble: Equatable {
    var re: Double
    var im: Double

    init(_ re: Double, _ im: Double) { self.re = re; self.im = im }

    /// exp(re + i·im).
    static func exp(_ z: ComplexDouble) -> ComplexDouble {
        let m = Foundation.exp(z.re)
        return ComplexDouble(m * cos(z.im), m * sin(z.im))
    }

    var conjugate: ComplexDouble { ComplexDouble(re, -im) }

    static func + (a: ComplexDouble, b: ComplexDouble) -> ComplexDouble { ComplexDouble(a.re + b.re, a.im + b.im) }
    static func - (a: ComplexDouble, b: ComplexDouble) -> ComplexDouble { ComplexDouble(a.re - b.re, a.im - b.im) }
    static func * (a: ComplexDouble, b: ComplexDouble) -> ComplexDouble {
        ComplexDouble(a.re * b.re - a.im * b.im, a.re * b.im + a.im * b.re)
    }
    static func * (s: Double, a: ComplexDouble) -> ComplexDouble { ComplexDouble(s * a.re, s * a.im) }
    static func / (a: ComplexDouble, b: ComplexDouble) -> ComplexDouble {
        let d = b.re * b.re + b.im * b.im
        return ComplexDouble((a.re * b.re + a.im * b.im) / d, (a.im * b.re - a.re * b.im) / d)
    }
}

/// One mode of one channel, discretised by zero-order hold.
struct S4DMode {
    let dt: Double
    /// A = −exp(log_A_real) + i·A_imag (Re A < 0, so A ≠ 0 and |w| < 1).
    let a: ComplexDouble
    /// dt·A.
    let dtA: ComplexDouble
    /// w = exp(dt·A): the state's per-step decay and rotation.
    let w: ComplexDouble
    /// w − 1 without cancellation when |dt·A| is small (dt = 1e-3 at initialisation):
    /// e^x·e^{iy} − 1 = (expm1(x)·cos y − 2·sin²(y/2)) + i·e^x·sin y.
    let wMinusOne: ComplexDouble

    init(logDt: Float, logAReal: Float, aImag: Float) {
        dt = Foundation.exp(Double(logDt))
        a = ComplexDouble(-Foundation.exp(Double(logAReal)), Double(aImag))
        dtA = dt * a
        w = ComplexDouble.exp(dtA)
        let half = sin(dtA.im / 2)
        wMinusOne = ComplexDouble(expm1(dtA.re) * cos(dtA.im) - 2 * half * half, Foundation.exp(dtA.re) * sin(dtA.im))
    }

    /// B̃ = (w − 1)/A: the input's weight in the state update (B = 1; C carries the rest).
    var bBar: ComplexDouble { wMinusOne / a }

    /// w^l evaluated directly as exp(dt·A·l) (the recurrences re-anchor on it).
    func power(_ l: Int) -> ComplexDouble { ComplexDouble.exp(Double(l) * dtA) }
}

/// Host pointers to an S4D kernel's parameters (s4d.py's shapes, N2 = N/2 modes):
/// log_dt (H), C (H, N2, 2) as (re, im) pairs, log_A_real (H, N2), A_imag (H, N2).
public struct S4DKernelParameters {
    public var logDt: UnsafePointer<Float>
    public var c: UnsafePointer<Float>
    public var logAReal: UnsafePointer<Float>
    public var aImag: UnsafePointer<Float>
    /// H.
    public var channels: Int
    /// N2 = N/2 (complex modes per channel).
    public var modes: Int

    public init(logDt: UnsafePointer<Float>, c: UnsafePointer<Float>, logAReal: UnsafePointer<Float>,
                aImag: UnsafePointer<Float>, channels: Int, modes: Int) {
        self.logDt = logDt
        self.c = c
        self.logAReal = logAReal
        self.aImag = aImag
        self.channels = channels
        self.modes = modes
    }

    func mode(_ h: Int, _ n: Int) -> S4DMode {
        let i = h * modes + n
        return S4DMode(logDt: logDt[h], logAReal: logAReal[i], aImag: aImag[i])
    }

    func cValue(_ h: Int, _ n: Int) -> ComplexDouble {
        let i = 2 * (h * modes + n)
        return ComplexDouble(Double(c[i]), Double(c[i + 1]))
    }
}

/// Where `S4DKernel.backward` writes the parameters' gradients (same shapes as the
/// parameters; overwritten).
public struct S4DKernelGradients {
    public var logDt: UnsafeMutablePointer<Float>
    public var c: UnsafeMutablePointer<Float>
    public var logAReal: UnsafeMutablePointer<Float>
    public var aImag: UnsafeMutablePointer<Float>

    public init(logDt: UnsafeMutablePointer<Float>, c: UnsafeMutablePointer<Float>, logAReal: UnsafeMutablePointer<Float>,
                aImag: UnsafeMutablePointer<Float>) {
        self.logDt = logDt
        self.c = c
        self.logAReal = logAReal
        self.aImag = aImag
    }
}

public enum S4DKernel {
    /// Steps between exact evaluations of w^l. In between, powers come from the recurrence
    /// v ← v·w, each step adding a relative error of ≲ 4·2⁻⁵³ (one complex product, plus
    /// w's own rounding), so the drift stays below 256·4·1.1e-16 ≈ 1.1e-13 relative — six
    /// orders under the Float32 kernel's rounding, for any L. (The anchors' sin/cos of
    /// large phases are slow; every 64 steps they took a large share of the time.)
    public static let anchorInterval = 256

    /// Modes are processed four at a time (SIMD lanes); the last group is padded with
    /// zero modes (w = 0, coefficient 0), which add nothing.
    typealias Lanes = SIMD4<Double>

    /// K (H, L), row h at h·L. Parallel over channels; each channel's sums run in a fixed
    /// order, so the result does not depend on the thread count.
    public static func forward(_ p: S4DKernelParameters, length L: Int, kernel: UnsafeMutablePointer<Float>, pool: ThreadPool) {
        let M = p.modes, G = (M + 3) / 4
        pool.forRanges(p.channels, grain: 1) { channels in
            // Per mode group: w, and v = C'·w^l (the running term), re and im apart.
            let scratch = UnsafeMutablePointer<Lanes>.allocate(capacity: 4 * G)
            defer { scratch.deallocate() }
            let wRe = scratch, wIm = scratch + G, vRe = scratch + 2 * G, vIm = scratch + 3 * G
            for h in channels {
                let modes = (0..<M).map { p.mode(h, $0) }
                let cPrime = (0..<M).map { p.cValue(h, $0) * modes[$0].bBar }
                scratch.update(repeating: Lanes(repeating: 0), count: 4 * G)
                for n in 0..<M { wRe[n / 4][n % 4] = modes[n].w.re; wIm[n / 4][n % 4] = modes[n].w.im }
                let k = kernel + h * L
                var l0 = 0
                while l0 < L {
                    for n in 0..<M {
                        let v = cPrime[n] * modes[n].power(l0)
                        vRe[n / 4][n % 4] = v.re; vIm[n / 4][n % 4] = v.im
                    }
                    let end = min(l0 + anchorInterval, L)
                    for l in l0..<end {
                        var sum = Lanes(repeating: 0)
                        for g in 0..<G {
                            let r = vRe[g], i = vIm[g]
                            sum += r
                            vRe[g] = r * wRe[g] - i * wIm[g]
                            vIm[g] = r * wIm[g] + i * wRe[g]
                        }
                        k[l] = Float(2 * sum.sum())
                    }
                    l0 = end
                }
            }
        }
    }

    /// Gradients of loss = Σ_{h,l} dK[h, l]·K[h, l] with respect to the parameters.
    ///
    /// Writing K[l] = 2·Re f_l with f_l = Σ_n C'_n·w_n^l holomorphic in each complex
    /// parameter, a real parameter t gets 2·Re Σ_l dK[l]·∂f_l/∂t, and C (stored as re, im)
    /// gets (2·Re G, −2·Im G) = 2·conj(G) with G = Σ_l dK[l]·∂f_l/∂C. With the two
    /// Vandermonde sums
    ///
    ///     S = Σ_l dK[l]·w^l,     P = Σ_l dK[l]·l·w^l
    ///
    /// and ∂C'/∂dt = C·w, ∂w^l/∂dt = l·A·w^l, ∂C'/∂A = (dt·C·w − C')/A, ∂w^l/∂A = dt·l·w^l:
    ///
    ///     G_dt = C·w·S + C'·A·P                     d log_dt     = Σ_n 2·Re(dt·G_dt)
    ///     G_A  = (dt·G_dt − C'·S)/A                 d log_A_real = 2·Re(G_A)·Re A
    ///                                               d A_imag     = 2·Re(i·G_A) = −2·Im G_A
    ///     G_C  = (w − 1)/A·S                        d C          = 2·conj(G_C)
    ///
    /// S and P use the same re-anchored power recurrence as `forward`. Parallel over
    /// channels, deterministic.
    public static func backward(_ p: S4DKernelParameters, length L: Int, dKernel: UnsafePointer<Float>,
                                gradients g: S4DKernelGradients, pool: ThreadPool) {
        let M = p.modes, G = (M + 3) / 4
        pool.forRanges(p.channels, grain: 1) { channels in
            let scratch = UnsafeMutablePointer<Lanes>.allocate(capacity: 8 * G)
            defer { scratch.deallocate() }
            let wRe = scratch, wIm = scratch + G, pRe = scratch + 2 * G, pIm = scratch + 3 * G
            let sRe = scratch + 4 * G, sIm = scratch + 5 * G, qRe = scratch + 6 * G, qIm = scratch + 7 * G
            for h in channels {
                let modes = (0..<M).map { p.mode(h, $0) }
                scratch.update(repeating: Lanes(repeating: 0), count: 8 * G)
                for n in 0..<M { wRe[n / 4][n % 4] = modes[n].w.re; wIm[n / 4][n % 4] = modes[n].w.im }
                let dk = dKernel + h * L
                var l0 = 0
                while l0 < L {
                    for n in 0..<M {
                        let v = modes[n].power(l0)
                        pRe[n / 4][n % 4] = v.re; pIm[n / 4][n % 4] = v.im
                    }
                    let end = min(l0 + anchorInterval, L)
                    for l in l0..<end {
                        let d = Double(dk[l]), dl = d * Double(l)
                        for g in 0..<G {
                            let r = pRe[g], i = pIm[g]
                            sRe[g] += d * r; sIm[g] += d * i
                            qRe[g] += dl * r; qIm[g] += dl * i
                            pRe[g] = r * wRe[g] - i * wIm[g]
                            pIm[g] = r * wIm[g] + i * wRe[g]
                        }
                    }
                    l0 = end
                }
                var dLogDt = 0.0
                for n in 0..<M {
                    let m = modes[n], c = p.cValue(h, n)
                    let S = ComplexDouble(sRe[n / 4][n % 4], sIm[n / 4][n % 4]), P = ComplexDouble(qRe[n / 4][n % 4], qIm[n / 4][n % 4])
                    let cPrime = c * m.bBar
                    let gDt = c * m.w * S + cPrime * m.a * P
                    let gA = (m.dt * gDt - cPrime * S) / m.a
                    let gC = m.bBar * S
                    dLogDt += 2 * m.dt * gDt.re
                    let i = h * M + n
                    g.logAReal[i] = Float(2 * gA.re * m.a.re)
                    g.aImag[i] = Float(-2 * gA.im)
                    g.c[2 * i] = Float(2 * gC.re)
                    g.c[2 * i + 1] = Float(-2 * gC.im)
                }
                g.logDt[h] = Float(dLogDt)
            }
        }
    }
}
