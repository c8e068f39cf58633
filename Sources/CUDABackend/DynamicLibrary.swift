import Foundation

/// A shared library opened with dlopen at run time (so the binary links no CUDA library and
/// runs where none is installed). The first name that opens wins; the error lists every
/// name tried with dlerror's reason.
struct DynamicLibrary: @unchecked Sendable {
    let handle: UnsafeMutableRawPointer
    let name: String

    /// Candidates: each entry of `names` as given (the loader's search: LD_LIBRARY_PATH,
    /// ld.so.cache), then inside each of `directories`.
    static func open(_ names: [String], directories: [String] = []) throws -> DynamicLibrary {
        var reasons: [String] = []
        var candidates: [String] = []
        for dir in directories where !dir.isEmpty {
            for n in names { candidates.append((dir as NSString).appendingPathComponent(n)) }
        }
        candidates += names
        for path in candidates {
            if let h = dlopen(path, RTLD_NOW | RTLD_GLOBAL) { return DynamicLibrary(handle: h, name: path) }
            let reason = dlerror().map { String(cString: $0) } ?? "unknown error"
            reasons.append(reason.contains("No such file") || reason.contains("cannot open shared object")
                           ? "\(path): not found" : reason)
        }
        throw CUDAError(reasons.first { !$0.hasSuffix(": not found") } ?? "\(names.joined(separator: ", ")): not found")
    }

    /// The typed entry point `symbol`.
    func function<T>(_ symbol: String, as type: T.Type = T.self) throws -> T {
        guard let p = dlsym(handle, symbol) else {
            throw CUDAError("\(name): no symbol \(symbol) (the library is too old; install a newer one)")
        }
        return unsafeBitCast(p, to: T.self)
    }

    /// `directories` from a colon-separated environment variable (empty when unset).
    static func directories(fromEnvironment key: String) -> [String] {
        (ProcessInfo.processInfo.environment[key] ?? "").split(separator: ":").map(String.init)
    }
}
