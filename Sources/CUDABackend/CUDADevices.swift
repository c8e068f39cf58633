import Foundation

/// One NVIDIA GPU as the driver describes it.
public struct CUDADeviceInfo: Sendable, Equatable {
    public var ordinal: Int
    public var name: String
    public var totalMemory: Int
    public var computeCapability: (major: Int, minor: Int)
    public var multiprocessors: Int
    /// The most dynamic shared memory one thread block may ask for (bytes; 227 KiB on an H100,
    /// 163 KiB on an A100).
    public var sharedMemoryPerBlock: Int = 227 << 10

    /// "sm_90" for compute capability 9.0: the NVRTC target of this device.
    public var architecture: String { "sm_\(computeCapability.major)\(computeCapability.minor)" }

    public static func == (a: Self, b: Self) -> Bool {
        a.ordinal == b.ordinal && a.name == b.name && a.totalMemory == b.totalMemory
            && a.computeCapability == b.computeCapability && a.multiprocessors == b.multiprocessors
    }
}

/// What the machine offers: the driver and its GPUs, or exactly why none is usable.
public enum CUDAAvailability: Sendable {
    case available(driverVersion: Int, devices: [CUDADeviceInfo])
    case unavailable(reason: String)

    public var devices: [CUDADeviceInfo] {
        if case .available(_, let d) = self { return d }
        return []
    }
}

public enum CUDADevices {
    /// The driver, loaded and initialised once per process (an immutable lazy value).
    static let driver: Swift.Result<CUDADriver, CUDAError> = {
        do {
            let d = try CUDADriver()
            try d.check(d.cuInit(0), "cuInit")
            return .success(d)
        } catch let e as CUDAError {
            return .failure(e)
        } catch {
            return .failure(CUDAError("\(error)"))
        }
    }()

    /// The initialised driver or the reason it is unusable.
    public static func loadDriver() throws -> CUDADriver {
        try driver.get()
    }

    /// Lists the GPUs, or says why none is usable (no libcuda, cuInit's error, no device).
    public static func probe() -> CUDAAvailability {
        let cu: CUDADriver
        do { cu = try loadDriver() } catch let e as CUDAError { return .unavailable(reason: e.message) } catch {
            return .unavailable(reason: "\(error)")
        }
        do {
            let version = try cu.driverVersion()
            var count: Int32 = 0
            try cu.check(cu.cuDeviceGetCount(&count), "cuDeviceGetCount")
            if count == 0 { return .unavailable(reason: "libcuda.so.1 loaded (driver \(formatCUDAVersion(version))) but it reports no CUDA device") }
            var list: [CUDADeviceInfo] = []
            for i in 0..<count { list.append(try info(cu, ordinal: Int(i))) }
            return .available(driverVersion: version, devices: list)
        } catch let e as CUDAError {
            return .unavailable(reason: e.message)
        } catch {
            return .unavailable(reason: "\(error)")
        }
    }

    static func info(_ cu: CUDADriver, ordinal: Int) throws -> CUDADeviceInfo {
        var dev: Int32 = 0
        try cu.check(cu.cuDeviceGet(&dev, Int32(ordinal)), "cuDeviceGet(\(ordinal))")
        var name = [CChar](repeating: 0, count: 256)
        try cu.check(cu.cuDeviceGetName(&name, 255, dev), "cuDeviceGetName(\(ordinal))")
        var bytes = 0
        try cu.check(cu.cuDeviceTotalMem(&bytes, dev), "cuDeviceTotalMem(\(ordinal))")
        return CUDADeviceInfo(ordinal: ordinal, name: String(cString: name), totalMemory: bytes,
                              computeCapability: (try cu.attribute(.computeCapabilityMajor, device: dev),
                                                  try cu.attribute(.computeCapabilityMinor, device: dev)),
                              multiprocessors: try cu.attribute(.multiprocessorCount, device: dev),
                              sharedMemoryPerBlock: try cu.attribute(.sharedMemoryPerBlockOptin, device: dev))
    }

    /// The `info --devices` text: the CPU line, then one line per GPU or the reason none is usable.
    public static func report(_ availability: CUDAAvailability, cpuThreads: Int, nvrtc: String, cublas: String? = nil) -> String {
        var lines = ["cpu      \(cpuThreads) threads"]
        switch availability {
        case .available(let version, let devices):
            for d in devices {
                let gib = String(format: "%.1f", Double(d.totalMemory) / Double(1 << 30))
                lines.append("cuda:\(d.ordinal)   \(d.name), \(gib) GiB, compute capability \(d.computeCapability.major).\(d.computeCapability.minor)"
                             + " (\(d.architecture)), \(d.multiprocessors) SMs, driver \(formatCUDAVersion(version))")
            }
        case .unavailable(let reason):
            lines.append("cuda     unavailable: \(reason)")
        }
        lines.append("nvrtc    \(nvrtc)")
        if let cublas { lines.append("cublas   \(cublas)") }
        return lines.joined(separator: "\n")
    }
}
