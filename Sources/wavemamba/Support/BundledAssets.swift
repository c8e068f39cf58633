import Foundation

/// Files shipped in the checkout's Assets/ folder (the digit classifier, bundled models),
/// found from the working directory or from the executable (…/.build/<config>/wavemamba →
/// the checkout), so that an installed binary and `swift run` both find them.
enum BundledAssets {
    /// Where `relative` (e.g. "Assets/models/digits.safetensors") may be, in order.
    static func candidates(_ relative: String) -> [URL] {
        var out = [URL(fileURLWithPath: FileManager.default.currentDirectoryPath).appendingPathComponent(relative)]
        var dir = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().deletingLastPathComponent()
        for _ in 0..<5 {
            out.append(dir.appendingPathComponent(relative))
            dir = dir.deletingLastPathComponent()
        }
        return out
    }

    static func find(_ relative: String) -> URL? {
        candidates(relative).first { FileManager.default.fileExists(atPath: $0.path) }
    }

    /// The bundled models' folder (Assets/models), if found.
    static var modelsFolder: URL? { find("Assets/models") }

    /// Names of the bundled models (Assets/models/NAME.safetensors).
    static var modelNames: [String] {
        guard let dir = modelsFolder, let names = try? FileManager.default.contentsOfDirectory(atPath: dir.path) else { return [] }
        return names.filter { $0.hasSuffix(".safetensors") }.map { String($0.dropLast(12)) }.sorted()
    }

    /// A bundled model's file for a bare name such as "digits" (no folder, no extension).
    static func model(named name: String) -> URL? {
        guard !name.contains("/"), !name.hasSuffix(".safetensors") else { return nil }
        return find("Assets/models/\(name).safetensors")
    }
}
