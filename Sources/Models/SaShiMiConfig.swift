import Layers

/// The sequence block used at a stage of the U-Net.
public enum BlockKind: String, Codable, Sendable, CaseIterable {
    /// Complex-valued Mamba (the Mamba paper's audio model, S4D-Lin initialisation).
    case mambaComplex = "mamba-complex"
    /// Real-valued Mamba (S4D-Real initialisation).
    case mamba = "mamba"
    /// S4D (LTI, FFT convolution) + GLU, each followed by a feed-forward block: SaShiMi's baseline.
    case s4d = "s4d"
}

/// SaShiMi's multi-scale U-Net (Goel et al. 2022), as `sashimi.py` builds it (non-U-Net
/// variant: down-pooling only on the way down). Defaults: the SC09 "small" model of the
/// Mamba paper (d_model 64, 8 layers per stage, pooling [4, 4], expand 2, d_state 16).
public struct SaShiMiConfig: Codable, Sendable, Equatable {
    public var dModel: Int = 64
    /// Residual layers per stage (center, and each up stage).
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
    public var dropout: Float = 0
    /// Quantisation levels (8-bit audio: 256).
    public var classes: Int = 256
    /// Time steps between stored scan states in training (memory vs recomputation).
    public var scanChunk: Int = 64

    public init() {}

    /// Samples per coarsest step: clip lengths must be a multiple of this.
    public var totalPool: Int { pool.reduce(1, *) }

    func mamba(_ width: Int, complex: Bool) -> MambaConfig {
        var m = MambaConfig(dModel: width, dState: dState, dConv: dConv, expand: mambaExpand, isComplex: complex)
        m.scanChunk = scanChunk
        return m
    }
}
