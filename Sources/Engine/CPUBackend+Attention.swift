import Kernels

public typealias AttentionShape = Kernels.AttentionShape

// Causal attention on the CPU (Kernels/CausalAttention.swift): tasks over (batch, head, query
// tile) in the forward, (batch, head) in the backward and the step.
extension CPUBackend {
    private func rows(_ t: Tensor, _ width: Int) -> AttentionRows {
        precondition(t.columns == width, "attention: a tensor of \(t.columns) columns where \(width) were expected")
        return AttentionRows(t.pointer, stride: t.rank == 2 ? t.rowStride : width)
    }

    private func checkRows(_ ts: [Tensor], _ s: AttentionShape) {
        for t in ts { precondition(t.rows == s.batch * s.length, "attention: \(t.rows) rows for \(s)") }
    }

    public func causalAttention(q: Tensor, k: Tensor, v: Tensor, shape s: AttentionShape, out: Tensor, logSumExp: Tensor) {
        checkRows([q, k, v, out], s)
        precondition(logSumExp.count == s.batch * s.heads * s.length && logSumExp.isContiguous, "attention: logSumExp \(logSumExp.shape) for \(s)")
        CausalAttention.forward(q: rows(q, s.width), k: rows(k, s.width), v: rows(v, s.width), out: rows(out, s.width),
                                logSumExp: logSumExp.pointer, shape: s, pool: pool)
    }

    public func causalAttentionBackward(dOut: Tensor, q: Tensor, k: Tensor, v: Tensor, out: Tensor, logSumExp: Tensor, shape s: AttentionShape,
                                        dq: Tensor, dk: Tensor, dv: Tensor) {
        checkRows([dOut, q, k, v, out, dq, dk, dv], s)
        precondition(logSumExp.count == s.batch * s.heads * s.length, "attention backward: logSumExp \(logSumExp.shape) for \(s)")
        CausalAttention.backward(dOut: rows(dOut, s.width), q: rows(q, s.width), k: rows(k, s.width), v: rows(v, s.width),
                                 out: rows(out, s.width), logSumExp: logSumExp.pointer, dq: rows(dq, s.width), dk: rows(dk, s.width),
                                 dv: rows(dv, s.width), shape: s, pool: pool)
    }

    public func causalAttentionStep(q: Tensor, k: Tensor, v: Tensor, keyCache: Tensor, valueCache: Tensor, position: Tensor, out: Tensor,
                                    heads: Int, scale: Float) {
        let batch = q.rows, E = q.columns
        precondition(E % heads == 0, "attention step: \(E) columns for \(heads) heads")
        precondition(keyCache.rank == 3 && keyCache.shape[0] == batch && keyCache.shape[2] == E && keyCache.shape == valueCache.shape,
                     "attention step: caches \(keyCache.shape), \(valueCache.shape) for (\(batch), maxLength, \(E))")
        precondition(position.dtype == .int32 && position.count == 1, "attention step: position must be one Int32")
        for t in [k, v, out] { precondition(t.rows == batch, "attention step: \(t.rows) rows for \(batch) streams") }
        CausalAttention.step(q: rows(q, E), k: rows(k, E), v: rows(v, E), keyCache: keyCache.pointer, valueCache: valueCache.pointer,
                             maxLength: keyCache.shape[1], position: position.int32Pointer, out: rows(out, E), batch: batch, heads: heads,
                             headDim: E / heads, scale: scale, pool: pool)
    }
}
