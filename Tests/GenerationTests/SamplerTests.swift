import AudioIO
import Engine
import Foundation
import XCTest
@testable import Generation
@testable import Models

final class SamplerTests: XCTestCase {
    func tinyModel(_ backend: CPUBackend) -> SaShiMi {
        var c = SaShiMiConfig()
        c.dModel = 8
        c.nLayers = 1
        c.pool = [2, 2]
        c.dState = 4
        return SaShiMi(config: c, backend: backend, seed: 3)
    }

    func testSameSeedSameAudioAndStreamsIndependentOfBatch() {
        let backend = CPUBackend()
        let model = tinyModel(backend)
        func run(batch: Int, seed: UInt64) -> [[UInt8]] {
            let s = Sampler(model: model, batch: batch, settings: .init(temperature: 1, topP: 0.9, seed: seed))
            var out = [[UInt8]](repeating: [], count: batch)
            s.generate(count: 40, into: &out)
            return out
        }
        let a = run(batch: 3, seed: 5), b = run(batch: 3, seed: 5)
        XCTAssertEqual(a, b)
        XCTAssertNotEqual(a, run(batch: 3, seed: 6))
        // Stream 0 does not depend on how many streams run beside it.
        XCTAssertEqual(run(batch: 1, seed: 5)[0], a[0])
        XCTAssertEqual(a[1].count, 40)
    }

    /// The log-likelihood recorded while sampling is the model's own (temperature 1, no top-p)
    /// whatever the sampling settings: each stream's bits/sample equals the teacher-forced NLL
    /// of the drawn tokens (the `nll` command's code) on the fast and the generic path. The head
    /// is scaled so that the distribution is far from uniform (a tempered or filtered
    /// likelihood would then differ by far more than the tolerance).
    func testRecordedLikelihoodEqualsTeacherForcedNLL() {
        let backend = CPUBackend(threads: 2)
        let model = tinyModel(backend)
        let head = model.head.weight.value
        for i in 0..<head.count { head.pointer[i] *= 40 }
        let n = 64, batch = 3
        for path in [Sampler.Path.automatic, .generic] {
            for (temperature, topP) in [(Float(1), Float(1)), (0.7, 0.9), (1.5, 1)] {
                let sampler = Sampler(model: model, batch: batch, settings: .init(temperature: temperature, topP: topP, seed: 9), path: path)
                var out = [[UInt8]](repeating: [], count: batch)
                sampler.generate(count: n / 2, into: &out)
                sampler.generate(count: n / 2, into: &out)
                XCTAssertEqual(sampler.generatedCount, n)
                var inputs: [Int32] = [], targets: [Int32] = []
                for clip in out {
                    let pair = AudioTokens.teacherForcing(tokens: clip.map { Int32($0) })
                    inputs += pair.inputs
                    targets += pair.targets
                }
                let nats = TeacherForcedNLL.clipNats(model: model, inputs: inputs, targets: targets, clips: batch, length: n)
                for s in 0..<batch {
                    let forced = nats[s] / Double(n) / log(2)
                    let what = "\(path), temperature \(temperature), top-p \(topP), stream \(s)"
                    XCTAssertEqual(sampler.bitsPerSample[s], forced, accuracy: 1e-3, what)
                    XCTAssertEqual(-sampler.logLikelihood[s], nats[s], accuracy: 1e-3 * Double(n) * log(2), what)
                    XCTAssertGreaterThan(abs(forced - 8), 0.5, "the scaled head should be far from uniform (\(what))")
                }
            }
        }
    }

    /// Tensor buffers are all allocated up front: producing samples requests no memory, on the
    /// CPU fast path (the default on the CPU) and on the Backend-generic path.
    func testNoTensorAllocationPerSample() {
        for path in [Sampler.Path.automatic, .generic] {
            let backend = CPUBackend(threads: 2)
            let model = tinyModel(backend)
            let s = Sampler(model: model, batch: 4, settings: .init(topP: 0.9, seed: 1), path: path)
            XCTAssertEqual(s.usesFastPath, path == .automatic)
            var out = [[UInt8]](repeating: [], count: 4)
            out = out.map { var a = $0; a.reserveCapacity(200); return a }
            s.generate(count: 8, into: &out)
            let before = backend.allocator.requests
            s.generate(count: 100, into: &out)
            XCTAssertEqual(backend.allocator.requests, before, "step mode (\(path)) allocated tensors while generating")
        }
    }

    /// The fast path and the generic path sample the same audio at a low temperature (their
    /// logits agree to float rounding, so the argmax agrees), with a prompt primed first.
    func testFastPathSamplesLikeGenericPath() {
        let backend = CPUBackend(threads: 2)
        let model = tinyModel(backend)
        func run(_ path: Sampler.Path) -> [[UInt8]] {
            let s = Sampler(model: model, batch: 3, settings: .init(temperature: 1e-4, seed: 4), path: path)
            s.prime([[128, 130, 140], [128, 90, 60], [128, 200, 210]])
            s.setNext(135)
            var out = [[UInt8]](repeating: [], count: 3)
            s.generate(count: 30, into: &out)
            return out
        }
        let fast = run(.automatic), generic = run(.generic)
        XCTAssertEqual(fast, generic)
        XCTAssertNotEqual(fast[0], fast[1])
    }

    /// With a very low temperature the sampler follows the argmax of the model's logits.
    func testLowTemperatureIsGreedy() {
        let backend = CPUBackend()
        let model = tinyModel(backend)
        let s = Sampler(model: model, batch: 2, settings: .init(temperature: 1e-4, seed: 9))
        var out = [[UInt8]](repeating: [], count: 2)
        s.generate(count: 12, into: &out)
        // Replay greedily through a fresh step state.
        let state = model.makeStepState(batch: 2)
        var next: [Int32] = [Sampler.startToken, Sampler.startToken]
        for t in 0..<12 {
            let logits = model.step(tokens: next, state).floats()
            for b in 0..<2 {
                let row = logits[(b * 256)..<((b + 1) * 256)]
                let arg = row.indices.max { row[$0] < row[$1] }! - b * 256
                XCTAssertEqual(Int(out[b][t]), arg, "stream \(b) step \(t)")
                next[b] = Int32(out[b][t])
            }
        }
    }

    /// Draw k of stream s as a pure function of (seed, s, k) — what the on-device sampler
    /// computes from its per-stream counter — equals the k-th word of the host's sequential
    /// SplitMix64 for that stream.
    func testUniformIsThePureFunctionOfTheSequentialGenerator() {
        for seed: UInt64 in [0, 1, 21, 0xFFFF_FFFF_FFFF_FFFF] {
            for stream in [0, 1, 7, 255] {
                var rng = SplitMix64(seed: seed &+ UInt64(stream) &* 0x9E37_79B9_7F4A_7C15)
                for k in 0..<300 {
                    let sequential = Float(rng.next() >> 40) / Float(1 << 24)
                    XCTAssertEqual(Sampler.uniform(seed: seed, stream: stream, draw: UInt64(k)), sequential, "seed \(seed) stream \(stream) draw \(k)")
                }
            }
        }
        XCTAssertNotEqual(Sampler.uniform(seed: 1, stream: 0, draw: 0), Sampler.uniform(seed: 1, stream: 1, draw: 0))
    }

    /// The host sampler's k-th token of stream s is `draw` with `uniform(seed, s, k)` on the
    /// softmax of the step's logits: the reference the GPU check (CUDAChecks.GraphChecks)
    /// holds the on-device sampler to.
    func testHostSamplerDrawsWithTheIndexedUniform() {
        let backend = CPUBackend(threads: 1)
        let model = tinyModel(backend)
        let settings = Sampler.Settings(temperature: 1.3, topP: 0.9, seed: 17)
        for path in [Sampler.Path.automatic, .generic] {
            let s = Sampler(model: model, batch: 3, settings: settings, path: path)
            XCTAssertFalse(s.usesStepGraphs, "the CPU backend has no step graphs")
            var out = [[UInt8]](repeating: [], count: 3)
            s.generate(count: 25, into: &out)
            let state = model.makeStepState(batch: 3)
            let probs = backend.empty([3, 256])
            var next = [Int32](repeating: Sampler.startToken, count: 3)
            var order = [Int32](repeating: 0, count: 256)
            var differ = 0
            for t in 0..<25 {
                backend.softmax(logits: model.step(tokens: next, state), probs: probs, temperature: settings.temperature)
                for b in 0..<3 {
                    let u = Sampler.uniform(seed: settings.seed, stream: b, draw: UInt64(t))
                    let k = order.withUnsafeMutableBufferPointer { Sampler.draw(probs.pointer + b * 256, classes: 256, u: u, topP: 0.9, order: $0.baseAddress!) }
                    if k != Int(out[b][t]) { differ += 1 }
                    next[b] = Int32(out[b][t])
                }
            }
            // The fast path's logits differ from the generic step's by rounding: a draw may
            // move at a boundary (rarely); the generic path must agree exactly.
            XCTAssertLessThanOrEqual(differ, path == .generic ? 0 : 1, "\(path)")
            XCTAssertGreaterThan(Set(out[0]).count, 3, "temperature 1.3 samples, not greedy")
        }
    }
}
