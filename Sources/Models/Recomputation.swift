/// Which activations a training forward keeps for the backward (`[train] recompute`).
public enum Recomputation: String, CaseIterable, Sendable {
    /// Every op's activations stay on the tape until the backward.
    case none
    /// Each residual block keeps only its input; the backward re-runs the block's forward
    /// (`Op.recompute`): one extra forward per step for memory that no longer grows with the
    /// block count.
    case blocks
}
