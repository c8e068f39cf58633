import ArgumentParser
import Engine
import Foundation

struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Measure speed, each figure beside a baseline measured in the same run.",
        discussion: "Build in release mode for meaningful numbers: swift run -c release wavemamba bench …",
        subcommands: [Engine.self])

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
}
