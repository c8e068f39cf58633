import Foundation
import Support
import Spectral

/// Every metric of one comparison: a set scored against a reference set.
public struct MetricSet: Codable, Sendable, Equatable {
    /// Clips in the scored set and in the reference.
    public var clips: Int
    public var referenceClips: Int
    /// FID: Fréchet distance of Gaussians fitted to the classifier embeddings (lower is better).
    public var fid: Double
    /// Inception Score of the scored set (1 … classes; higher is better).
    public var inceptionScore: Double
    /// Modified Inception Score of the scored set (higher is better).
    public var modifiedInceptionScore: Double
    /// AM score against the reference's label marginal (lower is better).
    public var amScore: Double
    /// Fréchet distance of Gaussians fitted to the per-clip mean log-mel vectors (classifier-free).
    public var melFrechetDistance: Double
    /// 1-D Wasserstein and Kolmogorov–Smirnov distances of per-clip spectral flatness and centroid (Hz).
    public var flatnessWasserstein: Double
    public var flatnessKS: Double
    public var centroidWasserstein: Double
    public var centroidKS: Double
    /// Share of the scored clips per predicted label, in the classifier's label order.
    public var labelShares: [Double]
    /// Mean of the top class probability (classifier confidence).
    public var meanConfidence: Double
    /// Accuracy against folder labels, when the scored clips have labels the classifier knows.
    public var accuracy: Double?
    /// Fraction of the scored clips, and of the reference clips, that hold a sound event
    /// (`EventRate`: the loudest 50 ms frame ≥ 25 dB above the median one).
    public var eventRate: Double? = nil
    public var referenceEventRate: Double? = nil
}

/// Per-set quantities computed once and shared by every comparison a set takes part in.
public struct SetAnalysis: Sendable {
    public var set: ClipSet
    public var classifier: DigitClassifier.Output
    public var embeddingFit: GaussianFit
    public var meanLogMel: [[Double]]
    public var melFit: GaussianFit
    public var spectral: SpectralStatistics.Values
    public var accuracy: Double?
    /// Per clip: whether it holds a sound event (`EventRate`).
    public var events: [Bool] = []

    /// The analysis of the clips at `indices` (e.g. a half of the reference for the ceiling),
    /// reusing the per-clip outputs instead of classifying again.
    public func subset(_ indices: [Int], labels known: [String], source: String? = nil) -> SetAnalysis {
        let sub = set.subset(indices, source: source)
        let out = DigitClassifier.Output(embeddings: indices.map { classifier.embeddings[$0] },
                                         probabilities: indices.map { classifier.probabilities[$0] },
                                         predictions: indices.map { classifier.predictions[$0] })
        let means = indices.map { meanLogMel[$0] }
        let labelled = indices.filter { set.labels[$0] != nil && known.contains(set.labels[$0]!) }
        let right = labelled.filter { known[classifier.predictions[$0]] == set.labels[$0] }.count
        return SetAnalysis(set: sub, classifier: out, embeddingFit: GaussianFit(rows: out.embeddings), meanLogMel: means,
                           melFit: GaussianFit(rows: means),
                           spectral: .init(flatness: indices.map { spectral.flatness[$0] }, centroid: indices.map { spectral.centroid[$0] }),
                           accuracy: labelled.isEmpty ? nil : Double(right) / Double(labelled.count),
                           events: events.isEmpty ? [] : indices.map { events[$0] })
    }
}

/// Computes the metrics: one `analyze` per clip set, then `compare` for any pair.
public struct Evaluator {
    public let classifier: DigitClassifier
    public let spectral: SpectralStatistics
    public let pool: ThreadPool

    public init(classifier: DigitClassifier, cache: FFTPlanCache, pool: ThreadPool) {
        self.classifier = classifier
        let s = classifier.config.features
        spectral = SpectralStatistics(sampleRate: s.sampleRate, nFFT: s.nFFT, hop: s.hop, cache: cache)
        self.pool = pool
    }

    /// Classifier outputs, Gaussian fits and spectral statistics of one set (≥ 2 clips).
    public func analyze(_ set: ClipSet) throws -> SetAnalysis {
        guard set.count >= 2 else {
            throw EvaluationError(path: set.source, "\(set.count) clip(s): the metrics need at least 2 (and \(FrechetDistance.minimumStableSamples(dimension: classifier.config.embeddingDimension)) for a stable FID)",
                                  fix: "generate or add more clips")
        }
        let output = classifier.classify(set)
        let logMel = classifier.features.compute(set, pool: pool)
        let means = classifier.features.meanLogMel(logMel, clips: set.count)
        let known = set.labels.contains { $0 != nil && classifier.config.labels.contains($0!) }
        return SetAnalysis(set: set, classifier: output, embeddingFit: GaussianFit(rows: output.embeddings),
                           meanLogMel: means, melFit: GaussianFit(rows: means), spectral: spectral.compute(set, pool: pool),
                           accuracy: known ? classifier.accuracy(set, output: output) : nil, events: EventRate.events(set))
    }

    /// Half A and half B of an analysed set (`ClipSet.halves`), for the real-vs-real ceiling.
    public func halves(_ a: SetAnalysis, seed: UInt64 = 0) throws -> (SetAnalysis, SetAnalysis) {
        guard a.set.count >= 4 else {
            throw EvaluationError(path: a.set.source, "\(a.set.count) clips cannot be split into two halves of at least 2 for the real-vs-real ceiling",
                                  fix: "use a reference set of at least 4 clips (\(2 * FrechetDistance.minimumStableSamples(dimension: classifier.config.embeddingDimension)) for stable halves)")
        }
        let (ia, ib) = a.set.halfIndices(seed: seed)
        return (a.subset(ia, labels: classifier.config.labels, source: a.set.source + " (half A)"),
                a.subset(ib, labels: classifier.config.labels, source: a.set.source + " (half B)"))
    }

    /// The metrics of `scored` against `reference`.
    public func compare(_ scored: SetAnalysis, reference: SetAnalysis) -> MetricSet {
        let p = scored.classifier.probabilities, q = reference.classifier.probabilities
        let k = classifier.config.classes
        var shares = [Double](repeating: 0, count: k)
        for c in scored.classifier.predictions { shares[c] += 1 / Double(scored.set.count) }
        return MetricSet(
            clips: scored.set.count, referenceClips: reference.set.count,
            fid: FrechetDistance.distance(scored.embeddingFit, reference.embeddingFit),
            inceptionScore: InceptionScores.inceptionScore(p),
            modifiedInceptionScore: InceptionScores.modifiedInceptionScore(p),
            amScore: InceptionScores.amScore(reference: q, generated: p),
            melFrechetDistance: FrechetDistance.distance(scored.melFit, reference.melFit),
            flatnessWasserstein: DistributionDistance.wasserstein1(scored.spectral.flatness, reference.spectral.flatness),
            flatnessKS: DistributionDistance.kolmogorovSmirnov(scored.spectral.flatness, reference.spectral.flatness),
            centroidWasserstein: DistributionDistance.wasserstein1(scored.spectral.centroid, reference.spectral.centroid),
            centroidKS: DistributionDistance.kolmogorovSmirnov(scored.spectral.centroid, reference.spectral.centroid),
            labelShares: shares,
            meanConfidence: p.reduce(0) { $0 + ($1.max() ?? 0) } / Double(max(1, p.count)),
            accuracy: scored.accuracy,
            eventRate: EventRate.rate(scored.events), referenceEventRate: EventRate.rate(reference.events))
    }

    /// Warnings about sample counts: FID (and the mel Fréchet distance) are unstable below
    /// `FrechetDistance.minimumStableSamples` for their dimension.
    public func sampleWarnings(_ sets: [ClipSet]) -> [String] {
        var out: [String] = []
        let d = classifier.config.embeddingDimension, need = FrechetDistance.minimumStableSamples(dimension: d)
        for s in sets where s.count < need {
            out.append("\(s.source): \(s.count) clips; FID on \(d)-dimensional embeddings needs at least \(need) (2 × dimension) for a stable estimate, and is biased upward below that (SC09 results use 2048+); compare FIDs only at equal clip counts")
        }
        return out
    }
}

/// SaShiMi's protocol of scoring generated clips ranked by the model's likelihood of them
/// (from the generator's manifest): the least and the most likely fractions are dropped.
public struct LikelihoodSelection: Codable, Sendable, Equatable {
    public var manifest: String
    /// Clips before the selection and kept.
    public var clips: Int
    public var scored: Int
    public var droppedLeastLikely: Int
    public var droppedMostLikely: Int
    public var dropLeastFraction: Double
    public var dropMostFraction: Double

    public init(manifest: String, clips: Int, droppedLeastLikely: Int, droppedMostLikely: Int, dropLeastFraction: Double, dropMostFraction: Double) {
        self.manifest = manifest
        self.clips = clips
        self.scored = clips - droppedLeastLikely - droppedMostLikely
        self.droppedLeastLikely = droppedLeastLikely
        self.droppedMostLikely = droppedMostLikely
        self.dropLeastFraction = dropLeastFraction
        self.dropMostFraction = dropMostFraction
    }

    /// "scored 281 of 512 clips: dropped the 205 least and 26 most likely (…)".
    public var summary: String {
        "scored \(scored) of \(clips) clips: dropped the \(droppedLeastLikely) least and \(droppedMostLikely) most likely (by the model's likelihood in \((manifest as NSString).lastPathComponent))"
    }

    /// Which of `bitsPerSample` (one per clip; lower is more likely) to keep, in their order:
    /// all but the round(n·least) highest and the round(n·most) lowest (ties in clip order).
    public static func kept(bitsPerSample: [Double], dropLeast least: Double, dropMost most: Double) -> (kept: [Int], least: Int, most: Int) {
        let n = bitsPerSample.count
        let dropLeast = Int((Double(n) * least).rounded()), dropMost = Int((Double(n) * most).rounded())
        let ranked = bitsPerSample.indices.sorted { (bitsPerSample[$0], $0) > (bitsPerSample[$1], $1) }   // least likely first
        let keep = ranked.dropFirst(dropLeast).dropLast(dropMost)
        return (keep.sorted(), dropLeast, dropMost)
    }
}

/// The whole evaluation written to JSON and the report.
public struct EvaluationResult: Codable, Sendable {
    public struct SetInfo: Codable, Sendable {
        public var folder: String
        public var clips: Int
        public var skippedFiles: Int

        public init(folder: String, clips: Int, skippedFiles: Int) {
            self.folder = folder
            self.clips = clips
            self.skippedFiles = skippedFiles
        }
    }

    public struct ClassifierInfo: Codable, Sendable {
        public var file: String
        public var labels: [String]
        public var parameters: Int
        public var embeddingDimension: Int
        public var testAccuracy: String?

        public init(file: String, labels: [String], parameters: Int, embeddingDimension: Int, testAccuracy: String?) {
            self.file = file
            self.labels = labels
            self.parameters = parameters
            self.embeddingDimension = embeddingDimension
            self.testAccuracy = testAccuracy
        }
    }

    public struct ModelNLL: Codable, Sendable {
        public var checkpoint: String
        public var bitsPerSample: Double
        public var clips: Int
        /// Which reference clips were scored ("test split" or "all").
        public var clipsFrom: String

        public init(checkpoint: String, bitsPerSample: Double, clips: Int, clipsFrom: String) {
            self.checkpoint = checkpoint
            self.bitsPerSample = bitsPerSample
            self.clips = clips
            self.clipsFrom = clipsFrom
        }
    }

    public var generated: SetInfo
    public var reference: SetInfo
    public var classifier: ClassifierInfo
    public var features: LogMelSettings
    /// Generated vs reference.
    public var metrics: MetricSet
    /// Reference half A vs half B: what real data scores (the ceiling).
    public var ceiling: MetricSet
    /// IS and mIS of the whole reference set, for scale.
    public var referenceInceptionScore: Double
    public var referenceModifiedInceptionScore: Double
    public var nll: ModelNLL?
    public var warnings: [String]
    public var date: String
    /// The generated clips kept by likelihood (`evaluate --drop-least-likely/--drop-most-likely`), if any.
    public var selection: LikelihoodSelection? = nil

    public init(generated: SetInfo, reference: SetInfo, classifier: ClassifierInfo, features: LogMelSettings, metrics: MetricSet,
                ceiling: MetricSet, referenceInceptionScore: Double, referenceModifiedInceptionScore: Double, nll: ModelNLL?,
                warnings: [String], date: String) {
        self.generated = generated
        self.reference = reference
        self.classifier = classifier
        self.features = features
        self.metrics = metrics
        self.ceiling = ceiling
        self.referenceInceptionScore = referenceInceptionScore
        self.referenceModifiedInceptionScore = referenceModifiedInceptionScore
        self.nll = nll
        self.warnings = warnings
        self.date = date
    }

    /// Pretty JSON with sorted keys; non-finite numbers become null (JSON has no NaN).
    public func json() throws -> Data {
        let enc = JSONEncoder()
        enc.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        enc.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        return try enc.encode(self)
    }
}
