import AudioIO
import Engine
import Foundation
import Spectral
import XCTest
@testable import Evaluation

final class EvaluatorTests: XCTestCase {
    /// White noise scored against the bundled digits is far from them, while one half of the
    /// digits against the other (the ceiling) is close.
    func testWhiteNoiseScoresMuchWorseThanReferenceAgainstItself() throws {
        let backend = CPUBackend(threads: 2), cache = FFTPlanCache()
        let (model, _) = try DigitClassifier.load(bundledClassifier, backend: backend, cache: cache)
        let evaluator = Evaluator(classifier: model, cache: cache, pool: backend.pool)
        let reference = try evaluator.analyze(try ClipSet.load(folder: bundledDigits))
        var rng = SplitMix64(seed: 11)
        let n = 135
        let noise = ClipSet(source: "white noise", sampleRate: 16000, length: 16000,
                            samples: (0..<n).flatMap { i in let level = 0.02 + 0.3 * Double(i) / Double(n); return (0..<16000).map { _ in Float(level * rng.normal()) } },
                            names: (0..<n).map { "noise_\($0).wav" })
        let noiseA = try evaluator.analyze(noise)
        let (halfA, halfB) = try evaluator.halves(reference)
        XCTAssertEqual(halfA.set.count, 135)
        XCTAssertEqual(halfB.set.count, 135)
        let ceiling = evaluator.compare(halfA, reference: halfB)
        let scored = evaluator.compare(noiseA, reference: halfB)
        XCTAssertGreaterThan(scored.fid, 10 * ceiling.fid, "noise FID \(scored.fid) vs ceiling \(ceiling.fid)")
        XCTAssertGreaterThan(scored.melFrechetDistance, 10 * ceiling.melFrechetDistance)
        XCTAssertGreaterThan(scored.amScore, ceiling.amScore)
        XCTAssertLessThan(scored.inceptionScore, ceiling.inceptionScore)
        // Steady noise holds no sound event; the digits' halves are near the whole set's 0.819.
        XCTAssertEqual(scored.eventRate, 0)
        XCTAssertEqual(scored.referenceEventRate ?? -1, 0.819, accuracy: 0.06)
        XCTAssertEqual(ceiling.eventRate ?? -1, 0.819, accuracy: 0.06)
        XCTAssertGreaterThan(scored.flatnessWasserstein, 5 * ceiling.flatnessWasserstein)
        // Real speech: confident and spread over the ten digits.
        XCTAssertGreaterThan(ceiling.inceptionScore, 7)
        XCTAssertGreaterThan(ceiling.accuracy ?? 0, 0.9)
        XCTAssertNil(scored.accuracy)
        XCTAssertEqual(scored.labelShares.reduce(0, +), 1, accuracy: 1e-9)
        // Halves reuse the full analysis: same numbers as analysing the half on its own.
        let direct = try evaluator.analyze(reference.set.subset(reference.set.halfIndices().0))
        for (a, b) in zip(direct.embeddingFit.mean, halfA.embeddingFit.mean) { XCTAssertEqual(a, b, accuracy: 1e-4) }
        XCTAssertEqual(direct.spectral, halfA.spectral)
        // Too few clips for a stable FID is warned about, naming the threshold.
        let warnings = evaluator.sampleWarnings([noise.subset(Array(0..<20), source: "tiny"), noise])
        XCTAssertEqual(warnings.count, 1)
        XCTAssertTrue(warnings[0].contains("at least 128"), warnings[0])
        // A reference too small to halve is an error naming the set, not a crash.
        let three = try evaluator.analyze(noise.subset([0, 1, 2], source: "three clips"))
        XCTAssertThrowsError(try evaluator.halves(three)) { XCTAssertTrue("\($0)".contains("three clips"), "\($0)") }
    }
}
