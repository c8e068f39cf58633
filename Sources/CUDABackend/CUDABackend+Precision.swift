import Engine

extension CUDABackend {
    /// Switches the cuBLAS GEMMs between fp32 and TF32 (`MatmulPrecision`). Throws when TF32
    /// is asked for but cannot be had (no cuBLAS: the own SGEMM kernel is fp32 only).
    public func setMatmulPrecision(_ p: MatmulPrecision) throws {
        guard let blas else {
            if p == .fp32 { return }
            throw CUDAError("\(device): TF32 needs cuBLAS, and \(gemmProvider)")
        }
        guard blas.setTF32(p == .tf32) else {
            throw CUDAError("\(device): cuBLAS refused math mode \(p.rawValue) (cublasSetMathMode)")
        }
        matmulPrecision = p
    }
}
