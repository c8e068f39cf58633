import Foundation

/// AdamW (Loshchilov & Hutter) over a finalized `ParameterStore`, with decoupled weight
/// decay honoured per parameter, a per-parameter learning-rate cap, and clipping by the
/// global gradient norm. Defaults as PyTorch's: β = (0.9, 0.999), ε = 1e-8.
public final class AdamWOptimizer {
    public struct Config: Codable, Sendable, Equatable {
        public var beta1: Float = 0.9
        public var beta2: Float = 0.999
        public var eps: Float = 1e-8
        public var weightDecay: Float = 0.01
        /// Clip the global gradient norm to this (nil: no clipping).
        public var gradientClip: Float? = 1.0
        /// The SSM parameters' learning-rate cap (nil: none, as mamba_ssm). S4's convention,
        /// 1e-3, is what keeps complex Mamba from diverging at lr 2e-3.
        public var ssmLearningRate: Float? = 1e-3
        /// Whether Δ's projection weight decays like any weight (mamba_ssm) or not at all (S4).
        public var ssmWeightDecay = false

        public init(beta1: Float = 0.9, beta2: Float = 0.999, eps: Float = 1e-8, weightDecay: Float = 0.01, gradientClip: Float? = 1.0,
                    ssmLearningRate: Float? = 1e-3, ssmWeightDecay: Bool = false) {
            self.beta1 = beta1
            self.beta2 = beta2
            self.eps = eps
            self.weightDecay = weightDecay
            self.gradientClip = gradientClip
            self.ssmLearningRate = ssmLearningRate
            self.ssmWeightDecay = ssmWeightDecay
        }

        /// A parameter's learning rate at peak `lr`, and whether decay applies to it.
        public func treatment(_ o: ParameterOptions, learningRate lr: Float) -> (learningRate: Float, decays: Bool) {
            guard o.ssm else { return (lr, o.weightDecay) }
            return (min(lr, ssmLearningRate ?? .infinity), o.weightDecay && ssmWeightDecay)
        }
    }

    public let store: ParameterStore
    public var config: Config
    /// Steps taken so far (the bias correction uses step + 1 for the next one).
    public internal(set) var step = 0
    public let m: Tensor
    public let v: Tensor

    public init(store: ParameterStore, config: Config = Config()) {
        precondition(store.isFinalized, "finalize() the parameter store first")
        self.store = store
        self.config = config
        m = store.backend.zeros([store.count])
        v = store.backend.zeros([store.count])
    }

    /// The global L2 norm of all gradients.
    public func gradientNorm() -> Double { store.backend.sumOfSquares(store.grads!).squareRoot() }

    /// Applies one update with learning rate `lr` and returns the gradient norm before
    /// clipping. The caller checks it for NaN/Inf before calling (see `Trainer`).
    @discardableResult
    public func update(learningRate lr: Float, gradientNorm norm: Double? = nil) -> Double {
        let norm = norm ?? gradientNorm()
        var scale: Float = 1
        if let clip = config.gradientClip, norm > Double(clip) { scale = Float(Double(clip) / (norm + 1e-6)) }
        step += 1
        let b = store.backend
        for (range, opts) in store.optionRuns {
            let t = config.treatment(opts, learningRate: lr)
            b.adamW(parameters: store.view(store.values!, range), gradients: store.view(store.grads!, range),
                    m: store.view(m, range), v: store.view(v, range), step: step, learningRate: t.learningRate,
                    beta1: config.beta1, beta2: config.beta2, eps: config.eps,
                    weightDecay: t.decays ? config.weightDecay : 0, gradientScale: scale)
        }
        return norm
    }

    /// Restores step and moments (from a checkpoint's companion file).
    public func restore(step: Int, m mValues: [Float], v vValues: [Float]) {
        precondition(mValues.count == m.count && vValues.count == v.count)
        self.step = step
        m.copy(from: mValues)
        v.copy(from: vValues)
    }
}

/// Linear warm-up from 0 to `peak` over `warmupSteps`, then cosine decay to
/// `peak · finalFraction` at `totalSteps` (or constant).
public struct LearningRateSchedule: Codable, Sendable, Equatable {
    public enum Decay: String, Codable, Sendable { case cosine, constant }
    public var peak: Float
    public var warmupSteps: Int
    public var totalSteps: Int
    public var decay: Decay
    public var finalFraction: Float

    public init(peak: Float, warmupSteps: Int = 0, totalSteps: Int, decay: Decay = .cosine, finalFraction: Float = 0.0) {
        self.peak = peak
        self.warmupSteps = warmupSteps
        self.totalSteps = totalSteps
        self.decay = decay
        self.finalFraction = finalFraction
    }

    /// Learning rate for step `step` (0-based: the first update uses `lr(0)`).
    public func learningRate(at step: Int) -> Float {
        if step < warmupSteps { return peak * Float(step + 1) / Float(warmupSteps) }
        switch decay {
        case .constant: return peak
        case .cosine:
            let span = max(1, totalSteps - warmupSteps)
            let t = min(1, Float(step - warmupSteps) / Float(span))
            let floor = peak * finalFraction
            return floor + (peak - floor) * 0.5 * (1 + cos(.pi * t))
        }
    }
}

/// Exponential moving average of the parameters (evaluated or generated from, if enabled).
public final class ExponentialMovingAverage {
    public let store: ParameterStore
    public let decay: Float
    public let average: Tensor

    public init(store: ParameterStore, decay: Float) {
        self.store = store
        self.decay = decay
        average = store.backend.empty([store.count])
        store.backend.copy2D(from: store.values!.reshaped([1, store.count]), to: average.reshaped([1, store.count]), accumulate: false)
    }

    public func update() { store.backend.ema(average, toward: store.values!, decay: decay) }
}
