import AudioIO
import Engine
import Foundation
import Models
import TOMLKit

extension Recipe {
    /// Reads and parses a recipe file (see `RecipeParser`).
    public static func load(_ url: URL) throws -> Recipe { try RecipeParser.load(url) }

    /// Parses TOML text; `path` names it in messages.
    public init(toml: String, path: String) throws { self = try RecipeParser.parse(toml, path: path) }
}

/// TOML → `Recipe`, strictly: every key must be known and every value valid, and each error
/// names the file, the table and the key (`recipes/x.toml: [train] unknown key 'lr_max'`).
///
/// Schema (every key optional except where noted; defaults are `Recipe`'s):
///
/// ```toml
/// name = "sc09-mamba-small"          # default: the file name without .toml
/// description = "…"
/// [data]   layout, default_data, sample_rate, clip_length, short_files (pad|drop),
///          quantization (mulaw|linear), normalization (minmax|peak|none), valid_fraction,
///          test_fraction, memory_budget_mb
/// [model]  backbone (sashimi|unet), d_model, n_layers, pool (list of integers ≥ 2), expand, ff, outer, center
///          (mamba-complex|mamba|s4d|mha), d_state, d_conv, mamba_expand, s4d_state, mha_heads, dropout, scan_chunk
/// [train]  batch_size, steps, lr, ssm_lr (0: no cap), ssm_weight_decay (true|false), warmup_steps, schedule (cosine|constant), final_lr_fraction,
///          weight_decay, grad_clip (0: off), betas ([β1, β2]), ema (0: off, else the decay),
///          validate_every, validation_batches (0: whole split), checkpoint_every (0: at the end),
///          log_every, seed, max_time ("90s", "9m", "1h30m", "2.5h"), sample_every (0: off),
///          sample_clips (≥ 2), sample_seconds (default: the clip length)
/// ```
public enum RecipeParser {
    /// Parses `text`; `path` is used in messages and for the default name.
    public static func parse(_ text: String, path: String) throws -> Recipe {
        let root: TOMLTable
        do {
            root = try TOMLTable(string: text)
        } catch let e as TOMLParseError {
            throw TrainingError(path: path, "line \(e.source.begin.line), column \(e.source.begin.column): \(e.description)",
                                fix: "fix the TOML syntax")
        }
        let stem = URL(fileURLWithPath: path).deletingPathExtension().lastPathComponent
        var recipe = Recipe(name: stem)
        let r = Reader(path: path, section: "")
        try r.read(root, [
            "name": { recipe.name = try r.string($0, "name", nonEmpty: true) },
            "description": { recipe.description = try r.string($0, "description") },
            "data": { recipe.data = try readData(r.table($0, "data"), recipe.data, path) },
            "model": { recipe.model = try readModel(r.table($0, "model"), recipe.model, path) },
            "train": { recipe.train = try readTrain(r.table($0, "train"), recipe.train, path) },
        ])
        try checkConsistency(recipe, path)
        return recipe
    }

    /// Reads and parses a recipe file.
    public static func load(_ url: URL) throws -> Recipe {
        let text: String
        do {
            text = try String(contentsOf: url, encoding: .utf8)
        } catch {
            throw TrainingError(path: url.path, "cannot read the recipe (\(error.localizedDescription))",
                                fix: "check the path; recipes live in recipes/NAME.toml")
        }
        return try parse(text, path: url.path)
    }

    static func readData(_ t: TOMLTable, _ defaults: Recipe.DataSettings, _ path: String) throws -> Recipe.DataSettings {
        var d = defaults
        let r = Reader(path: path, section: "[data] ")
        try r.read(t, [
            "layout": { d.layout = try r.choice($0, "layout") },
            "default_data": { d.defaultData = try r.string($0, "default_data", nonEmpty: true) },
            "sample_rate": { d.sampleRate = try r.int($0, "sample_rate", 1000...384_000) },
            "clip_length": { d.clipLength = try r.int($0, "clip_length", 1...Int(Int32.max)) },
            "short_files": { d.shortFiles = try r.choice($0, "short_files") },
            "quantization": { d.quantization = try r.choice($0, "quantization") },
            "normalization": { d.normalization = try r.choice($0, "normalization") },
            "valid_fraction": { d.validFraction = try r.number($0, "valid_fraction", "a number in [0, 1)") { $0 >= 0 && $0 < 1 } },
            "test_fraction": { d.testFraction = try r.number($0, "test_fraction", "a number in [0, 1)") { $0 >= 0 && $0 < 1 } },
            "memory_budget_mb": { d.memoryBudgetMB = try r.int($0, "memory_budget_mb", 1...(1 << 30)) },
        ])
        return d
    }

    static func readModel(_ t: TOMLTable, _ defaults: SaShiMiConfig, _ path: String) throws -> SaShiMiConfig {
        var m = defaults
        let r = Reader(path: path, section: "[model] ")
        try r.read(t, [
            "backbone": { m.backbone = try r.choice($0, "backbone") },
            "d_model": { m.dModel = try r.int($0, "d_model", 1...65536) },
            "n_layers": { m.nLayers = try r.int($0, "n_layers", 1...4096) },
            "pool": { m.pool = try r.intList($0, "pool", min: 2, what: "a list of integers ≥ 2 (e.g. [4, 4])") },
            "expand": { m.expand = try r.int($0, "expand", 1...64) },
            "ff": { m.ff = try r.int($0, "ff", 1...64) },
            "outer": { m.outer = try r.choice($0, "outer") },
            "center": { m.center = try r.choice($0, "center") },
            "d_state": { m.dState = try r.int($0, "d_state", 1...4096) },
            "d_conv": { m.dConv = try r.int($0, "d_conv", 1...64) },
            "mamba_expand": { m.mambaExpand = try r.int($0, "mamba_expand", 1...64) },
            "s4d_state": { m.s4dState = try r.int($0, "s4d_state", 1...4096) },
            "mha_heads": { m.mhaHeads = try r.int($0, "mha_heads", 1...1024) },
            "dropout": { m.dropout = Float(try r.number($0, "dropout", "a number in [0, 1)") { $0 >= 0 && $0 < 1 }) },
            "scan_chunk": { m.scanChunk = try r.int($0, "scan_chunk", 1...(1 << 20)) },
        ])
        return m
    }

    static func readTrain(_ t: TOMLTable, _ defaults: Recipe.TrainSettings, _ path: String) throws -> Recipe.TrainSettings {
        var s = defaults
        let r = Reader(path: path, section: "[train] ")
        let big = Int(Int32.max)
        try r.read(t, [
            "batch_size": { s.batchSize = try r.int($0, "batch_size", 1...65536) },
            "steps": { s.steps = try r.int($0, "steps", 1...big) },
            "lr": { s.lr = try r.number($0, "lr", "a positive number (e.g. 2e-3)") { $0 > 0 && $0 < 10 } },
            "ssm_lr": { s.ssmLR = try r.number($0, "ssm_lr", "0 (no cap) or a positive learning rate (e.g. 1e-3)") { $0 >= 0 && $0 < 10 } },
            "ssm_weight_decay": { s.ssmWeightDecay = try r.bool($0, "ssm_weight_decay") },
            "warmup_steps": { s.warmupSteps = try r.int($0, "warmup_steps", 0...big) },
            "schedule": { s.schedule = try r.choice($0, "schedule", ["cosine": .cosine, "constant": .constant]) },
            "final_lr_fraction": { s.finalLRFraction = try r.number($0, "final_lr_fraction", "a number in [0, 1]") { $0 >= 0 && $0 <= 1 } },
            "weight_decay": { s.weightDecay = try r.number($0, "weight_decay", "a number ≥ 0") { $0 >= 0 } },
            "grad_clip": { s.gradClip = try r.number($0, "grad_clip", "a number ≥ 0 (0 turns clipping off)") { $0 >= 0 } },
            "betas": { s.betas = try r.numberList($0, "betas", count: 2, "two numbers in [0, 1), e.g. [0.9, 0.95]") { $0 >= 0 && $0 < 1 } },
            "ema": { s.ema = try r.number($0, "ema", "0 (off) or a decay in (0, 1), e.g. 0.999") { $0 >= 0 && $0 < 1 } },
            "validate_every": { s.validateEvery = try r.int($0, "validate_every", 0...big) },
            "validation_batches": { s.validationBatches = try r.int($0, "validation_batches", 0...big) },
            "checkpoint_every": { s.checkpointEvery = try r.int($0, "checkpoint_every", 0...big) },
            "log_every": { s.logEvery = try r.int($0, "log_every", 1...big) },
            "seed": { s.seed = try r.int($0, "seed", 0...Int.max) },
            "max_time": { s.maxTime = try r.duration($0, "max_time") },
            "sample_every": { s.sampleEvery = try r.int($0, "sample_every", 0...big) },
            "sample_clips": { s.sampleClips = try r.int($0, "sample_clips", 2...65536) },
            "sample_seconds": { s.sampleSeconds = try r.number($0, "sample_seconds", "a positive number of seconds") { $0 > 0 && $0 <= 3600 } },
        ])
        return s
    }

    /// Rules that involve more than one key.
    static func checkConsistency(_ r: Recipe, _ path: String) throws {
        let pool = r.model.totalPool
        let poolText = "[" + r.model.pool.map(String.init).joined(separator: ", ") + "]"
        for kind in [r.model.outer, r.model.center] where kind == .mha {
            let widths = (0...r.model.pool.count).map { r.model.dModel * Int(pow(Double(r.model.expand), Double($0))) }
            if let w = widths.first(where: { $0 % r.model.mhaHeads != 0 }) {
                throw TrainingError(path: path, "[model] mha_heads \(r.model.mhaHeads) does not divide the stage width \(w)",
                                    fix: "use a number of heads that divides \(widths.map(String.init).joined(separator: ", "))")
            }
        }
        if r.data.clipLength % pool != 0 {
            let down = r.data.clipLength / pool * pool, up = down + pool
            throw TrainingError(path: path,
                                "[data] clip_length \(r.data.clipLength) is not a multiple of the pooling product \(pool) ([model] pool = \(poolText))",
                                fix: "use a multiple of \(pool), e.g. \(down > 0 ? "\(down) or " : "")\(up)")
        }
        if r.data.validFraction + r.data.testFraction >= 1 {
            throw TrainingError(path: path, "[data] valid_fraction + test_fraction = \(r.data.validFraction + r.data.testFraction) leaves nothing to train on",
                                fix: "keep their sum below 1 (e.g. 0.1 and 0.1)")
        }
        if r.train.warmupSteps > r.train.steps {
            throw TrainingError(path: path, "[train] warmup_steps \(r.train.warmupSteps) exceeds steps \(r.train.steps)",
                                fix: "lower warmup_steps (the Mamba paper warms up for 10 % of the steps)")
        }
    }
}

/// Reads the keys of one table against a schema of setters, and converts values with
/// messages that name the key.
struct Reader {
    let path: String
    /// "[train] " or "" at the top level.
    let section: String

    /// Applies each key's setter; a key not in `schema` is an error listing the known ones.
    func read(_ table: TOMLTable, _ schema: [String: (TOMLValueConvertible) throws -> Void]) throws {
        for key in table.keys {
            guard let set = schema[key] else {
                let known = schema.keys.sorted()
                // A near spelling, or a known key the unknown one extends (lr_max → lr).
                let near = known.filter { editDistance($0, key) <= 3 || key.hasPrefix($0 + "_") }
                    .min { editDistance($0, key) < editDistance($1, key) }
                let hint = near.map { "did you mean '\($0)'? " } ?? ""
                throw TrainingError(path: path, "\(section)unknown key '\(key)'",
                                    fix: "\(hint)known keys\(section.isEmpty ? " (top level)" : ""): \(known.joined(separator: ", "))")
            }
            try set(table[key]!)
        }
    }

    func fail(_ key: String, _ what: String, _ v: TOMLValueConvertible) -> TrainingError {
        TrainingError(path: path, "\(section)\(key) must be \(what), got \(describe(v))")
    }

    func int(_ v: TOMLValueConvertible, _ key: String, _ range: ClosedRange<Int>) throws -> Int {
        let what = range.upperBound >= Int(Int32.max) ? "an integer ≥ \(range.lowerBound)" : "an integer in \(range.lowerBound)…\(range.upperBound)"
        guard let i = v.int, range.contains(i) else { throw fail(key, what, v) }
        return i
    }

    /// A float or an integer (TOML keeps `1` and `1.0` apart; recipes should not have to).
    func number(_ v: TOMLValueConvertible, _ key: String, _ what: String, _ valid: (Double) -> Bool) throws -> Double {
        guard let x = v.double ?? v.int.map(Double.init), x.isFinite, valid(x) else { throw fail(key, what, v) }
        return x
    }

    func bool(_ v: TOMLValueConvertible, _ key: String) throws -> Bool {
        guard let b = v.bool else { throw fail(key, "true or false", v) }
        return b
    }

    /// A duration string (`DurationText`: "90s", "9m", "1h30m", "2.5h"), in seconds.
    func duration(_ v: TOMLValueConvertible, _ key: String) throws -> Double {
        guard let text = v.string else { throw fail(key, "a duration string such as \"90s\", \"9m\", \"1h30m\" or \"2.5h\"", v) }
        return try DurationText.parse(text, key: "\(section)\(key)", path: path)
    }

    func string(_ v: TOMLValueConvertible, _ key: String, nonEmpty: Bool = false) throws -> String {
        guard let s = v.string, !nonEmpty || !s.isEmpty else { throw fail(key, nonEmpty ? "a non-empty string" : "a string", v) }
        return s
    }

    func choice<E: RawRepresentable & CaseIterable>(_ v: TOMLValueConvertible, _ key: String) throws -> E where E.RawValue == String {
        let options = E.allCases.map { "\"\($0.rawValue)\"" }.joined(separator: " | ")
        guard let s = v.string, let e = E(rawValue: s) else { throw fail(key, "one of \(options)", v) }
        return e
    }

    func choice<E>(_ v: TOMLValueConvertible, _ key: String, _ options: KeyValuePairs<String, E>) throws -> E {
        let names = options.map { "\"\($0.key)\"" }.joined(separator: " | ")
        guard let s = v.string, let e = options.first(where: { $0.key == s })?.value else { throw fail(key, "one of \(names)", v) }
        return e
    }

    func table(_ v: TOMLValueConvertible, _ key: String) throws -> TOMLTable {
        guard let t = v.table else { throw fail(key, "a table ([\(key)])", v) }
        return t
    }

    func intList(_ v: TOMLValueConvertible, _ key: String, min: Int, what: String) throws -> [Int] {
        guard let a = v.array else { throw fail(key, what, v) }
        var out: [Int] = []
        for e in a {
            guard let i = e.int, i >= min, i <= 1 << 20 else { throw fail(key, what, v) }
            out.append(i)
        }
        return out
    }

    func numberList(_ v: TOMLValueConvertible, _ key: String, count: Int, _ what: String, _ valid: (Double) -> Bool) throws -> [Double] {
        guard let a = v.array, a.count == count else { throw fail(key, what, v) }
        return try a.map { try number($0, key, what, valid) }
    }
}

/// A TOML value as it would be written, for messages.
func describe(_ v: TOMLValueConvertible) -> String {
    switch v.type {
    case .string: return "\"\(v.string!)\""
    case .int: return String(v.int!)
    case .double: return String(v.double!)
    case .bool: return String(v.bool!)
    case .array: return "[" + v.array!.map(describe).joined(separator: ", ") + "]"
    case .table: return "a table"
    default: return "a \(v.type)"
    }
}

/// Levenshtein distance, for "did you mean" hints.
func editDistance(_ a: String, _ b: String) -> Int {
    let a = Array(a), b = Array(b)
    if a.isEmpty { return b.count }
    var row = Array(0...b.count)
    for i in 1...a.count {
        var prev = row[0]
        row[0] = i
        for j in stride(from: 1, through: b.count, by: 1) {
            let cur = row[j]
            row[j] = min(row[j] + 1, row[j - 1] + 1, prev + (a[i - 1] == b[j - 1] ? 0 : 1))
            prev = cur
        }
    }
    return row[b.count]
}
