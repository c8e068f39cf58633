extension Op {
    /// LayerNorm over the last dimension (eps 1e-5), with optional affine weight and bias.
    public static func layerNorm(_ x: Variable, _ weight: Variable?, _ bias: Variable?, _ tape: Tape) -> Variable {
        let xv = x.value.contiguous()
        let b = x.backend
        let y = b.empty(xv.shape), mean = b.empty([xv.rows]), rstd = b.empty([xv.rows])
        b.layerNorm(x: xv, weight: weight?.value, bias: bias?.value, y: y, mean: mean, rstd: rstd)
        let out = output(y, tape, x, weight, bias)
        if out.requiresGrad {
            tape.record("layerNorm") {
                guard let dy = out.grad else { return }
                var dx: Tensor?, dw: Tensor?, db: Tensor?
                if x.requiresGrad { x.withGrad { g, acc in if !acc { b.fill(g, value: 0) }; dx = g } }
                if let weight, weight.requiresGrad { weight.withGrad { g, acc in if !acc { b.fill(g, value: 0) }; dw = g } }
                if let bias, bias.requiresGrad { bias.withGrad { g, acc in if !acc { b.fill(g, value: 0) }; db = g } }
                b.layerNormBackward(dy: dy, x: xv, weight: weight?.value, mean: mean, rstd: rstd, dx: dx, dWeight: dw, dBias: db)
            }
        }
        return out
    }

    /// RMSNorm over the last dimension (eps 1e-5), optional weight.
    public static func rmsNorm(_ x: Variable, _ weight: Variable?, _ tape: Tape) -> Variable {
        let xv = x.value.contiguous()
        let b = x.backend
        let y = b.empty(xv.shape), rstd = b.empty([xv.rows])
        b.rmsNorm(x: xv, weight: weight?.value, y: y, rstd: rstd)
        let out = output(y, tape, x, weight)
        if out.requiresGrad {
            tape.record("rmsNorm") {
                guard let dy = out.grad else { return }
                var dx: Tensor?, dw: Tensor?
                if x.requiresGrad { x.withGrad { g, acc in if !acc { b.fill(g, value: 0) }; dx = g } }
                if let weight, weight.requiresGrad { weight.withGrad { g, acc in if !acc { b.fill(g, value: 0) }; dw = g } }
                b.rmsNormBackward(dy: dy, x: xv, weight: weight?.value, rstd: rstd, dx: dx, dWeight: dw)
            }
        }
        return out
    }
}
