import AudioIO
import Foundation
import XCTest
@testable import Evaluation

final class InceptionScoreTests: XCTestCase {
    func testConstantPredictionsScoreOne() {
        let rows = [[Double]](repeating: [0.2, 0.3, 0.5], count: 20)
        XCTAssertEqual(InceptionScores.inceptionScore(rows), 1, accuracy: 1e-12)
        XCTAssertEqual(InceptionScores.modifiedInceptionScore(rows), 1, accuracy: 1e-12)
    }

    func testConfidentUniformPredictionsScoreK() {
        for k in [2, 10] {
            let rows = (0..<(5 * k)).map { i in (0..<k).map { $0 == i % k ? 1.0 : 0.0 } }
            XCTAssertEqual(InceptionScores.inceptionScore(rows), Double(k), accuracy: 1e-9, "K = \(k)")
            // Confident but unbalanced (all in one class) is 1 again.
            let one = [[Double]](repeating: (0..<k).map { $0 == 0 ? 1.0 : 0.0 }, count: 10)
            XCTAssertEqual(InceptionScores.inceptionScore(one), 1, accuracy: 1e-12)
        }
    }

    func testModifiedISHandComputed() {
        // Pairs: KL(p1‖p1) = KL(p2‖p2) = 0; KL(p1‖p2) = KL(p2‖p1) = ½ ln 3 → E = ¼ ln 3.
        let rows = [[0.75, 0.25], [0.25, 0.75]]
        XCTAssertEqual(InceptionScores.modifiedInceptionScore(rows), pow(3, 0.25), accuracy: 1e-12)
        // IS here: marginal (½, ½), KL = ln 2 − H(¾, ¼).
        let h = -(0.75 * log(0.75) + 0.25 * log(0.25))
        XCTAssertEqual(InceptionScores.inceptionScore(rows), exp(log(2) - h), accuracy: 1e-12)
    }

    func testModifiedISEqualsAllPairsAverage() {
        var rng = SplitMix64(seed: 3)
        let rows: [[Double]] = (0..<30).map { _ in
            let e = (0..<5).map { _ in exp(2 * rng.normal()) }
            let s = e.reduce(0, +)
            return e.map { $0 / s }
        }
        var total = 0.0
        for p in rows { for q in rows { total += InceptionScores.kl(p, q) } }
        XCTAssertEqual(InceptionScores.modifiedInceptionScore(rows), exp(total / Double(rows.count * rows.count)), accuracy: 1e-9)
    }

    func testAMScoreHandComputed() {
        let reference = [[1.0, 0.0], [0.0, 1.0]]  // marginal (½, ½)
        let generated = [[0.75, 0.25], [0.75, 0.25]]  // marginal (¾, ¼)
        let kl = 0.5 * log(0.5 / 0.75) + 0.5 * log(0.5 / 0.25)
        let h = -(0.75 * log(0.75) + 0.25 * log(0.25))
        XCTAssertEqual(InceptionScores.amScore(reference: reference, generated: generated), kl + h, accuracy: 1e-12)
        // Confident clips with the reference's marginal score 0.
        XCTAssertEqual(InceptionScores.amScore(reference: reference, generated: [[0, 1], [1, 0]]), 0, accuracy: 1e-12)
    }

    func testSoftmaxIsStable() {
        let p = InceptionScores.softmax([1000, 1000, -1000])
        XCTAssertEqual(p[0], 0.5, accuracy: 1e-12)
        XCTAssertEqual(p[2], 0, accuracy: 1e-12)
        // Temperature: softmax([2, 0]) at T = 2 is softmax([1, 0]).
        let t = InceptionScores.softmax([2, 0], temperature: 2)
        XCTAssertEqual(t[0], exp(1) / (exp(1) + 1), accuracy: 1e-12)
    }
}
