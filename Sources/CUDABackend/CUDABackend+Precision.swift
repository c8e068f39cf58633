import Engine

extension CUDABackend {
    /// Switches the cuBLAS GEMMs between fp32, TF32 and BF16 (`MatmulPrecision`). Throws when a
    /// reduced precision is asked for but cannot be had (no cuBLAS: the own SGEMM kernel is fp32 only).
    public func setMatmulPrecision(_ p: MatmulPrecision) throws {
        guard let blas else {
            if p == .fp32 { return }
            throw CUDAError("\(device): \(p.rawValue) needs cuBLAS, and \(gemmProvider)")
        }
        guard blas.setTF32(p == .tf32) else {
            throw CUDAError("\(device): cuBLAS refused math mode \(p.rawValue) (cublasSetMathMode)")
        }
        guard blas.setComputeType(p == .bf16 ? CuBLAS.computeFast16BF : nil) else {
            throw CUDAError("\(device): \(p.rawValue) needs cublasGemmEx, which \(blas.library.name) lacks")
        }
        matmulPrecision = p
    }
}
