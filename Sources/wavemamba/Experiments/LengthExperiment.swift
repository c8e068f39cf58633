import AudioIO
import Engine
import Evaluation
import Foundation
import Models
import Training

/// Length generalisation: a model of each block type (Mamba, S4D + FF) trained at one clip
/// length L is scored by the `nll` code at L, 2L, 4L and 8L, with the NLL in buckets of L/4
/// positions (`nll --clip-length --per-position`): does the likelihood hold beyond the
/// length the model was trained at?
///
/// L is the recipe's clip length divided by 8 (rounded down to the pooling product), so that
/// 8L is the recipe's clip length and every scored clip is real audio of the corpus; scored
/// clips follow the data loader's rules (files cut into segments of the scored length, a
/// shorter file zero-padded). --quick: L = 256 at 8 kHz on the bundled digits (1-s files).
final class LengthExperiment: Experiment {
    let name = "length"
    static let kinds: [BlockKind] = [.mamba, .s4d]
    static let factors = [1, 2, 4, 8]
    let base: Recipe
    let dataFolder: URL
    let data: TrainingData
    let backend: any Backend
    let nllClips: Int
    let quick: Bool
    private var scoring: [Int: AudioDataset] = [:]

    init(setup: ExperimentSetup, backend: any Backend, nllClips: Int) throws {
        var (recipe, file) = try setup.baseRecipe(defaultName: "sc09-mamba-small", quickName: "length-quick")
        if !setup.quick {
            let pool = recipe.model.totalPool
            recipe.data.clipLength = max(pool, recipe.data.clipLength / 8 / pool * pool)
        }
        base = recipe
        dataFolder = try setup.dataFolder(recipe, file: file, quickCorpus: "Assets/digits")
        data = try TrainingData(folder: dataFolder, settings: recipe.data, batchSize: recipe.train.batchSize) { Console.warning("skipping \($0.description)") }
        self.backend = backend
        self.nllClips = nllClips
        quick = setup.quick
    }

    var trainLength: Int { base.data.clipLength }
    var bucketWidth: Int { max(1, trainLength / 4) }
    var cells: [String] { Self.kinds.map(\.rawValue) }

    var protocolFields: [String: Any] {
        var p = ExperimentSetup.describe(base, data: dataFolder)
        p["train_length"] = trainLength
        p["scored_lengths"] = Self.factors.map { $0 * trainLength }
        p["bucket_width"] = bucketWidth
        p["short_files"] = base.data.shortFiles.rawValue
        p["nll_clips_max"] = nllClips == Int.max ? "all" : String(nllClips)
        p["device"] = describeBackend(backend)
        return p
    }

    func isCurrent(_ recorded: [String: Any]) -> Bool { recorded["steps"] as? Int == base.train.steps }

    func dataset(_ length: Int) throws -> AudioDataset {
        if let d = scoring[length] { return d }
        var options = base.data.datasetOptions
        options.segmentLength = length
        let d = try AudioDataset(folder: dataFolder, options: options)
        scoring[length] = d
        return d
    }

    func run(cell: String, in folder: ExperimentFolder) throws -> [String: Any] {
        let kind = BlockKind(rawValue: cell)!
        var recipe = base
        recipe.name = "\(base.name)-\(cell)"
        recipe.model.outer = kind
        recipe.model.center = kind
        let (checkpoint, step) = try folder.trainCell(cell, recipe: recipe, data: data)
        let (model, audio, _) = try loadCheckpoint(checkpoint.path, backend: backend)
        var bits: [Double] = [], curves: [[Double]] = [], clips: [Int] = []
        for f in Self.factors {
            let length = f * trainLength
            let r = try folder.testNLL(model: model, audio: audio, dataset: try dataset(length), maxClips: nllClips, buckets: length / bucketWidth)
            bits.append(r.result.bitsPerSample)
            curves.append(r.result.perPosition)
            clips.append(r.clips)
        }
        return ["block": cell, "parameters": model.parameterCount, "steps": step, "train_length": trainLength,
                "lengths": Self.factors.map { $0 * trainLength }, "test_bits_per_sample": bits, "per_position_bits": curves,
                "bucket_width": bucketWidth, "test_clips": clips, "run": "cells/\(folder.cellURL(cell).lastPathComponent)"]
    }

    func markdown(_ recorded: [String: [String: Any]]) -> String {
        var s = "# Length generalisation\n\n"
        s += "Each block type (`outer` = `center`) is trained at L = \(trainLength) samples (recipe `\(base.name)`, \(base.train.steps) steps of "
        s += "\(base.train.batchSize) clips, `\(dataFolder.path)`) and scored by `wavemamba nll --clip-length` on the test split at 1, 2, 4 and 8 × L; "
        s += "files shorter than the scored length are zero-padded (`short_files = \(base.data.shortFiles.rawValue)`, the loader's rule).\n\n"
        let header = ["block", "parameters", "steps"] + Self.factors.map { "NLL at \($0 * trainLength) (\($0)×)" }
        let rows: [[String]] = cells.map { cell in
            guard let r = recorded[cell] else { return [cell, "–", "–"] + Self.factors.map { _ in "to run" } }
            let bits = r["test_bits_per_sample"] as? [Double] ?? []
            return [cell, "\(r["parameters"] as? Int ?? 0)", "\(r["steps"] as? Int ?? 0)"] + bits.map { cellNumber($0, "%.4f") }
        }
        s += markdownTable(header, rows)
        s += "\n## NLL by position at 8 × L (bits/sample, buckets of \(bucketWidth) samples)\n\n"
        let longest = Self.factors.last! * trainLength
        let posRows: [[String]] = (0..<(longest / bucketWidth)).map { j in
            ["\(j * bucketWidth) ..< \((j + 1) * bucketWidth)"] + cells.map { cell in
                let curves = recorded[cell]?["per_position_bits"] as? [[Double]] ?? []
                return curves.last.flatMap { j < $0.count ? cellNumber($0[j], "%.4f") : nil } ?? "–"
            }
        }
        s += markdownTable(["positions"] + cells, posRows)
        if quick { s += "\n(--quick: a tiny model trained a few steps; the numbers check the pipeline, not the paper.)\n" }
        return s
    }

    func plot(_ recorded: [String: [String: Any]]) -> (plot: LinePlot, legend: [String], caption: String) {
        var series: [TrainingCurves.Series] = []
        for cell in cells {
            let curves = recorded[cell]?["per_position_bits"] as? [[Double]] ?? []
            for (f, curve) in zip(Self.factors, curves) {
                series.append(TrainingCurves.Series(name: "\(cell), scored at \(f)× (\(f * trainLength) samples)",
                                                    points: curve.enumerated().map { (Double($0.offset * bucketWidth + bucketWidth / 2), $0.element) }))
            }
        }
        return (LinePlot(series: series), series.map(\.name),
                "NLL (bits/sample, y) by position (x: the bucket's centre, samples) when scoring clips of 1–8× the training length \(trainLength)")
    }
}
