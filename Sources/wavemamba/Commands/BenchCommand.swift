import ArgumentParser
import CUDABackend
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

        @OptionGroup var deviceOptions: DeviceOptions

        /// The CUDA backend when the device resolves to a GPU, nil for the CPU.
        func gpu() throws -> CUDABackend? {
            try deviceOptions.makeBackend(threads: threads) as? CUDABackend
        }

        func emit(_ report: BenchReport, columns: [String: [String]]) throws {
            if json { try report.printJSON() } else { report.printTable(columns: columns) }
        }
    }

    struct Engine: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Matrix products vs raw cblas_sgemm, memory-bound kernels vs memcpy, one MLP training step.")

        @OptionGroup var options: Options

        func run() throws {
            if try options.gpu() != nil {
                throw ValidationError("bench engine measures the CPU kernels; on a GPU use bench scan, train or generate, or `wavemamba selftest --device cuda`")
            }
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

        @Option(help: "Shapes to run instead of the defaults, comma-separated BATCHxDxLENGTHxN (e.g. 1x1536x65536x16).")
        var shapes: String?

        @Option(help: "Which scans to run, comma-separated: real, complex.")
        var kinds = "real,complex"

        func run() throws {
            let shapeList = try shapes.map(ScanBench.parseShapes)
            let complexities = try ScanBench.parseKinds(kinds)
            if let gpu = try options.gpu() {
                let bench = GPUBench(gpu: gpu, quick: options.quick)
                try options.emit(bench.scan(shapes: shapeList ?? bench.scanShapes, complexities: complexities), columns: GPUBench.scanColumns)
                return
            }
            let bench = ScanBench(pool: ThreadPool(threads: options.threads), quick: options.quick)
            let report = bench.run(cases: ScanBench.cases(shapeList ?? bench.defaultShapes, complexities), chunk: chunk, reference: !noReference)
            try options.emit(report, columns: ScanBench.columns)
        }
    }

    struct Train: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Training samples/s and peak memory of SaShiMi-small: complex Mamba beside real Mamba and the S4D baseline.")

        @OptionGroup var options: Options

        @Option(help: "Clips per batch (default 8 on the CPU, 16 on a GPU; per rank with --ranks, default 2).")
        var batch: Int?

        @Option(help: "Samples per clip (default 16000, or 8000 with --ranks).")
        var length: Int?

        @Option(help: "Timed steps (best of; with --ranks, averaged).")
        var steps = 3

        @Option(help: "Data-parallel scaling over MPI: samples/s and efficiency on 1…K ranks (runs mpirun itself).")
        var ranks: Int?

        @Flag(help: "On a GPU: skip the CPU rows (the baseline of the same run).")
        var noCpuBaseline = false

        @Option(help: "Activations kept for the backward, as [train] recompute: none | blocks (each residual block re-run in the backward).")
        var recompute: Recomputation = .none

        @Flag(help: .hidden)
        var scalingWorker = false

        func run() throws {
            if scalingWorker || ranks != nil {
                guard recompute == .none else { throw ValidationError("--recompute applies to the single-process bench, not with --ranks") }
                let bench = ScalingBench(batch: batch ?? (options.quick ? 1 : 2), length: length ?? (options.quick ? 2048 : 8000),
                                         steps: options.quick ? 1 : steps, threads: options.threads, quick: options.quick)
                if scalingWorker { return try bench.work() }
                guard let ranks, ranks >= 1 else { throw ValidationError("--ranks must be at least 1") }
                try options.emit(try bench.run(maxRanks: ranks), columns: ScalingBench.columns)
                return
            }
            if let gpu = try options.gpu() {
                // The GPU figure: SC09-small at batch 16 × 16 000 samples.
                let cpu: [(String, any Backend)] = noCpuBaseline ? [] : [("cpu", CPUBackend(threads: options.threads))]
                let report = GPUBench.train([("\(gpu.device)", gpu)] + cpu,
                                            batch: options.quick ? 2 : batch ?? 16, length: options.quick ? 2048 : length ?? 16000,
                                            steps: options.quick ? 1 : steps, quick: options.quick, recompute: recompute)
                try options.emit(report, columns: GPUBench.modelColumns)
                return
            }
            let bench = ModelBench(backend: CPUBackend(threads: options.threads), quick: options.quick)
            let report = bench.train(batch: options.quick ? 2 : batch ?? 8, length: options.quick ? 2048 : length ?? 16000, steps: options.quick ? 1 : steps,
                                     recompute: recompute)
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

        @Option(help: "Batch sizes (streams), comma-separated (default 1,16; 1,16,256 on a GPU).")
        var batches: String?

        @Flag(help: "Skip the Backend-generic baseline (the fast path only, e.g. to profile it).")
        var fastOnly = false

        @Flag(help: "With --device cuda: skip the CPU rows (the GPU's own baselines stay).")
        var noCpuBaseline = false

        func run() throws {
            let kindList = try kinds.split(separator: ",").map { k in
                guard let kind = BlockKind(rawValue: String(k)) else { throw ValidationError("--kinds: unknown block kind '\(k)'; use mamba-complex, mamba or s4d") }
                return kind
            }
            let gpu = try options.gpu()
            let batchList = try (batches ?? (gpu == nil ? "1,16" : "1,16,256")).split(separator: ",").map { b in
                guard let n = Int(b), n > 0 else { throw ValidationError("--batches: '\(b)' is not a positive batch size") }
                return n
            }
            if let gpu {
                let cpu: [(String, any Backend)] = fastOnly || noCpuBaseline ? [] : [("cpu", CPUBackend(threads: options.threads))]
                let report = GPUBench.generate([("\(gpu.device)", gpu)] + cpu, kinds: kindList.filter { $0 != .s4d }, batches: batchList,
                                               samples: options.quick ? 64 : samples, baseline: !fastOnly, quick: options.quick)
                try options.emit(report, columns: GPUBench.modelColumns)
                return
            }
            let bench = ModelBench(backend: CPUBackend(threads: options.threads), quick: options.quick)
            let report = bench.generate(kinds: kindList, batches: batchList, samples: options.quick ? 64 : samples, baseline: !fastOnly)
            try options.emit(report, columns: ModelBench.columns)
        }
    }
}

extension Recomputation: ExpressibleByArgument {}
