import Foundation

/// NVIDIA's run-time CUDA C compiler (libnvrtc.so.13, else .12), loaded at run time. It
/// turns the embedded kernel sources into CUBIN for the device's architecture.
public final class NVRTC: @unchecked Sendable {
    typealias Result = Int32
    typealias Program = OpaquePointer?

    let library: DynamicLibrary
    public let version: (major: Int, minor: Int)
    private let createProgram: @convention(c) (UnsafeMutablePointer<Program>, UnsafePointer<CChar>, UnsafePointer<CChar>?, Int32,
                                               UnsafePointer<UnsafePointer<CChar>?>?, UnsafePointer<UnsafePointer<CChar>?>?) -> Result
    private let compileProgram: @convention(c) (Program, Int32, UnsafePointer<UnsafePointer<CChar>?>?) -> Result
    private let getProgramLogSize: @convention(c) (Program, UnsafeMutablePointer<Int>) -> Result
    private let getProgramLog: @convention(c) (Program, UnsafeMutablePointer<CChar>) -> Result
    private let getCUBINSize: @convention(c) (Program, UnsafeMutablePointer<Int>) -> Result
    private let getCUBIN: @convention(c) (Program, UnsafeMutablePointer<CChar>) -> Result
    private let destroyProgram: @convention(c) (UnsafeMutablePointer<Program>) -> Result
    private let getErrorString: @convention(c) (Result) -> UnsafePointer<CChar>?

    /// Sonames in order of preference.
    public static let libraryNames = ["libnvrtc.so.13", "libnvrtc.so.12"]

    /// The sonames for a driver (cuDriverGetVersion, 0 = unknown): a 12.x driver gets NVRTC 12
    /// first, since it may reject CUBINs from a newer major version of the compiler.
    static func libraryNames(driverVersion: Int) -> [String] {
        driverVersion > 0 && driverVersion < 13000 ? ["libnvrtc.so.12", "libnvrtc.so.13"] : libraryNames
    }

    /// Folders searched before the loader's path: WAVEMAMBA_NVRTC_PATH (colon-separated
    /// folders, or the library file itself), then the CUDA toolkit's usual places.
    public static func searchDirectories(environment: [String: String] = ProcessInfo.processInfo.environment) -> [String] {
        let own = (environment["WAVEMAMBA_NVRTC_PATH"] ?? "").split(separator: ":").map(String.init)
        return own + ["/usr/local/cuda/lib64", "/usr/local/cuda/targets/x86_64-linux/lib", "/usr/lib/x86_64-linux-gnu"]
    }

    /// Opens the first NVRTC found; the error says where it looked and how to get one.
    public init(environment: [String: String] = ProcessInfo.processInfo.environment, driverVersion: Int = 0) throws {
        var files: [String] = []
        var dirs: [String] = []
        for entry in Self.searchDirectories(environment: environment) {
            if entry.contains("libnvrtc.so") { files.append(entry) } else { dirs.append(entry) }
        }
        do {
            library = try DynamicLibrary.open(files + Self.libraryNames(driverVersion: driverVersion), directories: dirs)
        } catch let e as CUDAError {
            throw CUDAError("NVRTC (\(Self.libraryNames.joined(separator: " or "))) could not be loaded: \(e.message); "
                            + "install the CUDA toolkit's NVRTC, or set WAVEMAMBA_NVRTC_PATH to the folder holding libnvrtc.so.13")
        }
        let l = library
        let versionFn: @convention(c) (UnsafeMutablePointer<Int32>, UnsafeMutablePointer<Int32>) -> Result = try l.function("nvrtcVersion")
        createProgram = try l.function("nvrtcCreateProgram")
        compileProgram = try l.function("nvrtcCompileProgram")
        getProgramLogSize = try l.function("nvrtcGetProgramLogSize")
        getProgramLog = try l.function("nvrtcGetProgramLog")
        getCUBINSize = try l.function("nvrtcGetCUBINSize")
        getCUBIN = try l.function("nvrtcGetCUBIN")
        destroyProgram = try l.function("nvrtcDestroyProgram")
        getErrorString = try l.function("nvrtcGetErrorString")
        var major: Int32 = 0, minor: Int32 = 0
        _ = versionFn(&major, &minor)
        version = (Int(major), Int(minor))
    }

    public var description: String { "NVRTC \(version.major).\(version.minor) (\(library.name))" }

    private func message(_ r: Result) -> String {
        getErrorString(r).map { String(cString: $0) } ?? "NVRTC error \(r)"
    }

    /// Compiles one CUDA C source to CUBIN for `architecture` ("sm_90"). The error carries
    /// NVRTC's log (file, line and message of each error).
    public func compile(source: String, name: String, architecture: String) throws -> [UInt8] {
        var program: Program = nil
        let rc = source.withCString { src in name.withCString { createProgram(&program, src, $0, 0, nil, nil) } }
        guard rc == 0 else { throw CUDAError("nvrtcCreateProgram(\(name)): \(message(rc))") }
        defer { _ = destroyProgram(&program) }
        let options = ["--gpu-architecture=\(architecture)", "-std=c++17"]
        let cOptions = options.map { strdup($0) }
        defer { cOptions.forEach { free($0) } }
        let compiled = cOptions.map { UnsafePointer<CChar>($0) }.withUnsafeBufferPointer {
            compileProgram(program, Int32(options.count), $0.baseAddress)
        }
        if compiled != 0 {
            var size = 0
            _ = getProgramLogSize(program, &size)
            var log = [CChar](repeating: 0, count: max(1, size))
            _ = getProgramLog(program, &log)
            throw CUDAError("NVRTC \(version.major).\(version.minor) could not compile \(name) for \(architecture): "
                            + "\(message(compiled))\n\(String(cString: log))")
        }
        var size = 0
        _ = getCUBINSize(program, &size)
        var cubin = [UInt8](repeating: 0, count: size)
        let got = cubin.withUnsafeMutableBufferPointer { buf in
            buf.baseAddress!.withMemoryRebound(to: CChar.self, capacity: size) { getCUBIN(program, $0) }
        }
        guard got == 0, size > 0 else { throw CUDAError("nvrtcGetCUBIN(\(name), \(architecture)): \(message(got))") }
        return cubin
    }
}
