// Embedding lookup (gather of table rows) and its deterministic scatter-add backward.

public enum Embedding {
    /// out[i, :] = table[indices[i], :] for i in 0..<count (overwrite).
    /// table: vocab × channels; indices: count Int32 values in 0..<vocab (not checked in
    /// release); out: count × channels.
    public static func forward(table: UnsafePointer<Float>, indices: UnsafePointer<Int32>, count n: Int,
                               channels C: Int, out: UnsafeMutablePointer<Float>, pool: ThreadPool) {
        pool.forRanges(n, grain: max(1, elementwiseGrain / max(1, C))) { rr in
            for i in rr {
                let src = table + Int(indices[i]) * C, dst = out + i * C
                var c = 0
                while c + 16 <= C { store16(load16(src + c), dst + c); c += 16 }
                while c < C { dst[c] = src[c]; c += 1 }
            }
        }
    }

    /// dTable[indices[i], :] += dOut[i, :] for i in 0..<count (always accumulates).
    /// Deterministic for any thread count: table rows are split into contiguous ranges, each
    /// task scans all indices in order and adds the rows that fall in its range, so every
    /// table row receives its contributions in index order.
    /// dTable: vocab × channels; dOut: count × channels.
    public static func backward(dOut: UnsafePointer<Float>, indices: UnsafePointer<Int32>, count n: Int,
                                channels C: Int, vocab V: Int, dTable: UnsafeMutablePointer<Float>, pool: ThreadPool) {
        // Scanning the indices costs every task n reads; only split the table when each task
        // still has a worthwhile share of the row traffic.
        let grain = max(1, V / max(1, pool.threads))
        pool.forRanges(V, grain: n * C >= 1 << 16 ? grain : V) { vr in
            let lo = Int32(vr.lowerBound), hi = Int32(vr.upperBound)
            for i in 0..<n {
                let v = indices[i]
                if v < lo || v >= hi { continue }
                let src = dOut + i * C, dst = dTable + Int(v) * C
                var c = 0
                while c + 16 <= C { store16(load16(dst + c) + load16(src + c), dst + c); c += 16 }
                while c < C { dst[c] += src[c]; c += 1 }
            }
        }
    }
}
