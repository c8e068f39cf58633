import Foundation

/// Data parallelism over MPI, loaded at run time: the single-process path needs no MPI
/// library, and one binary serves both. Open MPI (Debian's `openmpi-bin`,
/// `libopenmpi-dev`; `libmpi.so.40`) is supported: its handles (MPI_COMM_WORLD, MPI_FLOAT,
/// MPI_SUM, …) are addresses of exported globals, which `dlsym` finds.
///
/// Collectives are nonblocking calls polled against a deadline, so a dead or hung peer turns
/// into an error naming it within `timeout` seconds instead of a silent hang; rank 0 first
/// collects a heartbeat (the step number) from every rank, so it can name the ranks missing.
public final class MPICommunicator: Communicator {
    public let rank: Int
    public let size: Int
    public let timeout: TimeInterval
    private let api: API
    private var step: Int32 = 0

    /// `mpirun` sets these for every rank it starts (Open MPI, and PMI-based launchers).
    public static var launchedByMPI: Bool {
        let env = ProcessInfo.processInfo.environment
        return env["OMPI_COMM_WORLD_SIZE"] != nil || env["PMI_SIZE"] != nil || env["PMIX_RANK"] != nil
    }

    /// Joins the MPI job when the process was started by mpirun; nil otherwise.
    public static func detect(timeout: TimeInterval? = nil) throws -> MPICommunicator? {
        guard launchedByMPI else { return nil }
        let env = ProcessInfo.processInfo.environment
        let t = timeout ?? env["WAVEMAMBA_COLLECTIVE_TIMEOUT"].flatMap(Double.init) ?? 60
        return try MPICommunicator(timeout: t)
    }

    init(timeout: TimeInterval) throws {
        api = try API.load()
        var provided: Int32 = 0
        guard api.initThread(nil, nil, 1 /* MPI_THREAD_FUNNELED */, &provided) == 0 else {
            throw CollectiveError("MPI_Init_thread failed; check that this process was started by Open MPI's mpirun")
        }
        // Errors come back as return codes (we report them) instead of aborting inside MPI.
        _ = api.commSetErrhandler(api.commWorld, api.errorsReturn)
        var r: Int32 = 0, s: Int32 = 0
        _ = api.commRank(api.commWorld, &r)
        _ = api.commSize(api.commWorld, &s)
        rank = Int(r)
        size = Int(s)
        self.timeout = timeout
    }

    public var description: String { "MPI (Open MPI), \(size) ranks" }

    public func allReduceSum(_ buffer: UnsafeMutablePointer<Float>, count: Int) throws {
        step &+= 1
        try heartbeat()
        // Buckets of ≤ 4 Mi floats, all started before any is awaited, so the transfers overlap.
        let bucket = 1 << 22
        var requests: [OpaquePointer?] = []
        var offset = 0
        while offset < count {
            let n = min(bucket, count - offset)
            var req: OpaquePointer?
            let rc = api.iallreduce(UnsafeRawPointer(bitPattern: 1), buffer + offset, Int32(n), api.float, api.sum, api.commWorld, &req)
            guard rc == 0 else { throw CollectiveError("rank \(rank): MPI_Iallreduce failed (code \(rc))") }
            requests.append(req)
            offset += n
        }
        try wait(&requests, what: "gradient all-reduce at step \(step)")
    }

    public func broadcast(_ bytes: UnsafeMutableRawBufferPointer, root: Int) throws {
        var req: OpaquePointer?
        let rc = api.ibcast(bytes.baseAddress, Int32(bytes.count), api.byte, Int32(root), api.commWorld, &req)
        guard rc == 0 else { throw CollectiveError("rank \(rank): MPI_Ibcast failed (code \(rc))") }
        var requests = [req]
        try wait(&requests, what: "broadcast from rank \(root)")
    }

    public func abort(_ message: String) -> Never {
        FileHandle.standardError.write(Data("error: rank \(rank): \(message)\n".utf8))
        _ = api.abort(api.commWorld, 1)
        exit(1)
    }

    /// Every rank sends its step number to rank 0, which waits for all of them against the
    /// deadline and names the ranks that did not report; then rank 0 acknowledges.
    private func heartbeat() throws {
        let tag: Int32 = 7301
        if rank == 0 {
            var steps = [Int32](repeating: -1, count: size)
            var requests: [OpaquePointer?] = []
            try steps.withUnsafeMutableBufferPointer { buf in
                for r in 1..<size {
                    var req: OpaquePointer?
                    let rc = api.irecv(buf.baseAddress! + r, 1, api.int32, Int32(r), tag, api.commWorld, &req)
                    guard rc == 0 else { throw CollectiveError("rank 0: MPI_Irecv failed (code \(rc))") }
                    requests.append(req)
                }
                do {
                    try wait(&requests, what: "heartbeat at step \(step)")
                } catch {
                    let missing = (1..<size).filter { buf[$0] < 0 }
                    abort("rank\(missing.count == 1 ? "" : "s") \(missing.map(String.init).joined(separator: ", ")) did not reach step \(step) within \(Int(timeout)) s: dead or hung; the run stops here — resume it with `--resume` (any number of ranks)")
                }
            }
        } else {
            var s = step
            var req: OpaquePointer?
            let rc = api.isend(&s, 1, api.int32, 0, tag, api.commWorld, &req)
            guard rc == 0 else { throw CollectiveError("rank \(rank): MPI_Isend failed (code \(rc))") }
            var requests = [req]
            do {
                try wait(&requests, what: "heartbeat to rank 0 at step \(step)")
            } catch {
                abort("rank 0 did not answer within \(Int(timeout)) s at step \(step): dead or hung; resume with `--resume`")
            }
        }
    }

    /// Polls the requests until all complete or the deadline passes.
    private func wait(_ requests: inout [OpaquePointer?], what: String) throws {
        let deadline = Date().addingTimeInterval(timeout)
        var pending = requests.count
        var done = [Bool](repeating: false, count: requests.count)
        var sleep: useconds_t = 20
        while pending > 0 {
            for i in requests.indices where !done[i] {
                var flag: Int32 = 0
                let rc = api.test(&requests[i], &flag, nil)
                guard rc == 0 else { throw CollectiveError("rank \(rank): \(what) failed (MPI code \(rc)); a peer rank probably died") }
                if flag != 0 { done[i] = true; pending -= 1 }
            }
            if pending == 0 { break }
            if Date() > deadline { throw CollectiveError("rank \(rank): \(what) did not complete within \(Int(timeout)) s") }
            usleep(sleep)
            sleep = min(sleep * 2, 2000)
        }
    }

    /// The MPI entry points and handles, resolved with dlopen/dlsym.
    struct API {
        typealias Handle = OpaquePointer
        typealias Request = UnsafeMutablePointer<OpaquePointer?>
        typealias InitThread = @convention(c) (UnsafeMutablePointer<Int32>?, UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>?, Int32, UnsafeMutablePointer<Int32>) -> Int32
        typealias CommQuery = @convention(c) (Handle, UnsafeMutablePointer<Int32>) -> Int32
        typealias SetErrhandler = @convention(c) (Handle, Handle) -> Int32
        typealias Iallreduce = @convention(c) (UnsafeRawPointer?, UnsafeMutableRawPointer?, Int32, Handle, Handle, Handle, Request) -> Int32
        typealias Ibcast = @convention(c) (UnsafeMutableRawPointer?, Int32, Handle, Int32, Handle, Request) -> Int32
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
        let isend: Isend
        let irecv: Irecv
        let test: Test
        let abort: Abort
        let finalize: Finalize
        let commWorld, float, int32, byte, sum, errorsReturn: Handle

        static func load() throws -> API {
            var lib: UnsafeMutableRawPointer?
            for name in ["libmpi.so.40", "libmpi.so"] {
                lib = dlopen(name, RTLD_NOW | RTLD_GLOBAL)
                if lib != nil { break }
            }
            guard let lib else {
                throw CollectiveError("started by mpirun, but libmpi.so.40 (Open MPI) cannot be loaded: \(String(cString: dlerror())); install it with `apt-get install openmpi-bin libopenmpi-dev`")
            }
            func sym<T>(_ name: String, _: T.Type) throws -> T {
                guard let p = dlsym(lib, name) else { throw CollectiveError("libmpi lacks \(name); Open MPI 4 or newer is needed") }
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
                       isend: try sym("MPI_Isend", Isend.self), irecv: try sym("MPI_Irecv", Irecv.self),
                       test: try sym("MPI_Test", Test.self), abort: try sym("MPI_Abort", Abort.self),
                       finalize: try sym("MPI_Finalize", Finalize.self),
                       commWorld: try handle("ompi_mpi_comm_world"), float: try handle("ompi_mpi_float"),
                       int32: try handle("ompi_mpi_int"), byte: try handle("ompi_mpi_byte"),
                       sum: try handle("ompi_mpi_op_sum"), errorsReturn: try handle("ompi_mpi_errors_return"))
        }
    }

    deinit { _ = api.finalize() }
}
