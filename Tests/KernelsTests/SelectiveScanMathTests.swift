import Foundation
import XCTest
@testable import Kernels

/// Accuracy of the scan's own vector math against libm in double.
final class SelectiveScanMathTests: XCTestCase {
    /// Worst error of `fast` against `exact` over `count` evenly spaced points of [lo, hi];
    /// relative when `relative`, else absolute.
    func worst(_ lo: Double, _ hi: Double, count: Int = 400_000, relative: Bool,
               _ fast: (V8) -> V8, _ exact: (Double) -> Double) -> Double {
        var w = 0.0
        var i = 0
        while i < count {
            var v = V8()
            for l in 0..<8 { v[l] = Float(lo + (hi - lo) * Double(i + l) / Double(count)) }
            let r = fast(v)
            for l in 0..<8 {
                let e = exact(Double(v[l]))
                let err = abs(Double(r[l]) - e) / (relative ? max(abs(e), 1e-300) : 1)
                w = max(w, err)
            }
            i += 8
        }
        return w
    }

    func testExp2() {
        let e = worst(-126, 127, relative: true, { scanExp2($0) }, { Foundation.exp2($0) })
        let e1 = worst(-1, 1, relative: true, { scanExp2($0) }, { Foundation.exp2($0) })
        print("scanExp2 max rel err on [-126, 127]: \(e), on [-1, 1]: \(e1)")
        XCTAssertLessThan(e, 2.5e-7)
        // Clamped outside: tiny below, huge-or-inf above, never NaN.
        let r = scanExp2(V8(-1000, -127, -126, 0, 1, 127, 1000, -.infinity))
        XCTAssertLessThan(r[0], 1.3e-38); XCTAssertEqual(r[3], 1); XCTAssertEqual(r[4], 2, accuracy: 1e-6)
        for l in 0..<8 { XCTAssertFalse(r[l].isNaN) }
    }

    func testExpLogSoftplusSigmoid() {
        let e = worst(-87, 88, relative: true, { scanExp($0) }, { Foundation.exp($0) })
        let l = worst(1e-6, 1e6, relative: true, { scanLog($0) }, { Foundation.log($0) })
        let sp = worst(-30, 30, relative: true, { scanSoftplus($0) }, { $0 > 20 ? $0 : Foundation.log1p(Foundation.exp($0)) })
        let sg = worst(-30, 30, relative: true, { scanSigmoid($0) }, { 1 / (1 + Foundation.exp(-$0)) })
        let sg2 = worst(-30, 30, relative: true, { scanSoftplusAndSigmoid($0).sigmoid }, { 1 / (1 + Foundation.exp(-$0)) })
        let spTiny = worst(-80, -10, relative: true, { scanSoftplus($0) }, { Foundation.log1p(Foundation.exp($0)) })
        print("scanSoftplusAndSigmoid: sigmoid max rel err \(sg2); softplus on [-80, -10] \(spTiny)")
        XCTAssertLessThan(sg2, 5e-7); XCTAssertLessThan(spTiny, 5e-7)
        print("scanExp \(e), scanLog \(l), scanSoftplus \(sp), scanSigmoid \(sg) (max rel err)")
        XCTAssertLessThan(e, 2e-7); XCTAssertLessThan(l, 2e-7)
        XCTAssertLessThan(sp, 5e-7); XCTAssertLessThan(sg, 5e-7)
    }

    func testSinCosHalfPi() {
        for (range, bound) in [(1.0, 1.5e-7), (64.0, 1.5e-7), (4096.0, 5e-6)] {
            let s = worst(-range, range, relative: false, { scanSinCosHalfPi($0).sin }, { Foundation.sin($0 * Double.pi / 2) })
            let c = worst(-range, range, relative: false, { scanSinCosHalfPi($0).cos }, { Foundation.cos($0 * Double.pi / 2) })
            print("scanSinCosHalfPi max abs err on [-\(range), \(range)]: sin \(s), cos \(c)")
            XCTAssertLessThan(max(s, c), bound)
        }
    }

    /// The lane-sum helper against plain sums, including a tail.
    func testAddLaneSums() {
        var r = ScanRNG(seed: 3)
        var v = [V8](repeating: V8(), count: 13)
        for k in 0..<13 { for l in 0..<8 { v[k][l] = Float(r.uniform(-1, 1)) } }
        var dst = [Float](repeating: 1, count: 13)
        v.withUnsafeBufferPointer { addLaneSums($0.baseAddress!, 13, to: &dst) }
        for k in 0..<13 { XCTAssertEqual(dst[k], 1 + v[k].sum(), accuracy: 1e-6) }
    }
}
