extension Op {
    /// Causal multi-head scaled-dot-product attention (`F.scaled_dot_product_attention` with
    /// `is_causal=True` per head): out_i = Σ_{j ≤ i} softmax_j(scale·q_i·k_j)·v_j, on token-major
    /// (batch·L, heads·headDim) q, k, v (column slices allowed), scale 1/√headDim unless given.
    /// The tape keeps only the output and each row's log-sum-exp (batch·heads·L floats): the
    /// backward recomputes the scores tile by tile.
    public static func causalAttention(_ q: Variable, _ k: Variable, _ v: Variable, batch: Int, heads: Int, scale: Float? = nil,
                                       _ tape: Tape) -> Variable {
        func matrix(_ t: Tensor) -> Tensor { t.rank == 2 ? t : t.reshaped([t.rows, t.columns]) }
        let qv = matrix(q.value), kv = matrix(k.value), vv = matrix(v.value)
        let rows = qv.rows, width = qv.columns
        precondition(kv.shape == qv.shape && vv.shape == qv.shape, "causalAttention: q \(qv.shape), k \(kv.shape), v \(vv.shape)")
        precondition(batch > 0 && rows % batch == 0 && width % heads == 0, "causalAttention: \(rows) rows, \(width) columns, batch \(batch), \(heads) heads")
        let shape = AttentionShape(batch: batch, length: rows / batch, heads: heads, headDim: width / heads, scale: scale)
        let b = q.backend
        let y = b.empty([rows, width]), lse = b.empty([batch, heads, shape.length])
        b.causalAttention(q: qv, k: kv, v: vv, shape: shape, out: y, logSumExp: lse)
        let out = output(y, tape, q, k, v)
        if out.requiresGrad {
            tape.record("causalAttention") {
                guard let dy = out.grad else { return }
                // The kernel overwrites all three gradients at once: a fresh gradient buffer is
                // written in place, one that already holds a contribution gets a temporary added after.
                var pending: [(Tensor, Tensor)] = []
                func target(_ x: Variable) -> Tensor {
                    guard x.requiresGrad else { return b.empty([rows, width]) }
                    var t: Tensor?
                    x.withGrad { g, accumulate in
                        if accumulate {
                            let tmp = b.empty([rows, width])
                            pending.append((g, tmp))
                            t = tmp
                        } else {
                            t = g.reshaped([rows, width])
                        }
                    }
                    return t!
                }
                let dq = target(q), dk = target(k), dv = target(v)
                b.causalAttentionBackward(dOut: dy.reshaped([rows, width]), q: qv, k: kv, v: vv, out: y, logSumExp: lse, shape: shape,
                                          dq: dq, dk: dk, dv: dv)
                for (g, tmp) in pending { b.add(g, tmp.reshaped(g.shape), out: g) }
            }
        }
        return out
    }
}
