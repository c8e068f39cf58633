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
}
