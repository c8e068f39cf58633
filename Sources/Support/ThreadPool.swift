import Dispatch
import Foundation

/// The CPU worker pool. Work is split into a fixed number of contiguous chunks that depend
/// only on the problem size and `threads` — never on timing — so the same thread count
/// gives bit-identical results (each chunk's arithmetic is done in the same order).
public struct ThreadPool: Sendable {
    /// Number of worker threads (the CPU cores by default, or `WAVEMAMBA_THREADS`).
    public let threads: Int

    public init(threads: Int? = nil) {
        if let threads { self.threads = max(1, threads); return }
        if let env = ProcessInfo.processInfo.environment["WAVEMAMBA_THREADS"], let n = Int(env), n > 0 {
            self.threads = n
        } else {
            self.threads = max(1, ProcessInfo.processInfo.activeProcessorCount)
        }
    }

    /// Runs `body(i)` for every `i` in `0..<count`, spread over the pool.
    /// `count` independent tasks; a task is the unit of determinism.
    @inlinable
    public func forEach(_ count: Int, _ body: (Int) -> Void) {
        if count <= 0 { return }
        if threads == 1 || count == 1 {
            for i in 0..<count { body(i) }
            return
        }
        withoutActuallyEscaping(body) { body in
            DispatchQueue.concurrentPerform(iterations: count) { i in body(i) }
        }
    }

    /// Splits `0..<n` into at most `threads × oversubscribe` contiguous ranges of at least
    /// `grain` elements and runs `body(range)` for each, in parallel.
    @inlinable
    public func forRanges(_ n: Int, grain: Int = 4096, oversubscribe: Int = 1, _ body: (Range<Int>) -> Void) {
        if n <= 0 { return }
        let maxChunks = max(1, threads * oversubscribe)
        let chunks = max(1, min(maxChunks, n / max(1, grain)))
        if chunks == 1 { body(0..<n); return }
        let base = n / chunks, extra = n % chunks
        forEach(chunks) { c in
            let lo = c * base + min(c, extra)
            let hi = lo + base + (c < extra ? 1 : 0)
            body(lo..<hi)
        }
    }
}
