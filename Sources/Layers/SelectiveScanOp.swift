import Engine

extension Op {
    /// The selective scan as a differentiable op (Mamba's S6 with delta_softplus):
    /// y = scan(u, softplus(delta + deltaBias), A, B, C, D) · SiLU(z). Inputs are
    /// (batch·L, ·) token-major variables, any of them a column-slice view; A (and AImag) (D, N).
    /// The forward keeps state checkpoints every `chunk` steps; the backward recomputes
    /// between them — the (batch × L × D × N) states are never stored.
    public static func selectiveScan(u: Variable, delta: Variable, A: Variable, AImag: Variable?, B: Variable, C: Variable,
                                     D: Variable?, z: Variable?, deltaBias: Variable?, batch: Int, chunk: Int = 64,
                                     _ tape: Tape) -> Variable {
        let rows = u.value.rows
        precondition(rows % batch == 0)
        let shape = SelectiveScanShape(batch: batch, length: rows / batch, channels: u.value.columns, dState: A.shape[1],
                                       isComplex: AImag != nil)
        let x = SelectiveScanTensors(shape: shape, u: u.value, delta: delta.value, z: z?.value, B: B.value, C: C.value,
                                     A: A.value, AImag: AImag?.value, D: D?.value, deltaBias: deltaBias?.value)
        let backend = u.backend
        let out = backend.empty([rows, shape.channels])
        let inputs: [Variable?] = [u, delta, A, AImag, B, C, D, z, deltaBias]
        let needsGrad = tape.isRecording && inputs.contains { $0?.requiresGrad == true }
        let count = backend.selectiveScanCheckpointCount(shape, chunk: chunk)
        let checkpoints = needsGrad && count > 0 ? backend.empty([count]) : nil
        backend.selectiveScan(x, out: out, lastState: nil, checkpoints: checkpoints, chunk: chunk)
        let y = Variable(out, requiresGrad: needsGrad)
        guard needsGrad else { return y }
        tape.record("selectiveScan") {
            guard let dy = y.grad else { return }
            // The kernel computes every gradient at once into fresh buffers; each is then handed
            // to its variable (directly when the variable's buffer is fresh).
            func buf(_ v: Variable?) -> Tensor? { v.map { backend.empty($0.shape.count == 2 ? [$0.value.rows, $0.value.columns] : $0.shape) } }
            let g = SelectiveScanGradientTensors(du: buf(u)!, dDelta: buf(delta)!, dz: buf(z), dB: buf(B)!, dC: buf(C)!, dA: buf(A)!,
                                                 dAImag: buf(AImag), dD: buf(D), dDeltaBias: buf(deltaBias))
            backend.selectiveScanBackward(x, dOut: dy, checkpoints: checkpoints, chunk: chunk, grads: g)
            let pairs: [(Variable?, Tensor?)] = [(u, g.du), (delta, g.dDelta), (z, g.dz), (B, g.dB), (C, g.dC), (A, g.dA),
                                                 (AImag, g.dAImag), (D, g.dD), (deltaBias, g.dDeltaBias)]
            for case let (v?, t?) in pairs where v.requiresGrad {
                v.withGrad { dv, acc in backend.scale(t.reshaped(dv.shape), by: 1, out: dv, accumulate: acc) }
            }
        }
        return y
    }
}
