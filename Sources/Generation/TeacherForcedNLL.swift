import Engine
import Models

/// The model's negative log-likelihood of whole clips by teacher forcing (one parallel
/// forward per group of clips, inference mode): what `wavemamba nll` and `evaluate
/// --checkpoint` report, and what the likelihood a `Sampler` records while it samples equals.
public enum TeacherForcedNLL {
    /// Per clip: Σ −log p(target) in nats. `inputs` and `targets` hold `clips` clips of
    /// `length` tokens each, clip-major (`AudioTokens.teacherForcing` per clip).
    public static func clipNats(model: SaShiMi, inputs: [Int32], targets: [Int32], clips: Int, length L: Int) -> [Double] {
        precondition(inputs.count == clips * L && targets.count == clips * L, "TeacherForcedNLL: \(inputs.count) inputs, \(targets.count) targets for \(clips) × \(L)")
        let backend = model.store.backend
        let logits = model.logits(backend.indices(inputs, shape: [clips, L]), tape: Tape.inference())
        return (0..<clips).map { k in
            let rows = logits.value.slice(rows: (k * L)..<((k + 1) * L))
            let t = backend.indices(Array(targets[(k * L)..<((k + 1) * L)]), shape: [L])
            return Double(Op.crossEntropy(Variable(rows), targets: t, Tape.inference()).value.floats()[0]) * Double(L)
        }
    }
}
