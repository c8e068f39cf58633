import ArgumentParser
import CUDABackend
import Engine
import Foundation

/// `--device auto|cpu|cuda[:N]`.
enum DeviceChoice: Equatable, ExpressibleByArgument, CustomStringConvertible {
    case auto
    case cpu
    case cuda(Int)

    init?(argument: String) {
        switch argument.lowercased() {
        case "auto": self = .auto
        case "cpu": self = .cpu
        case "cuda", "gpu": self = .cuda(0)
        default:
            let parts = argument.lowercased().split(separator: ":", omittingEmptySubsequences: false)
            guard parts.count == 2, parts[0] == "cuda", let n = Int(parts[1]), n >= 0 else { return nil }
            self = .cuda(n)
        }
    }

    var description: String {
        switch self {
        case .auto: return "auto"
        case .cpu: return "cpu"
        case .cuda(let n): return "cuda:\(n)"
        }
    }

    static var allValueStrings: [String] { ["auto", "cpu", "cuda", "cuda:N"] }
}

extension MatmulPrecision: ExpressibleByArgument {}

/// The shared `--device` option of train, generate, nll, evaluate and the benches.
struct DeviceOptions: ParsableArguments {
    @Option(help: ArgumentHelp("Where tensors live and kernels run: auto (the first usable GPU, else the CPU), cpu, cuda or cuda:N.",
                               valueName: "auto|cpu|cuda[:N]"))
    var device: DeviceChoice = .auto

    @Option(help: ArgumentHelp("GEMM precision on a GPU: fp32, tf32 or bf16 (tensor cores, inputs rounded inside the GEMM, fp32 accumulation; parameters, optimizer state, activations and the scan state stay fp32).",
                               valueName: "fp32|tf32|bf16"))
    var precision: MatmulPrecision = .fp32

    /// The backend for the choice. `auto` without a usable GPU takes the CPU with a one-line
    /// note on stderr; an explicit `cuda` that cannot be used is an error saying why.
    /// `cpuOnly` names a part of the job the GPU backend cannot run yet (MPI ranks, S4D step mode): `auto`
    /// then takes the CPU, an explicit `cuda` is an error. `quiet` drops the note (data-parallel
    /// ranks other than 0 print errors only).
    func makeBackend(threads: Int?, cpuOnly: String? = nil, quiet: Bool = false) throws -> any Backend {
        if let cpuOnly {
            switch device {
            case .cuda(let n): throw DeviceError(message: "--device cuda:\(n): \(cpuOnly) run on the CPU only for now; use --device cpu")
            case .auto: if !quiet { Console.note("device: cpu (\(cpuOnly) run on the CPU only)") }
            case .cpu: break
            }
            return try cpuBackend(threads: threads)
        }
        switch try resolve(quiet: quiet) {
        case .cuda(let n):
            do {
                let gpu = try CUDABackend(ordinal: n, tuning: CUDATuning.fromEnvironment())
                try gpu.setMatmulPrecision(precision)
                return gpu
            } catch let e as CUDAError {
                throw DeviceError(message: "--device cuda:\(n): \(e.message)")
            }
        default:
            return try cpuBackend(threads: threads)
        }
    }

    private func cpuBackend(threads: Int?) throws -> any Backend {
        if precision != .fp32 {
            throw DeviceError(message: "--precision \(precision.rawValue) needs a GPU (the CPU computes in fp32); drop it or use --device cuda")
        }
        return CPUBackend(threads: threads)
    }

    /// `auto` resolved to cpu or cuda:0 (the note is printed here unless `quiet`).
    func resolve(quiet: Bool = false) throws -> DeviceChoice {
        switch device {
        case .auto:
            switch CUDADevices.probe() {
            case .available(_, let devices) where !devices.isEmpty:
                return .cuda(0)
            case .available:
                if !quiet { Console.note("device: cpu (no CUDA device)") }
            case .unavailable(let reason):
                if !quiet { Console.note("device: cpu (no usable GPU: \(reason))") }
            }
            return .cpu
        case .cuda(let n):
            if case .unavailable(let reason) = CUDADevices.probe() { throw DeviceError(message: "--device cuda:\(n): \(reason)") }
            return device
        case .cpu:
            return .cpu
        }
    }
}

/// One line naming where a backend runs: "cpu, 16 threads" or "cuda:0, NVIDIA H100 …".
func describeBackend(_ backend: any Backend) -> String {
    if let cpu = backend as? CPUBackend { return "cpu, \(cpu.pool.threads) threads" }
    if let gpu = backend as? CUDABackend {
        return "\(gpu.device), \(gpu.info.name) (\(gpu.info.architecture)), GEMM: \(gpu.gemmProvider)"
    }
    return "\(backend.device)"
}

/// A device that was asked for and cannot be used (printed as `Error: …`, exit status 1).
struct DeviceError: Error, CustomStringConvertible {
    var message: String
    var description: String { message }
}
