// Element-wise arithmetic over flat contiguous buffers, forward and backward.
//
// All kernels accept in-place use (an output may alias an input of the same index),
// split work over the pool in fixed contiguous ranges, and have no reductions, so the
// results do not depend on the thread count.

struct AddOp: BinaryMap { @_transparent func apply(_ a: F16, _ b: F16) -> F16 { a + b } }
struct SubOp: BinaryMap { @_transparent func apply(_ a: F16, _ b: F16) -> F16 { a - b } }
struct MulOp: BinaryMap { @_transparent func apply(_ a: F16, _ b: F16) -> F16 { a * b } }
struct AxpbyOp: BinaryMap {
    let alpha: Float, beta: Float
    @_transparent func apply(_ x: F16, _ y: F16) -> F16 { alpha * x + beta * y }
}
struct ScaleOp: UnaryMap {
    let s: Float
    @_transparent func apply(_ x: F16) -> F16 { x * s }
}
struct AddScalarOp: UnaryMap {
    let s: Float
    @_transparent func apply(_ x: F16) -> F16 { x + s }
}
struct IdentityOp: UnaryMap { @_transparent func apply(_ x: F16) -> F16 { x } }

public enum Elementwise {
    /// out[i] = a[i] + b[i]  (count elements; overwrite; `out` may alias `a` or `b`).
    public static func add(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ out: UnsafeMutablePointer<Float>,
                           count n: Int, pool: ThreadPool) {
        mapBinary(AddOp(), a, b, out, n, pool)
    }

    /// out[i] = a[i] − b[i]  (overwrite).
    public static func sub(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ out: UnsafeMutablePointer<Float>,
                           count n: Int, pool: ThreadPool) {
        mapBinary(SubOp(), a, b, out, n, pool)
    }

    /// out[i] = a[i] · b[i]  (overwrite, or `+=` when `accumulate`).
    public static func mul(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ out: UnsafeMutablePointer<Float>,
                           count n: Int, accumulate: Bool = false, pool: ThreadPool) {
        mapBinary(MulOp(), a, b, out, n, accumulate: accumulate, pool)
    }

    /// Backward of out = a·b: da (+)= dy·b, db (+)= dy·a. Either gradient may be nil.
    /// `accumulate` true adds into da/db, false overwrites them.
    public static func mulBackward(dy: UnsafePointer<Float>, a: UnsafePointer<Float>, b: UnsafePointer<Float>,
                                   da: UnsafeMutablePointer<Float>?, db: UnsafeMutablePointer<Float>?,
                                   count n: Int, accumulate: Bool = true, pool: ThreadPool) {
        if let da { mapBinary(MulOp(), dy, b, da, n, accumulate: accumulate, pool) }
        if let db { mapBinary(MulOp(), dy, a, db, n, accumulate: accumulate, pool) }
    }

    /// out[i] = x[i] + s  (overwrite).
    public static func addScalar(_ x: UnsafePointer<Float>, _ s: Float, _ out: UnsafeMutablePointer<Float>,
                                 count n: Int, pool: ThreadPool) {
        mapUnary(AddScalarOp(s: s), x, out, n, pool)
    }

    /// out[i] = s · x[i]  (overwrite, or `+=` when `accumulate`; backward of scale is scale(dy, s, dx, accumulate: true)).
    public static func scale(_ x: UnsafePointer<Float>, _ s: Float, _ out: UnsafeMutablePointer<Float>,
                             count n: Int, accumulate: Bool = false, pool: ThreadPool) {
        mapUnary(ScaleOp(s: s), x, out, n, accumulate: accumulate, pool)
    }

    /// y[i] += alpha · x[i]  (BLAS axpy; also the backward of add/sub: dx += ±dy).
    public static func axpy(alpha: Float, _ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>,
                            count n: Int, pool: ThreadPool) {
        mapUnary(ScaleOp(s: alpha), x, y, n, accumulate: true, pool)
    }

    /// y[i] = alpha · x[i] + beta · y[i]  (in place on y).
    public static func axpby(alpha: Float, _ x: UnsafePointer<Float>, beta: Float, _ y: UnsafeMutablePointer<Float>,
                             count n: Int, pool: ThreadPool) {
        mapBinary(AxpbyOp(alpha: alpha, beta: beta), x, UnsafePointer(y), y, n, pool)
    }

    /// dst[i] = src[i]  (overwrite), or dst[i] += src[i] when `accumulate` (gradient pass-through).
    public static func copy(_ src: UnsafePointer<Float>, _ dst: UnsafeMutablePointer<Float>,
                            count n: Int, accumulate: Bool = false, pool: ThreadPool) {
        mapUnary(IdentityOp(), src, dst, n, accumulate: accumulate, pool)
    }

    /// dst[i] = value.
    public static func fill(_ dst: UnsafeMutablePointer<Float>, value: Float, count n: Int, pool: ThreadPool) {
        let v = F16(repeating: value)
        pool.forRanges(n, grain: elementwiseGrain) { r in
            var i = r.lowerBound
            while i + 16 <= r.upperBound { store16(v, dst + i); i += 16 }
            while i < r.upperBound { dst[i] = value; i += 1 }
        }
    }

    // MARK: Row-broadcast (a vector of length cols applied to every row of a rows × cols matrix)

    /// out[r, c] = x[r, c] + v[c]  (x, out: rows × cols contiguous; v: cols; overwrite; out may alias x).
    /// Backward: dx += dy (copy/axpy), dv += Reductions.columnSums(dy).
    public static func addRowVector(_ x: UnsafePointer<Float>, _ v: UnsafePointer<Float>, _ out: UnsafeMutablePointer<Float>,
                                    rows: Int, cols: Int, pool: ThreadPool) {
        rowBroadcast(x, v, out, rows: rows, cols: cols, pool: pool, AddOp())
    }

    /// out[r, c] = x[r, c] · v[c]  (overwrite). Backward: `mulRowVectorBackward`.
    public static func mulRowVector(_ x: UnsafePointer<Float>, _ v: UnsafePointer<Float>, _ out: UnsafeMutablePointer<Float>,
                                    rows: Int, cols: Int, pool: ThreadPool) {
        rowBroadcast(x, v, out, rows: rows, cols: cols, pool: pool, MulOp())
    }

    /// Backward of out = x · v (row broadcast): dx[r,c] (+)= dy[r,c]·v[c];
    /// dv[c] (+)= Σ_r dy[r,c]·x[r,c] (deterministic, see Reductions.columnDot).
    /// `accumulate` applies to both gradients; either may be nil.
    public static func mulRowVectorBackward(dy: UnsafePointer<Float>, x: UnsafePointer<Float>, v: UnsafePointer<Float>,
                                            dx: UnsafeMutablePointer<Float>?, dv: UnsafeMutablePointer<Float>?,
                                            rows: Int, cols: Int, accumulate: Bool = true, pool: ThreadPool) {
        if let dx {
            pool.forRanges(rows, grain: max(1, elementwiseGrain / max(1, cols))) { rr in
                for r in rr {
                    let o = r * cols
                    var c = 0
                    while c + 16 <= cols {
                        let g = load16(dy + o + c) * load16(v + c)
                        store16(accumulate ? load16(dx + o + c) + g : g, dx + o + c)
                        c += 16
                    }
                    while c < cols {
                        let g = dy[o + c] * v[c]
                        dx[o + c] = accumulate ? dx[o + c] + g : g
                        c += 1
                    }
                }
            }
        }
        if let dv {
            Reductions.columnDot(dy, x, rows: rows, cols: cols, out: dv, accumulate: accumulate, pool: pool)
        }
    }

    @inline(__always)
    static func rowBroadcast<Op: BinaryMap>(_ x: UnsafePointer<Float>, _ v: UnsafePointer<Float>, _ out: UnsafeMutablePointer<Float>,
                                            rows: Int, cols: Int, pool: ThreadPool, _ op: Op) {
        pool.forRanges(rows, grain: max(1, elementwiseGrain / max(1, cols))) { rr in
            for r in rr {
                let o = r * cols
                var c = 0
                while c + 16 <= cols { store16(op.apply(load16(x + o + c), load16(v + c)), out + o + c); c += 16 }
                if c < cols {
                    let m = cols - c
                    storePartial(op.apply(loadPartial(x + o + c, m), loadPartial(v + c, m)), out + o + c, m)
                }
            }
        }
    }
}
