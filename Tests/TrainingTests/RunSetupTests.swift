import Engine
import Foundation
import SafeTensors
import XCTest
@testable import Training

/// `RunSetup`: how `wavemamba train`'s arguments become a recipe, a run folder and a data folder.
final class RunSetupTests: XCTestCase {
    /// A checkout-like folder: recipes/mine.toml whose default_data is data/ beside it.
    func layout() throws -> (root: URL, locator: RecipeLocator) {
        let root = Fixture.scratch(self), fm = FileManager.default
        try fm.createDirectory(at: root.appendingPathComponent("recipes"), withIntermediateDirectories: true)
        try fm.createDirectory(at: root.appendingPathComponent("data"), withIntermediateDirectories: true)
        try fm.createDirectory(at: root.appendingPathComponent("other"), withIntermediateDirectories: true)
        try (RecipeTests.minimal + "\nwarmup_steps = 4\n[data]\ndefault_data = \"data\"\n").replacingOccurrences(of: "[data]\nclip_length = 1600\n", with: "")
            .write(to: root.appendingPathComponent("recipes/mine.toml"), atomically: true, encoding: .utf8)
        return (root, RecipeLocator(currentDirectory: root, executable: nil))
    }

    func message(_ body: () throws -> Void) -> String {
        do { try body(); XCTFail("expected an error"); return "" } catch { return "\(error)" }
    }

    func testNewRun() throws {
        let (root, locator) = try layout()
        let setup = try RunSetup(recipe: "mine", data: nil, out: "runs/a", resume: false, locator: locator)
        XCTAssertEqual(setup.recipe.name, "t")
        XCTAssertEqual(setup.recipeFile?.lastPathComponent, "mine.toml")
        XCTAssertEqual(setup.dataFolder.path, root.appendingPathComponent("data").path)
        XCTAssertEqual(setup.runURL.path, root.appendingPathComponent("runs/a").path)
        XCTAssertTrue(setup.warnings.isEmpty)
        let other = try RunSetup(recipe: "mine", data: "other", out: nil, resume: false, locator: locator)
        XCTAssertEqual(other.dataFolder.path, root.appendingPathComponent("other").path)
        XCTAssertTrue(other.runURL.path.hasPrefix(root.appendingPathComponent("runs/t-").path), other.runURL.path)
        XCTAssertTrue(message { _ = try RunSetup(recipe: nil, data: nil, out: nil, resume: false, locator: locator) }
            .contains("train: no recipe given; name one (mine) or pass --resume --out RUNDIR"))
    }

    func testOverridesOfStepsAndMaxTime() throws {
        let (_, locator) = try layout()
        var told: [String] = []
        let setup = try RunSetup(recipe: "mine", data: nil, out: "r", resume: false, steps: 2, maxTime: .some(90), locator: locator) { told.append($0) }
        XCTAssertEqual(setup.recipe.train.steps, 2)
        XCTAssertEqual(setup.recipe.train.warmupSteps, 0) // 4 · 2 / 10: the warm-up keeps its share
        XCTAssertEqual(setup.recipe.train.maxTime, 90)
        XCTAssertEqual(told, ["--steps 2 is shorter than the warm-up (4 steps); warming up for 0 steps instead"])
        XCTAssertEqual(setup.warnings, told)
        let off = try RunSetup(recipe: "mine", data: nil, out: "r", resume: false, maxTime: .some(nil), locator: locator)
        XCTAssertNil(off.recipe.train.maxTime)
    }

    func testResume() throws {
        let (root, locator) = try layout()
        XCTAssertTrue(message { _ = try RunSetup(recipe: nil, data: nil, out: nil, resume: true, locator: locator) }
            .contains("--resume: needs the run folder to continue"))
        XCTAssertTrue(message { _ = try RunSetup(recipe: nil, data: nil, out: "other", resume: true, locator: locator) }
            .contains("not a run folder (no recipe.toml)"))
        // A run folder whose recipe.toml came from mine.toml.
        let run = RunDirectory(root.appendingPathComponent("runs/a"))
        try FileManager.default.createDirectory(at: run.root, withIntermediateDirectories: true)
        var saved = try RecipeParser.load(try locator.locate("mine"))
        try saved.tomlText.write(to: run.recipeURL, atomically: true, encoding: .utf8)
        let own = try RunSetup(recipe: nil, data: nil, out: "runs/a", resume: true, locator: locator)
        XCTAssertEqual(own.recipe, saved)
        XCTAssertNil(own.recipeFile)
        XCTAssertEqual(own.runURL.path, run.root.path)
        XCTAssertEqual(own.dataFolder.path, root.appendingPathComponent("data").path) // no checkpoint: the default
        // The named recipe may differ in resumable keys only; each difference is a warning.
        saved.train.lr = 1e-3
        saved.train.recompute = .blocks
        try saved.tomlText.write(to: run.recipeURL, atomically: true, encoding: .utf8)
        var told: [String] = []
        let named = try RunSetup(recipe: "mine", data: "other", out: "runs/a", resume: true, locator: locator) { told.append($0) }
        XCTAssertEqual(told.first, "resuming with [train] lr: 0.001 → 0.002")
        XCTAssertEqual(told.count, 2)
        XCTAssertTrue(told.last!.hasPrefix("resuming with [train] recompute: "), told.last!)
        XCTAssertEqual(named.recipe.train.recompute, .none)
        saved.train.recompute = .none
        XCTAssertEqual(named.recipe.train.lr, 2e-3)
        XCTAssertEqual(named.dataFolder.path, root.appendingPathComponent("other").path)
        saved.train.batchSize = 3
        try saved.tomlText.write(to: run.recipeURL, atomically: true, encoding: .utf8)
        let refused = message { _ = try RunSetup(recipe: "mine", data: nil, out: "runs/a", resume: true, locator: locator) }
        XCTAssertTrue(refused.contains("differs from the run's recipe (\(run.recipeURL.path)) in [train] batch_size: 3 → 16"), refused)
        XCTAssertTrue(refused.contains("resume without naming a recipe (the run's own is used), or start a new run"), refused)
    }

    /// A resumed run keeps the data folder recorded in its newest checkpoint.
    func testResumeUsesTheRecordedDataFolder() throws {
        let (root, locator) = try layout()
        let run = RunDirectory(root.appendingPathComponent("runs/b"))
        try FileManager.default.createDirectory(at: run.checkpointsURL, withIntermediateDirectories: true)
        try (try RecipeParser.load(try locator.locate("mine"))).tomlText.write(to: run.recipeURL, atomically: true, encoding: .utf8)
        let store = ParameterStore(backend: CPUBackend(threads: 1))
        _ = store.add("w", shape: [2], values: [1, 2])
        store.finalize()
        let checkpoint = run.checkpointURL(step: 5)
        try Checkpoint.saveWeights(store, to: checkpoint, metadata: [:])
        try Checkpoint.saveWeights(store, to: Checkpoint.companionURL(checkpoint), metadata: ["data_folder": root.appendingPathComponent("other").path])
        XCTAssertEqual(RunSetup.recordedDataFolder(run)?.path, root.appendingPathComponent("other").path)
        let setup = try RunSetup(recipe: nil, data: nil, out: "runs/b", resume: true, locator: locator)
        XCTAssertEqual(setup.dataFolder.path, root.appendingPathComponent("other").path)
    }
}
