import Engine

// Causal multi-head attention on the GPU (attention.cu): tiles of 32 rows, four threads a row,
// online softmax in the forward; the backward as two passes over recomputed scores (dq by
// query tiles, dk and dv by key tiles: no atomics, deterministic).
extension CUDABackend {
    /// attention.cu's largest head dimension (WM_ATT_MAXD: four threads of a row hold 32 columns each).
    public static let attentionMaxHeadDim = 128
    private static let attentionRows = 32

    private func attentionGrid(_ s: AttentionShape) -> (Int, Int, Int) {
        ((s.length + Self.attentionRows - 1) / Self.attentionRows, s.heads, s.batch)
    }

    private func checkAttention(_ ts: [Tensor], _ s: AttentionShape) {
        precondition(s.headDim <= Self.attentionMaxHeadDim, "CUDA attention: head dimension \(s.headDim) above \(Self.attentionMaxHeadDim)")
        precondition(s.batch <= 65_535 && s.heads <= 65_535, "CUDA attention: \(s) exceeds the grid")
        for t in ts {
            precondition(t.rows == s.batch * s.length && t.columns == s.width, "CUDA attention: a (\(t.rows), \(t.columns)) tensor for \(s)")
        }
    }

    /// 4-byte floats of shared memory: `tiles` row tiles of D + 1, `square` 32 × 33 tiles, `extra` floats.
    private func attentionShared(_ s: AttentionShape, tiles: Int, square: Int, extra: Int = 0) -> Int {
        4 * (tiles * Self.attentionRows * (s.headDim + 1) + square * Self.attentionRows * (Self.attentionRows + 1) + extra)
    }

    public func causalAttention(q: Tensor, k: Tensor, v: Tensor, shape s: AttentionShape, out: Tensor, logSumExp: Tensor) {
        checkAttention([q, k, v, out], s)
        precondition(logSumExp.count == s.batch * s.heads * s.length && logSumExp.isContiguous, "CUDA attention: logSumExp \(logSumExp.shape) for \(s)")
        launch(.attention, "wm_attention_forward", grid: attentionGrid(s), block: (128, 1, 1), shared: attentionShared(s, tiles: 3, square: 1),
               [.pointer(ptr(q)), .pointer(ptr(k)), .pointer(ptr(v)), .pointer(ptr(out)), .pointer(ptr(logSumExp)),
                .int64(q.rowStride), .int64(k.rowStride), .int64(v.rowStride), .int64(out.rowStride),
                .int32(Int32(s.length)), .int32(Int32(s.heads)), .int32(Int32(s.headDim)), .float(s.scale)])
    }

    public func causalAttentionBackward(dOut: Tensor, q: Tensor, k: Tensor, v: Tensor, out: Tensor, logSumExp: Tensor, shape s: AttentionShape,
                                        dq: Tensor, dk: Tensor, dv: Tensor) {
        checkAttention([dOut, q, k, v, out, dq, dk, dv], s)
        precondition(logSumExp.count == s.batch * s.heads * s.length, "CUDA attention backward: logSumExp \(logSumExp.shape) for \(s)")
        let n = s.batch * s.heads * s.length
        let delta = scratch(n)
        launch1D(.attention, "wm_attention_delta", count: n,
                 [.pointer(ptr(dOut)), .pointer(ptr(out)), .pointer(ptr(delta)), .int64(dOut.rowStride), .int64(out.rowStride),
                  .int32(Int32(s.batch)), .int32(Int32(s.length)), .int32(Int32(s.heads)), .int32(Int32(s.headDim))])
        let sizes: [Arg] = [.int32(Int32(s.length)), .int32(Int32(s.heads)), .int32(Int32(s.headDim)), .float(s.scale)]
        launch(.attention, "wm_attention_backward_dq", grid: attentionGrid(s), block: (128, 1, 1), shared: attentionShared(s, tiles: 4, square: 1),
               [.pointer(ptr(dOut)), .pointer(ptr(q)), .pointer(ptr(k)), .pointer(ptr(v)), .pointer(ptr(logSumExp)), .pointer(ptr(delta)),
                .pointer(ptr(dq)), .int64(dOut.rowStride), .int64(q.rowStride), .int64(k.rowStride), .int64(v.rowStride),
                .int64(dq.rowStride)] + sizes)
        launch(.attention, "wm_attention_backward_dkv", grid: attentionGrid(s), block: (128, 1, 1),
               shared: attentionShared(s, tiles: 4, square: 2, extra: 2 * Self.attentionRows),
               [.pointer(ptr(dOut)), .pointer(ptr(q)), .pointer(ptr(k)), .pointer(ptr(v)), .pointer(ptr(logSumExp)), .pointer(ptr(delta)),
                .pointer(ptr(dk)), .pointer(ptr(dv)), .int64(dOut.rowStride), .int64(q.rowStride), .int64(k.rowStride), .int64(v.rowStride),
                .int64(dk.rowStride), .int64(dv.rowStride)] + sizes)
    }

    public func causalAttentionStep(q: Tensor, k: Tensor, v: Tensor, keyCache: Tensor, valueCache: Tensor, position: Tensor, out: Tensor,
                                    heads: Int, scale: Float) {
        let batch = q.rows, E = q.columns, D = E / max(1, heads)
        precondition(E % heads == 0 && D <= Self.attentionMaxHeadDim, "CUDA attention step: \(E) columns for \(heads) heads (head dimension ≤ \(Self.attentionMaxHeadDim))")
        precondition(keyCache.rank == 3 && keyCache.shape[0] == batch && keyCache.shape[2] == E && keyCache.shape == valueCache.shape
                     && keyCache.isContiguous && valueCache.isContiguous,
                     "CUDA attention step: caches \(keyCache.shape), \(valueCache.shape) for (\(batch), maxLength, \(E))")
        precondition(position.dtype == .int32 && position.count == 1, "CUDA attention step: position must be one Int32")
        for t in [k, v, out] { precondition(t.rows == batch && t.columns == E, "CUDA attention step: a (\(t.rows), \(t.columns)) tensor for (\(batch), \(E))") }
        launch(.attention, "wm_attention_step", grid: (heads, batch, 1), block: (128, 1, 1),
               [.pointer(ptr(q)), .pointer(ptr(k)), .pointer(ptr(v)), .pointer(ptr(keyCache)), .pointer(ptr(valueCache)),
                .pointer(ptr(position)), .pointer(ptr(out)), .int64(q.rowStride), .int64(k.rowStride), .int64(v.rowStride),
                .int64(out.rowStride), .int32(Int32(keyCache.shape[1])), .int32(Int32(heads)), .int32(Int32(D)), .float(scale)])
        launch(.attention, "wm_attention_advance", grid: (1, 1, 1), block: (1, 1, 1), [.pointer(ptr(position))])
    }
}
