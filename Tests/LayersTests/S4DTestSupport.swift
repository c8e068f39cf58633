import Engine
import Foundation
import XCTest
@testable import Layers

/// Finite-difference gradient check of a whole layer: loss = Σ out ⊙ r (r fixed, random),
/// analytic gradients from the tape against the fourth-order central difference
///
///     g ≈ (−L(x + 2h) + 8·L(x + h) − 8·L(x − h) + L(x − 2h)) / 12h
///
/// evaluated with Float32 forwards and a Double loss. Reported per leaf as
/// ‖g_fd − g‖₂ / ‖g‖₂ over all its elements. The fourth-order stencil keeps the truncation
/// error ~h⁴ while a large h keeps Float32 rounding (≈ ε·|L|/h) small. h is absolute, not
/// scaled by |x|: a log-parameter (log_dt ≈ −5) moves the output by the same relative
/// amount per unit at any value.
struct LayerGradCheck {
    let backend: CPUBackend
    var step: Float = 1e-2  // h

    /// `leaves`: the variables to check (parameters and inputs; values are perturbed in
    /// place and restored). `forward` builds the output on the given tape.
    /// Returns the relative error per leaf name.
    func errors(leaves: [(String, Variable)], seed: UInt64 = 77, _ forward: (Tape) -> Variable) -> [(String, Double)] {
        let tape = Tape()
        let out = forward(tape)
        let r = backend.empty(out.shape)
        backend.fillUniform(r, low: -1, high: 1, seed: seed)
        let rs = r.floats().map(Double.init)
        tape.backward(from: Op.weightedSum(out, r, tape))
        func loss() -> Double {
            let y = forward(Tape.inference()).value.floats()
            var s = 0.0
            for (a, b) in zip(y, rs) { s += Double(a) * b }
            return s
        }
        return leaves.map { name, v in
            let analytic = v.grad!.floats()
            let p = v.value.pointer
            var num = 0.0, den = 0.0
            for j in 0..<v.value.count {
                let x0 = p[j]
                let h = step
                func at(_ k: Float) -> Double { p[j] = x0 + k * h; return loss() }
                let fd = (-at(2) + 8 * at(1) - 8 * at(-1) + at(-2)) / (12 * Double(h))
                p[j] = x0
                let d = fd - Double(analytic[j])
                num += d * d
                den += Double(analytic[j]) * Double(analytic[j])
            }
            return (name, (num / max(den, 1e-30)).squareRoot())
        }
    }
}

/// Deterministic pseudo-random values in [−1, 1) (a small LCG: tests need no backend).
func testValues(_ count: Int, seed: UInt64) -> [Double] {
    var s = seed &* 6364136223846793005 &+ 1442695040888963407
    return (0..<count).map { _ in
        s = s &* 6364136223846793005 &+ 1442695040888963407
        return Double(s >> 11) / Double(1 << 53) * 2 - 1
    }
}

/// K[h, l] = 2·Re Σ_n C_n·(e^{dtA_n} − 1)/A_n · e^{dtA_n·l}, each term evaluated directly
/// in Double (no recurrence), from Double copies of the parameters.
func directKernel(logDt: [Double], c: [Double], logAReal: [Double], aImag: [Double], modes M: Int, length L: Int) -> [Double] {
    let H = logDt.count
    var k = [Double](repeating: 0, count: H * L)
    for h in 0..<H {
        let dt = exp(logDt[h])
        for n in 0..<M {
            let i = h * M + n
            let ar = -exp(logAReal[i]), ai = aImag[i]
            let zr = dt * ar, zi = dt * ai
            // C' = C·(e^z − 1)/A
            let er = exp(zr) * cos(zi) - 1, ei = exp(zr) * sin(zi)
            let nr = c[2 * i] * er - c[2 * i + 1] * ei, ni = c[2 * i] * ei + c[2 * i + 1] * er
            let d = ar * ar + ai * ai
            let cr = (nr * ar + ni * ai) / d, ci = (ni * ar - nr * ai) / d
            for l in 0..<L {
                let m = exp(zr * Double(l)), ph = zi * Double(l)
                k[h * L + l] += 2 * (cr * m * cos(ph) - ci * m * sin(ph))
            }
        }
    }
    return k
}

func relativeL2(_ a: [Double], _ b: [Double]) -> Double {
    var num = 0.0, den = 0.0
    for (x, y) in zip(a, b) { num += (x - y) * (x - y); den += y * y }
    return (num / max(den, 1e-300)).squareRoot()
}

func format(_ x: Double) -> String { String(format: "%.2e", x) }
