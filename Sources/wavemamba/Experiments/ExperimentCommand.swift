import ArgumentParser
import AudioIO
import Engine
import Foundation
import Models
import SafeTensors
import Training

enum ExperimentName: String, ExpressibleByArgument, CaseIterable {
    case ablation, length, memory, context
}

struct ExperimentCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "experiment",
        abstract: "Run one of the paper's experiments: ablation, length, memory or context (see docs/experiments.md).",
        discussion: """
        ablation: the outer × center grid of block types {mamba, s4d, mha} in one U-Net (the \
        Mamba paper's Table 5), plus Fig. 10's non-selective Mamba (mamba-lti) in the outer \
        stages, the center or both: parameters, test NLL, FID, IS, mIS, AM, event rate. \
        length: models trained at one length scored at 1, 2, 4 and 8 times it, with the NLL by \
        position. memory: peak memory and time of a training step and the step state's memory \
        in generation against the sequence length, with each block type's growth exponent. \
        context: training lengths from 8192 up at a fixed number of samples per batch on a \
        piano corpus, Mamba against S4D + FF (Fig. 7).

        Each writes OUT/results.json, OUT/results.md and OUT/plot.png. Trained cells are normal \
        run folders under OUT/cells/ made by the training code of `wavemamba train`; each cell's \
        results are recorded in results.json as it finishes. Running the same command again \
        continues a stopped experiment (Ctrl-C, --max-time, a crash): recorded cells are not \
        run again and a cell stopped mid-training resumes from its newest checkpoint. \
        --quick runs a tiny version on the bundled corpora on the CPU in seconds.
        """)

    @Argument(help: "ablation, length, memory or context.")
    var name: ExperimentName

    @Option(help: "Data folder (default: the recipe's [data] default_data; with --quick Assets/digits, or Assets/piano for context).")
    var data: String?

    @Option(help: "Base recipe (default: sc09-mamba-small; youtubemix-mamba for context). Ignored with --quick.")
    var recipe: String?

    @Option(help: "Training steps of every cell (default: the recipe's; --quick: 4).")
    var steps: Int?

    @Option(name: .customLong("max-time"),
            help: "Wall-clock limit of this session (e.g. 90s, 9m, 1h30m): the cell in training stops with a checkpoint and the command exits; run it again to continue.")
    var maxTime: String?

    @Option(help: "Experiment folder (default: runs/experiment-NAME, runs/experiment-NAME-quick with --quick).")
    var out: String?

    @Flag(help: "A tiny version on the bundled corpora (CPU, seconds).")
    var quick = false

    @Option(help: "ablation: clips generated per cell for FID / IS / mIS / AM / event rate (default 256; --quick 4).")
    var clips: Int?

    @Option(help: "Test clips scored per cell (spread evenly over the test split; default: all, --quick: 8).")
    var nllClips: Int?

    @Option(help: "Worker threads (default: all cores).")
    var threads: Int?

    @OptionGroup var deviceOptions: DeviceOptions

    func validate() throws {
        if let steps, steps < 1 { throw ValidationError("--steps must be at least 1") }
        if let clips, clips < 2 { throw ValidationError("--clips must be at least 2") }
        if let nllClips, nllClips < 1 { throw ValidationError("--nll-clips must be at least 1") }
    }

    func run() throws {
        do {
            try runExperiment()
        } catch let e as ExperimentStopped {
            print("stopped by \(e.reason); run the same command again to continue")
        } catch let e as ExitCode {
            throw e
        } catch {
            switch error {
            case let e as TrainingError: Console.error(e.description)
            case let e as AudioIOError: Console.error(e.description)
            case let e as SafeTensorsError: Console.error(e.description)
            default: Console.error("\(error)")
            }
            throw ExitCode(1)
        }
    }

    private func runExperiment() throws {
        let locator = RecipeLocator()
        let noLimit = maxTime.map { ["off", "none"].contains($0.lowercased()) } ?? false
        let seconds = noLimit ? nil : try maxTime.map { try DurationText.parse($0, key: "--max-time", path: "") }
        let deadline = seconds.map { ExperimentFolder.now() + $0 }
        let root = out.map(locator.resolve)
            ?? locator.currentDirectory.appendingPathComponent("runs/experiment-\(name.rawValue)\(quick ? "-quick" : "")")
        let setup = ExperimentSetup(quick: quick, locator: locator, data: data, recipe: recipe, steps: steps)
        let backend = try deviceOptions.makeBackend(threads: threads)
        let folder = try ExperimentFolder(root: root, experiment: name.rawValue, quick: quick, backend: backend, deadline: deadline)
        print("experiment \(name.rawValue)\(quick ? " (quick)" : "") in \(root.path) on \(describeBackend(backend))")
        let experiment: any Experiment
        switch name {
        case .ablation:
            experiment = try AblationExperiment(setup: setup, backend: backend, clips: clips ?? (quick ? 4 : 256), nllClips: nllClips ?? (quick ? 8 : Int.max))
        case .length:
            experiment = try LengthExperiment(setup: setup, backend: backend, nllClips: nllClips ?? (quick ? 4 : Int.max))
        case .memory:
            experiment = try MemoryExperiment(setup: setup, backend: backend)
        case .context:
            experiment = try ContextExperiment(setup: setup, backend: backend, nllClips: nllClips ?? (quick ? 8 : Int.max))
        }
        try folder.run(experiment)
        print("done: \(experiment.cells.count) cells; wrote \(folder.resultsURL.path), \(folder.markdownURL.path), \(folder.plotURL.path)")
    }
}

/// Recipes and data of an experiment: a tiny recipe built here with --quick, else a recipe file.
struct ExperimentSetup {
    var quick: Bool
    var locator: RecipeLocator
    var data: String?
    var recipe: String?
    var steps: Int?

    /// The base recipe: the tiny one with --quick, else `--recipe` or `defaultName`; `--steps`
    /// applied as `train --steps` applies it.
    func baseRecipe(defaultName: String, quickName: String) throws -> (recipe: Recipe, file: URL?) {
        var r: Recipe, file: URL?
        if quick {
            r = Self.quickRecipe(name: quickName)
        } else {
            file = try locator.locate(recipe ?? defaultName)
            r = try RecipeParser.load(file!)
        }
        if let steps { RunSetup.setSteps(steps, of: &r) { Console.warning($0) } }
        return (r, file)
    }

    /// `--data`, else with --quick the bundled corpus (found from the current directory or the
    /// checkout the binary was built in), else the recipe's default_data.
    func dataFolder(_ recipe: Recipe, file: URL?, quickCorpus: String) throws -> URL {
        if data == nil && quick {
            let candidates = [locator.currentDirectory.appendingPathComponent(quickCorpus)]
                + (locator.executableRepository.map { [$0.appendingPathComponent(quickCorpus)] } ?? [])
            guard let found = candidates.first(where: { FileManager.default.fileExists(atPath: $0.path) }) else {
                throw TrainingError(path: quickCorpus, "the bundled corpus was not found (looked at \(candidates.map(\.path).joined(separator: ", ")))",
                                    fix: "pass --data DIR, or run from the repository root")
            }
            return found
        }
        return try locator.dataFolder(for: recipe, recipeFile: file, override: data)
    }

    /// The tiny model and protocol of --quick: digits-tiny's U-Net shape shrunk to d_model 8,
    /// one layer per stage and 256-sample clips at 8 kHz; 4 steps of batch 2, checkpoints
    /// every 2 steps (so a stopped cell resumes).
    static func quickRecipe(name: String) -> Recipe {
        var r = Recipe(name: name)
        r.description = "experiment --quick: a tiny U-Net on a bundled corpus (CPU, seconds)"
        r.data.sampleRate = 8000
        r.data.clipLength = 256
        r.data.shortFiles = .pad
        r.data.memoryBudgetMB = 256
        r.model.backbone = .unet
        r.model.dModel = 8
        r.model.nLayers = 1
        r.model.pool = [4, 4]
        r.model.expand = 2
        r.model.ff = 2
        r.model.outer = .mamba
        r.model.center = .mamba
        r.model.dState = 4
        r.model.s4dState = 8
        r.model.mhaHeads = 2
        r.train.batchSize = 2
        r.train.steps = 4
        r.train.warmupSteps = 0
        r.train.betas = [0.9, 0.95]
        r.train.validateEvery = 0
        r.train.validationBatches = 1
        r.train.checkpointEvery = 2
        r.train.logEvery = 1
        r.train.sampleClips = 4
        return r
    }

    /// The fields of results.json's protocol that describe a recipe.
    static func describe(_ r: Recipe, data: URL) -> [String: Any] {
        let m = r.model
        return [
            "recipe": r.name, "data": data.path, "sample_rate": r.data.sampleRate, "clip_length": r.data.clipLength,
            "backbone": m.backbone.rawValue, "d_model": m.dModel, "n_layers": m.nLayers, "pool": m.pool, "expand": m.expand, "ff": m.ff,
            "d_state": m.dState, "s4d_state": m.s4dState, "mha_heads": m.mhaHeads,
            "steps": r.train.steps, "batch_size": r.train.batchSize, "lr": r.train.lr, "seed": r.train.seed,
        ]
    }
}
