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
    /// Keys that may change when a run is resumed (`RecipeField.resumable`): they do not alter
    /// the weights' shapes, the data or its order (the rest — [data], the model's shape, batch
    /// size, seed — would make "resume" a different run).
    public static let resumableKeys = Set(RecipeSchema.fields.filter(\.resumable).map(\.qualifiedKey))

    /// The keys whose values differ from `other`'s (compared as resolved TOML).
    public func changes(from other: Recipe) -> [RecipeChange] {
        let a = other.keyValues, b = keyValues
        return Set(a.keys).union(b.keys).sorted().compactMap { k in
            a[k] == b[k] ? nil : RecipeChange(key: k, old: a[k] ?? "(unset)", new: b[k] ?? "(unset)")
        }
    }

    /// "[section] key" → value text, as `tomlText` writes it (keys left out there are absent).
    var keyValues: [String: String] {
        var out: [String: String] = [:]
        for f in RecipeSchema.fields { if let v = f.write(self) { out[f.qualifiedKey] = v } }
        return out
    }
}
