import Foundation
import Kernels

/// The CPU backend: host memory from a caching allocator, kernels from `Kernels` on a fixed
/// thread pool. OpenBLAS runs on as many threads as the pool.
public final class CPUBackend: Backend, @unchecked Sendable {
    public let device = Device.cpu
    public let pool: ThreadPool
    public let allocator: HostCachingAllocator

    public init(threads: Int? = nil, allocator: HostCachingAllocator = HostCachingAllocator()) {
        pool = ThreadPool(threads: threads)
        self.allocator = allocator
        Gemm.setBLASThreads(pool.threads)
    }

    // MARK: Memory

    public func empty(_ shape: [Int], dtype: DType) -> Tensor {
        let count = shape.reduce(1, *)
        let bytes = max(1, count) * dtype.size
        let storage = Storage(address: allocator.allocate(byteCount: bytes), byteCount: bytes, backend: self, allocator: allocator)
        return Tensor(storage: storage, shape: shape, dtype: dtype)
    }

    public func upload(_ bytes: UnsafeRawBufferPointer, into tensor: Tensor) {
        precondition(tensor.isContiguous && bytes.count == tensor.count * tensor.dtype.size)
        (tensor.storage.address + tensor.offset * tensor.dtype.size).copyMemory(from: bytes.baseAddress!, byteCount: bytes.count)
    }

    public func download(_ tensor: Tensor, into bytes: UnsafeMutableRawBufferPointer) {
        precondition(tensor.isContiguous && bytes.count == tensor.count * tensor.dtype.size)
        bytes.baseAddress!.copyMemory(from: tensor.storage.address + tensor.offset * tensor.dtype.size, byteCount: bytes.count)
    }

    public func fill(_ tensor: Tensor, value: Float) {
        if tensor.isContiguous {
            Elementwise.fill(tensor.pointer, value: value, count: tensor.count, pool: pool)
        } else {
            for r in 0..<tensor.rows { Elementwise.fill(tensor.pointer + r * tensor.rowStride, value: value, count: tensor.columns, pool: pool) }
        }
    }

    public func copy2D(from src: Tensor, to dst: Tensor, accumulate: Bool) {
        precondition(src.count == dst.count && src.columns == dst.columns, "copy2D of \(src.shape) into \(dst.shape)")
        Layout.copy2D(src: src.pointer, ldSrc: src.rowStride, dst: dst.pointer, ldDst: dst.rowStride,
                      rows: src.rows, cols: src.columns, accumulate: accumulate, pool: pool)
    }

    public var memoryInUse: (live: Int, peak: Int) { (allocator.liveBytes, allocator.peakLiveBytes) }
    public func resetPeakMemory() { allocator.resetPeak() }

    // MARK: Matrix products

    public func linear(x: Tensor, weight: Tensor, bias: Tensor?, y: Tensor) {
        precondition(x.columns == weight.shape[1] && y.columns == weight.shape[0] && y.rows == x.rows,
                     "linear: x \(x.shape) · W\(weight.shape)ᵀ → y \(y.shape)")
        Gemm.linearForward(x: x.pointer, weight: weight.pointer, bias: bias?.pointer, y: y.pointer, rows: x.rows,
                           inFeatures: x.columns, outFeatures: y.columns, ldx: x.rowStride, ldy: y.rowStride, pool: pool)
    }

    public func linearBackward(dy: Tensor, x: Tensor, weight: Tensor, dx: Tensor?, dWeight: Tensor?, dBias: Tensor?) {
        precondition(dy.isContiguous)
        if dx != nil || dWeight != nil || dBias != nil {
            Gemm.linearBackward(dy: dy.pointer, x: x.pointer, weight: weight.pointer, dx: dx?.pointer, dWeight: dWeight?.pointer,
                                dBias: dBias?.pointer, rows: x.rows, inFeatures: x.columns, outFeatures: dy.columns,
                                ldx: x.rowStride, ldy: dy.rowStride, ldDx: dx?.rowStride, accumulate: true, pool: pool)
        }
    }

    public func matmul(_ a: Tensor, transA: Bool, _ b: Tensor, transB: Bool, c: Tensor, alpha: Float, beta: Float) {
        let g = MatmulShape(a, transA: transA, b, transB: transB, c: c)
        Gemm.batched(transA: transA, transB: transB, batch: g.batch, m: g.m, n: g.n, k: g.k, alpha: alpha,
                     a: a.pointer, lda: g.lda, strideA: g.strideA, b: b.pointer, ldb: g.ldb, strideB: g.strideB,
                     beta: beta, c: c.pointer, ldc: g.ldc, strideC: g.strideC, pool: pool)
    }

    // MARK: Elementwise

    public func activation(_ kind: ActivationKind, x: Tensor, y: Tensor) {
        precondition(x.isContiguous && y.isContiguous && x.count == y.count)
        Activations.forward(kind, x.pointer, y.pointer, count: x.count, pool: pool)
    }

    public func activationBackward(_ kind: ActivationKind, saved: Tensor, dy: Tensor, dx: Tensor, accumulate: Bool) {
        Activations.backward(kind, saved: saved.pointer, dy: dy.pointer, dx: dx.pointer, count: dx.count, accumulate: accumulate, pool: pool)
    }

    public func add(_ a: Tensor, _ b: Tensor, out: Tensor) {
        precondition(a.count == b.count && a.count == out.count)
        Elementwise.add(a.pointer, b.pointer, out.pointer, count: out.count, pool: pool)
    }

    public func mul(_ a: Tensor, _ b: Tensor, out: Tensor, accumulate: Bool) {
        precondition(a.count == b.count && a.count == out.count)
        Elementwise.mul(a.pointer, b.pointer, out.pointer, count: out.count, accumulate: accumulate, pool: pool)
    }

    public func scale(_ x: Tensor, by s: Float, out: Tensor, accumulate: Bool) {
        precondition(x.count == out.count)
        Elementwise.scale(x.pointer, s, out.pointer, count: x.count, accumulate: accumulate, pool: pool)
    }

    public func mulRowVector(_ x: Tensor, _ v: Tensor, out: Tensor) {
        Elementwise.mulRowVector(x.pointer, v.pointer, out.pointer, rows: x.rows, cols: x.columns, pool: pool)
    }

    public func mulRowVectorBackward(dy: Tensor, x: Tensor, v: Tensor, dx: Tensor?, dv: Tensor?) {
        Elementwise.mulRowVectorBackward(dy: dy.pointer, x: x.pointer, v: v.pointer, dx: dx?.pointer, dv: dv?.pointer,
                                         rows: x.rows, cols: x.columns, accumulate: true, pool: pool)
    }

    public func columnSums(_ x: Tensor, out: Tensor, accumulate: Bool) {
        Reductions.columnSums(x.pointer, rows: x.rows, cols: x.columns, ldx: x.rowStride, out: out.pointer, accumulate: accumulate, pool: pool)
    }

    public func sumOfSquares(_ x: Tensor) -> Double {
        precondition(x.isContiguous)
        return Reductions.sumOfSquares(x.pointer, count: x.count, pool: pool)
    }

    public func sum(_ x: Tensor) -> Double {
        precondition(x.isContiguous)
        return Reductions.sum(x.pointer, count: x.count, pool: pool)
    }

    // MARK: Normalisation

    public func layerNorm(x: Tensor, weight: Tensor?, bias: Tensor?, y: Tensor, mean: Tensor, rstd: Tensor) {
        precondition(x.isContiguous && y.isContiguous)
        LayerNorm.forward(x: x.pointer, weight: weight?.pointer, bias: bias?.pointer, y: y.pointer, mean: mean.pointer,
                          rstd: rstd.pointer, rows: x.rows, channels: x.columns, pool: pool)
    }

    public func layerNormBackward(dy: Tensor, x: Tensor, weight: Tensor?, mean: Tensor, rstd: Tensor, dx: Tensor?, dWeight: Tensor?, dBias: Tensor?) {
        withScratch(Double.self, LayerNorm.backwardScratchCount(rows: x.rows, channels: x.columns)) { scratch in
            LayerNorm.backward(dy: dy.pointer, x: x.pointer, weight: weight?.pointer, mean: mean.pointer, rstd: rstd.pointer,
                               dx: dx?.pointer, dWeight: dWeight?.pointer, dBias: dBias?.pointer, rows: x.rows, channels: x.columns,
                               scratch: scratch, accumulate: true, pool: pool)
        }
    }

    public func rmsNorm(x: Tensor, weight: Tensor?, y: Tensor, rstd: Tensor) {
        RMSNorm.forward(x: x.pointer, weight: weight?.pointer, y: y.pointer, rstd: rstd.pointer, rows: x.rows, channels: x.columns, pool: pool)
    }

    public func rmsNormBackward(dy: Tensor, x: Tensor, weight: Tensor?, rstd: Tensor, dx: Tensor?, dWeight: Tensor?) {
        withScratch(Double.self, RMSNorm.backwardScratchCount(rows: x.rows, channels: x.columns)) { scratch in
            RMSNorm.backward(dy: dy.pointer, x: x.pointer, weight: weight?.pointer, rstd: rstd.pointer, dx: dx?.pointer,
                             dWeight: dWeight?.pointer, rows: x.rows, channels: x.columns, scratch: scratch, accumulate: true, pool: pool)
        }
    }

    // MARK: Loss

    public func crossEntropy(logits: Tensor, targets: Tensor, logSumExp: Tensor) -> Double {
        CrossEntropy.forward(logits: logits.pointer, targets: targets.int32Pointer, rows: logits.rows, classes: logits.columns,
                             ldLogits: logits.rowStride, losses: nil, logSumExp: logSumExp.pointer, pool: pool) / Double(logits.rows)
    }

    public func crossEntropyBackward(logits: Tensor, targets: Tensor, logSumExp: Tensor, scale: Float, dLogits: Tensor, accumulate: Bool) {
        CrossEntropy.backward(logits: logits.pointer, targets: targets.int32Pointer, logSumExp: logSumExp.pointer, dLoss: nil, scale: scale,
                              dLogits: dLogits.pointer, rows: logits.rows, classes: logits.columns, ldLogits: logits.rowStride,
                              accumulate: accumulate, pool: pool)
    }

    public func softmax(logits: Tensor, probs: Tensor, temperature: Float) {
        precondition(logits.isContiguous)
        CrossEntropy.softmax(logits: logits.pointer, probs: probs.pointer, rows: logits.rows, classes: logits.columns,
                             temperature: temperature, pool: pool)
    }

    // MARK: Lookup

    public func embedding(table: Tensor, indices: Tensor, out: Tensor) {
        Embedding.forward(table: table.pointer, indices: indices.int32Pointer, count: indices.count, channels: table.columns,
                          out: out.pointer, pool: pool)
    }

    public func embeddingBackward(dOut: Tensor, indices: Tensor, dTable: Tensor) {
        Embedding.backward(dOut: dOut.pointer, indices: indices.int32Pointer, count: indices.count, channels: dTable.columns,
                           vocab: dTable.rows, dTable: dTable.pointer, pool: pool)
    }

    // MARK: Convolution

    public func causalConv1d(x: Tensor, weight: Tensor, bias: Tensor?, y: Tensor, batch: Int, silu: Bool) {
        let (channels, width) = (weight.shape[0], weight.shape[weight.rank - 1])
        CausalConv1d.forward(x: x.pointer, weight: weight.pointer, bias: bias?.pointer, y: y.pointer, batch: batch,
                             length: x.rows / batch, channels: channels, width: width, ldx: x.rowStride, ldy: y.rowStride,
                             silu: silu, pool: pool)
    }

    public func causalConv1dBackward(dy: Tensor, x: Tensor, weight: Tensor, bias: Tensor?, dx: Tensor?, dWeight: Tensor?, dBias: Tensor?,
                                     batch: Int, silu: Bool) {
        let (channels, width) = (weight.shape[0], weight.shape[weight.rank - 1])
        let length = x.rows / batch
        withScratch(Float.self, CausalConv1d.backwardScratchCount(batch: batch, length: length, channels: channels, width: width)) { scratch in
            CausalConv1d.backward(dy: dy.pointer, x: x.pointer, weight: weight.pointer, bias: bias?.pointer, dx: dx?.pointer,
                                  dWeight: dWeight?.pointer, dBias: dBias?.pointer, batch: batch, length: length, channels: channels,
                                  width: width, ldx: x.rowStride, ldy: dy.rowStride, ldDx: dx?.rowStride, silu: silu, scratch: scratch,
                                  accumulate: true, pool: pool)
        }
    }

    public func causalConv1dStep(x: Tensor, state: Tensor, weight: Tensor, bias: Tensor?, y: Tensor, silu: Bool) {
        let (channels, width) = (weight.shape[0], weight.shape[weight.rank - 1])
        CausalConv1d.step(x: x.pointer, state: state.pointer, weight: weight.pointer, bias: bias?.pointer, y: y.pointer,
                          batch: x.rows, channels: channels, width: width, ldx: x.rowStride, ldy: y.rowStride, silu: silu, pool: pool)
    }

    // MARK: Selective scan

    private func kernelInputs(_ x: SelectiveScanTensors) -> SelectiveScanInputs {
        SelectiveScanInputs(shape: x.shape, u: x.u.pointer, strideU: x.u.rowStride, delta: x.delta.pointer, strideDelta: x.delta.rowStride,
                            z: x.z?.pointer, strideZ: x.z?.rowStride, B: x.B.pointer, strideB: x.B.rowStride,
                            C: x.C.pointer, strideC: x.C.rowStride, A: x.A.pointer, AImag: x.AImag?.pointer,
                            D: x.D?.pointer, deltaBias: x.deltaBias?.pointer)
    }

    public func selectiveScanCheckpointCount(_ shape: SelectiveScanShape, chunk: Int) -> Int {
        SelectiveScan.checkpointCount(shape, chunk: chunk)
    }

    public func selectiveScan(_ x: SelectiveScanTensors, out: Tensor, lastState: Tensor?, checkpoints: Tensor?, chunk: Int) {
        withScratch(Float.self, SelectiveScan.forwardWorkspaceCount(x.shape, threads: pool.threads)) { ws in
            SelectiveScan.forward(kernelInputs(x), out: out.pointer, strideOut: out.rowStride, lastState: lastState?.pointer,
                                  checkpoints: checkpoints?.pointer, chunk: chunk, workspace: ws, pool: pool)
        }
    }

    public func selectiveScanBackward(_ x: SelectiveScanTensors, dOut: Tensor, checkpoints: Tensor?, chunk: Int, grads g: SelectiveScanGradientTensors) {
        let grads = SelectiveScanGradients(shape: x.shape, du: g.du.pointer, strideDU: g.du.rowStride, dDelta: g.dDelta.pointer,
                                           strideDDelta: g.dDelta.rowStride, dz: g.dz?.pointer, strideDZ: g.dz?.rowStride,
                                           dB: g.dB.pointer, strideDB: g.dB.rowStride, dC: g.dC.pointer, strideDC: g.dC.rowStride,
                                           dA: g.dA.pointer, dAImag: g.dAImag?.pointer, dD: g.dD?.pointer, dDeltaBias: g.dDeltaBias?.pointer)
        withScratch(Float.self, SelectiveScan.backwardWorkspaceCount(x.shape, chunk: chunk, threads: pool.threads)) { ws in
            SelectiveScan.backward(kernelInputs(x), dOut: dOut.pointer, strideDOut: dOut.rowStride, checkpoints: checkpoints.map { UnsafePointer($0.pointer) },
                                   chunk: chunk, grads: grads, workspace: ws, pool: pool)
        }
    }

    public func selectiveScanStep(_ x: SelectiveScanTensors, state: Tensor, out: Tensor) {
        SelectiveScan.step(kernelInputs(x), state: state.pointer, out: out.pointer, strideOut: out.rowStride, pool: pool)
    }

    // MARK: Layout

    public func transpose(_ x: Tensor, batch: Int, rows: Int, cols: Int, out: Tensor, accumulate: Bool) {
        precondition(x.isContiguous && out.isContiguous && x.count == batch * rows * cols)
        Layout.transpose(src: x.pointer, dst: out.pointer, batch: batch, rows: rows, cols: cols, accumulate: accumulate, pool: pool)
    }

    // MARK: Randomness

    public func fillNormal(_ t: Tensor, mean: Float, std: Float, seed: UInt64) {
        Random.normal(t.pointer, count: t.count, mean: mean, std: std, seed: seed, pool: pool)
    }

    public func fillUniform(_ t: Tensor, low: Float, high: Float, seed: UInt64) {
        Random.uniform(t.pointer, count: t.count, low: low, high: high, seed: seed, pool: pool)
    }

    public func tiedDropoutMask(_ mask: Tensor, p: Float, seed: UInt64, offset: UInt64) {
        precondition(mask.isContiguous, "tiedDropoutMask: mask must be contiguous")
        Dropout.mask(mask.pointer, count: mask.count, p: p, seed: seed, offset: offset, pool: pool)
    }

    public func scaleByTiedMask(x: Tensor, mask: Tensor, y: Tensor, batch: Int, accumulate: Bool) {
        let C = x.columns, L = x.rows / batch
        precondition(x.isContiguous && y.isContiguous && mask.isContiguous && x.shape == y.shape && mask.count == batch * C
                     && x.rows == batch * L, "scaleByTiedMask: x \(x.shape), y \(y.shape), mask \(mask.shape), batch \(batch)")
        Dropout.scaleByTiedMask(x.pointer, mask.pointer, y.pointer, batch: batch, length: L, channels: C, accumulate: accumulate,
                                pool: pool)
    }

    public func dropout(x: Tensor, y: Tensor, p: Float, seed: UInt64) {
        Dropout.forward(x: x.pointer, y: y.pointer, count: x.count, p: p, seed: seed, pool: pool)
    }

    public func dropoutBackward(dy: Tensor, dx: Tensor, p: Float, seed: UInt64, accumulate: Bool) {
        Dropout.backward(dy: dy.pointer, dx: dx.pointer, count: dx.count, p: p, seed: seed, accumulate: accumulate, pool: pool)
    }

    public func dropout(x: Tensor, y: Tensor, p: Float, seed: UInt64, offset: UInt64) {
        Dropout.forward(x: x.pointer, y: y.pointer, count: x.count, p: p, seed: seed, offset: offset, pool: pool)
    }

    public func dropoutBackward(dy: Tensor, dx: Tensor, p: Float, seed: UInt64, offset: UInt64, accumulate: Bool) {
        Dropout.backward(dy: dy.pointer, dx: dx.pointer, count: dx.count, p: p, seed: seed, offset: offset, accumulate: accumulate, pool: pool)
    }

    // MARK: GLU

    public func glu(x: Tensor, y: Tensor) {
        GLU.forward(x: x.pointer, y: y.pointer, rows: x.rows, half: x.columns / 2, pool: pool)
    }

    public func gluBackward(dy: Tensor, x: Tensor, dx: Tensor, accumulate: Bool) {
        GLU.backward(dy: dy.pointer, x: x.pointer, dx: dx.pointer, rows: x.rows, half: x.columns / 2, accumulate: accumulate, pool: pool)
    }

    // MARK: Optimiser

    public func adamW(parameters: Tensor, gradients: Tensor, m: Tensor, v: Tensor, step: Int, learningRate: Float,
                      beta1: Float, beta2: Float, eps: Float, weightDecay: Float, gradientScale: Float) {
        let config = AdamW.Config(lr: learningRate, beta1: beta1, beta2: beta2, eps: eps, weightDecay: weightDecay)
        AdamW.update(params: parameters.pointer, grads: gradients.pointer, m: m.pointer, v: v.pointer, count: parameters.count,
                     step: step, config: config, gradScale: gradientScale, pool: pool)
    }

    public func ema(_ average: Tensor, toward parameters: Tensor, decay: Float) {
        AdamW.emaUpdate(ema: average.pointer, params: parameters.pointer, count: average.count, decay: decay, pool: pool)
    }

    /// Scratch memory for one kernel call, from the same caching allocator.
    private func withScratch<T>(_ type: T.Type, _ count: Int, _ body: (UnsafeMutablePointer<T>) -> Void) {
        let bytes = max(1, count) * MemoryLayout<T>.stride
        let p = allocator.allocate(byteCount: bytes)
        body(p.bindMemory(to: T.self, capacity: max(1, count)))
        allocator.release(p, byteCount: bytes)
    }
}
