import Layers

/// The sequence block used at a stage of the U-Net.
public enum BlockKind: String, Codable, Sendable, CaseIterable {
    /// Complex-valued Mamba (the Mamba paper's audio model, S4D-Lin initialisation).
    case mambaComplex = "mamba-complex"
    /// Real-valued Mamba (S4D-Real initialisation).
    case mamba = "mamba"
    /// Real Mamba without selection: Δ, B, C are learned parameters, not functions of the input
    /// (the Mamba paper's "Mamba-S4", Fig. 10; `MambaLTIBlock`).
    case mambaLTI = "mamba-lti"
    /// S4D (LTI, FFT convolution) + GLU, each followed by a feed-forward block: SaShiMi's baseline.
    case s4d = "s4d"
    /// Causal multi-head attention, each followed by a feed-forward block: Table 5's "MHA + MLP".
    case mha = "mha"
}

/// Where the residual blocks of SaShiMi's multi-scale network sit.
public enum Backbone: String, Codable, Sendable, CaseIterable {
    /// state-spaces/s4 `sashimi.py`: blocks in the center and on the way up only; a skip around
    /// each up stage (24 blocks for 8 layers and two pooling levels).
    case sashimi
    /// state-spaces/s4 `unet.py` (`SequenceUNet`), the Mamba paper's SC09 models: `nLayers`
    /// blocks before each DownPool too, and on the way up every layer adds the input of its
    /// mirror on the way down (40 blocks for 8 layers and two pooling levels).
    case unet
}

/// SaShiMi's multi-scale U-Net (Goel et al. 2022). Defaults: the SC09 "small" model of the
/// Mamba paper in `sashimi.py`'s layout (d_model 64, 8 layers per stage, pooling [4, 4],
/// expand 2, d_state 16).
public struct SaShiMiConfig: Codable, Sendable, Equatable {
    /// Which blocks the U-Net has and how its skips run (checkpoints without it: `sashimi`).
    public var backbone: Backbone = .sashimi
    public var dModel: Int = 64
    /// Residual layers per stage (center, each up stage, and with `unet` each down stage).
    public var nLayers: Int = 8
    public var pool: [Int] = [4, 4]
    /// Channel expansion per pooling level.
    public var expand: Int = 2
    /// Feed-forward expansion of the S4D baseline's FF blocks.
    public var ff: Int = 2
    /// Block kind of the outer (up) stages and of the center stage: the paper's Table 5 ablation.
    public var outer: BlockKind = .mambaComplex
    public var center: BlockKind = .mambaComplex
    /// Mamba's state size, conv width and expansion.
    public var dState: Int = 16
    public var dConv: Int = 4
    public var mambaExpand: Int = 2
    /// S4D's state size (s4d.py's default).
    public var s4dState: Int = 64
    /// Attention heads of `mha` blocks (state-spaces/s4's mha layer: 8).
    public var mhaHeads: Int = 8
    public var dropout: Float = 0
    /// Quantisation levels (8-bit audio: 256).
    public var classes: Int = 256
    /// Time steps between stored scan states in training (memory vs recomputation).
    public var scanChunk: Int = 64

    public init() {}

    /// The JSON keys in checkpoints: the recipe's `[model]` keys (snake_case), plus `classes`
    /// (set from the quantisation, not a recipe key).
    enum CodingKeys: String, CodingKey, CaseIterable {
        case backbone, dModel = "d_model", nLayers = "n_layers", pool, expand, ff, outer, center, dState = "d_state",
             dConv = "d_conv", mambaExpand = "mamba_expand", s4dState = "s4d_state", mhaHeads = "mha_heads", dropout, classes,
             scanChunk = "scan_chunk"

        /// The camelCase key that checkpoints written before the keys matched the recipe's used.
        var legacy: String {
            switch self {
            case .dModel: "dModel"
            case .nLayers: "nLayers"
            case .dState: "dState"
            case .dConv: "dConv"
            case .mambaExpand: "mambaExpand"
            case .s4dState: "s4dState"
            case .mhaHeads: "mhaHeads"
            case .scanChunk: "scanChunk"
            default: rawValue
            }
        }
    }

    /// Every key is optional, so checkpoints written before a key existed still load; each is
    /// read as snake_case, else as the camelCase of older checkpoints.
    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: AnyCodingKey.self)
        func get<T: Decodable>(_ k: CodingKeys, _ v: inout T) throws {
            for name in [k.rawValue, k.legacy] {
                if let x = try c.decodeIfPresent(T.self, forKey: AnyCodingKey(name)) { v = x; return }
            }
        }
        try get(.backbone, &backbone); try get(.dModel, &dModel); try get(.nLayers, &nLayers); try get(.pool, &pool)
        try get(.expand, &expand); try get(.ff, &ff); try get(.outer, &outer); try get(.center, &center)
        try get(.dState, &dState); try get(.dConv, &dConv); try get(.mambaExpand, &mambaExpand); try get(.s4dState, &s4dState); try get(.mhaHeads, &mhaHeads)
        try get(.dropout, &dropout); try get(.classes, &classes); try get(.scanChunk, &scanChunk)
    }

    /// Samples per coarsest step: clip lengths must be a multiple of this.
    public var totalPool: Int { pool.reduce(1, *) }

    func mamba(_ width: Int, complex: Bool) -> MambaConfig {
        var m = MambaConfig(dModel: width, dState: dState, dConv: dConv, expand: mambaExpand, isComplex: complex)
        m.scanChunk = scanChunk
        return m
    }
}

/// A JSON key by name, for reading a key under either of two spellings.
struct AnyCodingKey: CodingKey {
    var stringValue: String
    var intValue: Int? { nil }
    init(_ name: String) { stringValue = name }
    init?(stringValue: String) { self.stringValue = stringValue }
    init?(intValue: Int) { nil }
}
