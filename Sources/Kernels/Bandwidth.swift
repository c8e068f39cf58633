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

    /// A kernel's bandwidth and memcpy's, measured alternately (memcpy of `memcpyBytes`, then
    /// the kernel, `rounds` times; best of each) so that drifting load on a shared machine
    /// affects both alike. Returns (kernel GB/s, memcpy GB/s). Allocates the memcpy buffers.
    public static func compareToMemcpy(bytesMoved: Int, memcpyBytes: Int = 64 << 20, rounds: Int = 7,
                                       pool: ThreadPool, _ body: () -> Void) -> (kernel: Double, memcpy: Double) {
        let src = UnsafeMutableRawPointer.allocate(byteCount: memcpyBytes, alignment: 64)
        let dst = UnsafeMutableRawPointer.allocate(byteCount: memcpyBytes, alignment: 64)
        defer { src.deallocate(); dst.deallocate() }
        memset(src, 1, memcpyBytes)
        memset(dst, 0, memcpyBytes)
        body()
        copy(src: src, dst: dst, bytes: memcpyBytes, pool: pool)
        var bestK = Double.infinity, bestM = Double.infinity
        for _ in 0..<max(1, rounds) {
            bestM = min(bestM, bestTime(repeats: 1, warmup: 0) { copy(src: src, dst: dst, bytes: memcpyBytes, pool: pool) })
            bestK = min(bestK, bestTime(repeats: 1, warmup: 0, body))
        }
        return (Double(bytesMoved) / bestK / 1e9, Double(2 * memcpyBytes) / bestM / 1e9)
    }
}
