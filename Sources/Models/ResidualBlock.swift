import Engine
import Layers

/// What a residual block wraps.
public enum Mixer {
    case mamba(MambaBlock)
    case s4d(S4D)
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

    public func callAsFunction(_ x: Variable, batch: Int, _ tape: Tape, training: Bool, seed: UInt64) -> Variable {
        let z = norm(x, tape)
        var y: Variable
        switch mixer {
        case .mamba(let m): y = m(z, batch: batch, tape)
        case .s4d(let l): y = l(z, batch: batch, tape, dropoutSeed: training ? seed : nil)
        case .feedForward(let f): y = f(z, tape, training: training, seed: seed)
        }
        y = Op.dropout(y, p: dropout, seed: seed &+ 1, training: training, tape)
        return Op.add(y, x, tape)
    }
}
