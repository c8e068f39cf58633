import Engine
import Foundation
import Kernels
import Layers

/// The CPU fast path of SaShiMi's step mode: the same schedule (`SaShiMiStepSchedule`) as
/// `SaShiMiStepState` / `SaShiMi.step`, but over raw buffers with packed weights and fused per-block kernels
/// (`MambaStepKernel`, `PackedLinear`), and parallel at the coarsest grain: the streams are
/// split into one part per thread and each part runs the whole U-Net step on its thread, so
/// a step costs one thread-pool dispatch instead of hundreds of small Backend calls.
///
/// Weights are packed when the state is made (a snapshot: make a new state after the
/// parameters change); the embedding and LayerNorm parameters are read in place. Every
/// buffer is allocated here: a step allocates nothing.
public final class SaShiMiFastStepState {
    public let batch: Int
    public let classes: Int
    public let schedule: SaShiMiStepSchedule
    /// Steps taken since the state was made or reset.
    public private(set) var steps = 0
    /// (batch, classes): the logits of the latest step.
    public let logits: UnsafeMutablePointer<Float>
    let weights: Weights
    let parts: [Part]
    let pool: ThreadPool

    /// The packed parameters, shared (read-only) by the parts.
    final class Weights {
        let model: SaShiMi          // keeps the in-place parameters alive
        let embedding: UnsafePointer<Float>
        /// `unet`: per pooling level, the blocks before its DownPool (else empty lists).
        let downBlocks: [[Block]]
        let downs: [(linear: PackedLinear, pool: Int, width: Int)]
        let center: [Block]
        let ups: [(linear: PackedLinear, pool: Int, width: Int, blocks: [Block])]
        let normWeight: UnsafePointer<Float>, normBias: UnsafePointer<Float>
        let head: PackedLinear

        init(_ m: SaShiMi) {
            model = m
            embedding = UnsafePointer(m.embedding.value.pointer)
            // The DownPool's buffer holds (s, h) per stream; PyTorch's stacked channel is h·pool + s.
            downs = m.down.map { d in
                let w = d.width, p = d.pool
                return (PackedLinear(weight: d.linear.weight.value.pointer, bias: d.linear.bias?.value.pointer,
                                     outFeatures: d.linear.weight.shape[0], inFeatures: w * p,
                                     inputIndex: { k in (k % w) * p + k / w }), p, w)
            }
            downBlocks = m.downBlocks.map { $0.map(Block.init) }
            center = m.center.map(Block.init)
            // The UpPool's output channel h·pool + s is written at s·width + h: the cache's rows.
            ups = m.up.map { stage in
                let w = stage.pool.width, p = stage.pool.pool
                return (PackedLinear(weight: stage.pool.linear.weight.value.pointer, bias: stage.pool.linear.bias?.value.pointer,
                                     outFeatures: w * p, inFeatures: stage.pool.linear.weight.shape[1],
                                     outputIndex: { j in (j % w) * p + j / w }), p, w, stage.blocks.map(Block.init))
            }
            normWeight = UnsafePointer(m.norm.weight.value.pointer)
            normBias = UnsafePointer(m.norm.bias.value.pointer)
            head = PackedLinear(m.head)
        }
    }

    /// One residual block's packed parameters.
    enum Block {
        case mamba(MambaStepWeights)
        case s4d(S4D, norm: (UnsafePointer<Float>, UnsafePointer<Float>), out: PackedLinear)
        case feedForward(norm: (UnsafePointer<Float>, UnsafePointer<Float>), fc1: PackedLinear, fc2: PackedLinear)

        init(_ block: ResidualBlock) {
            let norm = (UnsafePointer(block.norm.weight.value.pointer), UnsafePointer(block.norm.bias.value.pointer))
            switch block.mixer {
            case .mamba(let m):
                let c = m.config
                self = .mamba(MambaStepWeights(
                    dModel: c.dModel, dInner: c.dInner, dtRank: c.resolvedDtRank, dState: c.dState, dConv: c.dConv, isComplex: c.isComplex,
                    normWeight: norm.0, normBias: norm.1, inProj: m.inProj.weight.value.pointer,
                    convWeight: m.conv1dWeight.value.pointer, convBias: m.conv1dBias.value.pointer,
                    xProj: m.xProj.weight.value.pointer, dtProjWeight: m.dtProj.weight.value.pointer,
                    dtProjBias: m.dtProj.bias?.value.pointer, ALog: m.ALog.value.pointer, AImag: m.AImag?.value.pointer,
                    D: m.D.value.pointer, outProj: m.outProj.weight.value.pointer))
            case .s4d(let l):
                self = .s4d(l, norm: norm, out: PackedLinear(weight: l.outputWeight.value.pointer, bias: l.outputBias.value.pointer,
                                                            outFeatures: 2 * l.channels, inFeatures: l.channels))
            case .feedForward(let f):
                self = .feedForward(norm: norm, fc1: PackedLinear(f.fc1), fc2: PackedLinear(f.fc2))
            case .attention, .mambaLTI:
                preconditionFailure("SaShiMi fast step: no attention or non-selective Mamba blocks (makeFastStepState returns nil for them)")
            }
        }
    }

    /// One block's per-stream state and scratch for a part's rows.
    enum BlockState {
        case mamba(MambaStepWorkspace)
        case s4d(S4D.StepState, normed: UnsafeMutablePointer<Float>, y: UnsafeMutablePointer<Float>,
                 expanded: UnsafeMutablePointer<Float>, gated: UnsafeMutablePointer<Float>)
        case feedForward(normed: UnsafeMutablePointer<Float>, hidden: UnsafeMutablePointer<Float>)
    }

    /// The streams first..<first + rows, run start to end on one thread.
    final class Part {
        let first: Int, rows: Int
        let x0: UnsafeMutablePointer<Float>
        /// Per DownPool: (rows, pool·H) inputs so far in (s, h) order, and its output.
        let downBuffers: [UnsafeMutablePointer<Float>]
        let downOuts: [UnsafeMutablePointer<Float>]
        /// `unet`: per pooling level, the input of each down block and last the DownPool's
        /// (the skips of the way up), and the blocks' states.
        let downH: [[UnsafeMutablePointer<Float>]]
        let downBlocks: [[BlockState]]
        let center: [BlockState]
        let centerH: UnsafeMutablePointer<Float>
        /// Per up stage: the UpPool's cache (rows, pool·H) in (s, h) order; the joined input
        /// (skip added) and the residual stream through the blocks.
        let upCaches: [UnsafeMutablePointer<Float>]
        let upJoined: [UnsafeMutablePointer<Float>]
        let upH: [UnsafeMutablePointer<Float>]
        let upBlocks: [[BlockState]]
        let normed: UnsafeMutablePointer<Float>
        let single = ThreadPool(threads: 1)
        private var owned: [UnsafeMutablePointer<Float>] = []

        private func buffer(_ n: Int) -> UnsafeMutablePointer<Float> {
            let p = UnsafeMutablePointer<Float>.allocate(capacity: max(1, n))
            p.initialize(repeating: 0, count: max(1, n))
            owned.append(p)
            return p
        }

        init(_ w: Weights, _ schedule: SaShiMiStepSchedule, first: Int, rows: Int) {
            self.first = first
            self.rows = rows
            let c = w.model.config
            // Temporary lists (stored properties must be set before `buffer` can be called).
            var tmp: [UnsafeMutablePointer<Float>] = []
            func make(_ n: Int) -> UnsafeMutablePointer<Float> {
                let p = UnsafeMutablePointer<Float>.allocate(capacity: max(1, n))
                p.initialize(repeating: 0, count: max(1, n))
                tmp.append(p)
                return p
            }
            func state(_ b: Block, width: Int) -> BlockState {
                switch b {
                case .mamba(let mw): return .mamba(MambaStepWorkspace(mw, rows: rows))
                case .s4d(let l, _, _):
                    return .s4d(l.makeStepState(batch: rows), normed: make(rows * width), y: make(rows * width),
                                expanded: make(rows * 2 * width), gated: make(rows * width))
                case .feedForward(_, let fc1, _):
                    return .feedForward(normed: make(rows * width), hidden: make(rows * fc1.outFeatures))
                }
            }
            x0 = make(rows * c.dModel)
            downBuffers = (0..<schedule.levels).map { let s = schedule.downBuffer(level: $0); return make(rows * s.rows * s.width) }
            downOuts = w.downs.map { make(rows * $0.linear.outFeatures) }
            downH = zip(w.downBlocks, w.downs).map { blocks, d in blocks.isEmpty ? [] : (0...blocks.count).map { _ in make(rows * d.width) } }
            downBlocks = zip(w.downBlocks, w.downs).map { blocks, d in blocks.map { state($0, width: d.width) } }
            let cw = w.downs.last?.linear.outFeatures ?? c.dModel
            center = w.center.map { state($0, width: cw) }
            centerH = make(rows * cw)
            upCaches = (0..<schedule.levels).map { let s = schedule.upCache(stage: $0); return make(rows * s.rows * s.width) }
            upJoined = w.ups.map { make(rows * $0.width) }
            upH = w.ups.map { make(rows * $0.width) }
            upBlocks = w.ups.map { u in u.blocks.map { state($0, width: u.width) } }
            normed = make(rows * c.dModel)
            owned = tmp
        }

        deinit { for p in owned { p.deallocate() } }

        /// Runs sample `sample` of this part's streams; writes logits rows first..<first + rows.
        func step(_ w: Weights, _ schedule: SaShiMiStepSchedule, sample: Int, tokens: UnsafePointer<Int32>,
                  logits: UnsafeMutablePointer<Float>, classes: Int) {
            var executor = FastStep(part: self, w: w, schedule: schedule, tokens: tokens, logits: logits, classes: classes)
            schedule.run(sample: sample, &executor)
        }

        /// h ← h + mixer(LayerNorm(h)) in place (rows × width).
        fileprivate func stepBlock(_ b: Block, _ s: BlockState, _ h: UnsafeMutablePointer<Float>, width: Int) {
            switch (b, s) {
            case (.mamba(let mw), .mamba(let ws)):
                MambaStepKernel.residualStep(mw, ws, x: h, out: h, pool: single)
            case (.s4d(let layer, let norm, let out), .s4d(let st, let normed, let y, let expanded, let gated)):
                LayerNorm.forward(x: h, weight: norm.0, bias: norm.1, y: normed, mean: nil, rstd: nil, rows: rows, channels: width, pool: single)
                st.advance(u: normed, ldu: width, D: layer.D.value.pointer, y: y, pool: single)
                Activations.gelu(y, y, count: rows * width, pool: single)
                out.apply(x: y, ldx: width, rows: rows, y: expanded, ldy: 2 * width)
                GLU.forward(x: expanded, y: gated, rows: rows, half: width, pool: single)
                add(h, gated, rows * width)
            case (.feedForward(let norm, let fc1, let fc2), .feedForward(let normed, let hidden)):
                LayerNorm.forward(x: h, weight: norm.0, bias: norm.1, y: normed, mean: nil, rstd: nil, rows: rows, channels: width, pool: single)
                fc1.apply(x: normed, ldx: width, rows: rows, y: hidden, ldy: fc1.outFeatures)
                Activations.gelu(hidden, hidden, count: rows * fc1.outFeatures, pool: single)
                fc2.apply(x: hidden, ldx: fc1.outFeatures, rows: rows, y: h, ldy: width, addend: h, ldAddend: width)
            default:
                preconditionFailure("SaShiMi fast step: block state does not match its block")
            }
        }

        /// a += b (n floats).
        fileprivate func add(_ a: UnsafeMutablePointer<Float>, _ b: UnsafePointer<Float>, _ n: Int) {
            for k in 0..<n { a[k] += b[k] }
        }
    }

    init(model: SaShiMi, batch: Int, pool: ThreadPool) {
        precondition(batch > 0, "SaShiMi fast step: batch must be positive")
        self.batch = batch
        classes = model.config.classes
        self.pool = pool
        schedule = SaShiMiStepSchedule(config: model.config)
        weights = Weights(model)
        logits = .allocate(capacity: batch * classes)
        logits.initialize(repeating: 0, count: batch * classes)
        // One part per thread, sizes rounded to multiples of 4 rows (the linear kernel's block).
        let n = max(1, min(pool.threads, batch))
        var parts: [Part] = []
        var first = 0
        for p in 0..<n {
            let remaining = batch - first, left = n - p
            var rows = (remaining + left - 1) / left
            if left > 1 { rows = min(remaining - (left - 1), (rows + 3) / 4 * 4) }
            parts.append(Part(weights, schedule, first: first, rows: rows))
            first += rows
        }
        self.parts = parts
    }

    deinit { logits.deallocate() }

    /// Forgets every stream's history.
    public func reset() {
        steps = 0
        for part in parts {
            for d in part.downBuffers.indices {
                let s = schedule.downBuffer(level: d)
                part.downBuffers[d].update(repeating: 0, count: part.rows * s.rows * s.width)
            }
            for u in part.upCaches.indices {
                let s = schedule.upCache(stage: u)
                part.upCaches[u].update(repeating: 0, count: part.rows * s.rows * s.width)
            }
            for s in part.downBlocks.joined() + part.center + part.upBlocks.joined() {
                switch s {
                case .mamba(let ws): ws.reset()
                case .s4d(let st, _, _, _, _): st.reset()
                case .feedForward: break
                }
            }
        }
    }

    /// The stream ranges that run on separate threads.
    public var partRanges: [Range<Int>] { parts.map { $0.first..<($0.first + $0.rows) } }

    /// probs[s] = softmax(logits[s] / temperature) for streams `rows`, on the calling thread (the
    /// sampler runs it from `then`, on each part's thread).
    public func softmax(rows: Range<Int>, probs: UnsafeMutablePointer<Float>, temperature: Float) {
        CrossEntropy.softmax(logits: logits + rows.lowerBound * classes, probs: probs + rows.lowerBound * classes,
                             rows: rows.count, classes: classes, temperature: temperature, pool: Self.single)
    }

    /// The pool of work already on a part's thread.
    private static let single = ThreadPool(threads: 1)

    /// Feeds one token per stream and writes the next sample's logits to `logits`. Then, still
    /// on each part's thread, calls `then(streams)` for that part's range (e.g. to sample from
    /// its rows), so a whole generated sample is one thread-pool dispatch.
    public func step(tokens: UnsafePointer<Int32>, then: ((Range<Int>) -> Void)? = nil) {
        let w = weights, schedule = self.schedule, sample = steps, logits = self.logits, classes = self.classes
        pool.forEach(parts.count) { p in
            let part = parts[p]
            part.step(w, schedule, sample: sample, tokens: tokens, logits: logits, classes: classes)
            then?(part.first..<(part.first + part.rows))
        }
        steps += 1
    }
}

/// The fast path's executor of the step schedule: one part's streams on its thread.
private struct FastStep: SaShiMiStepExecutor {
    let part: SaShiMiFastStepState.Part, w: SaShiMiFastStepState.Weights, schedule: SaShiMiStepSchedule
    let tokens: UnsafePointer<Int32>, logits: UnsafeMutablePointer<Float>, classes: Int
    /// The input of the next call.
    var x: UnsafeMutablePointer<Float>

    init(part: SaShiMiFastStepState.Part, w: SaShiMiFastStepState.Weights, schedule: SaShiMiStepSchedule, tokens: UnsafePointer<Int32>,
         logits: UnsafeMutablePointer<Float>, classes: Int) {
        self.part = part; self.w = w; self.schedule = schedule; self.tokens = tokens; self.logits = logits; self.classes = classes
        x = part.x0
    }

    mutating func embed() {
        let H0 = w.model.config.dModel, p = part
        for r in 0..<p.rows {
            let t = Int(tokens[p.first + r])
            precondition(t >= 0 && t < classes, "SaShiMi step: token \(t) outside 0..<\(classes)")
            (p.x0 + r * H0).update(from: w.embedding + t * H0, count: H0)
        }
        x = p.x0
    }

    mutating func down(level i: Int, row: Int, emits: Bool) {
        let p = part, rows = p.rows, d = w.downs[i], ld = d.pool * d.width
        if !w.downBlocks[i].isEmpty {
            // Each block steps a copy of its input, which stays as the mirror's skip.
            let hs = p.downH[i]
            hs[0].update(from: x, count: rows * d.width)
            for k in 0..<w.downBlocks[i].count {
                hs[k + 1].update(from: hs[k], count: rows * d.width)
                p.stepBlock(w.downBlocks[i][k], p.downBlocks[i][k], hs[k + 1], width: d.width)
            }
            x = hs[w.downBlocks[i].count]
        }
        let buf = p.downBuffers[i], slot = row * d.width
        for r in 0..<rows { (buf + r * ld + slot).update(from: x + r * d.width, count: d.width) }
        guard emits else { return }
        d.linear.apply(x: buf, ldx: ld, rows: rows, y: p.downOuts[i], ldy: d.linear.outFeatures)
        x = p.downOuts[i]
    }

    mutating func center() {
        let p = part, width = w.downs.last?.linear.outFeatures ?? w.model.config.dModel
        p.centerH.update(from: x, count: p.rows * width)
        for j in 0..<w.center.count { p.stepBlock(w.center[j], p.center[j], p.centerH, width: width) }
        p.add(p.centerH, x, p.rows * width)
        x = p.centerH
    }

    mutating func up(stage i: Int, row: Int, refills: Bool, last: Bool) -> Bool {
        let p = part, rows = p.rows, u = w.ups[i], width = u.width, ld = u.pool * width
        // The mirror level's skips: the DownPool's input, then (unet) its blocks' inputs.
        let j = schedule.mirror(upStage: i)
        let mirror = p.downH[j]
        let skip = mirror.last ?? (j == 0 ? p.x0 : p.downOuts[j - 1])
        let cache = p.upCaches[i], joined = p.upJoined[i], h = p.upH[i]
        // Pop the cached output (plus the skip) before a refill overwrites the cache.
        let slot = row * width
        for r in 0..<rows {
            let c = cache + r * ld + slot, s = skip + r * width, o = joined + r * width
            for k in 0..<width { o[k] = c[k] + s[k] }
        }
        if refills { u.linear.apply(x: x, ldx: u.linear.inFeatures, rows: rows, y: cache, ldy: ld) }
        h.update(from: joined, count: rows * width)
        if mirror.isEmpty {
            for k in 0..<u.blocks.count { p.stepBlock(u.blocks[k], p.upBlocks[i][k], h, width: width) }
            p.add(h, joined, rows * width)
        } else {
            for k in 0..<u.blocks.count {
                p.stepBlock(u.blocks[k], p.upBlocks[i][k], h, width: width)
                p.add(h, mirror[u.blocks.count - 1 - k], rows * width)
            }
        }
        x = h
        return false
    }

    mutating func head() {
        let p = part, H0 = w.model.config.dModel
        LayerNorm.forward(x: x, weight: w.normWeight, bias: w.normBias, y: p.normed, mean: nil, rstd: nil,
                          rows: p.rows, channels: H0, pool: p.single)
        w.head.apply(x: p.normed, ldx: H0, rows: p.rows, y: logits + p.first * classes, ldy: classes)
    }
}

extension PackedLinear {
    /// Packs a Linear layer's (CPU) weight and bias.
    convenience init(_ l: Linear) {
        self.init(weight: l.weight.value.pointer, bias: l.bias?.value.pointer, outFeatures: l.weight.shape[0], inFeatures: l.weight.shape[1])
    }
}

extension SaShiMi {
    /// The CPU fast step path for `batch` streams, or nil when the model is not on the CPU or
    /// has a shape the fused kernels do not cover (Mamba dInner not a multiple of 16): callers
    /// then use `makeStepState` and `step(tokens:_:)`, the Backend-generic path.
    public func makeFastStepState(batch: Int) -> SaShiMiFastStepState? {
        guard let cpu = store.backend as? any HostBackend, cpu.device == .cpu else { return nil }
        for block in downBlocks.joined() + center + up.flatMap(\.blocks) {
            if case .mamba(let m) = block.mixer, m.config.dInner % 16 != 0 { return nil }
            if case .attention = block.mixer { return nil }   // the generic path steps its KV cache
            if case .mambaLTI = block.mixer { return nil }    // no packed kernel reads Δ, B, C as parameters
        }
        return SaShiMiFastStepState(model: self, batch: batch, pool: cpu.pool)
    }

    /// Convenience for tests and priming: one step of the fast path from an array of tokens;
    /// returns the logits (batch × classes) as an array (allocates: not for the sampling loop).
    public func fastStepLogits(tokens: [Int32], _ s: SaShiMiFastStepState) -> [Float] {
        precondition(tokens.count == s.batch, "SaShiMi fast step: \(tokens.count) tokens for \(s.batch) streams")
        tokens.withUnsafeBufferPointer { s.step(tokens: $0.baseAddress!) }
        return Array(UnsafeBufferPointer(start: s.logits, count: s.batch * s.classes))
    }
}
