import XCTest
@testable import Kernels

final class FastMathTests: XCTestCase {
    /// Sweeps many inputs and returns the worst relative error against Foundation's libm.
    private func worstRelativeError(_ range: ClosedRange<Float>, count: Int,
                                    _ fast: (SIMD8<Float>) -> SIMD8<Float>, _ exact: (Double) -> Double) -> Double {
        var worst = 0.0
        var i = 0
        while i < count {
            var v = SIMD8<Float>()
            for l in 0..<8 {
                v[l] = range.lowerBound + (range.upperBound - range.lowerBound) * Float(i + l) / Float(count)
            }
            let r = fast(v)
            for l in 0..<8 {
                let e = exact(Double(v[l]))
                let rel = abs(Double(r[l]) - e) / max(abs(e), 1e-30)
                worst = max(worst, rel)
            }
            i += 8
        }
        return worst
    }

    func testExpAccuracy() {
        let err = worstRelativeError(-87...88, count: 200_000, { fastExp($0) }, { Foundation.exp($0) })
        print("fastExp max rel err on [-87, 88]: \(err)")
        XCTAssertLessThan(err, 3e-7)
    }

    func testExpUnderflowsToZeroAndNoNaN() {
        let r = fastExp(SIMD8<Float>(-1000, -200, -88, 0, 1, 100, 1000, -.infinity))
        XCTAssertEqual(r[0], 0, accuracy: 1e-37)
        XCTAssertEqual(r[3], 1)
        XCTAssertEqual(r[4], Float(M_E), accuracy: 1e-6)
        for l in 0..<8 { XCTAssertFalse(r[l].isNaN) }
    }

    func testLogAccuracy() {
        let err = worstRelativeError(1e-6...1e6, count: 200_000, { fastLog($0) }, { Foundation.log($0) })
        print("fastLog max rel err on [1e-6, 1e6]: \(err)")
        XCTAssertLessThan(err, 3e-7)
        // Near 1 the relative error of log is ill-conditioned; check the absolute error.
        let near = fastLog(SIMD8<Float>(0.99, 0.999, 1, 1.001, 1.01, 0.5, 2, 1.5))
        for (l, x) in [0.99, 0.999, 1, 1.001, 1.01, 0.5, 2, 1.5].enumerated() {
            XCTAssertEqual(Double(near[l]), Foundation.log(Double(Float(x))), accuracy: 2e-7)
        }
    }

    func testSoftplusSigmoidTanh() {
        let sp = worstRelativeError(-30...30, count: 50_000, { fastSoftplus($0) }, { $0 > 20 ? $0 : Foundation.log1p(Foundation.exp($0)) })
        XCTAssertLessThan(sp, 1e-6)
        let sg = worstRelativeError(-30...30, count: 50_000, { fastSigmoid($0) }, { 1 / (1 + Foundation.exp(-$0)) })
        XCTAssertLessThan(sg, 1e-6)
        let th = worstRelativeError(0.05...20, count: 50_000, { fastTanh($0) }, { Foundation.tanh($0) })
        XCTAssertLessThan(th, 1e-6)
        let thNeg = fastTanh(SIMD8<Float>(-3, -1, -0.5, 0, 0.5, 1, 3, 1e-4))
        XCTAssertEqual(thNeg[0], -Foundation.tanh(3), accuracy: 1e-6)
        XCTAssertEqual(thNeg[3], 0)
        XCTAssertEqual(thNeg[7], 1e-4, accuracy: 1e-7)
    }

    // MARK: Error bounds of the 2^k·2^f exp, the division-based sigmoid/SiLU and the polynomial
    // softplus (measured maxima in FastMath.swift's header; bounds leave ~25 % headroom).

    /// Worst relative error of a SIMD16 function against a double reference over `count` evenly
    /// spaced points of [lo, hi].
    private func worst16(_ lo: Double, _ hi: Double, count: Int, _ fast: (SIMD16<Float>) -> SIMD16<Float>,
                         _ exact: (Double) -> Double) -> Double {
        var worst = 0.0
        var i = 0
        while i < count {
            var v = SIMD16<Float>()
            for l in 0..<16 { v[l] = Float(lo + (hi - lo) * Double(i + l) / Double(count)) }
            let r = fast(v)
            for l in 0..<16 {
                let e = exact(Double(v[l]))
                worst = max(worst, abs(Double(r[l]) - e) / max(abs(e), 1e-300))
            }
            i += 16
        }
        return worst
    }

    static func sigmoid(_ x: Double) -> Double { 1 / (1 + Foundation.exp(-x)) }
    static func softplus(_ x: Double) -> Double { x > 20 ? x : Foundation.log1p(Foundation.exp(x)) }

    func testExpErrorBound() {
        let wide = worst16(-87, 88, count: 1 << 21, { fastExp($0) }, { Foundation.exp($0) })
        let near0 = worst16(-1, 1, count: 1 << 20, { fastExp($0) }, { Foundation.exp($0) })
        print("fastExp max rel err: [-87, 88] \(wide), [-1, 1] \(near0)")
        XCTAssertLessThan(wide, 1.2e-7)
        XCTAssertLessThan(near0, 1.2e-7)
        // The three widths are one template: identical bits.
        let x = SIMD16<Float>(-87, -20.5, -3, -0.7, -1e-30, 0, 1e-30, 0.3, 0.5, 1, 2.5, 7, 10, 33, 64, 88)
        let r16 = fastExp(x)
        let r8 = SIMD16(lowHalf: fastExp(x.lowHalf), highHalf: fastExp(x.highHalf))
        let r4 = SIMD16(lowHalf: SIMD8(lowHalf: fastExp(x.lowHalf.lowHalf), highHalf: fastExp(x.lowHalf.highHalf)),
                        highHalf: SIMD8(lowHalf: fastExp(x.highHalf.lowHalf), highHalf: fastExp(x.highHalf.highHalf)))
        XCTAssertEqual(r16, r8)
        XCTAssertEqual(r16, r4)
    }

    func testSigmoidSiLUSoftplusErrorBounds() {
        let sg = worst16(-87, 88, count: 1 << 21, { fastSigmoid($0) }, Self.sigmoid)
        let si = worst16(-87, 88, count: 1 << 21, { fastSiLU($0) }, { $0 * Self.sigmoid($0) })
        let sp = worst16(-87, 88, count: 1 << 21, { fastSoftplus($0) }, Self.softplus)
        let spCore = worst16(-5, 5, count: 1 << 20, { fastSoftplus($0) }, Self.softplus)
        let l1p = worst16(0, 1, count: 1 << 20, { fastLog1pUnit($0) }, { Foundation.log1p($0) })
        print("max rel err on [-87, 88]: sigmoid \(sg), silu \(si), softplus \(sp) ([-5, 5]: \(spCore)); log1pUnit on [0, 1]: \(l1p)")
        XCTAssertLessThan(sg, 2e-7)
        XCTAssertLessThan(si, 2.5e-7)
        XCTAssertLessThan(sp, 2.2e-7)
        XCTAssertLessThan(spCore, 2.2e-7)
        XCTAssertLessThan(l1p, 2e-7)
    }

    func testSpecialValues() {
        let tiny = Float.leastNormalMagnitude
        let x = SIMD16<Float>(0, -0.0, tiny / 1000, -tiny / 1000, tiny, -tiny, .infinity, -.infinity, .nan, 20, 20.5, 30, -100, 88.5, -88.5, 1)
        let e = fastExp(x)
        for l in 0..<6 { XCTAssertEqual(e[l], 1, "exp(\(x[l]))") }
        XCTAssertTrue(e[6].isFinite && e[6] > 2e38, "exp(+inf) saturates at about 2.4e38")
        XCTAssertTrue(e[7] >= 0 && e[7] <= 1.2e-38, "exp(-inf) flushes to about 0")
        XCTAssertTrue(e[8].isNaN)
        XCTAssertTrue(e[12] >= 0 && e[12] <= 1.2e-38)

        let s = fastSigmoid(x)
        for l in 0..<6 { XCTAssertEqual(s[l], 0.5, "sigmoid(\(x[l]))") }
        XCTAssertEqual(s[6], 1)
        XCTAssertTrue(s[7] >= 0 && s[7] < 1e-37)
        XCTAssertTrue(s[8].isNaN)
        XCTAssertEqual(s[11], 1)

        let si = fastSiLU(x)
        XCTAssertEqual(si[0], 0)
        XCTAssertEqual(si[1].sign, .minus, "silu(-0) = -0")
        XCTAssertEqual(si[6], .infinity)
        XCTAssertTrue(si[8].isNaN)
        XCTAssertTrue(abs(si[12]) < 1e-36)
        XCTAssertEqual(si[11], 30)

        let sp = fastSoftplus(x)
        for l in 0..<6 { XCTAssertEqual(Double(sp[l]), M_LN2, accuracy: 1e-7, "softplus(\(x[l]))") }
        XCTAssertEqual(sp[6], .infinity)
        XCTAssertTrue(sp[7] >= 0 && sp[7] <= 1.2e-38)
        XCTAssertTrue(sp[8].isNaN)
        // PyTorch's threshold: x above 20 returns x exactly (the correction is below half an ulp).
        XCTAssertEqual(sp[10], 20.5)
        XCTAssertEqual(sp[11], 30)
        XCTAssertEqual(sp[13], 88.5)
        XCTAssertEqual(Double(sp[9]), 20 + Foundation.exp(-20.0), accuracy: 2e-6)
        XCTAssertTrue(sp[12] > 0 && sp[12] <= 1.2e-38, "softplus(-100) ≈ e^-100 flushes like exp")
        XCTAssertEqual(Double(sp[15]), Self.softplus(1), accuracy: 2e-7)
    }
}
