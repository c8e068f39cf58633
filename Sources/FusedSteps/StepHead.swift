import Engine

/// A model's output head for a fused generation step (`StepGraphBackend.residualMambaSteps(_:x:addend:out:head:)`):
/// logits = LayerNorm(x)·Wᵀ + bias for every stream, where x is the last stage's output. The
/// weight is held transposed, (width, classes), a copy made with the step state (a snapshot, as
/// `ResidualMambaStep`'s projections).
public struct StepHead {
    /// LayerNorm weight and bias (width), either nil for 1 and 0.
    public let normWeight: Tensor?, normBias: Tensor?
    /// (width, classes).
    public let weightT: Tensor
    /// (classes), or nil.
    public let bias: Tensor?
    /// (batch, classes): written by the step.
    public let logits: Tensor

    public init(normWeight: Tensor?, normBias: Tensor?, weightT: Tensor, bias: Tensor?, logits: Tensor) {
        precondition(weightT.shape.count == 2 && logits.shape.count == 2 && logits.shape[1] == weightT.shape[1]
                     && bias.map { $0.shape == [weightT.shape[1]] } != false
                     && [normWeight, normBias].allSatisfy { $0.map { $0.shape == [weightT.shape[0]] } != false },
                     "StepHead: weightT \(weightT.shape), logits \(logits.shape), bias \(bias?.shape ?? []) do not fit")
        self.normWeight = normWeight; self.normBias = normBias; self.weightT = weightT; self.bias = bias; self.logits = logits
    }

    public var width: Int { weightT.shape[0] }
    public var classes: Int { weightT.shape[1] }
}
