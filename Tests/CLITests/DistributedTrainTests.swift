import Foundation
import SafeTensors
import XCTest

/// `mpirun -np 2 wavemamba train` as a user runs it: two ranks end with the parameters of one
/// process on the same global batch, only rank 0 writes the run folder, a rank that dies or
/// hangs stops the job promptly with a message naming it, and the last checkpoint resumes in
/// one process. Each test prints `skipped: mpirun not found` and passes where Open MPI is
/// not installed (CI installs openmpi-bin).
final class DistributedTrainTests: XCTestCase {
    var dir: URL!

    override func setUpWithError() throws {
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("wm-mpi-cli-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: dir) }

    /// `mpirun` on PATH, or nil (after printing the skip line).
    func mpirun() -> String? {
        let paths = (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin").split(separator: ":")
        if let p = paths.map({ "\($0)/mpirun" }).first(where: FileManager.default.isExecutableFile(atPath:)) { return p }
        print("skipped: mpirun not found")
        return nil
    }

    /// Root (CI containers) needs --allow-run-as-root; two ranks on a 2-core box, --oversubscribe
    /// when fewer cores; single-copy shared memory (CMA) is off, as containers often forbid it.
    func launcher(_ mpirun: String, ranks: Int = 2) -> [String] {
        [mpirun, "--allow-run-as-root", "--oversubscribe", "--bind-to", "none",
         "--mca", "btl_vader_single_copy_mechanism", "none", "-np", String(ranks)]
    }

    /// Tones in train/ and valid/, and a recipe with dropout (elementwise in the Mamba blocks'
    /// residual, tied in the S4D centre), so that the per-sample masks are part of the check.
    func makeRecipe(steps: Int) throws -> (recipe: URL, data: URL) {
        try CLI.writeToneCorpus(in: dir, splitOffset: 50)
        let recipe = dir.appendingPathComponent("tiny.toml")
        try """
        name = "tiny-mpi"
        [data]
        sample_rate = 8000
        clip_length = 64
        [model]
        d_model = 8
        n_layers = 1
        pool = [2, 2]
        d_state = 4
        scan_chunk = 16
        dropout = 0.1
        center = "s4d"
        [train]
        batch_size = 4
        steps = \(steps)
        lr = 5e-3
        warmup_steps = 0
        validate_every = 1
        validation_batches = 3
        checkpoint_every = 2
        log_every = 1
        """.write(to: recipe, atomically: true, encoding: .utf8)
        return (recipe, dir.appendingPathComponent("corpus"))
    }

    func train(_ recipe: URL, data: URL, out: URL, prefix: [String] = [], environment: [String: String] = [:],
               extra: [String] = []) throws -> CLI.Result {
        try CLI.run(["train", recipe.path, "--data", data.path, "--out", out.path, "--threads", "1"] + extra,
                    prefix: prefix, environment: environment)
    }

    /// How far the parameters in `a` are from those in `b`: `global`, ‖a − b‖₂ / ‖b‖₂ over the
    /// whole parameter vector; `perTensor`, the largest max|a − b| / max|b| of one tensor.
    func relativeDifference(_ a: URL, _ b: URL) throws -> (global: Double, perTensor: Double) {
        let fa = try SafeTensorsFile(contentsOf: a), fb = try SafeTensorsFile(contentsOf: b)
        XCTAssertEqual(fa.names.sorted(), fb.names.sorted())
        var worst = 0.0, worstName = "", diff2 = 0.0, norm2 = 0.0
        for name in fb.names {
            let x = try fa.floats(name), y = try fb.floats(name)
            XCTAssertEqual(x.count, y.count, name)
            for (p, q) in zip(x, y) {
                diff2 += Double(p - q) * Double(p - q)
                norm2 += Double(q) * Double(q)
            }
            let scale = max(Double(y.map { abs($0) }.max() ?? 0), 1e-30)
            let diff = zip(x, y).map { Double(abs($0 - $1)) }.max() ?? 0
            if diff / scale > worst { worst = diff / scale; worstName = name }
        }
        let global = (diff2 / max(norm2, 1e-30)).squareRoot()
        print("relative difference: \(global) over all parameters (L2); per tensor at most \(worst) (\(worstName))")
        return (global, worst)
    }

    func metricLines(_ run: URL, type: String) throws -> [String] {
        try String(contentsOf: run.appendingPathComponent("metrics.jsonl"), encoding: .utf8)
            .split(separator: "\n").map(String.init).filter { $0.contains("\"type\":\"\(type)\"") }
    }

    func testTwoRanksEqualOneProcessAndOnlyRankZeroWrites() throws {
        guard let mpirun = mpirun() else { return }
        let (recipe, data) = try makeRecipe(steps: 3)
        let one = dir.appendingPathComponent("one"), two = dir.appendingPathComponent("two")
        let r1 = try train(recipe, data: data, out: one)
        XCTAssertEqual(r1.status, 0, r1.stderr)
        let r2 = try train(recipe, data: data, out: two, prefix: launcher(mpirun))
        XCTAssertEqual(r2.status, 0, r2.stdout + r2.stderr)

        // Equal up to summation order. Adam divides each gradient element by its own running
        // magnitude, so an element whose gradient nearly cancels turns a last-bit difference
        // into a visible one in its tensor; the whole vector stays within 1e-5.
        let diff = try relativeDifference(two.appendingPathComponent("latest.safetensors"), one.appendingPathComponent("latest.safetensors"))
        XCTAssertLessThanOrEqual(diff.global, 1e-5)
        XCTAssertLessThanOrEqual(diff.perTensor, 1e-4)
        // The last step alone moved the weights beyond that tolerance (the check has teeth:
        // ranks that drew dropout masks by local instead of global sample index differ by 3e-4).
        let moved = try relativeDifference(one.appendingPathComponent("latest.safetensors"), one.appendingPathComponent("checkpoints/step-2.safetensors"))
        XCTAssertGreaterThan(moved.global, 1e-5)

        // Rank 0 alone speaks and writes: one header, one line per event in metrics.jsonl.
        XCTAssertEqual(r2.stdout.components(separatedBy: "recipe  tiny-mpi").count - 1, 1, r2.stdout)
        XCTAssertTrue(r2.stdout.contains("ranks   2 (MPI (Open MPI), 2 ranks): 2 clips of each batch per rank"), r2.stdout)
        XCTAssertEqual(try metricLines(two, type: "start").count, 1)
        XCTAssertEqual(try metricLines(two, type: "train").count, 3)
        XCTAssertEqual(try metricLines(two, type: "valid").count, 4)
        XCTAssertEqual(try metricLines(two, type: "checkpoint").count, 2)
        let files = try FileManager.default.subpathsOfDirectory(atPath: two.path).filter { !$0.hasSuffix(".lock") }.sorted()
        XCTAssertEqual(files, ["checkpoints", "checkpoints/step-2.optim.safetensors", "checkpoints/step-2.safetensors",
                               "checkpoints/step-3.optim.safetensors", "checkpoints/step-3.safetensors",
                               "latest.safetensors", "metrics.jsonl", "recipe.toml"])
        // Validation, split over the ranks, gives one process's NLL.
        let v1 = try metricLines(one, type: "valid"), v2 = try metricLines(two, type: "valid")
        XCTAssertEqual(v1.count, v2.count)
        for (a, b) in zip(v1, v2) { XCTAssertEqual(try Self.number("loss", a), try Self.number("loss", b), accuracy: 1e-5) }

        // A global batch that does not divide among the ranks is refused, naming both numbers.
        let three = try train(recipe, data: data, out: dir.appendingPathComponent("three"), prefix: launcher(mpirun, ranks: 3))
        XCTAssertNotEqual(three.status, 0)
        XCTAssertTrue(three.stderr.contains("the global batch of 4 clips does not divide among 3 ranks"), three.stderr)
    }

    /// Rank 1 kills itself (SIGKILL) before step 3: mpirun stops the job, naming rank 1; the
    /// checkpoint of step 2 is intact and resumes in one process to one process's result.
    func testKilledRankStopsTheJobAndTheRunResumesInOneProcess() throws {
        guard let mpirun = mpirun() else { return }
        let (recipe, data) = try makeRecipe(steps: 3)
        let one = dir.appendingPathComponent("one"), two = dir.appendingPathComponent("two")
        XCTAssertEqual(try train(recipe, data: data, out: one).status, 0)

        let started = Date()
        let r = try train(recipe, data: data, out: two, prefix: launcher(mpirun), environment: ["WAVEMAMBA_TEST_FAULT": "1:2:kill"])
        let seconds = Date().timeIntervalSince(started)
        print("killed rank 1: mpirun exited with status \(r.status) after \(String(format: "%.1f", seconds)) s")
        XCTAssertNotEqual(r.status, 0)
        XCTAssertLessThan(seconds, 60)
        XCTAssertTrue((r.stdout + r.stderr).contains("rank 1"), r.stdout + r.stderr)
        XCTAssertEqual(RunDirectoryFiles.temporary(two), [])

        let resumed = try CLI.run(["train", "--resume", "--out", two.path, "--threads", "1"])
        XCTAssertEqual(resumed.status, 0, resumed.stderr)
        XCTAssertTrue(resumed.stdout.contains("resumed at step 2"), resumed.stdout)
        let diff = try relativeDifference(two.appendingPathComponent("latest.safetensors"), one.appendingPathComponent("latest.safetensors"))
        XCTAssertLessThanOrEqual(diff.global, 1e-5)
        XCTAssertLessThanOrEqual(diff.perTensor, 1e-4)
    }

    /// Rank 1 hangs before step 3: rank 0's collective times out (5 s here) and it ends the job
    /// with an error naming rank 1, after saving the consistent state of step 2.
    func testHungRankIsNamedWithinTheTimeout() throws {
        guard let mpirun = mpirun() else { return }
        let (recipe, data) = try makeRecipe(steps: 3)
        let two = dir.appendingPathComponent("two")
        let started = Date()
        let r = try train(recipe, data: data, out: two, prefix: launcher(mpirun),
                          environment: ["WAVEMAMBA_TEST_FAULT": "1:2:hang", "WAVEMAMBA_COLLECTIVE_TIMEOUT": "5"])
        let seconds = Date().timeIntervalSince(started)
        print("hung rank 1: mpirun exited with status \(r.status) after \(String(format: "%.1f", seconds)) s")
        XCTAssertNotEqual(r.status, 0)
        XCTAssertLessThan(seconds, 60)
        XCTAssertTrue(r.stderr.contains("error: rank 0 of 2: rank 1 of 2 did not reach the gradient all-reduce of step 3 within 5 s"), r.stderr)
        XCTAssertEqual(RunDirectoryFiles.temporary(two), [])
        XCTAssertTrue(FileManager.default.fileExists(atPath: two.appendingPathComponent("checkpoints/step-2.optim.safetensors").path))
    }

    /// Launched as by mpirun (its environment) where libmpi cannot be loaded: one error line
    /// naming the library and the Debian packages, status 1, no run folder. Needs no MPI.
    func testMissingMPILibraryIsAClearError() throws {
        let (recipe, data) = try makeRecipe(steps: 1)
        let out = dir.appendingPathComponent("run")
        let r = try train(recipe, data: data, out: out,
                          environment: ["OMPI_COMM_WORLD_SIZE": "2", "WAVEMAMBA_MPI_LIBRARY": "/nonexistent/libmpi.so.40"])
        XCTAssertEqual(r.status, 1)
        XCTAssertEqual(r.stderr.split(separator: "\n").count, 1, r.stderr)
        for part in ["error: started by mpirun", "/nonexistent/libmpi.so.40", "apt-get install openmpi-bin libopenmpi-dev"] {
            XCTAssertTrue(r.stderr.contains(part), "missing '\(part)' in: \(r.stderr)")
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: out.path))
    }

    static func number(_ key: String, _ line: String) throws -> Double {
        let object = try JSONSerialization.jsonObject(with: Data(line.utf8)) as! [String: Any]
        return (object[key] as! NSNumber).doubleValue
    }

    /// --max-time under MPI: the ranks agree through the step's all-reduce. With a 1 µs limit
    /// no rank stops before the first step (nothing is agreed yet), and every rank is past the
    /// limit at that step's all-reduce, so both stop after step 1, rank 0 saving the checkpoint.
    func testMaxTimeStopsEveryRankAtTheSameStep() throws {
        guard let mpirun = mpirun() else { return }
        let (recipe, data) = try makeRecipe(steps: 4)
        let run = dir.appendingPathComponent("run")
        let r = try train(recipe, data: data, out: run, prefix: launcher(mpirun), extra: ["--max-time", "0.000001s"])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertTrue(r.stdout.contains("stopped at the time limit after 1 steps; resume with: wavemamba train --resume --out \(run.path)"), r.stdout)
        XCTAssertTrue(FileManager.default.fileExists(atPath: run.appendingPathComponent("checkpoints/step-1.safetensors").path))
        let metrics = try String(contentsOf: run.appendingPathComponent("metrics.jsonl"), encoding: .utf8)
        XCTAssertTrue(metrics.contains("\"type\":\"stop\",\"step\":1,") && metrics.contains("\"reason\":\"time_limit\""), metrics)
    }
}

/// Temp files a write left behind in a run folder (an atomic write leaves none).
enum RunDirectoryFiles {
    static func temporary(_ run: URL) -> [String] {
        let fm = FileManager.default
        return [run, run.appendingPathComponent("checkpoints")].flatMap { d in
            ((try? fm.contentsOfDirectory(atPath: d.path)) ?? []).filter { $0.contains(".tmp-") }
        }
    }
}
