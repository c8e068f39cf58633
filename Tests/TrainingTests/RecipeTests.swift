import Engine
import Foundation
import Models
import XCTest
@testable import Training

final class RecipeTests: XCTestCase {
    static let minimal = """
    name = "t"
    [data]
    clip_length = 1600
    [model]
    pool = [4, 4]
    [train]
    steps = 10
    """

    func parseError(_ text: String, file: StaticString = #filePath, line: UInt = #line) -> String {
        do {
            _ = try RecipeParser.parse(text, path: "recipes/x.toml")
            XCTFail("expected an error for:\n\(text)", file: file, line: line)
            return ""
        } catch let e as TrainingError {
            XCTAssertEqual(e.path, "recipes/x.toml", file: file, line: line)
            return e.description
        } catch {
            XCTFail("unexpected error \(error)", file: file, line: line)
            return ""
        }
    }

    func recipeFiles() throws -> [URL] {
        let folder = Fixture.repository.appendingPathComponent("recipes")
        return try FileManager.default.contentsOfDirectory(at: folder, includingPropertiesForKeys: nil)
            .filter { $0.pathExtension == "toml" }.sorted { $0.path < $1.path }
    }

    /// Every shipped recipe parses, is named like its file, has a valid shape, and survives
    /// the round trip through the resolved TOML written into run folders.
    func testShippedRecipesParseAndRoundTrip() throws {
        let files = try recipeFiles()
        let names = Set(files.map { $0.deletingPathExtension().lastPathComponent })
        for expected in ["sc09-mamba-small", "sc09-mamba-large", "sc09-sashimi", "youtubemix-mamba", "piano-tiny", "digits-tiny"] {
            XCTAssertTrue(names.contains(expected), "recipes/\(expected).toml is missing")
        }
        for f in files {
            let r = try RecipeParser.load(f)
            XCTAssertEqual(r.name, f.deletingPathExtension().lastPathComponent, "\(f.lastPathComponent): name differs from the file name")
            XCTAssertFalse(r.description.isEmpty, "\(f.lastPathComponent) has no description")
            XCTAssertNotNil(r.data.defaultData, "\(f.lastPathComponent) has no default_data")
            XCTAssertEqual(r.data.clipLength % r.model.totalPool, 0)
            let again = try RecipeParser.parse(r.tomlText, path: "resolved.toml")
            XCTAssertEqual(again, r, "\(f.lastPathComponent): the resolved TOML does not parse back to the same recipe")
            XCTAssertTrue(r.changes(from: again).isEmpty)
        }
    }

    /// The recipes' sizes, exactly, and the paper's SC09 models within 3 % of what the Mamba paper
    /// reports (Table 4: 6.1M and 24.3M for SC09; E.4.1: about 3.5M for YouTubeMix). These are
    /// state-spaces/s4's `unet.py` layout; `sashimi.py`'s (no down-stage blocks) gives 5.1M and
    /// 20.1M for the real SC09 models.
    func testPaperRecipeSizes() throws {
        let folder = Fixture.repository.appendingPathComponent("recipes")
        var rows: [String] = []
        // YouTubeMix: the paper says "about 3.5M"; its pooling layers alone are 1.3M of these.
        let sizes: [(String, Int, Double?, Double)] = [
            ("sc09-mamba-small", 6_260_224, 6.1e6, 0.03), ("sc09-mamba-large", 24_865_408, 24.3e6, 0.03),
            ("sc09-mamba-small-complex", 6_751_744, nil, 0), ("sc09-mamba-large-complex", 26_247_808, nil, 0),
            ("youtubemix-mamba", 3_743_488, 3.5e6, 0.08),
            ("sc09-sashimi", 6_185_472, nil, 0), ("digits-tiny", 461_184, nil, 0), ("piano-tiny", 461_184, nil, 0),
        ]
        for (name, expected, paper, tolerance) in sizes {
            let r = try RecipeParser.load(folder.appendingPathComponent(name + ".toml"))
            let n = SaShiMi(config: r.model, backend: CPUBackend(threads: 1), seed: 0).parameterCount
            rows.append("\(name): \(n) parameters")
            XCTAssertEqual(n, expected, name)
            if let paper {
                XCTAssertLessThanOrEqual(abs(Double(n) / paper - 1), tolerance, "\(name): \(n) is not within \(tolerance) of the paper's \(paper)")
            }
        }
        print(rows.joined(separator: "\n"))
    }

    func testDefaultsAndValues() throws {
        let r = try RecipeParser.parse(Self.minimal + "\nlr = 1\nbetas = [0.9, 0.95]\n", path: "recipes/t.toml")
        XCTAssertEqual(r.name, "t")
        XCTAssertEqual(r.data.clipLength, 1600)
        XCTAssertEqual(r.train.lr, 1) // an integer is accepted for a float key
        XCTAssertEqual(r.train.betas, [0.9, 0.95])
        XCTAssertEqual(r.model.dModel, SaShiMiConfig().dModel)
        let unnamed = try RecipeParser.parse("[train]\nsteps = 3\n", path: "some/where/my-run.toml")
        XCTAssertEqual(unnamed.name, "my-run")
    }

    func testUnknownKeysNameTheKey() {
        XCTAssertEqual(parseError(Self.minimal + "\nlr_max = 0.1\n"),
                       "recipes/x.toml: [train] unknown key 'lr_max'; did you mean 'lr'? known keys: batch_size, betas, checkpoint_every, ema, final_lr_fraction, grad_clip, log_every, lr, max_time, recompute, sample_clips, sample_every, sample_seconds, schedule, seed, ssm_lr, ssm_weight_decay, steps, validate_every, validation_batches, warmup_steps, weight_decay")
        XCTAssertTrue(parseError(Self.minimal + "\n[optim]\nlr = 1\n").contains("unknown key 'optim'"))
        XCTAssertTrue(parseError("[model]\nd_modle = 3\n").contains("[model] unknown key 'd_modle'; did you mean 'd_model'?"))
        XCTAssertTrue(parseError("[data]\nfolder = \"x\"\n").contains("[data] unknown key 'folder'"))
    }

    /// An mha stage needs heads that divide every stage width it may sit at.
    func testAttentionHeadsMustDivideTheWidths() {
        let message = parseError("[model]\nd_model = 48\nouter = \"mha\"\nmha_heads = 32\n[data]\nclip_length = 1600\n")
        XCTAssertTrue(message.contains("[model] mha_heads 32 does not divide the stage width 48"), message)
        XCTAssertNoThrow(try RecipeParser.parse("[model]\nd_model = 64\ncenter = \"mha\"\nmha_heads = 16\n[data]\nclip_length = 1600\n", path: "x.toml"))
    }

    func testBadValuesNameTheKey() {
        XCTAssertTrue(parseError("[model]\npool = [4, 1]\n").contains("[model] pool must be a list of integers ≥ 2 (e.g. [4, 4]), got [4, 1]"))
        XCTAssertTrue(parseError("[model]\npool = 4\n").contains("[model] pool must be a list of integers ≥ 2"))
        XCTAssertTrue(parseError("[model]\nouter = \"transformer\"\n").hasSuffix("[model] outer must be one of \"mamba-complex\" | \"mamba\" | \"mamba-lti\" | \"s4d\" | \"mha\", got \"transformer\""))
        XCTAssertTrue(parseError("[data]\nquantization = \"alaw\"\n").contains("[data] quantization must be one of \"mulaw\" | \"linear\""))
        XCTAssertTrue(parseError("[data]\nlayout = \"sc10\"\n").contains("[data] layout must be one of"))
        XCTAssertTrue(parseError("[train]\nbatch_size = 0\n").contains("[train] batch_size must be an integer in 1…65536, got 0"))
        XCTAssertTrue(parseError("[train]\nsteps = 1.5\n").contains("[train] steps must be an integer ≥ 1, got 1.5"))
        XCTAssertTrue(parseError("[train]\nlr = -1e-3\n").contains("[train] lr must be a positive number"))
        XCTAssertTrue(parseError("[train]\nlr = \"fast\"\n").contains("got \"fast\""))
        XCTAssertTrue(parseError("[train]\nschedule = \"linear\"\n").contains("[train] schedule must be one of \"cosine\" | \"constant\""))
        XCTAssertTrue(parseError("[train]\nema = 1.0\n").contains("[train] ema must be 0 (off) or a decay in (0, 1)"))
        XCTAssertTrue(parseError("[train]\nbetas = [0.9]\n").contains("[train] betas must be two numbers"))
        XCTAssertTrue(parseError("[train]\nsteps = 10\nwarmup_steps = 20\n").contains("[train] warmup_steps 20 exceeds steps 10"))
        XCTAssertTrue(parseError("[data]\nvalid_fraction = 0.6\ntest_fraction = 0.5\n").contains("leaves nothing to train on"))
        XCTAssertTrue(parseError("name = 3\n").contains("name must be a non-empty string, got 3"))
        XCTAssertTrue(parseError("data = 3\n").contains("data must be a table ([data]), got 3"))
    }

    /// The non-selective Mamba block: the paper's names and near spellings point to
    /// "mamba-lti"; the exact size of a tiny unet of it, and what it drops against `mamba`
    /// (per block of width H: x_proj's 2H·(R + 2N) and dt_proj's weight 2H·R, less B and C's 2N;
    /// dt_bias takes dt_proj.bias's place).
    func testMambaLTIRecipes() throws {
        XCTAssertEqual(parseError("[model]\ncenter = \"mamba-s4\"\n"),
                       "recipes/x.toml: [model] center must be one of \"mamba-complex\" | \"mamba\" | \"mamba-lti\" | \"s4d\" | \"mha\", got \"mamba-s4\"; "
                       + "the Mamba paper's Mamba-S4 (no selection: Δ, B, C are parameters, not functions of the input) is \"mamba-lti\"")
        XCTAssertTrue(parseError("[model]\nouter = \"mamba_lti\"\n").hasSuffix("got \"mamba_lti\"; did you mean \"mamba-lti\"?"))
        XCTAssertTrue(parseError("[model]\nouter = \"Mamba-S6\"\n").hasSuffix("the Mamba paper's Mamba-S6 (selective) is \"mamba\", or \"mamba-complex\" with complex A, B, C"))
        XCTAssertTrue(parseError("[model]\nouter = \"mamba-lti-complex\"\n").hasSuffix("got \"mamba-lti-complex\""), "no near spelling: no fix")
        let tiny = "[model]\nbackbone = \"unet\"\nd_model = 32\nn_layers = 2\npool = [4, 4]\nouter = \"KIND\"\ncenter = \"KIND\"\n[data]\nclip_length = 1600\n"
        func count(_ kind: String) throws -> Int {
            let r = try RecipeParser.parse(tiny.replacingOccurrences(of: "KIND", with: kind), path: "t.toml")
            return SaShiMi(config: r.model, backend: CPUBackend(threads: 1), seed: 0).parameterCount
        }
        let lti = try count("mamba-lti"), selective = try count("mamba")
        XCTAssertEqual(lti, 449_728)
        // Four blocks of width 32 (R 2), four of 64 (R 4), two of 128 (R 8); N = 16.
        XCTAssertEqual(selective - lti, 4 * 2_272 + 4 * 5_088 + 2 * 12_256)
        // The ablation's Fig. 10 cells in sc09-mamba-small (docs/experiments.md): Mamba / Mamba has 6 260 224.
        var r = try RecipeParser.load(Fixture.repository.appendingPathComponent("recipes/sc09-mamba-small.toml"))
        for (outer, center, expected) in [(BlockKind.mambaLTI, BlockKind.mambaLTI, 5_720_832), (.mambaLTI, .mamba, 5_982_720), (.mamba, .mambaLTI, 5_998_336)] {
            (r.model.outer, r.model.center) = (outer, center)
            XCTAssertEqual(SaShiMi(config: r.model, backend: CPUBackend(threads: 1), seed: 0).parameterCount, expected, "\(outer) / \(center)")
        }
    }

    /// `[train] max_time` and `--max-time`: h / m / s pairs in that order, decimals allowed;
    /// anything else is an error naming the key, and the value round-trips through recipe.toml.
    func testDurationSyntax() throws {
        let good: [(String, Double)] = [("90s", 90), ("9m", 540), ("1h30m", 5400), ("2.5h", 9000), ("1h 5m 30s", 3930), ("0.5s", 0.5), ("10M", 600), ("1e-06s", 1e-6), ("1.5e3s", 1500)]
        for (text, seconds) in good {
            XCTAssertEqual(DurationText.seconds(text), seconds, text)
            XCTAssertEqual(DurationText.seconds(DurationText.format(seconds)), seconds, DurationText.format(seconds))
        }
        XCTAssertEqual(DurationText.format(5400), "1h30m")
        XCTAssertEqual(DurationText.format(90), "1m30s")
        for bad in ["", "9", "m", "9x", "1m1h", "1h1h", "-5m", "0s", "1.2.3s", "h30m", "9 minutes", "1e-s", "e5s"] {
            XCTAssertNil(DurationText.seconds(bad), bad)
        }
        XCTAssertThrowsError(try DurationText.parse("9x", key: "--max-time", path: "")) {
            XCTAssertTrue("\($0)".hasPrefix("--max-time must be a positive duration such as \"90s\", \"9m\", \"1h30m\" or \"2.5h\", got \"9x\""), "\($0)")
        }
        XCTAssertTrue(parseError("[train]\nmax_time = \"9x\"\n").contains("[train] max_time must be a positive duration such as \"90s\", \"9m\", \"1h30m\" or \"2.5h\", got \"9x\""))
        XCTAssertTrue(parseError("[train]\nmax_time = 90\n").contains("[train] max_time must be a duration string such as \"90s\""))
        let recipe = try RecipeParser.parse(Self.minimal + "\nmax_time = \"2.5h\"\n", path: "t.toml")
        XCTAssertEqual(recipe.train.maxTime, 9000)
        XCTAssertTrue(recipe.tomlText.contains("max_time = \"2h30m\""), recipe.tomlText)
        XCTAssertEqual(try RecipeParser.parse(recipe.tomlText, path: "t.toml"), recipe)
        XCTAssertNil(try RecipeParser.parse(Self.minimal, path: "t.toml").train.maxTime)
        XCTAssertFalse(try RecipeParser.parse(Self.minimal, path: "t.toml").tomlText.contains("max_time"))
    }

    func testClipLengthMustBeAMultipleOfThePooling() {
        let message = parseError("[data]\nclip_length = 1000\n[model]\npool = [4, 4, 4]\n")
        XCTAssertEqual(message, "recipes/x.toml: [data] clip_length 1000 is not a multiple of the pooling product 64 ([model] pool = [4, 4, 4]); use a multiple of 64, e.g. 960 or 1024")
        XCTAssertNoThrow(try RecipeParser.parse("[data]\nclip_length = 1024\n[model]\npool = [4, 4, 4]\n", path: "x.toml"))
    }

    func testSyntaxErrorNamesTheLine() {
        let message = parseError("name = \"a\"\n[train\nsteps = 3\n")
        XCTAssertTrue(message.hasPrefix("recipes/x.toml: line 2"), message)
    }

    func testLocatorFindsNamesAndPaths() throws {
        let root = Fixture.scratch(self)
        try FileManager.default.createDirectory(at: root.appendingPathComponent("recipes"), withIntermediateDirectories: true)
        try Self.minimal.write(to: root.appendingPathComponent("recipes/mine.toml"), atomically: true, encoding: .utf8)
        try Self.minimal.write(to: root.appendingPathComponent("other.toml"), atomically: true, encoding: .utf8)
        let locator = RecipeLocator(currentDirectory: root, executable: nil)
        XCTAssertEqual(try locator.locate("mine").path, root.appendingPathComponent("recipes/mine.toml").standardizedFileURL.path)
        XCTAssertEqual(try locator.locate("other.toml").lastPathComponent, "other.toml")
        XCTAssertEqual(locator.available, ["mine"])
        XCTAssertThrowsError(try locator.locate("nope")) { e in
            let text = "\(e)"
            XCTAssertTrue(text.contains("no recipe of that name") && text.contains("use one of mine"), text)
        }
        XCTAssertThrowsError(try locator.locate("missing.toml")) { XCTAssertTrue("\($0)".contains("no such recipe file")) }
        // The executable's checkout: .build/debug/wavemamba → the folder with Package.swift and recipes/.
        let exe = root.appendingPathComponent(".build/debug/wavemamba")
        try FileManager.default.createDirectory(at: exe.deletingLastPathComponent(), withIntermediateDirectories: true)
        try "".write(to: root.appendingPathComponent("Package.swift"), atomically: true, encoding: .utf8)
        let elsewhere = RecipeLocator(currentDirectory: FileManager.default.temporaryDirectory, executable: exe)
        XCTAssertEqual(try elsewhere.locate("mine").lastPathComponent, "mine.toml")
    }

    func testDefaultDataIsFoundBesideTheRecipesFolder() throws {
        let root = Fixture.scratch(self)
        let fm = FileManager.default
        try fm.createDirectory(at: root.appendingPathComponent("recipes"), withIntermediateDirectories: true)
        try fm.createDirectory(at: root.appendingPathComponent("Assets/x"), withIntermediateDirectories: true)
        var r = try RecipeParser.parse(Self.minimal, path: "t.toml")
        r.data.defaultData = "Assets/x"
        let file = root.appendingPathComponent("recipes/t.toml")
        let locator = RecipeLocator(currentDirectory: fm.temporaryDirectory, executable: nil)
        XCTAssertEqual(try locator.dataFolder(for: r, recipeFile: file, override: nil).path, root.appendingPathComponent("Assets/x").path)
        XCTAssertThrowsError(try locator.dataFolder(for: r, recipeFile: nil, override: nil)) {
            XCTAssertTrue("\($0)".contains("default_data 'Assets/x' is not a folder") && "\($0)".contains("pass --data DIR"))
        }
        XCTAssertThrowsError(try locator.dataFolder(for: r, recipeFile: file, override: "/nonexistent/folder")) {
            XCTAssertTrue("\($0)".contains("no such data folder"))
        }
        r.data.defaultData = nil
        XCTAssertThrowsError(try locator.dataFolder(for: r, recipeFile: file, override: nil)) {
            XCTAssertTrue("\($0)".contains("has no [data] default_data"))
        }
    }

    func testChangesSeparateResumableKeys() throws {
        let a = try RecipeParser.parse(Self.minimal, path: "t.toml")
        var b = a
        b.train.lr = 1e-4
        b.model.dModel = 32
        let changes = b.changes(from: a)
        XCTAssertEqual(changes.map(\.key), ["[model] d_model", "[train] lr"])
        XCTAssertEqual(changes.filter { !Recipe.resumableKeys.contains($0.key) }.map(\.key), ["[model] d_model"])
        XCTAssertEqual(changes[1].description, "[train] lr: 0.002 → 0.0001")
        var c = a
        c.train.maxTime = 540
        XCTAssertEqual(c.changes(from: a).map(\.key), ["[train] max_time"])
        XCTAssertTrue(Recipe.resumableKeys.contains("[train] max_time"))
        for key in ["sample_every", "sample_clips", "sample_seconds"] { XCTAssertTrue(Recipe.resumableKeys.contains("[train] \(key)"), key) }
        let sampled = try RecipeParser.parse(Self.minimal + "\nsample_every = 200\nsample_clips = 16\nsample_seconds = 0.5\n", path: "t.toml")
        XCTAssertEqual([sampled.train.sampleEvery, sampled.train.sampleClips], [200, 16])
        XCTAssertEqual(sampled.train.sampleSeconds, 0.5)
        XCTAssertEqual(try RecipeParser.parse(sampled.tomlText, path: "t.toml"), sampled)
        XCTAssertTrue(parseError("[train]\nsample_clips = 1\n").contains("[train] sample_clips must be an integer in 2…65536, got 1"))
    }

    /// `[train] recompute` changes what the tape keeps, not the gradients: it may change on resume.
    func testRecomputeKeyIsResumable() throws {
        let a = try RecipeParser.parse(Self.minimal, path: "t.toml")
        XCTAssertEqual(a.train.recompute, .none)
        let b = try RecipeParser.parse(Self.minimal + "\nrecompute = \"blocks\"\n", path: "t.toml")
        XCTAssertEqual(b.train.recompute, .blocks)
        XCTAssertEqual(b.changes(from: a).map(\.key), ["[train] recompute"])
        XCTAssertTrue(Recipe.resumableKeys.contains("[train] recompute"))
        XCTAssertEqual(try RecipeParser.parse(b.tomlText, path: "t.toml"), b)
        XCTAssertTrue(parseError("[train]\nrecompute = \"all\"\n").contains("[train] recompute must be one of \"none\" | \"blocks\""))
    }

    /// The one table of keys drives parsing, writing and resume checks: every key once, with help
    /// text, written by `tomlText`, and the resumable ones exactly the keys that may change.
    func testSchemaTableListsEveryKeyOnce() throws {
        let keys = RecipeSchema.fields.map(\.qualifiedKey)
        XCTAssertEqual(keys.count, Set(keys).count, "a key is listed twice")
        for f in RecipeSchema.fields { XCTAssertFalse(f.help.isEmpty, "\(f.qualifiedKey) has no help text") }
        var r = try RecipeParser.parse(Self.minimal, path: "t.toml")
        r.description = "d"
        r.data.defaultData = "x"
        r.train.maxTime = 60
        r.train.sampleSeconds = 1
        XCTAssertEqual(Set(r.keyValues.keys), Set(keys))
        XCTAssertEqual(Recipe.resumableKeys, [
            "name", "description", "[data] default_data", "[data] memory_budget_mb", "[model] scan_chunk", "[model] dropout",
            "[train] steps", "[train] lr", "[train] ssm_lr", "[train] ssm_weight_decay", "[train] warmup_steps", "[train] schedule", "[train] final_lr_fraction",
            "[train] weight_decay", "[train] grad_clip", "[train] betas", "[train] ema", "[train] validate_every",
            "[train] validation_batches", "[train] checkpoint_every", "[train] log_every",
            "[train] max_time", "[train] sample_every", "[train] sample_clips", "[train] sample_seconds", "[train] recompute",
        ])
        XCTAssertEqual(parseError("[data]\nquantization = 3\n"), "recipes/x.toml: [data] quantization must be one of \"mulaw\" | \"linear\", got 3")
        XCTAssertEqual(parseError("nme = 3\n"), "recipes/x.toml: unknown key 'nme'; did you mean 'name'? known keys (top level): data, description, model, name, train")
    }

    /// The recipe's optimiser keys translate to the one `AdamWOptimizer.Config`; 0 turns the clip and the SSM cap off.
    func testOptimizerConfigFromTheRecipe() throws {
        let r = try RecipeParser.parse(Self.minimal + "\nbetas = [0.9, 0.95]\nweight_decay = 0.05\ngrad_clip = 0\nssm_lr = 0\nssm_weight_decay = true\n", path: "t.toml")
        XCTAssertEqual(r.optimizerConfig, AdamWOptimizer.Config(beta1: 0.9, beta2: 0.95, weightDecay: 0.05, gradientClip: nil, ssmLearningRate: nil, ssmWeightDecay: true))
        let defaults = try RecipeParser.parse(Self.minimal, path: "t.toml").optimizerConfig
        XCTAssertEqual(defaults, AdamWOptimizer.Config(weightDecay: 0.1, gradientClip: 1, ssmLearningRate: 1e-3))
    }
}
