import Foundation

/// CUBINs compiled by NVRTC, kept on disk so that only the first run on a machine compiles:
/// <folder>/<sha256(source)>-<sm_XY>-<driver version>.cubin, written atomically (temporary
/// file + rename), so concurrent processes never read a partial file.
///
/// Folder: $WAVEMAMBA_CUDA_CACHE, else $XDG_CACHE_HOME/wavemamba/cuda, else
/// ~/.cache/wavemamba/cuda. A second, read-only folder of prebuilt CUBINs
/// ($WAVEMAMBA_CUDA_KERNELS, made by `wavemamba cuda-kernels`) serves hosts without NVRTC;
/// its files are keyed by source, architecture and NVRTC major version
/// (<sha256>-<sm_XY>-nvrtc<major>.cubin).
public struct KernelCache: Sendable {
    public var folder: URL
    public var prebuilt: URL?

    public init(folder: URL, prebuilt: URL? = nil) {
        self.folder = folder
        self.prebuilt = prebuilt
    }

    public static func defaultFolder(environment: [String: String] = ProcessInfo.processInfo.environment) -> URL {
        if let own = environment["WAVEMAMBA_CUDA_CACHE"], !own.isEmpty { return URL(fileURLWithPath: own) }
        let base = environment["XDG_CACHE_HOME"].flatMap { $0.isEmpty ? nil : URL(fileURLWithPath: $0) }
            ?? URL(fileURLWithPath: NSHomeDirectory()).appendingPathComponent(".cache")
        return base.appendingPathComponent("wavemamba/cuda")
    }

    public static func fromEnvironment(_ environment: [String: String] = ProcessInfo.processInfo.environment) -> KernelCache {
        KernelCache(folder: defaultFolder(environment: environment),
                    prebuilt: environment["WAVEMAMBA_CUDA_KERNELS"].flatMap { $0.isEmpty ? nil : URL(fileURLWithPath: $0) })
    }

    /// The cache key of one compilation.
    public static func key(source: String, architecture: String, driverVersion: Int) -> String {
        "\(SHA256.hex(Array(source.utf8)))-\(architecture)-\(driverVersion)"
    }

    /// The prebuilt file name (no driver version: CUBIN for one architecture loads on any
    /// driver new enough for the NVRTC that made it, whose major version ends the name, so
    /// CUBINs from NVRTC 13 and 12 can sit side by side).
    public static func prebuiltName(source: String, architecture: String, nvrtcMajor: Int) -> String {
        "\(SHA256.hex(Array(source.utf8)))-\(architecture)-nvrtc\(nvrtcMajor).cubin"
    }

    public func url(key: String) -> URL { folder.appendingPathComponent("\(key).cubin") }

    public func load(key: String) -> [UInt8]? {
        guard let d = try? Data(contentsOf: url(key: key)), !d.isEmpty else { return nil }
        return [UInt8](d)
    }

    /// Every prebuilt CUBIN of this source and architecture, newest NVRTC first.
    public func loadPrebuilt(source: String, architecture: String) -> [[UInt8]] {
        guard let dir = prebuilt, let names = try? FileManager.default.contentsOfDirectory(atPath: dir.path) else { return [] }
        let prefix = "\(SHA256.hex(Array(source.utf8)))-\(architecture)-nvrtc"
        return names.filter { $0.hasPrefix(prefix) && $0.hasSuffix(".cubin") }
            .sorted { (Int($0.dropFirst(prefix.count).dropLast(6)) ?? 0) > (Int($1.dropFirst(prefix.count).dropLast(6)) ?? 0) }
            .compactMap { name in (try? Data(contentsOf: dir.appendingPathComponent(name))).flatMap { $0.isEmpty ? nil : [UInt8]($0) } }
    }

    /// Writes atomically; a cache that cannot be written only costs a recompilation later,
    /// so the error is returned for a note, not thrown.
    @discardableResult
    public func store(_ cubin: [UInt8], key: String) -> String? {
        do {
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
            let tmp = folder.appendingPathComponent(".\(key).\(getpid()).tmp")
            try Data(cubin).write(to: tmp)
            if rename(tmp.path, url(key: key).path) != 0 {
                let reason = String(cString: strerror(errno))
                try? FileManager.default.removeItem(at: tmp)
                return "\(url(key: key).path): \(reason)"
            }
            return nil
        } catch {
            return "\(folder.path): \(error.localizedDescription)"
        }
    }
}
