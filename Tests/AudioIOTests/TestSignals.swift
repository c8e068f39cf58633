import Foundation
@testable import AudioIO

/// Deterministic test signals and a scratch folder per test.
enum TestSignals {
    static func sine(_ frequency: Double, rate: Int, seconds: Double, amplitude: Double = 0.5) -> [Float] {
        (0..<Int(Double(rate) * seconds)).map { Float(amplitude * sin(2 * .pi * frequency * Double($0) / Double(rate))) }
    }

    /// Linear chirp from f0 to f1 Hz.
    static func chirp(_ f0: Double, _ f1: Double, rate: Int, seconds: Double, amplitude: Double = 0.5) -> [Float] {
        let n = Int(Double(rate) * seconds)
        return (0..<n).map { i in
            let t = Double(i) / Double(rate)
            return Float(amplitude * sin(2 * .pi * (f0 * t + (f1 - f0) * t * t / (2 * seconds))))
        }
    }

    static func noise(count: Int, seed: UInt64, amplitude: Float = 0.3) -> [Float] {
        var rng = SplitMix64(seed: seed)
        return (0..<count).map { _ in amplitude * (Float(rng.next() >> 40) / Float(1 << 24) * 2 - 1) }
    }

    /// Interleaves channels of equal length.
    static func interleave(_ channels: [[Float]]) -> [Float] {
        var out: [Float] = []
        out.reserveCapacity(channels.count * channels[0].count)
        for i in 0..<channels[0].count { for c in channels { out.append(c[i]) } }
        return out
    }

    static func rms(_ x: ArraySlice<Float>) -> Double {
        (x.reduce(0.0) { $0 + Double($1) * Double($1) } / Double(max(1, x.count))).squareRoot()
    }

    /// Frequency of a sinusoid from the positive-going zero crossings, interpolated.
    static func frequency(_ x: [Float], rate: Int) -> Double {
        var crossings: [Double] = []
        for i in 1..<x.count where x[i - 1] < 0 && x[i] >= 0 {
            crossings.append(Double(i - 1) + Double(-x[i - 1] / (x[i] - x[i - 1])))
        }
        guard crossings.count > 2 else { return 0 }
        return Double(crossings.count - 1) / ((crossings.last! - crossings.first!) / Double(rate))
    }

    static func scratch() throws -> URL {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("wm-audio-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        return dir
    }

    /// Writes a mono 16-bit WAV.
    static func writeWav(_ samples: [Float], rate: Int, to url: URL) throws {
        try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        try AudioFile.write(Audio(samples: samples, sampleRate: rate), to: url.path)
    }

    /// The first `bytes` bytes of a file, written elsewhere (a truncated copy).
    static func truncatedCopy(of url: URL, bytes: Int, to dest: URL) throws {
        try Data(try Data(contentsOf: url).prefix(bytes)).write(to: dest)
    }
}
