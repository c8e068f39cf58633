import AudioIO
import CUDABackend
import Engine
import Foundation
import FusedSteps
import Generation
import Kernels
import Models

/// `bench scan|train|generate --device cuda`: the CUDA backend's figures, each beside a
/// baseline measured in the same run — for the scan the device's own memcpy bandwidth over
/// the bytes the scan must move (the roofline), for training and generation the CPU backend.
struct GPUBench {
    let gpu: CUDABackend
    let quick: Bool

    /// The issue's anchor shapes (batch, D, L, N), real and complex.
    var scanShapes: [(Int, Int, Int, Int)] {
        quick ? [(2, 128, 4096, 16)] : [(4, 256, 16384, 16), (16, 1024, 16384, 16), (1, 1536, 65536, 16)]
    }

    func time(repeats: Int, _ body: () -> Void) -> Double {
        body()
        gpu.synchronize()
        var best = Double.infinity
        for _ in 0..<repeats {
            let t0 = Date()
            body()
            gpu.synchronize()
            best = min(best, Date().timeIntervalSince(t0))
        }
        return best
    }

    /// Device-to-device copy bandwidth (bytes read + written per second).
    func copyBandwidth() -> Double {
        let n = (quick ? 64 : 512) << 18   // floats: 64 / 512 MiB
        let a = gpu.empty([n]), b = gpu.empty([n])
        gpu.fill(a, value: 1)
        let t = time(repeats: 5) { gpu.copy2D(from: a, to: b, accumulate: false) }
        return Double(2 * n * 4) / t
    }

    func scan(shapes: [(Int, Int, Int, Int)], complexities: [Bool] = [false, true]) -> BenchReport {
        var report = BenchReport(title: "wavemamba bench scan --device \(gpu.device) (\(gpu.info.name))", threads: 1)
        let copy = copyBandwidth()
        report.notes.append(String(format: "device memcpy: %.0f GB/s (read + write); roofline = the time that bandwidth needs for the bytes the scan must read and write", copy / 1e9))
        let repeats = quick ? 1 : 3
        for (batch, D, L, N) in shapes {
            for complex in complexities {
                let s = SelectiveScanShape(batch: batch, length: L, channels: D, dState: N, isComplex: complex)
                let rows = batch * L, W = s.stateWidth
                func t(_ shape: [Int], _ seed: UInt64, _ lo: Float, _ hi: Float) -> Tensor {
                    let x = gpu.empty(shape); gpu.fillUniform(x, low: lo, high: hi, seed: seed); return x
                }
                let x = SelectiveScanTensors(shape: s, u: t([rows, D], 1, -1, 1), delta: t([rows, D], 2, -4, -1), z: t([rows, D], 3, -1, 1),
                                             B: t([rows, W], 4, -1, 1), C: t([rows, W], 5, -1, 1), A: t([D, N], 7, -2, -0.1),
                                             AImag: complex ? t([D, N], 8, 0, 3) : nil, D: t([D], 9, 0.5, 1.5), deltaBias: t([D], 10, -1, 0))
                let out = gpu.empty([rows, D]), dOut = t([rows, D], 6, -1, 1)
                let ck = gpu.empty([gpu.selectiveScanCheckpointCount(s, chunk: 64)])
                let g = SelectiveScanGradientTensors(du: gpu.empty([rows, D]), dDelta: gpu.empty([rows, D]), dz: gpu.empty([rows, D]),
                                                     dB: gpu.empty([rows, W]), dC: gpu.empty([rows, W]), dA: gpu.empty([D, N]),
                                                     dAImag: complex ? gpu.empty([D, N]) : nil, dD: gpu.empty([D]), dDeltaBias: gpu.empty([D]))
                func forward() { gpu.selectiveScan(x, out: out, lastState: nil, checkpoints: ck, chunk: 64) }
                func forwardBackward() {
                    forward()
                    gpu.selectiveScanBackward(x, dOut: dOut, checkpoints: ck, chunk: 64, grads: g)
                }
                let fwd = time(repeats: repeats, forward)
                let both = time(repeats: repeats, forwardBackward)
                // The forward with the other B / C tile buffering (one buffer or two, see
                // scanBCBuffers): the same-run baseline of the default choice.
                let chosen = gpu.scanBCBuffers(s), savedBC = gpu.tuning.scanBCBuffers
                gpu.tuning.scanBCBuffers = 3 - chosen
                let fwdOther = time(repeats: repeats, forward)
                gpu.tuning.scanBCBuffers = savedBC
                // The same with the backward's dB / dC sums added by scalar atomics (what it did
                // before the vector atomics): their same-run baseline.
                let vector = gpu.tuning.scanVectorAtomics
                gpu.tuning.scanVectorAtomics = false
                let bothScalar = time(repeats: repeats, forwardBackward)
                gpu.tuning.scanVectorAtomics = vector
                // Each pass with 32-lane chains against 16-lane ones (two channels a warp) in blocks
                // of 16, 8 and 12 channels (scanForwardKernel / scanBackwardKernel), where the tile
                // allows them: the forward alone, the backward as forward + backward.
                func laneRow(_ set: (Int?, Int?) -> Void, _ picked: () -> Int, _ timed: () -> Double) -> [String: Double] {
                    set(32, nil)
                    let t32 = timed()
                    var row = ["32 lanes ms": t32 * 1e3], best = Double.infinity
                    for c in [16, 8, 12] {
                        set(16, c)
                        guard picked() == 16 else { continue }
                        let t = timed()
                        row["16 lanes c\(c) ms"] = t * 1e3
                        best = min(best, t)
                    }
                    if best.isFinite { row["16-lane speedup"] = t32 / best }
                    return row
                }
                let savedLanes = (gpu.tuning.scanForwardLanes, gpu.tuning.scanForwardChannels, gpu.tuning.scanBackwardLanes, gpu.tuning.scanBackwardChannels)
                let lanes = laneRow({ gpu.tuning.scanForwardLanes = $0; gpu.tuning.scanForwardChannels = $1 }, { gpu.scanForwardKernel(s).lanes }) {
                    time(repeats: repeats, forward)
                }
                (gpu.tuning.scanForwardLanes, gpu.tuning.scanForwardChannels) = (savedLanes.0, savedLanes.1)
                let bwdLanes = laneRow({ gpu.tuning.scanBackwardLanes = $0; gpu.tuning.scanBackwardChannels = $1 }, { gpu.scanBackwardKernel(s).lanes }) {
                    time(repeats: repeats, forwardBackward)
                }
                (gpu.tuning.scanBackwardLanes, gpu.tuning.scanBackwardChannels) = (savedLanes.2, savedLanes.3)
                // Bytes that must move: forward reads u, delta, z, B, C and writes out; the backward
                // also reads dOut and writes du, dDelta, dz, dB, dC.
                let fwdBytes = Double(rows * (4 * D + 2 * W) * 4), bwdBytes = Double(rows * (4 * D + 2 * W) * 4) + fwdBytes
                let name = "(\(batch), \(D), \(L), \(N))\(complex ? " complex" : " real")"
                report.add("forward", name, ["ms": fwd * 1e3, "state updates/s": Double(s.stateUpdates) / fwd,
                                            "roofline fraction": fwdBytes / copy / fwd])
                report.add("forward + backward", name, ["ms": both * 1e3, "state updates/s": Double(s.stateUpdates) / both,
                                                       "roofline fraction": (fwdBytes + bwdBytes) / copy / both])
                report.add("forward, the other B / C buffering", name, ["ms": fwdOther * 1e3, "B / C buffers": Double(3 - chosen),
                                                                         "default speedup": fwdOther / fwd])
                report.add("forward, 32- and 16-lane chains", name, lanes)
                report.add("forward + backward, 32- and 16-lane backward", name, bwdLanes)
                report.add("forward + backward, scalar atomics", name, ["ms": bothScalar * 1e3, "state updates/s": Double(s.stateUpdates) / bothScalar,
                                                                       "vector speedup": bothScalar / both])
            }
        }
        report.notes.append("shapes are (batch, D, L, N); state updates = batch·L·D·N per pass")
        return report
    }

    static let scanColumns: [String: [String]] = [
        "forward": ["ms", "state updates/s", "roofline fraction"],
        "forward + backward": ["ms", "state updates/s", "roofline fraction"],
        "forward, the other B / C buffering": ["ms", "B / C buffers", "default speedup"],
        "forward + backward, scalar atomics": ["ms", "state updates/s", "vector speedup"],
        "forward, 32- and 16-lane chains": ["32 lanes ms", "16 lanes c16 ms", "16 lanes c8 ms", "16 lanes c12 ms", "16-lane speedup"],
        "forward + backward, 32- and 16-lane backward": ["32 lanes ms", "16 lanes c16 ms", "16 lanes c8 ms", "16 lanes c12 ms", "16-lane speedup"],
    ]

    /// Generation: the Mamba kinds (S4D's step mode runs on the CPU only).
    static let kinds: [BlockKind] = [.mambaComplex, .mamba]
    static let trainKinds: [BlockKind] = [.mambaComplex, .mamba, .s4d]

    /// Samples/s of SaShiMi (complex and real Mamba, S4D) on the GPU and on the CPU.
    static func train(_ backends: [(String, any Backend)], batch: Int, length: Int, steps: Int, quick: Bool,
                      recompute: Recomputation = .none) -> BenchReport {
        var report = BenchReport(title: "wavemamba bench train (SaShiMi, batch \(batch) × \(length) samples)", threads: ProcessInfo.processInfo.activeProcessorCount)
        for kind in trainKinds {
            for (label, backend) in backends {
                let m = ModelBench.timeTraining(kind, backend: backend, batch: batch, length: length,
                                                steps: label == "cpu" ? 1 : steps, quick: quick, recompute: recompute)
                report.add("training", "\(kind.rawValue) on \(label)", ["samples/s": Double(batch * length) / m.seconds, "s/step": m.seconds,
                                                                        "peak MiB": m.peakMiB])
            }
        }
        for (label, backend) in backends {
            let m = ModelBench.timeTraining(ModelBench.unetKind, backend: backend, batch: batch, length: length,
                                            steps: label == "cpu" ? 1 : steps, quick: quick, backbone: .unet, recompute: recompute)
            report.add("training", "\(ModelBench.unetKind.rawValue), unet backbone, on \(label)",
                       ["samples/s": Double(batch * length) / m.seconds, "s/step": m.seconds, "peak MiB": m.peakMiB])
        }
        for case let (label, gpu as CUDABackend) in backends { report.notes.append("\(label): GEMMs in \(gpu.matmulPrecision.rawValue)") }
        report.notes.append("the CPU rows are the baseline of the same run (one timed step)")
        if recompute != .none { report.notes.append("recompute = \(recompute.rawValue): activations recomputed in the backward") }
        return report
    }

    /// Real-time factor of step-mode generation on each backend. On a backend with step
    /// graphs (CUDA) two rows: the graph path (`wavemamba generate`'s: one graph launch per
    /// sample, tokens drawn on the device) and the generic step with host sampling beside it
    /// (the baseline of the same run: hundreds of launches and two host copies per sample).
    static func generate(_ backends: [(String, any Backend)], kinds: [BlockKind] = kinds, batches: [Int], samples: Int, baseline: Bool = true,
                         quick: Bool) -> BenchReport {
        var report = BenchReport(title: "wavemamba bench generate (SaShiMi step mode, \(samples) samples per stream)", threads: ProcessInfo.processInfo.activeProcessorCount)
        var graphNotes: [String] = []
        for kind in kinds {
            for (label, backend) in backends {
                let config = ModelBench.config(kind, quick: quick)
                let model = SaShiMi(config: config, backend: backend, seed: 1)
                // On CUDA: graphs with fused block steps, graphs with the unfused ones and the generic step.
                let graphsBackend = (backend as? any StepGraphBackend).flatMap { $0.stepGraphsEnabled ? $0 : nil }
                let fusedDefault = graphsBackend?.fusedBlockSteps ?? false
                let stackDefault = graphsBackend?.fusedStackLayers ?? 1
                let specialisedDefault = graphsBackend?.fusedStepSpecialised ?? false
                // (path, fused blocks, most blocks a fused launch takes, specialised kernels, row name)
                let paths: [(Sampler.Path, Bool, Int, Bool, String)] = graphsBackend != nil
                    ? [(.automatic, fusedDefault, stackDefault, specialisedDefault, "\(label) graphs\(fusedDefault ? "" : ", unfused blocks")")]
                        + (baseline && fusedDefault && specialisedDefault ? [(.automatic, true, stackDefault, false, "\(label) graphs, generic kernel")] : [])
                        + (baseline && fusedDefault && stackDefault > 1 ? [(.automatic, true, 1, false, "\(label) graphs, a launch per block")] : [])
                        + (baseline && fusedDefault ? [(.automatic, false, stackDefault, false, "\(label) graphs, unfused blocks")] : [])
                        + (baseline ? [(.generic, false, stackDefault, false, "\(label) generic")] : [])
                    : [(.automatic, false, 1, false, label)]
                // Warm-up: the graph path runs each pooling phase once eagerly, then captures it.
                let warmUp = 2 * config.pool.reduce(1, *) + 16
                // The CPU baseline stops at batch 16 (256 CPU streams would take minutes per kind).
                for b in batches where backend.device != .cpu || b <= 16 {
                    for (path, fused, stack, specialised, name) in paths {
                        if let g = graphsBackend { g.fusedBlockSteps = fused; g.fusedStackLayers = stack; g.fusedStepSpecialised = specialised }
                        defer {
                            if let g = graphsBackend { g.fusedBlockSteps = fusedDefault; g.fusedStackLayers = stackDefault; g.fusedStepSpecialised = specialisedDefault }
                        }
                        let sampler = Sampler(model: model, batch: b, settings: .init(seed: 1), path: path)
                        var out = [[UInt8]](repeating: [], count: b)
                        sampler.generate(count: warmUp, into: &out)
                        let t0 = Date()
                        sampler.generate(count: samples, into: &out)   // ends with the tokens on the host
                        let t = Date().timeIntervalSince(t0)
                        report.add("generation", "\(kind.rawValue) on \(name), batch \(b)",
                                   ["RTF (summed)": Double(b * samples) / 16000 / t, "ms/step": t / Double(samples) * 1e3])
                        if sampler.usesStepGraphs && b == batches.first {
                            let nodes = sampler.stepGraphNodeCounts
                            graphNotes.append("\(kind.rawValue): \(nodes.count) step graphs (one per pooling phase), \(nodes.min() ?? 0)–\(nodes.max() ?? 0) nodes each")
                        }
                    }
                }
            }
        }
        report.notes += graphNotes
        report.notes.append("RTF = seconds of 16 kHz audio produced, summed over streams, per wall-clock second; generic and CPU rows are the baselines")
        report.notes.append("graphs: one graph launch per sample, each stage's residual Mamba blocks one fused launch (mamba_step.cu, "
                            + "one-stream blocks at SaShiMi's widths taking kernels compiled for them, other widths at small batches "
                            + "on sm_90 clusters of 8 thread blocks, mamba_step_cluster.cu), the output head in the last stage's launch; "
                            + "generic kernel: the one-block kernel for any shape; "
                            + "a launch per block: the generic kernel one block at a time; "
                            + "unfused blocks: the same graphs with LayerNorm, each block's eight launches and the add")
        return report
    }

    static let modelColumns: [String: [String]] = [
        "training": ["samples/s", "s/step", "peak MiB"],
        "generation": ["RTF (summed)", "ms/step"],
    ]
}
