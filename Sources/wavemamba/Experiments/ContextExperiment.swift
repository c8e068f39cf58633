import AudioIO
import Engine
import Evaluation
import Foundation
import Models
import Training

/// The Mamba paper's Fig. 7: on a piano corpus, models trained at lengths from 8192 samples
/// up (doubling, to the recipe's clip length) with a fixed number of samples per batch (the
/// recipe's batch × clip length: batch = samples / length), the recipe's Mamba block against
/// S4D + FF in the same U-Net; each scored for test NLL at its training length.
/// --quick: lengths 256, 512, 1024 at 8 kHz on the bundled piano, 2048 samples per batch.
final class ContextExperiment: Experiment {
    let name = "context"
    let base: Recipe
    let kinds: [BlockKind]
    let lengths: [Int]
    let samplesPerBatch: Int
    let dataFolder: URL
    let backend: any Backend
    let nllClips: Int
    let quick: Bool
    private var data: [Int: TrainingData] = [:]

    init(setup: ExperimentSetup, backend: any Backend, nllClips: Int) throws {
        let (recipe, file) = try setup.baseRecipe(defaultName: "youtubemix-mamba", quickName: "context-quick")
        base = recipe
        quick = setup.quick
        if setup.quick {
            lengths = [256, 512, 1024]
            samplesPerBatch = 2048
        } else {
            let pool = recipe.model.totalPool
            var l = max(8192, pool), ls: [Int] = []
            while l <= recipe.data.clipLength { if l % pool == 0 { ls.append(l) }; l *= 2 }
            lengths = ls.isEmpty ? [recipe.data.clipLength] : ls
            samplesPerBatch = recipe.train.batchSize * recipe.data.clipLength
        }
        let mamba = [recipe.model.outer, recipe.model.center].first { $0 == .mamba || $0 == .mambaComplex } ?? .mambaComplex
        kinds = [mamba, .s4d]
        dataFolder = try setup.dataFolder(recipe, file: file, quickCorpus: "Assets/piano")
        self.backend = backend
        self.nllClips = nllClips
    }

    var cells: [String] { kinds.flatMap { k in lengths.map { "\(k.rawValue)@\($0)" } } }

    var protocolFields: [String: Any] {
        var p = ExperimentSetup.describe(base, data: dataFolder)
        p["lengths"] = lengths
        p["samples_per_batch"] = samplesPerBatch
        p["blocks"] = kinds.map(\.rawValue)
        p["nll_clips_max"] = nllClips == Int.max ? "all" : String(nllClips)
        p["device"] = describeBackend(backend)
        return p
    }

    func isCurrent(_ recorded: [String: Any]) -> Bool { recorded["steps"] as? Int == base.train.steps }

    func split(_ cell: String) -> (BlockKind, Int) {
        let parts = cell.split(separator: "@")
        return (BlockKind(rawValue: String(parts[0]))!, Int(parts[1])!)
    }

    func recipe(_ kind: BlockKind, _ length: Int) -> Recipe {
        var r = base
        r.name = "\(base.name)-\(kind.rawValue)-\(length)"
        r.model.outer = kind
        r.model.center = kind
        r.data.clipLength = length
        r.train.batchSize = max(1, samplesPerBatch / length)
        return r
    }

    func run(cell: String, in folder: ExperimentFolder) throws -> [String: Any] {
        let (kind, length) = split(cell)
        let r = recipe(kind, length)
        if data[length] == nil {
            data[length] = try TrainingData(folder: dataFolder, settings: r.data, batchSize: r.train.batchSize) { Console.warning("skipping \($0.description)") }
        }
        let (checkpoint, step) = try folder.trainCell(cell, recipe: r, data: data[length]!)
        let (model, audio, _) = try loadCheckpoint(checkpoint.path, backend: backend)
        let nll = try folder.testNLL(model: model, audio: audio, dataset: data[length]!.dataset, maxClips: nllClips)
        return ["block": kind.rawValue, "length": length, "batch_size": r.train.batchSize, "parameters": model.parameterCount, "steps": step,
                "test_bits_per_sample": nll.result.bitsPerSample, "test_clips": nll.clips, "test_split": nll.split,
                "run": "cells/\(folder.cellURL(cell).lastPathComponent)"]
    }

    func markdown(_ recorded: [String: [String: Any]]) -> String {
        var s = "# Context length (Mamba paper, Fig. 7)\n\n"
        s += "Models trained at each length with \(samplesPerBatch) samples per batch (batch = \(samplesPerBatch) / length), recipe `\(base.name)` "
        s += "(\(base.train.steps) steps), on `\(dataFolder.path)`; test NLL at the training length by `wavemamba nll`'s code.\n\n"
        let header = ["length", "batch"] + kinds.flatMap { ["\($0.rawValue) test NLL (bits/sample)", "\($0.rawValue) parameters"] }
        let rows: [[String]] = lengths.map { L in
            ["\(L)", "\(max(1, samplesPerBatch / L))"] + kinds.flatMap { k -> [String] in
                guard let r = recorded["\(k.rawValue)@\(L)"] else { return ["to run", "–"] }
                return [cellNumber(r["test_bits_per_sample"], "%.4f"), "\(r["parameters"] as? Int ?? 0)"]
            }
        }
        s += markdownTable(header, rows)
        if quick { s += "\n(--quick: a tiny model trained a few steps; the numbers check the pipeline, not the paper.)\n" }
        return s
    }

    func plot(_ recorded: [String: [String: Any]]) -> (plot: LinePlot, legend: [String], caption: String) {
        let series = kinds.map { k in
            TrainingCurves.Series(name: k.rawValue, points: lengths.compactMap { L in
                double(recorded["\(k.rawValue)@\(L)"]?["test_bits_per_sample"]).map { (log2(Double(L)), $0) }
            })
        }
        return (LinePlot(series: series), series.map(\.name), "Test NLL (bits/sample, y) against log₂ training length (x)")
    }
}
