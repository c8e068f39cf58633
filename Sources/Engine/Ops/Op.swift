/// The differentiable ops. Each runs its forward on the inputs' backend and, when the tape
/// records and an input needs a gradient, records its backward right beside it.
public enum Op {
    /// An output variable that needs a gradient exactly when some input does.
    @inline(__always)
    static func output(_ value: Tensor, _ tape: Tape, _ inputs: Variable?...) -> Variable {
        Variable(value, requiresGrad: tape.isRecording && inputs.contains { $0?.requiresGrad == true })
    }
}
