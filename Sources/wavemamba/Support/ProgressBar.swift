import Foundation

/// A one-line progress bar on stderr: `label [#####.....] 42/100 42% 3.1 it/s ETA 0:19 | extra`.
/// Redrawn in place on a terminal (at most 10 times a second); on a pipe or file (CI, logs)
/// it prints a plain line every `logEvery` seconds instead, so logs stay readable.
final class ProgressBar {
    let label: String
    let total: Int
    let unit: String
    private let start = Date()
    private var lastDraw = Date.distantPast
    private var lastDone = -1
    private let isTTY = isatty(STDERR_FILENO) != 0
    private let logEvery: TimeInterval
    private let width = 24
    /// Units already done when the bar started (a resumed run): rate and ETA count from here.
    private let initial: Int

    init(_ label: String, total: Int, unit: String = "it", logEvery: TimeInterval = 10, initial: Int = 0) {
        self.label = label
        self.total = max(1, total)
        self.unit = unit
        self.logEvery = logEvery
        self.initial = initial
    }

    /// Reports `done` units finished (of `total`) plus a free-form suffix.
    func update(_ done: Int, _ extra: String = "", force: Bool = false) {
        let now = Date()
        let interval = isTTY ? 0.1 : logEvery
        guard force || done >= total || now.timeIntervalSince(lastDraw) >= interval else { return }
        // A finished bar is drawn once (finish() after the last update would repeat it).
        if done >= total && lastDone >= total && extra.isEmpty { return }
        lastDraw = now
        lastDone = done
        let elapsed = now.timeIntervalSince(start)
        let rate = elapsed > 0 ? Double(done - initial) / elapsed : 0
        let eta = rate > 0 ? Double(total - done) / rate : 0
        let frac = min(1, Double(done) / Double(total))
        let filled = Int(frac * Double(width))
        let bar = String(repeating: "#", count: filled) + String(repeating: ".", count: width - filled)
        var line = "\(label) [\(bar)] \(done)/\(total) \(Int(frac * 100))% \(String(format: "%.3g", rate)) \(unit)/s ETA \(Self.clock(eta))"
        if !extra.isEmpty { line += " | " + extra }
        let out = isTTY ? "\r\u{1B}[2K" + line : line + "\n"
        FileHandle.standardError.write(Data(out.utf8))
    }

    /// Clears the bar's line on a terminal, so that another line can be printed in its place
    /// (the next update redraws the bar).
    func clear() {
        guard isTTY else { return }
        FileHandle.standardError.write(Data("\r\u{1B}[2K".utf8))
        lastDraw = .distantPast
    }

    /// Ends the bar's line.
    func finish(_ extra: String = "") {
        update(total, extra, force: true)
        if isTTY { FileHandle.standardError.write(Data("\n".utf8)) }
    }

    static func clock(_ seconds: Double) -> String {
        guard seconds.isFinite else { return "?" }
        let s = Int(seconds.rounded())
        return s >= 3600 ? String(format: "%d:%02d:%02d", s / 3600, (s / 60) % 60, s % 60) : String(format: "%d:%02d", s / 60, s % 60)
    }
}
