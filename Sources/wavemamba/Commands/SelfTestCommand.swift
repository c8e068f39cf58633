import ArgumentParser
import CUDABackend
import CUDAChecks
import Engine
import Foundation

/// Runs the GPU-vs-CPU checks from the binary itself (on a GPU host `swift test` is not
/// available): every backend method, the scan (real and complex, forward, backward, step),
/// the golden files, one training step, step mode, a GPU→CPU checkpoint, and generation
/// through step graphs with on-device sampling.
struct SelfTestCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "selftest",
        abstract: "Check a GPU backend against the CPU backend (kernels, scan, golden files, training step, checkpoints).",
        shouldDisplay: false)

    @OptionGroup var deviceOptions: DeviceOptions

    @Option(help: "Only checks whose name contains this text.")
    var filter: String?

    @Option(help: "Worker threads of the CPU reference.")
    var threads: Int?

    func run() throws {
        let backend = try deviceOptions.makeBackend(threads: threads)
        guard let gpu = backend as? CUDABackend else {
            print("skipped: no CUDA device")
            return
        }
        print("selftest on \(describeBackend(gpu))")
        let t0 = Date()
        do { try gpu.loadKernels() } catch {
            Console.error("\(error)")
            throw ExitCode(1)
        }
        let provenance = Dictionary(grouping: KernelFamily.allCases, by: { gpu.kernelProvenance[$0] ?? "?" })
            .map { "\($0.key): \($0.value.map(\.rawValue).joined(separator: ", "))" }.sorted()
        print("kernels loaded in \(String(format: "%.1f", Date().timeIntervalSince(t0))) s (\(provenance.joined(separator: "; ")))")
        let cpu = CPUBackend(threads: threads)
        var outcomes: [CheckOutcome] = []
        func take(_ list: [CheckOutcome]) {
            for o in list where filter.map({ o.name.contains($0) }) ?? true {
                print(o)
                outcomes.append(o)
            }
        }
        take(KernelChecks(gpu: gpu, cpu: cpu).all())
        take(PrecisionChecks(gpu: gpu, cpu: cpu).all())
        take(S4DChecks(gpu: gpu, cpu: cpu).all())
        take(AttentionChecks(gpu: gpu, cpu: cpu).all())
        if let dir = GoldenChecks.findDirectory() {
            take(try GoldenChecks(backend: gpu, directory: dir).all())
        } else {
            print("golden: skipped (no Tests/Fixtures/golden in the current folder; run from the checkout or set WAVEMAMBA_GOLDEN_DIR)")
        }
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("wavemamba-selftest-\(getpid())")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        take(try ModelChecks(gpu: gpu, cpu: cpu).all(folder: folder))
        take(GraphChecks(gpu: gpu).all())
        let failed = outcomes.filter { !$0.passed }.count
        print("\(outcomes.count - failed) passed, \(failed) failed")
        if failed > 0 { throw ExitCode(1) }
    }
}
