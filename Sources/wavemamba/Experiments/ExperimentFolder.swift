import AudioIO
import Engine
import Evaluation
import Foundation
import Generation
import Models
import SafeTensors
import Training

/// An experiment's cells, their results and how they are shown. A cell is one unit of work
/// whose fields are recorded in results.json as soon as it finishes (a trained model and its
/// scores, or one measurement); a recorded cell is never run again.
protocol Experiment {
    /// `ablation`, `length`, `memory`, `context`.
    var name: String { get }
    /// The cells in table order.
    var cells: [String] { get }
    /// How the numbers were made (recipe, steps, data, device…), recorded in results.json.
    var protocolFields: [String: Any] { get }
    /// Runs a cell (training it or resuming it where a cell's run folder holds a run) and
    /// returns its fields.
    func run(cell: String, in folder: ExperimentFolder) throws -> [String: Any]
    /// Whether a recorded cell still answers this invocation (e.g. trained for the steps asked).
    func isCurrent(_ recorded: [String: Any]) -> Bool
    /// Numbers derived from several cells (e.g. growth exponents), written to results.json.
    func summary(_ recorded: [String: [String: Any]]) -> [String: Any]
    /// results.md from the recorded cells (absent ones marked as still to run).
    func markdown(_ recorded: [String: [String: Any]]) -> String
    /// The plot and the legend (colour name → series).
    func plot(_ recorded: [String: [String: Any]]) -> (plot: LinePlot, legend: [String], caption: String)
}

extension Experiment {
    func isCurrent(_ recorded: [String: Any]) -> Bool { true }
    func summary(_ recorded: [String: [String: Any]]) -> [String: Any] { [:] }
}

/// Why an experiment stopped before its last cell: rerunning the same command continues.
struct ExperimentStopped: Error {
    var reason: String
}

/// The folder of one experiment:
///
/// ```
/// OUT/results.json   experiment, protocol, and one object per finished cell (written as each finishes)
/// OUT/results.md     the table(s)
/// OUT/plot.png       the figure
/// OUT/cells/NAME/    a normal run folder per trained cell (`wavemamba train --resume --out` works on it)
/// ```
final class ExperimentFolder {
    let root: URL
    let experiment: String
    let quick: Bool
    let backend: any Backend
    /// Monotonic seconds at which this session stops (`--max-time`), or nil.
    let deadline: Double?
    private(set) var recorded: [String: [String: Any]] = [:]
    var protocolFields: [String: Any] = [:]

    static func now() -> Double { Double(DispatchTime.now().uptimeNanoseconds) / 1e9 }

    var resultsURL: URL { root.appendingPathComponent("results.json") }
    var markdownURL: URL { root.appendingPathComponent("results.md") }
    var plotURL: URL { root.appendingPathComponent("plot.png") }
    func cellURL(_ cell: String) -> URL {
        root.appendingPathComponent("cells").appendingPathComponent(cell.map { $0.isLetter || $0.isNumber || $0 == "-" ? $0 : "_" }.map(String.init).joined())
    }

    /// Opens `root`, reading the cells an earlier session recorded; a folder of another
    /// experiment (or of the other of --quick and a real run) is an error.
    init(root: URL, experiment: String, quick: Bool, backend: any Backend, deadline: Double?) throws {
        self.root = root
        self.experiment = experiment
        self.quick = quick
        self.backend = backend
        self.deadline = deadline
        try FileManager.default.createDirectory(at: root.appendingPathComponent("cells"), withIntermediateDirectories: true)
        guard let data = FileManager.default.contents(atPath: resultsURL.path) else { return }
        guard let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else {
            throw TrainingError(path: resultsURL.path, "not an experiment's results (unreadable JSON)", fix: "choose another --out folder, or delete the file to start over")
        }
        if let name = object["experiment"] as? String, name != experiment {
            throw TrainingError(path: resultsURL.path, "holds the '\(name)' experiment, not '\(experiment)'", fix: "choose another --out folder")
        }
        if let q = object["quick"] as? Bool, q != quick {
            throw TrainingError(path: resultsURL.path, q ? "holds a --quick run" : "holds a full run (not --quick)", fix: "choose another --out folder, or \(q ? "add" : "drop") --quick")
        }
        for cell in object["cells"] as? [[String: Any]] ?? [] {
            if let name = cell["cell"] as? String { recorded[name] = cell }
        }
    }

    /// Records a finished cell and rewrites results.json at once (atomically).
    func record(_ cell: String, _ fields: [String: Any], order: [String], summary: [String: Any] = [:]) throws {
        var f = fields
        f["cell"] = cell
        f["recorded"] = ISO8601DateFormatter().string(from: Date())
        recorded[cell] = f
        try writeJSON(order: order, summary: summary)
    }

    func writeJSON(order: [String], summary: [String: Any] = [:]) throws {
        let cells = order.compactMap { recorded[$0] } + recorded.keys.filter { !order.contains($0) }.sorted().map { recorded[$0]! }
        let object: [String: Any] = [
            "experiment": experiment, "quick": quick, "protocol": protocolFields, "cells": cells,
            "complete": order.allSatisfy { recorded[$0] != nil }, "pending": order.filter { recorded[$0] == nil }, "summary": summary,
        ]
        let data = try JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes])
        try AtomicFile.write(data, to: resultsURL)
    }

    /// results.md and plot.png from what is recorded.
    func writeReport(_ e: any Experiment) throws {
        let (plot, legend, caption) = e.plot(recorded)
        try AtomicFile.write(plot.png(), to: plotURL)
        var md = e.markdown(recorded)
        md += "\n## Plot\n\n![\(caption)](plot.png)\n\n\(caption). "
        md += legend.enumerated().map { "\(LinePlot.colorName($0.offset)): \($0.element)" }.joined(separator: "; ") + ".\n"
        try AtomicFile.write(Data(md.utf8), to: markdownURL)
    }

    /// Seconds left before `--max-time`, or nil without a limit; a stop when none are left.
    func secondsLeft() throws -> Double? {
        guard let deadline else { return nil }
        let left = deadline - Self.now()
        if left <= 0 { throw ExperimentStopped(reason: "the time limit (--max-time)") }
        return left
    }

    // MARK: Training a cell

    /// Trains `recipe` into the cell's run folder with the training code of `wavemamba train`,
    /// or resumes it from its newest checkpoint; a run already at `[train] steps` is not
    /// touched. Returns the final checkpoint and its step. Ctrl-C and `--max-time` stop
    /// with a checkpoint (`ExperimentStopped`).
    func trainCell(_ cell: String, recipe: Recipe, data: TrainingData) throws -> (checkpoint: URL, step: Int) {
        let url = cellURL(cell)
        let run = RunDirectory(url)
        if let newest = run.checkpointSteps().first, newest >= recipe.train.steps {
            return (run.checkpointURL(step: newest), newest)
        }
        let resume = !run.checkpointSteps().isEmpty
        if !resume && run.holdsRun {
            // Killed before its first checkpoint: nothing to resume from.
            try FileManager.default.removeItem(at: url)
        }
        if resume, FileManager.default.fileExists(atPath: run.recipeURL.path) {
            let saved = try RecipeParser.load(run.recipeURL)
            let fixed = recipe.changes(from: saved).filter { !Recipe.resumableKeys.contains($0.key) }
            if !fixed.isEmpty {
                throw TrainingError(path: run.recipeURL.path, "the cell \(cell) was trained with another recipe (\(fixed.map(\.description).joined(separator: "; ")))",
                                    fix: "use the options of the first session, or another --out folder")
            }
        }
        var r = recipe
        r.train.maxTime = try secondsLeft()
        let trainer = try Trainer(recipe: r, data: data, runDirectory: url, backend: backend, resume: resume) { Console.warning($0) }
        print("cell \(cell): \(resume ? "resuming at step \(trainer.step) of" : "training") \(r.train.steps) steps, batch \(r.train.batchSize) × \(r.data.clipLength) samples, \(trainer.model.parameterCount) parameters")
        fflush(stdout)
        var bar: ProgressBar?
        trainer.onEvent = { event in
            switch event {
            case .started(let step, let total, _): bar = ProgressBar("  \(cell)", total: total, unit: "step", initial: step)
            case .step(let s): bar?.update(s.step, TrainCommand.progressText(s))
            case .finished, .interrupted, .timeLimitReached: bar?.finish(); bar = nil
            default: break
            }
        }
        trainer.handleSignals { Console.note("\n\($0)") }
        defer { trainer.stopHandlingSignals() }
        let outcome = try trainer.train()
        if outcome.interrupted { throw ExperimentStopped(reason: "Ctrl-C (cell \(cell) saved at step \(outcome.step))") }
        if outcome.timeLimited { throw ExperimentStopped(reason: "the time limit (--max-time; cell \(cell) saved at step \(outcome.step))") }
        return (outcome.checkpoint, outcome.step)
    }

    // MARK: Scoring

    /// The model's test NLL (bits/sample) by the `nll` command's code on `dataset`'s test split
    /// (the valid split when the test split is empty), at most `maxClips` clips spread evenly.
    func testNLL(model: SaShiMi, audio: AudioSettings, dataset: AudioDataset, maxClips: Int, buckets: Int = 0) throws
        -> (result: NLL.Result, clips: Int, split: String) {
        var split = Split.test
        var segments = dataset.segments(.test)
        if segments.isEmpty { segments = dataset.segments(.valid); split = .valid }
        guard !segments.isEmpty else {
            throw TrainingError(path: dataset.folder.root.path, "no test or valid clips of \(dataset.options.segmentLength) samples to score",
                                fix: "use a corpus with a test split whose files are at least that long")
        }
        if segments.count > maxClips { segments = (0..<maxClips).map { segments[$0 * segments.count / maxClips] } }
        let result = try NLL.evaluate(model: model, tokens: try AudioTokens(audio), dataset: dataset, segments: segments, batch: 4,
                                      buckets: buckets) { _ in }
        return (result, segments.count, split.rawValue)
    }

    /// Runs the experiment's unrecorded cells in order, recording each as it finishes.
    func run(_ e: any Experiment) throws {
        protocolFields = e.protocolFields
        try writeJSON(order: e.cells, summary: e.summary(recorded))
        try writeReport(e)
        for cell in e.cells {
            if let r = recorded[cell], e.isCurrent(r) {
                print("cell \(cell): recorded in results.json, skipped")
                continue
            }
            let started = Date()
            var fields = try e.run(cell: cell, in: self)
            fields["seconds"] = Date().timeIntervalSince(started)
            try record(cell, fields, order: e.cells)
            try writeJSON(order: e.cells, summary: e.summary(recorded))
            try writeReport(e)
            print("cell \(cell): recorded (\(formatDuration(Date().timeIntervalSince(started))))")
            fflush(stdout)
        }
    }
}

// MARK: Tables

/// A Markdown table.
func markdownTable(_ header: [String], _ rows: [[String]]) -> String {
    var s = "| " + header.joined(separator: " | ") + " |\n"
    s += "|" + header.map { _ in "---|" }.joined() + "\n"
    for r in rows { s += "| " + r.joined(separator: " | ") + " |\n" }
    return s
}

/// A recorded number, formatted, or "–" when absent / not finite.
func cellNumber(_ v: Any?, _ format: String = "%.3f") -> String {
    guard let x = (v as? Double) ?? (v as? Int).map(Double.init), x.isFinite else { return "–" }
    return String(format: format, x)
}

func double(_ v: Any?) -> Double? { (v as? Double) ?? (v as? Int).map(Double.init) }

/// The fields of `TrainingSamples.round` (IS, FID, …) as JSON values.
func jsonFields(_ fields: [(String, MetricValue)]) -> [String: Any] {
    var out: [String: Any] = [:]
    for (k, v) in fields {
        switch v {
        case .double(let d): out[k] = d.isFinite ? d : nil
        case .int(let i): out[k] = i
        case .string(let s): out[k] = s
        case .bool(let b): out[k] = b
        }
    }
    return out
}
