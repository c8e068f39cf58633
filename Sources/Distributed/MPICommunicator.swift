import Foundation

/// Data parallelism over MPI, loaded at run time: the single-process path needs no MPI
/// library, and one binary serves both. Open MPI (Debian's `openmpi-bin`,
/// `libopenmpi-dev`; `libmpi.so.40`) is supported: its handles (MPI_COMM_WORLD, MPI_FLOAT,
/// MPI_SUM, …) are addresses of exported globals, which `dlsym` finds.
///
/// No collective can block forever: each one is nonblocking and polled against a deadline
/// (`timeout`), and MPI_Init / MPI_Finalize (which block inside Open MPI) run under a
/// watchdog thread that ends the process when they overrun. Before each collective every
/// rank sends rank 0 its collective count (a heartbeat); rank 0 names the ranks that did not
/// report (dead or hung) or that are at another collective (out of step), and acknowledges,
/// so the other ranks can tell a silent rank 0 apart.
public final class MPICommunicator: Communicator {
    public let rank: Int
    public let size: Int
    public let timeout: TimeInterval
    private let api: API
    /// Collectives entered so far (the heartbeat's payload).
    private var sequence: Int32 = 0
    private var finished = false

    /// Environment variables that `mpirun` (Open MPI) or a PMI/PMIx launcher sets for every rank.
    public static let launcherVariables = ["OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_SIZE"]

    /// Whether this process was started by mpirun (or another MPI launcher).
    public static var launchedByMPI: Bool {
        let env = ProcessInfo.processInfo.environment
        return launcherVariables.contains { env[$0] != nil }
    }

    /// The collective timeout: `WAVEMAMBA_COLLECTIVE_TIMEOUT` seconds, default 30 (so that a
    /// dead or hung rank stops the others well within a minute).
    public static var defaultTimeout: TimeInterval {
        ProcessInfo.processInfo.environment["WAVEMAMBA_COLLECTIVE_TIMEOUT"].flatMap(Double.init).flatMap { $0 > 0 ? $0 : nil } ?? 30
    }

    /// Joins the MPI job when the process was started by mpirun; nil otherwise (and then no
    /// MPI library is touched).
    public static func detect(timeout: TimeInterval? = nil) throws -> MPICommunicator? {
        guard launchedByMPI else { return nil }
        return try MPICommunicator(timeout: timeout ?? defaultTimeout)
    }

    init(timeout: TimeInterval) throws {
        let api = try API.load()
        self.api = api
        self.timeout = timeout
        var provided: Int32 = 0
        // MPI_Init waits for every rank of the job (Open MPI's modex): a rank that never
        // starts would hold it forever.
        let rc = Self.watchdog(seconds: max(timeout, 60), "MPI_Init did not complete within \(Int(max(timeout, 60))) s: another rank of the job did not start (see mpirun's output)") {
            api.initThread(nil, nil, 1 /* MPI_THREAD_FUNNELED: MPI is called from the main thread only */, &provided)
        }
        guard rc == 0 else {
            throw CollectiveError("MPI_Init_thread failed (code \(rc)); start the job with Open MPI's mpirun (Debian: openmpi-bin)")
        }
        // Errors come back as return codes (reported with the rank) instead of aborting inside MPI.
        _ = api.commSetErrhandler(api.commWorld, api.errorsReturn)
        var r: Int32 = 0, s: Int32 = 0
        _ = api.commRank(api.commWorld, &r)
        _ = api.commSize(api.commWorld, &s)
        rank = Int(r)
        size = Int(s)
    }

    public var description: String { "MPI (Open MPI), \(size) ranks" }

    public func allReduceSum(_ buffers: [UnsafeMutableBufferPointer<Float>], what: String) throws {
        try heartbeat(what)
        // Buckets of ≤ 4 Mi floats, all started before any is awaited, so that the transfers
        // of one bucket overlap the reduction of the others.
        let bucket = 1 << 22
        var requests: [OpaquePointer?] = []
        for buffer in buffers {
            guard let base = buffer.baseAddress else { continue }
            var offset = 0
            while offset < buffer.count {
                let n = min(bucket, buffer.count - offset)
                var req: OpaquePointer?
                let rc = api.iallreduce(api.inPlace, base + offset, Int32(n), api.float, api.sum, api.commWorld, &req)
                guard rc == 0 else { throw CollectiveError("rank \(rank): MPI_Iallreduce failed (code \(rc)) in \(what)") }
                requests.append(req)
                offset += n
            }
        }
        try wait(&requests, what: what)
    }

    public func broadcast(_ bytes: UnsafeMutableRawBufferPointer, root: Int, what: String) throws {
        try heartbeat(what)
        guard let base = bytes.baseAddress else { return }
        var requests: [OpaquePointer?] = []
        let chunk = 1 << 30
        var offset = 0
        while offset < bytes.count {
            let n = min(chunk, bytes.count - offset)
            var req: OpaquePointer?
            let rc = api.ibcast(base + offset, Int32(n), api.byte, Int32(root), api.commWorld, &req)
            guard rc == 0 else { throw CollectiveError("rank \(rank): MPI_Ibcast failed (code \(rc)) in \(what)") }
            requests.append(req)
            offset += n
        }
        try wait(&requests, what: what)
    }

    /// A barrier with the timeout, then MPI_Finalize under the watchdog.
    public func finish() throws {
        guard !finished else { return }
        try heartbeat("the end of the run")
        var req: OpaquePointer?
        let rc = api.ibarrier(api.commWorld, &req)
        guard rc == 0 else { throw CollectiveError("rank \(rank): MPI_Ibarrier failed (code \(rc))") }
        var requests = [req]
        try wait(&requests, what: "the final barrier")
        finished = true
        _ = Self.watchdog(seconds: timeout, "rank \(rank): MPI_Finalize did not complete within \(Int(timeout)) s") { api.finalize() }
    }

    public func abort(_ message: String) -> Never {
        FileHandle.standardError.write(Data("error: rank \(rank) of \(size): \(message)\n".utf8))
        _ = api.abort(api.commWorld, 1)
        exit(1)
    }

    // MARK: Heartbeat and waiting

    /// Every rank sends its collective count to rank 0, which waits for all of them against
    /// the deadline, checks that they agree, and answers each.
    private func heartbeat(_ what: String) throws {
        sequence &+= 1
        guard size > 1 else { return }
        let tag: Int32 = 7301, ackTag: Int32 = 7302
        let seq = sequence
        // Nonblocking calls keep the buffer's address until they complete: heap memory, left
        // allocated if they fail (a late message must not land in freed memory).
        let counts = UnsafeMutablePointer<Int32>.allocate(capacity: size + 1)
        counts.initialize(repeating: -1, count: size + 1)
        let mine = counts + size
        mine.pointee = seq
        var requests: [OpaquePointer?] = []
        func post(_ rc: Int32, _ req: OpaquePointer?, _ call: String) throws {
            guard rc == 0 else { throw CollectiveError("rank \(rank): \(call) failed (code \(rc)) at \(what)") }
            requests.append(req)
        }
        if rank == 0 {
            for r in 1..<size {
                var req: OpaquePointer?
                try post(api.irecv(counts + r, 1, api.int32, Int32(r), tag, api.commWorld, &req), req, "MPI_Irecv")
            }
            do {
                try wait(&requests, what: what)
            } catch {
                let missing = (1..<size).filter { counts[$0] < 0 }
                let names = missing.map(String.init).joined(separator: ", ")
                throw CollectiveError("rank\(missing.count == 1 ? "" : "s") \(names) of \(size) did not reach \(what) within \(Int(timeout)) s (rank 0 waited): dead or hung")
            }
            if let r = (1..<size).first(where: { counts[$0] != seq }) {
                throw CollectiveError("rank \(r) is at collective \(counts[r]) and rank 0 at \(seq) (\(what)): the ranks went out of step")
            }
            requests = []
            for r in 1..<size {
                var req: OpaquePointer?
                try post(api.isend(mine, 1, api.int32, Int32(r), ackTag, api.commWorld, &req), req, "MPI_Isend")
            }
            try wait(&requests, what: what)
        } else {
            var req: OpaquePointer?
            try post(api.isend(mine, 1, api.int32, 0, tag, api.commWorld, &req), req, "MPI_Isend")
            try post(api.irecv(counts, 1, api.int32, 0, ackTag, api.commWorld, &req), req, "MPI_Irecv")
            do {
                try wait(&requests, what: what)
            } catch {
                throw CollectiveError("rank 0 did not answer rank \(rank) at \(what) within \(Int(timeout)) s: rank 0 is dead or hung, or waits for another rank that is")
            }
        }
        counts.deallocate()
    }

    /// Polls the requests until all complete or the deadline passes.
    private func wait(_ requests: inout [OpaquePointer?], what: String) throws {
        let deadline = Date().addingTimeInterval(timeout)
        var pending = requests.count
        var done = [Bool](repeating: false, count: requests.count)
        var pause: useconds_t = 20
        while pending > 0 {
            for i in requests.indices where !done[i] {
                var flag: Int32 = 0
                let rc = api.test(&requests[i], &flag, nil)
                guard rc == 0 else { throw CollectiveError("rank \(rank): \(what) failed (MPI code \(rc)); a peer rank probably died") }
                if flag != 0 { done[i] = true; pending -= 1 }
            }
            if pending == 0 { break }
            if Date() > deadline { throw CollectiveError("rank \(rank): \(what) did not complete within \(Int(timeout)) s") }
            usleep(pause)
            pause = min(pause * 2, 1000)
        }
    }

    /// Runs `body`; if it has not returned after `seconds`, prints `message` and ends the
    /// process (status 1) from a watchdog thread: for MPI calls that block inside the library.
    static func watchdog<T>(seconds: TimeInterval, _ message: String, _ body: () -> T) -> T {
        let done = DispatchSemaphore(value: 0)
        let thread = Thread {
            if done.wait(timeout: .now() + seconds) == .timedOut {
                FileHandle.standardError.write(Data("error: \(message)\n".utf8))
                _exit(1)
            }
        }
        thread.start()
        let result = body()
        done.signal()
        return result
    }

    // MARK: The library

    /// The MPI entry points and handles, resolved with dlopen/dlsym.
    struct API {
        typealias Handle = OpaquePointer
        typealias Request = UnsafeMutablePointer<OpaquePointer?>
        typealias InitThread = @convention(c) (UnsafeMutablePointer<Int32>?, UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>?, Int32, UnsafeMutablePointer<Int32>) -> Int32
        typealias CommQuery = @convention(c) (Handle, UnsafeMutablePointer<Int32>) -> Int32
        typealias SetErrhandler = @convention(c) (Handle, Handle) -> Int32
        typealias Iallreduce = @convention(c) (UnsafeRawPointer?, UnsafeMutableRawPointer?, Int32, Handle, Handle, Handle, Request) -> Int32
        typealias Ibcast = @convention(c) (UnsafeMutableRawPointer?, Int32, Handle, Int32, Handle, Request) -> Int32
        typealias Ibarrier = @convention(c) (Handle, Request) -> Int32
        typealias Isend = @convention(c) (UnsafeRawPointer?, Int32, Handle, Int32, Int32, Handle, Request) -> Int32
        typealias Irecv = @convention(c) (UnsafeMutableRawPointer?, Int32, Handle, Int32, Int32, Handle, Request) -> Int32
        typealias Test = @convention(c) (Request, UnsafeMutablePointer<Int32>, UnsafeMutableRawPointer?) -> Int32
        typealias Abort = @convention(c) (Handle, Int32) -> Int32
        typealias Finalize = @convention(c) () -> Int32

        let initThread: InitThread
        let commRank, commSize: CommQuery
        let commSetErrhandler: SetErrhandler
        let iallreduce: Iallreduce
        let ibcast: Ibcast
        let ibarrier: Ibarrier
        let isend: Isend
        let irecv: Irecv
        let test: Test
        let abort: Abort
        let finalize: Finalize
        let commWorld, float, int32, byte, sum, errorsReturn: Handle
        /// MPI_IN_PLACE is (void *) 1 in Open MPI's mpi.h.
        let inPlace = UnsafeRawPointer(bitPattern: 1)

        /// `WAVEMAMBA_MPI_LIBRARY` (a path, for Open MPI installed elsewhere), else the
        /// dynamic linker's search for Debian's names.
        static var libraries: [String] {
            ProcessInfo.processInfo.environment["WAVEMAMBA_MPI_LIBRARY"].map { [$0] } ?? ["libmpi.so.40", "libmpi.so"]
        }

        static func load() throws -> API {
            var lib: UnsafeMutableRawPointer?
            var reasons: [String] = []
            let libraries = Self.libraries
            for name in libraries {
                lib = dlopen(name, RTLD_NOW | RTLD_GLOBAL)
                if lib != nil { break }
                if let e = dlerror() { reasons.append(String(cString: e)) }
            }
            guard let lib else {
                throw CollectiveError("started by mpirun, but Open MPI's library (\(libraries.joined(separator: " or "))) cannot be loaded: \(reasons.joined(separator: "; ")); install it with `apt-get install openmpi-bin libopenmpi-dev` (Debian/Ubuntu) on every machine of the job, or set WAVEMAMBA_MPI_LIBRARY to its path")
            }
            func sym<T>(_ name: String, _: T.Type) throws -> T {
                guard let p = dlsym(lib, name) else { throw CollectiveError("libmpi lacks \(name); Open MPI 4 or newer is needed (Debian: openmpi-bin libopenmpi-dev)") }
                return unsafeBitCast(p, to: T.self)
            }
            // Open MPI's predefined handles are the addresses of these globals.
            func handle(_ name: String) throws -> Handle {
                guard let p = dlsym(lib, name) else { throw CollectiveError("libmpi lacks \(name): is this Open MPI? (MPICH is not supported)") }
                return OpaquePointer(p)
            }
            return API(initThread: try sym("MPI_Init_thread", InitThread.self),
                       commRank: try sym("MPI_Comm_rank", CommQuery.self), commSize: try sym("MPI_Comm_size", CommQuery.self),
                       commSetErrhandler: try sym("MPI_Comm_set_errhandler", SetErrhandler.self),
                       iallreduce: try sym("MPI_Iallreduce", Iallreduce.self), ibcast: try sym("MPI_Ibcast", Ibcast.self),
                       ibarrier: try sym("MPI_Ibarrier", Ibarrier.self),
                       isend: try sym("MPI_Isend", Isend.self), irecv: try sym("MPI_Irecv", Irecv.self),
                       test: try sym("MPI_Test", Test.self), abort: try sym("MPI_Abort", Abort.self),
                       finalize: try sym("MPI_Finalize", Finalize.self),
                       commWorld: try handle("ompi_mpi_comm_world"), float: try handle("ompi_mpi_float"),
                       int32: try handle("ompi_mpi_int"), byte: try handle("ompi_mpi_byte"),
                       sum: try handle("ompi_mpi_op_sum"), errorsReturn: try handle("ompi_mpi_errors_return"))
        }
    }
}

/// The communicator for this process: MPI when started by mpirun, else a single process.
public enum Distribution {
    public static func detect() throws -> any Communicator {
        try MPICommunicator.detect() ?? SingleProcess()
    }
}
