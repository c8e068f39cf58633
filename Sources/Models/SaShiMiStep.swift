import Engine
import Foundation
import Layers

/// Step-by-step (recurrent) state of a SaShiMi U-Net for `batch` streams, with every
/// buffer a step needs allocated up front: generating a sample allocates nothing.
///
/// SaShiMi's step semantics: a DownPool collects `pool` inputs before it emits one coarse
/// step; an UpPool emits its cached outputs one per fine step and refills the cache from
/// the coarser level exactly when it runs empty — which is when that level has just
/// produced a step. Coarse stages therefore run once every `pool` (or pool²…) samples,
/// so a sample costs O(1) work on average.
public final class SaShiMiStepState {
    public let batch: Int
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

    /// Steps taken so far. The pooling stages' counters cycle with period `period`, so the
    /// kernels a step queues (which stages run, which buffer rows they touch) depend only on
    /// `phase`: a step recorded once per phase can be replayed for every later step of it.
    public internal(set) var steps = 0
    /// Π pool (16 for the default [4, 4]).
    public let period: Int
    public var phase: Int { steps % period }

    final class DownState {
        let buffer: Tensor       // (batch, pool, H) inputs so far
        let slots: [Tensor]      // buffer's rows s as (batch, H) column views
        let stacked: Tensor      // (batch, H·pool) in (h, s) order
        let stacked3: Tensor     // the same as (batch, H, pool)
        let out: Tensor          // (batch, expand·H)
        var count = 0
        init(_ b: any Backend, batch: Int, pool: DownPool) {
            buffer = b.zeros([batch, pool.pool, pool.width])
            let flat = buffer.reshaped([batch, pool.pool * pool.width])
            slots = (0..<pool.pool).map { flat.columns(($0 * pool.width)..<(($0 + 1) * pool.width)) }
            stacked = b.empty([batch, pool.width * pool.pool])
            stacked3 = stacked.reshaped([batch, pool.width, pool.pool])
            out = b.empty([batch, pool.linear.weight.shape[0]])
        }
    }

    final class UpState {
        let projected: Tensor    // (batch, H·pool) in (h, s) order
        let cache: Tensor        // (batch, pool, H)
        let slots: [Tensor]      // cache's rows s as (batch, H) column views
        let out: Tensor          // (batch, H)
        var index = 0
        init(_ b: any Backend, batch: Int, pool: UpPool) {
            projected = b.empty([batch, pool.width * pool.pool])
            cache = b.zeros([batch, pool.pool, pool.width])
            let flat = cache.reshaped([batch, pool.pool * pool.width])
            slots = (0..<pool.pool).map { flat.columns(($0 * pool.width)..<(($0 + 1) * pool.width)) }
            out = b.empty([batch, pool.width])
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
        period = c.pool.reduce(1, *)
        token = b.empty([batch], dtype: .int32)
        x0 = b.empty([batch, c.dModel])
        downs = model.down.map { DownState(b, batch: batch, pool: $0) }
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
            ups.append((UpState(b, batch: batch, pool: stage.pool),
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
        let b = store.backend
        s.steps += 1
        b.embedding(table: embedding.value, indices: s.token, out: s.x0)
        s.outputs.removeAll(keepingCapacity: true)
        var x: Tensor? = s.x0
        var reached = 0
        for (i, (pool, st)) in zip(down, s.downs).enumerated() {
            for (block, bs) in zip(downBlocks[i], s.downBlocks[i]) {
                s.outputs.append(x!)
                x = stepBlock(block, x!, bs)
            }
            s.outputs.append(x!)
            // Append x as row `count` of each stream's (pool, H) buffer.
            b.copy2D(from: x!, to: st.slots[st.count], accumulate: false)
            st.count += 1
            if st.count < pool.pool { x = nil; break }
            st.count = 0
            b.transpose(st.buffer, batch: s.batch, rows: pool.pool, cols: pool.width, out: st.stacked3, accumulate: false)
            b.linear(x: st.stacked, weight: pool.linear.weight.value, bias: pool.linear.bias?.value, y: st.out)
            x = st.out
            reached += 1
        }
        let firstUp: Int
        if let xc = x {
            // The stage residual: the center's skip is its own input.
            stepStage(center, s.center, run: s.centerRun, x: xc, addend: nil, joined: nil, out: s.centerOut, head: nil)
            x = s.centerOut
            firstUp = 0
        } else {
            firstUp = down.count - reached - 1
        }
        for i in firstUp..<up.count {
            let stage = up[i], st = s.ups[i]
            let y = stepUpPool(stage.pool, x, st.pool)
            if config.backbone == .unet {
                // Each layer adds the input of its mirror on the way down.
                b.add(y, s.outputs.removeLast(), out: st.joined)
                var h = st.joined
                for (block, bs) in zip(stage.blocks, st.blocks) {
                    h = stepBlock(block, h, bs)
                    b.add(h, s.outputs.removeLast(), out: bs.out)
                }
                x = h
                continue
            }
            let head = i == up.count - 1 ? s.fusedHead : nil
            if stepStage(stage.blocks, st.blocks, run: s.upRuns[i], x: y, addend: s.outputs.removeLast(), joined: st.joined, out: st.out,
                         head: head) {
                return s.logits
            }
            x = st.out
        }
        b.layerNorm(x: x!, weight: norm.weight.value, bias: norm.bias.value, y: s.normed, mean: s.normMean, rstd: s.normRstd)
        b.linear(x: s.normed, weight: head.weight.value, bias: head.bias?.value, y: s.logits)
        return s.logits
    }

    /// Advances the stage counters exactly as `step` does, queuing nothing: a replayed step
    /// graph did the work. (Mirrors the control flow of `step`; a test keeps them in line.)
    public func advanceWithoutLaunching(_ s: SaShiMiStepState) {
        s.steps += 1
        var reached = 0
        var full = true
        func advance(_ blocks: [SaShiMiStepState.BlockState]) { for b in blocks { b.attention?.advanceWithoutLaunching() } }
        for (i, (pool, st)) in zip(down, s.downs).enumerated() {
            advance(s.downBlocks[i])
            st.count += 1
            if st.count < pool.pool { full = false; break }
            st.count = 0
            reached += 1
        }
        if full { advance(s.center) }
        let firstUp = full ? 0 : down.count - reached - 1
        for i in firstUp..<up.count {
            advance(s.ups[i].blocks)
            let st = s.ups[i].pool
            st.index += 1
            if st.index == up[i].pool.pool {
                precondition(full || i > firstUp, "UpPool cache ran empty without a coarse step")
                st.index = 0
            }
        }
    }

    /// Pops the next cached output; refills the cache from the coarser level when it runs empty.
    private func stepUpPool(_ pool: UpPool, _ x: Tensor?, _ st: SaShiMiStepState.UpState) -> Tensor {
        let b = store.backend, batch = st.out.shape[0], w = pool.width
        b.copy2D(from: st.slots[st.index], to: st.out, accumulate: false)
        st.index += 1
        if st.index == pool.pool {
            guard let x else { preconditionFailure("UpPool cache ran empty without a coarse step") }
            b.linear(x: x, weight: pool.linear.weight.value, bias: pool.linear.bias?.value, y: st.projected)
            b.transpose(st.projected, batch: batch, rows: w, cols: pool.pool, out: st.cache, accumulate: false)
            st.index = 0
        }
        return st.out
    }

    /// A stage with SaShiMi's residual around it: out = blocks(x + addend) + (x + addend), the
    /// sum kept in `joined` (needed with an addend). A stage of fused Mamba steps is one launch,
    /// adds included (`residualMambaSteps`); a run longer than a launch takes still steps fused.
    /// With `head`, the launch may apply the output head too: returns whether it did (the
    /// logits are then in `head.logits`).
    @discardableResult
    private func stepStage(_ blocks: [ResidualBlock], _ states: [SaShiMiStepState.BlockState], run: ArraySlice<ResidualMambaStep>?,
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
    private func stepBlock(_ block: ResidualBlock, _ x: Tensor, _ st: SaShiMiStepState.BlockState) -> Tensor {
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
