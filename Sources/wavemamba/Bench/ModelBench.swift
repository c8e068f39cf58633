import AudioIO
import Engine
import Foundation
import Generation
import Kernels
import Models

/// `bench train` and `bench generate`: SaShiMi-small training throughput and step-mode
/// generation speed, for each block kind in the same run (complex Mamba, the default, beside
/// the real block as the baseline).
struct ModelBench {
    let backend: CPUBackend
    let quick: Bool

    static func config(_ kind: BlockKind, quick: Bool, backbone: Backbone = .sashimi) -> SaShiMiConfig {
        var c = SaShiMiConfig()
        c.backbone = backbone
        c.outer = kind
        c.center = kind
        if quick { c.nLayers = 2 }
        return c
    }

    static let kinds: [BlockKind] = [.mambaComplex, .mamba, .s4d]
    /// The paper's SC09 model (real Mamba, 40 blocks in the unet backbone), benched after the
    /// sashimi-backbone rows so that it reads beside the real 24-block row.
    static let unetKind: BlockKind = .mamba

    func train(batch: Int, length: Int, steps: Int, recompute: Recomputation = .none) -> BenchReport {
        var report = BenchReport(title: "wavemamba bench train (SaShiMi, batch \(batch) × \(length) samples)", threads: backend.pool.threads)
        for kind in Self.kinds {
            let m = Self.timeTraining(kind, backend: backend, batch: batch, length: length, steps: steps, quick: quick, recompute: recompute)
            report.add("training", "\(kind.rawValue) (\(m.parameters) params)",
                       ["samples/s": Double(batch * length) / m.seconds, "s/step": m.seconds, "peak MiB": m.peakMiB])
        }
        let m = Self.timeTraining(Self.unetKind, backend: backend, batch: batch, length: length, steps: steps, quick: quick, backbone: .unet,
                                  recompute: recompute)
        report.add("training", "\(Self.unetKind.rawValue), unet backbone (\(m.parameters) params)",
                   ["samples/s": Double(batch * length) / m.seconds, "s/step": m.seconds, "peak MiB": m.peakMiB])
        if let base = report.rows.dropFirst().first?.values["samples/s"], let c = report.rows.first?.values["samples/s"] {
            report.notes.append(String(format: "complex / real throughput: %.2f", c / base))
        }
        report.notes.append("peak MiB: tensor memory (activations, gradients, optimiser state) from the allocator; the process adds code and libraries")
        if recompute != .none { report.notes.append("recompute = \(recompute.rawValue): activations recomputed in the backward") }
        return report
    }

    /// Best time of `steps` full training steps (forward, backward, AdamW) of the bench model of
    /// `kind` on random tokens, after one warm-up step that fills the allocator's cache, and the
    /// peak tensor memory of the timed steps. The optimiser's update reads the gradient norm
    /// back, so on a GPU the step has finished when it returns.
    static func timeTraining(_ kind: BlockKind, backend: any Backend, batch: Int, length: Int, steps: Int, quick: Bool,
                             backbone: Backbone = .sashimi, recompute: Recomputation = .none) -> (seconds: Double, peakMiB: Double, parameters: Int) {
        let model = SaShiMi(config: config(kind, quick: quick, backbone: backbone), backend: backend, seed: 1)
        let opt = AdamWOptimizer(store: model.store)
        var rng = SplitMix64(seed: 7)
        let toks = (0..<(batch * length)).map { _ in Int32(rng.next() % 256) }
        let inputs = backend.indices([128] + toks.dropLast(), shape: [batch, length])
        let targets = backend.indices(toks, shape: [batch, length])
        func step() {
            model.store.zeroGrad()
            let tape = Tape()
            let loss = model.loss(inputs: inputs, targets: targets, tape: tape, training: true, recompute: recompute)
            tape.backward(from: loss)
            _ = opt.update(learningRate: 1e-3)
        }
        step()
        backend.resetPeakMemory()
        let t = Bandwidth.bestTime(repeats: steps, warmup: 0, step)
        return (t, Double(backend.memoryInUse.peak) / Double(1 << 20), model.parameterCount)
    }

    /// Each case on the CPU fast path (fused kernels, streams split over the threads) beside the
    /// Backend-generic step path as the baseline, measured in the same run.
    func generate(kinds: [BlockKind] = Self.kinds, batches: [Int], samples: Int, baseline: Bool = true) -> BenchReport {
        var report = BenchReport(title: "wavemamba bench generate (SaShiMi step mode, \(samples) samples per stream)", threads: backend.pool.threads)
        let cases = kinds.map { ($0, Backbone.sashimi) } + (kinds.contains(Self.unetKind) ? [(Self.unetKind, Backbone.unet)] : [])
        for (kind, backbone) in cases {
            let model = SaShiMi(config: Self.config(kind, quick: quick, backbone: backbone), backend: backend, seed: 1)
            for b in batches {
                var seconds: [Sampler.Path: Double] = [:]
                for path in baseline ? [Sampler.Path.generic, .automatic] : [.automatic] {
                    let sampler = Sampler(model: model, batch: b, settings: .init(seed: 1), path: path)
                    var out = [[UInt8]](repeating: [], count: b)
                    for i in out.indices { out[i].reserveCapacity(samples + 64) }
                    sampler.generate(count: 32, into: &out) // warm-up
                    let before = backend.allocator.requests
                    let t0 = Date(), c0 = Self.processCPUSeconds()
                    sampler.generate(count: samples, into: &out)
                    let t = Date().timeIntervalSince(t0), cpu = Self.processCPUSeconds() - c0
                    seconds[path] = t
                    let rtf = Double(b * samples) / 16000 / t
                    var values = ["RTF (summed)": rtf, "ms/step": t / Double(samples) * 1e3, "CPU ms/step": cpu / Double(samples) * 1e3,
                                  "tensor allocs/sample": Double(backend.allocator.requests - before) / Double(samples)]
                    if path == .automatic, let g = seconds[.generic] { values["× generic"] = g / t }
                    let name = sampler.usesFastPath ? "fast" : "generic"
                    report.add("generation", "\(kind.rawValue)\(backbone == .unet ? ", unet" : ""), batch \(b), \(name)", values)
                }
            }
        }
        report.notes.append("RTF = seconds of 16 kHz audio produced, summed over streams, per wall-clock second")
        report.notes.append("CPU ms/step: CPU time of all the process's threads per step (on a loaded machine wall time inflates; CPU time much less)")
        report.notes.append("fast: the CPU fused step path (what `wavemamba generate` uses); generic: the Backend-op step path, the baseline")
        return report
    }

    /// CPU time used by every thread of this process so far.
    static func processCPUSeconds() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) * 1e-9
    }

    static let columns: [String: [String]] = [
        "training": ["samples/s", "s/step", "peak MiB"],
        "generation": ["RTF (summed)", "ms/step", "CPU ms/step", "× generic", "tensor allocs/sample"],
    ]
}
