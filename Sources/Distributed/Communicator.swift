/// A group of data-parallel processes. Training averages gradients through it, so every rank
/// applies the same update; rank 0 alone writes files.
public protocol Communicator: AnyObject {
    var rank: Int { get }
    var size: Int { get }
    /// What the group runs on, for logs ("single process", "MPI (Open MPI 4.1), 4 ranks").
    var description: String { get }
    /// Sums `count` floats in place across all ranks (every rank gets the sum).
    func allReduceSum(_ buffer: UnsafeMutablePointer<Float>, count: Int) throws
    /// Copies `bytes` from `root` to every rank.
    func broadcast(_ bytes: UnsafeMutableRawBufferPointer, root: Int) throws
    /// Ends every rank of the job with `message` (a collective that cannot complete).
    func abort(_ message: String) -> Never
}

/// One process: collectives are no-ops.
public final class SingleProcess: Communicator {
    public init() {}
    public var rank: Int { 0 }
    public var size: Int { 1 }
    public var description: String { "single process" }
    public func allReduceSum(_ buffer: UnsafeMutablePointer<Float>, count: Int) throws {}
    public func broadcast(_ bytes: UnsafeMutableRawBufferPointer, root: Int) throws {}
    public func abort(_ message: String) -> Never { fatalError(message) }
}

/// Why a collective failed: which operation, which ranks, what to do.
public struct CollectiveError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}
