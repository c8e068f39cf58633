import Foundation

/// Rows of named measurements, printed as a table or as JSON (`--json`).
struct BenchReport: Encodable {
    struct Row: Encodable {
        var group: String
        var name: String
        var values: [String: Double]
    }

    var title: String
    var machine: [String: String]
    var rows: [Row] = []
    var notes: [String] = []

    init(title: String, threads: Int) {
        self.title = title
        machine = ["threads": "\(threads)", "cores": "\(ProcessInfo.processInfo.activeProcessorCount)",
                   "date": ISO8601DateFormatter().string(from: Date())]
    }

    mutating func add(_ group: String, _ name: String, _ values: [String: Double]) {
        rows.append(Row(group: group, name: name, values: values))
    }

    /// Prints one table per group; `columns` orders each group's value columns.
    func printTable(columns: [String: [String]]) {
        print("\(title)  (threads: \(machine["threads"]!), cores: \(machine["cores"]!))")
        var seen: [String] = []
        for r in rows where !seen.contains(r.group) { seen.append(r.group) }
        for g in seen {
            let rs = rows.filter { $0.group == g }
            let cols = columns[g] ?? Array(Set(rs.flatMap { $0.values.keys })).sorted()
            print("\n\(g)")
            let body = rs.map { r in [r.name] + cols.map { c in r.values[c].map(Self.format) ?? "" } }
            print(formatTable(["case"] + cols, body, rightAligned: Set(1...cols.count)))
        }
        for n in notes { print("note: \(n)") }
    }

    func printJSON() throws {
        let enc = JSONEncoder()
        enc.outputFormatting = [.prettyPrinted, .sortedKeys]
        print(String(decoding: try enc.encode(self), as: UTF8.self))
    }

    static func format(_ v: Double) -> String {
        if v == 0 { return "0" }
        let a = abs(v)
        if a >= 1e6 { return String(format: "%.3g", v) }
        if a >= 100 { return String(format: "%.0f", v) }
        if a >= 1 { return String(format: "%.2f", v) }
        return String(format: "%.3g", v)
    }
}
