import XCTest
@testable import AudioIO

final class RoundTripTests: XCTestCase {
    /// Every signal × format × rate × channel count goes through libsndfile and back.
    func testRoundTripsThroughLibsndfile() throws {
        let dir = try TestSignals.scratch()
        defer { try? FileManager.default.removeItem(at: dir) }
        for rate in [8000, 16000, 44100] {
            for channels in [1, 2] {
                let signals: [(String, [Float])] = [
                    ("sine", TestSignals.sine(441, rate: rate, seconds: 0.25)),
                    ("chirp", TestSignals.chirp(50, Double(rate) / 3, rate: rate, seconds: 0.25)),
                    ("noise", TestSignals.noise(count: rate / 4, seed: UInt64(rate + channels))),
                ]
                for (name, mono) in signals {
                    let chans = (0..<channels).map { c in mono.map { $0 * (c == 0 ? 1 : -0.5) } }
                    let audio = Audio(samples: TestSignals.interleave(chans), sampleRate: rate, channels: channels)
                    for (format, ext, tolerance) in [(AudioFileFormat.wav16, "wav", 1.0 / 32768 + 1e-6),
                                                     (.wavFloat, "wav", 0.0), (.flac16, "flac", 1.0 / 32768 + 1e-6)] {
                        let url = dir.appendingPathComponent("\(name)-\(rate)-\(channels)-\(format.rawValue).\(ext)")
                        try AudioFile.write(audio, to: url.path, format: format)
                        let info = try AudioFile.info(url.path)
                        XCTAssertEqual(info.sampleRate, rate)
                        XCTAssertEqual(info.channels, channels)
                        XCTAssertEqual(info.frames, mono.count)
                        let back = try AudioFile.read(url.path)
                        XCTAssertEqual(back.samples.count, audio.samples.count, url.lastPathComponent)
                        let err = zip(back.samples, audio.samples).map { abs(Double($0) - Double($1)) }.max() ?? 0
                        XCTAssertLessThanOrEqual(err, tolerance, "\(url.lastPathComponent): max error \(err)")
                    }
                }
            }
        }
    }

    func testOggVorbisKeepsFrequencyAndLevel() throws {
        let dir = try TestSignals.scratch()
        defer { try? FileManager.default.removeItem(at: dir) }
        let x = TestSignals.sine(1000, rate: 44100, seconds: 1)
        let url = dir.appendingPathComponent("tone.ogg")
        try AudioFile.write(Audio(samples: TestSignals.interleave([x, x]), sampleRate: 44100, channels: 2), to: url.path)
        let info = try AudioFile.info(url.path)
        XCTAssertEqual(info.shortFormat, "OGG/VORBIS")
        let back = try AudioFile.read(url.path).mixedToMono()
        XCTAssertEqual(back.frames, x.count)
        XCTAssertEqual(TestSignals.frequency(back.samples, rate: 44100), 1000, accuracy: 1)
        XCTAssertEqual(TestSignals.rms(back.samples[4410..<39690]), 0.5 / 2.0.squareRoot(), accuracy: 0.01)
    }

    func testMixdownAveragesChannels() {
        let a = Audio(samples: [1, 0, 0.5, -0.5, -1, 1], sampleRate: 8000, channels: 2).mixedToMono()
        XCTAssertEqual(a.samples, [0.5, 0, 0])
        XCTAssertEqual(a.channels, 1)
    }

    func testPCMWriteClipsInsteadOfWrapping() throws {
        let dir = try TestSignals.scratch()
        defer { try? FileManager.default.removeItem(at: dir) }
        let url = dir.appendingPathComponent("loud.wav")
        try AudioFile.write(Audio(samples: [2, -3, 0.5], sampleRate: 16000), to: url.path)
        let back = try AudioFile.read(url.path).samples
        XCTAssertGreaterThan(back[0], 0.99)
        XCTAssertLessThan(back[1], -0.99)
        XCTAssertEqual(back[2], 0.5, accuracy: 1e-4)
    }

    /// 1 kHz at 44.1 kHz → 16 kHz: frequency within 0.5 Hz, level within 0.05 dB, length exact.
    func testResamplingKeepsFrequencyAndLevel() throws {
        let x = TestSignals.sine(1000, rate: 44100, seconds: 2, amplitude: 0.5)
        let y = try Resampler.resample(x, from: 44100, to: 16000)
        XCTAssertEqual(y.count, 32000)
        XCTAssertEqual(TestSignals.frequency(Array(y[1000..<31000]), rate: 16000), 1000, accuracy: 0.5)
        let levelDB = 20 * log10(TestSignals.rms(y[1000..<31000]) / TestSignals.rms(x[2756..<85000]))
        XCTAssertEqual(levelDB, 0, accuracy: 0.05)
        // Away from the edges the output matches the ideal sampled sine closely (≈ -80 dB).
        let ideal = TestSignals.sine(1000, rate: 16000, seconds: 2, amplitude: 0.5)
        let err = zip(y[1000..<31000], ideal[1000..<31000]).map { abs($0 - $1) }.max()!
        XCTAssertLessThan(err, 1e-3)
        // Upsampling and the identity.
        XCTAssertEqual(try Resampler.resample(x, from: 44100, to: 44100), x)
        XCTAssertEqual(try Resampler.resample(Array(y.prefix(1600)), from: 16000, to: 48000).count, 4800)
    }

    func testReadMonoResamplesStereoFile() throws {
        let dir = try TestSignals.scratch()
        defer { try? FileManager.default.removeItem(at: dir) }
        let x = TestSignals.sine(1000, rate: 44100, seconds: 1)
        let url = dir.appendingPathComponent("stereo.wav")
        try AudioFile.write(Audio(samples: TestSignals.interleave([x, x]), sampleRate: 44100, channels: 2), to: url.path)
        let y = try AudioFile.readMono(url.path, sampleRate: 16000)
        XCTAssertEqual(y.count, 16000)
        XCTAssertEqual(TestSignals.frequency(Array(y[500..<15500]), rate: 16000), 1000, accuracy: 0.5)
    }
}
