import AudioIO
import Engine
import Foundation
import Models
import Training
import XCTest

/// Tiny corpora, recipes and trainers: small enough for debug builds on two shared cores.
enum Fixture {
    /// A scratch folder removed when the test ends.
    static func scratch(_ test: XCTestCase, _ name: String = #function) -> URL {
        let url = FileManager.default.temporaryDirectory
            .appendingPathComponent("wavemamba-training-\(name.filter { $0.isLetter || $0.isNumber })-\(UUID().uuidString.prefix(8))")
        try! FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        test.addTeardownBlock { try? FileManager.default.removeItem(at: url) }
        return url
    }

    /// `train/` and `valid/` folders of sine and chirp WAVs at 8 kHz: learnable, deterministic.
    static func corpus(in root: URL, trainFiles: Int = 4, validFiles: Int = 2, frames: Int = 256) -> URL {
        let folder = root.appendingPathComponent("corpus")
        for (split, count) in [("train", trainFiles), ("valid", validFiles)] {
            let dir = folder.appendingPathComponent(split)
            try! FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
            for i in 0..<count {
                let f0 = 200.0 + 150.0 * Double(i) + (split == "valid" ? 75 : 0)
                let x: [Float] = (0..<frames).map { n in
                    let t = Double(n) / 8000
                    return Float(0.6 * sin(2 * .pi * (f0 * t + 400 * t * t)) + 0.2 * sin(2 * .pi * 3 * f0 * t))
                }
                try! AudioFile.write(Audio(samples: x, sampleRate: 8000), to: dir.appendingPathComponent("tone\(i).wav").path)
            }
        }
        return folder
    }

    /// A tiny model and schedule: d_model 8, one layer per stage, pooling [2, 2], 64-sample clips.
    static func recipe(steps: Int = 8, batch: Int = 2, clip: Int = 64) -> Recipe {
        var r = Recipe(name: "tiny-test")
        r.data.sampleRate = 8000
        r.data.clipLength = clip
        r.data.memoryBudgetMB = 16
        r.model.dModel = 8
        r.model.nLayers = 1
        r.model.pool = [2, 2]
        r.model.dState = 4
        r.model.scanChunk = 16
        r.train.batchSize = batch
        r.train.steps = steps
        r.train.lr = 5e-3
        r.train.warmupSteps = 2
        r.train.validateEvery = 0
        r.train.validationBatches = 2
        r.train.checkpointEvery = 0
        r.train.logEvery = 1
        r.train.seed = 7
        return r
    }

    static func data(_ recipe: Recipe, _ folder: URL) throws -> TrainingData {
        try TrainingData(folder: folder, settings: recipe.data, batchSize: recipe.train.batchSize)
    }

    static func trainer(_ recipe: Recipe, data: TrainingData, run: URL, resume: Bool = false,
                        options: Trainer.Options = Trainer.Options()) throws -> Trainer {
        try Trainer(recipe: recipe, data: data, runDirectory: run, backend: CPUBackend(threads: 2), resume: resume, options: options)
    }

    /// The repository root (this file is Tests/TrainingTests/…).
    static var repository: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    }

    /// The lines of metrics.jsonl as JSON objects (failing the test on a line that does not parse).
    static func metrics(_ run: URL, file: StaticString = #filePath, line: UInt = #line) -> [[String: Any]] {
        let text = (try? String(contentsOf: run.appendingPathComponent("metrics.jsonl"), encoding: .utf8)) ?? ""
        return text.split(separator: "\n").compactMap { l in
            guard let obj = try? JSONSerialization.jsonObject(with: Data(l.utf8)) as? [String: Any] else {
                XCTFail("metrics line is not a JSON object: \(l)", file: file, line: line)
                return nil
            }
            return obj
        }
    }
}
