import Foundation

/// Loads the kernel families into the device's context on first use: a CUBIN from the disk
/// cache, else from the prebuilt folder, else compiled by NVRTC (loaded only then) and
/// stored in the cache. Function handles are kept per name.
final class KernelLoader: @unchecked Sendable {
    private let cu: CUDADriver
    private let architecture: String
    private let driverVersion: Int
    private let cache: KernelCache
    private let lock = NSLock()
    private var modules: [KernelFamily: OpaquePointer?] = [:]
    private var functions: [String: OpaquePointer?] = [:]
    private var nvrtc: NVRTC?
    /// How each family was obtained ("cache", "prebuilt", "NVRTC 13.0"), for `info --devices`.
    private(set) var provenance: [KernelFamily: String] = [:]

    init(driver: CUDADriver, architecture: String, driverVersion: Int, cache: KernelCache) {
        cu = driver
        self.architecture = architecture
        self.driverVersion = driverVersion
        self.cache = cache
    }

    /// The CUfunction `name` of `family` (the context must be current).
    func function(_ family: KernelFamily, _ name: String) throws -> OpaquePointer? {
        lock.lock()
        defer { lock.unlock() }
        if let f = functions[name] { return f }
        let module = try moduleLocked(family)
        var f: OpaquePointer?
        try cu.check(cu.cuModuleGetFunction(&f, module, name), "cuModuleGetFunction(\(family.fileName): \(name))")
        functions[name] = f
        return f
    }

    /// Loads every family now (the self-test and the benchmark do this before timing).
    func loadAll() throws {
        lock.lock()
        defer { lock.unlock() }
        for f in KernelFamily.allCases { _ = try moduleLocked(f) }
    }

    private func moduleLocked(_ family: KernelFamily) throws -> OpaquePointer? {
        if let m = modules[family] { return m }
        let source = family.source
        let key = KernelCache.key(source: source, architecture: architecture, driverVersion: driverVersion)
        var attempts: [(String, [UInt8])] = []
        if let c = cache.load(key: key) { attempts.append(("cache", c)) }
        for p in cache.loadPrebuilt(source: source, architecture: architecture) { attempts.append(("prebuilt", p)) }
        var failures: [String] = []
        for (origin, cubin) in attempts {
            if let m = try? load(cubin, family) { modules[family] = m; provenance[family] = origin; return m }
            failures.append("\(origin) CUBIN rejected by the driver")
        }
        let compiler: NVRTC
        do {
            if nvrtc == nil { nvrtc = try NVRTC(driverVersion: driverVersion) }
            compiler = nvrtc!
        } catch let e as CUDAError {
            throw CUDAError("\(family.fileName): no usable CUBIN for \(architecture) (\(failures.isEmpty ? "none cached" : failures.joined(separator: ", "))) and \(e.message)")
        }
        let cubin = try compiler.compile(source: source, name: family.fileName, architecture: architecture)
        let m = try load(cubin, family)
        if let note = cache.store(cubin, key: key) {
            FileHandle.standardError.write(Data("note: could not cache CUDA kernels (\(note)); they will be compiled again next run\n".utf8))
        }
        modules[family] = m
        provenance[family] = "NVRTC \(compiler.version.major).\(compiler.version.minor)"
        return m
    }

    private func load(_ cubin: [UInt8], _ family: KernelFamily) throws -> OpaquePointer? {
        var m: OpaquePointer?
        try cubin.withUnsafeBytes { try cu.check(cu.cuModuleLoadData(&m, $0.baseAddress!), "cuModuleLoadData(\(family.fileName), \(architecture))") }
        return m
    }
}
