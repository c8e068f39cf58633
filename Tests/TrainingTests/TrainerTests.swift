import AudioIO
import Engine
import Foundation
import Models
import SafeTensors
import XCTest
@testable import Training

final class TrainerTests: XCTestCase {
    /// N steps in one go and N/2 steps + resume for N/2 give bit-identical weights, moments
    /// and EMA — with dropout and the EMA on, so that their seeds and state are covered too.
    func testResumeIsBitExact() throws {
        try checkResumeIsBitExact(outer: .mambaComplex, center: .mamba)
    }

    /// The same for the SaShiMi baseline's S4D + FF blocks (tied dropout, FFT convolution).
    func testResumeIsBitExactWithS4D() throws {
        try checkResumeIsBitExact(outer: .s4d, center: .s4d)
    }

    /// The same for the paper's unet backbone (down-stage blocks, per-layer skips) with
    /// attention in the center.
    func testResumeIsBitExactWithTheUNetBackbone() throws {
        try checkResumeIsBitExact(outer: .mamba, center: .mha, backbone: .unet)
    }

    /// The same with non-selective Mamba blocks (dt_bias and B under the SSM optimiser settings).
    func testResumeIsBitExactWithNonSelectiveMamba() throws {
        try checkResumeIsBitExact(outer: .mambaLTI, center: .mamba, backbone: .unet)
    }

    func checkResumeIsBitExact(outer: BlockKind, center: BlockKind, backbone: Backbone = .sashimi) throws {
        let root = Fixture.scratch(self)
        let corpus = Fixture.corpus(in: root)
        var recipe = Fixture.recipe(steps: 6)
        recipe.model.backbone = backbone
        recipe.model.mhaHeads = 4
        recipe.model.outer = outer
        recipe.model.center = center
        recipe.model.s4dState = 8
        recipe.model.dropout = 0.1
        recipe.train.ema = 0.9
        let data = try Fixture.data(recipe, corpus)

        let whole = try Fixture.trainer(recipe, data: data, run: root.appendingPathComponent("whole"))
        XCTAssertTrue(try whole.train().finished)

        let first = try Fixture.trainer(recipe, data: data, run: root.appendingPathComponent("split"))
        let half = try first.train(until: 3)
        XCTAssertFalse(half.finished)
        XCTAssertEqual(half.step, 3)
        XCTAssertEqual(half.checkpoint.lastPathComponent, "step-3.safetensors")
        let second = try Fixture.trainer(recipe, data: data, run: root.appendingPathComponent("split"), resume: true)
        XCTAssertEqual(second.resumedFrom, 3)
        XCTAssertEqual(second.optimizer.step, 3)
        XCTAssertTrue(try second.train().finished)

        XCTAssertEqual(second.model.store.values!.floats(), whole.model.store.values!.floats(), "weights differ after resume")
        XCTAssertEqual(second.optimizer.m.floats(), whole.optimizer.m.floats(), "Adam m differs after resume")
        XCTAssertEqual(second.optimizer.v.floats(), whole.optimizer.v.floats(), "Adam v differs after resume")
        XCTAssertEqual(second.ema!.average.floats(), whole.ema!.average.floats(), "EMA differs after resume")
        XCTAssertNotEqual(whole.model.store.values!.floats(), first.model.store.values!.floats(), "training did not change the weights")
    }

    /// `[train] recompute` may change on resume and leaves the run exact: 3 steps without it,
    /// then 3 resumed with `blocks`, give the weights and moments of 6 steps without it (with
    /// dropout on, so the recomputed blocks must replay the same masks).
    func testSwitchingRecomputeOnResumeIsBitExact() throws {
        let root = Fixture.scratch(self)
        let corpus = Fixture.corpus(in: root)
        var recipe = Fixture.recipe(steps: 6)
        recipe.model.backbone = .unet
        recipe.model.outer = .mamba
        recipe.model.center = .mambaComplex
        recipe.model.dropout = 0.1
        let data = try Fixture.data(recipe, corpus)

        let whole = try Fixture.trainer(recipe, data: data, run: root.appendingPathComponent("whole"))
        XCTAssertTrue(try whole.train().finished)

        let first = try Fixture.trainer(recipe, data: data, run: root.appendingPathComponent("split"))
        XCTAssertFalse(try first.train(until: 3).finished)
        var recomputing = recipe
        recomputing.train.recompute = .blocks
        let second = try Fixture.trainer(recomputing, data: data, run: root.appendingPathComponent("split"), resume: true)
        XCTAssertEqual(second.resumedFrom, 3)
        XCTAssertTrue(try second.train().finished)

        func differing(_ a: Tensor, _ b: Tensor) -> Int { zip(a.floats(), b.floats()).filter { $0.bitPattern != $1.bitPattern }.count }
        XCTAssertEqual(differing(second.model.store.values!, whole.model.store.values!), 0, "weights differ")
        XCTAssertEqual(differing(second.optimizer.m, whole.optimizer.m), 0, "Adam m differs")
        XCTAssertEqual(differing(second.optimizer.v, whole.optimizer.v), 0, "Adam v differs")
    }

    /// A run started from another run's step-3 weights (`initFrom`) starts at step 3 with those
    /// weights and the same data order: its first loss, before any update, equals the
    /// uninterrupted run's loss at step 4. A BF16 copy of the weights starts it too.
    func testInitFromContinuesTheScheduleAndDataOrder() throws {
        let root = Fixture.scratch(self)
        let corpus = Fixture.corpus(in: root)
        var recipe = Fixture.recipe(steps: 6)
        recipe.train.logEvery = 1
        let data = try Fixture.data(recipe, corpus)
        let whole = try Fixture.trainer(recipe, data: data, run: root.appendingPathComponent("whole"))
        _ = try whole.train(until: 3)
        let weights3 = whole.model.store.values!.floats()
        _ = try whole.train()
        let step3 = root.appendingPathComponent("whole/checkpoints/step-3.safetensors")

        let started = try Trainer(recipe: recipe, data: data, runDirectory: root.appendingPathComponent("init"), backend: CPUBackend(threads: 2),
                                  initFrom: step3)
        XCTAssertEqual(started.step, 3)
        XCTAssertNil(started.resumedFrom)
        XCTAssertEqual(started.optimizer.step, 0, "Adam starts afresh")
        XCTAssertEqual(started.model.store.values!.floats(), weights3)
        XCTAssertTrue(try started.train().finished)
        func loss(_ run: String, step: Int) throws -> Double? {
            let text = try String(contentsOf: root.appendingPathComponent("\(run)/metrics.jsonl"), encoding: .utf8)
            return text.split(separator: "\n").compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
                .first { $0["type"] as? String == "train" && $0["step"] as? Int == step }?["loss"] as? Double
        }
        let a = try XCTUnwrap(loss("whole", step: 4)), b = try XCTUnwrap(loss("init", step: 4))
        XCTAssertEqual(a, b, "the first step after --init-from saw other data or other weights")
        XCTAssertNotEqual(try loss("whole", step: 6), try loss("init", step: 6), "fresh moments should change the later steps")

        // A BF16 copy, as shipped: the weights within BF16 rounding, the step from its metadata.
        let bf16 = root.appendingPathComponent("bf16.safetensors")
        let source = try ModelCheckpoint.load(step3, backend: CPUBackend(threads: 1))
        try ModelCheckpoint.save(source.model, audio: source.audio, to: bf16, extra: ["train_step": "3"], dtype: .BF16)
        let fromBF16 = try Trainer(recipe: recipe, data: data, runDirectory: root.appendingPathComponent("init-bf16"),
                                   backend: CPUBackend(threads: 2), initFrom: bf16)
        XCTAssertEqual(fromBF16.step, 3)
        for (x, y) in zip(fromBF16.model.store.values!.floats(), weights3) { XCTAssertEqual(x, y, accuracy: abs(y) / 128 + 1e-30) }
    }

    /// A NaN in the parameters makes the step's loss NaN: the update is skipped, the
    /// parameters and Adam state are those of the last good step, and training goes on.
    func testNaNGuardSkipsTheStepAndRestoresTheLastGoodState() throws {
        let root = Fixture.scratch(self)
        let recipe = Fixture.recipe(steps: 6)
        let data = try Fixture.data(recipe, Fixture.corpus(in: root))
        let run = root.appendingPathComponent("run")
        let trainer = try Fixture.trainer(recipe, data: data, run: run)
        var skipped: [(Int, String)] = []
        trainer.onEvent = { if case .skipped(let step, let reason, _, _) = $0 { skipped.append((step, reason)) } }
        try trainer.train(until: 3)
        let good = trainer.model.store.values!.floats()
        let goodM = trainer.optimizer.m.floats()
        XCTAssertEqual(trainer.optimizer.step, 3)

        trainer.model.store.values!.pointer[5] = .nan // poison one weight
        try trainer.train(until: 4)
        XCTAssertEqual(skipped.count, 1)
        XCTAssertEqual(skipped.first?.0, 4)
        XCTAssertEqual(skipped.first?.1, "loss is nan")
        XCTAssertEqual(trainer.step, 4, "the bad step's batch is passed over")
        XCTAssertEqual(trainer.optimizer.step, 3, "Adam's step count must not advance on a skipped step")
        XCTAssertEqual(trainer.model.store.values!.floats(), good, "parameters are not the last good ones")
        XCTAssertEqual(trainer.optimizer.m.floats(), goodM)

        try trainer.train()
        XCTAssertEqual(skipped.count, 1)
        let after = trainer.model.store.values!.floats()
        XCTAssertTrue(after.allSatisfy(\.isFinite))
        XCTAssertNotEqual(after, good, "training did not go on after the skipped step")
        let skips = Fixture.metrics(run).filter { $0["type"] as? String == "skip" }
        XCTAssertEqual(skips.count, 1)
        XCTAssertEqual(skips.first?["step"] as? Int, 4)
        XCTAssertTrue(skips.first?["loss"] is NSNull, "a NaN loss is written as null")
    }

    /// A NaN that the loss never sees (the embedding row of a class absent from the data)
    /// has a zero gradient, so loss and gradient norm are finite; the update would keep it,
    /// and the check of the updated parameters catches it.
    func testNonFiniteParametersAfterTheUpdateAreCaught() throws {
        let root = Fixture.scratch(self)
        let recipe = Fixture.recipe(steps: 3)
        let data = try Fixture.data(recipe, Fixture.corpus(in: root))
        var used = Set<Int32>()
        for seg in data.train { used.formUnion(try data.tokens(seg)) }
        let unused = (0..<256).first { !used.contains(Int32($0)) }!
        let trainer = try Fixture.trainer(recipe, data: data, run: root.appendingPathComponent("run"))
        try trainer.train(until: 1)
        let good = trainer.model.store.values!.floats()
        trainer.model.store["embedding.weight"]!.value.pointer[unused * recipe.model.dModel] = .nan
        var reasons: [String] = []
        trainer.onEvent = { if case .skipped(_, let reason, _, _) = $0 { reasons.append(reason) } }
        try trainer.train(until: 2)
        XCTAssertEqual(reasons, ["parameters are not finite after the update"])
        XCTAssertEqual(trainer.model.store.values!.floats(), good)
        XCTAssertEqual(trainer.optimizer.step, 1)
    }

    /// Overflowing weights (a head of ±3e38) give a non-finite loss or gradient: skipped too.
    func testOverflowIsSkipped() throws {
        let root = Fixture.scratch(self)
        let recipe = Fixture.recipe(steps: 3)
        let data = try Fixture.data(recipe, Fixture.corpus(in: root))
        let trainer = try Fixture.trainer(recipe, data: data, run: root.appendingPathComponent("run"))
        try trainer.train(until: 1)
        let good = trainer.model.store.values!.floats()
        let head = trainer.model.store["head.weight"]!
        for i in 0..<head.value.count { head.value.pointer[i] = i % 2 == 0 ? 3e38 : -3e38 }
        var reasons: [String] = []
        trainer.onEvent = { if case .skipped(_, let reason, _, _) = $0 { reasons.append(reason) } }
        try trainer.train(until: 2)
        XCTAssertEqual(reasons.count, 1, "\(reasons)")
        XCTAssertEqual(trainer.model.store.values!.floats(), good)
    }

    /// Bad steps in a row stop training with an error naming the fix, after saving the last
    /// good state.
    func testConsecutiveBadStepsStopTraining() throws {
        let root = Fixture.scratch(self)
        let recipe = Fixture.recipe(steps: 10)
        let data = try Fixture.data(recipe, Fixture.corpus(in: root))
        let run = root.appendingPathComponent("run")
        let trainer = try Fixture.trainer(recipe, data: data, run: run, options: Trainer.Options(maxConsecutiveBadSteps: 3))
        try trainer.train(until: 2)
        let good = trainer.model.store.values!.floats()
        trainer.beforeStep = { _ in trainer.model.store.values!.pointer[0] = .infinity }
        XCTAssertThrowsError(try trainer.train()) { e in
            let text = "\(e)"
            XCTAssertTrue(text.contains("3 steps in a row had non-finite values"), text)
            XCTAssertTrue(text.contains("lower [train] lr"), text)
        }
        XCTAssertEqual(trainer.step, 5)
        XCTAssertEqual(trainer.model.store.values!.floats(), good)
        let loaded = try ModelCheckpoint.load(RunDirectory(run).checkpointURL(step: 5), backend: CPUBackend(threads: 1))
        XCTAssertEqual(loaded.model.store.values!.floats(), good, "the saved state is not the last good one")
    }

    /// ~30 steps on the tiny synthetic corpus: the training loss and the validation NLL fall.
    func testLossDecreases() throws {
        let root = Fixture.scratch(self)
        var recipe = Fixture.recipe(steps: 30)
        recipe.train.lr = 1e-2
        recipe.train.validateEvery = 30
        let data = try Fixture.data(recipe, Fixture.corpus(in: root))
        let trainer = try Fixture.trainer(recipe, data: data, run: root.appendingPathComponent("run"))
        var losses: [Double] = []
        var valid: [Double] = []
        trainer.onEvent = {
            if case .step(let r) = $0 { losses.append(r.loss) }
            if case .validation(let v) = $0 { valid.append(v.bitsPerSample) }
        }
        try trainer.train()
        XCTAssertEqual(losses.count, 30)
        XCTAssertTrue(losses.allSatisfy(\.isFinite))
        let start = losses.prefix(5).reduce(0, +) / 5, end = losses.suffix(5).reduce(0, +) / 5
        print("tiny corpus: train loss \(start) → \(end) nats; valid \(valid) bits/sample")
        XCTAssertLessThan(end, start - 0.5, "training loss did not fall")
        XCTAssertEqual(valid.count, 2)
        XCTAssertGreaterThan(valid[0], 7.5, "an untrained model should be near 8 bits/sample")
        XCTAssertLessThan(valid[1], valid[0] - 0.5, "validation bits/sample did not fall")
    }

    /// Checkpoints leave no temp files, latest.safetensors loads with ModelCheckpoint.load,
    /// and a write interrupted by a crash (temp files, or a companion without its weights)
    /// leaves the previous checkpoint as the one resumed from.
    func testCheckpointsAreAtomicAndLoadable() throws {
        let root = Fixture.scratch(self)
        var recipe = Fixture.recipe(steps: 4)
        recipe.train.checkpointEvery = 2
        recipe.train.ema = 0.5
        let data = try Fixture.data(recipe, Fixture.corpus(in: root))
        let runURL = root.appendingPathComponent("run")
        let run = RunDirectory(runURL)
        let trainer = try Fixture.trainer(recipe, data: data, run: runURL)
        try trainer.train()
        XCTAssertEqual(run.checkpointSteps(), [4, 2])
        XCTAssertEqual(run.tempFiles(), [], "temp files left behind")
        for s in [2, 4] {
            XCTAssertTrue(FileManager.default.fileExists(atPath: Checkpoint.companionURL(run.checkpointURL(step: s)).path))
        }
        let latest = try ModelCheckpoint.load(run.latestURL, backend: CPUBackend(threads: 1))
        XCTAssertEqual(latest.model.store.values!.floats(), trainer.model.store.values!.floats())
        XCTAssertEqual(latest.model.config, recipe.model)
        XCTAssertEqual(latest.audio, recipe.audioSettings)
        XCTAssertEqual(latest.metadata["train_step"], "4")
        let ema = try ModelCheckpoint.load(run.latestEMAURL, backend: CPUBackend(threads: 1))
        XCTAssertEqual(ema.model.store.values!.floats(), trainer.ema!.average.floats())
        XCTAssertEqual(try Data(contentsOf: run.latestURL), try Data(contentsOf: run.checkpointURL(step: 4)))

        // A crash while writing step 6: the companion was renamed into place but the weights'
        // temp file was not, and latest's temp file is half written.
        let fm = FileManager.default
        try fm.copyItem(at: Checkpoint.companionURL(run.checkpointURL(step: 4)), to: Checkpoint.companionURL(run.checkpointURL(step: 6)))
        try Data(repeating: 7, count: 100).write(to: run.checkpointsURL.appendingPathComponent(".step-6.safetensors.tmp-99999"))
        try Data(repeating: 7, count: 100).write(to: runURL.appendingPathComponent(".latest.safetensors.tmp-99999"))
        XCTAssertEqual(run.checkpointSteps(), [4, 2], "an incomplete checkpoint must not be offered")
        XCTAssertNoThrow(try ModelCheckpoint.load(run.latestURL, backend: CPUBackend(threads: 1)))
        var resumedRecipe = recipe
        resumedRecipe.train.steps = 6
        var warnings: [String] = []
        let resumed = try Trainer(recipe: resumedRecipe, data: data, runDirectory: runURL, backend: CPUBackend(threads: 2), resume: true) {
            warnings.append($0)
        }
        XCTAssertEqual(resumed.resumedFrom, 4)
        XCTAssertEqual(run.tempFiles(), [], "stale temp files were not cleaned up")
        XCTAssertEqual(warnings.filter { $0.contains("interrupted write") }.count, 2)

        // A damaged newest checkpoint (disk corruption): resume falls back to the one before.
        try Data(repeating: 0, count: 64).write(to: run.checkpointURL(step: 4))
        warnings = []
        let fallback = try Trainer(recipe: resumedRecipe, data: data, runDirectory: runURL, backend: CPUBackend(threads: 2), resume: true) {
            warnings.append($0)
        }
        XCTAssertEqual(fallback.resumedFrom, 2)
        XCTAssertTrue(warnings.contains { $0.contains("step-4.safetensors") && $0.contains("older checkpoint") }, "\(warnings)")
    }

    /// The run folder: recipe.toml parses back to the recipe, and every metrics line is a JSON
    /// object with the expected types and fields.
    func testRunFolderContents() throws {
        let root = Fixture.scratch(self)
        var recipe = Fixture.recipe(steps: 4)
        recipe.train.validateEvery = 2
        recipe.train.logEvery = 2
        let data = try Fixture.data(recipe, Fixture.corpus(in: root))
        let runURL = root.appendingPathComponent("run")
        try Fixture.trainer(recipe, data: data, run: runURL).train()
        XCTAssertEqual(try RecipeParser.load(runURL.appendingPathComponent("recipe.toml")), recipe)
        let lines = Fixture.metrics(runURL)
        XCTAssertEqual(lines.map { $0["type"] as? String ?? "?" },
                       ["start", "valid", "train", "valid", "train", "valid", "checkpoint", "end"])
        for l in lines {
            XCTAssertNotNil(l["step"] as? Int)
            XCTAssertNotNil(l["time"] as? Double)
        }
        let train = lines.filter { $0["type"] as? String == "train" }
        for t in train {
            let loss = t["loss"] as! Double, bits = t["bits_per_sample"] as! Double
            XCTAssertEqual(bits, loss / log(2), accuracy: 1e-9)
            XCTAssertGreaterThan(t["samples_per_second"] as! Double, 0)
            XCTAssertNotNil(t["lr"] as? Double)
            XCTAssertNotNil(t["grad_norm"] as? Double)
        }
        XCTAssertEqual(lines.first?["parameters"] as? Int, SaShiMi(config: recipe.model, backend: CPUBackend(threads: 1), seed: 0).parameterCount)
        XCTAssertNotNil(lines.last?["valid_bits_per_sample"] as? Double)
    }

    /// A stop request (what SIGINT / SIGTERM set) ends the run after the current step with a checkpoint.
    func testStopRequestSavesAndResumes() throws {
        let root = Fixture.scratch(self)
        let recipe = Fixture.recipe(steps: 8)
        let data = try Fixture.data(recipe, Fixture.corpus(in: root))
        let runURL = root.appendingPathComponent("run")
        let trainer = try Fixture.trainer(recipe, data: data, run: runURL)
        trainer.onEvent = { if case .step(let r) = $0, r.step == 2 { trainer.stop.request() } }
        let outcome = try trainer.train()
        XCTAssertTrue(outcome.interrupted)
        XCTAssertFalse(outcome.finished)
        XCTAssertEqual(outcome.step, 2)
        XCTAssertEqual(outcome.checkpoint, RunDirectory(runURL).checkpointURL(step: 2))
        XCTAssertEqual(Fixture.metrics(runURL).last?["type"] as? String, "stop")
        let resumed = try Fixture.trainer(recipe, data: data, run: runURL, resume: true)
        XCTAssertEqual(resumed.resumedFrom, 2)
        XCTAssertTrue(try resumed.train().finished)
    }

    /// `[train] max_time`: with a clock that reads 10 s per step done, a 25 s limit stops the
    /// run after step 3 with a checkpoint and a `stop` line (reason time_limit); resumed (with
    /// the limit removed, a resumable change) it ends where a straight run does.
    func testTimeLimitStopsWithACheckpointAndResumesExactly() throws {
        let root = Fixture.scratch(self)
        var recipe = Fixture.recipe(steps: 8)
        recipe.train.ema = 0.9
        let data = try Fixture.data(recipe, Fixture.corpus(in: root))
        let straight = try Fixture.trainer(recipe, data: data, run: root.appendingPathComponent("straight"))
        XCTAssertTrue(try straight.train().finished)

        var limited = recipe
        limited.train.maxTime = 25
        XCTAssertEqual(limited.changes(from: recipe).filter { !Recipe.resumableKeys.contains($0.key) }, [])
        let runURL = root.appendingPathComponent("limited")
        let first = try Fixture.trainer(limited, data: data, run: runURL)
        first.clock = { [unowned first] in 100 + 10 * Double(first.step) }
        let outcome = try first.train()
        XCTAssertTrue(outcome.timeLimited)
        XCTAssertFalse(outcome.interrupted)
        XCTAssertFalse(outcome.finished)
        XCTAssertEqual(outcome.step, 3)
        XCTAssertEqual(outcome.checkpoint, RunDirectory(runURL).checkpointURL(step: 3))
        XCTAssertTrue(FileManager.default.fileExists(atPath: Checkpoint.companionURL(outcome.checkpoint).path))
        let last = Fixture.metrics(runURL).last
        XCTAssertEqual(last?["type"] as? String, "stop")
        XCTAssertEqual(last?["reason"] as? String, "time_limit")
        XCTAssertEqual(last?["elapsed_seconds"] as? Double, 30)
        XCTAssertEqual(last?["max_time_seconds"] as? Double, 25)

        let resumed = try Fixture.trainer(recipe, data: data, run: runURL, resume: true)
        XCTAssertEqual(resumed.resumedFrom, 3)
        XCTAssertTrue(try resumed.train().finished)
        for (name, a, b) in [("weights", resumed.model.store.values!, straight.model.store.values!),
                             ("EMA", resumed.ema!.average, straight.ema!.average)] {
            let worst = zip(a.floats(), b.floats()).map { abs($0 - $1) }.max() ?? .infinity
            XCTAssertLessThanOrEqual(worst, 1e-6, "\(name) differ from the straight run after the time limit and resume")
        }
        XCTAssertNotEqual(first.model.store.values!.floats(), straight.model.store.values!.floats(), "the limit did not stop early")
    }

    /// `[train] sample_every`: the hook runs every N steps with the current weights, then with
    /// the EMA weights in the model; its fields become `samples` lines; the weights are put back,
    /// so the run ends where one without sampling does.
    func testSampleHookSeesCurrentThenEMAWeightsAndLeavesTrainingAlone() throws {
        let root = Fixture.scratch(self)
        var recipe = Fixture.recipe(steps: 4)
        recipe.train.ema = 0.9
        let data = try Fixture.data(recipe, Fixture.corpus(in: root))
        let plain = try Fixture.trainer(recipe, data: data, run: root.appendingPathComponent("plain"))
        try plain.train()

        recipe.train.sampleEvery = 2
        let runURL = root.appendingPathComponent("sampled")
        let sampled = try Fixture.trainer(recipe, data: data, run: runURL)
        var calls: [String] = []
        var current: [Float] = []
        sampled.onSample = { [unowned sampled] step, weights, model in
            if weights == "ema" {
                XCTAssertEqual(model.store.values!.floats(), sampled.ema!.average.floats(), "EMA weights at step \(step)")
                XCTAssertNotEqual(model.store.values!.floats(), current)
            } else {
                current = model.store.values!.floats()
            }
            calls.append("\(step) \(weights)")
            return [("clips", .int(3)), ("fid", .double(Double(step)))]
        }
        try sampled.train()
        XCTAssertEqual(calls, ["2 current", "2 ema", "4 current", "4 ema"])
        XCTAssertEqual(sampled.model.store.values!.floats(), plain.model.store.values!.floats())
        let lines = Fixture.metrics(runURL).filter { $0["type"] as? String == "samples" }
        XCTAssertEqual(lines.map { $0["weights"] as? String }, ["current", "ema", "current", "ema"])
        XCTAssertEqual(lines.map { $0["fid"] as? Double }, [2, 2, 4, 4])
        XCTAssertTrue(lines.allSatisfy { $0["clips"] as? Int == 3 && $0["seconds"] is Double })
    }

    /// SIGINT through the dispatch signal source: the step finishes, a checkpoint is written.
    func testSIGINTStopsAfterTheStep() throws {
        let root = Fixture.scratch(self)
        let recipe = Fixture.recipe(steps: 50)
        let data = try Fixture.data(recipe, Fixture.corpus(in: root))
        let trainer = try Fixture.trainer(recipe, data: data, run: root.appendingPathComponent("run"))
        let notes = NotesBox()
        trainer.handleSignals { notes.append($0) }
        defer { trainer.stopHandlingSignals() }
        trainer.onEvent = {
            guard case .step(let r) = $0, r.step == 2 else { return }
            kill(getpid(), SIGINT)
            let deadline = Date().addingTimeInterval(5)
            while !trainer.stop.isRequested && Date() < deadline { usleep(1000) }
        }
        let outcome = try trainer.train()
        XCTAssertTrue(outcome.interrupted, "SIGINT did not stop training")
        XCTAssertEqual(outcome.step, 2)
        XCTAssertTrue(FileManager.default.fileExists(atPath: outcome.checkpoint.path))
        XCTAssertTrue(notes.lines.first?.contains("finishing the current step") ?? false, "\(notes.lines)")
    }

    func testDataErrorsNameTheFolderAndFix() throws {
        let root = Fixture.scratch(self)
        let corpus = Fixture.corpus(in: root, validFiles: 0)
        var recipe = Fixture.recipe()
        recipe.data.validFraction = 0
        XCTAssertThrowsError(try Fixture.data(recipe, corpus)) { e in
            XCTAssertTrue("\(e)".hasPrefix(corpus.path + ": the valid split has no 64-sample clips"), "\(e)")
            XCTAssertTrue("\(e)".contains("raise [data] valid_fraction"), "\(e)")
        }
        recipe.train.batchSize = 64
        XCTAssertThrowsError(try Fixture.data(recipe, Fixture.corpus(in: root.appendingPathComponent("b")))) { e in
            XCTAssertTrue("\(e)".contains("fewer than one batch of 64"), "\(e)")
        }
        recipe.data.layout = .sc09
        let flat = root.appendingPathComponent("flat")
        try FileManager.default.createDirectory(at: flat, withIntermediateDirectories: true)
        XCTAssertThrowsError(try Fixture.data(recipe, flat)) { XCTAssertTrue("\($0)".contains("expects the SC09 layout"), "\($0)") }
        XCTAssertThrowsError(try Fixture.data(Fixture.recipe(), root.appendingPathComponent("none"))) { e in
            XCTAssertTrue("\(e)".contains(root.appendingPathComponent("none").path), "\(e)")
        }
    }

    /// A streamed file that disappears mid-run: a one-line error naming it, and the steps done
    /// so far are saved.
    func testReadErrorMidRunSavesProgress() throws {
        let root = Fixture.scratch(self)
        var recipe = Fixture.recipe(steps: 50)
        recipe.data.memoryBudgetMB = 1 // 4 files of 400 kB: streamed, at most two cached
        let corpus = Fixture.corpus(in: root, frames: 100_000)
        let data = try Fixture.data(recipe, corpus)
        XCTAssertFalse(data.dataset.fitsInMemory)
        let runURL = root.appendingPathComponent("run")
        let trainer = try Fixture.trainer(recipe, data: data, run: runURL)
        trainer.onEvent = {
            if case .step(let r) = $0, r.step == 2 { try? FileManager.default.removeItem(at: corpus.appendingPathComponent("train")) }
        }
        XCTAssertThrowsError(try trainer.train()) { e in
            XCTAssertTrue(e is TrainingError, "\(e)")
            XCTAssertTrue("\(e)".contains(corpus.appendingPathComponent("train").path), "\(e)")
        }
        XCTAssertGreaterThanOrEqual(trainer.step, 2)
        XCTAssertEqual(RunDirectory(runURL).checkpointSteps().first, trainer.step, "progress was not saved")
    }

    /// Two sessions cannot train into one run folder at once.
    func testRunFolderIsLockedWhileTraining() throws {
        let root = Fixture.scratch(self)
        let recipe = Fixture.recipe(steps: 4)
        let data = try Fixture.data(recipe, Fixture.corpus(in: root))
        let runURL = root.appendingPathComponent("run")
        let trainer = try Fixture.trainer(recipe, data: data, run: runURL)
        try trainer.train(until: 1)
        let other = try Fixture.trainer(recipe, data: data, run: runURL, resume: true)
        var inner: Error?
        trainer.onEvent = { if case .step(let r) = $0, r.step == 2 { inner = Result { try other.train() }.failure } }
        try trainer.train()
        XCTAssertTrue("\(inner.map { "\($0)" } ?? "no error")".contains("another `wavemamba train` is using this run folder"))
        XCTAssertNoThrow(try RunDirectory(runURL).lock().release(), "the lock was not released")
    }

    func testRunFolderGuards() throws {
        let root = Fixture.scratch(self)
        let recipe = Fixture.recipe(steps: 2)
        let data = try Fixture.data(recipe, Fixture.corpus(in: root))
        let runURL = root.appendingPathComponent("run")
        XCTAssertThrowsError(try Fixture.trainer(recipe, data: data, run: runURL, resume: true)) {
            XCTAssertTrue("\($0)".contains("no checkpoint to resume from"), "\($0)")
        }
        try Fixture.trainer(recipe, data: data, run: runURL).train()
        XCTAssertThrowsError(try Fixture.trainer(recipe, data: data, run: runURL)) {
            XCTAssertTrue("\($0)".contains("already holds a training run") && "\($0)".contains("--resume"), "\($0)")
        }
        var other = recipe
        other.train.seed = 99
        XCTAssertThrowsError(try Fixture.trainer(other, data: data, run: runURL, resume: true)) {
            XCTAssertTrue("\($0)".contains("trained with seed 7, the recipe says 99"), "\($0)")
        }
    }

    /// Tokens follow SaShiMi: min-max scaling, μ-law, inputs = [128, q0 … q_{L−2}], targets = q.
    func testBatchesAreShiftedBehindSilence() throws {
        let root = Fixture.scratch(self)
        let recipe = Fixture.recipe()
        let data = try Fixture.data(recipe, Fixture.corpus(in: root))
        let b = try data.batch(Array(data.train.prefix(2)))
        XCTAssertEqual(b.batch, 2)
        XCTAssertEqual(b.length, 64)
        let raw = try data.dataset.read(data.train[0])
        let q = Quantization.mulaw.encode(Quantization.minMaxScaled(raw)).map(Int32.init)
        XCTAssertEqual(Array(b.targets[0..<64]), q)
        XCTAssertEqual(Array(b.inputs[0..<64]), [128] + q.dropLast())
        XCTAssertEqual(b.inputs[64], 128)
        XCTAssertEqual(b.targets.min(), 0, "min-max scaling reaches class 0")
        XCTAssertEqual(b.targets.max(), 255, "min-max scaling reaches class 255")
    }
}

extension Result {
    var failure: Failure? { if case .failure(let e) = self { return e }; return nil }
}

/// Lines noted from another thread.
final class NotesBox: @unchecked Sendable {
    private let lock = NSLock()
    private var items: [String] = []
    func append(_ s: String) { lock.lock(); items.append(s); lock.unlock() }
    var lines: [String] { lock.lock(); defer { lock.unlock() }; return items }
}
