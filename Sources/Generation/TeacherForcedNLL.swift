import Engine
import Models

/// The model's negative log-likelihood of whole clips by teacher forcing (one parallel
/// forward per group of clips, inference mode): what `wavemamba nll` and `evaluate
/// --checkpoint` report, and what the likelihood a `Sampler` records while it samples equals.
public enum TeacherForcedNLL {
    /// Per clip: Σ −log p(target) in nats. `inputs` and `targets` hold `clips` clips of
    /// `length` tokens each, clip-major (`AudioTokens.teacherForcing` per clip).
    public static func clipNats(model: SaShiMi, inputs: [Int32], targets: [Int32], clips: Int, length L: Int) -> [Double] {
        nats(model: model, inputs: inputs, targets: targets, clips: clips, length: L, buckets: 0).clips
    }

    /// `clipNats`, and with `buckets` > 0 (dividing `length`) also each clip's Σ −log p over
    /// each of `buckets` equal ranges of positions (bucket j: positions j·L/B ..< (j+1)·L/B),
    /// from the same forward pass: `buckets[k][j]` for clip k. The bucket sums come from the
    /// backend's per-row losses summed in double, the clip sums from the mean loss of the
    /// clip's rows (`Op.crossEntropy`, as training computes it): two paths to one number.
    public static func nats(model: SaShiMi, inputs: [Int32], targets: [Int32], clips: Int, length L: Int,
                            buckets: Int) -> (clips: [Double], buckets: [[Double]]) {
        precondition(inputs.count == clips * L && targets.count == clips * L, "TeacherForcedNLL: \(inputs.count) inputs, \(targets.count) targets for \(clips) × \(L)")
        precondition(buckets >= 0 && (buckets == 0 || L % buckets == 0), "TeacherForcedNLL: \(buckets) buckets do not divide the length \(L)")
        let backend = model.store.backend
        let logits = model.logits(backend.indices(inputs, shape: [clips, L]), tape: Tape.inference())
        var clipNats: [Double] = [], bucketNats: [[Double]] = []
        for k in 0..<clips {
            let rows = logits.value.slice(rows: (k * L)..<((k + 1) * L))
            let t = backend.indices(Array(targets[(k * L)..<((k + 1) * L)]), shape: [L])
            clipNats.append(Double(Op.crossEntropy(Variable(rows), targets: t, Tape.inference()).value.floats()[0]) * Double(L))
            guard buckets > 0 else { continue }
            let width = L / buckets
            let lse = backend.empty([width])
            bucketNats.append((0..<buckets).map { j in
                let range = (k * L + j * width)..<(k * L + (j + 1) * width)
                // The backend's mean over the bucket's rows (their losses summed in double).
                return backend.crossEntropy(logits: logits.value.slice(rows: range), targets: backend.indices(Array(targets[range]), shape: [width]),
                                            logSumExp: lse) * Double(width)
            })
        }
        return (clipNats, bucketNats)
    }
}
