import Foundation

extension Recipe {
    /// The resolved recipe as TOML, every key written out (defaults included), so that a run
    /// folder's `recipe.toml` says exactly what was trained even if defaults change later.
    /// `RecipeParser.parse(tomlText)` gives back an equal recipe. The keys and their order are
    /// `RecipeSchema.fields`.
    public var tomlText: String {
        var lines = ["# Resolved recipe: every key, defaults included (written by `wavemamba train`)."]
        for section in RecipeField.Section.allCases {
            if section != .top { lines += ["", "[\(section.rawValue)]"] }
            for f in RecipeSchema.fields(in: section) {
                if let v = f.write(self) { lines.append("\(f.key) = \(v)") }
            }
        }
        return lines.joined(separator: "\n") + "\n"
    }
}

/// A TOML basic string.
func tomlQuoted(_ s: String) -> String {
    var out = "\""
    for u in s.unicodeScalars {
        switch u {
        case "\"": out += "\\\""
        case "\\": out += "\\\\"
        case "\n": out += "\\n"
        case "\t": out += "\\t"
        case "\r": out += "\\r"
        default:
            if u.value < 0x20 || u.value == 0x7F { out += String(format: "\\u%04X", u.value) } else { out.unicodeScalars.append(u) }
        }
    }
    return out + "\""
}

/// Swift's shortest round-trip form ("0.002", "1e-05") is valid TOML for finite values.
func tomlNumber(_ x: Double) -> String { x.description }
