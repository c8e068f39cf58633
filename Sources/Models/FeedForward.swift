import Engine
import Layers

/// SaShiMi's FF block: Linear(H → ff·H) + GELU, dropout, Linear(ff·H → H).
public struct FeedForward {
    public let fc1: Linear
    public let fc2: Linear
    public let dropout: Float

    public init(_ store: ParameterStore, prefix: String, width: Int, expand: Int, dropout: Float, seed: UInt64) {
        fc1 = Linear(store, prefix + ".fc1", inFeatures: width, outFeatures: expand * width, bias: true, seed: parameterSeed(seed, prefix + ".fc1"))
        fc2 = Linear(store, prefix + ".fc2", inFeatures: expand * width, outFeatures: width, bias: true, seed: parameterSeed(seed, prefix + ".fc2"))
        self.dropout = dropout
    }

    /// `firstSample`: the global index of the first of the `batch` samples (data-parallel ranks).
    public func callAsFunction(_ x: Variable, _ tape: Tape, training: Bool, seed: UInt64, batch: Int = 1, firstSample: Int = 0) -> Variable {
        let g = Op.gelu(fc1(x, tape), tape)
        let h = Op.dropout(g, p: dropout, seed: seed, offset: UInt64(firstSample * (g.value.count / batch)), training: training, tape)
        return fc2(h, tape)
    }

    /// One step (batch, H) → `out`, using preallocated `hidden` (batch, ff·H).
    func step(_ x: Tensor, hidden: Tensor, out: Tensor) {
        let b = x.backend
        b.linear(x: x, weight: fc1.weight.value, bias: fc1.bias?.value, y: hidden)
        b.activation(.gelu, x: hidden, y: hidden)
        b.linear(x: hidden, weight: fc2.weight.value, bias: fc2.bias?.value, y: out)
    }
}
