import Foundation

/// cuFFT (libcufft.so.12 with CUDA 13, .11 with CUDA 12), loaded at run time on first use, for
/// the S4D baseline's long convolutions: batched real-to-complex and complex-to-real
/// transforms of one length on the backend's stream. Plans are cached by (length, batch,
/// direction) and live as long as the backend.
final class CuFFT: @unchecked Sendable {
    typealias Result = Int32
    typealias Handle = Int32

    let library: DynamicLibrary
    private let planMany: @convention(c) (UnsafeMutablePointer<Handle>, Int32, UnsafeMutablePointer<Int32>, UnsafeMutablePointer<Int32>?, Int32, Int32,
                                          UnsafeMutablePointer<Int32>?, Int32, Int32, Int32, Int32) -> Result
    private let setStream: @convention(c) (Handle, OpaquePointer?) -> Result
    private let execR2C: @convention(c) (Handle, UInt64, UInt64) -> Result
    private let execC2R: @convention(c) (Handle, UInt64, UInt64) -> Result
    private let destroy: @convention(c) (Handle) -> Result
    private let stream: OpaquePointer?
    private var plans: [String: Handle] = [:]
    private let lock = NSLock()

    static let libraryNames = ["libcufft.so.12", "libcufft.so.11"]
    static let r2c: Int32 = 0x2a, c2r: Int32 = 0x2c

    init(stream: OpaquePointer?) throws {
        do {
            library = try DynamicLibrary.open(Self.libraryNames, directories: NVRTC.searchDirectories())
        } catch let e as CUDAError {
            throw CUDAError("cuFFT (\(Self.libraryNames.joined(separator: " or "))) could not be loaded: \(e.message); "
                            + "S4D blocks on the GPU need it (CUDA toolkit, or pip nvidia-cufft)")
        }
        planMany = try library.function("cufftPlanMany")
        setStream = try library.function("cufftSetStream")
        execR2C = try library.function("cufftExecR2C")
        execC2R = try library.function("cufftExecC2R")
        destroy = try library.function("cufftDestroy")
        self.stream = stream
    }

    deinit { for p in plans.values { _ = destroy(p) } }

    private func plan(length n: Int, batch: Int, type: Int32) -> Handle {
        let key = "\(n)x\(batch)/\(type)"
        lock.lock()
        defer { lock.unlock() }
        if let p = plans[key] { return p }
        var h: Handle = 0
        var dims = [Int32(n)]
        let rc = dims.withUnsafeMutableBufferPointer { planMany(&h, 1, $0.baseAddress!, nil, 1, 0, nil, 1, 0, type, Int32(batch)) }
        guard rc == 0 else { fatalError("cuFFT: cufftPlanMany(n \(n), batch \(batch)) failed (cufftResult \(rc)); out of device memory?") }
        guard setStream(h, stream) == 0 else { fatalError("cuFFT: cufftSetStream failed") }
        plans[key] = h
        return h
    }

    /// `batch` real rows of length n (contiguous) → rows of n/2 + 1 complex.
    func forward(_ x: UInt64, _ spectrum: UInt64, length n: Int, batch: Int) {
        let rc = execR2C(plan(length: n, batch: batch, type: Self.r2c), x, spectrum)
        if rc != 0 { fatalError("cuFFT: cufftExecR2C (n \(n), batch \(batch)) failed (cufftResult \(rc))") }
    }

    /// Rows of n/2 + 1 complex → `batch` real rows of length n, unnormalised (× n). Overwrites
    /// the spectrum.
    func inverse(_ spectrum: UInt64, _ x: UInt64, length n: Int, batch: Int) {
        let rc = execC2R(plan(length: n, batch: batch, type: Self.c2r), spectrum, x)
        if rc != 0 { fatalError("cuFFT: cufftExecC2R (n \(n), batch \(batch)) failed (cufftResult \(rc))") }
    }
}
