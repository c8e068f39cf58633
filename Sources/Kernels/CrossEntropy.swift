import Foundation

// Softmax cross-entropy over V classes (V = 256 for 8-bit audio, any V works), fused and
// numerically stable (max-shifted log-sum-exp), plus a plain softmax for sampling.

public enum CrossEntropy {
    /// Row index r's log Σ_j exp(logits[r, j]) (max-shifted).
    @inline(__always)
    static func logSumExp(_ row: UnsafePointer<Float>, _ V: Int) -> Float {
        var mx = F16(repeating: -.infinity)
        var j = 0
        while j + 16 <= V { mx = simdMax(mx, load16(row + j)); j += 16 }
        if j < V { mx = simdMax(mx, loadPartial(row + j, V - j, fill: -.infinity)) }
        let m = hmax(mx)
        var s = F16()
        j = 0
        while j + 16 <= V { s += fastExp(load16(row + j) - m); j += 16 }
        // Padded lanes are −inf − m → exp clamps to 0.
        if j < V { s += fastExp(loadPartial(row + j, V - j, fill: -.infinity) - m) }
        return m + Foundation.log(hsum(s))
    }

    /// Per-row loss = logsumexp(logits[r, :]) − logits[r, target[r]] in nats.
    /// logits: rows × classes (leading dimension ldLogits, default classes); targets: rows,
    /// Int32 in 0..<classes, or negative to ignore the row (loss 0, gradient 0).
    /// losses (rows) and logSumExp (rows) are written (overwrite) when non-nil; keeping
    /// logSumExp saves a pass in the backward.
    /// Returns Σ_r loss (double; fixed chunking, so bit-identical for any thread count).
    @discardableResult
    public static func forward(logits: UnsafePointer<Float>, targets: UnsafePointer<Int32>, rows: Int, classes V: Int,
                               ldLogits: Int? = nil, losses: UnsafeMutablePointer<Float>?,
                               logSumExp lseOut: UnsafeMutablePointer<Float>?, pool: ThreadPool) -> Double {
        if rows <= 0 { return 0 }
        let ld = ldLogits ?? V
        let chunks = max(1, min(maxReductionChunks, rows / 64))
        return withUnsafeTemporaryAllocation(of: Double.self, capacity: maxReductionChunks) { partials in
            pool.forEach(chunks) { c in
                var total = 0.0
                for r in chunkRange(c, chunks: chunks, n: rows) {
                    let row = logits + r * ld
                    let lse = logSumExp(row, V)
                    lseOut?[r] = lse
                    let t = Int(targets[r])
                    let loss: Float = t >= 0 ? lse - row[t] : 0
                    losses?[r] = loss
                    total += Double(loss)
                }
                partials[c] = total
            }
            var s = 0.0
            for c in 0..<chunks { s += partials[c] }
            return s
        }
    }

    /// dLogits[r, j] (+)= g_r · (softmax(logits[r, :])_j − [j == target[r]]), g_r = scale · dLoss[r]
    /// (dLoss nil = 1; scale = 1/rows for a mean loss). Rows with a negative target get 0.
    /// logSumExp: the forward's saved rows, or nil to recompute. dLogits: rows × classes
    /// (leading dimension ldLogits, like logits). `accumulate` false overwrites.
    public static func backward(logits: UnsafePointer<Float>, targets: UnsafePointer<Int32>,
                                logSumExp lseIn: UnsafePointer<Float>?, dLoss: UnsafePointer<Float>?, scale: Float,
                                dLogits: UnsafeMutablePointer<Float>, rows: Int, classes V: Int, ldLogits: Int? = nil,
                                accumulate: Bool = true, pool: ThreadPool) {
        let ld = ldLogits ?? V
        // Large overwrites with whole 64-byte rows stream their stores (same arithmetic).
        let stream = !accumulate && rows * V >= streamingStoreMinCount && V % 16 == 0 && ld % 16 == 0
            && Int(bitPattern: UInt(bitPattern: dLogits)) & 63 == 0
        pool.forRanges(rows, grain: max(1, elementwiseGrain / max(1, V))) { rr in
            if stream {
                backwardRowsStreamed(logits: logits, targets: targets, logSumExp: lseIn, dLoss: dLoss, scale: scale,
                                     dLogits: dLogits, rows: rr, V: V, ld: ld)
                return
            }
            for r in rr {
                let row = logits + r * ld
                let out = dLogits + r * ld
                let t = Int(targets[r])
                let g = t >= 0 ? scale * (dLoss?[r] ?? 1) : 0
                let lse = lseIn?[r] ?? (t >= 0 ? logSumExp(row, V) : 0)
                var j = 0
                while j < V {
                    let m = min(16, V - j)
                    let full = m == 16
                    var d = g * fastExp((full ? load16(row + j) : loadPartial(row + j, m)) - lse)
                    if t >= j && t < j + m { d[t - j] -= g }
                    if t < 0 { d = F16() }
                    if accumulate { d += full ? load16(out + j) : loadPartial(out + j, m) }
                    if full { store16(d, out + j) } else { storePartial(d, out + j, m) }
                    j += 16
                }
            }
        }
    }

    /// `backward` (overwrite) on rows `rows` with streaming stores: V and ld multiples of 16,
    /// dLogits 64-byte aligned. Same arithmetic as the plain path (bit-identical); out of line
    /// and free of stack buffers (see `streamUnary`).
    @inline(never)
    static func backwardRowsStreamed(logits: UnsafePointer<Float>, targets: UnsafePointer<Int32>,
                                     logSumExp lseIn: UnsafePointer<Float>?, dLoss: UnsafePointer<Float>?, scale: Float,
                                     dLogits: UnsafeMutablePointer<Float>, rows: Range<Int>, V: Int, ld: Int) {
        for r in rows {
            let row = logits + r * ld
            let out = dLogits + r * ld
            let t = Int(targets[r])
            let g = t >= 0 ? scale * (dLoss?[r] ?? 1) : 0
            let lse = lseIn?[r] ?? (t >= 0 ? logSumExp(row, V) : 0)
            var j = 0
            while j < V {
                var d = g * fastExp(load16(row + j) - lse)
                if t >= j && t < j + 16 { d[t - j] -= g }
                if t < 0 { d = F16() }
                streamStore16(d, out + j)
                j += 16
            }
        }
        storeFence()
    }

    /// probs[r, :] = softmax(logits[r, :] / temperature) (rows × classes contiguous; overwrite;
    /// probs may alias logits). For sampling.
    public static func softmax(logits: UnsafePointer<Float>, probs: UnsafeMutablePointer<Float>, rows: Int, classes V: Int,
                               temperature: Float = 1, pool: ThreadPool) {
        let invT = 1 / temperature
        pool.forRanges(rows, grain: max(1, elementwiseGrain / max(1, V))) { rr in
            for r in rr {
                let row = logits + r * V, out = probs + r * V
                var mx = F16(repeating: -.infinity)
                var j = 0
                while j + 16 <= V { mx = simdMax(mx, load16(row + j)); j += 16 }
                if j < V { mx = simdMax(mx, loadPartial(row + j, V - j, fill: -.infinity)) }
                let m = hmax(mx) * invT
                var s = F16()
                j = 0
                while j < V {
                    let w = min(16, V - j)
                    let e = fastExp((w == 16 ? load16(row + j) : loadPartial(row + j, w, fill: -.infinity)) * invT - m)
                    s += e
                    if w == 16 { store16(e, out + j) } else { storePartial(e, out + j, w) }
                    j += 16
                }
                let inv = 1 / hsum(s)
                j = 0
                while j < V {
                    let w = min(16, V - j)
                    if w == 16 { store16(load16(out + j) * inv, out + j) } else { storePartial(loadPartial(out + j, w) * inv, out + j, w) }
                    j += 16
                }
            }
        }
    }

    /// Nats → bits (÷ ln 2): a per-sample loss in nats as bits per sample.
    public static func natsToBits(_ nats: Double) -> Double {
        nats / M_LN2
    }
}
