import XCTest
import Foundation
@testable import Kernels

final class ActivationsTests: XCTestCase {
    static func phi(_ x: Double) -> Double { 0.5 * Foundation.erfc(-x / 2.0.squareRoot()) }
    static func sig(_ x: Double) -> Double { 1 / (1 + Foundation.exp(-x)) }

    /// (kind, f, f' as a function of (x, y)) in double.
    let cases: [(ActivationKind, (Double) -> Double, (Double, Double) -> Double)] = [
        (.identity, { $0 }, { _, _ in 1 }),
        (.silu, { $0 * sig($0) }, { x, _ in let s = sig(x); return s * (1 + x * (1 - s)) }),
        (.softplus, { $0 > 20 ? $0 : Foundation.log1p(Foundation.exp($0)) }, { x, _ in x > 20 ? 1 : sig(x) }),
        (.exp, { Foundation.exp($0) }, { _, y in y }),
        (.sigmoid, { sig($0) }, { _, y in y * (1 - y) }),
        (.tanh, { Foundation.tanh($0) }, { _, y in 1 - y * y }),
        (.gelu, { $0 * phi($0) }, { x, _ in phi(x) + x * Foundation.exp(-0.5 * x * x) / (2 * Double.pi).squareRoot() }),
        (.relu, { max($0, 0) }, { x, _ in x > 0 ? 1 : 0 }),
    ]

    func testForwardAccuracy() {
        // A dense sweep plus odd sizes; relative error with a small floor.
        let n = 20_001
        let x = (0..<n).map { Float(-12 + 24 * Double($0) / Double(n - 1)) } + [0, 1e-4, -1e-4, 1e-20, -30, 30]
        let xb = Buf(x), y = Buf(count: x.count, value: .nan)
        for (kind, f, _) in cases {
            Activations.forward(kind, xb.c, y.p, count: x.count, pool: pool2)
            let ref = x.map { f(Double($0)) }
            let e = maxRelErr(y.a, ref, floor: 1e-30)
            print("\(kind) forward max rel err on [-12, 12]: \(e)")
            if kind == .gelu {
                // In the lower tail Φ's relative condition number is ≈ x², so float rounding of
                // the intermediate x²/2 costs ≈ x²·6e-8: bound the error by 1e-6 + 1.5e-7·x².
                var worstRatio = 0.0, worstCore = 0.0
                for i in 0..<x.count {
                    let ex = abs(Double(y.a[i]) - ref[i]) / max(abs(ref[i]), 1e-30)
                    let xd = Double(x[i])
                    worstRatio = max(worstRatio, ex / (1e-6 + 1.5e-7 * xd * xd))
                    if xd >= -5 { worstCore = max(worstCore, ex) }
                }
                print("gelu forward max rel err on [-5, 12]: \(worstCore); worst err / (1e-6 + 1.5e-7 x²): \(worstRatio)")
                XCTAssertLessThan(worstCore, 3e-6)
                XCTAssertLessThan(worstRatio, 1)
            } else {
                XCTAssertLessThan(e, 1e-6, "\(kind)")
            }
        }
    }

    func testGELUFarTails() {
        let x: [Float] = [-20, -15, -10, -9, 9, 10, 20, 50]
        let xb = Buf(x), y = Buf(count: x.count)
        Activations.gelu(xb.c, y.p, count: x.count, pool: pool1)
        for i in 0..<x.count {
            let r = Double(x[i]) * Self.phi(Double(x[i]))
            XCTAssertEqual(Double(y.a[i]), r, accuracy: max(1e-37, abs(r) * 1e-4))
        }
    }

    func testBackwardAgainstDerivativeAndFiniteDifferences() {
        var rng = TestRNG(20)
        for n in [1, 7, 37, 130] {
            let x = rng.floats(n, -6, 6), dy = rng.floats(n)
            let xb = Buf(x), g = Buf(dy), y = Buf(count: n)
            for (kind, f, df) in cases {
                Activations.forward(kind, xb.c, y.p, count: n, pool: pool2)
                let saved = kind.backwardUsesOutput ? y : xb
                let dx = Buf(count: n, value: 0.5)
                Activations.backward(kind, saved: saved.c, dy: g.c, dx: dx.p, count: n, pool: pool2)
                let exact = (0..<n).map { 0.5 + Double(dy[$0]) * df(Double(x[$0]), f(Double(x[$0]))) }
                let e = maxRelErr(dx.a, exact, floor: 1e-2)
                // FD of Σ f(x)·dy in double (skip ReLU's kink, far from the samples anyway).
                let fd = fdGradient(x.map(Double.init)) { xs in
                    var s = 0.0
                    for i in 0..<n { s += f(xs[i]) * Double(dy[i]) }
                    return s
                }
                let efd = normRelErr(dx.a, fd.map { $0 + 0.5 })
                if n == 130 { print("\(kind) backward: vs f' \(e), vs FD \(efd)") }
                XCTAssertLessThan(e, 1e-5, "\(kind) n\(n)")
                XCTAssertLessThan(efd, 1e-5, "\(kind) n\(n)")
                // Overwrite mode.
                let dx2 = Buf(count: n, value: .nan)
                Activations.backward(kind, saved: saved.c, dy: g.c, dx: dx2.p, count: n, accumulate: false, pool: pool2)
                XCTAssertLessThan(maxRelErr(dx2.a, exact.map { $0 - 0.5 }, floor: 1e-2), 1e-5, "\(kind) overwrite")
            }
        }
    }

    func testNamedWrappersMatchKinds() {
        var rng = TestRNG(21)
        let n = 77
        let x = rng.floats(n, -4, 4), dy = rng.floats(n)
        let xb = Buf(x), g = Buf(dy), y1 = Buf(count: n), y2 = Buf(count: n)
        let named: [(ActivationKind, (UnsafePointer<Float>, UnsafeMutablePointer<Float>) -> Void)] = [
            (.silu, { Activations.silu($0, $1, count: n, pool: pool2) }),
            (.softplus, { Activations.softplus($0, $1, count: n, pool: pool2) }),
            (.exp, { Activations.exp($0, $1, count: n, pool: pool2) }),
            (.sigmoid, { Activations.sigmoid($0, $1, count: n, pool: pool2) }),
            (.tanh, { Activations.tanh($0, $1, count: n, pool: pool2) }),
            (.gelu, { Activations.gelu($0, $1, count: n, pool: pool2) }),
            (.relu, { Activations.relu($0, $1, count: n, pool: pool2) }),
        ]
        for (kind, fwd) in named {
            fwd(xb.c, y1.p)
            Activations.forward(kind, xb.c, y2.p, count: n, pool: pool2)
            XCTAssertTrue(bitsEqual(y1.a, y2.a), "\(kind)")
        }
        let d1 = Buf(count: n), d2 = Buf(count: n)
        Activations.siluBackward(x: xb.c, dy: g.c, dx: d1.p, count: n, pool: pool2)
        Activations.backward(.silu, saved: xb.c, dy: g.c, dx: d2.p, count: n, pool: pool2)
        XCTAssertTrue(bitsEqual(d1.a, d2.a))
    }
}
