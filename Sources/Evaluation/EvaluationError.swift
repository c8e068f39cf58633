/// Something evaluation cannot do: which file or folder, what is wrong, what to do about it.
/// `description` is the one-line message (`PATH: REASON; FIX`), as AudioIO's errors.
public struct EvaluationError: Error, CustomStringConvertible, Sendable, Equatable {
    public let path: String
    public let reason: String
    public let fix: String

    public init(path: String, _ reason: String, fix: String = "") {
        self.path = path
        self.reason = reason
        self.fix = fix
    }

    public var description: String {
        let prefix = path.isEmpty ? "" : path + ": "
        return prefix + (fix.isEmpty ? reason : "\(reason); \(fix)")
    }
}
