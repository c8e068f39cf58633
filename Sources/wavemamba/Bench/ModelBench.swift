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

    static func config(_ kind: BlockKind, quick: Bool) -> SaShiMiConfig {
        var c = SaShiMiConfig()
        c.outer = kind
        c.center = kind
        if quick { c.nLayers = 2 }
        return c
    }

    static let kinds: [BlockKind] = [.mambaComplex, .mamba, .s4d]

    func train(batch: Int, length: Int, steps: Int) -> BenchReport {
        var report = BenchReport(title: "wavemamba bench train (SaShiMi, batch \(batch) × \(length) samples)", threads: backend.pool.threads)
        for kind in Self.kinds {
            let model = SaShiMi(config: Self.config(kind, quick: quick), backend: backend, seed: 1)
            let opt = AdamWOptimizer(store: model.store)
            var rng = SplitMix64(seed: 7)
            let toks = (0..<(batch * length)).map { _ in Int32(rng.next() % 256) }
            let inputs = backend.indices([128] + toks.dropLast(), shape: [batch, length])
            let targets = backend.indices(toks, shape: [batch, length])
            func step() {
                model.store.zeroGrad()
                let tape = Tape()
                let loss = model.loss(inputs: inputs, targets: targets, tape: tape, training: true)
                tape.backward(from: loss)
                opt.update(learningRate: 1e-3)
            }
            step() // warm-up: fills the allocator's cache
            backend.resetPeakMemory()
            let t = Bandwidth.bestTime(repeats: steps, warmup: 0, step)
            let peak = Double(backend.memoryInUse.peak) / Double(1 << 20)
            report.add("training", "\(kind.rawValue) (\(model.parameterCount) params)",
                       ["samples/s": Double(batch * length) / t, "s/step": t, "peak MiB": peak])
        }
        if let base = report.rows.dropFirst().first?.values["samples/s"], let c = report.rows.first?.values["samples/s"] {
            report.notes.append(String(format: "complex / real throughput: %.2f", c / base))
        }
        report.notes.append("peak MiB: tensor memory (activations, gradients, optimiser state) from the allocator; the process adds code and libraries")
        return report
    }

    func generate(batches: [Int], samples: Int) -> BenchReport {
        var report = BenchReport(title: "wavemamba bench generate (SaShiMi step mode, \(samples) samples per stream)", threads: backend.pool.threads)
        for kind in Self.kinds {
            let model = SaShiMi(config: Self.config(kind, quick: quick), backend: backend, seed: 1)
            for b in batches {
                let sampler = Sampler(model: model, batch: b, settings: .init(seed: 1))
                var out = [[UInt8]](repeating: [], count: b)
                for i in out.indices { out[i].reserveCapacity(samples + 64) }
                sampler.generate(count: 32, into: &out) // warm-up
                let before = backend.allocator.requests
                let t0 = Date()
                sampler.generate(count: samples, into: &out)
                let t = Date().timeIntervalSince(t0)
                let rtf = Double(b * samples) / 16000 / t
                report.add("generation", "\(kind.rawValue), batch \(b)", ["RTF (summed)": rtf, "ms/step": t / Double(samples) * 1e3,
                                                                         "tensor allocs/sample": Double(backend.allocator.requests - before) / Double(samples)])
            }
        }
        report.notes.append("RTF = seconds of 16 kHz audio produced, summed over streams, per wall-clock second")
        return report
    }

    static let columns: [String: [String]] = [
        "training": ["samples/s", "s/step", "peak MiB"],
        "generation": ["RTF (summed)", "ms/step", "tensor allocs/sample"],
    ]
}
