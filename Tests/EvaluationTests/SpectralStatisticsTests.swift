import AudioIO
import Foundation
import Kernels
import Spectral
import XCTest
@testable import Evaluation

final class SpectralStatisticsTests: XCTestCase {
    func testNoiseIsFlatAndToneIsNot() {
        var rng = SplitMix64(seed: 5)
        let n = 16000
        let noise = (0..<n).map { _ in Float(0.1 * rng.normal()) }
        let tone = (0..<n).map { Float(0.5 * sin(2 * Double.pi * 1000 * Double($0) / 16000)) }
        // A word in silence: the tone in the middle 0.3 s only.
        let burst = (0..<n).map { (6000..<10800).contains($0) ? tone[$0] : 0 }
        let set = ClipSet(source: "synthetic", sampleRate: 16000, length: n, samples: noise + tone + burst + [Float](repeating: 0, count: n),
                          names: ["noise", "tone", "burst", "silence"])
        let v = SpectralStatistics(cache: FFTPlanCache()).compute(set, pool: ThreadPool(threads: 1))
        // White Gaussian noise: E[geometric / arithmetic mean] of exponential powers ≈ e^−γ ≈ 0.56.
        XCTAssertEqual(v.flatness[0], 0.56, accuracy: 0.05)
        XCTAssertLessThan(v.flatness[1], 0.01)
        XCTAssertLessThan(v.flatness[2], 0.05, "silent frames must not count as flat")
        XCTAssertEqual(v.flatness[3], 0)
        XCTAssertEqual(v.centroid[0], 4000, accuracy: 150)
        XCTAssertEqual(v.centroid[1], 1000, accuracy: 40)
        XCTAssertEqual(v.centroid[2], 1000, accuracy: 40)
        XCTAssertEqual(v.centroid[3], 0)
    }

    func testWassersteinAndKS() {
        XCTAssertEqual(DistributionDistance.wasserstein1([0, 1, 2], [0, 1, 2]), 0, accuracy: 1e-12)
        XCTAssertEqual(DistributionDistance.wasserstein1([0], [1]), 1, accuracy: 1e-12)
        XCTAssertEqual(DistributionDistance.wasserstein1([0, 1, 3], [5, 6, 8]), 5, accuracy: 1e-12)
        // Unequal sizes, one set entirely below the other: W1 = mean(b) − mean(a) = 7 − 4/3.
        XCTAssertEqual(DistributionDistance.wasserstein1([0, 1, 3], [5, 6, 8, 9]), 17.0 / 3, accuracy: 1e-12)
        // Overlapping: ∫|F_a − F_b| = ½·1 + ⅙·1 + ⅓·2 = 4/3 (as scipy.stats.wasserstein_distance).
        XCTAssertEqual(DistributionDistance.wasserstein1([0, 2], [1, 1, 4]), 4.0 / 3, accuracy: 1e-12)
        XCTAssertEqual(DistributionDistance.kolmogorovSmirnov([0, 1, 2], [0, 1, 2]), 0, accuracy: 1e-12)
        XCTAssertEqual(DistributionDistance.kolmogorovSmirnov([0, 1], [5, 6]), 1, accuracy: 1e-12)
        XCTAssertEqual(DistributionDistance.kolmogorovSmirnov([1, 2, 3, 4], [3, 4, 5, 6]), 0.5, accuracy: 1e-12)
    }
}
