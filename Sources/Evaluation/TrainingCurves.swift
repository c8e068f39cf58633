import Foundation

/// Training curves read leniently from a run folder's `metrics.jsonl` (one JSON object per
/// line). Any line with a numeric value under one of `keys` contributes a point at its
/// `step` (or its line number when it has none); lines of another `type` than "train"
/// (e.g. "valid") make their own series ("valid loss"). Lines that are not JSON objects
/// are counted and skipped, so a run still being written (a half line at the end) loads.
public struct TrainingCurves: Sendable {
    public struct Series: Sendable, Equatable {
        public var name: String
        public var points: [(step: Double, value: Double)]

        public init(name: String, points: [(step: Double, value: Double)]) {
            self.name = name
            self.points = points
        }

        public static func == (a: Series, b: Series) -> Bool {
            a.name == b.name && a.points.count == b.points.count && zip(a.points, b.points).allSatisfy { $0.step == $1.step && $0.value == $1.value }
        }
    }

    /// The numeric keys plotted.
    public static let keys = ["loss", "train_bits", "valid_bits", "bits_per_sample", "valid_loss", "test_bits", "bits",
                              "fid", "is", "generated_event_rate", "reference_event_rate"]

    public var series: [Series]
    public var skippedLines: Int

    public init(series: [Series], skippedLines: Int = 0) {
        self.series = series
        self.skippedLines = skippedLines
    }

    /// Reads `RUNDIR/metrics.jsonl` (or a .jsonl file given directly).
    public static func load(_ url: URL) throws -> TrainingCurves {
        var isDir: ObjCBool = false
        var file = url
        if FileManager.default.fileExists(atPath: url.path, isDirectory: &isDir), isDir.boolValue {
            file = url.appendingPathComponent("metrics.jsonl")
        }
        guard let data = FileManager.default.contents(atPath: file.path) else {
            throw EvaluationError(path: file.path, "cannot read the training log", fix: "pass --run with a run folder written by `wavemamba train` (it holds metrics.jsonl)")
        }
        return parse(String(decoding: data, as: UTF8.self))
    }

    public static func parse(_ text: String) -> TrainingCurves {
        var order: [String] = []
        var points: [String: [(Double, Double)]] = [:]
        var skipped = 0
        for (n, line) in text.split(whereSeparator: \.isNewline).enumerated() {
            let trimmed = line.trimmingCharacters(in: .whitespaces)
            if trimmed.isEmpty { continue }
            guard let obj = try? JSONSerialization.jsonObject(with: Data(trimmed.utf8)) as? [String: Any] else { skipped += 1; continue }
            let step = number(obj["step"]) ?? Double(n)
            let type = obj["type"] as? String
            for key in keys {
                guard let v = number(obj[key]), v.isFinite else { continue }
                var name = key
                if let type, type != "train", !key.hasPrefix(type) { name = "\(type) \(key)" }
                // `samples` lines of the EMA weights make their own series.
                if let weights = obj["weights"] as? String, weights != "current" { name += " (\(weights))" }
                if points[name] == nil { order.append(name); points[name] = [] }
                points[name]!.append((step, v))
            }
        }
        // Training series (plain keys) before validation ones, each in order of appearance.
        order = order.filter { !$0.contains(" ") } + order.filter { $0.contains(" ") }
        return TrainingCurves(series: order.map { Series(name: $0, points: points[$0]!.map { (step: $0.0, value: $0.1) }) }, skippedLines: skipped)
    }

    /// A JSON number (or a numeric string). No check for booleans: Foundation bridges the
    /// numbers 0 and 1 to Bool as well, and a step of 0 must stay a number.
    static func number(_ any: Any?) -> Double? {
        if let n = any as? NSNumber { return n.doubleValue }
        if let s = any as? String { return Double(s) }
        return nil
    }

    /// Series in bits (per sample), the rest of the losses (nats), and the scores of samples
    /// generated while training (`samples` lines: FID, IS, event rate), for separate axes.
    public var groups: [(title: String, series: [Series])] {
        func key(_ s: Series) -> String { s.name.split(separator: " ").map(String.init).first { Self.keys.contains($0) } ?? s.name }
        let titles: [(String, (String) -> Bool)] = [
            ("loss (nats)", { !$0.contains("bits") && !["fid", "is"].contains($0) && !$0.contains("event_rate") }),
            ("bits per sample", { $0.contains("bits") }),
            ("FID of samples (lower is better)", { $0 == "fid" }),
            ("IS of samples (higher is better)", { $0 == "is" }),
            ("event rate of samples (near the valid clips' is best)", { $0.contains("event_rate") }),
        ]
        return titles.map { title, take in (title, series.filter { take(key($0)) }) }.filter { !$0.1.isEmpty }
    }

    /// An inline SVG line chart of `series` (steps on x, values on y), with axes and legend.
    public static func svg(title: String, series: [Series], width: Int = 640, plotHeight: Int = 250) -> String {
        let all = series.flatMap(\.points)
        guard !all.isEmpty else { return "" }
        // The legend sits under the plot, two entries a row, so long names are never cut.
        let legendRows = (series.count + 1) / 2
        let height = plotHeight + 16 * legendRows + 8
        let left = 56.0, right = 16.0, top = 28.0, bottom = 36.0 + 16 * Double(legendRows) + 8
        let w = Double(width) - left - right, h = Double(height) - top - bottom
        var x0 = all.map(\.step).min()!, x1 = all.map(\.step).max()!
        var y0 = all.map(\.value).min()!, y1 = all.map(\.value).max()!
        if x1 == x0 { x0 -= 1; x1 += 1 }
        if y1 == y0 { y0 -= 0.5; y1 += 0.5 }
        let pad = (y1 - y0) * 0.05
        y0 -= pad; y1 += pad
        func px(_ x: Double) -> Double { left + (x - x0) / (x1 - x0) * w }
        func py(_ y: Double) -> Double { top + (1 - (y - y0) / (y1 - y0)) * h }
        let colors = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2"]
        var s = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(width)\" height=\"\(height)\" viewBox=\"0 0 \(width) \(height)\" class=\"chart\">"
        s += "<rect x=\"0\" y=\"0\" width=\"\(width)\" height=\"\(height)\" fill=\"#fff\"/>"
        s += "<text x=\"\(left)\" y=\"18\" font-size=\"13\" font-weight=\"bold\">\(htmlEscape(title))</text>"
        for i in 0...4 {
            let yv = y0 + (y1 - y0) * Double(i) / 4, y = py(yv)
            s += "<line x1=\"\(left)\" y1=\"\(f1(y))\" x2=\"\(left + w)\" y2=\"\(f1(y))\" stroke=\"#e4e4e4\"/>"
            s += "<text x=\"\(left - 6)\" y=\"\(f1(y + 4))\" font-size=\"11\" text-anchor=\"end\">\(tick(yv))</text>"
            let xv = x0 + (x1 - x0) * Double(i) / 4, x = px(xv)
            s += "<text x=\"\(f1(x))\" y=\"\(f1(top + h + 16))\" font-size=\"11\" text-anchor=\"middle\">\(tick(xv))</text>"
        }
        s += "<rect x=\"\(left)\" y=\"\(top)\" width=\"\(w)\" height=\"\(h)\" fill=\"none\" stroke=\"#888\"/>"
        s += "<text x=\"\(f1(left + w / 2))\" y=\"\(f1(top + h + 30))\" font-size=\"11\" text-anchor=\"middle\">step</text>"
        for (i, ser) in series.enumerated() {
            let c = colors[i % colors.count]
            let pts = ser.points.map { "\(f1(px($0.step))),\(f1(py($0.value)))" }.joined(separator: " ")
            if ser.points.count == 1 {
                s += "<circle cx=\"\(f1(px(ser.points[0].step)))\" cy=\"\(f1(py(ser.points[0].value)))\" r=\"3\" fill=\"\(c)\"/>"
            } else {
                s += "<polyline points=\"\(pts)\" fill=\"none\" stroke=\"\(c)\" stroke-width=\"1.5\"/>"
                if ser.points.count <= 40 {
                    for p in ser.points { s += "<circle cx=\"\(f1(px(p.step)))\" cy=\"\(f1(py(p.value)))\" r=\"2.5\" fill=\"\(c)\"/>" }
                }
            }
            let lx = left + Double(i % 2) * (w / 2), ly = top + h + 50 + Double(i / 2) * 16
            s += "<line x1=\"\(f1(lx))\" y1=\"\(f1(ly - 4))\" x2=\"\(f1(lx + 18))\" y2=\"\(f1(ly - 4))\" stroke=\"\(c)\" stroke-width=\"2\"/>"
            s += "<text x=\"\(f1(lx + 24))\" y=\"\(f1(ly))\" font-size=\"11\">\(htmlEscape(ser.name)) (last \(tick(ser.points.last!.value)))</text>"
        }
        return s + "</svg>"
    }

    static func f1(_ v: Double) -> String { String(format: "%.1f", v) }

    static func tick(_ v: Double) -> String {
        let a = abs(v)
        if a >= 10000 || (a > 0 && a < 0.01) { return String(format: "%.2g", v) }
        if a >= 100 { return String(format: "%.0f", v) }
        return String(format: "%.3g", v)
    }
}

/// Escapes text for HTML and SVG.
public func htmlEscape(_ s: String) -> String {
    var out = ""
    for c in s {
        switch c {
        case "&": out += "&amp;"
        case "<": out += "&lt;"
        case ">": out += "&gt;"
        case "\"": out += "&quot;"
        case "'": out += "&#39;"
        default: out.append(c)
        }
    }
    return out
}
