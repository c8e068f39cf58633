import AudioIO
import Engine
import Foundation
import Spectral

/// Training settings of `wavemamba classifier train`.
public struct ClassifierTrainingOptions: Sendable {
    public var epochs: Int = 30
    public var batch: Int = 32
    public var learningRate: Float = 2e-3
    /// AdamW's settings: decay 0.05, the global gradient norm clipped to 1, otherwise the defaults.
    public var optimizer = AdamWOptimizer.Config(weightDecay: 0.05, gradientClip: 1)
    public var warmupSteps: Int = 100
    public var seed: UInt64 = 0
    public var augmentation: Augmentation = Augmentation()
    /// Model shape (labels and feature statistics come from the data).
    public var dModel: Int = 64
    public var layers: Int = 3
    public var bidirectional: Bool = true

    public init() {}
}

/// One epoch's numbers, for progress and the log.
public struct ClassifierEpoch: Sendable {
    public var epoch: Int
    public var trainLoss: Double
    public var trainAccuracy: Double
    public var validAccuracy: Double?
    public var seconds: Double
}

/// Trains a `DigitClassifier` on a folder-labelled corpus: train split with augmentation,
/// the epoch with the best valid accuracy kept (lowest train loss on ties, or when there
/// is no valid split), its softmax temperature calibrated on the valid split, test accuracy
/// measured on it at the end.
public struct ClassifierTrainer {
    public let options: ClassifierTrainingOptions
    public let train: ClipSet
    public let valid: ClipSet?
    public let test: ClipSet?
    public let labels: [String]

    /// Splits `folder` (its `splits.tsv`, split folders, or the path hash) and collects the
    /// labels of the train split. Every clip must sit in a label folder.
    public init(folder: URL, options: ClassifierTrainingOptions, features: LogMelSettings = LogMelSettings(),
                warn: (AudioIOError) -> Void = { _ in }) throws {
        let all = try ClipSet.load(folder: folder, sampleRate: features.sampleRate, length: features.clipLength, warn: warn)
        let unlabelled = all.labels.filter { $0 == nil }.count
        guard unlabelled == 0 else {
            throw EvaluationError(path: folder.path, "\(unlabelled) of \(all.count) files are not in a label folder",
                                  fix: "put each clip in a folder named after its class (e.g. zero/a.wav, one/b.wav)")
        }
        guard let train = all.split(.train) else {
            throw EvaluationError(path: folder.path, "no training clips", fix: "give the corpus a train split (splits.tsv or a train/ folder)")
        }
        let labels = Array(Set(train.labels.compactMap { $0 })).sorted()
        guard labels.count >= 2 else {
            throw EvaluationError(path: folder.path, "the train split has \(labels.count) label folder(s)", fix: "a classifier needs at least two classes")
        }
        self.train = train
        valid = all.split(.valid)
        test = all.split(.test)
        self.labels = labels
        self.options = options
    }

    /// Uses ready-made sets (tests).
    public init(train: ClipSet, valid: ClipSet?, test: ClipSet?, options: ClassifierTrainingOptions) {
        self.train = train
        self.valid = valid
        self.test = test
        self.labels = Array(Set(train.labels.compactMap { $0 })).sorted()
        self.options = options
    }

    /// Per-mel mean and standard deviation of the (clean) training features.
    static func featureStatistics(_ logMel: [Float], nMels: Int) -> (mean: [Float], std: [Float]) {
        var sum = [Double](repeating: 0, count: nMels), sq = [Double](repeating: 0, count: nMels)
        let rows = logMel.count / nMels
        for r in 0..<rows { for k in 0..<nMels { let v = Double(logMel[r * nMels + k]); sum[k] += v; sq[k] += v * v } }
        let mean = sum.map { $0 / Double(rows) }
        let std = zip(sq, mean).map { max(($0 / Double(rows) - $1 * $1), 1e-6).squareRoot() }
        return (mean.map(Float.init), std.map(Float.init))
    }

    /// Trains and returns the model holding the best epoch's weights. `progress` is called
    /// after each batch (epoch, batch, batches, running loss), `epochDone` after each epoch,
    /// and `improved` whenever an epoch becomes the best so far, with the model holding its
    /// weights (so a caller can save it and an interrupted run still leaves a classifier).
    public func run(backend: CPUBackend, cache: FFTPlanCache, features: LogMelSettings = LogMelSettings(),
                    progress: (Int, Int, Int, Double) -> Void = { _, _, _, _ in },
                    epochDone: (ClassifierEpoch) -> Void = { _ in },
                    improved: (DigitClassifier, ClassifierEpoch) -> Void = { _, _ in }) -> (model: DigitClassifier, best: ClassifierEpoch) {
        let o = options, pool = backend.pool
        let front = LogMelFeatures(features, cache: cache)
        let stats = Self.featureStatistics(front.compute(train, pool: pool), nMels: features.nMels)
        var config = ClassifierConfig(labels: labels, features: features, featureMean: stats.mean, featureStd: stats.std)
        config.dModel = o.dModel
        config.layers = o.layers
        config.bidirectional = o.bidirectional
        let model = DigitClassifier(config: config, backend: backend, cache: cache, seed: o.seed)
        let optimizer = AdamWOptimizer(store: model.store, config: o.optimizer)
        let batchesPerEpoch = (train.count + o.batch - 1) / o.batch
        let schedule = LearningRateSchedule(peak: o.learningRate, warmupSteps: min(o.warmupSteps, batchesPerEpoch * o.epochs / 10),
                                            totalSteps: batchesPerEpoch * o.epochs, finalFraction: 0.02)
        let targetsOf = train.labels.map { Int32(labels.firstIndex(of: $0!)!) }
        var rng = SplitMix64(seed: o.seed ^ 0xA5A5_5A5A)
        var best: (epoch: ClassifierEpoch, values: [Float])?
        var step = 0
        var logMel = [Float](repeating: 0, count: o.batch * front.perClip)
        var clips = [Float](repeating: 0, count: o.batch * train.length)
        for epoch in 1...o.epochs {
            let started = Date()
            var order = Array(0..<train.count)
            rng.shuffle(&order)
            var lossSum = 0.0, right = 0, seen = 0
            for b in 0..<batchesPerEpoch {
                let idx = Array(order[(b * o.batch)..<min(train.count, (b + 1) * o.batch)])
                for (k, i) in idx.enumerated() {
                    var clip = train.clip(i)
                    o.augmentation.apply(&clip, rng: &rng)
                    clips.withUnsafeMutableBufferPointer { c in
                        clip.withUnsafeBufferPointer { (c.baseAddress! + k * train.length).update(from: $0.baseAddress!, count: train.length) }
                    }
                }
                clips.withUnsafeBufferPointer { c in
                    logMel.withUnsafeMutableBufferPointer { front.compute(c.baseAddress!, clips: idx.count, into: $0.baseAddress!, pool: pool) }
                }
                let x = logMel.withUnsafeBufferPointer { model.input(logMel: $0.baseAddress!, clips: idx.count) }
                let targets = backend.indices(idx.map { targetsOf[$0] }, shape: [idx.count])
                let tape = Tape()
                let (_, logits) = model.forward(x, tape: tape)
                let loss = Op.crossEntropy(logits, targets: targets, tape)
                let lossValue = Double(loss.value.floats()[0])
                model.store.zeroGrad()
                tape.backward(from: loss)
                let norm = optimizer.gradientNorm()
                if lossValue.isFinite && norm.isFinite {
                    optimizer.update(learningRate: schedule.learningRate(at: step), gradientNorm: norm)
                }
                step += 1
                let l = logits.value.floats(), k = labels.count
                for (r, i) in idx.enumerated() {
                    let row = l[(r * k)..<((r + 1) * k)]
                    let best: Int = row.indices.max(by: { (a: Int, b: Int) -> Bool in row[a] < row[b] })!
                    if best - r * k == Int(targetsOf[i]) { right += 1 }
                }
                lossSum += lossValue * Double(idx.count)
                seen += idx.count
                progress(epoch, b + 1, batchesPerEpoch, lossSum / Double(seen))
            }
            let summary = ClassifierEpoch(epoch: epoch, trainLoss: lossSum / Double(seen), trainAccuracy: Double(right) / Double(seen),
                                          validAccuracy: valid.flatMap { model.accuracy($0) },
                                          seconds: Date().timeIntervalSince(started))
            epochDone(summary)
            if best == nil || Self.better(summary, than: best!.epoch) {
                best = (summary, model.store.values!.floats())
                improved(model, summary)
            }
        }
        model.store.values!.copy(from: best!.values)
        if let valid { model.calibrate(on: valid) }
        return (model, best!.epoch)
    }

    static func better(_ a: ClassifierEpoch, than b: ClassifierEpoch) -> Bool {
        if let va = a.validAccuracy, let vb = b.validAccuracy, va != vb { return va > vb }
        return a.trainLoss < b.trainLoss
    }
}
