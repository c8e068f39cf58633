import Engine
import Foundation
import SafeTensors

/// What a `train` call works on, resolved from its arguments: the recipe (with the command
/// line's overrides applied), the recipe file it came from, the run folder and the data folder.
///
/// A new run needs a recipe (a name or a path, `RecipeLocator`); its run folder is `out` or
/// `runs/NAME-TIMESTAMP`, its data folder `data` or the recipe's `[data] default_data`.
/// Resuming (`resume`) needs the run folder (`out`) and uses the recipe saved in it; a recipe
/// named as well may differ from it only in `Recipe.resumableKeys` (each difference becomes a
/// warning). The data folder of a resumed run is `data`, else the one recorded in its newest
/// checkpoint, else the recipe's default.
public struct RunSetup: Sendable {
    public var recipe: Recipe
    /// The recipe file named on the command line; nil when resuming with the run's own recipe.
    public var recipeFile: URL?
    public var runURL: URL
    public var dataFolder: URL
    /// What `warn` was told (resumable keys that changed, a shortened warm-up), in order.
    public var warnings: [String] = []

    /// Resolves a `train` call's arguments (see the type's description).
    ///   - steps: `--steps`, overriding `[train] steps` (a warm-up longer than that keeps its share of the run).
    ///   - maxTime: `--max-time`: nil when not given, `.some(nil)` for `off` (the limit removed).
    ///   - warn: told each warning as it arises (before a later error, if any).
    public init(recipe name: String?, data: String?, out: String?, resume: Bool, steps: Int? = nil, maxTime: Double?? = nil,
                locator: RecipeLocator = RecipeLocator(), warn: (String) -> Void = { _ in }) throws {
        var warnings: [String] = []
        func note(_ message: String) { warnings.append(message); warn(message) }
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
            if let name {
                let file = try locator.locate(name)
                recipeFile = file
                recipe = try RecipeParser.load(file)
                let changes = recipe.changes(from: saved)
                let fixed = changes.filter { !Recipe.resumableKeys.contains($0.key) }
                if !fixed.isEmpty {
                    throw TrainingError(path: file.path,
                                        "differs from the run's recipe (\(run.recipeURL.path)) in \(fixed.map(\.description).joined(separator: "; "))",
                                        fix: "resume without naming a recipe (the run's own is used), or start a new run")
                }
                for c in changes { note("resuming with \(c)") }
            }
            if let data {
                dataFolder = try locator.dataFolder(for: recipe, recipeFile: recipeFile, override: data)
            } else if let folder = Self.recordedDataFolder(run) {
                dataFolder = folder
            } else {
                dataFolder = try locator.dataFolder(for: recipe, recipeFile: recipeFile, override: nil)
            }
        } else {
            guard let name else {
                throw TrainingError(path: "train", "no recipe given",
                                    fix: "name one (\(locator.available.joined(separator: ", "))) or pass --resume --out RUNDIR")
            }
            let file = try locator.locate(name)
            recipeFile = file
            recipe = try RecipeParser.load(file)
            dataFolder = try locator.dataFolder(for: recipe, recipeFile: file, override: data)
            runURL = out.map(locator.resolve)
                ?? RunDirectory.defaultURL(recipe: recipe.name, base: locator.currentDirectory)
        }
        if let steps { Self.setSteps(steps, of: &recipe, note: note) }
        if let maxTime { recipe.train.maxTime = maxTime }
        self.warnings = warnings
    }

    /// `--steps N`: the run's length; a warm-up longer than N keeps its share of the run
    /// rather than refusing a short trial run.
    public static func setSteps(_ steps: Int, of recipe: inout Recipe, note: (String) -> Void) {
        guard steps != recipe.train.steps else { return }
        if recipe.train.warmupSteps > steps {
            let warmup = recipe.train.warmupSteps * steps / recipe.train.steps
            note("--steps \(steps) is shorter than the warm-up (\(recipe.train.warmupSteps) steps); warming up for \(warmup) steps instead")
            recipe.train.warmupSteps = warmup
        }
        recipe.train.steps = steps
    }

    /// The data folder a run was trained on, from its newest checkpoint's metadata.
    public static func recordedDataFolder(_ run: RunDirectory) -> URL? {
        guard let s = run.checkpointSteps().first,
              let f = try? SafeTensorsFile(contentsOf: Checkpoint.companionURL(run.checkpointURL(step: s))),
              let path = f.metadata["data_folder"] else { return nil }
        return URL(fileURLWithPath: path)
    }
}
