import Engine
import Layers

extension ResidualBlock {
    /// The Mamba paper's Table 5 "MHA + MLP" layer of a stage, as S4D is followed by FF:
    /// block `prefix.index` = x + MHA(LayerNorm(x)) (causal multi-head attention) and, when
    /// `ff` > 0, block `prefix.index+1` = x + FF(LayerNorm(x)). Parameter names:
    /// `{prefix}.{index}.norm.{weight,bias}`, `{prefix}.{index}.mixer.in_proj_weight` (3H, H),
    /// `.in_proj_bias` (3H), `.out_proj.weight` (H, H), `.out_proj.bias` (H);
    /// `{prefix}.{index+1}.norm.*`, `{prefix}.{index+1}.mixer.fc1.*`, `.fc2.*`.
    /// Takes no `BlockKind`: the caller decides where the layer goes.
    public static func attentionLayer(_ store: ParameterStore, prefix: String, index: Int, width: Int,
                                      attention: MultiHeadAttentionConfig = MultiHeadAttentionConfig(), ff: Int, dropout: Float,
                                      seed: UInt64) -> [ResidualBlock] {
        func block(_ i: Int, _ make: (String) -> Mixer) -> ResidualBlock {
            let p = "\(prefix).\(i)"
            return ResidualBlock(norm: LayerNormModule(store, p + ".norm", channels: width), mixer: make(p + ".mixer"), dropout: dropout)
        }
        var blocks = [block(index) { .attention(MultiHeadAttention(store, prefix: $0, width: width, config: attention, seed: seed)) }]
        if ff > 0 {
            blocks.append(block(index + 1) { .feedForward(FeedForward(store, prefix: $0, width: width, expand: ff, dropout: dropout, seed: seed)) })
        }
        return blocks
    }
}
