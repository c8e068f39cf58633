import AudioIO
import Engine
import Foundation
import Models

/// Autoregressive sampling from a SaShiMi model in step mode, batched over streams.
///
/// Each stream has its own seeded generator, so stream k of a batch produces the same audio
/// as stream k of any other run with the same seed and settings. Every buffer is allocated
/// in `init`; producing a sample allocates nothing.
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

    public let model: SaShiMi
    public let batch: Int
    public let settings: Settings
    public let state: SaShiMiStepState
    private let probs: Tensor
    private var rngs: [SplitMix64]
    private var order: [Int32]
    private var next: [Int32]
    /// The silence class (SaShiMi's start token).
    public static let startToken: Int32 = 128

    public init(model: SaShiMi, batch: Int, settings: Settings) {
        precondition(settings.temperature > 0 && settings.topP > 0 && settings.topP <= 1)
        self.model = model
        self.batch = batch
        self.settings = settings
        state = model.makeStepState(batch: batch)
        probs = model.store.backend.empty([batch, model.config.classes])
        rngs = (0..<batch).map { SplitMix64(seed: settings.seed &+ UInt64($0) &* 0x9E37_79B9_7F4A_7C15) }
        order = [Int32](repeating: 0, count: model.config.classes)
        next = [Int32](repeating: Self.startToken, count: batch)
    }

    /// Teacher-forces `tokens` (batch × count, stream-major) through the model: a prompt.
    public func prime(_ tokens: [[Int32]]) {
        precondition(tokens.count == batch)
        let n = tokens.map(\.count).min() ?? 0
        for t in 0..<n {
            for b in 0..<batch { next[b] = tokens[b][t] }
            model.step(tokens: next, state)
        }
    }

    /// Sets the token every stream feeds next (e.g. a prompt's last sample).
    public func setNext(_ token: Int32) {
        for b in 0..<batch { next[b] = token }
    }

    /// Samples `count` new tokens per stream into `out[b][...]` (appending).
    public func generate(count: Int, into out: inout [[UInt8]], progress: ((Int) -> Void)? = nil) {
        precondition(out.count == batch)
        let classes = model.config.classes
        let b = model.store.backend
        for t in 0..<count {
            let logits = model.step(tokens: next, state)
            b.softmax(logits: logits, probs: probs, temperature: settings.temperature)
            // On a GPU the probabilities come to the host (batch × classes floats per step).
            var host = probs.device == .cpu ? [] : probs.floats()
            host.withUnsafeMutableBufferPointer { h in
                let p = probs.device == .cpu ? probs.pointer : h.baseAddress!
                for s in 0..<batch {
                    let k = sample(p + s * classes, classes: classes, stream: s)
                    next[s] = Int32(k)
                    out[s].append(UInt8(k))
                }
            }
            progress?(t + 1)
        }
    }

    /// Draws a class from one row of probabilities with nucleus (top-p) filtering.
    private func sample(_ p: UnsafeMutablePointer<Float>, classes: Int, stream: Int) -> Int {
        let u = Float(rngs[stream].next() >> 40) / Float(1 << 24)
        if settings.topP >= 1 {
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
        order.withUnsafeMutableBufferPointer { o in
            for k in 0..<classes { o[k] = Int32(k) }
            o.sort { p[Int($0)] > p[Int($1)] }
        }
        var kept = 0
        var mass: Float = 0
        while kept < classes {
            mass += p[Int(order[kept])]
            kept += 1
            if mass >= settings.topP { break }
        }
        let target = u * mass
        var acc: Float = 0
        for i in 0..<kept {
            acc += p[Int(order[i])]
            if acc > target { return Int(order[i]) }
        }
        return Int(order[kept - 1])
    }
}
