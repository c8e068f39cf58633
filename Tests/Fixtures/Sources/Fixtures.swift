import Foundation

/// Test data that ships with the repository, so `swift test` runs on a bare clone.
public enum Fixtures {
    /// The repository's root (this file is Tests/Fixtures/Sources/Fixtures.swift).
    public static let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent()

    /// The golden vectors of the reference implementations (Tests/Fixtures/golden/README.md),
    /// or the folder WAVEMAMBA_GOLDEN_DIR names.
    public static var golden: URL {
        if let dir = ProcessInfo.processInfo.environment["WAVEMAMBA_GOLDEN_DIR"], !dir.isEmpty { return URL(fileURLWithPath: dir) }
        return repository.appendingPathComponent("Tests/Fixtures/golden")
    }
}
