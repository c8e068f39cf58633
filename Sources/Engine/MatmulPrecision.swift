/// How a backend computes its fp32 matrix products. Parameters, optimizer state, activations
/// and the selective scan's state stay fp32 in every mode; only the GEMM inputs are rounded.
public enum MatmulPrecision: String, CaseIterable, Sendable {
    /// Full fp32 products (the default; CPU and GPU agree to ≈ 1e-6).
    case fp32
    /// TF32 tensor-core products on NVIDIA GPUs (inputs rounded to a 10-bit mantissa, fp32
    /// accumulation): faster GEMMs, products ≈ 1e-3 relative off fp32.
    case tf32
}
