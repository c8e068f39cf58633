import CSampleRate

/// Sample-rate conversion through libsamplerate (Secret Rabbit Code).
///
/// The default converter is `SRC_SINC_MEDIUM_QUALITY`: a band-limited sinc interpolator with
/// about 97 dB signal-to-noise and a 90 % pass band. Our targets are quantised to 8 bits
/// (μ-law: roughly 38–48 dB SNR), so the medium converter's error sits some 50 dB below the
/// quantisation floor, while it runs several times faster than `SRC_SINC_BEST_QUALITY`.
/// `.best` is there for users who keep 16-bit output; `.fastest` for quick previews.
public enum Resampler {
    public enum Quality: Sendable {
        case best, medium, fastest
        public static let `default` = Quality.medium

        var converter: Int32 {
            switch self {
            case .best: return Int32(SRC_SINC_BEST_QUALITY)
            case .medium: return Int32(SRC_SINC_MEDIUM_QUALITY)
            case .fastest: return Int32(SRC_SINC_FASTEST)
            }
        }
    }

    /// Resamples mono audio. The output has round(count · to / from) samples.
    public static func resample(_ input: [Float], from: Int, to: Int, quality: Quality = .default) throws -> [Float] {
        guard from > 0, to > 0 else {
            throw AudioIOError(.invalidArgument, path: "", reason: "sample rates must be positive (got \(from) → \(to))", fix: "")
        }
        if from == to || input.isEmpty { return input }
        let ratio = Double(to) / Double(from)
        let outCount = Int((Double(input.count) * ratio).rounded())
        // libsamplerate may hold back a few samples at the end; give it room, then trim/pad.
        var output = [Float](repeating: 0, count: outCount + 64)
        var generated = 0
        let rc: Int32 = input.withUnsafeBufferPointer { inp in
            output.withUnsafeMutableBufferPointer { out in
                var data = SRC_DATA()
                data.data_in = inp.baseAddress
                data.input_frames = Int(input.count)
                data.data_out = out.baseAddress
                data.output_frames = Int(out.count)
                data.src_ratio = ratio
                data.end_of_input = 1
                let rc = src_simple(&data, quality.converter, 1)
                generated = Int(data.output_frames_gen)
                return rc
            }
        }
        guard rc == 0 else {
            throw AudioIOError(.invalidArgument, path: "", reason: "resampling \(from) → \(to) Hz failed (libsamplerate: \(String(cString: src_strerror(rc))))", fix: "")
        }
        if generated < outCount {
            output.replaceSubrange(generated..<output.count, with: repeatElement(0, count: outCount - generated))
        } else {
            output.removeSubrange(outCount..<output.count)
        }
        return output
    }
}
