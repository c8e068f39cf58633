import Kernels

/// The kernels of one device. The Engine's ops and the layers call only this protocol, so a
/// second device (the CUDA backend) slots in by implementing it; the ops, the tape, the
/// optimiser and the models stay as they are.
///
/// Conventions: tensors are row-major; `accumulate: true` adds into the output (gradients
/// accumulate on the tape), `false` overwrites it. Column-slice views (`rowStride`) are
/// accepted where a method says so.
public protocol Backend: AnyObject, Sendable {
    var device: Device { get }

    // Memory
    func empty(_ shape: [Int], dtype: DType) -> Tensor
    func upload(_ bytes: UnsafeRawBufferPointer, into tensor: Tensor)
    func download(_ tensor: Tensor, into bytes: UnsafeMutableRawBufferPointer)
    func fill(_ tensor: Tensor, value: Float)
    /// Copies (or adds) a possibly strided 2-D view into another of the same shape.
    func copy2D(from src: Tensor, to dst: Tensor, accumulate: Bool)
    /// Allocator statistics: live and peak bytes.
    var memoryInUse: (live: Int, peak: Int) { get }
    func resetPeakMemory()

    // Matrix products. x: (rows × in), may be a column slice; weight (out × in), PyTorch layout.
    func linear(x: Tensor, weight: Tensor, bias: Tensor?, y: Tensor)
    func linearBackward(dy: Tensor, x: Tensor, weight: Tensor, dx: Tensor?, dWeight: Tensor?, dBias: Tensor?)
    /// C = α·op(A)·op(B) + β·C for contiguous 2-D (or batched 3-D) tensors.
    func matmul(_ a: Tensor, transA: Bool, _ b: Tensor, transB: Bool, c: Tensor, alpha: Float, beta: Float)

    // Elementwise
    func activation(_ kind: ActivationKind, x: Tensor, y: Tensor)
    /// `saved` is x or y as the activation needs (see `ActivationKind.backwardUsesOutput`).
    func activationBackward(_ kind: ActivationKind, saved: Tensor, dy: Tensor, dx: Tensor, accumulate: Bool)
    func add(_ a: Tensor, _ b: Tensor, out: Tensor)
    func mul(_ a: Tensor, _ b: Tensor, out: Tensor, accumulate: Bool)
    func scale(_ x: Tensor, by s: Float, out: Tensor, accumulate: Bool)
    /// out[r, c] = x[r, c] · v[c]; backward gives dx and dv (column-wise sums).
    func mulRowVector(_ x: Tensor, _ v: Tensor, out: Tensor)
    func mulRowVectorBackward(dy: Tensor, x: Tensor, v: Tensor, dx: Tensor?, dv: Tensor?)
    /// Column sums of a 2-D tensor into `out` (bias gradients).
    func columnSums(_ x: Tensor, out: Tensor, accumulate: Bool)
    func sumOfSquares(_ x: Tensor) -> Double
    func sum(_ x: Tensor) -> Double

    // Normalisation over the last dimension (eps as PyTorch's default, 1e-5).
    func layerNorm(x: Tensor, weight: Tensor?, bias: Tensor?, y: Tensor, mean: Tensor, rstd: Tensor)
    func layerNormBackward(dy: Tensor, x: Tensor, weight: Tensor?, mean: Tensor, rstd: Tensor, dx: Tensor?, dWeight: Tensor?, dBias: Tensor?)
    func rmsNorm(x: Tensor, weight: Tensor?, y: Tensor, rstd: Tensor)
    func rmsNormBackward(dy: Tensor, x: Tensor, weight: Tensor?, rstd: Tensor, dx: Tensor?, dWeight: Tensor?)

    // Loss: mean softmax cross-entropy in nats over rows; logits (rows × V), targets Int32.
    func crossEntropy(logits: Tensor, targets: Tensor, logSumExp: Tensor) -> Double
    func crossEntropyBackward(logits: Tensor, targets: Tensor, logSumExp: Tensor, scale: Float, dLogits: Tensor, accumulate: Bool)
    func softmax(logits: Tensor, probs: Tensor, temperature: Float)

    // Lookup
    func embedding(table: Tensor, indices: Tensor, out: Tensor)
    func embeddingBackward(dOut: Tensor, indices: Tensor, dTable: Tensor)

    // Causal depthwise conv1d over (batch, L, C); x may be a column slice.
    func causalConv1d(x: Tensor, weight: Tensor, bias: Tensor?, y: Tensor, batch: Int, silu: Bool)
    func causalConv1dBackward(dy: Tensor, x: Tensor, weight: Tensor, bias: Tensor?, dx: Tensor?, dWeight: Tensor?, dBias: Tensor?,
                              batch: Int, silu: Bool)

    /// One generation step: `state` (batch, C, K−1) holds the last inputs; x (batch, C) may be a
    /// column slice; y (batch, C) is overwritten.
    func causalConv1dStep(x: Tensor, state: Tensor, weight: Tensor, bias: Tensor?, y: Tensor, silu: Bool)

    // Selective scan (Mamba's S6). The forward stores states every `chunk` steps in
    // `checkpoints` (nil in inference) so the backward recomputes the rest: memory stays
    // O(batch·L·D), never O(batch·L·D·N).
    func selectiveScanCheckpointCount(_ shape: SelectiveScanShape, chunk: Int) -> Int
    func selectiveScan(_ x: SelectiveScanTensors, out: Tensor, lastState: Tensor?, checkpoints: Tensor?, chunk: Int)
    func selectiveScanBackward(_ x: SelectiveScanTensors, dOut: Tensor, checkpoints: Tensor?, chunk: Int, grads: SelectiveScanGradientTensors)
    /// One time step for `shape.batch` streams (shape.length = 1): `state` (batch, D, W) updated in place.
    func selectiveScanStep(_ x: SelectiveScanTensors, state: Tensor, out: Tensor)

    // Causal multi-head scaled-dot-product attention, FlashAttention's tiled online softmax:
    // O(L · tile) scratch per (batch, head), never the L×L scores. q, k, v: (batch·L,
    // heads·headDim) token-major, head h in columns h·headDim..<(h+1)·headDim, each may be a
    // column slice; out (batch·L, heads·headDim) contiguous, overwritten; logSumExp (batch,
    // heads, L): each query row's log Σ_j exp(s_ij), the one thing the backward keeps.
    func causalAttention(q: Tensor, k: Tensor, v: Tensor, shape: AttentionShape, out: Tensor, logSumExp: Tensor)
    /// dq, dk, dv (overwritten; may be column slices) from dOut and the forward's out and logSumExp.
    func causalAttentionBackward(dOut: Tensor, q: Tensor, k: Tensor, v: Tensor, out: Tensor, logSumExp: Tensor, shape: AttentionShape,
                                 dq: Tensor, dk: Tensor, dv: Tensor)
    /// One generation step of `q.rows` streams over a KV cache: writes k and v (batch,
    /// heads·headDim; column slices allowed) as row `position` of keyCache and valueCache (batch,
    /// maxLength, heads·headDim), sets out (batch, heads·headDim) to the attention of q over rows
    /// 0…position, then increments position. `position` is an Int32 [1] tensor on the device, so
    /// that a captured step graph advances it on every replay.
    func causalAttentionStep(q: Tensor, k: Tensor, v: Tensor, keyCache: Tensor, valueCache: Tensor, position: Tensor, out: Tensor,
                             heads: Int, scale: Float)

    // The S4D convolution kernel. Shapes as s4d.py: log_dt (H), C (H, M, 2) as (re, im),
    // log_A_real (H, M), A_imag (H, M), M complex modes per channel; K (H, L); contiguous.
    /// K[h, l] = 2·Re Σ_n C'_n·exp(dt·A_n·l), C' = C·(exp(dt·A) − 1)/A, dt = exp(log_dt),
    /// A = −exp(log_A_real) + i·A_imag (in Double: phases reach 10⁵ rad at audio lengths).
    func s4dKernel(logDt: Tensor, C: Tensor, logAReal: Tensor, AImag: Tensor, length: Int, kernel: Tensor)
    /// Gradients of Σ dK·K with respect to the four parameters (overwritten).
    func s4dKernelBackward(logDt: Tensor, C: Tensor, logAReal: Tensor, AImag: Tensor, length: Int, dKernel: Tensor,
                           dLogDt: Tensor, dC: Tensor, dLogAReal: Tensor, dAImag: Tensor)

    // Layout
    /// Batched transpose: (batch, rows, cols) → (batch, cols, rows).
    func transpose(_ x: Tensor, batch: Int, rows: Int, cols: Int, out: Tensor, accumulate: Bool)

    // Randomness (counter-based: the result depends on (seed, offset), not on threads).
    func fillNormal(_ t: Tensor, mean: Float, std: Float, seed: UInt64)
    func fillUniform(_ t: Tensor, low: Float, high: Float, seed: UInt64)
    func dropout(x: Tensor, y: Tensor, p: Float, seed: UInt64)
    func dropoutBackward(dy: Tensor, dx: Tensor, p: Float, seed: UInt64, accumulate: Bool)
    /// Dropout whose element i uses the generator's word `offset + i`: a data-parallel rank
    /// passes its first sample's element index, so that every sample gets the mask it would
    /// get in one process (see `Trainer`). Backends without it may trap for `offset != 0`.
    func dropout(x: Tensor, y: Tensor, p: Float, seed: UInt64, offset: UInt64)
    func dropoutBackward(dy: Tensor, dx: Tensor, p: Float, seed: UInt64, offset: UInt64, accumulate: Bool)
    /// S4's DropoutNd (tie = True) mask: mask[i] = keep_i ? 1/(1 − p) : 0 from generator word
    /// `offset + i`, with the keep rule of `dropout` (so equal to dropout applied to ones).
    func tiedDropoutMask(_ mask: Tensor, p: Float, seed: UInt64, offset: UInt64)
    /// y[b, t, c] (+)= x[b, t, c]·mask[b, c]: x, y (batch·L, C) token-major, contiguous; mask
    /// (batch, C) from `tiedDropoutMask`, shared by every position of a sequence.
    func scaleByTiedMask(x: Tensor, mask: Tensor, y: Tensor, batch: Int, accumulate: Bool)

    // GLU over the last dimension: [a, b] → a·σ(b).
    func glu(x: Tensor, y: Tensor)
    func gluBackward(dy: Tensor, x: Tensor, dx: Tensor, accumulate: Bool)

    // Optimiser: one AdamW step over a flat range (parameters, gradients, moments).
    func adamW(parameters: Tensor, gradients: Tensor, m: Tensor, v: Tensor, step: Int, learningRate: Float,
               beta1: Float, beta2: Float, eps: Float, weightDecay: Float, gradientScale: Float)
    func ema(_ average: Tensor, toward parameters: Tensor, decay: Float)
}

extension Backend {
    public func dropout(x: Tensor, y: Tensor, p: Float, seed: UInt64, offset: UInt64) {
        precondition(offset == 0, "the \(device) backend has no dropout with a sample offset (data-parallel ranks)")
        dropout(x: x, y: y, p: p, seed: seed)
    }

    public func dropoutBackward(dy: Tensor, dx: Tensor, p: Float, seed: UInt64, offset: UInt64, accumulate: Bool) {
        precondition(offset == 0, "the \(device) backend has no dropout with a sample offset (data-parallel ranks)")
        dropoutBackward(dy: dy, dx: dx, p: p, seed: seed, accumulate: accumulate)
    }

    public func zeros(_ shape: [Int]) -> Tensor {
        let t = empty(shape, dtype: .float32)
        fill(t, value: 0)
        return t
    }

    public func tensor(_ values: [Float], shape: [Int]) -> Tensor {
        let t = empty(shape, dtype: .float32)
        t.copy(from: values)
        return t
    }

    public func indices(_ values: [Int32], shape: [Int]) -> Tensor {
        let t = empty(shape, dtype: .int32)
        t.copy(from: values)
        return t
    }

    public func empty(_ shape: [Int]) -> Tensor { empty(shape, dtype: .float32) }

    /// A new (cols, columns) copy of the matrix w (rows, cols) transposed, with zero columns
    /// from rows up to `columns`: the (in, out) layouts the fused generation steps read.
    public func transposed(_ w: Tensor, columns: Int? = nil) -> Tensor {
        let (rows, cols) = (w.shape[0], w.shape[1])
        let t = empty([cols, rows])
        transpose(w, batch: 1, rows: rows, cols: cols, out: t, accumulate: false)
        guard let columns, columns > rows else { return t }
        let padded = zeros([cols, columns])
        copy2D(from: t, to: padded.columns(0..<rows), accumulate: false)
        return padded
    }
}
