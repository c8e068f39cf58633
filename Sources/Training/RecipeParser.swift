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
/// The keys, their checks and defaults are `RecipeSchema.fields` (defaults are `Recipe`'s);
/// every key is optional. Tables: the top level (`name`, default: the file name without
/// .toml; `description`), `[data]`, `[model]` and `[train]`.
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
        // Each table's setters, from the schema; a section is a top-level key holding a table.
        func setters(_ section: RecipeField.Section, _ r: Reader) -> [String: (TOMLValueConvertible) throws -> Void] {
            var out: [String: (TOMLValueConvertible) throws -> Void] = [:]
            for f in RecipeSchema.fields(in: section) { out[f.key] = { try f.read(r, $0, &recipe) } }
            return out
        }
        let top = Reader(path: path, section: "")
        var schema = setters(.top, top)
        for section in RecipeField.Section.allCases where section != .top {
            let r = Reader(path: path, section: "[\(section.rawValue)] "), keys = setters(section, r)
            schema[section.rawValue] = { try r.read(top.table($0, section.rawValue), keys) }
        }
        try top.read(root, schema)
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

    /// A value of `E`; a wrong one names the options, and the fix is the value's entry in
    /// `hints` or the nearest spelling (`mamba_lti` → "mamba-lti").
    func choice<E: RawRepresentable & CaseIterable>(_ v: TOMLValueConvertible, _ key: String, hints: [String: String] = [:]) throws -> E
        where E.RawValue == String {
        let names = E.allCases.map(\.rawValue)
        if let s = v.string, let e = E(rawValue: s) { return e }
        let error = fail(key, "one of " + names.map { "\"\($0)\"" }.joined(separator: " | "), v)
        guard let s = v.string?.lowercased() else { throw error }
        let near = names.filter { editDistance($0, s) <= 2 }.min { editDistance($0, s) < editDistance($1, s) }
        guard let fix = hints[s] ?? near.map({ "did you mean \"\($0)\"?" }) else { throw error }
        throw TrainingError(path: path, error.reason, fix: fix)
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
