import Engine
import Foundation
import Kernels

/// The CUDA backend: device memory from a caching allocator, kernels from the embedded CUDA C
/// sources (compiled by NVRTC for the device on first use, cached on disk), GEMMs through
/// cuBLAS (or the own SGEMM when cuBLAS is missing), everything in order on one stream.
/// Host↔device copies happen only in `upload` / `download` (batch boundaries, checkpoints,
/// scalar results such as the loss).
public final class CUDABackend: Backend, @unchecked Sendable {
    public let device: Device
    public let info: CUDADeviceInfo
    public let driverVersion: Int
    /// "cuBLAS (libcublas.so.12)" or why the own SGEMM kernel is used.
    public let gemmProvider: String
    public let allocator: CUDACachingAllocator

    let cu: CUDADriver
    let context: OpaquePointer?
    let stream: OpaquePointer?
    let kernels: KernelLoader
    let blas: CuBLAS?
    /// cuFFT for the S4D convolutions, opened on first use (CUDABackend+S4D.swift).
    var cuFFTInstance: CuFFT?
    /// The GEMMs' precision (`setMatmulPrecision`); fp32 unless changed.
    public internal(set) var matmulPrecision = MatmulPrecision.fp32
    /// The knobs: kernel variants and shapes, debugging switches (see `CUDATuning`, and
    /// `CUDATuning.variables` for the environment variables `CUDATuning.fromEnvironment` reads).
    /// The checks and benchmarks change it to cover or compare the variants.
    public var tuning: CUDATuning
    /// True while a CUDA graph is captured: launches are recorded, not run, so nothing may
    /// wait for the stream or copy from host memory (see `capture`).
    var capturingGraph = false
    /// `StepGraphBackend`'s switches, kept in `tuning`.
    public var stepGraphsEnabled: Bool { tuning.stepGraphsEnabled }
    public var fusedBlockSteps: Bool {
        get { tuning.fusedBlockSteps }
        set { tuning.fusedBlockSteps = newValue }
    }
    public var fusedStepMinimumBatch: Int {
        get { tuning.fusedStepMinimumBatch }
        set { tuning.fusedStepMinimumBatch = newValue }
    }
    /// Kept within 1…16 (`CUDATuning.fusedStackLayers`).
    public var fusedStackLayers: Int {
        get { tuning.fusedStackLayers }
        set { tuning.fusedStackLayers = newValue }
    }
    public var fusedStepSpecialised: Bool {
        get { tuning.fusedStepSpecialised }
        set { tuning.fusedStepSpecialised = newValue }
    }
    /// `blocksPerMultiprocessor`'s answers.
    var occupancy: [String: Int] = [:]

    /// Opens GPU `ordinal`: its primary context, one stream, cuBLAS when it loads; `tuning`
    /// sets the knobs (by default from the environment).
    public init(ordinal: Int = 0, tuning: CUDATuning = .fromEnvironment(), cache: KernelCache = .fromEnvironment()) throws {
        cu = try CUDADevices.loadDriver()
        var count: Int32 = 0
        try cu.check(cu.cuDeviceGetCount(&count), "cuDeviceGetCount")
        guard ordinal >= 0 && ordinal < Int(count) else {
            throw CUDAError("cuda:\(ordinal): no such device (\(count) CUDA device\(count == 1 ? "" : "s") present)")
        }
        info = try CUDADevices.info(cu, ordinal: ordinal)
        driverVersion = try cu.driverVersion()
        var dev: Int32 = 0
        try cu.check(cu.cuDeviceGet(&dev, Int32(ordinal)), "cuDeviceGet(\(ordinal))")
        var ctx: OpaquePointer?
        try cu.check(cu.cuDevicePrimaryCtxRetain(&ctx, dev), "cuDevicePrimaryCtxRetain(cuda:\(ordinal))")
        context = ctx
        try cu.check(cu.cuCtxSetCurrent(ctx), "cuCtxSetCurrent(cuda:\(ordinal))")
        var s: OpaquePointer?
        try cu.check(cu.cuStreamCreate(&s, 1 /* CU_STREAM_NON_BLOCKING */), "cuStreamCreate(cuda:\(ordinal))")
        stream = s
        device = .cuda(ordinal)
        self.tuning = tuning
        allocator = CUDACachingAllocator(driver: cu, context: ctx, stream: s, ordinal: ordinal)
        kernels = KernelLoader(driver: cu, architecture: info.architecture, driverVersion: driverVersion, cache: cache)
        do {
            let b = try CuBLAS(stream: s, driverVersion: driverVersion)
            // A workspace kept for the life of the process (best effort: else cuBLAS uses its own).
            var workspace: UInt64 = 0
            if cu.cuMemAlloc(&workspace, CuBLAS.workspaceBytes) == 0 && !b.setWorkspace(workspace, bytes: CuBLAS.workspaceBytes) {
                _ = cu.cuMemFree(workspace)
            }
            blas = b
            gemmProvider = "cuBLAS (\(b.library.name))"
        } catch let e as CUDAError {
            blas = nil
            gemmProvider = "own SGEMM kernel (\(e.message))"
        }
    }

    /// Compiles or loads every kernel family now, so that a first call does not pay for it.
    public func loadKernels() throws {
        try current()
        try kernels.loadAll()
    }

    /// How each kernel family was obtained (cache, prebuilt, NVRTC).
    public var kernelProvenance: [KernelFamily: String] { kernels.provenance }

    /// Waits for every queued kernel (benchmarks time with it).
    public func synchronize() {
        refuseDuringCapture("synchronize()")
        cu.must(cu.cuCtxSetCurrent(context), "cuCtxSetCurrent")
        cu.must(cu.cuStreamSynchronize(stream), "cuStreamSynchronize(\(device))")
    }

    // MARK: Plumbing

    func current() throws { try cu.check(cu.cuCtxSetCurrent(context), "cuCtxSetCurrent(\(device))") }

    /// Device address of a tensor's first element.
    @inline(__always) func ptr(_ t: Tensor) -> UInt64 {
        precondition(t.device == device, "a \(t.device) tensor passed to the \(device) backend")
        return UInt64(UInt(bitPattern: t.storage.address)) + UInt64(t.offset * t.dtype.size)
    }
    @inline(__always) func ptr(_ t: Tensor?) -> UInt64 { t.map { ptr($0) } ?? 0 }

    typealias Arg = KernelArguments.Value

    func launch(_ family: KernelFamily, _ name: String, grid: (Int, Int, Int), block: (Int, Int, Int), shared: Int = 0, _ args: [Arg]) {
        if grid.0 == 0 || grid.1 == 0 || grid.2 == 0 { return }
        let f: OpaquePointer?
        do {
            try current()
            f = try kernels.function(family, name)
        } catch {
            fatalError("CUDA backend: \(error)")
        }
        if shared > 48 << 10 {
            // Above 48 KiB a kernel must opt in (CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES).
            cu.must(cu.cuFuncSetAttribute(f, 8, Int32(shared)), "cuFuncSetAttribute(\(name), \(shared) bytes of shared memory)")
        }
        let rc = KernelArguments(args).withParameters { params in
            cu.cuLaunchKernel(f, UInt32(grid.0), UInt32(grid.1), UInt32(grid.2), UInt32(block.0), UInt32(block.1), UInt32(block.2),
                              UInt32(shared), stream, params, nil)
        }
        cu.must(rc, "cuLaunchKernel(\(family.fileName): \(name), grid \(grid), block \(block))")
        if tuning.synchronizeEveryLaunch && !capturingGraph {
            cu.must(cu.cuStreamSynchronize(stream), "\(family.fileName): \(name) (grid \(grid), block \(block)) failed while running")
        }
    }

    /// Thread blocks of a kernel resident on one SM at once, for `threads` threads and `shared`
    /// bytes of dynamic shared memory (the driver's occupancy calculator: registers, shared
    /// memory and threads). Remembered per (kernel, threads, bytes).
    func blocksPerMultiprocessor(_ family: KernelFamily, _ name: String, threads: Int, shared: Int) -> Int {
        let key = "\(name)/\(threads)/\(shared)"
        if let n = occupancy[key] { return n }
        let f: OpaquePointer?
        do {
            try current()
            f = try kernels.function(family, name)
        } catch {
            fatalError("CUDA backend: \(error)")
        }
        // The calculator counts only the dynamic shared memory the kernel has opted in to.
        if shared > 48 << 10 { cu.must(cu.cuFuncSetAttribute(f, 8, Int32(shared)), "cuFuncSetAttribute(\(name), \(shared) bytes of shared memory)") }
        var n: Int32 = 0
        cu.must(cu.cuOccupancyMaxActiveBlocksPerMultiprocessor(&n, f, Int32(threads), shared), "cuOccupancyMaxActiveBlocksPerMultiprocessor(\(name))")
        occupancy[key] = Int(n)
        return Int(n)
    }

    /// A grid-stride launch of 256-thread blocks over n elements.
    func launch1D(_ family: KernelFamily, _ name: String, count n: Int, _ args: [Arg]) {
        if n <= 0 { return }
        let blocks = min((n + 255) / 256, max(1, info.multiprocessors) * 16)
        launch(family, name, grid: (blocks, 1, 1), block: (256, 1, 1), args)
    }

    /// Scratch device memory, returned to the cache when the tensor goes (stream-ordered).
    func scratch(_ count: Int, dtype: DType = .float32) -> Tensor { empty([max(1, count)], dtype: dtype) }

    // MARK: Memory

    public func empty(_ shape: [Int], dtype: DType) -> Tensor {
        let bytes = max(1, shape.reduce(1, *)) * dtype.size
        let storage = Storage(address: allocator.allocate(byteCount: bytes), byteCount: bytes, backend: self, allocator: allocator)
        return Tensor(storage: storage, shape: shape, dtype: dtype)
    }

    public func upload(_ bytes: UnsafeRawBufferPointer, into tensor: Tensor) {
        precondition(tensor.isContiguous && bytes.count == tensor.count * tensor.dtype.size, "upload of \(bytes.count) bytes into \(tensor.shape)")
        refuseDuringCapture("upload of \(bytes.count) bytes into \(tensor.shape)")
        if bytes.isEmpty { return }
        cu.must(cu.cuCtxSetCurrent(context), "cuCtxSetCurrent")
        cu.must(cu.cuMemcpyHtoDAsync(ptr(tensor), bytes.baseAddress!, bytes.count, stream), "cuMemcpyHtoD(\(bytes.count) bytes)")
        // The host buffer may go away when this returns.
        cu.must(cu.cuStreamSynchronize(stream), "cuStreamSynchronize after upload")
    }

    public func download(_ tensor: Tensor, into bytes: UnsafeMutableRawBufferPointer) {
        precondition(tensor.isContiguous && bytes.count == tensor.count * tensor.dtype.size, "download of \(tensor.shape) into \(bytes.count) bytes")
        refuseDuringCapture("download of \(tensor.shape) (\(bytes.count) bytes)")
        if bytes.isEmpty { return }
        cu.must(cu.cuCtxSetCurrent(context), "cuCtxSetCurrent")
        cu.must(cu.cuMemcpyDtoHAsync(bytes.baseAddress!, ptr(tensor), bytes.count, stream), "cuMemcpyDtoH(\(bytes.count) bytes)")
        cu.must(cu.cuStreamSynchronize(stream), "cuStreamSynchronize after download")
    }

    public func fill(_ tensor: Tensor, value: Float) {
        if tensor.count == 0 { return }
        if tensor.isContiguous {
            cu.must(cu.cuCtxSetCurrent(context), "cuCtxSetCurrent")
            cu.must(cu.cuMemsetD32Async(ptr(tensor), value.bitPattern, tensor.count, stream), "cuMemsetD32(\(tensor.count))")
        } else {
            launch1D(.layout, "wm_fill2d", count: tensor.count,
                     [.pointer(ptr(tensor)), .int64(tensor.rows), .int64(tensor.columns), .int64(tensor.rowStride), .float(value)])
        }
    }

    public func copy2D(from src: Tensor, to dst: Tensor, accumulate: Bool) {
        precondition(src.count == dst.count && src.columns == dst.columns, "copy2D of \(src.shape) into \(dst.shape)")
        if !accumulate && src.isContiguous && dst.isContiguous {
            if src.count == 0 { return }
            cu.must(cu.cuCtxSetCurrent(context), "cuCtxSetCurrent")
            cu.must(cu.cuMemcpyDtoDAsync(ptr(dst), ptr(src), src.count * src.dtype.size, stream), "cuMemcpyDtoD")
            return
        }
        launch1D(.layout, "wm_copy2d", count: src.count,
                 [.pointer(ptr(src)), .int64(src.rowStride), .pointer(ptr(dst)), .int64(dst.rowStride),
                  .int64(src.rows), .int64(src.columns), .int32(accumulate ? 1 : 0)])
    }

    public var memoryInUse: (live: Int, peak: Int) { (allocator.liveBytes, allocator.peakLiveBytes) }
    public func resetPeakMemory() { allocator.resetPeak() }

    // MARK: Matrix products

    /// Row-major C[b] = α·op(A[b])·op(B[b]) + β·C[b] (leading dimensions are row strides).
    func gemm(transA: Bool, transB: Bool, m: Int, n: Int, k: Int, alpha: Float, a: UInt64, lda: Int, strideA: Int,
              b: UInt64, ldb: Int, strideB: Int, beta: Float, c: UInt64, ldc: Int, strideC: Int, batch: Int = 1) {
        if m == 0 || n == 0 || batch == 0 { return }
        if let blas {
            cu.must(cu.cuCtxSetCurrent(context), "cuCtxSetCurrent")
            blas.gemm(transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha, a: a, lda: lda, strideA: strideA,
                      b: b, ldb: ldb, strideB: strideB, beta: beta, c: c, ldc: ldc, strideC: strideC, batch: batch)
            if tuning.synchronizeEveryLaunch && !capturingGraph {
                cu.must(cu.cuStreamSynchronize(stream), "cuBLAS sgemm (m \(m), n \(n), k \(k), batch \(batch)) failed while running")
            }
        } else {
            launch(.gemm, "wm_sgemm", grid: ((n + 63) / 64, (m + 63) / 64, batch), block: (256, 1, 1),
                   [.int32(transA ? 1 : 0), .int32(transB ? 1 : 0), .int64(m), .int64(n), .int64(k), .float(alpha),
                    .pointer(a), .int64(lda), .int64(strideA), .pointer(b), .int64(ldb), .int64(strideB),
                    .float(beta), .pointer(c), .int64(ldc), .int64(strideC)])
        }
    }

    public func linear(x: Tensor, weight: Tensor, bias: Tensor?, y: Tensor) {
        precondition(x.columns == weight.shape[1] && y.columns == weight.shape[0] && y.rows == x.rows,
                     "linear: x \(x.shape) · W\(weight.shape)ᵀ → y \(y.shape)")
        if let bias {
            launch1D(.elementwise, "wm_broadcast_rows", count: y.count,
                     [.pointer(ptr(bias)), .pointer(ptr(y)), .int64(y.rows), .int64(y.columns), .int64(y.rowStride)])
        }
        gemm(transA: false, transB: true, m: x.rows, n: y.columns, k: x.columns, alpha: 1, a: ptr(x), lda: x.rowStride, strideA: 0,
             b: ptr(weight), ldb: weight.shape[1], strideB: 0, beta: bias == nil ? 0 : 1, c: ptr(y), ldc: y.rowStride, strideC: 0)
    }

    public func linearBackward(dy: Tensor, x: Tensor, weight: Tensor, dx: Tensor?, dWeight: Tensor?, dBias: Tensor?) {
        precondition(dy.isContiguous)
        let (rows, inF, outF) = (x.rows, x.columns, dy.columns)
        if let dx {
            gemm(transA: false, transB: false, m: rows, n: inF, k: outF, alpha: 1, a: ptr(dy), lda: dy.rowStride, strideA: 0,
                 b: ptr(weight), ldb: inF, strideB: 0, beta: 1, c: ptr(dx), ldc: dx.rowStride, strideC: 0)
        }
        if let dWeight {
            gemm(transA: true, transB: false, m: outF, n: inF, k: rows, alpha: 1, a: ptr(dy), lda: dy.rowStride, strideA: 0,
                 b: ptr(x), ldb: x.rowStride, strideB: 0, beta: 1, c: ptr(dWeight), ldc: inF, strideC: 0)
        }
        if let dBias { columnReduce(dy, nil, out: dBias, accumulate: true) }
    }

    public func matmul(_ a: Tensor, transA: Bool, _ b: Tensor, transB: Bool, c: Tensor, alpha: Float, beta: Float) {
        let g = MatmulShape(a, transA: transA, b, transB: transB, c: c)
        gemm(transA: transA, transB: transB, m: g.m, n: g.n, k: g.k, alpha: alpha, a: ptr(a), lda: g.lda, strideA: g.strideA,
             b: ptr(b), ldb: g.ldb, strideB: g.strideB, beta: beta, c: ptr(c), ldc: g.ldc, strideC: g.strideC, batch: g.batch)
    }

    // MARK: Elementwise

    static func code(_ kind: ActivationKind) -> Int32 {
        switch kind {
        case .identity: return 0
        case .silu: return 1
        case .softplus: return 2
        case .exp: return 3
        case .sigmoid: return 4
        case .tanh: return 5
        case .gelu: return 6
        case .relu: return 7
        }
    }

    public func activation(_ kind: ActivationKind, x: Tensor, y: Tensor) {
        precondition(x.isContiguous && y.isContiguous && x.count == y.count)
        launch1D(.elementwise, "wm_activation_forward", count: x.count, [.int32(Self.code(kind)), .pointer(ptr(x)), .pointer(ptr(y)), .int64(x.count)])
    }

    public func activationBackward(_ kind: ActivationKind, saved: Tensor, dy: Tensor, dx: Tensor, accumulate: Bool) {
        launch1D(.elementwise, "wm_activation_backward", count: dx.count,
                 [.int32(Self.code(kind)), .pointer(ptr(saved)), .pointer(ptr(dy)), .pointer(ptr(dx)), .int64(dx.count), .int32(accumulate ? 1 : 0)])
    }

    public func add(_ a: Tensor, _ b: Tensor, out: Tensor) {
        precondition(a.count == b.count && a.count == out.count)
        launch1D(.elementwise, "wm_add", count: out.count, [.pointer(ptr(a)), .pointer(ptr(b)), .pointer(ptr(out)), .int64(out.count)])
    }

    public func mul(_ a: Tensor, _ b: Tensor, out: Tensor, accumulate: Bool) {
        precondition(a.count == b.count && a.count == out.count)
        launch1D(.elementwise, "wm_mul", count: out.count,
                 [.pointer(ptr(a)), .pointer(ptr(b)), .pointer(ptr(out)), .int64(out.count), .int32(accumulate ? 1 : 0)])
    }

    public func scale(_ x: Tensor, by s: Float, out: Tensor, accumulate: Bool) {
        precondition(x.count == out.count)
        launch1D(.elementwise, "wm_scale", count: x.count,
                 [.pointer(ptr(x)), .float(s), .pointer(ptr(out)), .int64(x.count), .int32(accumulate ? 1 : 0)])
    }

    public func mulRowVector(_ x: Tensor, _ v: Tensor, out: Tensor) {
        launch1D(.elementwise, "wm_mul_row_vector", count: x.count,
                 [.pointer(ptr(x)), .pointer(ptr(v)), .pointer(ptr(out)), .int64(x.rows), .int64(x.columns)])
    }

    public func mulRowVectorBackward(dy: Tensor, x: Tensor, v: Tensor, dx: Tensor?, dv: Tensor?) {
        if let dx {
            launch1D(.elementwise, "wm_mul_row_vector_dx", count: x.count,
                     [.pointer(ptr(dy)), .pointer(ptr(v)), .pointer(ptr(dx)), .int64(x.rows), .int64(x.columns)])
        }
        if let dv { columnReduce(dy, x, out: dv, accumulate: true) }
    }

    /// out[c] (+)= Σ_r a[r, c] (· b[r, c]), deterministic (per-chunk partials summed in order).
    func columnReduce(_ a: Tensor, _ b: Tensor?, out: Tensor, accumulate: Bool) {
        let (rows, cols) = (a.rows, a.columns)
        if cols == 0 { return }
        let perChunk = max(64, (rows + 255) / 256)
        let chunks = max(1, (rows + perChunk - 1) / perChunk)
        let partials = scratch(chunks * cols)
        launch(.reduce, "wm_column_partials", grid: ((cols + 31) / 32, chunks, 1), block: (32, 8, 1),
               [.pointer(ptr(a)), .int64(a.rowStride), .pointer(ptr(b)), .int64(b?.rowStride ?? 0), .int64(rows), .int64(cols),
                .int64(perChunk), .pointer(ptr(partials))])
        columnFinish(partials, chunks: chunks, cols: cols, out: out, accumulate: accumulate)
    }

    func columnFinish(_ partials: Tensor, chunks: Int, cols: Int, out: Tensor, accumulate: Bool) {
        launch(.reduce, "wm_column_finish", grid: ((cols + 255) / 256, 1, 1), block: (256, 1, 1),
               [.pointer(ptr(partials)), .int64(chunks), .int64(cols), .pointer(ptr(out)), .int32(accumulate ? 1 : 0)])
    }

    public func columnSums(_ x: Tensor, out: Tensor, accumulate: Bool) {
        columnReduce(x, nil, out: out, accumulate: accumulate)
    }

    /// Σ x or Σ x² over a contiguous tensor: 256 fixed block partials in double, added in order here.
    func reduce(_ x: Tensor, squares: Bool) -> Double {
        precondition(x.isContiguous)
        if x.count == 0 { return 0 }
        let blocks = 256
        let partials = scratch(2 * blocks)   // doubles
        launch(.reduce, "wm_sum_partials", grid: (blocks, 1, 1), block: (256, 1, 1),
               [.pointer(ptr(x)), .int64(x.count), .int32(squares ? 1 : 0), .pointer(ptr(partials))])
        var host = [Double](repeating: 0, count: blocks)
        host.withUnsafeMutableBytes { download(partials, into: $0) }
        return host.reduce(0, +)
    }

    public func sumOfSquares(_ x: Tensor) -> Double { reduce(x, squares: true) }
    public func sum(_ x: Tensor) -> Double { reduce(x, squares: false) }

    // MARK: Normalisation

    static let normEps: Float = 1e-5

    public func layerNorm(x: Tensor, weight: Tensor?, bias: Tensor?, y: Tensor, mean: Tensor, rstd: Tensor) {
        precondition(x.isContiguous && y.isContiguous)
        launch(.norms, "wm_layernorm_forward", grid: ((x.rows + 3) / 4, 1, 1), block: (128, 1, 1),
               [.pointer(ptr(x)), .pointer(ptr(weight)), .pointer(ptr(bias)), .pointer(ptr(y)), .pointer(ptr(mean)), .pointer(ptr(rstd)),
                .int64(x.rows), .int32(Int32(x.columns)), .float(Self.normEps)])
    }

    public func layerNormBackward(dy: Tensor, x: Tensor, weight: Tensor?, mean: Tensor, rstd: Tensor, dx: Tensor?, dWeight: Tensor?, dBias: Tensor?) {
        if let dx {
            launch(.norms, "wm_layernorm_backward_dx", grid: ((x.rows + 3) / 4, 1, 1), block: (128, 1, 1),
                   [.pointer(ptr(dy)), .pointer(ptr(x)), .pointer(ptr(weight)), .pointer(ptr(mean)), .pointer(ptr(rstd)), .pointer(ptr(dx)),
                    .int64(x.rows), .int32(Int32(x.columns))])
        }
        normParameterGradients(dy: dy, x: x, mean: mean, rstd: rstd, dWeight: dWeight, dBias: dBias)
    }

    private func normParameterGradients(dy: Tensor, x: Tensor, mean: Tensor?, rstd: Tensor, dWeight: Tensor?, dBias: Tensor?) {
        if dWeight == nil && dBias == nil { return }
        let (rows, cols) = (x.rows, x.columns)
        let perChunk = max(64, (rows + 255) / 256)
        let chunks = max(1, (rows + perChunk - 1) / perChunk)
        let pw = dWeight.map { _ in scratch(chunks * cols) }, pb = dBias.map { _ in scratch(chunks * cols) }
        launch(.norms, "wm_norm_param_partials", grid: ((cols + 31) / 32, chunks, 1), block: (32, 8, 1),
               [.pointer(ptr(dy)), .pointer(ptr(x)), .pointer(ptr(mean)), .pointer(ptr(rstd)), .int64(rows), .int64(cols),
                .int64(perChunk), .pointer(ptr(pw)), .pointer(ptr(pb))])
        if let dWeight, let pw { columnFinish(pw, chunks: chunks, cols: cols, out: dWeight, accumulate: true) }
        if let dBias, let pb { columnFinish(pb, chunks: chunks, cols: cols, out: dBias, accumulate: true) }
    }

    public func rmsNorm(x: Tensor, weight: Tensor?, y: Tensor, rstd: Tensor) {
        launch(.norms, "wm_rmsnorm_forward", grid: ((x.rows + 3) / 4, 1, 1), block: (128, 1, 1),
               [.pointer(ptr(x)), .pointer(ptr(weight)), .pointer(ptr(y)), .pointer(ptr(rstd)), .int64(x.rows),
                .int32(Int32(x.columns)), .float(Self.normEps)])
    }

    public func rmsNormBackward(dy: Tensor, x: Tensor, weight: Tensor?, rstd: Tensor, dx: Tensor?, dWeight: Tensor?) {
        if let dx {
            launch(.norms, "wm_rmsnorm_backward_dx", grid: ((x.rows + 3) / 4, 1, 1), block: (128, 1, 1),
                   [.pointer(ptr(dy)), .pointer(ptr(x)), .pointer(ptr(weight)), .pointer(ptr(rstd)), .pointer(ptr(dx)),
                    .int64(x.rows), .int32(Int32(x.columns))])
        }
        normParameterGradients(dy: dy, x: x, mean: nil, rstd: rstd, dWeight: dWeight, dBias: nil)
    }

    // MARK: Loss

    public func crossEntropy(logits: Tensor, targets: Tensor, logSumExp: Tensor) -> Double {
        let rows = logits.rows
        if rows == 0 { return 0 }
        let losses = scratch(rows)
        launch(.loss, "wm_cross_entropy_forward", grid: ((rows + 3) / 4, 1, 1), block: (128, 1, 1),
               [.pointer(ptr(logits)), .int64(logits.rowStride), .pointer(ptr(targets)), .pointer(ptr(losses)), .pointer(ptr(logSumExp)),
                .int64(rows), .int32(Int32(logits.columns))])
        return reduce(losses.slice(rows: 0..<rows), squares: false) / Double(rows)
    }

    public func crossEntropyBackward(logits: Tensor, targets: Tensor, logSumExp: Tensor, scale: Float, dLogits: Tensor, accumulate: Bool) {
        launch1D(.loss, "wm_cross_entropy_backward", count: logits.rows * logits.columns,
                 [.pointer(ptr(logits)), .int64(logits.rowStride), .pointer(ptr(targets)), .pointer(ptr(logSumExp)), .float(scale),
                  .pointer(ptr(dLogits)), .int64(logits.rows), .int32(Int32(logits.columns)), .int32(accumulate ? 1 : 0)])
    }

    public func softmax(logits: Tensor, probs: Tensor, temperature: Float) {
        precondition(logits.isContiguous)
        launch(.loss, "wm_softmax", grid: ((logits.rows + 3) / 4, 1, 1), block: (128, 1, 1),
               [.pointer(ptr(logits)), .pointer(ptr(probs)), .int64(logits.rows), .int32(Int32(logits.columns)), .float(temperature)])
    }

    // MARK: Lookup

    public func embedding(table: Tensor, indices: Tensor, out: Tensor) {
        launch1D(.elementwise, "wm_embedding_forward", count: indices.count * table.columns,
                 [.pointer(ptr(table)), .pointer(ptr(indices)), .pointer(ptr(out)), .int64(indices.count), .int64(table.columns)])
    }

    public func embeddingBackward(dOut: Tensor, indices: Tensor, dTable: Tensor) {
        launch1D(.elementwise, "wm_embedding_backward", count: indices.count * dTable.columns,
                 [.pointer(ptr(dOut)), .pointer(ptr(indices)), .pointer(ptr(dTable)), .int64(indices.count), .int64(dTable.columns)])
    }

    // MARK: Convolution

    public func causalConv1d(x: Tensor, weight: Tensor, bias: Tensor?, y: Tensor, batch: Int, silu: Bool) {
        let (channels, width) = (weight.shape[0], weight.shape[weight.rank - 1])
        let length = x.rows / max(1, batch)
        launch1D(.conv, "wm_conv_forward", count: batch * length * channels,
                 [.pointer(ptr(x)), .int64(x.rowStride), .pointer(ptr(weight)), .pointer(ptr(bias)), .pointer(ptr(y)), .int64(y.rowStride),
                  .int64(batch), .int64(length), .int64(channels), .int32(Int32(width)), .int32(silu ? 1 : 0)])
    }

    public func causalConv1dBackward(dy: Tensor, x: Tensor, weight: Tensor, bias: Tensor?, dx: Tensor?, dWeight: Tensor?, dBias: Tensor?,
                                     batch: Int, silu: Bool) {
        let (channels, width) = (weight.shape[0], weight.shape[weight.rank - 1])
        precondition(width <= 16, "causal conv on CUDA: kernel width \(width) > 16 is not supported")
        let length = x.rows / max(1, batch)
        let n = batch * length * channels
        let dz = scratch(n)
        launch1D(.conv, "wm_conv_backward_dz", count: n,
                 [.pointer(ptr(dy)), .int64(dy.rowStride), .pointer(ptr(x)), .int64(x.rowStride), .pointer(ptr(weight)), .pointer(ptr(bias)),
                  .pointer(ptr(dz)), .int64(batch), .int64(length), .int64(channels), .int32(Int32(width)), .int32(silu ? 1 : 0)])
        if let dx {
            launch1D(.conv, "wm_conv_backward_dx", count: n,
                     [.pointer(ptr(dz)), .pointer(ptr(weight)), .pointer(ptr(dx)), .int64(dx.rowStride),
                      .int64(batch), .int64(length), .int64(channels), .int32(Int32(width))])
        }
        if dWeight != nil || dBias != nil {
            let rows = batch * length
            let perChunk = max(64, (rows + 255) / 256)
            let chunks = max(1, (rows + perChunk - 1) / perChunk)
            let partials = scratch(chunks * channels * (width + 1))
            launch(.conv, "wm_conv_param_partials", grid: ((channels + 31) / 32, chunks, 1), block: (32, 8, 1),
                   [.pointer(ptr(dz)), .pointer(ptr(x)), .int64(x.rowStride), .int64(batch), .int64(length), .int64(channels),
                    .int32(Int32(width)), .int64(perChunk), .pointer(ptr(partials))])
            launch(.conv, "wm_conv_param_finish", grid: ((channels * (width + 1) + 255) / 256, 1, 1), block: (256, 1, 1),
                   [.pointer(ptr(partials)), .int64(chunks), .int64(channels), .int32(Int32(width)), .pointer(ptr(dWeight)), .pointer(ptr(dBias))])
        }
    }

    public func causalConv1dStep(x: Tensor, state: Tensor, weight: Tensor, bias: Tensor?, y: Tensor, silu: Bool) {
        let (channels, width) = (weight.shape[0], weight.shape[weight.rank - 1])
        let batch = x.rows
        launch(.conv, "wm_conv_step", grid: ((batch * channels + 255) / 256, 1, 1), block: (256, 1, 1),
               [.pointer(ptr(x)), .int64(x.rowStride), .pointer(ptr(state)), .pointer(ptr(weight)), .pointer(ptr(bias)), .pointer(ptr(y)),
                .int64(y.rowStride), .int64(batch), .int64(channels), .int32(Int32(width)), .int32(silu ? 1 : 0)])
    }

    // MARK: Layout

    public func transpose(_ x: Tensor, batch: Int, rows: Int, cols: Int, out: Tensor, accumulate: Bool) {
        precondition(x.isContiguous && out.isContiguous && x.count == batch * rows * cols)
        launch(.layout, "wm_transpose", grid: ((cols + 31) / 32, (rows + 31) / 32, batch), block: (32, 8, 1),
               [.pointer(ptr(x)), .pointer(ptr(out)), .int64(rows), .int64(cols), .int32(accumulate ? 1 : 0)])
    }

    // MARK: Randomness

    public func fillNormal(_ t: Tensor, mean: Float, std: Float, seed: UInt64) {
        precondition(t.isContiguous)
        launch1D(.random, "wm_fill_normal", count: t.count, [.pointer(ptr(t)), .int64(t.count), .float(mean), .float(std), .uint64(seed)])
    }

    public func fillUniform(_ t: Tensor, low: Float, high: Float, seed: UInt64) {
        precondition(t.isContiguous)
        launch1D(.random, "wm_fill_uniform", count: t.count, [.pointer(ptr(t)), .int64(t.count), .float(low), .float(high), .uint64(seed)])
    }

    public func dropout(x: Tensor, y: Tensor, p: Float, seed: UInt64) {
        dropout(x: x, y: y, p: p, seed: seed, offset: 0)
    }

    public func dropoutBackward(dy: Tensor, dx: Tensor, p: Float, seed: UInt64, accumulate: Bool) {
        dropoutBackward(dy: dy, dx: dx, p: p, seed: seed, offset: 0, accumulate: accumulate)
    }

    /// Element i uses generator word `offset + i` (a data-parallel rank's first sample), as the CPU.
    public func dropout(x: Tensor, y: Tensor, p: Float, seed: UInt64, offset: UInt64) {
        precondition(x.isContiguous && y.isContiguous && x.count == y.count, "dropout: x \(x.shape) → y \(y.shape)")
        launch1D(.random, "wm_dropout", count: x.count,
                 [.pointer(ptr(x)), .pointer(ptr(y)), .int64(x.count), .float(p), .uint64(seed), .uint64(offset), .int32(0)])
    }

    public func dropoutBackward(dy: Tensor, dx: Tensor, p: Float, seed: UInt64, offset: UInt64, accumulate: Bool) {
        precondition(dy.isContiguous && dx.isContiguous && dy.count == dx.count, "dropoutBackward: dy \(dy.shape) → dx \(dx.shape)")
        launch1D(.random, "wm_dropout", count: dx.count,
                 [.pointer(ptr(dy)), .pointer(ptr(dx)), .int64(dx.count), .float(p), .uint64(seed), .uint64(offset),
                  .int32(accumulate ? 1 : 0)])
    }

    // MARK: GLU

    public func glu(x: Tensor, y: Tensor) {
        launch1D(.elementwise, "wm_glu_forward", count: y.count,
                 [.pointer(ptr(x)), .pointer(ptr(y)), .int64(x.rows), .int64(x.columns / 2)])
    }

    public func gluBackward(dy: Tensor, x: Tensor, dx: Tensor, accumulate: Bool) {
        launch1D(.elementwise, "wm_glu_backward", count: dy.count,
                 [.pointer(ptr(dy)), .pointer(ptr(x)), .pointer(ptr(dx)), .int64(x.rows), .int64(x.columns / 2), .int32(accumulate ? 1 : 0)])
    }

    // MARK: Optimiser

    public func adamW(parameters: Tensor, gradients: Tensor, m: Tensor, v: Tensor, step: Int, learningRate: Float,
                      beta1: Float, beta2: Float, eps: Float, weightDecay: Float, gradientScale: Float) {
        // Bias corrections in double on the host, as the CPU kernel and PyTorch do.
        let bc1 = 1 - pow(Double(beta1), Double(step))
        let bc2 = 1 - pow(Double(beta2), Double(step))
        launch1D(.optimizer, "wm_adamw", count: parameters.count,
                 [.pointer(ptr(parameters)), .pointer(ptr(gradients)), .pointer(ptr(m)), .pointer(ptr(v)), .int64(parameters.count),
                  .float(Float(Double(learningRate) / bc1)), .float(Float(1 / bc2.squareRoot())), .float(1 - learningRate * weightDecay),
                  .int32(weightDecay != 0 ? 1 : 0), .float(beta1), .float(beta2), .float(eps), .float(gradientScale)])
    }

    public func ema(_ average: Tensor, toward parameters: Tensor, decay: Float) {
        launch1D(.elementwise, "wm_ema", count: average.count,
                 [.pointer(ptr(average)), .pointer(ptr(parameters)), .int64(average.count), .float(decay)])
    }
}
