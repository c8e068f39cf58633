/// A group of data-parallel processes. Training averages gradients through it, so every rank
/// applies the same update; rank 0 alone writes files.
///
/// Every collective is entered by every rank in the same order (the training loop makes the
/// same calls on every rank); implementations check that and name the rank that is missing.
public protocol Communicator: AnyObject {
    var rank: Int { get }
    var size: Int { get }
    /// What the group runs on, for logs ("single process", "MPI (Open MPI), 4 ranks").
    var description: String { get }
    /// Sums every buffer in place across all ranks (every rank gets the same sums). The
    /// buffers are reduced concurrently (one request per bucket); `what` names the operation
    /// in error messages ("gradient all-reduce at step 12").
    func allReduceSum(_ buffers: [UnsafeMutableBufferPointer<Float>], what: String) throws
    /// Copies `bytes` from `root` to every rank.
    func broadcast(_ bytes: UnsafeMutableRawBufferPointer, root: Int, what: String) throws
    /// Waits until every rank has arrived (with the collective timeout), then leaves the group.
    func finish() throws
    /// Ends every rank of the job with `message` (a collective that cannot complete).
    func abort(_ message: String) -> Never
}

extension Communicator {
    public var isSingleProcess: Bool { size == 1 }

    /// Sums `count` floats at `buffer` across all ranks.
    public func allReduceSum(_ buffer: UnsafeMutablePointer<Float>, count: Int, what: String = "all-reduce") throws {
        try allReduceSum([UnsafeMutableBufferPointer(start: buffer, count: count)], what: what)
    }

    /// Sums an array across all ranks.
    public func allReduceSum(_ values: inout [Float], what: String = "all-reduce") throws {
        try values.withUnsafeMutableBufferPointer { try allReduceSum([$0], what: what) }
    }

    /// Rank `root`'s floats at `buffer`, on every rank.
    public func broadcast(_ buffer: UnsafeMutablePointer<Float>, count: Int, root: Int = 0, what: String) throws {
        try broadcast(UnsafeMutableRawBufferPointer(start: buffer, count: count * MemoryLayout<Float>.stride), root: root, what: what)
    }

    /// Rank `root`'s integers, on every rank.
    public func broadcast(_ values: inout [Int64], root: Int = 0, what: String) throws {
        try values.withUnsafeMutableBytes { try broadcast($0, root: root, what: what) }
    }
}

/// One process: collectives are no-ops.
public final class SingleProcess: Communicator {
    public init() {}
    public var rank: Int { 0 }
    public var size: Int { 1 }
    public var description: String { "single process" }
    public func allReduceSum(_ buffers: [UnsafeMutableBufferPointer<Float>], what: String) throws {}
    public func broadcast(_ bytes: UnsafeMutableRawBufferPointer, root: Int, what: String) throws {}
    public func finish() throws {}
    public func abort(_ message: String) -> Never { fatalError(message) }
}

/// Why a collective failed: which operation, which ranks, what to do.
public struct CollectiveError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}
