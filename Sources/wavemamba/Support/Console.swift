import Foundation

/// Messages for people: results on stdout, warnings and errors on stderr.
enum Console {
    static func error(_ message: String) {
        FileHandle.standardError.write(Data("error: \(message)\n".utf8))
    }

    static func warning(_ message: String) {
        FileHandle.standardError.write(Data("warning: \(message)\n".utf8))
    }

    static func note(_ message: String) {
        FileHandle.standardError.write(Data("\(message)\n".utf8))
    }
}

/// "1:02:03.4" / "2:03.40" / "3.250 s".
func formatDuration(_ seconds: Double) -> String {
    if seconds < 60 { return String(format: "%.3f s", seconds) }
    let total = Int(seconds)
    let h = total / 3600, m = (total / 60) % 60
    let s = seconds - Double(h * 3600 + m * 60)
    return h > 0 ? String(format: "%d:%02d:%04.1f", h, m, s) : String(format: "%d:%05.2f", m, s)
}

/// Left-aligned text table with one header row.
func formatTable(_ header: [String], _ rows: [[String]], rightAligned: Set<Int> = []) -> String {
    var widths = header.map(\.count)
    for r in rows { for (i, c) in r.enumerated() { widths[i] = max(widths[i], c.count) } }
    func line(_ cells: [String]) -> String {
        cells.enumerated().map { i, c in
            let pad = String(repeating: " ", count: widths[i] - c.count)
            return rightAligned.contains(i) ? pad + c : c + pad
        }.joined(separator: "  ").trimmingCharacters(in: .whitespaces)
    }
    return ([line(header)] + rows.map(line)).joined(separator: "\n")
}
