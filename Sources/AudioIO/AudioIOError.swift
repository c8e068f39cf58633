import Foundation

/// An audio file or folder that cannot be used: which path, what is wrong, what to do.
/// `description` is the one-line message (`PATH: REASON; FIX`).
public struct AudioIOError: Error, CustomStringConvertible, Sendable, Equatable {
    public enum Kind: String, Sendable {
        case notFound, permissionDenied, emptyFile, notAudio, corrupt, truncated, emptyFolder, noAudio, writeFailed, invalidArgument
    }

    public let path: String
    public let kind: Kind
    public let reason: String
    public let fix: String

    public init(_ kind: Kind, path: String, reason: String, fix: String) {
        self.kind = kind
        self.path = path
        self.reason = reason
        self.fix = fix
    }

    /// `REASON; FIX` without the path (for `error: PATH: REASON` lines).
    public var message: String { fix.isEmpty ? reason : "\(reason); \(fix)" }
    public var description: String { "\(path): \(message)" }
}
