import ArgumentParser
import CUDABackend
import Foundation

/// Compiles the embedded kernels with NVRTC into a folder of prebuilt CUBINs, for GPU hosts
/// without NVRTC: point WAVEMAMBA_CUDA_KERNELS at the folder there.
struct CUDAKernelsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cuda-kernels",
        abstract: "Precompile the CUDA kernels (NVRTC) into a folder for WAVEMAMBA_CUDA_KERNELS.",
        shouldDisplay: false)

    @Option(help: "GPU architectures, comma-separated (sm_90 = H100, sm_80 = A100).")
    var arch = "sm_80,sm_90"

    @Option(help: "Output folder.")
    var out: String

    func run() throws {
        let nvrtc: NVRTC
        do { nvrtc = try NVRTC() } catch {
            Console.error("\(error)")
            throw ExitCode(1)
        }
        let dir = URL(fileURLWithPath: out)
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        for a in arch.split(separator: ",").map({ String($0).trimmingCharacters(in: .whitespaces) }) {
            for f in KernelFamily.allCases {
                let cubin = try nvrtc.compile(source: f.source, name: f.fileName, architecture: a)
                let url = dir.appendingPathComponent(KernelCache.prebuiltName(source: f.source, architecture: a, nvrtcMajor: nvrtc.version.major))
                try Data(cubin).write(to: url, options: .atomic)
            }
            print("\(a): \(KernelFamily.allCases.count) kernel families compiled with \(nvrtc.description)")
        }
    }
}
