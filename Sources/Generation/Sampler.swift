import AudioIO
import Engine
import Foundation
import FusedSteps
import Models

/// Autoregressive sampling from a SaShiMi model in step mode, batched over streams.
///
/// Each stream has its own seeded generator, so stream k of a batch produces the same audio
/// as stream k of any other run with the same seed and settings. Every buffer is allocated
/// in `init`; producing a sample allocates nothing.
///
/// On the CPU the sampler runs the fused fast path (`SaShiMiFastStepState`): each thread
/// steps the model for its share of the streams and samples their next tokens, one
/// thread-pool dispatch per generated sample. On a backend with step graphs (CUDA) each
/// sample is one graph launch that also draws the next tokens on the device (`StepGraphs`),
/// with the same uniforms as the host draw. Other devices use the Backend-generic step.
///
/// Every path also records each stream's log-likelihood under the model: the sum over the
/// generated samples of log p(drawn token), p the model's own softmax at temperature 1
/// without top-p, whatever the sampling settings (`logLikelihood`, `bitsPerSample`).
public final class Sampler {
    public struct Settings: Sendable {
        /// Softmax temperature (1 = the model's distribution; lower is more conservative).
        public var temperature: Float = 1
        /// Nucleus sampling: keep the smallest set of classes whose probability reaches top-p (1 = off).
        public var topP: Float = 1
        public var seed: UInt64 = 0

        public init(temperature: Float = 1, topP: Float = 1, seed: UInt64 = 0) {
            self.temperature = temperature
            self.topP = topP
            self.seed = seed
        }
    }

    /// Which step implementation drives the model.
    public enum Path: Sendable {
        /// The CPU fast path when the model is on the CPU (and its shape is covered), step
        /// graphs with on-device sampling on a `StepGraphBackend` (CUDA), else generic.
        case automatic
        /// The Backend-generic step (`SaShiMi.step`), on any device.
        case generic
    }

    public let model: SaShiMi
    public let batch: Int
    public let settings: Settings
    /// The fast path's state (CPU), or nil when the generic path runs.
    public let fast: SaShiMiFastStepState?
    /// The generic path's state, or nil when the fast path runs.
    public let state: SaShiMiStepState?
    public var usesFastPath: Bool { fast != nil }
    /// Step graphs and on-device sampling (`generate`; `prime` stays on the generic step).
    let graphs: StepGraphs?
    public var usesStepGraphs: Bool { graphs != nil }
    /// Node counts of the step graphs captured so far (one graph per pooling phase).
    public var stepGraphNodeCounts: [Int] { graphs?.capturedNodeCounts ?? [] }
    private let classes: Int
    private let probs: UnsafeMutablePointer<Float>        // (batch, classes)
    private let rngs: UnsafeMutablePointer<SplitMix64>    // one per stream
    private let order: UnsafeMutablePointer<Int32>        // (batch, classes) top-p scratch
    private let next: UnsafeMutablePointer<Int32>         // the token each stream feeds next
    private let logLikelihoods: UnsafeMutablePointer<Double> // per stream, nats, over the generated samples
    private let hostLogits: UnsafeMutablePointer<Float>?  // generic path on a device: the logits on the host
    private let probsTensor: Tensor?                      // generic path: softmax output
    private var nextArray: [Int32]                        // generic path: `next` as SaShiMi.step takes it
    /// Samples the rows of a part of the batch (made once: passing it per step allocates nothing).
    private var sampleRows: ((Range<Int>) -> Void)?
    /// The silence class (SaShiMi's start token).
    public static let startToken: Int32 = 128
    /// Samples generated per stream so far (`generate`; a prompt does not count).
    public private(set) var generatedCount = 0

    /// Per stream: Σ log p(drawn token) in nats over the generated samples, p the model's
    /// distribution (softmax at temperature 1, no top-p), whatever `settings` sampled with.
    public var logLikelihood: [Double] { (0..<batch).map { logLikelihoods[$0] } }

    /// Per stream: −mean log₂ p over the generated samples (the `nll` command's unit).
    public var bitsPerSample: [Double] {
        (0..<batch).map { -logLikelihoods[$0] / Double(max(generatedCount, 1)) / log(2) }
    }

    /// `maxSamples`: the most samples (prompt included) the sampler will step; it sizes the KV
    /// caches of attention blocks.
    public init(model: SaShiMi, batch: Int, settings: Settings, path: Path = .automatic, maxSamples: Int = 1 << 16) {
        precondition(settings.temperature > 0 && settings.topP > 0 && settings.topP <= 1)
        self.model = model
        self.batch = batch
        self.settings = settings
        classes = model.config.classes
        fast = path == .automatic ? model.makeFastStepState(batch: batch) : nil
        // The graph path steps each residual Mamba block as one launch where the backend can.
        let graphBackend = path == .automatic && fast == nil ? (model.store.backend as? any StepGraphBackend).flatMap { $0.stepGraphsEnabled ? $0 : nil } : nil
        state = fast == nil ? model.makeStepState(batch: batch, fusedBlocks: graphBackend != nil, maxSamples: maxSamples) : nil
        if let state, let backend = graphBackend {
            graphs = StepGraphs(model: model, state: state, backend: backend, settings: settings)
        } else {
            graphs = nil
        }
        probsTensor = fast == nil && graphs == nil ? model.store.backend.empty([batch, classes]) : nil
        probs = .allocate(capacity: batch * classes)
        probs.initialize(repeating: 0, count: batch * classes)
        rngs = .allocate(capacity: batch)
        for s in 0..<batch { (rngs + s).initialize(to: SplitMix64(seed: Self.streamSeed(settings.seed, s))) }
        order = .allocate(capacity: batch * classes)
        order.initialize(repeating: 0, count: batch * classes)
        next = .allocate(capacity: batch)
        next.initialize(repeating: Self.startToken, count: batch)
        logLikelihoods = .allocate(capacity: batch)
        logLikelihoods.initialize(repeating: 0, count: batch)
        if fast == nil && graphs == nil && model.store.backend.device != .cpu {
            hostLogits = .allocate(capacity: batch * classes)
        } else {
            hostLogits = nil
        }
        nextArray = [Int32](repeating: Self.startToken, count: batch)
        sampleRows = { [unowned self] rows in self.sample(rows: rows) }
    }

    deinit {
        probs.deallocate()
        rngs.deallocate()
        order.deallocate()
        next.deallocate()
        logLikelihoods.deallocate()
        hostLogits?.deallocate()
    }

    /// Teacher-forces `tokens` (batch × count, stream-major) through the model: a prompt.
    public func prime(_ tokens: [[Int32]]) {
        precondition(tokens.count == batch)
        let n = tokens.map(\.count).min() ?? 0
        for t in 0..<n {
            for b in 0..<batch { next[b] = tokens[b][t] }
            stepModel(then: nil)
        }
    }

    /// Sets the token every stream feeds next (e.g. a prompt's last sample).
    public func setNext(_ token: Int32) {
        for b in 0..<batch { next[b] = token }
    }

    /// One model step on `next`; the fast path runs `then` on each part's thread.
    private func stepModel(then: ((Range<Int>) -> Void)?) {
        if let fast {
            fast.step(tokens: next, then: then)
        } else {
            for b in 0..<batch { nextArray[b] = next[b] }
            model.step(tokens: nextArray, state!)
            then?(0..<batch)
        }
    }

    /// Samples `count` new tokens per stream into `out[b][...]` (appending).
    /// With step graphs, `progress` is called every few hundred samples (when the device's
    /// tokens come to the host), else after every sample.
    public func generate(count: Int, into out: inout [[UInt8]], progress: ((Int) -> Void)? = nil) {
        precondition(out.count == batch)
        defer { generatedCount += count }
        if let graphs {
            let last = graphs.generate(count: count, next: (0..<batch).map { next[$0] }, into: &out, logLikelihood: logLikelihoods,
                                       progress: progress)
            for s in 0..<batch { next[s] = last[s] }
            return
        }
        for t in 0..<count {
            stepModel(then: sampleRows)
            for s in 0..<batch { out[s].append(UInt8(next[s])) }
            progress?(t + 1)
        }
    }

    /// Softmax and a draw for streams `rows`; writes their next tokens. Touches only those
    /// rows' buffers, so parts may run it concurrently.
    private func sample(rows: Range<Int>) {
        let logits: UnsafePointer<Float>
        // The raw logits (the model's distribution), for the likelihood of the draws.
        let raw: UnsafePointer<Float>
        if let fast {
            logits = UnsafePointer(fast.logits)
            raw = logits
        } else {
            let l = state!.logits
            if let hostLogits {
                let host = l.floats()
                host.withUnsafeBufferPointer { hostLogits.update(from: $0.baseAddress!, count: batch * classes) }
                raw = UnsafePointer(hostLogits)
            } else {
                raw = UnsafePointer(l.pointer)
            }
            model.store.backend.softmax(logits: l, probs: probsTensor!, temperature: settings.temperature)
            if probsTensor!.device == .cpu {
                probs.update(from: probsTensor!.pointer, count: batch * classes)
            } else {
                // On a GPU the probabilities come to the host (batch × classes floats per step).
                let host = probsTensor!.floats()
                host.withUnsafeBufferPointer { probs.update(from: $0.baseAddress!, count: batch * classes) }
            }
            logits = UnsafePointer(probs)
        }
        if let fast {
            fast.softmax(rows: rows, probs: probs, temperature: settings.temperature)
        }
        for s in rows {
            let u = Self.unit(rngs[s].next())
            next[s] = Int32(Self.draw(probs + s * classes, classes: classes, u: u, topP: settings.topP, order: order + s * classes))
            logLikelihoods[s] += Self.logSoftmax(raw + s * classes, classes: classes, at: Int(next[s]))
        }
    }

    /// log softmax(x)[c] of one row of logits, in double precision.
    public static func logSoftmax(_ x: UnsafePointer<Float>, classes: Int, at c: Int) -> Double {
        var m = -Double.infinity
        for k in 0..<classes { m = max(m, Double(x[k])) }
        var sum = 0.0
        for k in 0..<classes { sum += exp(Double(x[k]) - m) }
        return Double(x[c]) - m - log(sum)
    }

    /// The uniform of draw k (0-based) of stream `stream`: word k of the stream's SplitMix64,
    /// as a pure function of (seed, stream, k) (what the on-device sampler computes), equal to
    /// the k-th `next()` of the host's sequential generator.
    public static func uniform(seed: UInt64, stream: Int, draw k: UInt64) -> Float {
        // SplitMix64's state advances by a constant: the generator k words on starts there.
        var g = SplitMix64(seed: streamSeed(seed, stream) &+ k &* 0x9E37_79B9_7F4A_7C15)
        return unit(g.next())
    }

    /// Stream s's generator seed.
    public static func streamSeed(_ seed: UInt64, _ s: Int) -> UInt64 { seed &+ UInt64(s) &* 0x9E37_79B9_7F4A_7C15 }

    /// 24 high bits → [0, 1).
    static func unit(_ z: UInt64) -> Float { Float(z >> 40) / Float(1 << 24) }

    /// Draws a class from one row of probabilities with nucleus (top-p) filtering, given a
    /// uniform u ∈ [0, 1). `order`: `classes` Int32 of scratch.
    public static func draw(_ p: UnsafeMutablePointer<Float>, classes: Int, u: Float, topP: Float, order: UnsafeMutablePointer<Int32>) -> Int {
        if topP >= 1 {
            var acc: Float = 0
            var total: Float = 0
            for k in 0..<classes { total += p[k] }
            let target = u * total
            for k in 0..<classes {
                acc += p[k]
                if acc > target { return k }
            }
            return classes - 1
        }
        // Sort classes by probability (in place, no allocation), keep the nucleus, renormalise.
        var o = UnsafeMutableBufferPointer(start: order, count: classes)
        for k in 0..<classes { o[k] = Int32(k) }
        o.sort { p[Int($0)] > p[Int($1)] }
        var kept = 0
        var mass: Float = 0
        while kept < classes {
            mass += p[Int(o[kept])]
            kept += 1
            if mass >= topP { break }
        }
        let target = u * mass
        var acc: Float = 0
        for i in 0..<kept {
            acc += p[Int(o[i])]
            if acc > target { return Int(o[i]) }
        }
        return Int(o[kept - 1])
    }
}
