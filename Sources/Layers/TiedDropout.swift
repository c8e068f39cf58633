import Engine

extension Op {
    /// S4's DropoutNd (tie = True): one keep/drop decision per (batch element, channel),
    /// shared by every position of the sequence, kept values scaled by 1/(1 − p).
    /// x: (batch·L, C) token-major. Applies when `p > 0` and a `seed` is given (training);
    /// otherwise returns x. The (batch, C) mask comes from the counter-based generator of
    /// the backend's dropout (`Backend.tiedDropoutMask`), so it does not depend on the thread
    /// count; `firstSample` is the global index of the batch's first sample (a data-parallel
    /// rank's share), so every sample gets the mask it gets in one process.
    public static func tiedDropout(_ x: Variable, batch: Int, p: Float, seed: UInt64?, firstSample: Int = 0, _ tape: Tape) -> Variable {
        guard p > 0, let seed else { return x }
        let xv = x.value.contiguous()
        let C = xv.columns, rows = xv.rows
        precondition(rows % batch == 0, "tiedDropout: \(rows) rows for batch \(batch)")
        let L = rows / batch
        let backend = x.backend
        let mask = backend.empty([batch, C])
        backend.tiedDropoutMask(mask, p: p, seed: seed, offset: UInt64(firstSample * C))
        let y = backend.empty(xv.shape)
        backend.scaleByTiedMask(x: xv, mask: mask, y: y, batch: batch, accumulate: false)
        let out = Variable(y, requiresGrad: tape.needsGrad(x))
        if out.requiresGrad {
            tape.record("tiedDropout") {
                guard let dy = out.grad else { return }
                x.withGrad { dx, acc in backend.scaleByTiedMask(x: dy.contiguous(), mask: mask, y: dx, batch: batch, accumulate: acc) }
            }
        }
        return out
    }
}
