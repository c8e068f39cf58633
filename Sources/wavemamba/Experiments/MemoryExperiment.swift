import AudioIO
import Engine
import Evaluation
import Foundation
import Models
import Training

/// Memory and time against sequence length, per block type (`outer` = `center` of the
/// recipe's U-Net), batch 1, on the chosen device:
/// - training: one forward + backward of the loss (what `Trainer` runs, with the recipe's
///   `[train] recompute`), after one untimed
///   pass at the same length; the memory is the backend allocator's peak of live bytes
///   above what was live before the pass (parameters, gradients and caches excluded);
/// - generation: the bytes the step state (`SaShiMi.makeStepState`, sized for L samples)
///   allocates, and the mean time of a step over L steps of the generic step.
/// The growth exponent is log₂ of the memory ratio between consecutive lengths (lengths
/// double): 1 is linear, 2 quadratic, 0 constant.
final class MemoryExperiment: Experiment {
    let name = "memory"
    static let kinds: [BlockKind] = [.mamba, .s4d, .mha]
    let base: Recipe
    let lengths: [Int]
    let backend: any Backend
    let quick: Bool

    init(setup: ExperimentSetup, backend: any Backend) throws {
        (base, _) = try setup.baseRecipe(defaultName: "sc09-mamba-small", quickName: "memory-quick")
        lengths = setup.quick ? [64, 128, 256, 512] : [1024, 2048, 4096, 8192, 16384]
        self.backend = backend
        quick = setup.quick
    }

    var cells: [String] { Self.kinds.flatMap { k in lengths.map { "\(k.rawValue)@\($0)" } } }

    var protocolFields: [String: Any] {
        let m = base.model
        var p: [String: Any] = ["recipe": base.name, "backbone": m.backbone.rawValue, "d_model": m.dModel, "n_layers": m.nLayers, "pool": m.pool,
                                "expand": m.expand, "ff": m.ff, "d_state": m.dState, "s4d_state": m.s4dState, "mha_heads": m.mhaHeads,
                                "batch": 1, "lengths": lengths, "device": describeBackend(backend)]
        // Only where set, so folders recorded before the key still resume.
        if base.train.recompute != .none { p["recompute"] = base.train.recompute.rawValue }
        return p
    }

    func split(_ cell: String) -> (BlockKind, Int) {
        let parts = cell.split(separator: "@")
        return (BlockKind(rawValue: String(parts[0]))!, Int(parts[1])!)
    }

    func run(cell: String, in folder: ExperimentFolder) throws -> [String: Any] {
        _ = try folder.secondsLeft()
        let (kind, L) = split(cell)
        var config = base.model
        config.outer = kind
        config.center = kind
        let model = SaShiMi(config: config, backend: backend, seed: 0)
        var g = SplitMix64(seed: 1)
        let tokens = (0..<L).map { _ in Int32(g.next() % 256) }
        let inputs = backend.indices([128] + tokens.dropLast(), shape: [1, L])
        let targets = backend.indices(tokens, shape: [1, L])
        func pass() {
            model.store.zeroGrad()
            let tape = Tape()
            let loss = model.loss(inputs: inputs, targets: targets, tape: tape, training: true, recompute: base.train.recompute)
            tape.backward(from: loss)
            _ = backend.sumOfSquares(model.store.grads!)  // waits for the device
        }
        pass()
        let before = backend.memoryInUse.live
        backend.resetPeakMemory()
        var t0 = Date()
        pass()
        let trainSeconds = Date().timeIntervalSince(t0)
        let trainBytes = backend.memoryInUse.peak - before

        let live = backend.memoryInUse.live
        let state = model.makeStepState(batch: 1, maxSamples: L)
        let stateBytes = backend.memoryInUse.live - live
        t0 = Date()
        var next: Int32 = 128
        for t in 0..<L {
            model.step(tokens: [next], state)
            next = tokens[t]
        }
        _ = state.logits.floats()
        let stepSeconds = Date().timeIntervalSince(t0) / Double(L)
        return ["block": kind.rawValue, "length": L, "parameters": model.parameterCount, "train_peak_bytes": trainBytes,
                "train_step_seconds": trainSeconds, "generation_state_bytes": stateBytes, "generation_step_seconds": stepSeconds]
    }

    /// Per block type, log₂ of the memory ratio of each doubling of length (nil where a cell is missing).
    func exponents(_ recorded: [String: [String: Any]], _ key: String, _ kind: BlockKind) -> [Double?] {
        zip(lengths, lengths.dropFirst()).map { a, b in
            guard let x = double(recorded["\(kind.rawValue)@\(a)"]?[key]), let y = double(recorded["\(kind.rawValue)@\(b)"]?[key]) else { return nil }
            if x == 0 && y == 0 { return 0 }
            return x > 0 && y > 0 ? log2(y / x) / log2(Double(b) / Double(a)) : nil
        }
    }

    func summary(_ recorded: [String: [String: Any]]) -> [String: Any] {
        var out: [String: Any] = [:]
        for k in Self.kinds {
            out[k.rawValue] = ["train_memory_exponents": exponents(recorded, "train_peak_bytes", k).map { $0 as Any? ?? NSNull() },
                               "generation_state_exponents": exponents(recorded, "generation_state_bytes", k).map { $0 as Any? ?? NSNull() }]
        }
        return out
    }

    func markdown(_ recorded: [String: [String: Any]]) -> String {
        var s = "# Memory and time against sequence length\n\n"
        s += "Batch 1, recipe `\(base.name)`'s U-Net (d_model \(base.model.dModel), \(base.model.nLayers) layers per stage, pool \(base.model.pool)) "
        s += "with every block of one type, on \(describeBackend(backend)). Training: peak bytes above the live bytes before one forward + "
        s += "backward (the allocator's count; parameters and gradients excluded) and its time. Generation: the bytes of the step state sized "
        s += "for L samples, and the mean time of a step over L steps. Exponent: log₂ of the memory ratio per doubling of L "
        s += "(1 linear, 2 quadratic, 0 constant).\n\n"
        if base.train.recompute != .none { s += "Training with `[train] recompute = \"\(base.train.recompute.rawValue)\"`.\n\n" }
        var rows: [[String]] = []
        for cell in cells {
            let (k, L) = split(cell)
            guard let r = recorded[cell] else { rows.append([k.rawValue, "\(L)", "–", "–", "–", "–"]); continue }
            rows.append([k.rawValue, "\(L)", cellNumber(double(r["train_peak_bytes"]).map { $0 / 1_048_576 }, "%.3f"),
                         cellNumber(double(r["train_step_seconds"]).map { $0 * 1000 }, "%.1f"),
                         cellNumber(double(r["generation_state_bytes"]).map { $0 / 1024 }, "%.1f"),
                         cellNumber(double(r["generation_step_seconds"]).map { $0 * 1000 }, "%.3f")])
        }
        s += markdownTable(["block", "length", "training peak (MiB)", "training step (ms)", "generation state (KiB)", "generation step (ms)"], rows)
        s += "\n## Growth exponents (per doubling of length)\n\n"
        func list(_ e: [Double?]) -> String { e.map { $0.map { String(format: "%.2f", $0) } ?? "–" }.joined(separator: ", ") }
        let pairs = zip(lengths, lengths.dropFirst()).map { "\($0)→\($1)" }.joined(separator: ", ")
        s += markdownTable(["block", "training memory (\(pairs))", "generation state (\(pairs))"], Self.kinds.map { k in
            [k.rawValue, list(exponents(recorded, "train_peak_bytes", k)), list(exponents(recorded, "generation_state_bytes", k))]
        })
        if quick { s += "\n(--quick: a tiny model at short lengths; fixed costs flatten the exponents.)\n" }
        return s
    }

    func plot(_ recorded: [String: [String: Any]]) -> (plot: LinePlot, legend: [String], caption: String) {
        var series: [TrainingCurves.Series] = []
        for (key, what) in [("train_peak_bytes", "training peak"), ("generation_state_bytes", "generation state")] {
            for k in Self.kinds {
                series.append(TrainingCurves.Series(name: "\(k.rawValue) \(what)", points: lengths.compactMap { L in
                    double(recorded["\(k.rawValue)@\(L)"]?[key]).flatMap { $0 > 0 ? (log2(Double(L)), log2($0)) : nil }
                }))
            }
        }
        return (LinePlot(series: series), series.map(\.name), "log₂ bytes (y) against log₂ sequence length (x)")
    }
}
