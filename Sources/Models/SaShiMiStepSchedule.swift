/// SaShiMi's step schedule: for each sample, which stages run and which rows of the pooling
/// buffers they touch. A DownPool stores `pool` inputs, one row of its buffer per step of its
/// level, and emits one coarse step when the buffer is full; an UpPool hands out its cached
/// outputs one row per step of its level and is refilled from the coarser level when its last
/// row has been read, which is exactly the sample at which the coarser level stepped. Level i
/// therefore runs once every Π pool[0..<i] samples, and the pattern repeats every `period`
/// = Π pool samples: a sample costs O(1) work on average.
///
/// The schedule is written only here. Every step-mode executor follows it through
/// `SaShiMiStepExecutor` and `run(sample:_:)`: the reference step (`SaShiMi.step`, which the
/// CUDA step graphs capture, with fused block steps), the counters a replayed graph advances
/// (`advanceWithoutLaunching`) and the CPU fast path (`SaShiMiFastStepState`).
public struct SaShiMiStepSchedule: Sendable, Equatable {
    /// The pool factor of each level (the config's `pool`).
    public let pool: [Int]
    /// The width of each level's stages: dModel·expandⁱ for level i in 0...levels (the last is
    /// the center's).
    public let widths: [Int]
    public let backbone: Backbone
    /// Π pool: the ticks repeat with this period.
    public let period: Int
    /// The tick of each phase (sample index mod `period`).
    public let ticks: [Tick]

    /// What runs at one sample.
    public struct Tick: Sendable, Equatable {
        /// The DownPools that emit a coarse step: levels 0..<pooled; level `pooled`, when below
        /// `levels`, only stores its input.
        public let pooled: Int
        /// The buffer row each running level writes (levels 0...min(pooled, levels − 1)).
        public let downRows: [Int]
        /// Whether the center runs: every DownPool emitted.
        public let runsCenter: Bool
        /// The first up stage that runs (up stage i mirrors level levels − 1 − i).
        public let firstUp: Int
        /// The cache row each up stage reads (−1 for the stages before `firstUp`).
        public let upRows: [Int]
        /// Whether each up stage refills its cache after reading its row: the coarser level
        /// stepped at this sample.
        public let upRefills: [Bool]
    }

    public init(config c: SaShiMiConfig) {
        self.init(pool: c.pool, dModel: c.dModel, expand: c.expand, backbone: c.backbone)
    }

    public init(pool: [Int], dModel: Int, expand: Int, backbone: Backbone) {
        precondition(pool.allSatisfy { $0 > 0 }, "SaShiMi step schedule: pool factors \(pool) must be positive")
        self.pool = pool
        self.backbone = backbone
        var widths = [dModel]
        for _ in pool { widths.append(widths.last! * expand) }
        self.widths = widths
        period = pool.reduce(1, *)
        let levels = pool.count
        // stride[i] = Π pool[0..<i]: level i runs at the samples t with (t + 1) mod stride[i] == 0.
        var stride = [1]
        for p in pool { stride.append(stride.last! * p) }
        ticks = (0..<period).map { t in
            let pooled = (0..<levels).first { (t + 1) % stride[$0 + 1] != 0 } ?? levels
            // The row of level i's buffer (or its mirror's cache) at its run number (t + 1)/stride[i] − 1.
            func row(_ i: Int) -> Int { ((t + 1) / stride[i] - 1) % pool[i] }
            let firstUp = max(0, levels - 1 - pooled)
            return Tick(pooled: pooled, downRows: (0..<min(pooled + 1, levels)).map(row), runsCenter: pooled == levels,
                        firstUp: firstUp,
                        upRows: (0..<levels).map { $0 < firstUp ? -1 : row(levels - 1 - $0) },
                        upRefills: (0..<levels).map { levels - 1 - $0 < pooled })
        }
    }

    public var levels: Int { pool.count }

    /// The tick of sample `t` (0 for the first sample).
    public func tick(sample t: Int) -> Tick { ticks[t % period] }

    /// The level up stage i mirrors: its cache rows are that level's width, and it adds that
    /// level's skips.
    public func mirror(upStage i: Int) -> Int { levels - 1 - i }

    /// A DownPool's buffer per stream: `rows` inputs of its level's width.
    public func downBuffer(level: Int) -> (rows: Int, width: Int) { (pool[level], widths[level]) }

    /// An UpPool's cache per stream: `rows` outputs of its mirror level's width.
    public func upCache(stage: Int) -> (rows: Int, width: Int) {
        let j = mirror(upStage: stage)
        return (pool[j], widths[j])
    }

    /// Whether each up block adds a skip (`unet`: block k of an up stage of n blocks adds the
    /// input of block n − 1 − k of its mirror level's down blocks) rather than the stage adding
    /// one residual around all its blocks (`sashimi`).
    public var skipsPerBlock: Bool { backbone == .unet }

    /// Walks sample `t` through `executor`: the embedding; each running level's down blocks and
    /// DownPool, coarse to fine; the center; the up stages that run, fine last; the output head,
    /// unless an up stage applied it.
    public func run<E: SaShiMiStepExecutor>(sample t: Int, _ executor: inout E) {
        let tick = tick(sample: t)
        executor.embed()
        for level in tick.downRows.indices {
            executor.down(level: level, row: tick.downRows[level], emits: level < tick.pooled)
        }
        if tick.runsCenter { executor.center() }
        for stage in tick.firstUp..<levels {
            if executor.up(stage: stage, row: tick.upRows[stage], refills: tick.upRefills[stage], last: stage == levels - 1) { return }
        }
        executor.head()
    }
}

/// One way of executing a SaShiMi step (`SaShiMiStepSchedule.run`): the schedule says which
/// stages run and which rows they touch; the executor owns the buffers and does the work. The
/// input of each call is the previous call's output (the executor keeps it).
public protocol SaShiMiStepExecutor {
    /// Embeds the tokens: the input of level 0.
    mutating func embed()
    /// Runs level `level`'s down blocks (`unet`) on its input, keeping each block's input and
    /// their output as the level's skips, then writes their output to row `row` of the level's
    /// DownPool buffer; when `emits` (the buffer is full) the DownPool's output is the next
    /// level's input.
    mutating func down(level: Int, row: Int, emits: Bool)
    /// Runs the center on the deepest DownPool's output, with the residual around it.
    mutating func center()
    /// Reads row `row` of up stage `stage`'s cache, refilling the cache from the current input
    /// (the coarser stage's output) after the read when `refills`; adds the mirror level's
    /// skips and runs the stage's blocks. `last`: the finest stage, which may apply the output
    /// head in the same launch: returns whether it did (the step is then complete).
    mutating func up(stage: Int, row: Int, refills: Bool, last: Bool) -> Bool
    /// The final LayerNorm and the head: the logits.
    mutating func head()
}
