// AdamW (PyTorch torch.optim.AdamW semantics), global-norm gradient clipping helpers and an
// EMA of the parameters. All updates are element-wise, so their results do not depend on
// the thread count; the norm uses the deterministic chunked reduction.

public enum AdamW {
    /// Hyper-parameters of one update. Defaults are PyTorch's (lr 1e-3, betas (0.9, 0.999),
    /// eps 1e-8, weight_decay 1e-2).
    public struct Config: Sendable {
        public var lr: Float
        public var beta1: Float
        public var beta2: Float
        public var eps: Float
        public var weightDecay: Float
        public init(lr: Float = 1e-3, beta1: Float = 0.9, beta2: Float = 0.999, eps: Float = 1e-8, weightDecay: Float = 1e-2) {
            self.lr = lr; self.beta1 = beta1; self.beta2 = beta2; self.eps = eps; self.weightDecay = weightDecay
        }
    }

    /// One fused AdamW step over `count` parameters (all buffers count floats, updated in place):
    ///   g  = gradScale · grad                    (gradScale: e.g. the clip factor; 1 = none)
    ///   p ← p · (1 − lr·wd)                      (decoupled decay; skipped when wd = 0)
    ///   m ← β1·m + (1 − β1)·g;  v ← β2·v + (1 − β2)·g²
    ///   p ← p − (lr / (1 − β1ᵗ)) · m / (√v / √(1 − β2ᵗ) + eps)
    /// `step` is t ≥ 1 (the count of updates including this one). m and v start at 0.
    public static func update(params: UnsafeMutablePointer<Float>, grads: UnsafePointer<Float>,
                              m: UnsafeMutablePointer<Float>, v: UnsafeMutablePointer<Float>, count n: Int,
                              step t: Int, config c: Config, gradScale: Float = 1, pool: ThreadPool) {
        // Bias corrections in double, as PyTorch does on the host.
        let bc1 = 1 - pow(Double(c.beta1), Double(t))
        let bc2 = 1 - pow(Double(c.beta2), Double(t))
        let stepSize = Float(Double(c.lr) / bc1)
        let invSqrtBC2 = Float(1 / bc2.squareRoot())
        let decay: Float = 1 - c.lr * c.weightDecay
        let doDecay = c.weightDecay != 0
        let b1 = c.beta1, b2 = c.beta2, ob1 = 1 - c.beta1, ob2 = 1 - c.beta2, eps = c.eps
        pool.forRanges(n, grain: elementwiseGrain) { r in
            var i = r.lowerBound
            while i < r.upperBound {
                let w = min(16, r.upperBound - i)
                let full = w == 16
                var p = full ? load16(params + i) : loadPartial(params + i, w)
                let g = (full ? load16(grads + i) : loadPartial(grads + i, w)) * gradScale
                var mv = full ? load16(m + i) : loadPartial(m + i, w)
                var vv = full ? load16(v + i) : loadPartial(v + i, w)
                if doDecay { p *= decay }
                mv = b1 * mv + ob1 * g
                vv = b2 * vv + ob2 * (g * g)
                let denom = vv.squareRoot() * invSqrtBC2 + eps
                p -= stepSize * mv / denom
                if full {
                    store16(p, params + i); store16(mv, m + i); store16(vv, v + i)
                } else {
                    storePartial(p, params + i, w); storePartial(mv, m + i, w); storePartial(vv, v + i, w)
                }
                i += 16
            }
        }
    }

    /// Σ over buffers of Σ x² (double), e.g. all gradient buffers for the global norm.
    /// Each buffer is reduced deterministically; buffers are added in the given order.
    public static func sumOfSquares(_ buffers: [(UnsafePointer<Float>, Int)], pool: ThreadPool) -> Double {
        var s = 0.0
        for (p, n) in buffers { s += Reductions.sumOfSquares(p, count: n, pool: pool) }
        return s
    }

    /// √(Σ over buffers of Σ x²): the global L2 norm.
    public static func globalNorm(_ buffers: [(UnsafePointer<Float>, Int)], pool: ThreadPool) -> Double {
        sumOfSquares(buffers, pool: pool).squareRoot()
    }

    /// The factor PyTorch's clip_grad_norm_ applies: min(1, maxNorm / (norm + 1e-6)).
    /// Pass it as `gradScale` to `update`, or apply it with `scale`.
    public static func clipFactor(norm: Double, maxNorm: Double) -> Float {
        Float(min(1, maxNorm / (norm + 1e-6)))
    }

    /// x[i] *= s (in place), e.g. gradient clipping.
    public static func scale(_ x: UnsafeMutablePointer<Float>, count n: Int, by s: Float, pool: ThreadPool) {
        Elementwise.scale(UnsafePointer(x), s, x, count: n, pool: pool)
    }

    /// ema[i] = decay·ema[i] + (1 − decay)·p[i] (in place on ema).
    public static func emaUpdate(ema: UnsafeMutablePointer<Float>, params: UnsafePointer<Float>, count n: Int,
                                 decay: Float, pool: ThreadPool) {
        Elementwise.axpby(alpha: 1 - decay, params, beta: decay, ema, count: n, pool: pool)
    }
}

import Foundation
