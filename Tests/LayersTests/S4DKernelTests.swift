import Engine
import Foundation
import Kernels
import Spectral
import XCTest
@testable import Layers

/// The S4D kernel (Vandermonde sums with re-anchored power recurrences) and the FFT
/// convolution op, each against a direct Double-precision evaluation.
final class S4DKernelTests: XCTestCase {
    /// Parameters as S4D initialises them, but C random and Δ spread over [1e-3, 0.5] so
    /// the kernel spans slow and fast modes; Float values, kept also as exact Doubles.
    struct Case {
        let H: Int, M: Int
        let logDt: [Float], c: [Float], logAReal: [Float], aImag: [Float]

        init(H: Int, M: Int, seed: UInt64) {
            self.H = H
            self.M = M
            logDt = testValues(H, seed: seed).map { Float(log(0.001) + ($0 + 1) / 2 * (log(0.5) - log(0.001))) }
            c = testValues(2 * H * M, seed: seed + 1).map { Float($0) }
            // log ½ perturbed, so modes decay at different rates.
            logAReal = testValues(H * M, seed: seed + 2).map { Float(log(0.5) + 0.5 * $0) }
            aImag = (0..<(H * M)).map { Float.pi * Float($0 % M) }
        }

        func withParameters<R>(_ body: (S4DKernelParameters) -> R) -> R {
            logDt.withUnsafeBufferPointer { a in
                c.withUnsafeBufferPointer { b in
                    logAReal.withUnsafeBufferPointer { d in
                        aImag.withUnsafeBufferPointer { e in
                            body(S4DKernelParameters(logDt: a.baseAddress!, c: b.baseAddress!, logAReal: d.baseAddress!,
                                                     aImag: e.baseAddress!, channels: H, modes: M))
                        }
                    }
                }
            }
        }

        func kernel(length L: Int, pool: ThreadPool) -> [Float] {
            var k = [Float](repeating: 0, count: H * L)
            k.withUnsafeMutableBufferPointer { kp in withParameters { S4DKernel.forward($0, length: L, kernel: kp.baseAddress!, pool: pool) } }
            return k
        }

        /// (log_dt, C, log_A_real, A_imag) gradients of Σ dK·K.
        func gradients(length L: Int, dK: [Float], pool: ThreadPool) -> [[Float]] {
            let sizes = [logDt, c, logAReal, aImag].map(\.count)
            var flat = [Float](repeating: .nan, count: sizes.reduce(0, +))
            flat.withUnsafeMutableBufferPointer { f in
                let g0 = f.baseAddress!, g1 = g0 + sizes[0], g2 = g1 + sizes[1], g3 = g2 + sizes[2]
                dK.withUnsafeBufferPointer { dk in
                    withParameters {
                        S4DKernel.backward($0, length: L, dKernel: dk.baseAddress!,
                                           gradients: S4DKernelGradients(logDt: g0, c: g1, logAReal: g2, aImag: g3), pool: pool)
                    }
                }
            }
            var offset = 0
            return sizes.map { n in defer { offset += n }; return Array(flat[offset..<(offset + n)]) }
        }
    }

    /// K against Σ of directly evaluated exponentials in Double, over a length of many
    /// re-anchoring intervals (4099 = 16·256 + 3, so the last interval is partial) and
    /// phases dt·A_imag·l up to ~2·10⁵ rad. Float32 output rounding bounds the error at ~1e-7.
    func testKernelMatchesDirectDoubleEvaluation() {
        let t = Case(H: 3, M: 32, seed: 11)
        let L = 4099
        let k = t.kernel(length: L, pool: ThreadPool(threads: 2)).map(Double.init)
        let ref = directKernel(logDt: t.logDt.map(Double.init), c: t.c.map(Double.init), logAReal: t.logAReal.map(Double.init),
                               aImag: t.aImag.map(Double.init), modes: t.M, length: L)
        let rel = relativeL2(k, ref)
        var worst = 0.0
        for h in 0..<t.H {
            let row = (h * L)..<((h + 1) * L)
            let scale = ref[row].map(abs).max()!
            worst = max(worst, zip(k[row], ref[row]).map { abs($0 - $1) }.max()! / scale)
        }
        print("S4D kernel vs direct Double: rel L2 \(format(rel)), max |ΔK| / max |K| per channel \(format(worst))")
        XCTAssertLessThanOrEqual(rel, 1e-6)
        XCTAssertLessThanOrEqual(worst, 1e-6)
    }

    /// The kernel's analytic gradient against central differences of the direct Double
    /// kernel (h = 1e-6, truncation ~1e-12, rounding ~1e-9 relative), over L = 1000
    /// (four re-anchoring intervals, the last partial) so P = Σ dK·l·w^l is exercised at large l.
    func testKernelGradientMatchesDoubleFiniteDifferences() {
        let t = Case(H: 2, M: 6, seed: 23)  // two SIMD groups, the second padded
        let L = 1000
        let dK = testValues(t.H * L, seed: 99).map { Float($0) }
        let g = t.gradients(length: L, dK: dK, pool: ThreadPool(threads: 2))
        let base = [t.logDt, t.c, t.logAReal, t.aImag].map { $0.map(Double.init) }
        func loss(_ p: [[Double]]) -> Double {
            let k = directKernel(logDt: p[0], c: p[1], logAReal: p[2], aImag: p[3], modes: t.M, length: L)
            return zip(k, dK).reduce(0) { $0 + $1.0 * Double($1.1) }
        }
        for (i, name) in ["log_dt", "C", "log_A_real", "A_imag"].enumerated() {
            var fd = [Double](repeating: 0, count: base[i].count)
            for j in 0..<base[i].count {
                let h = 1e-6 * max(1, abs(base[i][j]))
                var plus = base, minus = base
                plus[i][j] += h
                minus[i][j] -= h
                fd[j] = (loss(plus) - loss(minus)) / (2 * h)
            }
            let rel = relativeL2(g[i].map(Double.init), fd)
            print("S4D kernel gradient d\(name) vs Double finite differences: rel err \(format(rel))")
            XCTAssertLessThanOrEqual(rel, 1e-5, "d\(name)")
        }
    }

    /// Forward and backward are bit-identical for 1 and 3 threads (each channel's sums run
    /// in one fixed order on one thread).
    func testKernelIsDeterministicAcrossThreadCounts() {
        let t = Case(H: 7, M: 5, seed: 5)
        let L = 300
        let dK = testValues(t.H * L, seed: 3).map { Float($0) }
        XCTAssertEqual(t.kernel(length: L, pool: ThreadPool(threads: 1)), t.kernel(length: L, pool: ThreadPool(threads: 3)))
        XCTAssertEqual(t.gradients(length: L, dK: dK, pool: ThreadPool(threads: 1)),
                       t.gradients(length: L, dK: dK, pool: ThreadPool(threads: 3)))
    }

    /// The FFT convolution op (forward, du, dK) against the direct O(L²) sums in Double,
    /// with a kernel from `S4DKernel` and an L (97) whose FFT size is not a power of two.
    func testFFTConvolutionMatchesDirectConvolution() {
        let backend = CPUBackend(threads: 2)
        let B = 2, L = 97, H = 3
        let t = Case(H: H, M: 8, seed: 41)
        let k = t.kernel(length: L, pool: backend.pool)
        let us = testValues(B * L * H, seed: 7).map { Float($0) }
        let dys = testValues(B * L * H, seed: 8).map { Float($0) }
        let u = Variable(backend.tensor(us, shape: [B * L, H]), requiresGrad: true)
        let kv = Variable(backend.tensor(k, shape: [H, L]), requiresGrad: true)
        let tape = Tape()
        let y = Op.fftConvolution(u, kv, batch: B, cache: FFTPlanCache(), tape)
        tape.backward(from: Op.weightedSum(y, backend.tensor(dys, shape: [B * L, H]), tape))

        var yRef = [Double](repeating: 0, count: B * L * H), duRef = yRef, dkRef = [Double](repeating: 0, count: H * L)
        for b in 0..<B {
            for t in 0..<L {
                for s in 0...t {
                    for h in 0..<H {
                        let out = (b * L + t) * H + h, inp = (b * L + t - s) * H + h
                        yRef[out] += Double(k[h * L + s]) * Double(us[inp])
                        duRef[inp] += Double(dys[out]) * Double(k[h * L + s])
                        dkRef[h * L + s] += Double(dys[out]) * Double(us[inp])
                    }
                }
            }
        }
        let errors = [("y", relativeL2(y.value.floats().map(Double.init), yRef)),
                      ("du", relativeL2(u.grad!.floats().map(Double.init), duRef)),
                      ("dK", relativeL2(kv.grad!.floats().map(Double.init), dkRef))]
        for (name, e) in errors {
            print("FFT convolution \(name) vs direct: rel err \(format(e))")
            XCTAssertLessThanOrEqual(e, 1e-5, name)
        }
    }
}
