import Foundation

/// cuBLAS (libcublas.so.13, else .12), loaded at run time, for the GEMMs in fp32 (default
/// math mode: no TF32). Row-major products are computed as their column-major transposes:
/// C = op(A)·op(B) (row-major) is Cᵀ = op(B)ᵀ·op(A)ᵀ, i.e. cuBLAS with A and B swapped.
/// When it does not load, the backend uses its own SGEMM kernel (gemm.cu).
public final class CuBLAS: @unchecked Sendable {
    typealias Status = Int32
    typealias Handle = OpaquePointer?

    let library: DynamicLibrary
    let handle: Handle
    private let sgemm: @convention(c) (Handle, Int32, Int32, Int32, Int32, Int32, UnsafePointer<Float>, UInt64, Int32, UInt64, Int32,
                                       UnsafePointer<Float>, UInt64, Int32) -> Status
    private let sgemmStridedBatched: @convention(c) (Handle, Int32, Int32, Int32, Int32, Int32, UnsafePointer<Float>, UInt64, Int32, Int64,
                                                     UInt64, Int32, Int64, UnsafePointer<Float>, UInt64, Int32, Int64, Int32) -> Status

    /// cublasGemmEx and cublasGemmStridedBatchedEx (fp32 types, a compute type), for the
    /// reduced-precision compute types; nil when this cuBLAS lacks them.
    private let gemmEx: (@convention(c) (Handle, Int32, Int32, Int32, Int32, Int32, UnsafeRawPointer, UInt64, Int32, Int32, UInt64, Int32, Int32,
                                         UnsafeRawPointer, UInt64, Int32, Int32, Int32, Int32) -> Status)?
    private let gemmStridedBatchedEx: (@convention(c) (Handle, Int32, Int32, Int32, Int32, Int32, UnsafeRawPointer, UInt64, Int32, Int32, Int64,
                                                       UInt64, Int32, Int32, Int64, UnsafeRawPointer, UInt64, Int32, Int32, Int64, Int32,
                                                       Int32, Int32) -> Status)?
    /// The compute type of every GEMM through the Ex calls (cublasComputeType_t), or nil for
    /// cublasSgemm under the handle's math mode.
    private(set) var computeType: Int32?
    /// CUBLAS_COMPUTE_32F_FAST_16BF: fp32 in and out, bf16 tensor-core products.
    static let computeFast16BF: Int32 = 75

    static let libraryNames = ["libcublas.so.13", "libcublas.so.12"]

    /// A 12.x driver gets cuBLAS 12 first (cuBLAS 13 needs a 13.x driver).
    static func libraryNames(driverVersion: Int) -> [String] {
        driverVersion > 0 && driverVersion < 13000 ? ["libcublas.so.12", "libcublas.so.13"] : libraryNames
    }

    /// Which cuBLAS would load, or why none does (for `info --devices`; opens, creates nothing).
    public static func probe() -> String {
        do {
            return try DynamicLibrary.open(libraryNames, directories: NVRTC.searchDirectories()).name
        } catch {
            return "unavailable (\(error)); GEMMs use the own SGEMM kernel"
        }
    }

    /// Opens cuBLAS and creates a handle bound to `stream` (the backend's context must be current).
    init(stream: OpaquePointer?, driverVersion: Int = 0) throws {
        do {
            library = try DynamicLibrary.open(Self.libraryNames(driverVersion: driverVersion), directories: NVRTC.searchDirectories())
        } catch let e as CUDAError {
            throw CUDAError("cuBLAS (\(Self.libraryNames.joined(separator: " or "))) could not be loaded: \(e.message)")
        }
        let create: @convention(c) (UnsafeMutablePointer<Handle>) -> Status = try library.function("cublasCreate_v2")
        let setStream: @convention(c) (Handle, OpaquePointer?) -> Status = try library.function("cublasSetStream_v2")
        sgemm = try library.function("cublasSgemm_v2")
        sgemmStridedBatched = try library.function("cublasSgemmStridedBatched")
        gemmEx = try? library.function("cublasGemmEx")
        gemmStridedBatchedEx = try? library.function("cublasGemmStridedBatchedEx")
        var h: Handle = nil
        let rc = create(&h)
        guard rc == 0 else { throw CUDAError("cublasCreate failed (cublasStatus \(rc))") }
        handle = h
        let rs = setStream(h, stream)
        guard rs == 0 else { throw CUDAError("cublasSetStream failed (cublasStatus \(rs))") }
    }

    /// Hopper's default workspace size (cuBLAS docs); 4 MiB is the default on older GPUs.
    static let workspaceBytes = 32 << 20

    /// Gives the handle a workspace of our own (cublasSetWorkspace): without it cuBLAS
    /// allocates one inside each CUDA graph capture (stream-ordered allocation nodes).
    /// Returns false when this cuBLAS has no cublasSetWorkspace or refuses the buffer.
    func setWorkspace(_ address: UInt64, bytes: Int) -> Bool {
        guard let set: @convention(c) (Handle, UInt64, Int) -> Status = try? library.function("cublasSetWorkspace_v2") else { return false }
        return set(handle, address, bytes) == 0
    }

    /// cublasSetMathMode: CUBLAS_TF32_TENSOR_OP_MATH (3) lets fp32 GEMMs round their inputs to
    /// TF32 on the tensor cores (fp32 accumulation); CUBLAS_DEFAULT_MATH (0) keeps full fp32.
    /// False when this cuBLAS lacks the call or refuses the mode.
    func setTF32(_ on: Bool) -> Bool {
        guard let set: @convention(c) (Handle, Int32) -> Status = try? library.function("cublasSetMathMode") else { return false }
        return set(handle, on ? 3 : 0) == 0
    }

    /// Routes every GEMM through cublasGemmEx with `type` (a cublasComputeType_t), or back to
    /// cublasSgemm with nil. False when this cuBLAS lacks the Ex calls.
    func setComputeType(_ type: Int32?) -> Bool {
        if type != nil && (gemmEx == nil || gemmStridedBatchedEx == nil) { return false }
        computeType = type
        return true
    }

    /// Row-major C[b] = α·op(A[b])·op(B[b]) + β·C[b] (A: m×k after op, B: k×n after op; lda,
    /// ldb, ldc are row strides; strides between batch entries in floats).
    func gemm(transA: Bool, transB: Bool, m: Int, n: Int, k: Int, alpha: Float, a: UInt64, lda: Int, strideA: Int,
              b: UInt64, ldb: Int, strideB: Int, beta: Float, c: UInt64, ldc: Int, strideC: Int, batch: Int) {
        var al = alpha, be = beta
        // Column-major: Cᵀ (n×m) = op(B)ᵀ (n×k) · op(A)ᵀ (k×m).
        let opB: Int32 = transB ? 1 : 0, opA: Int32 = transA ? 1 : 0
        let rc: Status
        if let type = computeType, let ex = gemmEx, let exBatched = gemmStridedBatchedEx {
            // CUDA_R_32F (0) for A, B and C; CUBLAS_GEMM_DEFAULT (−1).
            if batch == 1 {
                rc = ex(handle, opB, opA, Int32(n), Int32(m), Int32(k), &al, b, 0, Int32(ldb), a, 0, Int32(lda), &be, c, 0, Int32(ldc), type, -1)
            } else {
                rc = exBatched(handle, opB, opA, Int32(n), Int32(m), Int32(k), &al, b, 0, Int32(ldb), Int64(strideB), a, 0, Int32(lda),
                               Int64(strideA), &be, c, 0, Int32(ldc), Int64(strideC), Int32(batch), type, -1)
            }
        } else if batch == 1 {
            rc = sgemm(handle, opB, opA, Int32(n), Int32(m), Int32(k), &al, b, Int32(ldb), a, Int32(lda), &be, c, Int32(ldc))
        } else {
            rc = sgemmStridedBatched(handle, opB, opA, Int32(n), Int32(m), Int32(k), &al, b, Int32(ldb), Int64(strideB),
                                     a, Int32(lda), Int64(strideA), &be, c, Int32(ldc), Int64(strideC), Int32(batch))
        }
        if rc != 0 { fatalError("cuBLAS sgemm (m \(m), n \(n), k \(k), batch \(batch)) failed: cublasStatus \(rc)") }
    }
}
