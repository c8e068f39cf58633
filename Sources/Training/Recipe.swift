import AudioIO
import Engine
import Foundation
import Models

/// Everything that defines a training run: the data and how it is tokenised, the model, and
/// the optimisation. Read from TOML (`Recipe.load`, see `RecipeParser` for the schema) and
/// written back, resolved, into every run folder (`tomlText`), so a run can be repeated from
/// its folder alone.
public struct Recipe: Sendable, Equatable {
    public var name: String
    public var description: String = ""
    public var data = DataSettings()
    /// The model, `[model]` in snake_case (`d_model`, `n_layers`, `pool`, …).
    public var model = SaShiMiConfig()
    public var train = TrainSettings()

    public init(name: String) { self.name = name }

    /// How audio becomes token sequences (`[data]`).
    public struct DataSettings: Sendable, Equatable {
        /// How the folder is organised (see `DataLayout`).
        public var layout: DataLayout = .folder
        /// Data folder used when `--data` is not given: absolute, or relative to the current
        /// directory or else to the repository holding the recipe (see `Recipe.resolveDataFolder`).
        public var defaultData: String?
        public var sampleRate = 16000
        /// Samples per training clip; a multiple of the model's pooling product.
        public var clipLength = 16000
        public var shortFiles: ShortFilePolicy = .pad
        public var quantization: Quantization = .mulaw
        public var normalization: Normalization = .minmax
        public var validFraction = 0.1
        public var testFraction = 0.1
        /// Decoded audio kept in memory; a larger corpus is streamed from disk.
        public var memoryBudgetMB = 2048

        public init() {}

        /// How `AudioDataset` reads the folder.
        public var datasetOptions: DatasetOptions {
            var o = DatasetOptions(sampleRate: sampleRate, segmentLength: clipLength, shortFiles: shortFiles,
                                   memoryBudgetBytes: memoryBudgetMB << 20, validFraction: validFraction, testFraction: testFraction)
            // SaShiMi splits YouTubeMix by position in file order (88 / 6 / 6 %), not by hash.
            o.orderedSplit = layout == .youtubemix
            return o
        }
    }

    /// Optimisation and bookkeeping (`[train]`). The optimiser keys (`betas`, `weight_decay`,
    /// `grad_clip`, `ssm_lr`, `ssm_weight_decay`) are the TOML form of `AdamWOptimizer.Config`,
    /// the one optimiser configuration; `AdamWOptimizer.Config(_:)` is the only translation.
    public struct TrainSettings: Sendable, Equatable {
        public var batchSize = 16
        /// Total optimiser steps (the cosine schedule ends here).
        public var steps = 1000
        /// Peak learning rate (the SSM parameters' cap, `ssmLR`, still applies).
        public var lr = 2e-3
        /// The learning-rate cap of the SSM parameters (A, Δ; S4's convention: 1e-3); 0: no cap
        /// (mamba_ssm's).
        public var ssmLR = 1e-3
        /// Whether Δ's projection weight (dt_proj.weight) gets weight decay (mamba_ssm: yes; S4's
        /// convention: no). A, D and the biases never do.
        public var ssmWeightDecay = false
        public var warmupSteps = 0
        public var schedule: LearningRateSchedule.Decay = .cosine
        public var finalLRFraction = 0.0
        public var weightDecay = 0.1
        /// Clip the global gradient norm to this; 0 turns clipping off.
        public var gradClip = 1.0
        /// AdamW's (β1, β2).
        public var betas: [Double] = [0.9, 0.999]
        /// EMA decay of the weights; 0 turns the EMA off.
        public var ema = 0.0
        /// Validate every this many steps (and at the start and the end); 0: only at the end.
        public var validateEvery = 500
        /// Batches of the valid split per validation; 0: the whole split.
        public var validationBatches = 8
        /// Checkpoint every this many steps; 0: only at the end (and on Ctrl-C).
        public var checkpointEvery = 1000
        /// Write a `train` line to metrics.jsonl every this many steps.
        public var logEvery = 10
        /// Seeds the initial weights, the data order and dropout.
        public var seed = 0
        /// Wall-clock limit of one training session (one `train` call), seconds; nil: none.
        /// At the limit the step finishes and a checkpoint is saved, as on Ctrl-C.
        public var maxTime: Double?
        /// Generate and score clips every this many steps (`Trainer.onSample`); 0: off.
        public var sampleEvery = 0
        /// Clips per sampling round.
        public var sampleClips = 64
        /// Seconds per sampled clip; nil: the clip length.
        public var sampleSeconds: Double?
        /// Which activations a step keeps for its backward; `.blocks` trades an extra forward
        /// for memory on long contexts. The same gradients either way.
        public var recompute: Recomputation = .none

        public init() {}
    }

    /// The audio settings stored with every checkpoint (what generation needs to decode).
    public var audioSettings: AudioSettings {
        var a = AudioSettings()
        a.sampleRate = data.sampleRate
        a.quantization = data.quantization.rawValue
        a.clipLength = data.clipLength
        a.normalization = data.normalization.rawValue
        return a
    }

    /// The optimiser configuration this recipe asks for (`AdamWOptimizer.Config(train)`).
    public var optimizerConfig: AdamWOptimizer.Config { AdamWOptimizer.Config(train) }

    public var learningRateSchedule: LearningRateSchedule {
        LearningRateSchedule(peak: Float(train.lr), warmupSteps: train.warmupSteps, totalSteps: train.steps,
                             decay: train.schedule, finalFraction: Float(train.finalLRFraction))
    }

}

extension AdamWOptimizer.Config {
    /// The optimiser a recipe's `[train]` asks for: its values as Float, 0 turning the gradient
    /// clip and the SSM learning-rate cap off; ε stays AdamW's default.
    public init(_ train: Recipe.TrainSettings) {
        self.init(beta1: Float(train.betas[0]), beta2: Float(train.betas[1]), weightDecay: Float(train.weightDecay),
                  gradientClip: train.gradClip > 0 ? Float(train.gradClip) : nil,
                  ssmLearningRate: train.ssmLR > 0 ? Float(train.ssmLR) : nil, ssmWeightDecay: train.ssmWeightDecay)
    }
}
