import Foundation

/// A folder of audio files, found recursively, in a deterministic order (relative paths
/// sorted bytewise), so every machine sees the same list.
public struct AudioFolder: Sendable {
    public let root: URL
    /// Paths relative to `root`, sorted.
    public let relativePaths: [String]

    /// Lists audio files below `root` by extension (see `audioFileExtensions`). Hidden files
    /// and folders are skipped. Errors: missing folder, unreadable folder, empty folder, a
    /// folder with files but none of them audio.
    public init(_ root: URL) throws {
        self.root = root.standardizedFileURL
        let path = self.root.path
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDir) else {
            throw AudioIOError(.notFound, path: path, reason: "no such folder", fix: "check the path")
        }
        guard isDir.boolValue else {
            throw AudioIOError(.invalidArgument, path: path, reason: "is a file, not a folder", fix: "pass the folder that holds the audio files")
        }
        guard access(path, R_OK | X_OK) == 0 else {
            throw AudioIOError(.permissionDenied, path: path, reason: "folder is not readable", fix: "make it readable (chmod a+rx) or run as its owner")
        }
        var found: [String] = []
        var otherFiles = 0
        var unreadableFolders: [String] = []
        Self.walk(path, relative: "", into: &found, others: &otherFiles, unreadable: &unreadableFolders)
        found.sort { $0.utf8.lexicographicallyPrecedes($1.utf8) }
        if found.isEmpty {
            if otherFiles == 0 && unreadableFolders.isEmpty {
                throw AudioIOError(.emptyFolder, path: path, reason: "folder is empty", fix: "put audio files (WAV, FLAC, OGG, …) in it")
            }
            let exts = audioFileExtensions.sorted().joined(separator: ", ")
            throw AudioIOError(.noAudio, path: path, reason: "no audio files among \(otherFiles) files" + (unreadableFolders.isEmpty ? "" : " (\(unreadableFolders.count) unreadable subfolders)"),
                               fix: "audio files need one of the extensions \(exts)")
        }
        self.relativePaths = found
    }

    public func url(_ relativePath: String) -> URL { root.appendingPathComponent(relativePath) }

    private static func walk(_ dir: String, relative: String, into found: inout [String], others: inout Int, unreadable: inout [String]) {
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: dir) else {
            unreadable.append(dir)
            return
        }
        for name in names where !name.hasPrefix(".") {
            let full = dir + "/" + name
            let rel = relative.isEmpty ? name : relative + "/" + name
            var isDir: ObjCBool = false
            guard FileManager.default.fileExists(atPath: full, isDirectory: &isDir) else { continue }
            if isDir.boolValue {
                walk(full, relative: rel, into: &found, others: &others, unreadable: &unreadable)
            } else if audioFileExtensions.contains((name as NSString).pathExtension.lowercased()) {
                found.append(rel)
            } else {
                others += 1
            }
        }
    }
}
