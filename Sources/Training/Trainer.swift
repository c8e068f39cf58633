import AudioIO
import Distributed
import Engine
import Foundation
import Models
import SafeTensors

/// Trains a `SaShiMi` on a recipe's data into a run folder.
///
/// Each step: the batch `BatchOrder(seed).batch(step:)` of train segments (a function of
/// (seed, step) only), tokenised as SaShiMi does; the loss on a recording tape; backward; the
/// non-finite guard; AdamW at the schedule's learning rate; the EMA. Dropout seeds derive
/// from (seed, step). Everything else that changes lives in the checkpoint (weights, Adam
/// moments and step count, EMA, training step), so a run of N steps and a run stopped after
/// N/2 and resumed give bit-identical weights.
///
/// The guard: if the loss, the gradient norm or the updated parameters are NaN/Inf, the
/// update is undone (parameters, moments, EMA back to the last good step), the step is
/// logged as skipped and its batch is passed over; after `maxConsecutiveBadSteps` bad steps
/// in a row training stops with an error (the last good state is saved first).
///
/// Data parallelism (`communicator` of K ranks, from `mpirun -np K`): the global batch of
/// step s is the same clips whatever K is; rank r takes its contiguous share of B/K of them
/// and keys dropout by each clip's global index, averages its loss over its share, and the
/// gradients are summed across ranks and divided by K (the global-batch mean, up to summation
/// order). The non-finite guard, clipping by the global norm and AdamW then see identical
/// gradients on every rank, so every rank applies the identical update. Rank 0 alone
/// touches the run folder (lock, checkpoints, metrics, recipe) and broadcasts the starting
/// state (fresh or resumed), so a checkpoint is rank-independent and resumes with any K.
/// Validation batches are dealt round-robin to the ranks and their NLL sums all-reduced.
public final class Trainer {
    public struct Options: Sendable {
        /// Bad (non-finite) steps in a row before training gives up.
        public var maxConsecutiveBadSteps = 5

        public init(maxConsecutiveBadSteps: Int = 5) { self.maxConsecutiveBadSteps = maxConsecutiveBadSteps }
    }

    public let recipe: Recipe
    public let run: RunDirectory
    public let data: TrainingData
    public let model: SaShiMi
    public let optimizer: AdamWOptimizer
    public let schedule: LearningRateSchedule
    public let ema: ExponentialMovingAverage?
    public let options: Options
    /// The data-parallel group (a single process by default).
    public let communicator: any Communicator
    /// Whether this process writes the run folder (rank 0).
    public var isWriter: Bool { communicator.rank == 0 }
    /// Set it (from any thread) to stop after the current step with a checkpoint.
    public let stop = StopRequest()
    /// Steps done so far (the next step's index).
    public private(set) var step = 0
    /// The step the run was resumed from (nil: a fresh run).
    public let resumedFrom: Int?
    /// Progress, on the training thread.
    public var onEvent: ((TrainingEvent) -> Void)?
    /// Called before each step with its index: a hook for diagnostics and fault-injection tests.
    public var beforeStep: ((Int) -> Void)?
    /// Called every `[train] sample_every` steps (rank 0 of a single process only) with the
    /// step, which weights ("current", then "ema" when the EMA is on: the model then holds
    /// them until the call returns) and the model; returns the fields of the `samples` line
    /// written to metrics.jsonl (the trainer adds `weights` and `seconds`). The CLI wires
    /// generation and scoring in here, which this layer does not import. It must leave the
    /// parameters as it found them; the training trajectory does not depend on it.
    public var onSample: ((_ step: Int, _ weights: String, _ model: SaShiMi) throws -> [(String, MetricValue)])?
    /// Seconds on a monotonic clock, read for `[train] max_time` at the start of `train` and
    /// between steps; a test may replace it (e.g. by a function of `step`) to stop
    /// deterministically.
    public var clock: () -> Double = { Double(DispatchTime.now().uptimeNanoseconds) / 1e9 }

    /// Rank 0's metrics log (nil on the other ranks).
    private let metrics: MetricsLog?
    /// Some rank asked to stop during the last step (agreed through the step's all-reduce).
    private var stopAgreed = false
    /// Some rank was past `[train] max_time` at the last step's all-reduce.
    private var timeUpAgreed = false
    /// `clock()` when the current `train` call began.
    private var sessionStart: Double?
    private let good: GoodState
    private let order: BatchOrder
    private let validationSegments: [Segment]
    private var consecutiveBad = 0
    private var lastValidation: (step: Int, report: ValidationReport)?
    private var lastCheckpoint: (step: Int, url: URL)?
    private var signals: SignalWatcher?
    private var logWindow = (loss: 0.0, steps: 0, samples: 0, seconds: 0.0)

    /// Builds the model and optimiser for `recipe` in `runDirectory`. A fresh run refuses a
    /// folder that already holds a run; `resume` loads the newest complete checkpoint there.
    /// `initFrom` starts a fresh run from a model file's weights (F32 or BF16) at its
    /// `train_step`, with fresh Adam moments: the schedule and the data order continue where
    /// that run was, the optimiser's state does not (what a run whose companion file was lost,
    /// or a shipped BF16 model, can be continued from). `warn` receives non-fatal problems
    /// (a damaged newest checkpoint, a changed dataset).
    public init(recipe: Recipe, data: TrainingData, runDirectory: URL, backend: any Backend, resume: Bool = false, initFrom: URL? = nil,
                options: Options = Options(), communicator: any Communicator = SingleProcess(), warn: (String) -> Void = { _ in }) throws {
        precondition(!(resume && initFrom != nil), "resume and initFrom exclude each other")
        self.recipe = recipe
        self.data = data
        self.options = options
        self.communicator = communicator
        let run = RunDirectory(runDirectory)
        self.run = run
        let ranks = communicator.size, writer = communicator.rank == 0
        if recipe.train.batchSize % ranks != 0 {
            throw TrainingError(path: "[train] batch_size", "the global batch of \(recipe.train.batchSize) clips does not divide among \(ranks) ranks",
                                fix: "run a number of ranks that divides \(recipe.train.batchSize), or set batch_size to a multiple of \(ranks)")
        }
        if !writer {
            // Only rank 0 reads or writes the run folder; the state comes by broadcast.
        } else if resume {
            guard !run.checkpointSteps().isEmpty else {
                throw TrainingError(path: run.root.path, "there is no checkpoint to resume from (checkpoints/step-N.safetensors)",
                                    fix: "start a new run without --resume, or point --out at an existing run folder")
            }
        } else if run.holdsRun {
            throw TrainingError(path: run.root.path, "this folder already holds a training run",
                                fix: "pass --resume to continue it, or choose another --out folder")
        }
        if writer {
            try run.create()
            for path in run.removeStaleTempFiles() { warn("removed \(path), left by an interrupted write") }
        }

        model = SaShiMi(config: recipe.model, backend: backend, seed: UInt64(recipe.train.seed))
        optimizer = AdamWOptimizer(store: model.store, config: recipe.optimizerConfig)
        schedule = recipe.learningRateSchedule
        ema = recipe.train.ema > 0 ? ExponentialMovingAverage(store: model.store, decay: Float(recipe.train.ema)) : nil
        order = BatchOrder(count: data.train.count, seed: UInt64(recipe.train.seed))
        // A fixed sample of the valid split, spread over its files (the split is in file
        // order, so its first segments would all be one word or one piece).
        let validOrder = BatchOrder(count: data.valid.count, seed: 0x5EED).permutation(epoch: 0)
        let n = recipe.train.validationBatches == 0 ? validOrder.count : min(validOrder.count, recipe.train.validationBatches * recipe.train.batchSize)
        validationSegments = validOrder.prefix(n).map { data.valid[$0] }

        var resumedFrom: Int?, initialStep: Int?
        if resume && writer {
            resumedFrom = try Self.loadNewestCheckpoint(run: run, recipe: recipe, data: data, model: model, optimizer: optimizer, ema: ema, warn: warn)
        } else if let initFrom, writer {
            initialStep = try Self.loadInitialWeights(initFrom, recipe: recipe, model: model, ema: ema)
        }
        if ranks > 1 {
            let s = try Self.broadcastState(from: resumedFrom ?? initialStep, resume: resume, model: model, optimizer: optimizer, ema: ema,
                                            communicator: communicator)
            if resume { resumedFrom = s } else { initialStep = s }
        }
        self.resumedFrom = resumedFrom
        step = resumedFrom ?? initialStep ?? 0
        if writer {
            try RunDirectory.write(recipe.tomlText, to: run.recipeURL)
            metrics = try MetricsLog(url: run.metricsURL)
        } else {
            metrics = nil
        }
        good = GoodState(store: model.store, hasEMA: ema != nil)
        good.capture(optimizer, ema: ema)
        metrics?.write(resumedFrom == nil ? "start" : "resume", step: step, fields: [
            ("recipe", .string(recipe.name)), ("parameters", .int(model.parameterCount)), ("data", .string(data.folder.path)),
            ("train_segments", .int(data.train.count)), ("valid_segments", .int(data.valid.count)),
            ("total_steps", .int(recipe.train.steps)), ("ranks", .int(ranks)),
        ] + (initFrom.map { [("init_from", MetricValue.string($0.path))] } ?? []))
    }

    /// `initFrom`'s weights into the model (and the EMA); returns the file's `train_step` (0
    /// without one). The file must hold exactly this recipe's model.
    static func loadInitialWeights(_ url: URL, recipe: Recipe, model: SaShiMi, ema: ExponentialMovingAverage?) throws -> Int {
        let file: SafeTensorsFile
        do {
            file = try Checkpoint.loadWeights(model.store, from: url)
        } catch let e as SafeTensorsError {
            throw TrainingError(path: url.path, e.reason, fix: "pass a model file of this recipe's model (e.g. RUNDIR/latest.safetensors)")
        }
        if let ema {
            let n = model.store.count
            model.store.backend.copy2D(from: model.store.values!.reshaped([1, n]), to: ema.average.reshaped([1, n]), accumulate: false)
        }
        guard let text = file.metadata["train_step"] else { return 0 }
        guard let s = Int(text), s >= 0, s < recipe.train.steps else {
            throw TrainingError(path: url.path, "its train_step \(text) is not a step before the recipe's \(recipe.train.steps)",
                                fix: "pass --steps larger than \(text)")
        }
        return s
    }

    /// Rank 0's state (weights, Adam moments and step, EMA, training step) on every rank:
    /// the ranks start identical whether the run is fresh or resumed, and only rank 0 needs
    /// the run folder (machines of a hostfile need not share a file system for it).
    static func broadcastState(from resumedFrom: Int?, resume: Bool, model: SaShiMi, optimizer: AdamWOptimizer,
                               ema: ExponentialMovingAverage?, communicator c: any Communicator) throws -> Int? {
        var header: [Int64] = [Int64(resumedFrom ?? -1), Int64(optimizer.step)]
        try c.broadcast(&header, what: "the broadcast of the starting state")
        let store = model.store, n = store.count
        try withHostFloats(store.values!) { try c.broadcast($0, count: n, what: "the broadcast of the weights") }
        try withHostFloats(optimizer.m) { try c.broadcast($0, count: n, what: "the broadcast of Adam's first moments") }
        try withHostFloats(optimizer.v) { try c.broadcast($0, count: n, what: "the broadcast of Adam's second moments") }
        if let ema { try withHostFloats(ema.average) { try c.broadcast($0, count: n, what: "the broadcast of the EMA weights") } }
        optimizer.restore(step: Int(header[1]), m: optimizer.m.floats(), v: optimizer.v.floats())
        return header[0] >= 0 ? Int(header[0]) : nil
    }

    deinit { signals?.cancel() }

    // MARK: Running

    /// What a call to `train` ended with.
    public struct Outcome: Sendable {
        public var step: Int
        public var checkpoint: URL
        /// All `[train] steps` are done.
        public var finished: Bool
        /// Stopped by `stop` (Ctrl-C, SIGTERM) before reaching its limit.
        public var interrupted: Bool
        /// Stopped at `[train] max_time` before reaching its limit.
        public var timeLimited: Bool = false
    }

    /// Trains until `[train] steps` (or `limit`, for a partial session), a stop request or
    /// `[train] max_time` of wall-clock time in this call, and saves a checkpoint at the end
    /// either way. Under MPI the ranks agree on both stops through the step's all-reduce.
    @discardableResult
    public func train(until limit: Int? = nil) throws -> Outcome {
        let lock = isWriter ? try run.lock() : nil
        defer { lock?.release() }
        let total = recipe.train.steps
        let end = min(limit ?? total, total)
        sessionStart = clock()
        onEvent?(.started(step: step, totalSteps: total, resumed: resumedFrom != nil))
        let every = recipe.train.validateEvery
        if step == 0 && every > 0 && lastValidation == nil { _ = try validate() }
        var interrupted = false, timeLimited = false
        do {
            while step < end {
                if communicator.size == 1 ? stop.isRequested : stopAgreed { interrupted = true; break }
                if communicator.size == 1 ? pastTimeLimit() : timeUpAgreed { timeLimited = true; break }
                try trainStep()
                if every > 0 && step % every == 0 { _ = try validate() }
                if recipe.train.sampleEvery > 0 && step % recipe.train.sampleEvery == 0 { try sample() }
                if recipe.train.checkpointEvery > 0 && step % recipe.train.checkpointEvery == 0 {
                    try checkReplicas()
                    try saveCheckpoint()
                }
            }
        } catch {
            // Errors surface between steps (a file that fails to decode, too many bad steps),
            // when the state is consistent: keep the work done so far.
            if lastCheckpoint?.step != step { _ = try? saveCheckpoint() }
            throw error
        }
        let finished = step >= total
        if finished && lastValidation?.step != step { _ = try validate() }
        try checkReplicas()
        let url = lastCheckpoint?.step == step ? lastCheckpoint!.url : try saveCheckpoint()
        if interrupted {
            metrics?.write("stop", step: step, ["reason": .string("stop requested"), "checkpoint": .string(url.path)])
            onEvent?(.interrupted(step: step, checkpoint: url))
        } else if timeLimited {
            metrics?.write("stop", step: step, ["reason": .string("time_limit"), "checkpoint": .string(url.path),
                                               "max_time_seconds": .double(recipe.train.maxTime ?? .nan),
                                               "elapsed_seconds": .double(clock() - (sessionStart ?? 0))])
            onEvent?(.timeLimitReached(step: step, checkpoint: url))
        } else if finished {
            var fields: [(String, MetricValue)] = [("checkpoint", .string(url.path))]
            if let v = lastValidation { fields.append(("valid_bits_per_sample", .double(v.report.bitsPerSample))) }
            metrics?.write("end", step: step, fields: fields)
            onEvent?(.finished(step: step, checkpoint: url))
        }
        stop.clear()
        stopAgreed = false
        timeUpAgreed = false
        sessionStart = nil
        return Outcome(step: step, checkpoint: url, finished: finished, interrupted: interrupted, timeLimited: timeLimited)
    }

    /// Whether this process has spent `[train] max_time` in the current `train` call.
    func pastTimeLimit() -> Bool {
        guard let limit = recipe.train.maxTime, let start = sessionStart else { return false }
        return clock() - start >= limit
    }

    /// Stops on SIGINT and SIGTERM after the current step (with a checkpoint) until
    /// `stopHandlingSignals`; `notify` gets a line to show (from the signal's thread).
    public func handleSignals(notify: @escaping @Sendable (String) -> Void) {
        signals?.cancel()
        signals = SignalWatcher(stop: stop, notify: notify)
    }

    public func stopHandlingSignals() {
        signals?.cancel()
        signals = nil
    }

    /// One optimiser step on batch `step`, guarded against non-finite values.
    func trainStep() throws {
        beforeStep?(step)
        let started = DispatchTime.now().uptimeNanoseconds
        let B = recipe.train.batchSize, L = recipe.data.clipLength
        // This rank's contiguous share of the global batch (all of it in one process).
        let K = communicator.size, share = B / K, first = communicator.rank * share
        let indices = order.batch(step: step, batchSize: B).indices[first..<(first + share)]
        let batch = try data.batch(indices.map { data.train[$0] })
        let backend = model.store.backend
        let inputs = backend.indices(batch.inputs, shape: [batch.batch, L])
        let targets = backend.indices(batch.targets, shape: [batch.batch, L])

        model.store.zeroGrad()
        let tape = Tape()
        let lossVariable = model.loss(inputs: inputs, targets: targets, tape: tape, training: true, seed: dropoutSeed(step), firstSample: first,
                                    recompute: recipe.train.recompute)
        var loss = Double(lossVariable.value.floats()[0])
        let lr = Double(schedule.learningRate(at: step))
        var norm = Double.nan
        var problem: String?
        if loss.isFinite { tape.backward(from: lossVariable) } else { tape.reset() }
        if K > 1 {
            // One all-reduce for the gradients and [loss, non-finite ranks, stop requests, ranks
            // past max_time]: every rank then takes the same decisions from the same numbers.
            let localFinite = loss.isFinite
            var scalars: [Float] = [localFinite ? Float(loss) : 0, localFinite ? 0 : 1, stop.isRequested ? 1 : 0, pastTimeLimit() ? 1 : 0]
            let grads = model.store.grads!
            try Self.withHostFloats(grads) { g in
                try scalars.withUnsafeMutableBufferPointer { s in
                    try communicator.allReduceSum([UnsafeMutableBufferPointer(start: g, count: grads.count), s],
                                                  what: "the gradient all-reduce of step \(step + 1)")
                }
            }
            loss = scalars[1] > 0 ? .nan : Double(scalars[0]) / Double(K)
            stopAgreed = scalars[2] > 0
            timeUpAgreed = scalars[3] > 0
            backend.scale(grads, by: 1 / Float(K), out: grads, accumulate: false)
        }
        if !loss.isFinite {
            problem = "loss is \(loss)"
        } else {
            norm = optimizer.gradientNorm()
            if !norm.isFinite { problem = "gradient norm is \(norm)" }
        }
        if problem == nil {
            optimizer.update(learningRate: Float(lr), gradientNorm: norm)
            let sumSquares = backend.sumOfSquares(model.store.values!)
            if !sumSquares.isFinite { problem = "parameters are not finite after the update" }
        }
        if let problem {
            good.restore(optimizer, ema: ema)
            consecutiveBad += 1
            metrics?.write("skip", step: step + 1, ["reason": .string(problem), "loss": .double(loss), "grad_norm": .double(norm),
                                                   "consecutive": .int(consecutiveBad)])
            onEvent?(.skipped(step: step + 1, reason: problem, consecutive: consecutiveBad, limit: options.maxConsecutiveBadSteps))
        } else {
            ema?.update()
            good.capture(optimizer, ema: ema)
            consecutiveBad = 0
        }
        step += 1
        let seconds = Double(DispatchTime.now().uptimeNanoseconds - started) / 1e9
        let samples = B * L
        onEvent?(.step(StepReport(step: step, totalSteps: recipe.train.steps, loss: loss, learningRate: lr, gradientNorm: norm,
                                  samplesPerSecond: Double(samples) / max(seconds, 1e-9), seconds: seconds, skipped: problem != nil)))
        if problem == nil {
            logWindow.loss += loss
            logWindow.steps += 1
        }
        logWindow.samples += samples
        logWindow.seconds += seconds
        if step % recipe.train.logEvery == 0 {
            let meanLoss = logWindow.steps > 0 ? logWindow.loss / Double(logWindow.steps) : .nan
            metrics?.write("train", step: step, [
                "loss": .double(meanLoss), "bits_per_sample": .double(meanLoss / log(2)), "lr": .double(lr),
                "grad_norm": .double(norm), "samples_per_second": .double(Double(logWindow.samples) / max(logWindow.seconds, 1e-9)),
                "steps": .int(logWindow.steps),
            ])
            logWindow = (0, 0, 0, 0)
        }
        if consecutiveBad >= options.maxConsecutiveBadSteps {
            let saved = try? saveCheckpoint()
            throw TrainingError(path: run.root.path,
                                "training stopped: \(consecutiveBad) steps in a row had non-finite values (last: \(problem ?? "?"))"
                                    + (saved.map { "; the last good state is saved as \($0.path)" } ?? ""),
                                fix: "lower [train] lr or grad_clip, or raise warmup_steps, and resume with --resume")
        }
    }

    /// Every rank holds rank 0's parameters, bit for bit (identical reduced gradients and
    /// deterministic kernels make identical updates); checked before each checkpoint, so a
    /// divergence can never go unnoticed into a run.
    func checkReplicas() throws {
        guard communicator.size > 1 else { return }
        let mine = Self.checksum(model.store.values!)
        var rootSum: [Int64] = [Int64(bitPattern: mine)]
        try communicator.broadcast(&rootSum, what: "the replica check at step \(step)")
        if UInt64(bitPattern: rootSum[0]) != mine {
            throw TrainingError(path: run.root.path, "rank \(communicator.rank)'s parameters differ from rank 0's after step \(step): the ranks diverged",
                                fix: "report this as a bug; the checkpoints hold rank 0's parameters and resume with any number of ranks")
        }
    }

    /// FNV-1a over the float bit patterns.
    static func checksum(_ t: Tensor) -> UInt64 {
        var h: UInt64 = 0xCBF2_9CE4_8422_2325
        withHostFloats(t) { q in
            let p = UnsafeRawPointer(q).assumingMemoryBound(to: UInt32.self)
            for i in 0..<t.count { h = (h ^ UInt64(p[i])) &* 0x100_0000_01B3 }
        }
        return h
    }

    /// `body` on the tensor's floats in host memory: its own memory on the CPU; for a device
    /// tensor (CUDA: no host pointer) a host copy, written back afterwards. The communicators
    /// work on host memory.
    static func withHostFloats(_ t: Tensor, _ body: (UnsafeMutablePointer<Float>) throws -> Void) rethrows {
        if t.device == .cpu { return try body(t.pointer) }
        var host = t.floats()
        try host.withUnsafeMutableBufferPointer { try body($0.baseAddress!) }
        t.copy(from: host)
    }

    /// Dropout's seed for step `s`: a function of (seed, step) only.
    func dropoutSeed(_ s: Int) -> UInt64 {
        var g = SplitMix64(seed: UInt64(recipe.train.seed) &* 0x2545_F491_4F6C_DD1D ^ UInt64(s))
        return g.next()
    }

    // MARK: Sampling

    /// One round of `onSample` with the current weights, and with the EMA weights if on; a
    /// `samples` line each.
    func sample() throws {
        guard let onSample, communicator.size == 1 else { return }
        for weights in ema == nil ? ["current"] : ["current", "ema"] {
            let started = clock()
            let fields = try weights == "ema" ? withEMAWeights { try onSample(step, weights, model) } : onSample(step, weights, model)
            metrics?.write("samples", step: step, fields: [("weights", .string(weights))] + fields + [("seconds", .double(clock() - started))])
        }
    }

    /// `body` with the EMA weights in the model (the current ones put back afterwards); just
    /// `body` when the EMA is off.
    public func withEMAWeights<T>(_ body: () throws -> T) rethrows -> T {
        guard let ema else { return try body() }
        let backend = model.store.backend
        let values = model.store.values!, n = values.count
        let saved = backend.empty([n])
        backend.copy2D(from: values.reshaped([1, n]), to: saved.reshaped([1, n]), accumulate: false)
        backend.copy2D(from: ema.average.reshaped([1, n]), to: values.reshaped([1, n]), accumulate: false)
        defer { backend.copy2D(from: saved.reshaped([1, n]), to: values.reshaped([1, n]), accumulate: false) }
        return try body()
    }

    // MARK: Validation

    /// Mean NLL of the fixed validation sample (the EMA weights if the EMA is on), on an
    /// inference tape; the training state is left exactly as it was.
    @discardableResult
    public func validate() throws -> ValidationReport {
        let started = DispatchTime.now().uptimeNanoseconds
        let backend = model.store.backend
        var saved: Tensor?
        if let ema {
            let values = model.store.values!, n = values.count
            let copy = backend.empty([n])
            backend.copy2D(from: values.reshaped([1, n]), to: copy.reshaped([1, n]), accumulate: false)
            backend.copy2D(from: ema.average.reshaped([1, n]), to: values.reshaped([1, n]), accumulate: false)
            saved = copy
        }
        defer {
            if let saved {
                let values = model.store.values!
                backend.copy2D(from: saved.reshaped([1, saved.count]), to: values.reshaped([1, values.count]), accumulate: false)
            }
        }
        let B = recipe.train.batchSize, L = recipe.data.clipLength
        var nats = 0.0, samples = 0, batches = 0
        for (j, start) in stride(from: 0, to: validationSegments.count, by: B).enumerated() {
            let end = min(start + B, validationSegments.count)
            samples += (end - start) * L
            batches += 1
            // Batch j is rank (j mod K)'s; the NLL sums are all-reduced below.
            guard j % communicator.size == communicator.rank else { continue }
            let batch = try data.batch(Array(validationSegments[start..<end]))
            let loss = model.loss(inputs: backend.indices(batch.inputs, shape: [batch.batch, L]),
                                  targets: backend.indices(batch.targets, shape: [batch.batch, L]), tape: Tape.inference())
            nats += Double(loss.value.floats()[0]) * Double(batch.batch * L)
        }
        if communicator.size > 1 {
            // A double as two floats (high and low parts), so the sum keeps double precision.
            let high = Float(nats)
            var parts: [Float] = [high, Float(nats - Double(high))]
            try communicator.allReduceSum(&parts, what: "the validation all-reduce at step \(step)")
            nats = Double(parts[0]) + Double(parts[1])
        }
        let report = ValidationReport(step: step, loss: nats / Double(max(samples, 1)), batches: batches, samples: samples,
                                      ema: ema != nil, seconds: Double(DispatchTime.now().uptimeNanoseconds - started) / 1e9)
        lastValidation = (step, report)
        metrics?.write("valid", step: step, ["loss": .double(report.loss), "bits_per_sample": .double(report.bitsPerSample),
                                            "batches": .int(batches), "samples": .int(samples), "ema": .bool(report.ema),
                                            "seconds": .double(report.seconds)])
        onEvent?(.validation(report))
        return report
    }

    // MARK: Checkpoints

    /// Writes `checkpoints/step-N` (companion first, then weights), then `latest.safetensors`
    /// (and `latest-ema.safetensors`), each atomically.
    @discardableResult
    public func saveCheckpoint() throws -> URL {
        let url = run.checkpointURL(step: step)
        guard isWriter else {
            lastCheckpoint = (step, url)
            return url
        }
        let perEpoch = max(1, data.train.count / recipe.train.batchSize)
        var state: [String: String] = [
            "train_step": String(step), "seed": String(recipe.train.seed), "batch_size": String(recipe.train.batchSize),
            "clip_length": String(recipe.data.clipLength), "train_segments": String(data.train.count),
            "epoch": String(step / perEpoch), "batch_in_epoch": String(step % perEpoch),
            "data_folder": data.folder.path, "recipe": recipe.name, "consecutive_bad_steps": String(consecutiveBad),
        ]
        var extra = ["train_step": String(step), "recipe": recipe.name]
        if let v = lastValidation, v.step == step {
            extra["valid_bits_per_sample"] = String(v.report.bitsPerSample)
            state["valid_bits_per_sample"] = extra["valid_bits_per_sample"]
        }
        do {
            try Checkpoint.saveOptimizer(optimizer, ema: ema, to: Checkpoint.companionURL(url), metadata: state)
            try ModelCheckpoint.save(model, audio: recipe.audioSettings, to: url, extra: extra)
            try run.copyToLatest(url, as: run.latestURL)
            if let ema {
                try ModelCheckpoint.save(model, audio: recipe.audioSettings, to: run.latestEMAURL, extra: extra.merging(["weights": "ema"]) { a, _ in a },
                                         values: ema.average)
            }
        } catch let e as SafeTensorsError {
            throw TrainingError(path: e.path, e.reason, fix: "check that the run folder is writable and the disk is not full")
        }
        lastCheckpoint = (step, url)
        metrics?.write("checkpoint", step: step, ["path": .string(url.path)])
        onEvent?(.checkpoint(step: step, url: url))
        return url
    }

    /// Loads the newest checkpoint that reads back (falling back to older ones with a
    /// warning) and returns its training step.
    static func loadNewestCheckpoint(run: RunDirectory, recipe: Recipe, data: TrainingData, model: SaShiMi, optimizer: AdamWOptimizer,
                                     ema: ExponentialMovingAverage?, warn: (String) -> Void) throws -> Int {
        var failures: [String] = []
        for s in run.checkpointSteps() {
            let url = run.checkpointURL(step: s)
            let meta: [String: String]
            do {
                _ = try Checkpoint.loadWeights(model.store, from: url)
                if let ema { // a checkpoint without an EMA (EMA switched on now) starts it at the weights
                    let n = model.store.count
                    model.store.backend.copy2D(from: model.store.values!.reshaped([1, n]), to: ema.average.reshaped([1, n]), accumulate: false)
                }
                meta = try Checkpoint.loadOptimizer(optimizer, ema: ema, from: Checkpoint.companionURL(url))
            } catch let e as SafeTensorsError {
                failures.append(e.description)
                warn("cannot resume from \(url.path): \(e.reason); trying an older checkpoint")
                continue
            }
            guard let stepText = meta["train_step"], let trainStep = Int(stepText) else {
                throw TrainingError(path: Checkpoint.companionURL(url).path, "no training step in the metadata; not written by `wavemamba train`",
                                    fix: "resume from a run folder made by `wavemamba train`")
            }
            for (key, expected) in [("seed", recipe.train.seed), ("batch_size", recipe.train.batchSize), ("clip_length", recipe.data.clipLength)] {
                if let saved = meta[key], saved != String(expected) {
                    throw TrainingError(path: Checkpoint.companionURL(url).path,
                                        "the checkpoint was trained with \(key) \(saved), the recipe says \(expected); the data order would change",
                                        fix: "resume with the run's own recipe (\(run.recipeURL.path))")
                }
            }
            if let saved = meta["train_segments"], saved != String(data.train.count) {
                warn("the train split has \(data.train.count) segments now and had \(saved) when step \(trainStep) was saved: the data order will differ from an uninterrupted run")
            }
            return trainStep
        }
        throw TrainingError(path: run.checkpointsURL.path, "no checkpoint could be read (\(failures.joined(separator: "; ")))",
                            fix: "start a new run in another --out folder")
    }
}
