import Foundation
import XCTest

/// `wavemamba train` as a user runs it: errors are one line with status 1; a run writes its
/// folder, resumes, and stops cleanly on Ctrl-C (SIGINT).
final class TrainCommandTests: XCTestCase {
    var dir: URL!

    override func setUpWithError() throws {
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("wm-train-cli-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: dir) }

    /// A tiny recipe and a corpus of tones in train/ and valid/.
    func makeRecipe(steps: Int = 2, extra: String = "") throws -> URL {
        try CLI.writeToneCorpus(in: dir)
        let recipe = dir.appendingPathComponent("tiny.toml")
        try """
        name = "tiny"
        description = "CLI test"
        [data]
        default_data = "corpus"
        sample_rate = 8000
        clip_length = 64
        [model]
        d_model = 8
        n_layers = 1
        pool = [2, 2]
        d_state = 4
        scan_chunk = 16
        [train]
        batch_size = 2
        steps = \(steps)
        validate_every = 1
        validation_batches = 1
        log_every = 1
        \(extra)
        """.write(to: recipe, atomically: true, encoding: .utf8)
        return recipe
    }

    func assertOneLineError(_ r: CLI.Result, contains parts: [String], file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(r.status, 1, "exit status", file: file, line: line)
        let lines = r.stderr.split(separator: "\n")
        XCTAssertEqual(lines.count, 1, "expected one error line, got:\n\(r.stderr)", file: file, line: line)
        XCTAssertTrue(r.stderr.hasPrefix("error: "), r.stderr, file: file, line: line)
        for p in parts { XCTAssertTrue(r.stderr.contains(p), "missing '\(p)' in: \(r.stderr)", file: file, line: line) }
    }

    func testErrorsAreOneLineWithStatus1() throws {
        assertOneLineError(try CLI.run(["train", "no-such-recipe"]), contains: ["no-such-recipe", "no recipe of that name"])
        assertOneLineError(try CLI.run(["train", dir.appendingPathComponent("missing.toml").path]), contains: ["no such recipe file"])
        let recipe = try makeRecipe(extra: "lr_max = 1")
        assertOneLineError(try CLI.run(["train", recipe.path]), contains: [recipe.path, "[train] unknown key 'lr_max'"])
        let good = try makeRecipe()
        assertOneLineError(try CLI.run(["train", good.path, "--data", dir.appendingPathComponent("nowhere").path]),
                           contains: ["nowhere", "no such data folder"])
        assertOneLineError(try CLI.run(["train", "--resume"]), contains: ["--resume", "--out RUNDIR"])
        assertOneLineError(try CLI.run(["train", "--resume", "--out", dir.path]), contains: ["not a run folder"])
    }

    func testTrainResumeAndRunFolder() throws {
        let recipe = try makeRecipe(steps: 4)
        let run = dir.appendingPathComponent("run")
        let first = try CLI.run(["train", recipe.path, "--data", dir.appendingPathComponent("corpus").path, "--out", run.path,
                                 "--steps", "2", "--threads", "1"])
        XCTAssertEqual(first.status, 0, first.stderr)
        for part in ["parameters", "train 4 files → 16 clips; valid 2 files → 8 clips", "step 0: valid", "step 2: valid", "checkpoint: "] {
            XCTAssertTrue(first.stdout.contains(part), "missing '\(part)' in:\n\(first.stdout)")
        }
        for f in ["recipe.toml", "metrics.jsonl", "latest.safetensors", "checkpoints/step-2.safetensors", "checkpoints/step-2.optim.safetensors"] {
            XCTAssertTrue(FileManager.default.fileExists(atPath: run.appendingPathComponent(f).path), "\(f) missing")
        }
        let resumed = try CLI.run(["train", "--resume", "--out", run.path, "--steps", "4", "--threads", "1"])
        XCTAssertEqual(resumed.status, 0, resumed.stderr)
        XCTAssertTrue(resumed.stdout.contains("resumed at step 2"), resumed.stdout)
        XCTAssertTrue(resumed.stdout.contains("done: 4 steps"), resumed.stdout)
        XCTAssertTrue(FileManager.default.fileExists(atPath: run.appendingPathComponent("checkpoints/step-4.safetensors").path))
        let inspect = try CLI.run(["checkpoint", "inspect", run.appendingPathComponent("latest.safetensors").path])
        XCTAssertTrue(inspect.stdout.contains("train_step: 4"), inspect.stdout)
    }

    /// --max-time: past the limit the run saves a checkpoint as on Ctrl-C, writes a stop line
    /// and says how to resume, status 0. A limit of 1 µs is over before the first validation
    /// pass ends, so the session stops before its first step, whatever the machine's speed.
    func testMaxTimeStopsSavesAndSaysHowToResume() throws {
        let recipe = try makeRecipe(steps: 3)
        let run = dir.appendingPathComponent("run")
        let data = dir.appendingPathComponent("corpus").path
        assertOneLineError(try CLI.run(["train", recipe.path, "--data", data, "--out", run.path, "--max-time", "9x"]),
                           contains: ["--max-time must be a positive duration such as \"90s\"", "got \"9x\""])
        let first = try CLI.run(["train", recipe.path, "--data", data, "--out", run.path, "--max-time", "0.000001s", "--threads", "1"])
        XCTAssertEqual(first.status, 0, first.stderr)
        XCTAssertTrue(first.stdout.contains("stopped at the time limit after 0 steps; resume with: wavemamba train --resume --out \(run.path)"), first.stdout)
        let metrics = try String(contentsOf: run.appendingPathComponent("metrics.jsonl"), encoding: .utf8)
        XCTAssertTrue(metrics.contains("\"type\":\"stop\",\"step\":0,") && metrics.contains("\"reason\":\"time_limit\""), metrics)
        XCTAssertTrue(FileManager.default.fileExists(atPath: run.appendingPathComponent("checkpoints/step-0.safetensors").path))
        let saved = try String(contentsOf: run.appendingPathComponent("recipe.toml"), encoding: .utf8)
        XCTAssertTrue(saved.contains("max_time = \"1e-06s\""), saved)
        // The run's recipe keeps the limit; `--max-time off` lifts it for the rest of the run.
        let resumed = try CLI.run(["train", "--resume", "--out", run.path, "--max-time", "off", "--threads", "1"])
        XCTAssertEqual(resumed.status, 0, resumed.stderr)
        XCTAssertTrue(resumed.stdout.contains("done: 3 steps"), resumed.stdout)
    }

    /// [train] sample_every: every N steps clips are generated with the current and the EMA
    /// weights, scored against the valid split, logged as `samples` lines and printed; only the
    /// latest round's clips stay in RUNDIR/samples; `evaluate --report --run` plots the scores.
    func testSamplesWhileTrainingAreScoredLoggedAndPlotted() throws {
        let recipe = try makeRecipe(steps: 4, extra: "ema = 0.9\nsample_every = 2\nsample_clips = 2\nsample_seconds = 0.02")
        let run = dir.appendingPathComponent("run")
        let r = try CLI.run(["train", recipe.path, "--data", dir.appendingPathComponent("corpus").path, "--out", run.path, "--threads", "1"])
        XCTAssertEqual(r.status, 0, r.stderr)
        for part in ["step 2: samples (current weights): 2 clips, IS ", "step 4: samples (ema weights): 2 clips, IS ", "FID ", "event rate "] {
            XCTAssertTrue(r.stdout.contains(part), "missing '\(part)' in:\n\(r.stdout)")
        }
        let lines = try String(contentsOf: run.appendingPathComponent("metrics.jsonl"), encoding: .utf8).split(separator: "\n")
            .compactMap { try JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }.filter { $0["type"] as? String == "samples" }
        XCTAssertEqual(lines.map { $0["step"] as? Int }, [2, 2, 4, 4])
        XCTAssertEqual(lines.map { $0["weights"] as? String }, ["current", "ema", "current", "ema"])
        for l in lines {
            XCTAssertEqual(l["clips"] as? Int, 2)
            for key in ["is", "fid", "event_rate", "generated_event_rate", "reference_event_rate", "seconds"] {
                XCTAssertNotNil(l[key] as? Double ?? (l[key] as? Int).map(Double.init), "\(key) missing in \(l)")
            }
            // The valid tones last 32 ms and are zero-padded to 1 s as `evaluate` loads them: an event each.
            XCTAssertEqual(l["reference_event_rate"] as? Double ?? (l["reference_event_rate"] as? Int).map(Double.init), 1)
        }
        let samples = run.appendingPathComponent("samples")
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: samples.path), ["step-4"])
        for w in ["current", "ema"] {
            let files = try FileManager.default.contentsOfDirectory(atPath: samples.appendingPathComponent("step-4/\(w)").path).sorted()
            XCTAssertEqual(files, ["manifest.jsonl", "sample_000.wav", "sample_001.wav"])
        }
        let report = dir.appendingPathComponent("report.html")
        let e = try CLI.run(["evaluate", "--generated", samples.appendingPathComponent("step-4/current").path,
                             "--reference", dir.appendingPathComponent("corpus").path, "--report", report.path, "--run", run.path, "--examples", "0"])
        XCTAssertEqual(e.status, 0, e.stderr)
        let html = try String(contentsOf: report, encoding: .utf8)
        XCTAssertTrue(html.contains("FID of samples") && html.contains("samples fid (ema)") && html.contains("event rate of samples"), "sample curves missing")
    }

    /// Ctrl-C: the step finishes, a checkpoint is saved, the message says how to resume, status 0.
    func testSIGINTSavesAndSaysHowToResume() throws {
        let recipe = try makeRecipe(steps: 100_000, extra: "checkpoint_every = 0")
        let run = dir.appendingPathComponent("run")
        let p = Process()
        p.executableURL = CLI.binary
        p.arguments = ["train", recipe.path, "--data", dir.appendingPathComponent("corpus").path, "--out", run.path, "--threads", "1"]
        let out = Pipe(), err = Pipe()
        p.standardOutput = out
        p.standardError = err
        try p.run()
        // Wait until it is training (a train line in metrics.jsonl), then interrupt.
        let metrics = run.appendingPathComponent("metrics.jsonl")
        let deadline = Date().addingTimeInterval(120)
        while Date() < deadline {
            if let text = try? String(contentsOf: metrics, encoding: .utf8), text.contains("\"type\":\"train\"") { break }
            usleep(50_000)
        }
        kill(p.processIdentifier, SIGINT)
        let stdout = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        let stderr = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        p.waitUntilExit()
        XCTAssertEqual(p.terminationStatus, 0, stderr)
        XCTAssertTrue(stderr.contains("interrupt: finishing the current step"), stderr)
        XCTAssertTrue(stdout.contains("interrupted at step"), stdout)
        XCTAssertTrue(stdout.contains("resume with: wavemamba train --resume --out \(run.path)"), stdout)
        let steps = (try? FileManager.default.contentsOfDirectory(atPath: run.appendingPathComponent("checkpoints").path)) ?? []
        XCTAssertTrue(steps.contains { $0.hasPrefix("step-") && !$0.contains("optim") }, "no checkpoint saved: \(steps)")
    }
}
