/// Where a tensor's memory lives and its kernels run.
public enum Device: Hashable, Sendable, CustomStringConvertible {
    case cpu
    /// An NVIDIA GPU by ordinal (the CUDA backend, loaded at run time).
    case cuda(Int)

    public var description: String {
        switch self {
        case .cpu: return "cpu"
        case .cuda(let i): return "cuda:\(i)"
        }
    }
}

/// Element type of a tensor. Model math is Float32; Int32 carries indices and targets.
public enum DType: Sendable, Equatable {
    case float32, int32
    public var size: Int { 4 }
}
