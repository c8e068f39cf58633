import Foundation

/// The CUDA driver API (libcuda.so.1, installed with the NVIDIA driver), loaded at run time.
/// Only the entry points the backend uses; each is the versioned symbol the CUDA headers map
/// the plain name to (cuMemAlloc → cuMemAlloc_v2, …).
public final class CUDADriver: @unchecked Sendable {
    public typealias Result = Int32
    public typealias DevicePointer = UInt64

    let library: DynamicLibrary
    let cuInit: @convention(c) (UInt32) -> Result
    let cuDriverGetVersion: @convention(c) (UnsafeMutablePointer<Int32>) -> Result
    let cuDeviceGetCount: @convention(c) (UnsafeMutablePointer<Int32>) -> Result
    let cuDeviceGet: @convention(c) (UnsafeMutablePointer<Int32>, Int32) -> Result
    let cuDeviceGetName: @convention(c) (UnsafeMutablePointer<CChar>, Int32, Int32) -> Result
    let cuDeviceTotalMem: @convention(c) (UnsafeMutablePointer<Int>, Int32) -> Result
    let cuDeviceGetAttribute: @convention(c) (UnsafeMutablePointer<Int32>, Int32, Int32) -> Result
    let cuDevicePrimaryCtxRetain: @convention(c) (UnsafeMutablePointer<OpaquePointer?>, Int32) -> Result
    let cuCtxSetCurrent: @convention(c) (OpaquePointer?) -> Result
    let cuStreamCreate: @convention(c) (UnsafeMutablePointer<OpaquePointer?>, UInt32) -> Result
    let cuStreamSynchronize: @convention(c) (OpaquePointer?) -> Result
    let cuMemAlloc: @convention(c) (UnsafeMutablePointer<DevicePointer>, Int) -> Result
    let cuMemFree: @convention(c) (DevicePointer) -> Result
    let cuMemGetInfo: @convention(c) (UnsafeMutablePointer<Int>, UnsafeMutablePointer<Int>) -> Result
    let cuMemcpyHtoDAsync: @convention(c) (DevicePointer, UnsafeRawPointer, Int, OpaquePointer?) -> Result
    let cuMemcpyDtoHAsync: @convention(c) (UnsafeMutableRawPointer, DevicePointer, Int, OpaquePointer?) -> Result
    let cuMemcpyDtoDAsync: @convention(c) (DevicePointer, DevicePointer, Int, OpaquePointer?) -> Result
    let cuMemsetD32Async: @convention(c) (DevicePointer, UInt32, Int, OpaquePointer?) -> Result
    let cuModuleLoadData: @convention(c) (UnsafeMutablePointer<OpaquePointer?>, UnsafeRawPointer) -> Result
    let cuModuleGetFunction: @convention(c) (UnsafeMutablePointer<OpaquePointer?>, OpaquePointer?, UnsafePointer<CChar>) -> Result
    let cuLaunchKernel: @convention(c) (OpaquePointer?, UInt32, UInt32, UInt32, UInt32, UInt32, UInt32, UInt32, OpaquePointer?,
                                        UnsafeMutablePointer<UnsafeMutableRawPointer?>?, UnsafeMutablePointer<UnsafeMutableRawPointer?>?) -> Result
    let cuGetErrorName: @convention(c) (Result, UnsafeMutablePointer<UnsafePointer<CChar>?>) -> Result
    let cuFuncSetAttribute: @convention(c) (OpaquePointer?, Int32, Int32) -> Result
    let cuOccupancyMaxActiveBlocksPerMultiprocessor: @convention(c) (UnsafeMutablePointer<Int32>, OpaquePointer?, Int32, Int) -> Result
    // Graphs: a stream's launches recorded once (stream capture) and replayed as one launch.
    let cuStreamBeginCapture: @convention(c) (OpaquePointer?, Int32) -> Result
    let cuStreamEndCapture: @convention(c) (OpaquePointer?, UnsafeMutablePointer<OpaquePointer?>) -> Result
    let cuGraphGetNodes: @convention(c) (OpaquePointer?, UnsafeMutablePointer<OpaquePointer?>?, UnsafeMutablePointer<Int>) -> Result
    let cuGraphInstantiateWithFlags: @convention(c) (UnsafeMutablePointer<OpaquePointer?>, OpaquePointer?, UInt64) -> Result
    let cuGraphLaunch: @convention(c) (OpaquePointer?, OpaquePointer?) -> Result
    let cuGraphExecDestroy: @convention(c) (OpaquePointer?) -> Result
    let cuGraphDestroy: @convention(c) (OpaquePointer?) -> Result

    /// CUstreamCaptureMode: RELAXED lets other threads (and this one) make calls that are
    /// unsafe during capture, such as cuMemAlloc or lazy module loading, without failing it.
    static let captureModeRelaxed: Int32 = 2

    /// Device attributes (CUdevice_attribute).
    enum Attribute: Int32 {
        case multiprocessorCount = 16
        case computeCapabilityMajor = 75
        case computeCapabilityMinor = 76
        case sharedMemoryPerBlockOptin = 97
    }

    /// Where libcuda is looked for besides the loader's path: WAVEMAMBA_CUDA_DRIVER_PATH
    /// (colon-separated folders), then the usual driver folders.
    static let driverDirectories = DynamicLibrary.directories(fromEnvironment: "WAVEMAMBA_CUDA_DRIVER_PATH")

    /// Opens libcuda.so.1 and resolves every entry point; does not call cuInit.
    public init() throws {
        do {
            library = try DynamicLibrary.open(["libcuda.so.1"], directories: Self.driverDirectories)
        } catch let e as CUDAError {
            throw CUDAError(e.message.hasSuffix("not found") ? "libcuda.so.1: not found (install the NVIDIA driver)" : e.message)
        }
        let l = library
        cuInit = try l.function("cuInit")
        cuDriverGetVersion = try l.function("cuDriverGetVersion")
        cuDeviceGetCount = try l.function("cuDeviceGetCount")
        cuDeviceGet = try l.function("cuDeviceGet")
        cuDeviceGetName = try l.function("cuDeviceGetName")
        cuDeviceTotalMem = try l.function("cuDeviceTotalMem_v2")
        cuDeviceGetAttribute = try l.function("cuDeviceGetAttribute")
        cuDevicePrimaryCtxRetain = try l.function("cuDevicePrimaryCtxRetain")
        cuCtxSetCurrent = try l.function("cuCtxSetCurrent")
        cuStreamCreate = try l.function("cuStreamCreate")
        cuStreamSynchronize = try l.function("cuStreamSynchronize")
        cuMemAlloc = try l.function("cuMemAlloc_v2")
        cuMemFree = try l.function("cuMemFree_v2")
        cuMemGetInfo = try l.function("cuMemGetInfo_v2")
        cuMemcpyHtoDAsync = try l.function("cuMemcpyHtoDAsync_v2")
        cuMemcpyDtoHAsync = try l.function("cuMemcpyDtoHAsync_v2")
        cuMemcpyDtoDAsync = try l.function("cuMemcpyDtoDAsync_v2")
        cuMemsetD32Async = try l.function("cuMemsetD32Async")
        cuModuleLoadData = try l.function("cuModuleLoadData")
        cuModuleGetFunction = try l.function("cuModuleGetFunction")
        cuLaunchKernel = try l.function("cuLaunchKernel")
        cuGetErrorName = try l.function("cuGetErrorName")
        cuFuncSetAttribute = try l.function("cuFuncSetAttribute")
        cuOccupancyMaxActiveBlocksPerMultiprocessor = try l.function("cuOccupancyMaxActiveBlocksPerMultiprocessor")
        cuStreamBeginCapture = try l.function("cuStreamBeginCapture_v2")
        cuStreamEndCapture = try l.function("cuStreamEndCapture")
        cuGraphGetNodes = try l.function("cuGraphGetNodes")
        cuGraphInstantiateWithFlags = try l.function("cuGraphInstantiateWithFlags")
        cuGraphLaunch = try l.function("cuGraphLaunch")
        cuGraphExecDestroy = try l.function("cuGraphExecDestroy")
        cuGraphDestroy = try l.function("cuGraphDestroy")
    }

    /// CUDA_ERROR_… name of a result code.
    public func errorName(_ r: Result) -> String {
        var p: UnsafePointer<CChar>?
        if cuGetErrorName(r, &p) == 0, let p { return String(cString: p) }
        return "CUDA error \(r)"
    }

    /// Throws "<what>: CUDA_ERROR_… (code N)" unless `r` is CUDA_SUCCESS.
    func check(_ r: Result, _ what: @autoclosure () -> String) throws {
        if r != 0 { throw CUDAError("\(what()): \(errorName(r)) (code \(r))") }
    }

    /// For calls that cannot fail in a correct program (the Backend protocol does not throw).
    func must(_ r: Result, _ what: @autoclosure () -> String) {
        if r != 0 { fatalError("CUDA: \(what()): \(errorName(r)) (code \(r))") }
    }

    /// Driver version as CUDA writes it (e.g. 12040 = 12.4).
    public func driverVersion() throws -> Int {
        var v: Int32 = 0
        try check(cuDriverGetVersion(&v), "cuDriverGetVersion")
        return Int(v)
    }

    func attribute(_ a: Attribute, device: Int32) throws -> Int {
        var v: Int32 = 0
        try check(cuDeviceGetAttribute(&v, a.rawValue, device), "cuDeviceGetAttribute(\(a))")
        return Int(v)
    }
}

/// "12.4" from 12040.
public func formatCUDAVersion(_ v: Int) -> String { "\(v / 1000).\((v % 1000) / 10)" }
