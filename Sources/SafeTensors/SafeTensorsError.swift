import Foundation

/// Why a safetensors file was rejected. Every case names the file and what is wrong;
/// `description` is the one-line message the CLI prints.
public struct SafeTensorsError: Error, CustomStringConvertible, Sendable {
    public let path: String
    public let reason: String

    public init(path: String, _ reason: String) {
        self.path = path
        self.reason = reason
    }

    public var description: String { "\(path): \(reason)" }
}
