import ArgumentParser
import AudioIO
import Distributed
import Engine
import Foundation
import SafeTensors
import Training

struct TrainCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train",
        abstract: "Train a SaShiMi model of Mamba blocks on a folder of audio, from a recipe.",
        discussion: """
        RECIPE is a name in recipes/ (e.g. digits-tiny, looked up in ./recipes and in the \
        checkout the binary was built in) or the path of a .toml file. The data folder is \
        --data, else the recipe's [data] default_data.

        The run folder (--out, default runs/RECIPE-TIMESTAMP) receives recipe.toml (the resolved \
        recipe), metrics.jsonl (one JSON object per line), checkpoints/step-N.safetensors (+ \
        .optim.safetensors with the optimiser state) and latest.safetensors, all written \
        atomically. Ctrl-C or SIGTERM finishes the current step, saves a checkpoint and exits \
        (status 0); `wavemamba train --resume --out RUNDIR` continues exactly where it stopped. \
        --max-time (or [train] max_time) does the same after that much wall-clock time.

        Under `mpirun -np K` the run is data-parallel over K processes (ranks): each computes \
        1/K of every batch, gradients are averaged over MPI, rank 0 writes the run folder, and \
        the result equals one process up to summation order (see the README).
        """)

    @Argument(help: "Recipe name or .toml path (optional with --resume: the run folder's recipe.toml is used).")
    var recipe: String?

    @Option(help: "Data folder (default: the recipe's [data] default_data).")
    var data: String?

    @Option(help: "Run folder (default: runs/<recipe>-<timestamp>).")
    var out: String?

    @Option(help: "Total training steps, overriding [train] steps.")
    var steps: Int?

    @Flag(help: "Continue the run in --out from its newest checkpoint.")
    var resume = false

    @Option(name: .customLong("max-time"),
            help: "Wall-clock limit of this session, e.g. 90s, 9m, 1h30m, 2.5h (overrides [train] max_time and is kept in the run's recipe.toml for later sessions; `off` removes it): the step in progress finishes, a checkpoint is saved as on Ctrl-C and the run exits with status 0, ready for --resume.")
    var maxTime: String?

    @Option(help: "Worker threads (default: all cores).")
    var threads: Int?

    @OptionGroup var deviceOptions: DeviceOptions

    func run() throws {
        // MPI when started by mpirun (rank and size from MPI itself); else one process, with
        // no MPI library loaded.
        let communicator: any Communicator
        do {
            communicator = try Distribution.detect()
        } catch let e as CollectiveError {
            Console.error(e.description)
            throw ExitCode(1)
        }
        if communicator.rank != 0 {
            // Rank 0 speaks for the job; the others print errors only.
            let null = open("/dev/null", O_WRONLY)
            if null >= 0 { dup2(null, STDOUT_FILENO); close(null) }
        }
        do {
            try train(communicator)
        } catch {
            let message: String
            switch error {
            case let e as TrainingError: message = e.description
            case let e as AudioIOError: message = e.description
            case let e as SafeTensorsError: message = e.description
            case let e as CollectiveError: message = e.description
            default: throw error
            }
            // One failed rank ends the job at once rather than leaving the others waiting.
            if communicator.size > 1 { communicator.abort(message) }
            Console.error(message)
            throw ExitCode(1)
        }
    }

    private func train(_ communicator: any Communicator) throws {
        let ranks = communicator.size, isRoot = communicator.rank == 0
        func warn(_ message: String) { if isRoot { Console.warning(message) } }
        if let steps, steps < 1 { throw TrainingError(path: "--steps", "must be at least 1, got \(steps)") }
        if let threads, threads < 1 { throw TrainingError(path: "--threads", "must be at least 1, got \(threads)") }
        let noLimit = maxTime.map { ["off", "none"].contains($0.lowercased()) } ?? false
        let maxSeconds = noLimit ? nil : try maxTime.map { try DurationText.parse($0, key: "--max-time", path: "") }
        let locator = RecipeLocator()
        let cwd = locator.currentDirectory

        // The recipe, the run folder and the data folder.
        var recipe: Recipe
        var recipeFile: URL?
        let runURL: URL
        var dataFolder: URL
        if resume {
            guard let out else {
                throw TrainingError(path: "--resume", "needs the run folder to continue", fix: "pass --out RUNDIR (a folder made by `wavemamba train`)")
            }
            let run = RunDirectory(locator.resolve(out))
            runURL = run.root
            guard FileManager.default.fileExists(atPath: run.recipeURL.path) else {
                throw TrainingError(path: run.root.path, "not a run folder (no recipe.toml)",
                                    fix: "pass the --out folder of an earlier `wavemamba train`")
            }
            let saved = try RecipeParser.load(run.recipeURL)
            recipe = saved
            if let name = self.recipe {
                recipeFile = try locator.locate(name)
                recipe = try RecipeParser.load(recipeFile!)
                let changes = recipe.changes(from: saved)
                let fixed = changes.filter { !Recipe.resumableKeys.contains($0.key) }
                if !fixed.isEmpty {
                    throw TrainingError(path: recipeFile!.path,
                                        "differs from the run's recipe (\(run.recipeURL.path)) in \(fixed.map(\.description).joined(separator: "; "))",
                                        fix: "resume without naming a recipe (the run's own is used), or start a new run")
                }
                for c in changes { warn("resuming with \(c)") }
            }
            if let data {
                dataFolder = try locator.dataFolder(for: recipe, recipeFile: recipeFile, override: data)
            } else if let folder = Self.recordedDataFolder(run) {
                dataFolder = folder
            } else {
                dataFolder = try locator.dataFolder(for: recipe, recipeFile: recipeFile, override: nil)
            }
        } else {
            guard let name = self.recipe else {
                throw TrainingError(path: "train", "no recipe given",
                                    fix: "name one (\(locator.available.joined(separator: ", "))) or pass --resume --out RUNDIR")
            }
            recipeFile = try locator.locate(name)
            recipe = try RecipeParser.load(recipeFile!)
            dataFolder = try locator.dataFolder(for: recipe, recipeFile: recipeFile, override: data)
            runURL = out.map(locator.resolve)
                ?? RunDirectory.defaultURL(recipe: recipe.name, base: cwd)
        }
        if let steps { Self.setSteps(steps, of: &recipe, warn: warn) }
        if maxTime != nil { recipe.train.maxTime = maxSeconds }

        print("recipe  \(recipe.name)\(recipeFile.map { " (\(relative($0.path, to: cwd)))" } ?? " (from the run folder)")")
        if !recipe.description.isEmpty { print("        \(recipe.description)") }

        // Data.
        var skipped = 0
        let data = try TrainingData(folder: dataFolder, settings: recipe.data, batchSize: recipe.train.batchSize) { e in
            skipped += 1
            warn("skipping \(e.description)")
        }
        let ds = data.dataset
        let clip = Double(recipe.data.clipLength) / Double(recipe.data.sampleRate)
        print("data    \(relative(dataFolder.path, to: cwd)): \(recipe.data.sampleRate) Hz, clips of \(recipe.data.clipLength) samples (\(String(format: "%.3g", clip)) s), \(recipe.data.quantization.rawValue), layout \(recipe.data.layout.rawValue)")
        print("        train \(data.fileCount(.train)) files → \(data.train.count) clips; valid \(data.fileCount(.valid)) files → \(data.valid.count) clips; test \(data.fileCount(.test)) files; \(skipped) skipped")
        print("        \(String(format: "%.1f", Double(ds.decodedBytes) / 1e6)) MB decoded, \(ds.fitsInMemory ? "held in memory" : "streamed from disk (over the \(recipe.data.memoryBudgetMB) MB budget)")")

        // Model and trainer.
        // GPU ranks need a device-side all-reduce (NCCL), not written yet: MPI ranks train on the CPU.
        let cpuOnly = ranks > 1 ? "data-parallel ranks (MPI)" : nil
        let backend = try deviceOptions.makeBackend(threads: threads ?? Self.threadsPerRank(ranks), cpuOnly: cpuOnly,
                                                    quiet: communicator.rank != 0)
        let trainer = try Trainer(recipe: recipe, data: data, runDirectory: runURL, backend: backend, resume: resume,
                                  communicator: communicator) { warn($0) }
        if let fault = ProcessInfo.processInfo.environment["WAVEMAMBA_TEST_FAULT"] { Self.injectFault(fault, rank: communicator.rank, into: trainer) }
        let m = recipe.model
        print("model   SaShiMi (\(m.backbone) backbone), d_model \(m.dModel), \(m.nLayers) layers per stage, pool \(m.pool), expand \(m.expand), blocks \(m.outer.rawValue) / \(m.center.rawValue): \(grouped(trainer.model.parameterCount)) parameters")
        print("run     \(relative(runURL.path, to: cwd))\(trainer.resumedFrom.map { ", resumed at step \($0)" } ?? "")")
        print("device  \(describeBackend(backend)); batch \(recipe.train.batchSize) × \(recipe.data.clipLength) samples; \(recipe.train.steps) steps"
              + (recipe.train.maxTime.map { "; at most \(DurationText.format($0)) of wall-clock time" } ?? ""))
        if ranks > 1 {
            print("ranks   \(ranks) (\(communicator.description)): \(recipe.train.batchSize / ranks) clips of each batch per rank; rank 0 writes the run folder")
        }

        if trainer.step >= recipe.train.steps {
            print("the run is complete at step \(trainer.step) of \(recipe.train.steps); pass --steps N (more than \(trainer.step)) to train further")
            try communicator.finish()
            return
        }

        var bar: ProgressBar?
        var last: StepReport?
        var firstValidation: ValidationReport?
        var lastValidation: ValidationReport?
        let started = Date()
        if isRoot { trainer.onEvent = { event in
            switch event {
            case .started(let step, let total, _):
                bar = ProgressBar("train", total: total, unit: "step", initial: step)
            case .step(let r):
                if !r.skipped { last = r }
                if r.step >= r.totalSteps {
                    bar?.finish(Self.progressText(last ?? r))
                    bar = nil
                } else {
                    bar?.update(r.step, Self.progressText(last ?? r))
                }
            case .validation(let v):
                if firstValidation == nil { firstValidation = v }
                lastValidation = v
                bar?.clear()
                print(String(format: "step %d: valid %.4f bits/sample (NLL %.4f nats; %d batches, %d samples%@, %.1f s)",
                             v.step, v.bitsPerSample, v.loss, v.batches, v.samples, v.ema ? ", EMA weights" : "", v.seconds))
                fflush(stdout)
            case .skipped(let step, let reason, let consecutive, let limit):
                bar?.clear()
                Console.warning("step \(step) skipped: \(reason); restored the last good parameters and optimiser state (\(consecutive) in a row, training stops at \(limit))")
            case .interrupted, .timeLimitReached:
                bar?.clear()
            case .checkpoint, .finished:
                break
            }
        } }
        if recipe.train.sampleEvery > 0 {
            if ranks > 1 {
                warn("[train] sample_every: sampling while training runs in a single process only; it is off under mpirun")
            } else {
                let samples = try TrainingSamples(recipe: recipe, dataFolder: dataFolder, run: trainer.run) { Console.note($0) }
                print("samples every \(recipe.train.sampleEvery) steps: \(samples.clips) clips of \(samples.samplesPerClip) samples into \(relative(trainer.run.root.appendingPathComponent("samples").path, to: cwd))/step-N (the latest round), scored against \(samples.reference.count) valid clips")
                trainer.onSample = { step, weights, model in
                    let started = Date()
                    let fields = try samples.round(step: step, weights: weights, model: model)
                    bar?.clear()
                    print(Self.samplesLine(step: step, weights: weights, fields: fields, seconds: Date().timeIntervalSince(started)))
                    fflush(stdout)
                    return fields
                }
            }
        }
        trainer.handleSignals { note in if isRoot { Console.note("\n\(ranks > 1 ? "rank 0: " : "")\(note)") } }
        let outcome = try trainer.train()
        trainer.stopHandlingSignals()
        try communicator.finish()

        let elapsed = Date().timeIntervalSince(started)
        let latest = relative(trainer.run.latestURL.path, to: cwd)
        let ckpt = relative(outcome.checkpoint.path, to: cwd)
        let resumeCommand = "wavemamba train --resume --out \(relative(runURL.path, to: cwd))"
        if outcome.timeLimited {
            print("stopped at the time limit after \(outcome.step - (trainer.resumedFrom ?? 0)) steps; resume with: \(resumeCommand)")
            print("checkpoint: \(ckpt) (step \(outcome.step) of \(recipe.train.steps), \(formatDuration(elapsed)))")
            return
        }
        if outcome.interrupted {
            print("interrupted at step \(outcome.step) of \(recipe.train.steps) after \(formatDuration(elapsed)); checkpoint: \(ckpt)")
            print("resume with: \(resumeCommand)")
            return
        }
        var summary = "done: \(outcome.step) steps in \(formatDuration(elapsed))"
        if let v = lastValidation {
            summary += String(format: "; valid %.4f bits/sample", v.bitsPerSample)
            if let f = firstValidation, f.step < v.step { summary += String(format: " (%.4f at step %d)", f.bitsPerSample, f.step) }
        }
        print(summary)
        print("checkpoint: \(ckpt) (also \(latest)\(trainer.ema != nil ? "; EMA weights in \(relative(trainer.run.latestEMAURL.path, to: cwd))" : ""))")
    }

    /// `--steps N`: the run's length; a warm-up longer than N keeps its share of the run
    /// rather than refusing a short trial run.
    static func setSteps(_ steps: Int, of recipe: inout Recipe, warn: (String) -> Void) {
        guard steps != recipe.train.steps else { return }
        if recipe.train.warmupSteps > steps {
            let warmup = recipe.train.warmupSteps * steps / recipe.train.steps
            warn("--steps \(steps) is shorter than the warm-up (\(recipe.train.warmupSteps) steps); warming up for \(warmup) steps instead")
            recipe.train.warmupSteps = warmup
        }
        recipe.train.steps = steps
    }

    /// Threads per rank when --threads is not given: the cores shared among the ranks that
    /// mpirun started on this machine.
    static func threadsPerRank(_ ranks: Int) -> Int? {
        guard ranks > 1 else { return nil }
        let local = ProcessInfo.processInfo.environment["OMPI_COMM_WORLD_LOCAL_SIZE"].flatMap(Int.init) ?? 1
        return max(1, ProcessInfo.processInfo.activeProcessorCount / max(1, local))
    }

    /// Fault injection for the tests of failure handling: `WAVEMAMBA_TEST_FAULT=RANK:STEP:ACTION`
    /// makes rank RANK, before step STEP, `exit` (status 3), `kill` itself (SIGKILL) or `hang`.
    static func injectFault(_ spec: String, rank: Int, into trainer: Trainer) {
        let parts = spec.split(separator: ":").map(String.init)
        guard parts.count == 3, let r = Int(parts[0]), let s = Int(parts[1]), r == rank else { return }
        let action = parts[2]
        trainer.beforeStep = { step in
            guard step == s else { return }
            switch action {
            case "exit": Glibc.exit(3)
            case "kill": kill(getpid(), SIGKILL)
            default: while true { sleep(3600) }
            }
        }
    }

    /// "step 200: samples (current weights): 64 clips, IS 1.52, FID 812.3, event rate 0.09 (valid 0.82), 14.1 s".
    static func samplesLine(step: Int, weights: String, fields: [(String, MetricValue)], seconds: Double) -> String {
        func number(_ key: String) -> Double? {
            guard let v = fields.first(where: { $0.0 == key })?.1 else { return nil }
            switch v { case .double(let d): return d; case .int(let i): return Double(i); default: return nil }
        }
        var parts = ["\(Int(number("clips") ?? 0)) clips"]
        if let v = number("is") { parts.append(String(format: "IS %.3f", v)) }
        if let v = number("fid") { parts.append(String(format: "FID %.1f", v)) }
        parts.append(String(format: "event rate %.2f (valid %.2f)", number("generated_event_rate") ?? .nan, number("reference_event_rate") ?? .nan))
        parts.append(String(format: "%.1f s", seconds))
        return "step \(step): samples (\(weights) weights): " + parts.joined(separator: ", ")
    }

    static func progressText(_ r: StepReport) -> String {
        String(format: "loss %.4f (%.3f bits/sample) %@ samples/s lr %.2g", r.loss, r.bitsPerSample, compact(r.samplesPerSecond), r.learningRate)
    }

    /// The data folder a run was trained on, from its newest checkpoint's metadata.
    static func recordedDataFolder(_ run: RunDirectory) -> URL? {
        guard let s = run.checkpointSteps().first,
              let f = try? SafeTensorsFile(contentsOf: Checkpoint.companionURL(run.checkpointURL(step: s))),
              let path = f.metadata["data_folder"] else { return nil }
        return URL(fileURLWithPath: path)
    }
}

/// `path` relative to `base` when it lies inside it (shorter messages), else as is.
private func relative(_ path: String, to base: URL) -> String {
    let b = base.standardizedFileURL.path
    return path.hasPrefix(b + "/") ? String(path.dropFirst(b.count + 1)) : path
}

/// 1234567 → "1,234,567".
private func grouped(_ n: Int) -> String {
    let s = String(n)
    var out = ""
    for (i, c) in s.enumerated() {
        if i > 0 && (s.count - i) % 3 == 0 { out.append(",") }
        out.append(c)
    }
    return out
}

/// 12345 → "12.3k".
private func compact(_ x: Double) -> String {
    x >= 1e6 ? String(format: "%.3gM", x / 1e6) : x >= 1e3 ? String(format: "%.3gk", x / 1e3) : String(format: "%.3g", x)
}
