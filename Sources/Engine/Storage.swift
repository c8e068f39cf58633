import Foundation

/// A block of memory on one device, owned by the allocator of its backend and returned to
/// it when the last tensor using it goes away. On the CPU `address` is a host pointer; on a
/// GPU it is a device address that only that backend's kernels dereference.
public final class Storage: @unchecked Sendable {
    public let address: UnsafeMutableRawPointer
    public let byteCount: Int
    public let backend: any Backend
    private let allocator: any Allocator

    public init(address: UnsafeMutableRawPointer, byteCount: Int, backend: any Backend, allocator: any Allocator) {
        self.address = address
        self.byteCount = byteCount
        self.backend = backend
        self.allocator = allocator
    }

    deinit { allocator.release(address, byteCount: byteCount) }
}

/// Hands out raw blocks for a backend. Blocks are cached by size class and reused, so a
/// training loop that allocates the same shapes each step stops calling the system
/// allocator after its first step (for a GPU the same scheme avoids cuMemAlloc per step).
public protocol Allocator: AnyObject, Sendable {
    func allocate(byteCount: Int) -> UnsafeMutableRawPointer
    func release(_ address: UnsafeMutableRawPointer, byteCount: Int)
}

/// Host memory, 64-byte aligned (a cache line; AVX-512 friendly), cached by size class.
public final class HostCachingAllocator: Allocator, @unchecked Sendable {
    private let lock = NSLock()
    private var free: [Int: [UnsafeMutableRawPointer]] = [:]
    private var cachedBytes = 0
    /// Blocks beyond this many cached bytes go back to the system.
    public let cacheLimit: Int
    public private(set) var systemAllocations = 0
    /// Every `allocate` call, served from the cache or not (tests count per-step allocations).
    public private(set) var requests = 0
    public private(set) var liveBytes = 0
    public private(set) var peakLiveBytes = 0

    public init(cacheLimit: Int = 4 << 30) { self.cacheLimit = cacheLimit }

    /// Size classes: multiples of 64 bytes up to 4 KiB, then powers of two split in 4 steps,
    /// so a block serves requests within 25 % of its size.
    static func sizeClass(_ n: Int) -> Int {
        let n = max(n, 64)
        if n <= 4096 { return (n + 63) & ~63 }
        let p = Int.bitWidth - (n - 1).leadingZeroBitCount // 2^p ≥ n
        let quarter = 1 << (p - 3)
        return ((n + quarter - 1) / quarter) * quarter
    }

    public func allocate(byteCount: Int) -> UnsafeMutableRawPointer {
        let size = Self.sizeClass(byteCount)
        lock.lock()
        requests += 1
        liveBytes += size
        peakLiveBytes = max(peakLiveBytes, liveBytes)
        if var list = free[size], let p = list.popLast() {
            free[size] = list
            cachedBytes -= size
            lock.unlock()
            return p
        }
        systemAllocations += 1
        lock.unlock()
        var p: UnsafeMutableRawPointer?
        guard posix_memalign(&p, 64, size) == 0, let p else {
            fatalError("out of memory: could not allocate \(size) bytes")
        }
        return p
    }

    public func release(_ address: UnsafeMutableRawPointer, byteCount: Int) {
        let size = Self.sizeClass(byteCount)
        lock.lock()
        liveBytes -= size
        if cachedBytes + size <= cacheLimit {
            free[size, default: []].append(address)
            cachedBytes += size
            lock.unlock()
        } else {
            lock.unlock()
            Foundation.free(address)
        }
    }

    /// Returns every cached block to the system.
    public func trim() {
        lock.lock()
        let all = free.values.flatMap { $0 }
        free = [:]
        cachedBytes = 0
        lock.unlock()
        for p in all { Foundation.free(p) }
    }

    public func resetPeak() {
        lock.lock()
        peakLiveBytes = liveBytes
        lock.unlock()
    }

    deinit { trim() }
}
