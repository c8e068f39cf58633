import COpenBLAS

// Matrix products through OpenBLAS (row-major), and the linear layer built on them.
//
// OpenBLAS keeps its own thread pool; `Gemm.setBLASThreads` sets its size (the Engine
// calls it once at start-up, normally with the ThreadPool's thread count). For a fixed
// thread count OpenBLAS's sgemm partitions by size only, so repeated calls are bit-identical.

public enum Gemm {
    /// Sets OpenBLAS's own thread count (process-wide, not per call).
    public static func setBLASThreads(_ n: Int) {
        openblas_set_num_threads(Int32(max(1, n)))
    }

    /// OpenBLAS's current thread count.
    public static var blasThreads: Int { Int(openblas_get_num_threads()) }

    /// C (m × n, leading dimension ldc) = alpha · op(A) · op(B) + beta · C, row-major.
    /// op(A) is m × k: A is m × k (lda ≥ k) or, transposed, k × m (lda ≥ m).
    /// op(B) is k × n: B is k × n (ldb ≥ n) or, transposed, n × k (ldb ≥ k).
    /// beta = 0 overwrites C (C may hold garbage, even NaN); beta = 1 accumulates.
    public static func sgemm(transA: Bool, transB: Bool, m: Int, n: Int, k: Int,
                             alpha: Float = 1,
                             a: UnsafePointer<Float>, lda: Int,
                             b: UnsafePointer<Float>, ldb: Int,
                             beta: Float = 0,
                             c: UnsafeMutablePointer<Float>, ldc: Int) {
        if m <= 0 || n <= 0 { return }
        if k <= 0 {
            // Empty product: C = beta·C.
            for i in 0..<m {
                for j in 0..<n { c[i * ldc + j] = beta == 0 ? 0 : beta * c[i * ldc + j] }
            }
            return
        }
        cblas_sgemm(CblasRowMajor, transA ? CblasTrans : CblasNoTrans, transB ? CblasTrans : CblasNoTrans,
                    Int32(m), Int32(n), Int32(k), alpha, a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
    }

    /// How a batched product is spread over threads.
    public enum BatchStrategy: Sendable {
        /// Pick from sizes: `.pool` for many small products, `.blas` otherwise.
        case automatic
        /// One OpenBLAS call per batch entry, in order; OpenBLAS threads inside each.
        case blas
        /// Batch entries split over the ThreadPool, OpenBLAS set to one thread for the duration
        /// (then restored). Do not run other OpenBLAS calls concurrently with this one.
        case pool
    }

    /// For each i in 0..<batch: C_i = alpha · op(A_i) · op(B_i) + beta · C_i, where
    /// X_i = X + i · strideX (element strides; a stride of 0 broadcasts one matrix).
    /// Shapes and leading dimensions as in `sgemm`. With `strideC` 0 and batch > 1 the
    /// products would race: not allowed.
    public static func batched(transA: Bool, transB: Bool, batch: Int, m: Int, n: Int, k: Int,
                               alpha: Float = 1,
                               a: UnsafePointer<Float>, lda: Int, strideA: Int,
                               b: UnsafePointer<Float>, ldb: Int, strideB: Int,
                               beta: Float = 0,
                               c: UnsafeMutablePointer<Float>, ldc: Int, strideC: Int,
                               strategy: BatchStrategy = .automatic, pool: ThreadPool) {
        if batch <= 0 { return }
        var usePool: Bool
        switch strategy {
        case .blas: usePool = false
        case .pool: usePool = true
        case .automatic:
            // Small products are dominated by OpenBLAS's per-call cost either way; the pool only
            // helps a little around 10⁶ flops per product and loses badly on large ones
            // (timings: docs/performance.md, "Batched GEMM").
            usePool = batch >= 2 * pool.threads && m * n * k <= batchedPoolThreshold && m * n * k >= 1 << 19
        }
        if pool.threads == 1 || batch == 1 { usePool = false }
        if !usePool {
            for i in 0..<batch {
                sgemm(transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha,
                      a: a + i * strideA, lda: lda, b: b + i * strideB, ldb: ldb, beta: beta,
                      c: c + i * strideC, ldc: ldc)
            }
            return
        }
        let saved = openblas_get_num_threads()
        openblas_set_num_threads(1)
        pool.forEach(batch) { i in
            sgemm(transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha,
                  a: a + i * strideA, lda: lda, b: b + i * strideB, ldb: ldb, beta: beta,
                  c: c + i * strideC, ldc: ldc)
        }
        openblas_set_num_threads(saved)
    }

    /// m·n·k up to which `.automatic` may batch over the pool (from 2¹⁹).
    public static let batchedPoolThreshold = 1 << 21

    // MARK: - Linear layer (PyTorch layout)

    /// y (rows × out, leading dimension ldy, default out) = x · Wᵀ + bias, or y += x·Wᵀ + bias
    /// when `accumulate`.
    /// x: rows × in (leading dimension ldx, default in); weight: out × in (PyTorch nn.Linear);
    /// bias: out, or nil.
    public static func linearForward(x: UnsafePointer<Float>, weight: UnsafePointer<Float>, bias: UnsafePointer<Float>?,
                                     y: UnsafeMutablePointer<Float>, rows: Int, inFeatures: Int, outFeatures: Int,
                                     ldx: Int? = nil, ldy: Int? = nil, accumulate: Bool = false, pool: ThreadPool) {
        let ldx = ldx ?? inFeatures, ldy = ldy ?? outFeatures
        if rows <= 0 || outFeatures <= 0 { return }
        var beta: Float = accumulate ? 1 : 0
        if let bias {
            pool.forRanges(rows, grain: max(1, elementwiseGrain / max(1, outFeatures))) { rr in
                for r in rr {
                    let o = y + r * ldy
                    if accumulate {
                        for j in 0..<outFeatures { o[j] += bias[j] }
                    } else {
                        for j in 0..<outFeatures { o[j] = bias[j] }
                    }
                }
            }
            beta = 1
        }
        sgemm(transA: false, transB: true, m: rows, n: outFeatures, k: inFeatures,
              a: x, lda: ldx, b: weight, ldb: inFeatures, beta: beta, c: y, ldc: ldy)
    }

    /// Backward of `linearForward`:
    ///   dx (rows × in, ld ldx)   (+)= dy · W
    ///   dW (out × in)            (+)= dyᵀ · x
    ///   db (out)                 (+)= Σ_rows dy   (deterministic column sums)
    /// dy: rows × out (ld ldy). Any gradient may be nil. `accumulate` (default true, the tape's
    /// semantics) adds into the gradients; false overwrites them.
    public static func linearBackward(dy: UnsafePointer<Float>, x: UnsafePointer<Float>, weight: UnsafePointer<Float>,
                                      dx: UnsafeMutablePointer<Float>?, dWeight: UnsafeMutablePointer<Float>?,
                                      dBias: UnsafeMutablePointer<Float>?,
                                      rows: Int, inFeatures: Int, outFeatures: Int,
                                      ldx: Int? = nil, ldy: Int? = nil, ldDx: Int? = nil, accumulate: Bool = true, pool: ThreadPool) {
        let ldx = ldx ?? inFeatures, ldy = ldy ?? outFeatures
        let beta: Float = accumulate ? 1 : 0
        if let dx {
            // dx has its own row stride: x may be a column slice while dx is dense.
            sgemm(transA: false, transB: false, m: rows, n: inFeatures, k: outFeatures,
                  a: dy, lda: ldy, b: weight, ldb: inFeatures, beta: beta, c: dx, ldc: ldDx ?? ldx)
        }
        if let dWeight {
            sgemm(transA: true, transB: false, m: outFeatures, n: inFeatures, k: rows,
                  a: dy, lda: ldy, b: x, ldb: ldx, beta: beta, c: dWeight, ldc: inFeatures)
        }
        if let dBias {
            Reductions.columnSums(dy, rows: rows, cols: outFeatures, ldx: ldy, out: dBias,
                                  accumulate: accumulate, pool: pool)
        }
    }
}
