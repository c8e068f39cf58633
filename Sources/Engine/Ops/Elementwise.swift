import Kernels

public typealias ActivationKind = Kernels.ActivationKind

extension Op {
    /// y = f(x) for SiLU, softplus, exp, sigmoid, tanh, GELU, ReLU.
    public static func activation(_ kind: ActivationKind, _ x: Variable, _ tape: Tape) -> Variable {
        let xv = x.value.contiguous()
        let y = x.backend.empty(xv.shape)
        x.backend.activation(kind, x: xv, y: y)
        let out = output(y, tape, x)
        if out.requiresGrad {
            tape.record("\(kind)") {
                guard let dy = out.grad else { return }
                x.withGrad { dx, acc in
                    x.backend.activationBackward(kind, saved: kind.backwardUsesOutput ? y : xv, dy: dy, dx: dx, accumulate: acc)
                }
            }
        }
        return out
    }

    public static func silu(_ x: Variable, _ tape: Tape) -> Variable { activation(.silu, x, tape) }
    public static func softplus(_ x: Variable, _ tape: Tape) -> Variable { activation(.softplus, x, tape) }
    public static func gelu(_ x: Variable, _ tape: Tape) -> Variable { activation(.gelu, x, tape) }
    public static func sigmoid(_ x: Variable, _ tape: Tape) -> Variable { activation(.sigmoid, x, tape) }
    public static func tanh(_ x: Variable, _ tape: Tape) -> Variable { activation(.tanh, x, tape) }
    public static func exp(_ x: Variable, _ tape: Tape) -> Variable { activation(.exp, x, tape) }

    /// a + b (same shape): residual connections.
    public static func add(_ a: Variable, _ b: Variable, _ tape: Tape) -> Variable {
        let av = a.value.contiguous(), bv = b.value.contiguous()
        precondition(av.shape == bv.shape, "add: \(av.shape) vs \(bv.shape)")
        let y = a.backend.empty(av.shape)
        a.backend.add(av, bv, out: y)
        let out = output(y, tape, a, b)
        if out.requiresGrad {
            tape.record("add") {
                guard let dy = out.grad else { return }
                for v in [a, b] where v.requiresGrad {
                    v.withGrad { dv, acc in v.backend.scale(dy, by: 1, out: dv, accumulate: acc) }
                }
            }
        }
        return out
    }

    /// a ⊙ b (same shape): gates.
    public static func mul(_ a: Variable, _ b: Variable, _ tape: Tape) -> Variable {
        let av = a.value.contiguous(), bv = b.value.contiguous()
        precondition(av.shape == bv.shape, "mul: \(av.shape) vs \(bv.shape)")
        let y = a.backend.empty(av.shape)
        a.backend.mul(av, bv, out: y, accumulate: false)
        let out = output(y, tape, a, b)
        if out.requiresGrad {
            tape.record("mul") {
                guard let dy = out.grad else { return }
                if a.requiresGrad { a.withGrad { da, acc in a.backend.mul(dy, bv, out: da, accumulate: acc) } }
                if b.requiresGrad { b.withGrad { db, acc in b.backend.mul(dy, av, out: db, accumulate: acc) } }
            }
        }
        return out
    }

    /// s · x.
    public static func scale(_ x: Variable, _ s: Float, _ tape: Tape) -> Variable {
        let xv = x.value.contiguous()
        let y = x.backend.empty(xv.shape)
        x.backend.scale(xv, by: s, out: y, accumulate: false)
        let out = output(y, tape, x)
        if out.requiresGrad {
            tape.record("scale") {
                guard let dy = out.grad else { return }
                x.withGrad { dx, acc in x.backend.scale(dy, by: s, out: dx, accumulate: acc) }
            }
        }
        return out
    }

    /// x ⊙ v with v broadcast over rows: x (…, C), v (C). The D skip, per-channel scales.
    public static func mulRowVector(_ x: Variable, _ v: Variable, _ tape: Tape) -> Variable {
        let xv = x.value.contiguous()
        precondition(v.value.count == xv.columns)
        let y = x.backend.empty(xv.shape)
        x.backend.mulRowVector(xv, v.value, out: y)
        let out = output(y, tape, x, v)
        if out.requiresGrad {
            tape.record("mulRowVector") {
                guard let dy = out.grad else { return }
                let b = x.backend
                var dx: Tensor?, dv: Tensor?
                if x.requiresGrad { x.withGrad { g, acc in if !acc { b.fill(g, value: 0) }; dx = g } }
                if v.requiresGrad { v.withGrad { g, acc in if !acc { b.fill(g, value: 0) }; dv = g } }
                b.mulRowVectorBackward(dy: dy, x: xv, v: v.value, dx: dx, dv: dv)
            }
        }
        return out
    }

    /// Σ x ⊙ w as a scalar (w constant). Gradient checks use it as a loss with random w.
    public static func weightedSum(_ x: Variable, _ w: Tensor, _ tape: Tape) -> Variable {
        let xv = x.value.contiguous()
        let prod = x.backend.empty(xv.shape)
        x.backend.mul(xv, w, out: prod, accumulate: false)
        let s = x.backend.tensor([Float(x.backend.sum(prod))], shape: [1])
        let out = output(s, tape, x)
        if out.requiresGrad {
            tape.record("weightedSum") {
                guard let g = out.grad else { return }
                let scale = g.floats()[0]
                x.withGrad { dx, acc in x.backend.scale(w, by: scale, out: dx, accumulate: acc) }
            }
        }
        return out
    }

    /// GLU over the last dimension: [a, b] → a ⊙ σ(b) (SaShiMi's S4 block output).
    public static func glu(_ x: Variable, _ tape: Tape) -> Variable {
        let xv = x.value.contiguous()
        let y = x.backend.empty(Array(xv.shape.dropLast()) + [xv.columns / 2])
        x.backend.glu(x: xv, y: y)
        let out = output(y, tape, x)
        if out.requiresGrad {
            tape.record("glu") {
                guard let dy = out.grad else { return }
                x.withGrad { dx, acc in x.backend.gluBackward(dy: dy, x: xv, dx: dx, accumulate: acc) }
            }
        }
        return out
    }

    /// Inverted dropout with probability p while `training`; the mask is regenerated from
    /// `seed` in the backward, never stored. Element i takes the generator's word
    /// `offset + i` (a data-parallel rank's first sample, in elements; 0 in one process).
    public static func dropout(_ x: Variable, p: Float, seed: UInt64, offset: UInt64 = 0, training: Bool, _ tape: Tape) -> Variable {
        guard p > 0, training else { return x }
        let xv = x.value.contiguous()
        let y = x.backend.empty(xv.shape)
        x.backend.dropout(x: xv, y: y, p: p, seed: seed, offset: offset)
        let out = output(y, tape, x)
        if out.requiresGrad {
            tape.record("dropout") {
                guard let dy = out.grad else { return }
                x.withGrad { dx, acc in x.backend.dropoutBackward(dy: dy, dx: dx, p: p, seed: seed, offset: offset, accumulate: acc) }
            }
        }
        return out
    }
}
