import Foundation

/// Finds a recipe named on the command line, and the data folder it points at.
///
/// `wavemamba train X`: if X ends in `.toml` or contains a `/`, it is a path (relative to the
/// current directory). Otherwise X is a recipe name, looked up as `recipes/X.toml` first in the
/// current directory, then in the repository the executable was built in (found by walking
/// up from the executable, e.g. `.build/release/wavemamba`, to a folder holding both
/// `Package.swift` and `recipes/`), so `swift run wavemamba train digits-tiny` works from
/// anywhere inside a checkout.
public struct RecipeLocator: Sendable {
    public var currentDirectory: URL
    public var executable: URL?

    public init(currentDirectory: URL = URL(fileURLWithPath: FileManager.default.currentDirectoryPath),
                executable: URL? = Bundle.main.executableURL) {
        self.currentDirectory = currentDirectory
        self.executable = executable
    }

    /// `path` as given if absolute, else under the current directory.
    public func resolve(_ path: String) -> URL {
        (path.hasPrefix("/") ? URL(fileURLWithPath: path) : currentDirectory.appendingPathComponent(path)).standardizedFileURL
    }

    /// Folders searched for `NAME.toml`, in order.
    public var searchFolders: [URL] {
        var out = [currentDirectory.appendingPathComponent("recipes")]
        if let repo = executableRepository {
            let r = repo.appendingPathComponent("recipes")
            if r.standardizedFileURL.path != out[0].standardizedFileURL.path { out.append(r) }
        }
        return out
    }

    /// The checkout the executable lives in, if any.
    public var executableRepository: URL? {
        guard let exe = executable?.resolvingSymlinksInPath() else { return nil }
        var dir = exe.deletingLastPathComponent()
        let fm = FileManager.default
        for _ in 0..<8 {
            if fm.fileExists(atPath: dir.appendingPathComponent("Package.swift").path),
               fm.fileExists(atPath: dir.appendingPathComponent("recipes").path) { return dir }
            let up = dir.deletingLastPathComponent()
            if up.path == dir.path { break }
            dir = up
        }
        return nil
    }

    /// The recipe file for `argument` (a path or a name).
    public func locate(_ argument: String) throws -> URL {
        let fm = FileManager.default
        if argument.hasSuffix(".toml") || argument.contains("/") {
            let url = resolve(argument)
            guard fm.fileExists(atPath: url.path) else {
                throw TrainingError(path: url.path, "no such recipe file",
                                    fix: "check the path, or name a shipped recipe (\(available.joined(separator: ", ")))")
            }
            return url
        }
        for folder in searchFolders {
            let url = folder.appendingPathComponent(argument + ".toml")
            if fm.fileExists(atPath: url.path) { return url.standardizedFileURL }
        }
        let looked = searchFolders.map(\.path).joined(separator: ", ")
        let names = available
        throw TrainingError(path: argument, "no recipe of that name (looked for \(argument).toml in \(looked))",
                            fix: names.isEmpty ? "pass the path of a .toml recipe file"
                                : "use one of \(names.joined(separator: ", ")), or pass the path of a .toml file")
    }

    /// Names of the recipes in the search folders.
    public var available: [String] {
        var names = Set<String>()
        for folder in searchFolders {
            for f in (try? FileManager.default.contentsOfDirectory(atPath: folder.path)) ?? [] where f.hasSuffix(".toml") {
                names.insert(String(f.dropLast(5)))
            }
        }
        return names.sorted()
    }

    /// The data folder: `--data` if given, else the recipe's `default_data` — absolute, or
    /// relative to the current directory, or else to the repository holding the recipe file
    /// (the parent of its `recipes/` folder) — else an error naming the fix.
    public func dataFolder(for recipe: Recipe, recipeFile: URL?, override: String?) throws -> URL {
        let fm = FileManager.default
        func isFolder(_ u: URL) -> Bool {
            var dir: ObjCBool = false
            return fm.fileExists(atPath: u.path, isDirectory: &dir) && dir.boolValue
        }
        if let override {
            let url = resolve(override)
            guard isFolder(url) else {
                throw TrainingError(path: url.path, fm.fileExists(atPath: url.path) ? "--data is not a folder" : "no such data folder",
                                    fix: "pass --data DIR, a folder of audio files")
            }
            return url
        }
        guard let rel = recipe.data.defaultData else {
            throw TrainingError(path: recipeFile?.path ?? recipe.name, "the recipe has no [data] default_data",
                                fix: "pass --data DIR (a folder of audio files)")
        }
        var candidates = [resolve(rel)]
        if !rel.hasPrefix("/"), let file = recipeFile, file.deletingLastPathComponent().lastPathComponent == "recipes" {
            candidates.append(file.deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent(rel).standardizedFileURL)
        }
        if let found = candidates.first(where: isFolder) { return found }
        throw TrainingError(path: recipeFile?.path ?? recipe.name,
                            "[data] default_data '\(rel)' is not a folder (looked at \(candidates.map(\.path).joined(separator: ", ")))",
                            fix: "pass --data DIR, or run from the repository root")
    }
}
