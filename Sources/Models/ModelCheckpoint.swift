import Engine
import Foundation
import SafeTensors

/// How audio maps to the model's tokens; stored with every checkpoint so that generation
/// and scoring need nothing but the checkpoint.
public struct AudioSettings: Codable, Sendable, Equatable {
    public var sampleRate: Int = 16000
    /// "mulaw" or "linear" (AudioIO.Quantization raw values).
    public var quantization: String = "mulaw"
    /// Samples per training clip.
    public var clipLength: Int = 16000
    /// Per-clip min-max scaling before quantisation, as SaShiMi does ("minmax" or "none").
    public var normalization: String = "minmax"

    public init() {}

    /// The JSON keys in checkpoints: the recipe's `[data]` keys of the same meaning.
    enum CodingKeys: String, CodingKey {
        case sampleRate = "sample_rate", quantization, clipLength = "clip_length", normalization

        /// The camelCase key of checkpoints written before the keys matched the recipe's.
        var legacy: String {
            switch self {
            case .sampleRate: "sampleRate"
            case .clipLength: "clipLength"
            default: rawValue
            }
        }
    }

    /// Every key is required, as snake_case or as the camelCase of older checkpoints.
    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: AnyCodingKey.self)
        func get<T: Decodable>(_ k: CodingKeys) throws -> T {
            if let x = try c.decodeIfPresent(T.self, forKey: AnyCodingKey(k.legacy)), !c.contains(AnyCodingKey(k.rawValue)) { return x }
            return try c.decode(T.self, forKey: AnyCodingKey(k.rawValue))
        }
        sampleRate = try get(.sampleRate)
        quantization = try get(.quantization)
        clipLength = try get(.clipLength)
        normalization = try get(.normalization)
    }
}

/// A SaShiMi checkpoint: weights as safetensors under their state_dict names, with the model
/// config and the audio settings as JSON in the metadata (keys `config`, `audio`).
public enum ModelCheckpoint {
    public static let audioKey = "audio"

    public static func metadata(_ model: SaShiMi, audio: AudioSettings, extra: [String: String] = [:]) -> [String: String] {
        let enc = JSONEncoder()
        enc.outputFormatting = [.sortedKeys]
        var m = extra
        m[Checkpoint.configKey] = String(decoding: try! enc.encode(model.config), as: UTF8.self)
        m[audioKey] = String(decoding: try! enc.encode(audio), as: UTF8.self)
        m["parameters"] = String(model.parameterCount)
        return m
    }

    /// Writes the model's weights (or `values`, e.g. the EMA) atomically, as F32 or BF16.
    public static func save(_ model: SaShiMi, audio: AudioSettings, to url: URL, extra: [String: String] = [:], values: Tensor? = nil,
                            dtype: SafeTensorsDType = .F32) throws {
        try Checkpoint.saveWeights(model.store, to: url, metadata: metadata(model, audio: audio, extra: extra), values: values, dtype: dtype)
    }

    /// The model config, audio settings and metadata of a checkpoint, without its weights
    /// (e.g. to choose a device for the model first).
    public static func header(_ url: URL) throws -> (config: SaShiMiConfig, audio: AudioSettings, metadata: [String: String]) {
        let file = try SafeTensorsFile(contentsOf: url)
        let dec = JSONDecoder()
        guard let cfgText = file.metadata[Checkpoint.configKey], let cfg = try? dec.decode(SaShiMiConfig.self, from: Data(cfgText.utf8)) else {
            throw SafeTensorsError(path: url.path, "no wavemamba model config in the metadata; is this a wavemamba checkpoint (a file written by `wavemamba train`)?")
        }
        let audio = file.metadata[audioKey].flatMap { try? dec.decode(AudioSettings.self, from: Data($0.utf8)) } ?? AudioSettings()
        return (cfg, audio, file.metadata)
    }

    /// Reads config and audio settings, builds the model on `backend` and loads the weights.
    public static func load(_ url: URL, backend: any Backend) throws -> (model: SaShiMi, audio: AudioSettings, metadata: [String: String]) {
        let (cfg, audio, metadata) = try header(url)
        let model = SaShiMi(config: cfg, backend: backend, seed: 0)
        _ = try Checkpoint.loadWeights(model.store, from: url)
        return (model, audio, metadata)
    }
}
