import Foundation

/// Why training cannot go on: which file (recipe, data folder, run folder, checkpoint), what
/// is wrong, and what to do. `description` is the one line the CLI prints.
public struct TrainingError: Error, CustomStringConvertible, Sendable, Equatable {
    public let path: String
    public let reason: String
    public let fix: String

    public init(path: String, _ reason: String, fix: String = "") {
        self.path = path
        self.reason = reason
        self.fix = fix
    }

    public var description: String {
        let head = path.isEmpty ? reason : "\(path): \(reason)"
        return fix.isEmpty ? head : "\(head); \(fix)"
    }
}
