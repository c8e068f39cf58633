/// One kernel family: a CUDA C file of Sources/CUDABackend/Kernels, embedded in the binary.
public enum KernelFamily: String, CaseIterable, Sendable {
    case elementwise, layout, reduce, norms, loss, conv, scan, optimizer, random, gemm, sample, s4d
    case mambaStep = "mamba_step"

    /// The file name in Sources/CUDABackend/Kernels.
    public var fileName: String { "\(rawValue).cu" }

    /// The CUDA C source text: the file, behind the header of device functions it shares with
    /// other families (a #line directive keeps compiler messages pointing into the file).
    public var source: String {
        guard let header = sharedHeader else { return fileText }
        return String(decoding: header, as: UTF8.self) + "\n#line 1 \"\(fileName)\"\n" + fileText
    }

    /// ssm_math.cuh for the selective scan and the fused block step (SFU math, the decay, the
    /// step update); softmax.cuh for the loss kernels and the on-device draw (warp reductions,
    /// the row softmax).
    private var sharedHeader: [UInt8]? {
        switch self {
        case .scan, .mambaStep: return PackageResources.ssm_math_cuh
        case .loss, .sample: return PackageResources.softmax_cuh
        default: return nil
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
        case .mambaStep: bytes = PackageResources.mamba_step_cu
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}
