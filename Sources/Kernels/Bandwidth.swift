import Foundation

// Memory-bandwidth baseline for the benchmarks: a threaded memcpy and a timing helper.
// Convention everywhere: GB/s = (bytes read + bytes written) / seconds / 1e9, so a copy of
// N bytes moves 2N bytes.

public enum Bandwidth {
    /// Threaded memcpy of `bytes` bytes (non-overlapping), split into one contiguous range per thread.
    public static func copy(src: UnsafeRawPointer, dst: UnsafeMutableRawPointer, bytes: Int, pool: ThreadPool) {
        pool.forRanges(bytes, grain: 1 << 20) { r in
            memcpy(dst + r.lowerBound, src + r.lowerBound, r.count)
        }
    }

    /// Seconds of the fastest of `repeats` runs of `body` (after `warmup` untimed runs).
    public static func bestTime(repeats: Int = 5, warmup: Int = 1, _ body: () -> Void) -> Double {
        for _ in 0..<warmup { body() }
        var best = Double.infinity
        for _ in 0..<max(1, repeats) {
            let t0 = DispatchTime.now().uptimeNanoseconds
            body()
            let t1 = DispatchTime.now().uptimeNanoseconds
            best = min(best, Double(t1 - t0) * 1e-9)
        }
        return best
    }

    /// GB/s of `body` moving `bytesMoved` bytes (read + written), best of `repeats`.
    public static func measureGBps(bytesMoved: Int, repeats: Int = 5, warmup: Int = 1, _ body: () -> Void) -> Double {
        Double(bytesMoved) / bestTime(repeats: repeats, warmup: warmup, body) / 1e9
    }

    /// memcpy bandwidth with the pool's threads on a `bytes`-byte buffer (default 256 MiB,
    /// far beyond the caches): 2·bytes / best time, in GB/s. Allocates its two buffers.
    public static func memcpyGBps(bytes: Int = 256 << 20, repeats: Int = 5, pool: ThreadPool) -> Double {
        let src = UnsafeMutableRawPointer.allocate(byteCount: bytes, alignment: 64)
        let dst = UnsafeMutableRawPointer.allocate(byteCount: bytes, alignment: 64)
        defer { src.deallocate(); dst.deallocate() }
        // Touch both so page faults are not timed.
        memset(src, 1, bytes)
        memset(dst, 0, bytes)
        return measureGBps(bytesMoved: 2 * bytes, repeats: repeats) {
            copy(src: src, dst: dst, bytes: bytes, pool: pool)
        }
    }
}
