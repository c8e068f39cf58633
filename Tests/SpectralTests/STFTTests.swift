import Foundation
import Kernels
import Spectral
import XCTest

final class STFTTests: XCTestCase {
    let pool = ThreadPool(threads: 2)
    let sampleRate = 16000.0

    func sine(_ hz: Double, length: Int, amplitude: Double = 1) -> [Float] {
        (0..<length).map { Float(amplitude * sin(2 * Double.pi * hz * Double($0) / sampleRate)) }
    }

    func spectrogram(_ stft: STFT, _ x: [Float], scale: STFT.Scale = .power) -> [Float] {
        var out = [Float](repeating: .nan, count: stft.frameCount(length: x.count) * stft.bins)
        stft.spectrogram(signals: x, clips: 1, length: x.count, output: &out, scale: scale, pool: pool)
        return out
    }

    /// Frame f of x, reflect-padded and windowed, written independently of the library.
    func windowedFrame(_ x: [Float], _ f: Int, nFFT: Int, hop: Int) -> [Double] {
        let L = x.count
        return (0..<nFFT).map { i in
            var s = f * hop + i - nFFT / 2
            if s < 0 { s = -s }  // reflect about sample 0
            if s >= L { s = 2 * (L - 1) - s }  // reflect about sample L − 1
            let w = 0.5 - 0.5 * cos(2 * Double.pi * Double(i) / Double(nFFT))
            return w * Double(x[s])
        }
    }

    func testFrameCounts() {
        let cache = FFTPlanCache()
        XCTAssertEqual(STFT(cache: cache).frameCount(length: 16000), 126)
        XCTAssertEqual(STFT(center: false, cache: cache).frameCount(length: 16000), 122)
        XCTAssertEqual(STFT(nFFT: 400, hop: 160, cache: cache).frameCount(length: 16000), 101)
        XCTAssertEqual(STFT(cache: cache).bins, 257)
    }

    func testSinePeakBinAndAmplitude() {
        let stft = STFT(cache: FFTPlanCache())
        let bins = stft.bins
        // 1000 Hz is exactly bin 32 (31.25 Hz per bin); 1100 Hz lies at 35.2, peak bin 35.
        for (hz, peak) in [(1000.0, 32), (1100.0, 35), (4321.0, 138)] {
            let spec = spectrogram(stft, sine(hz, length: 16000))
            let frames = stft.frameCount(length: 16000)
            for f in 4..<(frames - 4) {  // frames wholly inside the clip
                let row = Array(spec[(f * bins)..<((f + 1) * bins)])
                XCTAssertEqual(row.indices.max { row[$0] < row[$1] }, peak, "\(hz) Hz frame \(f)")
            }
        }
        // A bin-centred unit sine under a periodic Hann window of N: |X| = N/4 exactly.
        let mag = spectrogram(stft, sine(1000, length: 16000), scale: .magnitude)
        XCTAssertEqual(mag[60 * bins + 32], 128, accuracy: 128 * 1e-4)
        XCTAssertEqual(mag[60 * bins + 31], 64, accuracy: 128 * 1e-4)  // the window's sidelobe
        XCTAssertEqual(mag[60 * bins + 40], 0, accuracy: 128 * 1e-4)
    }

    /// Parseval for the one-sided spectrum: Σ_k c_k |X_k|² = nFFT · Σ_i (w_i x_i)², with c = 1
    /// for DC and Nyquist and 2 otherwise; every frame including the reflected edges.
    func testParseval() {
        let stft = STFT(cache: FFTPlanCache())
        let (nFFT, bins) = (stft.nFFT, stft.bins)
        for x in [sine(440, length: 4000, amplitude: 0.5), randomFloats(4000, seed: 11)] {
            let spec = spectrogram(stft, x)
            var worst = 0.0
            for f in 0..<stft.frameCount(length: x.count) {
                let timeEnergy = Double(nFFT) * windowedFrame(x, f, nFFT: nFFT, hop: stft.hop).reduce(0) { $0 + $1 * $1 }
                var freqEnergy = 0.0
                for k in 0..<bins { freqEnergy += (k == 0 || k == bins - 1 ? 1 : 2) * Double(spec[f * bins + k]) }
                worst = max(worst, abs(freqEnergy - timeEnergy) / timeEnergy)
            }
            print("Parseval worst relative error: \(worst)")
            XCTAssertLessThanOrEqual(worst, 1e-5)
        }
    }

    /// Frames (edges included) against a direct DFT in double precision; error measured as
    /// max_k |P_k − P_ref,k| / max_k P_ref,k per frame.
    func testMatchesNaiveDFT() {
        let stft = STFT(cache: FFTPlanCache())
        let (nFFT, bins) = (stft.nFFT, stft.bins)
        let x = randomFloats(3001, seed: 12)  // not a multiple of the hop
        let frames = stft.frameCount(length: x.count)
        let spec = spectrogram(stft, x)
        var worst = 0.0
        for f in [0, 1, 2, frames / 2, frames - 2, frames - 1] {
            let frame = windowedFrame(x, f, nFFT: nFFT, hop: stft.hop)
            var err = 0.0, scale = 0.0
            for k in 0..<bins {
                var re = 0.0, im = 0.0
                for i in 0..<nFFT {
                    let a = -2 * Double.pi * Double(k * i % nFFT) / Double(nFFT)
                    re += frame[i] * cos(a); im += frame[i] * sin(a)
                }
                let p = re * re + im * im
                err = max(err, abs(Double(spec[f * bins + k]) - p))
                scale = max(scale, p)
            }
            worst = max(worst, err / scale)
        }
        print("STFT vs naive DFT: worst max|ΔP|/max P = \(worst)")
        XCTAssertLessThanOrEqual(worst, 1e-4)
    }

    func testBatchedThreadedMatchesOneByOne() {
        let stft = STFT(nFFT: 256, hop: 64, cache: FFTPlanCache())
        let (clips, length) = (5, 2000)
        let x = randomFloats(clips * length, seed: 13)
        let per = stft.frameCount(length: length) * stft.bins
        var batched = [Float](repeating: .nan, count: clips * per)
        stft.spectrogram(signals: x, clips: clips, length: length, output: &batched, pool: ThreadPool(threads: 3))
        for c in 0..<clips {
            let one = spectrogram(stft, Array(x[(c * length)..<((c + 1) * length)]))
            XCTAssertEqual(Array(batched[(c * per)..<((c + 1) * per)]), one, "clip \(c)")
        }
    }

    func testUncenteredFramesStartAtHopMultiples() {
        let stft = STFT(nFFT: 64, hop: 16, center: false, cache: FFTPlanCache())
        let x = randomFloats(200, seed: 14)
        let spec = spectrogram(stft, x)
        // DC bin of frame f = Σ_i w_i x[f·hop + i].
        let w = Window.hann(64)
        for f in 0..<stft.frameCount(length: 200) {
            let dc = (0..<64).reduce(0.0) { $0 + Double(w[$1]) * Double(x[f * 16 + $1]) }
            XCTAssertEqual(Double(spec[f * stft.bins]), dc * dc, accuracy: 1e-4 * max(1, dc * dc))
        }
    }
}
