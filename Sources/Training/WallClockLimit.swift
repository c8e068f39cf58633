import Foundation

/// Durations written as `90s`, `9m`, `1h30m`, `2.5h`, `1h 5m 30s`: one or more (number, unit)
/// pairs, units `h`, `m`, `s`, each at most once and in that order (numbers may have a decimal
/// point or an exponent). Used by `[train] max_time` and `train --max-time`.
public enum DurationText {
    /// Seconds, or nil when `text` is not such a duration or is not positive.
    public static func seconds(_ text: String) -> Double? {
        let s = Array(text.lowercased().filter { !$0.isWhitespace })
        guard !s.isEmpty else { return nil }
        var total = 0.0, i = 0, lastUnit = -1
        let units: [Character: (rank: Int, seconds: Double)] = ["h": (0, 3600), "m": (1, 60), "s": (2, 1)]
        while i < s.count {
            var j = i
            while j < s.count {
                // Digits, a point, and an exponent (`1e-06s`, as `format` writes tiny values).
                if s[j].isNumber || s[j] == "." { j += 1; continue }
                if s[j] == "e", j > i, j + 1 < s.count, s[j + 1].isNumber || ((s[j + 1] == "-" || s[j + 1] == "+") && j + 2 < s.count && s[j + 2].isNumber) {
                    j += 2
                    continue
                }
                break
            }
            guard j > i, j < s.count, let value = Double(String(s[i..<j])), value.isFinite,
                  let unit = units[s[j]], unit.rank > lastUnit else { return nil }
            total += value * unit.seconds
            lastUnit = unit.rank
            i = j + 1
        }
        return total > 0 && total.isFinite ? total : nil
    }

    /// Parses `text`, or throws an error that names `key` (the recipe key or the CLI flag).
    public static func parse(_ text: String, key: String, path: String) throws -> Double {
        guard let s = seconds(text) else {
            throw TrainingError(path: path, "\(key) must be a positive duration such as \"90s\", \"9m\", \"1h30m\" or \"2.5h\", got \"\(text)\"",
                                fix: "write a number followed by h, m or s (several in that order: 1h30m)")
        }
        return s
    }

    /// The shortest text `seconds(_:)` reads back as `seconds`: whole hours, minutes and
    /// seconds as `1h30m`, `9m`, `1m30s`; anything else as seconds in Swift's shortest
    /// round-trip form (`12.5s`, `1e-06s`).
    public static func format(_ seconds: Double) -> String {
        guard seconds == seconds.rounded(), seconds < 1e15 else { return "\(seconds)s" }
        let total = Int(seconds)
        let h = total / 3600, m = total % 3600 / 60, s = total % 60
        var out = ""
        if h > 0 { out += "\(h)h" }
        if m > 0 { out += "\(m)m" }
        if s > 0 || out.isEmpty { out += "\(s)s" }
        return out
    }
}
