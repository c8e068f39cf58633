extension Op {
    /// Causal depthwise conv1d over (batch·L, C) rows (token-major), weight (C, 1, K) or (C, K)
    /// as PyTorch stores it, zero left padding; `silu` fuses Mamba's activation.
    /// x may be a column slice (in_proj's x half).
    public static func causalConv1d(_ x: Variable, _ weight: Variable, _ bias: Variable?, batch: Int, silu: Bool,
                                    _ tape: Tape) -> Variable {
        let xv = x.value
        let b = x.backend
        let y = b.empty([xv.rows, xv.columns])
        b.causalConv1d(x: xv, weight: weight.value, bias: bias?.value, y: y, batch: batch, silu: silu)
        let out = output(y, tape, x, weight, bias)
        if out.requiresGrad {
            tape.record("causalConv1d") {
                guard let dy = out.grad else { return }
                var dx: Tensor?, dw: Tensor?, db: Tensor?
                if x.requiresGrad { x.withGrad { g, acc in if !acc { b.fill(g, value: 0) }; dx = g } }
                if weight.requiresGrad { weight.withGrad { g, acc in if !acc { b.fill(g, value: 0) }; dw = g } }
                if let bias, bias.requiresGrad { bias.withGrad { g, acc in if !acc { b.fill(g, value: 0) }; db = g } }
                b.causalConv1dBackward(dy: dy, x: xv, weight: weight.value, bias: bias?.value, dx: dx, dWeight: dw, dBias: db,
                                       batch: batch, silu: silu)
            }
        }
        return out
    }
}
