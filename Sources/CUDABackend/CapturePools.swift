/// Which device blocks belong to which captured graph: the allocator's bookkeeping for CUDA
/// graphs, as a plain value (addresses and size classes only, no driver).
///
/// A graph replays its kernels with the addresses they had while it was captured, so a block
/// that was released while capturing (or allocated then and released later) must not go back
/// to the shared cache while the graph exists: a later tensor would get it and the replay
/// would overwrite it. Such blocks go to the pool of the capture instead. Within one capture
/// they are reused (a capture from one stream is a linear chain, so reuse in capture order is
/// as safe as stream-ordered reuse); when the graph is destroyed its free blocks return to the
/// shared cache and its still-live ones are disowned (released to the cache later as usual).
struct CapturePools: Sendable {
    private struct Pool {
        var free: [Int: [UInt64]] = [:]
        var freeBytes = 0
    }

    private var pools: [Int: Pool] = [:]
    /// Blocks owned by a pool (live or free) → the pool's id.
    private var owner: [UInt64: Int] = [:]
    private var nextID = 1
    /// The pool of the capture in progress.
    private(set) var capturing: Int?

    /// Starts a capture: blocks released from now on go to the returned pool.
    mutating func begin() -> Int {
        precondition(capturing == nil, "a CUDA graph capture is already in progress (captures do not nest)")
        let id = nextID
        nextID += 1
        pools[id] = Pool()
        capturing = id
        return id
    }

    /// Ends the capture; the pool lives on until `destroy`.
    mutating func end() {
        precondition(capturing != nil, "no CUDA graph capture in progress")
        capturing = nil
    }

    /// A free block of `size` from the capturing pool, if it has one.
    mutating func take(size: Int) -> UInt64? {
        guard let id = capturing, var list = pools[id]!.free[size], let p = list.popLast() else { return nil }
        pools[id]!.free[size] = list
        pools[id]!.freeBytes -= size
        return p
    }

    /// Records a block handed out during the capture (from the shared cache or the driver) as the pool's.
    mutating func adopt(_ address: UInt64) {
        guard let id = capturing else { return }
        owner[address] = id
    }

    /// Keeps a released block in its pool (or the capturing pool) and returns true; false
    /// when it belongs to no graph and goes to the shared cache.
    mutating func release(_ address: UInt64, size: Int) -> Bool {
        guard let id = owner[address] ?? capturing else { return false }
        owner[address] = id
        pools[id]!.free[size, default: []].append(address)
        pools[id]!.freeBytes += size
        return true
    }

    /// Drops pool `id` (its graph is gone): returns its free blocks (address, size) for the
    /// shared cache; its live blocks become ordinary ones.
    mutating func destroy(_ id: Int) -> [(address: UInt64, size: Int)] {
        precondition(capturing != id, "the pool of a capture in progress cannot be destroyed")
        guard let pool = pools.removeValue(forKey: id) else { return [] }
        var blocks: [(address: UInt64, size: Int)] = []
        for (size, list) in pool.free { for p in list { blocks.append((p, size)) } }
        owner = owner.filter { $0.value != id }
        return blocks
    }

    /// Bytes held free by pool `id` (0 once destroyed).
    func freeBytes(_ id: Int) -> Int { pools[id]?.freeBytes ?? 0 }

    /// Pools that still exist (graphs not yet destroyed).
    var count: Int { pools.count }
}
