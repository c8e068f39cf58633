import Engine
import Foundation

/// Options of a causal multi-head attention layer (s4's `mha` layer: nn.MultiheadAttention with
/// a causal mask). Keys missing when decoding take the defaults.
public struct MultiHeadAttentionConfig: Codable, Sendable, Equatable {
    /// Heads: 8, as s4's configs/model/layer/mha.yaml (the width must be a multiple; head
    /// dimension = width / heads, 32 at SaShiMi's 256-wide center).
    public var heads: Int = 8

    public init(heads: Int = 8) {
        self.heads = heads
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        self.init()
        heads = try c.decodeIfPresent(Int.self, forKey: .heads) ?? heads
    }
}

/// Causal multi-head self-attention, nn.MultiheadAttention(E, heads, bias = True) with the
/// causal mask s4's `mha` layer gives it (the Mamba paper's Table 5 "MHA" block):
///
///     q, k, v = split(x·in_proj_weightᵀ + in_proj_bias)           (batch·L, E) each
///     y_h = softmax(q_h·k_hᵀ/√(E/heads) + causal mask)·v_h        per head, `Op.causalAttention`
///     out = y·out_proj.weightᵀ + out_proj.bias
///
/// on token-major (batch·L, E) activations. Parameter names and shapes are nn.MultiheadAttention's
/// state_dict: in_proj_weight (3E, E) (rows: q, then k, then v), in_proj_bias (3E),
/// out_proj.weight (E, E), out_proj.bias (E). No attention dropout (s4's mha.yaml: none).
public struct MultiHeadAttention {
    public let config: MultiHeadAttentionConfig
    /// E.
    public let width: Int
    public let inProjWeight: Variable
    public let inProjBias: Variable
    public let outProj: Linear

    public var heads: Int { config.heads }
    public var headDim: Int { width / config.heads }
    /// 1/√headDim, as PyTorch scales.
    public var scale: Float { 1 / Float(headDim).squareRoot() }

    /// Registers the parameters under `prefix` (e.g. "center.0.mixer"; "" for none), initialised
    /// as nn.MultiheadAttention._reset_parameters does: in_proj_weight Xavier-uniform
    /// (U(±√(6 / (E + 3E)))), in_proj_bias 0, out_proj.weight as nn.Linear (U(±1/√E)),
    /// out_proj.bias 0. Biases get no weight decay.
    public init(_ store: ParameterStore, prefix: String, width E: Int, config: MultiHeadAttentionConfig = MultiHeadAttentionConfig(),
                seed: UInt64) {
        precondition(config.heads > 0 && E % config.heads == 0, "MultiHeadAttention: width \(E) is not a multiple of \(config.heads) heads")
        self.config = config
        width = E
        let b = store.backend
        let p = prefix.isEmpty ? "" : prefix + "."
        let xavier = (6 / Float(4 * E)).squareRoot()
        inProjWeight = store.add(p + "in_proj_weight", shape: [3 * E, E]) {
            b.fillUniform($0, low: -xavier, high: xavier, seed: parameterSeed(seed, p + "in_proj_weight"))
        }
        inProjBias = store.add(p + "in_proj_bias", shape: [3 * E], values: [Float](repeating: 0, count: 3 * E), options: .noDecay)
        let bound = 1 / Float(E).squareRoot()
        let outWeight = store.add(p + "out_proj.weight", shape: [E, E]) {
            b.fillUniform($0, low: -bound, high: bound, seed: parameterSeed(seed, p + "out_proj.weight"))
        }
        let outBias = store.add(p + "out_proj.bias", shape: [E], values: [Float](repeating: 0, count: E), options: .noDecay)
        outProj = Linear(weight: outWeight, bias: outBias)
    }

    /// x: (batch·L, E) token-major → (batch·L, E).
    public func callAsFunction(_ x: Variable, batch: Int, _ tape: Tape) -> Variable {
        precondition(x.value.columns == width, "MultiHeadAttention: input has \(x.value.columns) channels, expected \(width)")
        let qkv = Op.split(Op.linear(x, inProjWeight, inProjBias, tape), [width, width, width], tape)
        let y = Op.causalAttention(qkv[0], qkv[1], qkv[2], batch: batch, heads: heads, scale: scale, tape)
        return outProj(y, tape)
    }
}
