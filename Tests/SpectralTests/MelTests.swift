import Foundation
import Kernels
import Spectral
import XCTest

final class MelTests: XCTestCase {
    let pool = ThreadPool(threads: 2)

    func testMelScale() {
        XCTAssertEqual(MelFilterbank.hzToMel(0), 0)
        XCTAssertEqual(MelFilterbank.hzToMel(700), 2595 * log10(2), accuracy: 1e-9)
        for hz in [0.0, 55, 1000, 7999] {
            XCTAssertEqual(MelFilterbank.melToHz(MelFilterbank.hzToMel(hz)), hz, accuracy: 1e-9)
        }
    }

    func testShapeAndEdges() {
        let fb = MelFilterbank()
        XCTAssertEqual(fb.bins, 257)
        XCTAssertEqual(fb.weights.count, 64 * 257)
        XCTAssertEqual(fb.bands.count, 64)
        XCTAssertEqual(fb.edges.count, 66)
        XCTAssertEqual(fb.edges.first!, 0, accuracy: 1e-9)
        XCTAssertEqual(fb.edges.last!, 8000, accuracy: 1e-6)
        // Edges are evenly spaced in mel.
        let mels = fb.edges.map(MelFilterbank.hzToMel)
        for i in 1..<mels.count { XCTAssertEqual(mels[i] - mels[i - 1], mels[1] - mels[0], accuracy: 1e-6) }
        XCTAssertTrue(fb.weights.allSatisfy { $0 >= 0 && $0 <= 1 })
    }

    /// Each filter peaks (response 1) at its centre frequency, and its largest weight is on
    /// one of the two bins around the centre.
    func testFilterPeaksAtCentre() {
        let fb = MelFilterbank()
        let binHz = 16000.0 / 512
        for m in 0..<fb.nMels {
            let centre = fb.edges[m + 1]
            XCTAssertEqual(fb.response(filter: m, frequency: centre), 1, accuracy: 1e-12)
            XCTAssertEqual(fb.response(filter: m, frequency: fb.edges[m]), 0, accuracy: 1e-12)
            XCTAssertEqual(fb.response(filter: m, frequency: fb.edges[m + 2]), 0, accuracy: 1e-12)
            let row = fb.weights[(m * fb.bins)..<((m + 1) * fb.bins)]
            let argmax = row.indices.max { row[$0] < row[$1] }! - m * fb.bins
            XCTAssertTrue([Int((centre / binHz).rounded(.down)), Int((centre / binHz).rounded(.up))].contains(argmax),
                          "filter \(m): peak bin \(argmax), centre \(centre) Hz")
            XCTAssertFalse(fb.bands[m].isEmpty, "filter \(m) has no bins")
            // Weights outside the band are zero.
            for k in 0..<fb.bins where !fb.bands[m].contains(k) { XCTAssertEqual(row[m * fb.bins + k], 0) }
        }
    }

    /// Unnormalised triangles: overlapping neighbours sum to 1 between the first and last
    /// centre, and each filter's area (Σ weights · bin width) is half its base.
    func testTriangularSums() {
        let fb = MelFilterbank()
        let binHz = 16000.0 / 512
        for k in 0..<fb.bins {
            let f = Double(k) * binHz
            guard f >= fb.edges[1], f <= fb.edges[fb.nMels] else { continue }
            let sum = (0..<fb.nMels).reduce(0.0) { $0 + Double(fb.weights[$1 * fb.bins + k]) }
            XCTAssertEqual(sum, 1, accuracy: 1e-5, "bin \(k)")
        }
        var checked = 0
        for m in 0..<fb.nMels {
            // Only filters resolved by the bins: at least 3 bins on each side of the peak.
            let (left, right) = (fb.edges[m + 1] - fb.edges[m], fb.edges[m + 2] - fb.edges[m + 1])
            guard min(left, right) >= 3 * binHz else { continue }
            let area = (0..<fb.bins).reduce(0.0) { $0 + Double(fb.weights[m * fb.bins + $1]) } * binHz
            XCTAssertEqual(area, (left + right) / 2, accuracy: 0.02 * (left + right) / 2, "filter \(m)")
            checked += 1
        }
        XCTAssertGreaterThan(checked, 30)
    }

    func testApplyMatchesDenseProduct() {
        let fb = MelFilterbank(sampleRate: 8000, nFFT: 256, nMels: 20, fMin: 50, fMax: 3500)
        let frames = 7
        let spec = randomFloats(frames * fb.bins, seed: 21).map { $0 * $0 }
        var mel = [Float](repeating: .nan, count: frames * fb.nMels)
        fb.apply(spectrogram: spec, frames: frames, output: &mel)
        for t in 0..<frames { for m in 0..<fb.nMels {
            let ref = (0..<fb.bins).reduce(0.0) { $0 + Double(spec[t * fb.bins + $1]) * Double(fb.weights[m * fb.bins + $1]) }
            XCTAssertEqual(Double(mel[t * fb.nMels + m]), ref, accuracy: 1e-5 * max(1, ref))
        } }
        XCTAssertEqual(fb.edges.first!, 50, accuracy: 1e-9)
        XCTAssertEqual(fb.edges.last!, 3500, accuracy: 1e-6)
    }

    func testLogMelOfSilenceIsLogFloor() {
        let logMel = LogMel(cache: FFTPlanCache())
        let (clips, length) = (3, 16000)
        let silence = [Float](repeating: 0, count: clips * length)
        let frames = logMel.frameCount(length: length)
        XCTAssertEqual(frames, 126)
        var out = [Float](repeating: .nan, count: clips * frames * logMel.melCount)
        logMel.features(signals: silence, clips: clips, length: length, output: &out, pool: pool)
        let expected = log(Float(1e-6))
        XCTAssertEqual(Double(expected), log(1e-6), accuracy: 1e-5)
        XCTAssertTrue(out.allSatisfy { $0 == expected }, "silence → log(1e-6) = \(expected)")
    }

    /// log-mel = log(filterbank(power STFT) + floor), bit for bit, for several clips at once.
    func testLogMelComposition() {
        let cache = FFTPlanCache()
        let logMel = LogMel(cache: cache)
        let (clips, length) = (4, 16000)
        let x = randomFloats(clips * length, seed: 22)
        let frames = logMel.frameCount(length: length), nMels = logMel.melCount
        var out = [Float](repeating: .nan, count: clips * frames * nMels)
        logMel.features(signals: x, clips: clips, length: length, output: &out, pool: ThreadPool(threads: 3))
        let stft = STFT(cache: cache), fb = MelFilterbank()
        var power = [Float](repeating: 0, count: clips * frames * stft.bins)
        stft.spectrogram(signals: x, clips: clips, length: length, output: &power, pool: pool)
        for c in 0..<clips {
            var mel = [Float](repeating: 0, count: frames * nMels)
            power.withUnsafeBufferPointer { fb.apply(spectrogram: $0.baseAddress! + c * frames * stft.bins, frames: frames, output: &mel) }
            XCTAssertEqual(Array(out[(c * frames * nMels)..<((c + 1) * frames * nMels)]), mel.map { log($0 + 1e-6) }, "clip \(c)")
        }
    }

    /// A 1 kHz tone lights up the filter centred nearest 1 kHz.
    func testLogMelOfToneLightsNearestFilter() {
        let logMel = LogMel(cache: FFTPlanCache())
        let x = (0..<16000).map { Float(sin(2 * Double.pi * 1000 * Double($0) / 16000)) }
        let frames = logMel.frameCount(length: 16000), nMels = logMel.melCount
        var out = [Float](repeating: .nan, count: frames * nMels)
        logMel.features(signals: x, clips: 1, length: 16000, output: &out, pool: pool)
        let centres = Array(logMel.filterbank.centerFrequencies)
        let nearest = centres.indices.min { abs(centres[$0] - 1000) < abs(centres[$1] - 1000) }!
        let row = out[(60 * nMels)..<(61 * nMels)]
        let loudest = row.indices.max { row[$0] < row[$1] }! - 60 * nMels
        XCTAssertLessThanOrEqual(abs(loudest - nearest), 1, "loudest \(loudest), nearest centre \(nearest)")
    }
}
