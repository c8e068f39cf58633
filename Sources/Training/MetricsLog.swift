import Foundation

/// A JSON value for a metrics line (flat objects of numbers, strings and booleans).
public enum MetricValue: Sendable, Equatable {
    case int(Int)
    case double(Double)
    case string(String)
    case bool(Bool)

    /// JSON text. Non-finite numbers (a NaN loss on a skipped step) become `null`, since
    /// JSON has no NaN; the line's `reason` says what happened.
    var json: String {
        switch self {
        case .int(let i): return String(i)
        case .double(let d): return d.isFinite ? d.description : "null"
        case .bool(let b): return b ? "true" : "false"
        case .string(let s): return jsonString(s)
        }
    }
}

/// `metrics.jsonl`: one JSON object per line, appended and flushed as it happens, so that a
/// crashed or interrupted run keeps everything logged so far. Every line has `type`
/// (`start`, `resume`, `train`, `valid`, `skip`, `checkpoint`, `stop`, `end`), `step` and `time`
/// (seconds since the Unix epoch); the other fields depend on the type.
public final class MetricsLog {
    public let url: URL
    private let handle: FileHandle

    public init(url: URL) throws {
        self.url = url
        let fm = FileManager.default
        if !fm.fileExists(atPath: url.path) { _ = fm.createFile(atPath: url.path, contents: nil) }
        guard let h = FileHandle(forWritingAtPath: url.path) else {
            throw TrainingError(path: url.path, "cannot open the metrics log for writing", fix: "check that the run folder is writable")
        }
        h.seekToEndOfFile()
        handle = h
    }

    deinit { try? handle.close() }

    /// Appends one line: `type`, `step`, `time`, then `fields` in order.
    public func write(_ type: String, step: Int, _ fields: KeyValuePairs<String, MetricValue> = [:]) {
        write(type, step: step, fields: fields.map { ($0.key, $0.value) })
    }

    public func write(_ type: String, step: Int, fields: [(String, MetricValue)]) {
        var parts = ["\"type\":\(jsonString(type))", "\"step\":\(step)", "\"time\":\(Double(Int(Date().timeIntervalSince1970 * 1000)) / 1000)"]
        for (k, v) in fields { parts.append("\(jsonString(k)):\(v.json)") }
        handle.write(Data(("{" + parts.joined(separator: ",") + "}\n").utf8))
    }
}

/// A JSON string literal.
func jsonString(_ s: String) -> String {
    var out = "\""
    for u in s.unicodeScalars {
        switch u {
        case "\"": out += "\\\""
        case "\\": out += "\\\\"
        case "\n": out += "\\n"
        case "\r": out += "\\r"
        case "\t": out += "\\t"
        default:
            if u.value < 0x20 { out += String(format: "\\u%04x", u.value) } else { out.unicodeScalars.append(u) }
        }
    }
    return out + "\""
}
