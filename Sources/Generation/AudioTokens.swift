import AudioIO
import Models

/// Between audio samples and the model's tokens, with a checkpoint's audio settings.
public struct AudioTokens: Sendable {
    public let settings: AudioSettings
    public let quantization: Quantization

    public init(_ settings: AudioSettings) throws {
        guard let q = Quantization(rawValue: settings.quantization) else {
            throw AudioIOError(.invalidArgument, path: "", reason: "unknown quantization '\(settings.quantization)'", fix: "use mulaw or linear")
        }
        self.settings = settings
        quantization = q
    }

    /// Samples in [-1, 1] → classes, scaled per clip as in training.
    public func encode(_ samples: [Float]) -> [UInt8] {
        quantization.encode(settings.normalization == "minmax" ? Quantization.minMaxScaled(samples) : samples)
    }

    public func decode(_ tokens: [UInt8]) -> [Float] { quantization.decode(tokens) }
}
