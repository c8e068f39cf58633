// swift-tools-version:6.0
// The package graph is the architecture diagram (see docs/architecture.md):
// each layer is one target and may import only the layers below it. Kernels is for the
// backends: a target above the Engine lists it only where noted below (SwiftPM still lets a
// target import a transitive dependency, so Tests/EngineTests/LayeringTests checks the imports).
import PackageDescription

// Kernels are compiled for x86-64-v3 (AVX2 + FMA): without it every SIMD FMA is a
// library call to fmaf. Every machine this project targets (dev, CI, GPU hosts) has it.
let kernelFlags: [SwiftSetting] = [
    .unsafeFlags(["-Xcc", "-march=x86-64-v3", "-Ounchecked", "-enforce-exclusivity=unchecked"]),
]

let package = Package(
    name: "wavemamba",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "wavemamba", targets: ["wavemamba"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/LebJe/TOMLKit", from: "0.6.0"),
    ],
    targets: [
        // System libraries, found through pkg-config (Debian: lib*-dev packages).
        .systemLibrary(name: "CSndFile", path: "Sources/CSndFile", pkgConfig: "sndfile",
                       providers: [.apt(["libsndfile1-dev"])]),
        .systemLibrary(name: "CSampleRate", path: "Sources/CSampleRate", pkgConfig: "samplerate",
                       providers: [.apt(["libsamplerate0-dev"])]),
        .systemLibrary(name: "CFFTW", path: "Sources/CFFTW", pkgConfig: "fftw3f",
                       providers: [.apt(["libfftw3-dev"])]),
        .systemLibrary(name: "COpenBLAS", path: "Sources/COpenBLAS", pkgConfig: "openblas",
                       providers: [.apt(["libopenblas-dev", "liblapacke-dev"])]),

        // Audio I/O: files, resampling, quantisation, folders and splits. Knows no tensor.
        .target(name: "AudioIO", dependencies: ["CSndFile", "CSampleRate"]),

        // Utilities shared by the kernels and the layers above the Engine, which are not kernels:
        // the CPU thread pool. The Engine re-exports it.
        .target(name: "Support", swiftSettings: kernelFlags),

        // Raw-pointer CPU kernels (SIMD + threads); the only layer that knows a backend.
        .target(name: "Kernels", dependencies: ["COpenBLAS", "Support"], swiftSettings: kernelFlags),

        // The safetensors checkpoint format (what PyTorch and Hugging Face users load).
        .target(name: "SafeTensors"),

        // Tensors, devices, autodiff tape, optimiser, checkpoints.
        .target(name: "Engine", dependencies: ["Kernels", "SafeTensors", "Support"]),

        // Fused generation steps: what a backend's fused step kernels read (a residual Mamba
        // block's step, the output head) and the protocol Models and Generation call them
        // through (step graphs, on-device sampling). Above the Engine, which knows no model;
        // the backends that fuse steps (CUDABackend) implement it.
        .target(name: "FusedSteps", dependencies: ["Engine"]),

        // FFTW plans: FFT convolution, STFT, mel features. Host raw-pointer code beside the
        // kernels (compiled with their flags); FFTConvolution uses Kernels' Layout.transpose.
        .target(name: "Spectral", dependencies: ["CFFTW", "Kernels", "Support"], swiftSettings: kernelFlags),

        // Sequence layers: selective SSM (Mamba, real and complex), S4D, and the modules they use.
        .target(name: "Layers", dependencies: ["Engine", "Spectral"]),

        // SaShiMi's U-Net of Mamba / S4D blocks, forward and step mode (one step schedule, several
        // executors). Kernels only for the CPU fast step (SaShiMiFastStep packs weights and calls
        // MambaStepKernel etc. directly), until the CPU backend has fused steps of its own.
        .target(name: "Models", dependencies: ["Layers", "Engine", "FusedSteps", "Kernels", "Spectral"]),

        // Step-mode sampling and audio output.
        .target(name: "Generation", dependencies: ["Models", "Engine", "FusedSteps", "AudioIO"]),

        // Scoring generated audio: log-mel features, the folder-labelled Mamba classifier,
        // FID / IS / mIS / AM, classifier-free spectral statistics, the HTML report.
        .target(name: "Evaluation", dependencies: ["AudioIO", "Spectral", "Support", "Engine", "Layers", "SafeTensors", "COpenBLAS"]),

        // Data parallelism: MPI (loaded at run time) for CPU processes.
        .target(name: "Distributed"),

        // Recipes (TOML), the training loop, run folders, checkpoints, resume, NaN guard.
        .target(name: "Training", dependencies: [
            "AudioIO", "Distributed", "Engine", "Models", "SafeTensors",
            .product(name: "TOMLKit", package: "TOMLKit"),
        ]),

        // The CUDA backend: driver API, NVRTC and cuBLAS loaded at run time (dlopen), so the
        // binary builds and runs without CUDA; kernels are the CUDA C files in Kernels/.
        .target(name: "CUDABackend", dependencies: ["Engine", "FusedSteps", "Kernels"], resources: [
            .embedInCode("Kernels/elementwise.cu"), .embedInCode("Kernels/layout.cu"), .embedInCode("Kernels/reduce.cu"),
            .embedInCode("Kernels/norms.cu"), .embedInCode("Kernels/loss.cu"), .embedInCode("Kernels/conv.cu"),
            .embedInCode("Kernels/scan.cu"), .embedInCode("Kernels/optimizer.cu"), .embedInCode("Kernels/random.cu"),
            .embedInCode("Kernels/gemm.cu"), .embedInCode("Kernels/sample.cu"), .embedInCode("Kernels/s4d.cu"),
            .embedInCode("Kernels/attention.cu"),
            .embedInCode("Kernels/mamba_step.cu"), .embedInCode("Kernels/mamba_step_cluster.cu"), .embedInCode("Kernels/mamba_step.cuh"),
            .embedInCode("Kernels/ssm_math.cuh"),
            .embedInCode("Kernels/softmax.cuh"), .embedInCode("Kernels/warp.cuh"),
        ]),

        // GPU-vs-CPU checks of a backend (kernels, scan, golden files, whole-model steps, step graphs),
        // shared by the test target and `wavemamba selftest` (which runs where swift test can't).
        // Kernels: the CPU references the CUDA kernels are compared with.
        .target(name: "CUDAChecks", dependencies: ["CUDABackend", "Engine", "FusedSteps", "Generation", "Kernels", "Layers", "Models", "SafeTensors", "Spectral"]),

        // Kernels: the benches (`wavemamba bench`) measure the kernels themselves.
        .executableTarget(name: "wavemamba", dependencies: [
            "AudioIO", "Kernels", "Engine", "FusedSteps", "CUDABackend", "CUDAChecks", "Spectral", "Layers", "Models", "Generation", "Evaluation", "SafeTensors", "COpenBLAS", "Training", "Distributed",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ]),

        // Data shipped for the tests (golden vectors), found from the source tree.
        .target(name: "Fixtures", path: "Tests/Fixtures/Sources"),

        .testTarget(name: "AudioIOTests", dependencies: ["AudioIO"]),
        .testTarget(name: "KernelsTests", dependencies: ["Fixtures", "Kernels", "SafeTensors"]),
        .testTarget(name: "SafeTensorsTests", dependencies: ["Fixtures", "SafeTensors"]),
        .testTarget(name: "EngineTests", dependencies: ["Engine", "SafeTensors"]),
        .testTarget(name: "SpectralTests", dependencies: ["Spectral"]),
        .testTarget(name: "GenerationTests", dependencies: ["Generation", "Models", "Engine", "AudioIO"]),
        .testTarget(name: "CUDABackendTests", dependencies: ["Fixtures", "CUDABackend", "CUDAChecks", "Engine", "Kernels"]),
        .testTarget(name: "DistributedTests", dependencies: ["Distributed"]),
        .testTarget(name: "ModelsTests", dependencies: ["Models", "Layers", "Engine"]),
        .testTarget(name: "LayersTests", dependencies: ["Fixtures", "Layers", "Engine", "Kernels", "SafeTensors"]),
        .testTarget(name: "EvaluationTests", dependencies: ["Evaluation", "AudioIO", "Spectral", "Engine"]),
        .testTarget(name: "TrainingTests", dependencies: ["Training", "Models", "Engine", "AudioIO", "SafeTensors"]),
        // Runs the built binary as a user would (depends on it so that it is built first).
        .testTarget(name: "CLITests", dependencies: ["Fixtures", "wavemamba", "AudioIO", "Models", "Engine", "SafeTensors"]),
    ],
    swiftLanguageModes: [.v5]
)
