import CUDABackend
import Engine
import Foundation
import Generation
import Models

/// Checks of the CUDA generation path: step graphs with on-device sampling against the
/// generic step with host sampling (same seed), a graph replayed against uncaptured steps,
/// and the memory pool a graph keeps its capture-time blocks in.
public struct GraphChecks {
    public let gpu: CUDABackend

    public init(gpu: CUDABackend) { self.gpu = gpu }

    static let batch = 3

    /// `steps` samples per stream from the graph path (in two `generate` calls, so the host
    /// hands its tokens back to the device once), then the reference: the generic step on the
    /// GPU with the host's softmax download and `Sampler.draw`, fed the graph path's own tokens
    /// (teacher-forced), so that one draw moved by rounding does not change the rest of its
    /// stream. Error: the fraction of tokens that differ (≤ 1 %).
    public func graphGeneration(_ kind: BlockKind, _ backbone: Backbone = .sashimi, steps: Int = 48) -> CheckOutcome {
        let model = SaShiMi(config: ModelChecks.config(kind, backbone), backend: gpu, seed: 5)
        let batch = Self.batch, classes = model.config.classes
        let settings = Sampler.Settings(temperature: 1, topP: 0.9, seed: 21)
        let sampler = Sampler(model: model, batch: batch, settings: settings)
        let name = "graphs: generation with device sampling = generic step + host sampling (\(ModelChecks.label(kind, backbone)))"
        guard sampler.usesStepGraphs else {
            return CheckOutcome(name: name, error: .infinity, tolerance: 0.01, detail: "the sampler did not choose step graphs on \(gpu.device)"
                                + (gpu.stepGraphsEnabled ? "" : " (WAVEMAMBA_CUDA_GRAPHS=0)"))
        }
        var graphOut = [[UInt8]](repeating: [], count: batch)
        let firstPart = steps / 2 - 3
        sampler.generate(count: firstPart, into: &graphOut)
        sampler.generate(count: steps - firstPart, into: &graphOut)

        let state = model.makeStepState(batch: batch)
        let probs = gpu.empty([batch, classes])
        var prev = [Int32](repeating: Sampler.startToken, count: batch)
        var order = [Int32](repeating: 0, count: classes)
        var differ = 0
        var firstDiff: String?
        for t in 0..<steps {
            let logits = model.step(tokens: prev, state)
            gpu.softmax(logits: logits, probs: probs, temperature: settings.temperature)
            var p = probs.floats()
            for s in 0..<batch {
                let u = Sampler.uniform(seed: settings.seed, stream: s, draw: UInt64(t))
                let ref = p.withUnsafeMutableBufferPointer { pp in
                    order.withUnsafeMutableBufferPointer { o in
                        Sampler.draw(pp.baseAddress! + s * classes, classes: classes, u: u, topP: settings.topP, order: o.baseAddress!)
                    }
                }
                if ref != Int(graphOut[s][t]) {
                    differ += 1
                    if firstDiff == nil { firstDiff = "first at stream \(s), step \(t): \(graphOut[s][t]) vs \(ref)" }
                }
                prev[s] = Int32(graphOut[s][t])
            }
        }
        // The free-running generic sampler, for the report (equal unless a draw moved).
        let generic = Sampler(model: model, batch: batch, settings: settings, path: .generic)
        var genericOut = [[UInt8]](repeating: [], count: batch)
        generic.generate(count: steps, into: &genericOut)
        let total = batch * steps
        let nodes = sampler.stepGraphNodeCounts
        return CheckOutcome(name: name, error: Double(differ) / Double(total), tolerance: 0.01,
                            detail: "\(differ) of \(total) tokens differ\(firstDiff.map { " (\($0))" } ?? ""); free-running generic sampler "
                                + "\(genericOut == graphOut ? "identical" : "differs"); \(nodes.count) graphs of \(nodes.min() ?? 0)–\(nodes.max() ?? 0) nodes")
    }

    /// The sampling kernel alone against the host draw on the same probabilities (the GPU's
    /// softmax, downloaded, as the generic path does): logits with many exact ties (multiples
    /// of 1/4, so the nucleus order's tie rule matters), several temperatures and top-p, the
    /// draw index starting at 7; the counters must advance and the history row be written, and
    /// the drawn token's log-probability be the model's (untempered) log softmax within 1e-4.
    public func deviceSampling() -> CheckOutcome {
        let batch = 5, classes = 256, capacity = 4, k0 = 7
        let logits = gpu.tensor(hostValues(batch * classes, seed: 51, -12, 12).map { ($0 * 4).rounded() / 4 }, shape: [batch, classes])
        let probs = gpu.empty([batch, classes])
        var differ = 0, draws = 0
        var problems: [String] = []
        var order = [Int32](repeating: 0, count: classes)
        let hostLogits = logits.floats()
        var worstLogProb = 0.0
        for (temperature, topP) in [(Float(1), Float(1)), (1, 0.9), (0.7, 0.5), (2, 0.99), (1, 0.05)] {
            let seed: UInt64 = 99
            let counters = gpu.empty([2 * batch], dtype: .int32)
            counters.copy(from: (0..<batch).flatMap { _ in [Int32(k0), 0] })
            let tokens = gpu.empty([batch], dtype: .int32), history = gpu.empty([batch, capacity], dtype: .int32)
            gpu.fill(history, value: 0)
            let logProbs = gpu.empty([batch, capacity])
            gpu.sampleTokens(logits: logits, temperature: temperature, topP: topP, seed: seed, counters: counters, tokens: tokens, history: history,
                             logProbs: logProbs)
            let lp = logProbs.floats()
            gpu.softmax(logits: logits, probs: probs, temperature: temperature)
            var p = probs.floats()
            let got = tokens.int32s(), h = history.int32s(), c = counters.int32s()
            for s in 0..<batch {
                let u = Sampler.uniform(seed: seed, stream: s, draw: UInt64(k0))
                let ref = p.withUnsafeMutableBufferPointer { pp in
                    order.withUnsafeMutableBufferPointer { o in
                        Sampler.draw(pp.baseAddress! + s * classes, classes: classes, u: u, topP: topP, order: o.baseAddress!)
                    }
                }
                draws += 1
                if Int(got[s]) != ref { differ += 1 }
                if h[s * capacity + k0 % capacity] != got[s] { problems.append("history[\(s)] not written at \(k0 % capacity)") }
                let want = hostLogits.withUnsafeBufferPointer { Sampler.logSoftmax($0.baseAddress! + s * classes, classes: classes, at: Int(got[s])) }
                let e = abs(Double(lp[s * capacity + k0 % capacity]) - want)
                worstLogProb = max(worstLogProb, e.isNaN ? .infinity : e)
                if c[2 * s] != Int32(k0 + 1) || c[2 * s + 1] != 0 { problems.append("counter \(s) is \(c[2 * s]), \(c[2 * s + 1])") }
            }
        }
        if worstLogProb > 1e-4 { problems.append("log-probability of the draw off by \(worstLogProb) (tolerance 1e-4)") }
        return CheckOutcome(name: "graphs: device sampling kernel = host draw (temperature, top-p, ties)", error: problems.isEmpty ? Double(differ) / Double(draws) : .infinity,
                            tolerance: 0, detail: (["\(differ) of \(draws) draws differ", "log-probabilities within \(worstLogProb)"] + problems.prefix(3)).joined(separator: "; "))
    }

    /// A step graph captured at one phase and replayed at the same phase one period later
    /// equals uncaptured steps: logits, sampled tokens and the device history after both.
    public func graphReplay(_ kind: BlockKind) -> CheckOutcome {
        let model = SaShiMi(config: ModelChecks.config(kind), backend: gpu, seed: 5)
        let batch = Self.batch
        let a = model.makeStepState(batch: batch, fusedBlocks: true), b = model.makeStepState(batch: batch, fusedBlocks: true)
        let period = a.period
        let prompt = ModelChecks.tokens(batch * 3, seed: 31)
        for t in 0..<3 {
            let x = (0..<batch).map { prompt[$0 * 3 + t] }
            model.step(tokens: x, a)
            model.step(tokens: x, b)
        }
        func buffers() -> (Tensor, Tensor) {
            let c = gpu.empty([2 * batch], dtype: .int32)
            gpu.fill(c, value: 0)
            let h = gpu.empty([batch, 8], dtype: .int32)
            gpu.fill(h, value: 0)
            return (c, h)
        }
        let (ca, ha) = buffers(), (cb, hb) = buffers()
        func body(_ s: SaShiMiStepState, _ c: Tensor, _ h: Tensor) {
            model.stepOnDeviceTokens(s)
            gpu.sampleTokens(logits: s.logits, temperature: 1, topP: 0.9, seed: 3, counters: c, tokens: s.token, history: h)
        }
        // Logits, then the tokens, history and draw counters (which must agree exactly).
        func snapshot(_ s: SaShiMiStepState, _ c: Tensor, _ h: Tensor) -> ([Float], [Int32]) {
            (s.logits.floats(), s.token.int32s() + h.int32s() + c.int32s())
        }
        var eager: ([Float], [Int32]) = ([], []), replayed: ([Float], [Int32]) = ([], [])
        for i in 0...period {
            body(a, ca, ha)
            if i == 0 || i == period { let x = snapshot(a, ca, ha); eager.0 += x.0; eager.1 += x.1 }
        }
        let graph = gpu.capture { body(b, cb, hb) }   // records only
        gpu.launch(graph)
        var x = snapshot(b, cb, hb)
        replayed.0 += x.0; replayed.1 += x.1
        for _ in 1..<period { body(b, cb, hb) }
        model.advanceWithoutLaunching(b)
        gpu.launch(graph)
        x = snapshot(b, cb, hb)
        replayed.0 += x.0; replayed.1 += x.1
        var problems: [String] = []
        if a.phase != b.phase { problems.append("phases differ (\(a.phase) vs \(b.phase))") }
        if eager.1 != replayed.1 { problems.append("tokens, history or counters differ") }
        return CheckOutcome(name: "graphs: step graph replayed twice = uncaptured steps (\(kind.rawValue))",
                            error: problems.isEmpty ? relativeError(replayed.0, eager.0) : .infinity, tolerance: 1e-6,
                            detail: (["graph of \(graph.nodeCount) nodes at phase 3 of \(period)"] + problems).joined(separator: "; "))
    }

    /// A block allocated and released inside a capture stays the graph's: a tensor allocated
    /// after the capture gets another block, so replays cannot overwrite it.
    public func graphMemoryPool() -> CheckOutcome {
        let n = 4096
        let xs = hostValues(n, seed: 41)
        let x = gpu.tensor(xs, shape: [n]), y = gpu.empty([n])
        gpu.scale(x, by: 2, out: y, accumulate: false)   // both kernels run once outside the capture first
        gpu.add(y, x, out: y)
        var temporary: UInt = 0
        let graph = gpu.capture {
            let t = gpu.empty([n])
            temporary = UInt(bitPattern: t.storage.address)
            gpu.scale(x, by: 2, out: t, accumulate: false)
            gpu.add(t, x, out: y)   // y = 3x through the temporary
        }
        let other = gpu.empty([n])
        gpu.fill(other, value: 7)
        gpu.launch(graph)
        gpu.launch(graph)
        let distinct = UInt(bitPattern: other.storage.address) != temporary
        let error = max(relativeError(y.floats(), xs.map { 3 * $0 }), relativeError(other.floats(), [Float](repeating: 7, count: n)))
        return CheckOutcome(name: "graphs: memory pool keeps capture-time blocks", error: distinct ? error : .infinity, tolerance: 1e-6,
                            detail: distinct ? "" : "a tensor allocated after the capture got the graph's temporary block")
    }

    /// The fused residual Mamba block steps (a stage's blocks in one launch) against the unfused
    /// ones (LayerNorm, `MambaBlock.step`, add: eight launches a block) on the same weights and
    /// tokens, teacher-forced over more than two pooling periods (every stage runs, and the
    /// coarse stages' states carry over): logits ≤ 1e-4 relative at every step, for each
    /// variant: a forced number of streams per thread block (nil: the backend's choice) and
    /// the most blocks a launch takes (fewer than a stage's: the run splits over launches), at
    /// a batch that leaves the last thread block partly empty; `cluster` forces the cluster
    /// step's thread blocks and streams per cluster (nil each: the backend's choice; streams 0:
    /// the one-block step).
    public func fusedBlockStep(_ kind: BlockKind, config: SaShiMiConfig, label: String, batch: Int,
                               variants: [(streams: Int?, stack: Int, threads: Int?, maxMB: Int?, cluster: (blocks: Int?, streams: Int?))]) -> CheckOutcome {
        let name = "graphs: fused residual Mamba step = unfused step (\(kind.rawValue), \(label))"
        var c = config
        c.outer = kind; c.center = kind
        let model = SaShiMi(config: c, backend: gpu, seed: 9)
        let saved = gpu.tuning.fusedStepStreams, savedOn = gpu.fusedBlockSteps, savedMinimum = gpu.fusedStepMinimumBatch
        let savedStack = gpu.fusedStackLayers, savedThreads = gpu.tuning.fusedStepThreads, savedTraffic = gpu.tuning.fusedStepMaxTraffic
        let savedCluster = (gpu.tuning.fusedStepClusterBlocks, gpu.tuning.fusedStepClusterStreams), savedSpecialised = gpu.fusedStepSpecialised
        defer {
            gpu.tuning.fusedStepStreams = saved; gpu.fusedBlockSteps = savedOn; gpu.fusedStepMinimumBatch = savedMinimum
            gpu.fusedStackLayers = savedStack; gpu.tuning.fusedStepThreads = savedThreads; gpu.tuning.fusedStepMaxTraffic = savedTraffic
            (gpu.tuning.fusedStepClusterBlocks, gpu.tuning.fusedStepClusterStreams) = savedCluster
            gpu.fusedStepSpecialised = savedSpecialised
        }
        gpu.fusedBlockSteps = true
        gpu.fusedStepMinimumBatch = 1
        let steps = 2 * c.totalPool + 5
        let tokens = ModelChecks.tokens(batch * steps, seed: 77)
        var worst = 0.0
        var notes: [String] = []
        for (forced, stack, threads, maxMB, cluster) in variants {
            (gpu.tuning.fusedStepClusterBlocks, gpu.tuning.fusedStepClusterStreams) = cluster
            gpu.tuning.fusedStepStreams = forced
            gpu.fusedStackLayers = stack
            gpu.tuning.fusedStepThreads = threads
            gpu.tuning.fusedStepMaxTraffic = maxMB.map { $0 << 20 } ?? savedTraffic
            let fused = model.makeStepState(batch: batch, fusedBlocks: true), plain = model.makeStepState(batch: batch)
            guard model.usesFusedBlocks(fused) && !model.usesFusedBlocks(plain) else {
                return CheckOutcome(name: name, error: .infinity, tolerance: 1e-4, detail: "the fused state has no fused blocks")
            }
            var err = 0.0
            for t in 0..<steps {
                let x = (0..<batch).map { tokens[$0 * steps + t] }
                let a = model.step(tokens: x, fused).floats(), b = model.step(tokens: x, plain).floats()
                err = max(err, relativeError(a, b))
            }
            worst = max(worst, err)
            // The streams per cluster of each stage's width (nil: the one-block step).
            let widths = Dictionary(model.fusedSteps(fused).map { ($0.dModel, gpu.fusedStepClusterShape($0)) }, uniquingKeysWith: { a, _ in a })
            let clustered = widths.values.contains { $0 != nil }
                ? widths.sorted { $0.key < $1.key }.map { "\($0.key): \($0.value.map { "\($0.blocks)×\($0.streams)" } ?? "one-block")" }
                    .joined(separator: ", ") : nil
            let threads = clustered == nil ? gpu.fusedStepThreads(batch: batch) : gpu.tuning.fusedStepThreads ?? 256
            let fixed = model.fusedSteps(fused).compactMap { gpu.fusedStepFixedWidth($0, streams: forced ?? gpu.fusedStepStreams(batch: batch), threads: threads) }
            notes.append((clustered.map { "clusters (width: blocks×streams) \($0)" }
                          ?? "\(forced.map { "\($0)" } ?? "auto (\(gpu.fusedStepStreams(batch: batch)))") streams/block")
                         + ", ≤ \(stack) blocks/launch, \(threads) threads"
                         + (clustered == nil && !fixed.isEmpty ? ", fixed-width kernels \(Set(fixed).sorted())" : "")
                         + (maxMB.map { ", stages over \($0) MB unfused" } ?? "") + ": \(String(format: "%.1e", err))")
        }
        return CheckOutcome(name: name, error: worst, tolerance: 1e-4, detail: "batch \(batch), \(steps) steps; " + notes.joined(separator: ", "))
    }

    /// The cluster step's variants (thread blocks and streams per cluster, blocks per launch,
    /// threads), where the device has it (sm_90 and later).
    func clusterVariants(_ v: [(Int?, Int?, Int, Int?)]) -> [(streams: Int?, stack: Int, threads: Int?, maxMB: Int?, cluster: (blocks: Int?, streams: Int?))] {
        gpu.info.computeCapability.major >= 9 ? v.map { (nil, $0.2, $0.3, nil, ($0.0, $0.1)) } : []
    }

    public func all() -> [CheckOutcome] {
        // The checks' small batches take the fused block steps too (graph replay and generation).
        let minimum = gpu.fusedStepMinimumBatch
        gpu.fusedStepMinimumBatch = 1
        defer { gpu.fusedStepMinimumBatch = minimum }
        var out = [deviceSampling(), graphMemoryPool()]
        for kind in [BlockKind.mambaComplex, .mamba] {
            out.append(fusedBlockStep(kind, config: ModelChecks.config(kind), label: "small", batch: 5,
                                      variants: [(1, 16, nil, nil, (nil, 0)), (2, 16, nil, nil, (nil, 0)), (4, 16, nil, nil, (nil, 0)),
                                                 (8, 16, nil, nil, (nil, 0)), (2, 1, nil, nil, (nil, 0)), (1, 16, 256, nil, (nil, 0))]
                                        + clusterVariants([(8, 1, 16, nil), (8, 2, 16, nil), (8, 4, 16, nil), (8, 8, 16, nil), (8, 16, 16, nil),
                                                           (4, 1, 16, nil), (4, 2, 16, nil), (4, 4, 16, nil), (4, 8, 16, nil), (4, 16, 16, nil),
                                                           (8, 2, 1, nil), (4, 4, 16, 512)])))
            out.append(fusedBlockStep(kind, config: SaShiMiConfig(), label: "SC09-small size", batch: 3,
                                      variants: [(nil, 16, nil, nil, (nil, 0)), (2, 3, nil, nil, (nil, 0)), (1, 16, 256, nil, (nil, 0)),
                                                 (nil, 16, nil, 2, (nil, 0))]
                                        + clusterVariants([(nil, nil, 16, nil), (8, 2, 3, nil), (4, 2, 3, nil), (8, 4, 16, 512)])))
            // The same widths through the generic one-block kernel (the fixed-width ones above).
            let specialised = gpu.fusedStepSpecialised
            gpu.fusedStepSpecialised = false
            out.append(fusedBlockStep(kind, config: SaShiMiConfig(), label: "SC09-small size, generic kernel", batch: 3,
                                      variants: [(nil, 16, nil, nil, (nil, nil)), (1, 16, 256, nil, (nil, nil))]))
            gpu.fusedStepSpecialised = specialised
            out.append(fusedBlockStep(kind, config: SaShiMiConfig(), label: "SC09-small size, batch 37", batch: 37,
                                      variants: [(nil, 16, nil, nil, (nil, 0))]
                                        + clusterVariants([(nil, nil, 16, nil), (8, 16, 16, nil), (4, 8, 16, nil), (4, 16, 16, nil)])))
            out.append(graphReplay(kind))
            out.append(graphGeneration(kind))
        }
        out.append(graphGeneration(.mamba, .unet))
        out.append(graphGeneration(.mambaLTI, .unet))   // generic step captured: no fused block step takes it
        return out
    }
}
