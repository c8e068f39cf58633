import Foundation

extension Op {
    /// Mean softmax cross-entropy in nats over the rows of `logits` (…, V) against Int32
    /// class targets; a scalar. Bits per sample = nats / ln 2.
    public static func crossEntropy(_ logits: Variable, targets: Tensor, _ tape: Tape) -> Variable {
        let lv = logits.value
        precondition(targets.count == lv.rows && targets.dtype == .int32, "crossEntropy: \(targets.count) targets for \(lv.rows) rows")
        let b = logits.backend
        let lse = b.empty([lv.rows])
        let nats = b.crossEntropy(logits: lv.reshaped([lv.rows, lv.columns]), targets: targets, logSumExp: lse)
        let out = output(b.tensor([Float(nats)], shape: [1]), tape, logits)
        if out.requiresGrad {
            tape.record("crossEntropy") {
                guard let g = out.grad else { return }
                let scale = g.floats()[0] / Float(lv.rows)
                logits.withGrad { dl, acc in
                    b.crossEntropyBackward(logits: lv.reshaped([lv.rows, lv.columns]), targets: targets, logSumExp: lse, scale: scale,
                                           dLogits: dl.reshaped([lv.rows, lv.columns]), accumulate: acc)
                }
            }
        }
        return out
    }

    public static func bits(fromNats nats: Double) -> Double { nats / M_LN2 }
}
