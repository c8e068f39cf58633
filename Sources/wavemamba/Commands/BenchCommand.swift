import ArgumentParser
import Engine
import Kernels
import Foundation
import Models

struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Measure speed, each figure beside a baseline measured in the same run.",
        discussion: "Build in release mode for meaningful numbers: swift run -c release wavemamba bench …",
        subcommands: [Engine.self, Scan.self, Train.self, Generate.self])

    struct Options: ParsableArguments {
        @Flag(help: "Print JSON (machine-readable) instead of tables.")
        var json = false

        @Option(help: "Worker threads (default: all cores, or WAVEMAMBA_THREADS).")
        var threads: Int?

        @Flag(help: "Smaller sizes and fewer repeats (a smoke run, not a measurement).")
        var quick = false

        func emit(_ report: BenchReport, columns: [String: [String]]) throws {
            if json { try report.printJSON() } else { report.printTable(columns: columns) }
        }
    }

    struct Engine: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Matrix products vs raw cblas_sgemm, memory-bound kernels vs memcpy, one MLP training step.")

        @OptionGroup var options: Options

        func run() throws {
            let report = EngineBench(backend: CPUBackend(threads: options.threads), quick: options.quick).run()
            try options.emit(report, columns: EngineBench.columns)
        }
    }

    struct Scan: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Fused selective scan (real and complex) vs the straightforward loop: time, state updates/s, memory.")

        @OptionGroup var options: Options

        @Option(help: "Time steps between stored states in the training forward.")
        var chunk = 64

        @Flag(help: "Skip the (slow) reference loop.")
        var noReference = false

        func run() throws {
            let report = ScanBench(pool: ThreadPool(threads: options.threads), quick: options.quick).run(chunk: chunk, reference: !noReference)
            try options.emit(report, columns: ScanBench.columns)
        }
    }

    struct Train: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Training samples/s and peak memory of SaShiMi-small: complex Mamba beside real Mamba and the S4D baseline.")

        @OptionGroup var options: Options

        @Option(help: "Clips per batch.")
        var batch = 8

        @Option(help: "Samples per clip.")
        var length = 16000

        @Option(help: "Timed steps (best of).")
        var steps = 3

        func run() throws {
            let bench = ModelBench(backend: CPUBackend(threads: options.threads), quick: options.quick)
            let report = bench.train(batch: options.quick ? 2 : batch, length: options.quick ? 2048 : length, steps: options.quick ? 1 : steps)
            try options.emit(report, columns: ModelBench.columns)
        }
    }

    struct Generate: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Step-mode generation real-time factor at batch 1 and 16: complex Mamba beside real Mamba and S4D.")

        @OptionGroup var options: Options

        @Option(help: "Samples generated per stream (after warm-up).")
        var samples = 1600

        @Option(help: "Block kinds to run, comma-separated (mamba-complex, mamba, s4d).")
        var kinds = "mamba-complex,mamba,s4d"

        @Option(help: "Batch sizes (streams), comma-separated.")
        var batches = "1,16"

        @Flag(help: "Skip the Backend-generic baseline (the fast path only, e.g. to profile it).")
        var fastOnly = false

        func run() throws {
            let kindList = try kinds.split(separator: ",").map { k in
                guard let kind = BlockKind(rawValue: String(k)) else { throw ValidationError("--kinds: unknown block kind '\(k)'; use mamba-complex, mamba or s4d") }
                return kind
            }
            let batchList = try batches.split(separator: ",").map { b in
                guard let n = Int(b), n > 0 else { throw ValidationError("--batches: '\(b)' is not a positive batch size") }
                return n
            }
            let bench = ModelBench(backend: CPUBackend(threads: options.threads), quick: options.quick)
            let report = bench.generate(kinds: kindList, batches: batchList, samples: options.quick ? 64 : samples, baseline: !fastOnly)
            try options.emit(report, columns: ModelBench.columns)
        }
    }
}
