// The fused selective scan (Mamba's S6 recurrence) on the CPU: shapes, argument bundles and
// the sizes of every caller-owned buffer. The kernels themselves live in
// SelectiveScanForward.swift, SelectiveScanBackward.swift and SelectiveScanStep.swift; the
// straightforward loop that serves as test oracle and benchmark baseline is
// SelectiveScanReference.swift.
//
// What is computed (official `selective_scan_ref`, delta_softplus = True), per batch b,
// channel d, state index n and time t:
//
//   s_t      = softplus(delta[b,t,d] + deltaBias[d])
//   a_t[n]   = exp(s_t · A[d,n])                      (complex A: complex exponential)
//   h_t[n]   = a_t[n] · h_{t-1}[n] + s_t · u[b,t,d] · B[b,t,n]        (h_{-1} = 0)
//   y_t      = Σ_n C[b,t,n] · h_t[n]  + D[d] · u[b,t,d]
//              (complex: 2 · Re(Σ_n C[b,t,n] · h_t[n]), no conjugate, + D·u)
//   out[b,t,d] = y_t · silu(z[b,t,d])                 (or y_t without z)
//
// Memory layout (token-major, as the Mamba block's GEMMs produce it). Every per-token
// matrix is a column slice of a bigger row-major matrix, so it comes with a row stride
// (in Floats, ≥ its width):
//
//   u, delta, z, out, du, dDelta, dz, dOut : (batch, L, D)   element [b,t,d] at (b·L + t)·stride + d
//   B, C, dB, dC                           : (batch, L, W)   element [b,t,k] at (b·L + t)·stride + k
//        where W = N (real) or 2N (complex, interleaved re_0, im_0, re_1, im_1, …)
//   A (real) / A_real and A_imag (complex), dA / dA_real, dA_imag : (D, N) contiguous
//   D, deltaBias, dD, dDeltaBias          : (D) contiguous
//   lastState / step state                 : (batch, D, W) contiguous (complex interleaved re/im)
//
// Vectorisation: SIMD8 over channels (8 consecutive d per vector), looping over the state
// index n inside each time step, so there is no horizontal reduction in the forward and any N
// works at full width (the backward's sums over channels for dB/dC use an 8×8 vhaddps
// transpose-sum per 8 state indices). Work is split into tasks (batch element, slice of ≤ 16
// channel groups), block by block in time so that the strided rows are shared by the slice's
// groups while in cache. One exp (complex: one exp and one sincos) per state update, by
// scanExp2 / scanSinCosHalfPi (SelectiveScanMath.swift: ≤ 1.6e-7 relative and ≤ 8.3e-8
// absolute measured error); softplus / sigmoid by scanSoftplusAndSigmoid / scanSigmoid
// (FastMath's Cephes schemes, ≤ 2.2e-7 relative measured).
//
// Caller-owned buffers (all Float, any alignment):
//   checkpoints  checkpointCount(shape, chunk)            written by forward, read by backward
//   forward ws   forwardWorkspaceCount(shape, threads)    optional (else one heap block per call)
//   backward ws  backwardWorkspaceCount(shape, chunk, threads)
// For (batch 4, L 16384, D 256, N 16, chunk 64, 2 threads): checkpoints 16.7 MB (complex
// 33.4 MB), backward workspace 9.5 MB, forward workspace 0.28 MB — against ≈ 560 MB of op
// inputs, outputs and gradients.

/// Sizes of one selective scan.
public struct SelectiveScanShape: Sendable, Equatable, CustomStringConvertible {
    public var batch: Int
    /// Sequence length L.
    public var length: Int
    /// Channels D (the SSM's inner width).
    public var channels: Int
    /// State size N per channel (complex: N complex numbers).
    public var dState: Int
    public var isComplex: Bool

    public init(batch: Int, length: Int, channels: Int, dState: Int, isComplex: Bool = false) {
        self.batch = batch; self.length = length; self.channels = channels
        self.dState = dState; self.isComplex = isComplex
    }

    /// Floats per state row / per B or C row: N (real) or 2N (complex).
    @inlinable public var stateWidth: Int { isComplex ? 2 * dState : dState }
    /// Number of 8-channel groups (the last one may be partial).
    @inlinable public var channelGroups: Int { (channels + 7) / 8 }
    /// Channels rounded up to a multiple of 8.
    @inlinable public var paddedChannels: Int { channelGroups * 8 }
    /// State updates (B·L·D·N) — the unit of the throughput figures.
    public var stateUpdates: Int { batch * length * channels * dState }

    public var description: String {
        "(batch \(batch), L \(length), D \(channels), N \(dState)\(isComplex ? ", complex" : ""))"
    }
}

/// The read-only inputs of a scan (pointers are borrowed; nothing is retained or freed).
public struct SelectiveScanInputs {
    public var shape: SelectiveScanShape
    /// (batch, L, D), row stride `strideU`.
    public var u: UnsafePointer<Float>
    public var strideU: Int
    /// Pre-softplus delta (batch, L, D), row stride `strideDelta`.
    public var delta: UnsafePointer<Float>
    public var strideDelta: Int
    /// Optional gate (batch, L, D), row stride `strideZ`: out = y · silu(z).
    public var z: UnsafePointer<Float>?
    public var strideZ: Int
    /// (batch, L, W), row stride `strideB` (W = N, or 2N interleaved complex).
    public var B: UnsafePointer<Float>
    public var strideB: Int
    /// (batch, L, W), row stride `strideC`.
    public var C: UnsafePointer<Float>
    public var strideC: Int
    /// (D, N): A (real) or A's real part (complex).
    public var A: UnsafePointer<Float>
    /// (D, N): A's imaginary part; required iff `shape.isComplex`.
    public var AImag: UnsafePointer<Float>?
    /// Optional skip (D).
    public var D: UnsafePointer<Float>?
    /// Optional bias added to delta before the softplus (D).
    public var deltaBias: UnsafePointer<Float>?

    public init(shape: SelectiveScanShape,
                u: UnsafePointer<Float>, strideU: Int? = nil,
                delta: UnsafePointer<Float>, strideDelta: Int? = nil,
                z: UnsafePointer<Float>? = nil, strideZ: Int? = nil,
                B: UnsafePointer<Float>, strideB: Int? = nil,
                C: UnsafePointer<Float>, strideC: Int? = nil,
                A: UnsafePointer<Float>, AImag: UnsafePointer<Float>? = nil,
                D: UnsafePointer<Float>? = nil, deltaBias: UnsafePointer<Float>? = nil) {
        self.shape = shape
        self.u = u; self.strideU = strideU ?? shape.channels
        self.delta = delta; self.strideDelta = strideDelta ?? shape.channels
        self.z = z; self.strideZ = strideZ ?? shape.channels
        self.B = B; self.strideB = strideB ?? shape.stateWidth
        self.C = C; self.strideC = strideC ?? shape.stateWidth
        self.A = A; self.AImag = AImag; self.D = D; self.deltaBias = deltaBias
    }

    /// Checks the invariants the kernels rely on (cheap; called by every entry point).
    func validate() {
        let s = shape
        precondition(s.batch >= 0 && s.length >= 0 && s.channels >= 0 && s.dState >= 1, "selective scan: bad shape \(s)")
        precondition(strideU >= s.channels && strideDelta >= s.channels, "selective scan: u/delta stride < D")
        precondition(z == nil || strideZ >= s.channels, "selective scan: z stride < D")
        precondition(strideB >= s.stateWidth && strideC >= s.stateWidth, "selective scan: B/C stride < state width")
        precondition(!s.isComplex || AImag != nil, "selective scan: complex scan needs AImag")
    }
}

/// Where the backward writes its gradients. Every gradient is overwritten (not accumulated).
public struct SelectiveScanGradients {
    /// (batch, L, D), row stride `strideDU`.
    public var du: UnsafeMutablePointer<Float>
    public var strideDU: Int
    /// Gradient w.r.t. the pre-softplus delta (includes sigmoid(delta + bias)); (batch, L, D).
    public var dDelta: UnsafeMutablePointer<Float>
    public var strideDDelta: Int
    /// (batch, L, D); required iff the inputs have z.
    public var dz: UnsafeMutablePointer<Float>?
    public var strideDZ: Int
    /// (batch, L, W), row stride `strideDB` (same layout as B).
    public var dB: UnsafeMutablePointer<Float>
    public var strideDB: Int
    /// (batch, L, W), row stride `strideDC`.
    public var dC: UnsafeMutablePointer<Float>
    public var strideDC: Int
    /// (D, N): dA (real) or dA_real (complex).
    public var dA: UnsafeMutablePointer<Float>
    /// (D, N): dA_imag; required iff complex.
    public var dAImag: UnsafeMutablePointer<Float>?
    /// (D); written if non-nil (meaningful when the inputs have D).
    public var dD: UnsafeMutablePointer<Float>?
    /// (D); written if non-nil (the gradient of a delta bias, = Σ_{b,t} dDelta).
    public var dDeltaBias: UnsafeMutablePointer<Float>?

    public init(shape: SelectiveScanShape,
                du: UnsafeMutablePointer<Float>, strideDU: Int? = nil,
                dDelta: UnsafeMutablePointer<Float>, strideDDelta: Int? = nil,
                dz: UnsafeMutablePointer<Float>? = nil, strideDZ: Int? = nil,
                dB: UnsafeMutablePointer<Float>, strideDB: Int? = nil,
                dC: UnsafeMutablePointer<Float>, strideDC: Int? = nil,
                dA: UnsafeMutablePointer<Float>, dAImag: UnsafeMutablePointer<Float>? = nil,
                dD: UnsafeMutablePointer<Float>? = nil, dDeltaBias: UnsafeMutablePointer<Float>? = nil) {
        self.du = du; self.strideDU = strideDU ?? shape.channels
        self.dDelta = dDelta; self.strideDDelta = strideDDelta ?? shape.channels
        self.dz = dz; self.strideDZ = strideDZ ?? shape.channels
        self.dB = dB; self.strideDB = strideDB ?? shape.stateWidth
        self.dC = dC; self.strideDC = strideDC ?? shape.stateWidth
        self.dA = dA; self.dAImag = dAImag; self.dD = dD; self.dDeltaBias = dDeltaBias
    }
}

/// Namespace of the fused kernels. See the file comment for the maths and layouts.
public enum SelectiveScan {
    /// A reasonable default checkpoint interval (time steps between stored states).
    public static let defaultChunk = 64

    /// Number of chunks of `chunk` steps covering the sequence.
    @inlinable public static func chunkCount(_ shape: SelectiveScanShape, chunk: Int) -> Int {
        (shape.length + chunk - 1) / chunk
    }

    /// Floats of the checkpoint buffer: the state at the end of every chunk but the last,
    /// batch × (⌈L/chunk⌉ − 1) × paddedChannels × W floats. Opaque layout
    /// [b][chunk][channel group][W][8 lanes]; written by `forward`, read by `backward`
    /// (both must use the same `chunk`). No alignment required.
    public static func checkpointCount(_ shape: SelectiveScanShape, chunk: Int) -> Int {
        precondition(chunk >= 1)
        return shape.batch * max(0, chunkCount(shape, chunk: chunk) - 1) * shape.paddedChannels * shape.stateWidth
    }

    /// At most this many 8-channel groups per task: bounds the per-task scratch.
    static let maxGroupsPerTask = 16

    /// Channel slices per batch element: the unit of parallel work of `forward` and `backward`
    /// is (batch element, slice of consecutive channel groups). Chosen so there are ≥ 4 tasks
    /// per thread when the channels allow it, and ≤ 16 groups per task. Depends only on the
    /// shape and the thread count, so the same thread count gives bit-identical gradients.
    ///
    /// Each slice beyond the first costs the backward 2·L·W floats of dB/dC partial sums per
    /// batch element, so for narrow layers (few channels per state column) the count is also
    /// capped to keep those partials within an eighth of the op's inputs and outputs
    /// (≈ L·(6D + 4W) floats): (slices − 1)·2W ≤ (6D + 4W)/8.
    public static func slices(_ shape: SelectiveScanShape, threads: Int) -> Int {
        let want = (4 * max(1, threads) + max(1, shape.batch) - 1) / max(1, shape.batch)
        let cap = (shape.channelGroups + maxGroupsPerTask - 1) / maxGroupsPerTask
        let W = shape.stateWidth
        let memoryCap = 1 + (6 * shape.channels + 4 * W) / (16 * W)
        return max(1, min(shape.channelGroups, max(min(want, memoryCap), cap)))
    }
}
