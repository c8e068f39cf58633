import Engine
import Foundation
import Layers
import SafeTensors
import Spectral

/// What a classifier file describes: the labels, the features it reads, its shape, and the
/// per-mel feature normalisation measured on its training set.
public struct ClassifierConfig: Codable, Sendable, Equatable {
    /// Class names in output order (the label folders of the training corpus, sorted).
    public var labels: [String]
    public var features: LogMelSettings
    /// Consecutive log-mel frames concatenated into one token (126 frames → 63 tokens):
    /// halves the sequence length at no loss of information.
    public var frameStack: Int = 2
    public var dModel: Int = 64
    /// Residual Mamba layers.
    public var layers: Int = 3
    public var dState: Int = 16
    public var expand: Int = 2
    /// Each layer also runs a second Mamba block over the time-reversed sequence (summed),
    /// so every frame's feature sees the whole clip.
    public var bidirectional: Bool = true
    /// Per-mel mean and standard deviation of the training features (normalisation).
    public var featureMean: [Float]
    public var featureStd: [Float]
    /// Softmax temperature fitted on the valid split (nil: 1). A classifier trained to near-zero
    /// loss is over-confident; IS, mIS and AM read its probabilities, and mIS in particular
    /// explodes with log-probabilities near −∞, so p(y|x) = softmax(logits / T) with the T that
    /// minimises the valid split's NLL (temperature scaling, Guo et al. 2017).
    public var temperature: Double?

    public init(labels: [String], features: LogMelSettings = LogMelSettings(), featureMean: [Float]? = nil, featureStd: [Float]? = nil) {
        self.labels = labels
        self.features = features
        self.featureMean = featureMean ?? [Float](repeating: 0, count: features.nMels)
        self.featureStd = featureStd ?? [Float](repeating: 1, count: features.nMels)
    }

    public var classes: Int { labels.count }
    /// Width of the embedding used for FID (the pooled features).
    public var embeddingDimension: Int { dModel }
}

/// A folder-labelled audio classifier built from the project's own layers:
///
///     log-mel (126 × 64) → per-mel standardise → stack 2 frames (63 × 128)
///     → Linear(128 → d) → L × [x + Mamba(LayerNorm(x)) (+ reversed-time Mamba)]
///     → LayerNorm → mean over time = embedding (d) → Linear(d → classes)
///
/// The embedding (the penultimate layer) is the feature space of FID; the softmax of the
/// logits gives p(y|x) for IS, mIS and AM.
public final class DigitClassifier {
    public static let kind = "wavemamba-classifier"
    public static let kindKey = "kind"
    public static let labelsKey = "labels"

    /// The configuration (`temperature` is set after training by `calibrate`).
    public internal(set) var config: ClassifierConfig
    public let store: ParameterStore
    public let features: LogMelFeatures
    let inputProj: Linear
    let norms: [LayerNormModule]
    let forwardBlocks: [MambaBlock]
    let backwardBlocks: [MambaBlock]
    let finalNorm: LayerNormModule
    let head: Linear

    /// Builds a freshly initialised model (parameters from `seed`) and finalises its store.
    public init(config: ClassifierConfig, backend: any Backend, cache: FFTPlanCache, seed: UInt64 = 0) {
        precondition(!config.labels.isEmpty && config.frameStack >= 1 && config.layers >= 1)
        self.config = config
        let store = ParameterStore(backend: backend)
        self.store = store
        features = LogMelFeatures(config.features, cache: cache)
        let d = config.dModel
        inputProj = Linear(store, "input_proj", inFeatures: config.features.nMels * config.frameStack, outFeatures: d, bias: true,
                           seed: parameterSeed(seed, "input_proj"))
        var norms: [LayerNormModule] = [], fwd: [MambaBlock] = [], bwd: [MambaBlock] = []
        let mamba = MambaConfig(dModel: d, dState: config.dState, expand: config.expand)
        for i in 0..<config.layers {
            norms.append(LayerNormModule(store, "layers.\(i).norm", channels: d))
            fwd.append(MambaBlock(store, prefix: "layers.\(i).mixer", config: mamba, seed: seed))
            if config.bidirectional { bwd.append(MambaBlock(store, prefix: "layers.\(i).mixer_reverse", config: mamba, seed: seed)) }
        }
        self.norms = norms
        forwardBlocks = fwd
        backwardBlocks = bwd
        finalNorm = LayerNormModule(store, "norm_f", channels: d)
        head = Linear(store, "head", inFeatures: d, outFeatures: config.classes, bias: true, seed: parameterSeed(seed, "head"))
        store.finalize()
    }

    /// Tokens per clip: ⌊frames / frameStack⌋ (a trailing odd frame is dropped).
    public var tokens: Int { features.frames / config.frameStack }
    public var parameterCount: Int { store.count }

    // MARK: Forward

    /// Standardised, frame-stacked model input (B, tokens, frameStack·nMels) from log-mel
    /// features (B, frames, nMels) flat.
    public func input(logMel: UnsafePointer<Float>, clips: Int) -> Tensor {
        let m = config.features.nMels, f = features.frames, width = tokens * config.frameStack * m
        var host = [Float](repeating: 0, count: clips * width)
        config.featureMean.withUnsafeBufferPointer { mean in
            config.featureStd.withUnsafeBufferPointer { std in
                for c in 0..<clips {
                    for i in 0..<width { host[c * width + i] = (logMel[c * f * m + i] - mean[i % m]) / std[i % m] }
                }
            }
        }
        return store.backend.tensor(host, shape: [clips, tokens, config.frameStack * m])
    }

    /// Embeddings (B, d) and logits (B, classes) for an input made by `input`.
    public func forward(_ input: Tensor, tape: Tape) -> (embedding: Variable, logits: Variable) {
        let b = input.shape[0], t = tokens, d = config.dModel
        var x = inputProj(Variable(input.reshaped([b * t, input.shape[2]])), tape)
        let reverse = config.bidirectional ? timeReversal(t) : nil
        for i in 0..<config.layers {
            let z = norms[i](x, tape)
            var y = forwardBlocks[i](z, batch: b, tape)
            if let reverse {
                let back = backwardBlocks[i](reversed(z, batch: b, steps: t, reverse, tape), batch: b, tape)
                y = Op.add(y, reversed(back, batch: b, steps: t, reverse, tape), tape)
            }
            x = Op.add(x, y, tape)
        }
        x = finalNorm(x, tape)
        // Mean over time: (B, t, d) → (B, d, t) · (1/t, …, 1/t)ᵀ → (B, d).
        let average = Variable(store.backend.tensor([Float](repeating: 1 / Float(t), count: t), shape: [1, t]))
        let pooled = Op.reshape(Op.linear(Op.transpose(x, batch: b, rows: t, cols: d, tape), average, nil, tape), [b, d], tape)
        return (pooled, head(pooled, tape))
    }

    /// The anti-identity J (t × t): x·Jᵀ reverses the last dimension.
    private func timeReversal(_ t: Int) -> Variable {
        var j = [Float](repeating: 0, count: t * t)
        for i in 0..<t { j[i * t + (t - 1 - i)] = 1 }
        return Variable(store.backend.tensor(j, shape: [t, t]))
    }

    /// Token-major (B·t, d) with each sequence's time order reversed.
    private func reversed(_ x: Variable, batch: Int, steps t: Int, _ j: Variable, _ tape: Tape) -> Variable {
        let d = x.value.columns
        let channelMajor = Op.transpose(x, batch: batch, rows: t, cols: d, tape)  // (B, d, t)
        let flipped = Op.linear(channelMajor, j, nil, tape)
        return Op.reshape(Op.transpose(flipped, batch: batch, rows: d, cols: t, tape), [batch * t, d], tape)
    }

    // MARK: Inference

    /// What the classifier says about a set of clips.
    public struct Output: Sendable {
        /// Pooled features (count rows of d): the FID embedding.
        public var embeddings: [[Float]]
        /// Softmax p(y|x) at the calibrated temperature (count rows of classes), in Double.
        public var probabilities: [[Double]]
        /// The raw logits (count rows of classes).
        public var logits: [[Float]] = []
        /// argmax class of each clip.
        public var predictions: [Int]
    }

    /// Classifies every clip of `set` (resampled/cut to the classifier's settings already),
    /// `batch` clips at a time.
    public func classify(_ set: ClipSet, batch: Int = 32) -> Output {
        precondition(set.sampleRate == config.features.sampleRate && set.length == config.features.clipLength,
                     "clips at \(set.sampleRate) Hz × \(set.length) for a classifier of \(config.features.sampleRate) Hz × \(config.features.clipLength)")
        var out = Output(embeddings: [], probabilities: [], predictions: [])
        let temperature = config.temperature ?? 1
        let pool = cpuPool
        let perClip = features.perClip
        var logMel = [Float](repeating: 0, count: min(batch, max(1, set.count)) * perClip)
        var start = 0
        while start < set.count {
            let n = min(batch, set.count - start)
            set.samples.withUnsafeBufferPointer { s in
                logMel.withUnsafeMutableBufferPointer { o in
                    features.compute(s.baseAddress! + start * set.length, clips: n, into: o.baseAddress!, pool: pool)
                }
            }
            let x = logMel.withUnsafeBufferPointer { input(logMel: $0.baseAddress!, clips: n) }
            let (embedding, logits) = forward(x, tape: .inference())
            let e = embedding.value.floats(), l = logits.value.floats()
            let d = config.dModel, k = config.classes
            for i in 0..<n {
                out.embeddings.append(Array(e[(i * d)..<((i + 1) * d)]))
                let row = Array(l[(i * k)..<((i + 1) * k)])
                let p = InceptionScores.softmax(row, temperature: temperature)
                out.probabilities.append(p)
                out.logits.append(row)
                out.predictions.append(p.indices.max { p[$0] < p[$1] }!)
            }
            start += n
        }
        return out
    }

    /// The backend's thread pool (CPU), or a default pool, for the spectral front end.
    public var cpuPool: ThreadPool { (store.backend as? any HostBackend)?.pool ?? ThreadPool() }

    /// Fraction of the clips whose folder label is predicted; clips whose label the
    /// classifier does not know count as wrong. Nil when no clip has a label.
    public func accuracy(_ set: ClipSet, output: Output? = nil) -> Double? {
        let output = output ?? classify(set)
        let labelled = set.labels.indices.filter { set.labels[$0] != nil }
        guard !labelled.isEmpty else { return nil }
        let right = labelled.filter { config.labels[output.predictions[$0]] == set.labels[$0] }.count
        return Double(right) / Double(labelled.count)
    }

    // MARK: Calibration

    /// Fits the softmax temperature on labelled clips (normally the valid split) by minimising
    /// their mean NLL over log T (golden-section search, T in [0.05, 20]), and stores it in the
    /// config. Returns T and the NLL (nats) before (T = 1) and after.
    @discardableResult
    public func calibrate(on set: ClipSet) -> (temperature: Double, nllBefore: Double, nllAfter: Double)? {
        let output = classify(set)
        let pairs = set.labels.indices.compactMap { i in set.labels[i].flatMap { config.labels.firstIndex(of: $0) }.map { (output.logits[i], $0) } }
        guard !pairs.isEmpty else { return nil }
        func nll(_ t: Double) -> Double {
            pairs.reduce(0) { $0 - Foundation.log(max(InceptionScores.softmax($1.0, temperature: t)[$1.1], 1e-300)) } / Double(pairs.count)
        }
        var lo = Foundation.log(0.05), hi = Foundation.log(20.0)
        let phi = (5.0.squareRoot() - 1) / 2
        var a = hi - phi * (hi - lo), b = lo + phi * (hi - lo)
        var fa = nll(Foundation.exp(a)), fb = nll(Foundation.exp(b))
        for _ in 0..<60 {
            if fa < fb { hi = b; b = a; fb = fa; a = hi - phi * (hi - lo); fa = nll(Foundation.exp(a)) }
            else { lo = a; a = b; fa = fb; b = lo + phi * (hi - lo); fb = nll(Foundation.exp(b)) }
        }
        let t = Foundation.exp((lo + hi) / 2)
        config.temperature = t
        return (t, nll(1), nll(t))
    }

    // MARK: Files

    /// Writes the weights (or `values`, e.g. the best epoch's, in the store's layout) with
    /// the config, the labels and `extra` in the metadata; atomic.
    public func save(to url: URL, extra: [String: String] = [:], values: Tensor? = nil) throws {
        let enc = JSONEncoder()
        enc.outputFormatting = [.sortedKeys]
        var metadata = extra
        metadata[Checkpoint.configKey] = String(decoding: try enc.encode(config), as: UTF8.self)
        metadata[Self.labelsKey] = String(decoding: try enc.encode(config.labels), as: UTF8.self)
        metadata[Self.kindKey] = Self.kind
        metadata["parameters"] = String(parameterCount)
        try Checkpoint.saveWeights(store, to: url, metadata: metadata, values: values)
    }

    /// Reads a file written by `save` (`wavemamba classifier train`).
    public static func load(_ url: URL, backend: any Backend, cache: FFTPlanCache) throws -> (classifier: DigitClassifier, metadata: [String: String]) {
        guard FileManager.default.fileExists(atPath: url.path) else {
            throw EvaluationError(path: url.path, "no such classifier file",
                                  fix: "pass a file written by `wavemamba classifier train`, or leave --classifier out to use the bundled Assets/classifier-digits.safetensors")
        }
        let file = try SafeTensorsFile(contentsOf: url)
        guard file.metadata[kindKey] == kind, let text = file.metadata[Checkpoint.configKey],
              let config = try? JSONDecoder().decode(ClassifierConfig.self, from: Data(text.utf8)) else {
            throw EvaluationError(path: url.path, "not a wavemamba classifier (no classifier config in its metadata)",
                                  fix: "pass a file written by `wavemamba classifier train`; model checkpoints go to --checkpoint")
        }
        let model = DigitClassifier(config: config, backend: backend, cache: cache)
        _ = try Checkpoint.loadWeights(model.store, from: url)
        return (model, file.metadata)
    }
}
