import Foundation

/// One key whose value differs between two recipes, as written in TOML.
public struct RecipeChange: Sendable, Equatable, CustomStringConvertible {
    /// "[train] lr", or "name" at the top level.
    public var key: String
    public var old: String
    public var new: String

    public var description: String { "\(key): \(old) → \(new)" }
}

extension Recipe {
    /// Keys that may change when a run is resumed: they do not alter the weights' shapes,
    /// the data or its order (the rest — [data], the model's shape, batch size, seed — would
    /// make "resume" a different run).
    public static let resumableKeys: Set<String> = [
        "name", "description", "[data] default_data", "[data] memory_budget_mb", "[model] scan_chunk", "[model] dropout",
        "[train] steps", "[train] lr", "[train] ssm_lr", "[train] ssm_weight_decay", "[train] warmup_steps", "[train] schedule", "[train] final_lr_fraction",
        "[train] weight_decay", "[train] grad_clip", "[train] betas", "[train] ema", "[train] validate_every",
        "[train] validation_batches", "[train] checkpoint_every", "[train] log_every",
        "[train] max_time", "[train] sample_every", "[train] sample_clips", "[train] sample_seconds",
    ]

    /// The keys whose values differ from `other`'s (compared as resolved TOML).
    public func changes(from other: Recipe) -> [RecipeChange] {
        let a = other.keyValues, b = keyValues
        return Set(a.keys).union(b.keys).sorted().compactMap { k in
            a[k] == b[k] ? nil : RecipeChange(key: k, old: a[k] ?? "(unset)", new: b[k] ?? "(unset)")
        }
    }

    /// "[section] key" → value text, from `tomlText`.
    var keyValues: [String: String] {
        var out: [String: String] = [:]
        var section = ""
        for line in tomlText.split(separator: "\n") where !line.hasPrefix("#") {
            if line.hasPrefix("[") { section = line + " "; continue }
            guard let eq = line.range(of: " = ") else { continue }
            out[section + line[..<eq.lowerBound]] = String(line[eq.upperBound...])
        }
        return out
    }
}
