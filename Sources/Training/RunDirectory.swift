import Engine
import Foundation
import SafeTensors

/// The folder of one training run:
///
/// ```
/// RUNDIR/recipe.toml                          the resolved recipe
/// RUNDIR/metrics.jsonl                        one JSON object per line (train, valid, skip, checkpoint, …)
/// RUNDIR/checkpoints/step-N.safetensors       weights after N steps (ModelCheckpoint format)
/// RUNDIR/checkpoints/step-N.optim.safetensors Adam moments, EMA, step, data position, seed
/// RUNDIR/latest.safetensors                   a copy of the newest step-N weights
/// RUNDIR/latest-ema.safetensors               the EMA weights at that step (if [train] ema > 0)
/// ```
///
/// Every file is written atomically (temp file, fsync, rename), and the optimiser companion
/// before the weights, so a weights file on disk always has a complete companion.
public struct RunDirectory: Sendable {
    public let root: URL

    public init(_ root: URL) { self.root = root.standardizedFileURL }

    public var recipeURL: URL { root.appendingPathComponent("recipe.toml") }
    public var metricsURL: URL { root.appendingPathComponent("metrics.jsonl") }
    public var checkpointsURL: URL { root.appendingPathComponent("checkpoints") }
    public var latestURL: URL { root.appendingPathComponent("latest.safetensors") }
    public var latestEMAURL: URL { root.appendingPathComponent("latest-ema.safetensors") }

    public func checkpointURL(step: Int) -> URL { checkpointsURL.appendingPathComponent("step-\(step).safetensors") }

    /// `runs/<recipe>-<yyyyMMdd-HHmmss>` under `base`.
    public static func defaultURL(recipe: String, base: URL, date: Date = Date()) -> URL {
        let f = DateFormatter()
        f.locale = Locale(identifier: "en_US_POSIX")
        f.dateFormat = "yyyyMMdd-HHmmss"
        return base.appendingPathComponent("runs").appendingPathComponent("\(recipe)-\(f.string(from: date))")
    }

    /// Creates the folders (and parents).
    public func create() throws {
        do {
            try FileManager.default.createDirectory(at: checkpointsURL, withIntermediateDirectories: true)
        } catch {
            throw TrainingError(path: root.path, "cannot create the run folder (\(error.localizedDescription))",
                                fix: "choose a writable --out folder")
        }
    }

    /// Steps of the complete checkpoints (weights and companion both present), newest first.
    public func checkpointSteps() -> [Int] {
        let fm = FileManager.default
        let names = (try? fm.contentsOfDirectory(atPath: checkpointsURL.path)) ?? []
        var steps: [Int] = []
        for n in names where n.hasPrefix("step-") && n.hasSuffix(".safetensors") && !n.hasSuffix(".optim.safetensors") {
            guard let s = Int(n.dropFirst(5).dropLast(12)) else { continue }
            if fm.fileExists(atPath: Checkpoint.companionURL(checkpointURL(step: s)).path) { steps.append(s) }
        }
        return steps.sorted(by: >)
    }

    /// Whether anything of a run is here already (a fresh run must not overwrite it).
    public var holdsRun: Bool {
        let fm = FileManager.default
        return fm.fileExists(atPath: metricsURL.path) || !checkpointSteps().isEmpty || fm.fileExists(atPath: latestURL.path)
    }

    /// Removes temp files that a killed process left mid-write (`.NAME.tmp-PID`, AtomicFile's
    /// pattern); the files they were replacing are intact. Returns what was removed.
    @discardableResult
    public func removeStaleTempFiles() -> [String] {
        var removed: [String] = []
        let fm = FileManager.default
        for dir in [root, checkpointsURL] {
            for n in (try? fm.contentsOfDirectory(atPath: dir.path)) ?? [] where n.hasPrefix(".") && n.contains(".tmp-") {
                let path = dir.appendingPathComponent(n).path
                if (try? fm.removeItem(atPath: path)) != nil { removed.append(path) }
            }
        }
        return removed
    }

    /// Temp files present now (a finished write leaves none).
    public func tempFiles() -> [String] {
        let fm = FileManager.default
        return [root, checkpointsURL].flatMap { dir in
            ((try? fm.contentsOfDirectory(atPath: dir.path)) ?? []).filter { $0.contains(".tmp-") }.map { dir.appendingPathComponent($0).path }
        }
    }

    /// An exclusive lock on the folder (`flock` on `.lock`), so that two processes cannot
    /// train into one run folder at once; released by `RunLock.release` or at exit.
    public func lock() throws -> RunLock {
        let path = root.appendingPathComponent(".lock").path
        let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard fd >= 0 else {
            throw TrainingError(path: path, "cannot open the lock file: \(String(cString: strerror(errno)))", fix: "check that the run folder is writable")
        }
        guard flock(fd, LOCK_EX | LOCK_NB) == 0 else {
            close(fd)
            throw TrainingError(path: root.path, "another `wavemamba train` is using this run folder",
                                fix: "wait for it to finish (or stop it with Ctrl-C), or choose another --out folder")
        }
        return RunLock(fd: fd)
    }

    /// Writes `text` to `url` atomically.
    static func write(_ text: String, to url: URL) throws {
        do {
            try AtomicFile.write(Data(text.utf8), to: url)
        } catch let e as SafeTensorsError {
            throw TrainingError(path: url.path, e.reason, fix: "check that the run folder is writable and the disk is not full")
        }
    }

    /// Replaces `latest.safetensors` with a copy of `source`, atomically.
    func copyToLatest(_ source: URL, as target: URL) throws {
        do {
            try AtomicFile.write(try Data(contentsOf: source), to: target)
        } catch {
            throw TrainingError(path: target.path, "cannot write (\(error))", fix: "check that the run folder is writable and the disk is not full")
        }
    }
}

/// A held run-folder lock.
public final class RunLock {
    private var fd: Int32

    init(fd: Int32) { self.fd = fd }

    public func release() {
        if fd >= 0 { flock(fd, LOCK_UN); close(fd); fd = -1 }
    }

    deinit { release() }
}
