import Engine
import Layers

/// What a residual block wraps.
public enum Mixer {
    case mamba(MambaBlock)
    /// The non-selective Mamba block (Δ, B, C independent of the input).
    case mambaLTI(MambaLTIBlock)
    case s4d(S4D)
    /// Causal multi-head attention (the Mamba paper's Table 5 "MHA + MLP", with a FF block after it).
    case attention(MultiHeadAttention)
    case feedForward(FeedForward)
}

/// Pre-norm residual block: x + mixer(LayerNorm(x)) (SaShiMi's ResidualBlock; dropout on
/// the mixer's output).
public struct ResidualBlock {
    public let norm: LayerNormModule
    public let mixer: Mixer
    public let dropout: Float

    public init(norm: LayerNormModule, mixer: Mixer, dropout: Float) {
        self.norm = norm
        self.mixer = mixer
        self.dropout = dropout
    }

    /// `firstSample`: the global index of the batch's first sample, so that dropout masks
    /// are those of one process when a data-parallel rank runs a share of the batch.
    public func callAsFunction(_ x: Variable, batch: Int, _ tape: Tape, training: Bool, seed: UInt64, firstSample: Int = 0) -> Variable {
        let z = norm(x, tape)
        var y: Variable
        switch mixer {
        case .mamba(let m): y = m(z, batch: batch, tape)
        case .mambaLTI(let m): y = m(z, batch: batch, tape)
        case .s4d(let l): y = l(z, batch: batch, tape, dropoutSeed: training ? seed : nil, firstSample: firstSample)
        case .attention(let a): y = a(z, batch: batch, tape)
        case .feedForward(let f): y = f(z, tape, training: training, seed: seed, batch: batch, firstSample: firstSample)
        }
        y = Op.dropout(y, p: dropout, seed: seed &+ 1, offset: UInt64(firstSample * (y.value.count / batch)), training: training, tape)
        return Op.add(y, x, tape)
    }
}
