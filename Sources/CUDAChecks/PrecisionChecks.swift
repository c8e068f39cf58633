import CUDABackend
import Engine
import Foundation

/// `--precision tf32|bf16`: a GEMM in TF32 mode must differ from fp32 at TF32's rounding level
/// (proof that the tensor-core path is on) and stay within it of the CPU's fp32 product; BF16
/// the same at its coarser level; the backend returns to fp32 afterwards.
public struct PrecisionChecks {
    public let gpu: CUDABackend
    public let cpu: any Backend

    public init(gpu: CUDABackend, cpu: any Backend) {
        self.gpu = gpu
        self.cpu = cpu
    }

    func product(_ b: any Backend) -> [Float] {
        let x = b.tensor(hostValues(256 * 512, seed: 41), shape: [256, 512])
        let w = b.tensor(hostValues(384 * 512, seed: 42), shape: [384, 512])
        let y = b.empty([256, 384])
        b.linear(x: x, weight: w, bias: nil, y: y)
        return y.floats()
    }

    public func all() -> [CheckOutcome] {
        let reference = product(cpu)
        let saved = gpu.matmulPrecision
        defer { try? gpu.setMatmulPrecision(saved) }
        var out: [CheckOutcome] = []
        do {
            try gpu.setMatmulPrecision(.fp32)
            let fp32 = relativeError(product(gpu), reference)
            out.append(CheckOutcome(name: "precision: fp32 GEMM = CPU", error: fp32, tolerance: 1e-5, detail: ""))
            try gpu.setMatmulPrecision(.tf32)
            let tf32 = relativeError(product(gpu), reference)
            // TF32 keeps 10 mantissa bits: a 512-term product lands near 1e-3 of its scale.
            // Below 1e-6 the mode did not take effect.
            out.append(CheckOutcome(name: "precision: tf32 GEMM ≈ CPU fp32 (and not equal)", error: tf32 < 1e-6 ? .infinity : tf32,
                                    tolerance: 5e-3, detail: String(format: "tf32 rel err %.2e", tf32)))
            try gpu.setMatmulPrecision(.bf16)
            let bf16 = relativeError(product(gpu), reference)
            // FAST_16BF rounds the inputs to bf16 (8 mantissa bits) or TF32, cuBLAS's choice:
            // below 1e-6 the compute type did not take effect.
            out.append(CheckOutcome(name: "precision: bf16 (cuBLAS FAST_16BF) GEMM ≈ CPU fp32 (and not equal)", error: bf16 < 1e-6 ? .infinity : bf16,
                                    tolerance: 3e-2, detail: String(format: "bf16 rel err %.2e (tf32 %.2e)", bf16, tf32)))
        } catch {
            out.append(CheckOutcome(name: "precision: \(error)", error: .infinity, tolerance: 0, detail: ""))
        }
        return out
    }
}
