// Deterministic reductions.
//
// Flat reductions split the input into a number of chunks that depends only on `count`
// (never on the thread count), sum each chunk by blocks (64 float lanes over blocks of
// 4096 elements, each block's total added in double), and combine the chunk totals in
// double in index order. The result is therefore bit-identical for any thread count.
// Column reductions give each task a contiguous range of 16-column strips and walk the rows
// in order (blocks of 64 rows in float, then double), so they are thread-count independent too.

protocol SumTerm {
    func term(_ a: F16, _ b: F16) -> F16
}
struct PlainTerm: SumTerm { @inline(__always) func term(_ a: F16, _ b: F16) -> F16 { a } }
struct SquareTerm: SumTerm { @inline(__always) func term(_ a: F16, _ b: F16) -> F16 { a * a } }
struct ProductTerm: SumTerm { @inline(__always) func term(_ a: F16, _ b: F16) -> F16 { a * b } }

/// Largest number of chunks a flat reduction is split into (bounded so the partials fit on the stack).
let maxReductionChunks = 128
/// Smallest chunk of a flat reduction.
let minReductionChunk = 8192
/// Summation block: float accumulation inside, double across blocks.
let reductionBlock = 4096

/// Σ term(a[i], b[i]) over i in lo..<hi, blocked: float within blocks of 4096, double across.
@inline(__always)
func blockedSum<T: SumTerm>(_ t: T, _ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ lo: Int, _ hi: Int) -> Double {
    var total = 0.0
    var start = lo
    while start < hi {
        let end = min(hi, start + reductionBlock)
        var s0 = F16(), s1 = F16(), s2 = F16(), s3 = F16()
        var i = start
        while i + 64 <= end {
            s0 += t.term(load16(a + i), load16(b + i))
            s1 += t.term(load16(a + i + 16), load16(b + i + 16))
            s2 += t.term(load16(a + i + 32), load16(b + i + 32))
            s3 += t.term(load16(a + i + 48), load16(b + i + 48))
            i += 64
        }
        while i + 16 <= end { s0 += t.term(load16(a + i), load16(b + i)); i += 16 }
        if i < end { s1 += t.term(loadPartial(a + i, end - i), loadPartial(b + i, end - i)) }
        total += Double(hsum((s0 + s1) + (s2 + s3)))
        start = end
    }
    return total
}

/// Thread-count-independent flat reduction.
@inline(__always)
func chunkedSum<T: SumTerm>(_ t: T, _ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ n: Int, _ pool: ThreadPool) -> Double {
    if n <= 0 { return 0 }
    let chunks = max(1, min(maxReductionChunks, n / minReductionChunk))
    if chunks == 1 { return blockedSum(t, a, b, 0, n) }
    return withUnsafeTemporaryAllocation(of: Double.self, capacity: maxReductionChunks) { partials in
        let base = n / chunks, extra = n % chunks
        pool.forEach(chunks) { c in
            let lo = c * base + min(c, extra)
            let hi = lo + base + (c < extra ? 1 : 0)
            partials[c] = blockedSum(t, a, b, lo, hi)
        }
        var s = 0.0
        for c in 0..<chunks { s += partials[c] }
        return s
    }
}

/// Column reduction of a rows × cols matrix (leading dimensions lda, ldb) into out (cols).
/// The columns are cut into 16-wide strips and the strips into one contiguous range per
/// thread; a task walks all rows in order over its range (sequential memory streams), in
/// passes of at most 32 strips, summing blocks of 64 rows in float and the block totals in
/// double. Every column gets the same arithmetic whatever the thread count.
@inline(__always)
func columnReduce<T: SumTerm>(_ t: T, _ a: UnsafePointer<Float>, _ lda: Int, _ b: UnsafePointer<Float>, _ ldb: Int,
                              rows: Int, cols: Int, out: UnsafeMutablePointer<Float>, accumulate: Bool, pool: ThreadPool) {
    let strips = (cols + 15) / 16
    pool.forRanges(strips, grain: 1) { sr in
        var f = StackF16x32()
        var d = StackD8x64()
        withUnsafeMutableBytes(of: &f) { fb in
        withUnsafeMutableBytes(of: &d) { db in
            let facc = fb.baseAddress!.assumingMemoryBound(to: F16.self)
            let dacc = db.baseAddress!.assumingMemoryBound(to: SIMD8<Double>.self)
            var p0 = sr.lowerBound
            while p0 < sr.upperBound {
                let p1 = min(sr.upperBound, p0 + 32)
                let n = p1 - p0
                let fullEnd = min(p1, cols / 16) // strips p0..<fullEnd are 16 wide
                dacc.initialize(repeating: SIMD8<Double>(), count: 2 * n)
                var r0 = 0
                while r0 < rows {
                    let r1 = min(rows, r0 + 64)
                    facc.initialize(repeating: F16(), count: n)
                    for r in r0..<r1 {
                        let ar = a + r * lda, br = b + r * ldb
                        var s = p0
                        while s < fullEnd {
                            facc[s - p0] += t.term(load16(ar + 16 * s), load16(br + 16 * s))
                            s += 1
                        }
                        if s < p1 {
                            let w = cols - 16 * s
                            facc[s - p0] += t.term(loadPartial(ar + 16 * s, w), loadPartial(br + 16 * s, w))
                        }
                    }
                    for j in 0..<n {
                        dacc[2 * j] += SIMD8<Double>(facc[j].lowHalf)
                        dacc[2 * j + 1] += SIMD8<Double>(facc[j].highHalf)
                    }
                    r0 = r1
                }
                for j in 0..<n {
                    let c0 = 16 * (p0 + j), w = min(16, cols - c0)
                    for l in 0..<w {
                        let v = l < 8 ? dacc[2 * j][l] : dacc[2 * j + 1][l - 8]
                        out[c0 + l] = accumulate ? Float(Double(out[c0 + l]) + v) : Float(v)
                    }
                }
                p0 = p1
            }
        }
        }
    }
}

/// 32 SIMD16<Float> of stack storage.
struct StackF16x32 {
    var a = (F16(), F16(), F16(), F16(), F16(), F16(), F16(), F16(), F16(), F16(), F16(), F16(), F16(), F16(), F16(), F16())
    var b = (F16(), F16(), F16(), F16(), F16(), F16(), F16(), F16(), F16(), F16(), F16(), F16(), F16(), F16(), F16(), F16())
}

typealias D8 = SIMD8<Double>

/// 64 SIMD8<Double> of stack storage.
struct StackD8x64 {
    var a = (D8(), D8(), D8(), D8(), D8(), D8(), D8(), D8(), D8(), D8(), D8(), D8(), D8(), D8(), D8(), D8())
    var b = (D8(), D8(), D8(), D8(), D8(), D8(), D8(), D8(), D8(), D8(), D8(), D8(), D8(), D8(), D8(), D8())
    var c = (D8(), D8(), D8(), D8(), D8(), D8(), D8(), D8(), D8(), D8(), D8(), D8(), D8(), D8(), D8(), D8())
    var d = (D8(), D8(), D8(), D8(), D8(), D8(), D8(), D8(), D8(), D8(), D8(), D8(), D8(), D8(), D8(), D8())
}

public enum Reductions {
    /// Σ x[i] over `count` floats, in double. Deterministic for any thread count.
    public static func sum(_ x: UnsafePointer<Float>, count n: Int, pool: ThreadPool) -> Double {
        chunkedSum(PlainTerm(), x, x, n, pool)
    }

    /// Σ x[i] / count (0 for count 0).
    public static func mean(_ x: UnsafePointer<Float>, count n: Int, pool: ThreadPool) -> Double {
        n > 0 ? sum(x, count: n, pool: pool) / Double(n) : 0
    }

    /// Σ x[i]² (e.g. for the global gradient norm), in double. Deterministic.
    public static func sumOfSquares(_ x: UnsafePointer<Float>, count n: Int, pool: ThreadPool) -> Double {
        chunkedSum(SquareTerm(), x, x, n, pool)
    }

    /// Σ a[i]·b[i], in double. Deterministic.
    public static func dot(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, count n: Int, pool: ThreadPool) -> Double {
        chunkedSum(ProductTerm(), a, b, n, pool)
    }

    /// out[c] (+)= Σ_r x[r, c] for x: rows × cols with leading dimension ldx (default cols);
    /// out: cols. Bias gradients. `accumulate` false overwrites out. Deterministic.
    public static func columnSums(_ x: UnsafePointer<Float>, rows: Int, cols: Int, ldx: Int? = nil,
                                  out: UnsafeMutablePointer<Float>, accumulate: Bool = false, pool: ThreadPool) {
        let ld = ldx ?? cols
        columnReduce(PlainTerm(), x, ld, x, ld, rows: rows, cols: cols, out: out, accumulate: accumulate, pool: pool)
    }

    /// out[c] (+)= Σ_r a[r, c]·b[r, c] (a, b: rows × cols contiguous; out: cols). Deterministic.
    /// E.g. the gradient of a per-channel scale: dv = Σ_r dy·x.
    public static func columnDot(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, rows: Int, cols: Int,
                                 out: UnsafeMutablePointer<Float>, accumulate: Bool = false, pool: ThreadPool) {
        columnReduce(ProductTerm(), a, cols, b, cols, rows: rows, cols: cols, out: out, accumulate: accumulate, pool: pool)
    }

    /// out[r] (+)= Σ_c x[r, c] (x: rows × cols with leading dimension ldx; out: rows).
    public static func rowSums(_ x: UnsafePointer<Float>, rows: Int, cols: Int, ldx: Int? = nil,
                               out: UnsafeMutablePointer<Float>, accumulate: Bool = false, pool: ThreadPool) {
        let ld = ldx ?? cols
        pool.forRanges(rows, grain: max(1, elementwiseGrain / max(1, cols))) { rr in
            for r in rr {
                let p = x + r * ld
                let s = blockedSum(PlainTerm(), p, p, 0, cols)
                out[r] = accumulate ? Float(Double(out[r]) + s) : Float(s)
            }
        }
    }
}
