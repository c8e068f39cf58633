import Foundation
import XCTest
@testable import AudioIO

final class QuantizationTests: XCTestCase {
    /// Peak scaling keeps zero at the silence class; min-max scaling moves it by the clip's
    /// asymmetry (the offset a model trained on min-max clips generates its silence at).
    func testPeakScalingKeepsSilenceAtTheSilenceClass() {
        let clip: [Float] = [0, 0, 0.4, -0.2, 0.1, 0, 0]
        let peak = Normalization.peak.apply(clip)
        XCTAssertEqual(peak, [0, 0, 1, -0.5, 0.25, 0, 0])
        XCTAssertEqual(Quantization.mulaw.encode(peak[0]), 128)
        let minmax = Normalization.minmax.apply(clip)
        XCTAssertEqual(minmax[0], -1.0 / 3, accuracy: 1e-5)     // (0 + 0.2) / 0.6 · 2 − 1
        XCTAssertEqual(Quantization.mulaw.encode(minmax[0]), 25)  // a third of the way down: 103 classes from silence
        XCTAssertEqual(Normalization.peak.apply([0, 0]), [0, 0], "a silent clip stays silent")
        XCTAssertEqual(Normalization.none.apply(clip), clip)
    }

    func testMuLawRoundTripErrorBound() {
        // One class spans Δy = 1/128 and decoding returns its centre, so |Δy| ≤ 1/256; through
        // the expander dx/dy = ln(256)·(1 + 255|x|)/255, evaluated with a margin for the far end.
        var worstRatio = 0.0
        for i in 0...20000 {
            let x = Float(i) / 10000 - 1
            let back = Quantization.mulaw.decode(Quantization.mulaw.encode(x))
            let bound = Double(log(256.0) * (1 + 255 * Double(abs(x))) / 255 / 256) * 1.05 + 1e-6
            let err = Double(abs(back - x))
            worstRatio = max(worstRatio, err / bound)
            XCTAssertLessThanOrEqual(err, bound, "x = \(x)")
        }
        print("mu-law round trip: worst error / bound = \(worstRatio)")
        // Small signals are resolved much more finely than by linear 8-bit.
        XCTAssertLessThan(abs(Quantization.mulaw.decode(Quantization.mulaw.encode(0.001)) - 0.001), 0.0005)
    }

    func testLinearRoundTripErrorBound() {
        for i in 0...20000 {
            let x = Float(i) / 10000 - 1
            XCTAssertLessThanOrEqual(abs(Quantization.linear.decode(Quantization.linear.encode(x)) - x), 1.01 / 256 + 1e-5) // classes are 2/255.99 wide
        }
    }

    func testClassesAreStableAndCoverTheRange() {
        for q in [Quantization.mulaw, .linear] {
            // decode → encode is the identity on every class.
            for c in 0...255 { XCTAssertEqual(q.encode(q.decode(UInt8(c))), UInt8(c), "\(q) class \(c)") }
            XCTAssertEqual(q.encode(-1), 0)
            XCTAssertEqual(q.encode(1), 255)
            XCTAssertEqual(q.encode(5), 255) // clipped
            XCTAssertEqual(q.encode(0), 128)
            XCTAssertEqual(q.decode(128), 0, accuracy: q == .mulaw ? 1e-4 : 1.0 / 256 + 1e-6)
        }
    }

    func testMinMaxScaling() {
        let y = Quantization.minMaxScaled([0.1, 0.3, 0.2])
        XCTAssertEqual(y[0], -1, accuracy: 1e-5)
        XCTAssertEqual(y[1], 1, accuracy: 1e-4)
        XCTAssertEqual(y[2], 0, accuracy: 1e-4)
    }
}
