import Foundation

/// What the trainer reports while it runs (to `Trainer.onEvent`, on the training thread).
public enum TrainingEvent: Sendable {
    /// Before the first step of this session: `step` is 0 for a fresh run, else where it resumed.
    case started(step: Int, totalSteps: Int, resumed: Bool)
    /// After every step (skipped ones too).
    case step(StepReport)
    case validation(ValidationReport)
    /// A step whose loss, gradient norm or updated parameters were not finite: the update was
    /// undone (parameters, moments and EMA restored to the last good step) and training goes on.
    case skipped(step: Int, reason: String, consecutive: Int, limit: Int)
    case checkpoint(step: Int, url: URL)
    /// Stopped on request (Ctrl-C / SIGTERM / `requestStop`) after saving `checkpoint`.
    case interrupted(step: Int, checkpoint: URL)
    /// Stopped at `[train] max_time` after saving `checkpoint`.
    case timeLimitReached(step: Int, checkpoint: URL)
    case finished(step: Int, checkpoint: URL)
}

public struct StepReport: Sendable {
    /// Steps done, this one included (1-based).
    public var step: Int
    public var totalSteps: Int
    /// Mean next-sample cross-entropy of the batch, nats (NaN on a skipped step).
    public var loss: Double
    public var learningRate: Double
    /// Global gradient norm before clipping.
    public var gradientNorm: Double
    /// Audio samples (batch × clip length) per second of this step's wall time.
    public var samplesPerSecond: Double
    public var seconds: Double
    public var skipped: Bool

    public var bitsPerSample: Double { loss / log(2) }
}

public struct ValidationReport: Sendable {
    /// Steps done when it was measured.
    public var step: Int
    /// Mean NLL over all validation samples, nats.
    public var loss: Double
    public var batches: Int
    public var samples: Int
    /// Whether the EMA weights were evaluated (when `[train] ema` > 0).
    public var ema: Bool
    public var seconds: Double

    /// NLL in bits per sample (nats / ln 2): SaShiMi's and the Mamba paper's unit.
    public var bitsPerSample: Double { loss / log(2) }
}
