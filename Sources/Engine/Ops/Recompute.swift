extension Op {
    /// Activation recomputation ("gradient checkpointing") of `body(x)`: the forward runs
    /// `body` on a throwaway sub-tape, so none of its intermediates outlive it; the outer tape
    /// keeps only `x` and the output. Its backward runs `body` again on a fresh sub-tape and
    /// backpropagates the output's gradient through it, so the gradients are those of the
    /// ordinary path: the same ops in the same order, accumulating into the same `x` and
    /// parameters. `body` must be deterministic (dropout masks come from their seeds).
    public static func recompute(_ x: Variable, _ tape: Tape, _ body: @escaping (Variable, Tape) -> Variable) -> Variable {
        guard tape.isRecording else { return body(x, tape) }
        // A recording sub-tape, so that the forward takes the very path (and kernels) of training.
        let out = body(x, Tape())
        guard out.requiresGrad else { return out }
        tape.record("recompute") {
            guard let dy = out.grad else { return }
            let sub = Tape()
            let again = body(x, sub)
            sub.backward(from: again, grad: dy)
        }
        return out
    }
}
