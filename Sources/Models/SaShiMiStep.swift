import Engine
import Foundation
import FusedSteps
import Layers

/// Step-by-step (recurrent) state of a SaShiMi U-Net for `batch` streams, with every
/// buffer a step needs allocated up front: generating a sample allocates nothing. Which
/// stages run at which sample is `schedule`'s (`SaShiMiStepSchedule`).
public final class SaShiMiStepState {
    public let batch: Int
    public let schedule: SaShiMiStepSchedule
    /// (batch) Int32: the tokens the next step embeds (an on-device sampler writes them here).
    public let token: Tensor
    let x0: Tensor               // (batch, H) embedded input
    /// Per pooling level, its down blocks' states (`unet`; else empty).
    let downBlocks: [[BlockState]]
    let downs: [DownState]
    let center: [BlockState]
    /// The center's fused block steps when every block has one: the stage is one launch.
    let centerRun: ArraySlice<ResidualMambaStep>?
    let centerOut: Tensor
    let ups: [(pool: UpState, blocks: [BlockState], joined: Tensor, out: Tensor)]
    /// Each up stage's fused block steps, as `centerRun`.
    let upRuns: [ArraySlice<ResidualMambaStep>?]
    let normMean: Tensor, normRstd: Tensor
    let normed: Tensor
    /// (batch, classes): the logits of the latest step.
    public let logits: Tensor
    /// The output head (final LayerNorm and linear layer, its weight transposed) for the last
    /// stage's fused launch to apply, with fused block steps; it writes `logits`.
    let fusedHead: StepHead?

    /// Stack of skip connections (the input of each layer on the way down, as the parallel
    /// forward pushes them), reused every step (capacity reserved once).
    var outputs: [Tensor] = []

    /// Steps taken so far. The schedule cycles with period `period`, so the kernels a step
    /// queues (which stages run, which buffer rows they touch) depend only on `phase`: a step
    /// recorded once per phase can be replayed for every later step of it.
    public internal(set) var steps = 0
    /// Π pool (16 for the default [4, 4]).
    public var period: Int { schedule.period }
    public var phase: Int { steps % period }

    final class DownState {
        let buffer: Tensor       // (batch, pool, H) inputs so far
        let slots: [Tensor]      // buffer's rows s as (batch, H) column views
        let stacked: Tensor      // (batch, H·pool) in (h, s) order
        let stacked3: Tensor     // the same as (batch, H, pool)
        let out: Tensor          // (batch, expand·H)
        /// Rows stored since the buffer last emitted (the schedule's, kept for inspection).
        var count = 0
        /// `shape`: the schedule's `downBuffer`; `outWidth`: the DownPool's output width.
        init(_ b: any Backend, batch: Int, shape: (rows: Int, width: Int), outWidth: Int) {
            let (pool, width) = shape
            buffer = b.zeros([batch, pool, width])
            let flat = buffer.reshaped([batch, pool * width])
            slots = (0..<pool).map { flat.columns(($0 * width)..<(($0 + 1) * width)) }
            stacked = b.empty([batch, width * pool])
            stacked3 = stacked.reshaped([batch, width, pool])
            out = b.empty([batch, outWidth])
        }
    }

    final class UpState {
        let projected: Tensor    // (batch, H·pool) in (h, s) order
        let cache: Tensor        // (batch, pool, H)
        let slots: [Tensor]      // cache's rows s as (batch, H) column views
        let out: Tensor          // (batch, H)
        /// The next row to read (the schedule's, kept for inspection).
        var index = 0
        /// `shape`: the schedule's `upCache`.
        init(_ b: any Backend, batch: Int, shape: (rows: Int, width: Int)) {
            let (pool, width) = shape
            projected = b.empty([batch, width * pool])
            cache = b.zeros([batch, pool, width])
            let flat = cache.reshaped([batch, pool * width])
            slots = (0..<pool).map { flat.columns(($0 * width)..<(($0 + 1) * width)) }
            out = b.empty([batch, width])
        }
    }

    final class BlockState {
        let normed: Tensor, mean: Tensor, rstd: Tensor, out: Tensor
        let mamba: MambaStepState?
        let mambaLTI: MambaLTIStepState?
        /// The block's fused step (`fusedBlocks`), over `mamba`'s states; a stage steps its blocks'
        /// fused steps together (`centerRun`, `upRuns`) when every block has one.
        let fused: ResidualMambaStep?
        let s4d: S4D.StepState?
        /// The KV cache of an attention block, `maxSteps` of its stage long.
        let attention: MultiHeadAttention.StepState?
        let hidden: Tensor?      // FF hidden (batch, ff·H)
        let mixed: Tensor?       // FF output (batch, H)
        init(_ b: any Backend, batch: Int, block: ResidualBlock, width: Int, fused fuse: Bool, maxSteps: Int) {
            normed = b.empty([batch, width]); mean = b.empty([batch]); rstd = b.empty([batch]); out = b.empty([batch, width])
            var mamba: MambaStepState?, mambaLTI: MambaLTIStepState?, fused: ResidualMambaStep?, s4d: S4D.StepState?, attention: MultiHeadAttention.StepState?
            var hidden: Tensor?, mixed: Tensor?
            switch block.mixer {
            case .mamba(let m):
                let st = m.makeStepState(batch: batch)
                mamba = st
                let step = fuse ? m.residualStep(normWeight: block.norm.weight.value, normBias: block.norm.bias.value, state: st) : nil
                fused = step.flatMap { (b as? any StepGraphBackend)?.fusedStepPays($0) == true ? $0 : nil }
            case .mambaLTI(let m):
                mambaLTI = m.makeStepState(batch: batch)
            case .s4d(let l):
                s4d = l.makeStepState(batch: batch)
            case .attention(let a):
                attention = a.makeStepState(batch: batch, maxLength: maxSteps)
            case .feedForward(let f):
                hidden = b.empty([batch, f.fc1.weight.shape[0]]); mixed = b.empty([batch, width])
            }
            self.mamba = mamba; self.mambaLTI = mambaLTI; self.fused = fused; self.s4d = s4d; self.attention = attention; self.hidden = hidden; self.mixed = mixed
        }
    }

    init(model: SaShiMi, batch: Int, fusedBlocks: Bool, maxSamples: Int) {
        let b = model.store.backend, c = model.config
        self.batch = batch
        /// Steps a stage at pooling level `level` takes in `maxSamples` samples (attention caches).
        func steps(_ level: Int) -> Int { maxSamples / c.pool.prefix(level).reduce(1, *) + 1 }
        // Fused block steps need a backend that has them.
        let fuse = fusedBlocks && (b as? any StepGraphBackend).map { $0.fusedBlockSteps && batch >= $0.fusedStepMinimumBatch } == true
        let schedule = SaShiMiStepSchedule(config: c)
        self.schedule = schedule
        token = b.empty([batch], dtype: .int32)
        x0 = b.empty([batch, c.dModel])
        downs = model.down.enumerated().map { level, pool in
            DownState(b, batch: batch, shape: schedule.downBuffer(level: level), outWidth: pool.linear.weight.shape[0])
        }
        downBlocks = zip(model.downBlocks, model.down).enumerated().map { level, stage in
            stage.0.map { BlockState(b, batch: batch, block: $0, width: stage.1.width, fused: fuse, maxSteps: steps(level)) }
        }
        var width = c.dModel * Int(pow(Double(c.expand), Double(c.pool.count)))
        center = model.center.map { BlockState(b, batch: batch, block: $0, width: width, fused: fuse, maxSteps: steps(c.pool.count)) }
        centerOut = b.empty([batch, width])
        var ups: [(UpState, [BlockState], Tensor, Tensor)] = []
        for (i, stage) in model.up.enumerated() {
            width /= c.expand
            let level = c.pool.count - 1 - i
            ups.append((UpState(b, batch: batch, shape: schedule.upCache(stage: i)),
                        stage.blocks.map { BlockState(b, batch: batch, block: $0, width: width, fused: fuse, maxSteps: steps(level)) },
                        b.empty([batch, width]), b.empty([batch, width])))
        }
        self.ups = ups
        /// A stage whose blocks all step fused steps in one launch (stages are of one width: all or none).
        func run(_ blocks: [BlockState]) -> ArraySlice<ResidualMambaStep>? {
            let steps = blocks.compactMap(\.fused)
            return !steps.isEmpty && steps.count == blocks.count ? steps[...] : nil
        }
        // unet's up stages add a skip after every block: their blocks step one by one.
        centerRun = run(center)
        upRuns = ups.map { c.backbone == .unet ? nil : run($0.1) }
        normMean = b.empty([batch]); normRstd = b.empty([batch])
        normed = b.empty([batch, c.dModel])
        logits = b.empty([batch, c.classes])
        if fuse, upRuns.last.map({ $0 != nil }) == true {
            fusedHead = StepHead(normWeight: model.norm.weight.value, normBias: model.norm.bias.value,
                                 weightT: b.transposed(model.head.weight.value), bias: model.head.bias?.value, logits: logits)
        } else {
            fusedHead = nil
        }
        outputs.reserveCapacity(c.pool.count + 1 + downBlocks.joined().count)
    }
}

extension SaShiMi {
    /// With `fusedBlocks`, on a backend whose `fusedBlockSteps` is on (CUDA), each residual
    /// Mamba block steps as one launch over transposed copies of its weights, made now: a
    /// snapshot, so make a new state after the parameters change.
    /// `maxSamples` bounds the samples the state may step: it sizes attention blocks' KV caches
    /// (2·batch·steps·width floats each) and is unused without them.
    public func makeStepState(batch: Int, fusedBlocks: Bool = false, maxSamples: Int = 1 << 16) -> SaShiMiStepState {
        SaShiMiStepState(model: self, batch: batch, fusedBlocks: fusedBlocks, maxSamples: maxSamples)
    }

    /// Whether `state`'s residual Mamba blocks step as single launches.
    public func usesFusedBlocks(_ state: SaShiMiStepState) -> Bool { !fusedSteps(state).isEmpty }

    /// `state`'s fused block steps, center first, then the up stages'.
    public func fusedSteps(_ state: SaShiMiStepState) -> [ResidualMambaStep] {
        (state.downBlocks.joined() + state.center + state.ups.flatMap(\.blocks)).compactMap(\.fused)
    }

    /// Feeds one token per stream (Int32 classes) and returns the logits for the next sample
    /// (`state.logits`, (batch, classes)). Equal to the parallel forward at the same position.
    @discardableResult
    public func step(tokens: [Int32], _ s: SaShiMiStepState) -> Tensor {
        precondition(tokens.count == s.batch)
        s.token.copy(from: tokens)
        return stepOnDeviceTokens(s)
    }

    /// `step` on the tokens already in `state.token` (no host copy): what a captured step
    /// graph runs, after an on-device sampler has written the tokens.
    @discardableResult
    public func stepOnDeviceTokens(_ s: SaShiMiStepState) -> Tensor {
        var executor = ReferenceStep(model: self, state: s)
        s.schedule.run(sample: s.steps, &executor)
        s.steps += 1
        return s.logits
    }

    /// Advances the stage counters (and attention caches' positions) exactly as `step` does,
    /// queuing nothing: a replayed step graph did the work.
    public func advanceWithoutLaunching(_ s: SaShiMiStepState) {
        var executor = CountersOnly(state: s)
        s.schedule.run(sample: s.steps, &executor)
        s.steps += 1
    }

    /// Pops cache row `row`; refills the cache from the coarser level's output `x` after it
    /// when `refills`.
    fileprivate func stepUpPool(_ pool: UpPool, _ x: Tensor, _ st: SaShiMiStepState.UpState, row: Int, refills: Bool) -> Tensor {
        let b = store.backend, batch = st.out.shape[0], w = pool.width
        b.copy2D(from: st.slots[row], to: st.out, accumulate: false)
        st.index = refills ? 0 : row + 1
        if refills {
            b.linear(x: x, weight: pool.linear.weight.value, bias: pool.linear.bias?.value, y: st.projected)
            b.transpose(st.projected, batch: batch, rows: w, cols: pool.pool, out: st.cache, accumulate: false)
        }
        return st.out
    }

    /// A stage with SaShiMi's residual around it: out = blocks(x + addend) + (x + addend), the
    /// sum kept in `joined` (needed with an addend). A stage of fused Mamba steps is one launch,
    /// adds included (`residualMambaSteps`); a run longer than a launch takes still steps fused.
    /// With `head`, the launch may apply the output head too: returns whether it did (the
    /// logits are then in `head.logits`).
    @discardableResult
    fileprivate func stepStage(_ blocks: [ResidualBlock], _ states: [SaShiMiStepState.BlockState], run: ArraySlice<ResidualMambaStep>?,
                           x: Tensor, addend: Tensor?, joined: Tensor?, out: Tensor, head: StepHead?) -> Bool {
        let b = store.backend
        let fb = run == nil ? nil : b as? any StepGraphBackend
        if let run, let fb, run.count <= fb.fusedStackLayers {
            if let head, fb.residualMambaSteps(run, x: x, addend: addend, out: out, head: head) { return true }
            fb.residualMambaSteps(run, x: x, addend: addend, out: out, stageResidual: true)
            return false
        }
        var input = x
        if let addend {
            guard let joined else { preconditionFailure("SaShiMi step: a stage with an addend needs `joined`") }
            b.add(x, addend, out: joined)
            input = joined
        }
        var h = input
        if let run, let fb, let last = states.last {
            fb.residualMambaSteps(run, x: input, out: last.out)
            h = last.out
        } else {
            for (block, st) in zip(blocks, states) { h = stepBlock(block, h, st) }
        }
        b.add(h, input, out: out)
        return false
    }

    /// st.out = x + mixer(LayerNorm(x)): one fused launch where the block has a fused step.
    fileprivate func stepBlock(_ block: ResidualBlock, _ x: Tensor, _ st: SaShiMiStepState.BlockState) -> Tensor {
        let b = store.backend
        if let f = st.fused, let fb = b as? any StepGraphBackend {
            fb.residualMambaSteps([f][...], x: x, out: st.out)
            return st.out
        }
        b.layerNorm(x: x, weight: block.norm.weight.value, bias: block.norm.bias.value, y: st.normed, mean: st.mean, rstd: st.rstd)
        let y: Tensor
        switch block.mixer {
        case .mamba(let m): y = m.step(st.normed, st.mamba!)
        case .mambaLTI(let m): y = m.step(st.normed, st.mambaLTI!)
        case .s4d(let l): y = l.step(st.normed, st.s4d!)
        case .attention(let a): y = a.step(st.normed, st.attention!)
        case .feedForward(let f): f.step(st.normed, hidden: st.hidden!, out: st.mixed!); y = st.mixed!
        }
        b.add(y, x, out: st.out)
        return st.out
    }
}

/// The reference executor of the step schedule: Backend ops one by one, or a stage's fused
/// block steps in one launch where the state has them (what the CUDA step graphs capture).
private struct ReferenceStep: SaShiMiStepExecutor {
    let model: SaShiMi, s: SaShiMiStepState
    /// The input of the next call.
    var x: Tensor

    init(model: SaShiMi, state: SaShiMiStepState) {
        self.model = model
        s = state
        x = state.x0
    }

    mutating func embed() {
        model.store.backend.embedding(table: model.embedding.value, indices: s.token, out: s.x0)
        s.outputs.removeAll(keepingCapacity: true)
        x = s.x0
    }

    mutating func down(level: Int, row: Int, emits: Bool) {
        let b = model.store.backend, pool = model.down[level], st = s.downs[level]
        for (block, bs) in zip(model.downBlocks[level], s.downBlocks[level]) {
            s.outputs.append(x)
            x = model.stepBlock(block, x, bs)
        }
        s.outputs.append(x)
        // x becomes row `row` of each stream's (pool, H) buffer.
        b.copy2D(from: x, to: st.slots[row], accumulate: false)
        st.count = emits ? 0 : row + 1
        guard emits else { return }
        b.transpose(st.buffer, batch: s.batch, rows: pool.pool, cols: pool.width, out: st.stacked3, accumulate: false)
        b.linear(x: st.stacked, weight: pool.linear.weight.value, bias: pool.linear.bias?.value, y: st.out)
        x = st.out
    }

    mutating func center() {
        // The stage residual: the center's skip is its own input.
        model.stepStage(model.center, s.center, run: s.centerRun, x: x, addend: nil, joined: nil, out: s.centerOut, head: nil)
        x = s.centerOut
    }

    mutating func up(stage i: Int, row: Int, refills: Bool, last: Bool) -> Bool {
        let b = model.store.backend, stage = model.up[i], st = s.ups[i]
        let y = model.stepUpPool(stage.pool, x, st.pool, row: row, refills: refills)
        if s.schedule.skipsPerBlock {
            // Each layer adds the input of its mirror on the way down.
            b.add(y, s.outputs.removeLast(), out: st.joined)
            var h = st.joined
            for (block, bs) in zip(stage.blocks, st.blocks) {
                h = model.stepBlock(block, h, bs)
                b.add(h, s.outputs.removeLast(), out: bs.out)
            }
            x = h
            return false
        }
        if model.stepStage(stage.blocks, st.blocks, run: s.upRuns[i], x: y, addend: s.outputs.removeLast(), joined: st.joined,
                           out: st.out, head: last ? s.fusedHead : nil) {
            return true
        }
        x = st.out
        return false
    }

    mutating func head() {
        let b = model.store.backend
        b.layerNorm(x: x, weight: model.norm.weight.value, bias: model.norm.bias.value, y: s.normed, mean: s.normMean, rstd: s.normRstd)
        b.linear(x: s.normed, weight: model.head.weight.value, bias: model.head.bias?.value, y: s.logits)
    }
}

/// The schedule's counters without the work: what a replayed step graph leaves to the host.
private struct CountersOnly: SaShiMiStepExecutor {
    let s: SaShiMiStepState

    init(state: SaShiMiStepState) { s = state }

    private func advance(_ blocks: [SaShiMiStepState.BlockState]) { for b in blocks { b.attention?.advanceWithoutLaunching() } }

    func embed() {}

    func down(level: Int, row: Int, emits: Bool) {
        advance(s.downBlocks[level])
        s.downs[level].count = emits ? 0 : row + 1
    }

    func center() { advance(s.center) }

    func up(stage: Int, row: Int, refills: Bool, last: Bool) -> Bool {
        advance(s.ups[stage].blocks)
        s.ups[stage].pool.index = refills ? 0 : row + 1
        return false
    }

    func head() {}
}
