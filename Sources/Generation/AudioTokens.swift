import AudioIO
import Models

/// Between audio samples and the model's tokens, with a checkpoint's audio settings.
public struct AudioTokens: Sendable {
    public let settings: AudioSettings
    public let quantization: Quantization

    public let normalization: Normalization

    public init(_ settings: AudioSettings) throws {
        guard let q = Quantization(rawValue: settings.quantization) else {
            throw AudioIOError(.invalidArgument, path: "", reason: "unknown quantization '\(settings.quantization)'", fix: "use mulaw or linear")
        }
        guard let n = Normalization(rawValue: settings.normalization) else {
            throw AudioIOError(.invalidArgument, path: "", reason: "unknown normalization '\(settings.normalization)'", fix: "use minmax, peak or none")
        }
        self.settings = settings
        quantization = q
        normalization = n
    }

    /// Samples in [-1, 1] → classes, scaled per clip as in training.
    public func encode(_ samples: [Float]) -> [UInt8] {
        quantization.encode(normalization.apply(samples))
    }

    public func decode(_ tokens: [UInt8]) -> [Float] { quantization.decode(tokens) }

    /// Teacher forcing for one clip, as SaShiMi trains: the model reads the clip shifted right
    /// by one behind a silence token and predicts every sample:
    /// inputs = [128, q0 … q_{L−2}], targets = [q0 … q_{L−1}].
    public func teacherForcing(_ samples: [Float]) -> (inputs: [Int32], targets: [Int32]) {
        Self.teacherForcing(tokens: encode(samples).map { Int32($0) })
    }

    /// The same for a clip already quantised (e.g. the tokens a `Sampler` drew).
    public static func teacherForcing(tokens q: [Int32]) -> (inputs: [Int32], targets: [Int32]) {
        ([128] + q.dropLast(), q)
    }
}
