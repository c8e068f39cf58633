/// How a backend computes its fp32 matrix products. Parameters, optimizer state, activations
/// and the selective scan's state stay fp32 in every mode; only the GEMM inputs are rounded.
public enum MatmulPrecision: String, CaseIterable, Sendable {
    /// Full fp32 products (the default; CPU and GPU agree to ≈ 1e-6).
    case fp32
    /// TF32 tensor-core products on NVIDIA GPUs (inputs rounded to a 10-bit mantissa, fp32
    /// accumulation): faster GEMMs, products ≈ 1e-3 relative off fp32.
    case tf32
    /// cuBLAS's CUBLAS_COMPUTE_32F_FAST_16BF on NVIDIA GPUs: fp32 tensors in and out, inputs
    /// down-converted inside the GEMM to bf16 or TF32 (cuBLAS picks the kernel), fp32
    /// accumulation. On an H100 at this model's shapes cuBLAS picked TF32 kernels: the same
    /// error (2.6e-4) and speed as `tf32`.
    case bf16
}
