import Engine
import Foundation

/// Device memory from cuMemAlloc, cached by size class and reused (no cuMemAlloc per
/// training step; no managed memory). Blocks are only ever used on the backend's one stream,
/// so a released block can be handed out again at once: stream order makes the reuse safe,
/// as in PyTorch's caching allocator. When cuMemAlloc fails the cache is returned to the
/// driver (after a stream synchronisation) and the allocation retried once.
///
/// While a CUDA graph is captured, released blocks go to that graph's pool instead of the
/// cache (see `CapturePools`): the graph keeps using those addresses on every replay.
public final class CUDACachingAllocator: Allocator, @unchecked Sendable {
    private let cu: CUDADriver
    private let context: OpaquePointer?
    private let stream: OpaquePointer?
    private let ordinal: Int
    private let lock = NSLock()
    private var free: [Int: [UInt64]] = [:]
    private var cachedBytes = 0
    private var capture = CapturePools()
    public private(set) var liveBytes = 0
    public private(set) var peakLiveBytes = 0
    public private(set) var driverAllocations = 0

    init(driver: CUDADriver, context: OpaquePointer?, stream: OpaquePointer?, ordinal: Int) {
        cu = driver
        self.context = context
        self.stream = stream
        self.ordinal = ordinal
    }

    /// Multiples of 512 bytes up to 1 MiB, then powers of two in quarter steps (≤ 25 % waste).
    static func sizeClass(_ n: Int) -> Int {
        let n = max(n, 512)
        if n <= 1 << 20 { return (n + 511) & ~511 }
        let p = Int.bitWidth - (n - 1).leadingZeroBitCount
        let quarter = 1 << (p - 3)
        return ((n + quarter - 1) / quarter) * quarter
    }

    public func allocate(byteCount: Int) -> UnsafeMutableRawPointer {
        let size = Self.sizeClass(byteCount)
        lock.lock()
        defer { lock.unlock() }
        liveBytes += size
        peakLiveBytes = max(peakLiveBytes, liveBytes)
        if let p = capture.take(size: size) { return UnsafeMutableRawPointer(bitPattern: UInt(p))! }
        if var list = free[size], let p = list.popLast() {
            free[size] = list
            cachedBytes -= size
            capture.adopt(p)
            return UnsafeMutableRawPointer(bitPattern: UInt(p))!
        }
        cu.must(cu.cuCtxSetCurrent(context), "cuCtxSetCurrent")
        var p: UInt64 = 0
        var rc = cu.cuMemAlloc(&p, size)
        // Trimming synchronises the stream, which a capture forbids.
        if rc != 0 && capture.capturing == nil {
            trimLocked()
            rc = cu.cuMemAlloc(&p, size)
        }
        if rc != 0 {
            var freeBytes = 0, total = 0
            _ = cu.cuMemGetInfo(&freeBytes, &total)
            fatalError("cuda:\(ordinal): out of device memory: could not allocate \(size) bytes (\(cu.errorName(rc)); "
                       + "\(liveBytes - size) bytes live, \(freeBytes) of \(total) free"
                       + (capture.capturing != nil ? ", during a CUDA graph capture" : "") + "); use a smaller batch or sequence length")
        }
        driverAllocations += 1
        capture.adopt(p)
        return UnsafeMutableRawPointer(bitPattern: UInt(p))!
    }

    public func release(_ address: UnsafeMutableRawPointer, byteCount: Int) {
        let size = Self.sizeClass(byteCount)
        lock.lock()
        liveBytes -= size
        let p = UInt64(UInt(bitPattern: address))
        if !capture.release(p, size: size) {
            free[size, default: []].append(p)
            cachedBytes += size
        }
        lock.unlock()
    }

    /// From now until `endCapture`, released blocks belong to a new graph pool (its id).
    func beginCapture() -> Int {
        lock.lock()
        defer { lock.unlock() }
        return capture.begin()
    }

    func endCapture() {
        lock.lock()
        capture.end()
        lock.unlock()
    }

    /// The graph of pool `id` is destroyed: its free blocks return to the cache (stream order
    /// keeps the reuse safe: the graph's launches were queued before anything that gets them).
    func destroyPool(_ id: Int) {
        lock.lock()
        for (p, size) in capture.destroy(id) {
            free[size, default: []].append(p)
            cachedBytes += size
        }
        lock.unlock()
    }

    /// Bytes held free by graph pool `id`.
    func poolFreeBytes(_ id: Int) -> Int {
        lock.lock()
        defer { lock.unlock() }
        return capture.freeBytes(id)
    }

    /// Returns every cached block to the driver.
    public func trim() {
        lock.lock()
        precondition(capture.capturing == nil, "CUDA allocator: trim() synchronises the stream and cannot run while a graph is captured")
        trimLocked()
        lock.unlock()
    }

    private func trimLocked() {
        cu.must(cu.cuCtxSetCurrent(context), "cuCtxSetCurrent")
        _ = cu.cuStreamSynchronize(stream)
        for list in free.values { for p in list { _ = cu.cuMemFree(p) } }
        free = [:]
        cachedBytes = 0
    }

    public func resetPeak() {
        lock.lock()
        peakLiveBytes = liveBytes
        lock.unlock()
    }
}
