/// One kernel family: a CUDA C file of Sources/CUDABackend/Kernels, embedded in the binary.
public enum KernelFamily: String, CaseIterable, Sendable {
    case elementwise, layout, reduce, norms, loss, conv, scan, optimizer, random, gemm, sample, s4d, attention
    case mambaStep = "mamba_step"
    /// The fused block step by clusters of thread blocks; its kernels exist for sm_90 and later only.
    case mambaStepCluster = "mamba_step_cluster"

    /// The file name in Sources/CUDABackend/Kernels.
    public var fileName: String { "\(rawValue).cu" }

    /// The CUDA C source text: the file, behind the headers of device functions it shares with
    /// other families (a #line directive keeps compiler messages pointing into the file).
    public var source: String {
        let headers = sharedHeaders
        guard !headers.isEmpty else { return fileText }
        return headers.map { String(decoding: $0, as: UTF8.self) + "\n" }.joined() + "#line 1 \"\(fileName)\"\n" + fileText
    }

    /// warp.cuh (warp reductions, the row LayerNorm) for every family that reduces across a
    /// warp; then ssm_math.cuh for the selective scan and the fused block step (SFU math, the
    /// decay, the step update), softmax.cuh for the loss kernels and the on-device draw (the row
    /// softmax), mamba_step.cuh (the launch's arguments, the scan step and gate) for both fused
    /// block steps.
    private var sharedHeaders: [[UInt8]] {
        switch self {
        case .norms: return [PackageResources.warp_cuh]
        case .scan: return [PackageResources.warp_cuh, PackageResources.ssm_math_cuh]
        case .mambaStep, .mambaStepCluster: return [PackageResources.warp_cuh, PackageResources.ssm_math_cuh, PackageResources.mamba_step_cuh]
        case .loss, .sample: return [PackageResources.warp_cuh, PackageResources.softmax_cuh]
        default: return []
        }
    }

    private var fileText: String {
        let bytes: [UInt8]
        switch self {
        case .elementwise: bytes = PackageResources.elementwise_cu
        case .layout: bytes = PackageResources.layout_cu
        case .reduce: bytes = PackageResources.reduce_cu
        case .norms: bytes = PackageResources.norms_cu
        case .loss: bytes = PackageResources.loss_cu
        case .conv: bytes = PackageResources.conv_cu
        case .scan: bytes = PackageResources.scan_cu
        case .optimizer: bytes = PackageResources.optimizer_cu
        case .random: bytes = PackageResources.random_cu
        case .gemm: bytes = PackageResources.gemm_cu
        case .sample: bytes = PackageResources.sample_cu
        case .s4d: bytes = PackageResources.s4d_cu
        case .attention: bytes = PackageResources.attention_cu
        case .mambaStep: bytes = PackageResources.mamba_step_cu
        case .mambaStepCluster: bytes = PackageResources.mamba_step_cluster_cu
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}
