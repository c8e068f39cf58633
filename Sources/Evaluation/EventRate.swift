import Foundation

/// Whether clips hold a sound event, the check that catches a model sampling silence or
/// steady noise (which FID on few clips can miss): the clip's mean (DC) is removed, it is
/// framed in 50 ms frames (hop 50 ms), each frame's level is 20·log10(max(RMS, 1e-10)) dB, and
/// the clip has an event when its loudest frame is at least 25 dB above its median frame.
/// Digital silence and stationary noise have none; a word or a note over silence or a low
/// noise floor has one. DC is no sound: a model trained on per-clip min-max scaled audio
/// samples its silence at a per-clip offset, which would otherwise mask every event.
public enum EventRate {
    public static let frameSeconds = 0.05
    public static let thresholdDB = 25.0
    public static let rmsFloor = 1e-10

    /// Frame levels in dB of `x` at `sampleRate`: the whole frames of 50 ms (one frame of all
    /// the samples if the clip is shorter).
    public static func frameLevels(_ x: ArraySlice<Float>, sampleRate: Int) -> [Double] {
        let frame = max(1, Int((frameSeconds * Double(sampleRate)).rounded()))
        let n = x.count
        guard n > 0 else { return [] }
        let starts = n < frame ? [0] : Array(stride(from: 0, through: n - frame, by: frame))
        let mean = x.reduce(0.0) { $0 + Double($1) } / Double(n)
        return starts.map { s in
            let end = min(n, s + frame)
            var sum = 0.0
            for i in (x.startIndex + s)..<(x.startIndex + end) { sum += (Double(x[i]) - mean) * (Double(x[i]) - mean) }
            return 20 * log10(max((sum / Double(end - s)).squareRoot(), rmsFloor))
        }
    }

    /// The loudest frame's level above the median frame's, dB (0 for an empty clip).
    public static func peakAboveMedian(_ x: ArraySlice<Float>, sampleRate: Int) -> Double {
        let levels = frameLevels(x, sampleRate: sampleRate).sorted()
        guard let top = levels.last else { return 0 }
        let n = levels.count
        let median = (levels[(n - 1) / 2] + levels[n / 2]) / 2
        return top - median
    }

    public static func hasEvent(_ x: ArraySlice<Float>, sampleRate: Int) -> Bool {
        peakAboveMedian(x, sampleRate: sampleRate) >= thresholdDB
    }

    /// Per clip of `set`: whether it holds an event.
    public static func events(_ set: ClipSet) -> [Bool] {
        (0..<set.count).map { i in hasEvent(set.samples[(i * set.length)..<((i + 1) * set.length)], sampleRate: set.sampleRate) }
    }

    /// The fraction of clips with an event (0 for an empty set).
    public static func rate(_ events: [Bool]) -> Double {
        events.isEmpty ? 0 : Double(events.filter { $0 }.count) / Double(events.count)
    }

    public static func rate(_ set: ClipSet) -> Double { rate(events(set)) }
}
