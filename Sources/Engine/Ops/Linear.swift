extension Op {
    /// y = x·Wᵀ + b over the last dimension. x: (…, in) — may be a column slice; W: (out, in).
    public static func linear(_ x: Variable, _ weight: Variable, _ bias: Variable?, _ tape: Tape) -> Variable {
        let xv = x.value
        let outFeatures = weight.shape[0]
        let y = x.backend.empty(Array(xv.shape.dropLast()) + [outFeatures])
        x.backend.linear(x: xv, weight: weight.value, bias: bias?.value, y: y.reshaped([xv.rows, outFeatures]))
        let out = output(y, tape, x, weight, bias)
        if out.requiresGrad {
            tape.record("linear") {
                guard let dy = out.grad else { return }
                let dy2 = dy.reshaped([xv.rows, outFeatures])
                let b = x.backend
                if x.requiresGrad {
                    x.withGrad { dx, acc in
                        if !acc { b.fill(dx, value: 0) }
                        b.linearBackward(dy: dy2, x: xv, weight: weight.value, dx: dx.reshaped([xv.rows, xv.columns]), dWeight: nil, dBias: nil)
                    }
                }
                var dW: Tensor?, dB: Tensor?
                if weight.requiresGrad { weight.withGrad { g, acc in if !acc { b.fill(g, value: 0) }; dW = g } }
                if let bias, bias.requiresGrad { bias.withGrad { g, acc in if !acc { b.fill(g, value: 0) }; dB = g } }
                if dW != nil || dB != nil {
                    b.linearBackward(dy: dy2, x: xv, weight: weight.value, dx: nil, dWeight: dW, dBias: dB)
                }
            }
        }
        return out
    }

    /// Batched matrix product C = A·B (optionally transposed), A and B (batch, m, k) / (batch, k, n) or 2-D.
    public static func matmul(_ a: Variable, _ b: Variable, transA: Bool = false, transB: Bool = false, _ tape: Tape) -> Variable {
        let av = a.value, bv = b.value
        let m = transA ? av.shape[av.rank - 1] : av.shape[av.rank - 2]
        let n = transB ? bv.shape[bv.rank - 2] : bv.shape[bv.rank - 1]
        let shape = (av.rank == 3 ? [av.shape[0]] : []) + [m, n]
        let c = a.backend.empty(shape)
        a.backend.matmul(av, transA: transA, bv, transB: transB, c: c, alpha: 1, beta: 0)
        let out = output(c, tape, a, b)
        if out.requiresGrad {
            tape.record("matmul") {
                guard let dc = out.grad else { return }
                // C = op(A)·op(B): dA = dC·op(B)ᵀ (or its transpose), dB = op(A)ᵀ·dC (or its transpose).
                if a.requiresGrad {
                    a.withGrad { da, acc in
                        if transA { a.backend.matmul(bv, transA: transB, dc, transB: true, c: da, alpha: 1, beta: acc ? 1 : 0) }
                        else { a.backend.matmul(dc, transA: false, bv, transB: !transB, c: da, alpha: 1, beta: acc ? 1 : 0) }
                    }
                }
                if b.requiresGrad {
                    b.withGrad { db, acc in
                        if transB { b.backend.matmul(dc, transA: true, av, transB: transA, c: db, alpha: 1, beta: acc ? 1 : 0) }
                        else { b.backend.matmul(av, transA: !transA, dc, transB: false, c: db, alpha: 1, beta: acc ? 1 : 0) }
                    }
                }
            }
        }
        return out
    }
}
