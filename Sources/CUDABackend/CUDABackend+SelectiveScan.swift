import Engine
import Foundation
import Kernels

// The selective scan on the GPU (scan.cu describes the kernels). A block runs 8 (or 12)
// channels of one batch item through the whole sequence in tiles of 32 × `scanItems` steps; this
// backend's checkpoints are the start states of every tile, layout (batch, tiles, D, W).
// Either pass may run the same tiles with two channels a warp (`scanForwardKernel`, `scanBackwardKernel`).
// The `chunk` argument of the protocol is the CPU's checkpoint interval and is not used here
// (the count reported by `selectiveScanCheckpointCount` is this layout's).
extension CUDABackend {
    /// The largest state width (scan.cu's WM_MAX_W).
    static let scanMaxWidth = 128

    /// Channels per thread block (scan.cu's CPB, one warp each): 8, or 12 where blocks of 12
    /// load the SMs more evenly. An SM's time goes with its channels whether it holds one block
    /// of 8 or two (the same state updates per second either way; docs/performance.md), so the
    /// slowest SM's share is ⌈blocks / SMs⌉ × channels: at (1, 1536, 65536) on 132 SMs, 192
    /// blocks of 8 give 16 channels, 128 blocks of 12 give 12. (Blocks of 4 were slower still
    /// there, the B / C staging shared by half the warps.) 8 where 12 would need more shared memory than the
    /// device gives a block. A function of the shape, as `scanItems`.
    /// WAVEMAMBA_SCAN_CHANNELS (8 or 12) overrides, as does `tuning.scanChannels`.
    func scanChannels(_ s: SelectiveScanShape) -> Int {
        if let v = tuning.scanChannels { return v }
        let sms = max(1, info.multiprocessors)
        func slowest(_ c: Int) -> Int { (s.batch * ((s.channels + c - 1) / c) + sms - 1) / sms * c }
        let fits = max(forwardSharedBytes(s, items: 4, channels: 12), backwardSharedBytes(s, items: 4, channels: 12)) <= info.sharedMemoryPerBlock
        return fits && slowest(12) < slowest(8) ? 12 : 8
    }

    /// Steps each lane of a scan warp owns: a tile, and this backend's checkpoint interval, is
    /// 32 × this many steps. 8 when the blocks fit in one wave at one per SM (half the shuffle
    /// rounds per step, and occupancy is set by the problem there), else 4 (two to three blocks
    /// per SM fit, which beats fewer shuffle rounds; figures in docs/performance.md).
    /// A function of the shape, so the forward and backward of one scan agree.
    /// Always 4 with 12 channels per block (scan.cu has no 12-channel kernel at 8), and where
    /// a tile of 8 would need more shared memory than the device gives a block (the complex
    /// backward at 8 takes 211 KiB: an H100 has 227, an A100 163).
    func scanItems(_ s: SelectiveScanShape) -> Int {
        if scanChannels(s) == 12 { return 4 }
        let want = tuning.scanItems ?? (scanBlocks(s) <= max(1, info.multiprocessors) ? 8 : 4)
        return want == 8 && max(forwardSharedBytes(s, items: 8), backwardSharedBytes(s, items: 8)) > info.sharedMemoryPerBlock ? 4 : want
    }

    /// Thread blocks of a tile kernel before any sequence segments: `scanChannels` channels of one batch item each.
    func scanBlocks(_ s: SelectiveScanShape) -> Int { scanGrid(s).0 * s.batch }

    func scanTile(_ s: SelectiveScanShape) -> Int { 32 * scanItems(s) }

    func scanTiles(_ s: SelectiveScanShape) -> Int { (s.length + scanTile(s) - 1) / scanTile(s) }

    public func selectiveScanCheckpointCount(_ shape: SelectiveScanShape, chunk: Int) -> Int {
        shape.batch * scanTiles(shape) * shape.channels * shape.stateWidth
    }

    /// scan.cu's `ScanArgs` in C layout.
    private func scanArgs(_ x: SelectiveScanTensors, length: Int) -> KernelArguments.Value {
        let s = x.shape
        var b = StructBuilder()
        b.pointer(ptr(x.u)); b.int64(x.u.rowStride)
        b.pointer(ptr(x.delta)); b.int64(x.delta.rowStride)
        b.pointer(ptr(x.z)); b.int64(x.z?.rowStride ?? 0)
        b.pointer(ptr(x.B)); b.int64(x.B.rowStride)
        b.pointer(ptr(x.C)); b.int64(x.C.rowStride)
        b.pointer(ptr(x.A)); b.pointer(ptr(x.AImag))
        b.pointer(ptr(x.D)); b.pointer(ptr(x.deltaBias))
        b.int64(s.batch); b.int64(length); b.int64(s.channels)
        b.int32(s.dState)
        return .bytes(b.finished)
    }

    private func scanGrid(_ s: SelectiveScanShape) -> (Int, Int, Int) {
        ((s.channels + scanChannels(s) - 1) / scanChannels(s), s.batch, 1)
    }

    /// A tile kernel of either pass: steps per lane, channels per block, and lanes per channel's
    /// chain (32, or 16 with two channels a warp: scan.cu's WM_SCAN_KERNELS_L16).
    public struct ScanTileKernel: Equatable, Sendable {
        public var items: Int, channels: Int, lanes: Int
        func name(_ pass: String, _ s: SelectiveScanShape) -> String {
            "wm_scan_\(pass)_\(s.isComplex ? "complex" : "real")_i\(items)_c\(channels)\(lanes == 16 ? "_l16" : "")"
        }
        var threads: Int { lanes * channels }
        /// Steps a tile: the checkpoint interval, the same for both passes of a scan.
        var tile: Int { lanes * items }
        /// Row stride of the staged u / delta / z tiles (scan.cu's wm_row_stride).
        var rowStride: Int { lanes == 32 ? channels + 1 : channels + 2 }
        /// Thread blocks along the channels of one batch item.
        func blocks(_ s: SelectiveScanShape) -> Int { (s.channels + channels - 1) / channels }
    }

    /// The forward's tile kernel: 32 lanes (the layout of `scanItems` / `scanChannels`), or 16
    /// lanes × 8 steps, the same 128-step tiles as the 4-step kernels, so only where those are
    /// the 32-lane choice. 16 lanes where their blocks of 16 channels are at least as
    /// many as SMs; then blocks of 8 channels where those load the SMs more evenly (the slowest
    /// SM's channels, as `scanChannels`), else 16. Faster than 32 lanes wherever its blocks are
    /// at least as many as SMs, slower where the SMs get fewer warps than that (`bench scan`'s
    /// lanes table; docs/scan-kernel.md and docs/performance.md).
    /// WAVEMAMBA_SCAN_FWD_LANES (16 or 32) and WAVEMAMBA_SCAN_FWD_CHANNELS (8, 12 or 16) override.
    public func scanForwardKernel(_ s: SelectiveScanShape) -> ScanTileKernel {
        let own = ScanTileKernel(items: scanItems(s), channels: scanChannels(s), lanes: 32)
        guard own.items == 4 else { return own }
        let sms = max(1, info.multiprocessors)
        func blocks(_ c: Int) -> Int { s.batch * ((s.channels + c - 1) / c) }
        func slowest(_ c: Int) -> Int { (blocks(c) + sms - 1) / sms * c }
        guard (tuning.scanForwardLanes ?? (blocks(16) >= sms ? 16 : 32)) == 16 else { return own }
        let k = ScanTileKernel(items: 8, channels: tuning.scanForwardChannels ?? (slowest(8) < slowest(16) ? 8 : 16), lanes: 16)
        return forwardSharedBytes(s, k, bcBuffers: 1) <= info.sharedMemoryPerBlock ? k : own
    }
    private func forwardKernel(_ s: SelectiveScanShape) -> (name: String, block: (Int, Int, Int), kernel: ScanTileKernel) {
        let k = scanForwardKernel(s)
        return (k.name("fwd", s), (k.threads, 1, 1), k)
    }

    /// The backward's tile kernel, as `scanForwardKernel`: 32 lanes, or 16 lanes × 8 steps in
    /// blocks of 16 (or 8, 12) channels where the tiles are 128 steps. 16 only for complex and
    /// only where the blocks of 16 fill their waves to ≥ 90 % (one block an SM: 198 registers and
    /// 184 KiB of shared memory). Against 32 lanes (`bench scan`'s backward-lanes table) it pays
    /// for complex where its blocks fill their waves and loses where a second wave is mostly
    /// empty; real loses (its 32-lane kernel keeps three blocks an SM), so real stays at 32
    /// (docs/performance.md).
    /// WAVEMAMBA_SCAN_BWD_LANES (16 or 32) and WAVEMAMBA_SCAN_BWD_CHANNELS (8, 12 or 16) override.
    public func scanBackwardKernel(_ s: SelectiveScanShape) -> ScanTileKernel {
        let own = ScanTileKernel(items: scanItems(s), channels: scanChannels(s), lanes: 32)
        guard own.items == 4 else { return own }
        let sms = max(1, info.multiprocessors), blocks = s.batch * ((s.channels + 15) / 16)
        let filled = Double(blocks) / Double((blocks + sms - 1) / sms * sms)
        guard (tuning.scanBackwardLanes ?? (s.isComplex && filled >= 0.9 ? 16 : 32)) == 16 else { return own }
        let k = ScanTileKernel(items: 8, channels: tuning.scanBackwardChannels ?? 16, lanes: 16)
        return backwardSharedBytes(s, k) <= info.sharedMemoryPerBlock ? k : own
    }

    /// B / C columns staged at once (scan.cu's wm_group): the next power of two ≥ W, in 2…32.
    static func scanGroup(_ width: Int) -> Int {
        var g = 2
        while g < width && g < 32 { g <<= 1 }
        return g
    }

    /// Row stride of a staged B / C tile (scan.cu's wm_bc_stride): G + 1, and G + 2 for complex
    /// (even, so that a state's (re, im) pair is one 64-bit load).
    static func scanBCStride(_ s: SelectiveScanShape) -> Int { scanGroup(s.stateWidth) + (s.isComplex ? 2 : 1) }

    /// Dynamic shared memory of the tile kernels in bytes (scan.cu's layout: two buffers, then
    /// the carried values).
    private func forwardSharedBytes(_ s: SelectiveScanShape, items: Int? = nil, channels: Int? = nil, bcBuffers: Int = 2) -> Int {
        forwardSharedBytes(s, ScanTileKernel(items: items ?? scanItems(s), channels: channels ?? scanChannels(s), lanes: 32), bcBuffers: bcBuffers)
    }
    private func forwardSharedBytes(_ s: SelectiveScanShape, _ k: ScanTileKernel, bcBuffers: Int) -> Int {
        let T = k.tile, cpb = k.channels, rs = k.rowStride, W = s.stateWidth, GS = Self.scanBCStride(s)
        return 4 * (2 * 3 * rs * T + bcBuffers * 2 * GS * T + 2 * cpb * W)
    }

    /// B / C tile buffers of the forward (scan.cu's bcBuffers): 2, so the next tile's B / C load
    /// while this one computes; 1 where that lets more blocks share an SM (the driver's occupancy
    /// for both sizes). Measured on an H200 at (16, 1024, 16384, 16) complex, the one shape of
    /// the anchor where it changes the count (2 → 3 blocks): see `bench scan`'s one-buffer row.
    /// WAVEMAMBA_SCAN_BC_BUFFERS (1 or 2) overrides.
    public func scanBCBuffers(_ s: SelectiveScanShape) -> Int {
        if let v = tuning.scanBCBuffers { return v }
        let (name, block, k) = forwardKernel(s)
        let one = forwardSharedBytes(s, k, bcBuffers: 1), two = forwardSharedBytes(s, k, bcBuffers: 2)
        if two > info.sharedMemoryPerBlock { return 1 }
        return blocksPerMultiprocessor(.scan, name, threads: block.0, shared: one) > blocksPerMultiprocessor(.scan, name, threads: block.0, shared: two) ? 1 : 2
    }
    private func backwardSharedBytes(_ s: SelectiveScanShape, items: Int? = nil, channels: Int? = nil) -> Int {
        backwardSharedBytes(s, ScanTileKernel(items: items ?? scanItems(s), channels: channels ?? scanChannels(s), lanes: 32))
    }
    private func backwardSharedBytes(_ s: SelectiveScanShape, _ k: ScanTileKernel) -> Int {
        let T = k.tile, cpb = k.channels, rs = k.rowStride, W = s.stateWidth, GS = Self.scanBCStride(s)
        let reduceStates = !s.isComplex && cpb == 12 ? 4 : 2   // scan.cu's wm_bwd_reduce_states
        return 4 * (2 * (4 * rs * T + cpb * W) + 2 * GS * T + reduceStates * (s.isComplex ? 4 : 2) * cpb * T + 3 * cpb * W)
    }

    /// Whether the backward may add dB / dC by vector atomics of K = RG·(1 or 2) floats (scan.cu's
    /// wm_red; RG as wm_bwd_reduce_states): both tensors' rows start on 4·K-byte boundaries.
    /// (Column views of a wider gradient, as x_proj's, can break that; they take scalar atomics.)
    func vectorAtomics(_ s: SelectiveScanShape, dB: Tensor, dC: Tensor) -> Bool {
        guard tuning.scanVectorAtomics, info.computeCapability.major >= 9 else { return false }
        let rg = !s.isComplex && scanBackwardKernel(s).channels == 12 ? 4 : 2, k = rg * (s.isComplex ? 2 : 1)
        return [dB, dC].allSatisfy { ptr($0) % UInt64(4 * k) == 0 && $0.rowStride % k == 0 }
    }

    private func validate(_ x: SelectiveScanTensors) {
        let s = x.shape
        precondition(!s.isComplex || x.AImag != nil, "selective scan: complex scan needs AImag")
        precondition(x.u.rows == s.batch * s.length && x.B.columns >= s.stateWidth, "selective scan: tensors do not match \(s)")
        // The kernels read every row with these strides and no bounds (as the CPU's validate()).
        precondition(x.u.rowStride >= s.channels && x.delta.rowStride >= s.channels && (x.z?.rowStride ?? s.channels) >= s.channels
                     && x.B.rowStride >= s.stateWidth && x.C.rowStride >= s.stateWidth, "selective scan: a row stride is below its width")
        precondition(s.dState >= 1 && s.stateWidth <= Self.scanMaxWidth,
                     "selective scan on CUDA: dState \(s.dState) is not supported (state width ≤ \(Self.scanMaxWidth): N ≤ 128 real, ≤ 64 complex)")
    }

    /// Sequence segments and tiles per segment: only when batch·D/8 blocks would leave at
    /// least half the SMs idle, up to one block per SM (measured on an H100: at (4, 256, 16384)
    /// with 128 blocks, 5 segments were slower than none: the end-state pass, the combine and
    /// a second wave cost more than the parallelism gained), each segment ≥ 8 tiles.
    /// WAVEMAMBA_SCAN_SEGMENTS overrides, for experiments.
    func scanSegments(_ s: SelectiveScanShape) -> (segments: Int, tilesPerSegment: Int) {
        let tiles = scanTiles(s)
        let blocks = max(1, scanBlocks(s))
        let sms = max(1, info.multiprocessors)
        var want = 2 * blocks <= sms ? sms / blocks : 1
        if let v = tuning.scanSegments { want = v }
        let segments = max(1, min(want, tiles / 8))
        let perSegment = (tiles + segments - 1) / segments
        return ((tiles + perSegment - 1) / perSegment, perSegment)
    }

    /// scan.cu's `SegArgs`.
    private func segArgs(initial: Tensor?, end: Tensor?, sum: Tensor?, tilesPerSegment: Int, segments: Int, base: Int) -> KernelArguments.Value {
        var b = StructBuilder()
        b.pointer(ptr(initial)); b.pointer(ptr(end)); b.pointer(ptr(sum))
        b.int64(tilesPerSegment); b.int32(segments); b.int32(base)
        return .bytes(b.finished)
    }

    /// Values carried across segments (scan.cu's wm_scan_combine): forward start states, or
    /// (reverse) the adjoints entering each segment's end.
    private func combine(_ x: SelectiveScanTensors, sum: Tensor, end: Tensor, into starts: Tensor, segments: Int, reverse: Bool) {
        let s = x.shape
        let n = s.batch * s.channels * s.dState
        var args: [Arg] = [.pointer(ptr(x.A))]
        if s.isComplex { args.append(.pointer(ptr(x.AImag))) }
        args += [.pointer(ptr(sum)), .pointer(ptr(end)), .pointer(ptr(starts)), .int64(s.batch), .int64(segments),
                 .int64(s.channels), .int32(Int32(s.dState)), .int32(reverse ? 1 : 0)]
        launch(.scan, "wm_scan_combine_\(s.isComplex ? "complex" : "real")", grid: ((n + 127) / 128, 1, 1), block: (128, 1, 1), args)
    }

    private func forward(_ x: SelectiveScanTensors, out: Tensor?, checkpoints: Tensor?, lastState: Tensor?) {
        let s = x.shape
        let (segments, perSegment) = scanSegments(s)
        let (name, block, k) = forwardKernel(s)
        let cb = k.blocks(s), batch = s.batch
        let bcBuffers = scanBCBuffers(s), shared = forwardSharedBytes(s, k, bcBuffers: bcBuffers)
        var starts: Tensor? = nil
        if segments > 1 {
            // Each segment but the last from a zero state: its end state and Σ softplus(Δ); then
            // every segment's true start state.
            let end = scratch(s.batch * segments * s.channels * s.stateWidth), sum = scratch(s.batch * segments * s.channels)
            launch(.scan, name, grid: (cb, batch, segments - 1), block: block, shared: shared,
                   [scanArgs(x, length: s.length), .pointer(0), .int64(0), .pointer(0), .pointer(0),
                    segArgs(initial: nil, end: end, sum: sum, tilesPerSegment: perSegment, segments: segments, base: 0), .int32(Int32(bcBuffers))])
            let st = scratch(s.batch * segments * s.channels * s.stateWidth)
            combine(x, sum: sum, end: end, into: st, segments: segments, reverse: false)
            starts = st
        }
        launch(.scan, name, grid: (cb, batch, segments), block: block, shared: shared,
               [scanArgs(x, length: s.length), .pointer(ptr(out)), .int64(out?.rowStride ?? 0), .pointer(ptr(checkpoints)),
                .pointer(ptr(lastState)),
                segArgs(initial: starts, end: nil, sum: nil, tilesPerSegment: perSegment, segments: segments, base: 0), .int32(Int32(bcBuffers))])
    }

    public func selectiveScan(_ x: SelectiveScanTensors, out: Tensor, lastState: Tensor?, checkpoints: Tensor?, chunk: Int) {
        validate(x)
        let s = x.shape
        if s.batch == 0 || s.length == 0 || s.channels == 0 {
            if let lastState { fill(lastState, value: 0) }
            return
        }
        // This backend's checkpoint layout (not the CPU's): a buffer sized by the CPU's count is too small.
        precondition(checkpoints.map { $0.count >= selectiveScanCheckpointCount(s, chunk: chunk) } ?? true,
                     "selective scan: checkpoints hold \(checkpoints?.count ?? 0) floats, this backend writes "
                     + "\(selectiveScanCheckpointCount(s, chunk: chunk)) (size them with selectiveScanCheckpointCount)")
        forward(x, out: out, checkpoints: checkpoints, lastState: lastState)
    }

    public func selectiveScanBackward(_ x: SelectiveScanTensors, dOut: Tensor, checkpoints: Tensor?, chunk: Int, grads g: SelectiveScanGradientTensors) {
        validate(x)
        let s = x.shape
        precondition(x.z == nil || g.dz != nil, "selective scan backward: inputs have z, so dz is required")
        // The complex kernel adds into dAImag unconditionally (a null pointer would fault on the device).
        precondition(!s.isComplex || g.dAImag != nil, "selective scan backward: dAImag is required for a complex scan")
        precondition(checkpoints.map { $0.count >= selectiveScanCheckpointCount(s, chunk: chunk) } ?? true,
                     "selective scan backward: checkpoints smaller than selectiveScanCheckpointCount")
        // Sums by atomics start from zero.
        for t in [g.dB, g.dC, g.dA] { fill(t, value: 0) }
        for t in [g.dAImag, g.dD, g.dDeltaBias] { if let t { fill(t, value: 0) } }
        if s.batch == 0 || s.length == 0 || s.channels == 0 { return }
        var starts = checkpoints
        if starts == nil && scanTiles(s) > 1 {
            let st = scratch(selectiveScanCheckpointCount(s, chunk: chunk))
            forward(x, out: nil, checkpoints: st, lastState: nil)
            starts = st
        }
        var gb = StructBuilder()
        gb.pointer(ptr(g.du)); gb.int64(g.du.rowStride)
        gb.pointer(ptr(g.dDelta)); gb.int64(g.dDelta.rowStride)
        gb.pointer(ptr(g.dz)); gb.int64(g.dz?.rowStride ?? 0)
        gb.pointer(ptr(g.dB)); gb.int64(g.dB.rowStride)
        gb.pointer(ptr(g.dC)); gb.int64(g.dC.rowStride)
        gb.pointer(ptr(g.dA)); gb.pointer(ptr(g.dAImag)); gb.pointer(ptr(g.dD)); gb.pointer(ptr(g.dDeltaBias))
        gb.int32(vectorAtomics(s, dB: g.dB, dC: g.dC) ? 1 : 0)
        let k = scanBackwardKernel(s), name = k.name("bwd", s), block = (k.threads, 1, 1), shared = backwardSharedBytes(s, k)
        let (segments, perSegment) = scanSegments(s)
        let cb = k.blocks(s), batch = s.batch
        var incoming: Tensor? = nil
        if segments > 1 {
            // Each segment but the first from a zero adjoint at its end: the adjoint leaving its
            // start and Σ softplus(Δ); then the adjoint entering every segment's end.
            let end = scratch(s.batch * segments * s.channels * s.stateWidth), sum = scratch(s.batch * segments * s.channels)
            launch(.scan, name, grid: (cb, batch, segments - 1), block: block, shared: shared,
                   [scanArgs(x, length: s.length), .pointer(ptr(starts)), .pointer(ptr(dOut)), .int64(dOut.rowStride), .bytes(gb.finished),
                    segArgs(initial: nil, end: end, sum: sum, tilesPerSegment: perSegment, segments: segments, base: 1)])
            let inc = scratch(s.batch * segments * s.channels * s.stateWidth)
            combine(x, sum: sum, end: end, into: inc, segments: segments, reverse: true)
            incoming = inc
        }
        launch(.scan, name, grid: (cb, batch, segments), block: block, shared: shared,
               [scanArgs(x, length: s.length), .pointer(ptr(starts)), .pointer(ptr(dOut)), .int64(dOut.rowStride), .bytes(gb.finished),
                segArgs(initial: incoming, end: nil, sum: nil, tilesPerSegment: perSegment, segments: segments, base: 0)])
    }

    public func selectiveScanStep(_ x: SelectiveScanTensors, state: Tensor, out: Tensor) {
        validate(x)
        let s = x.shape
        precondition(s.length == 1, "selective scan step: length must be 1")
        precondition(state.isContiguous && state.count == s.batch * s.channels * s.stateWidth,
                     "selective scan step: state \(state.shape) is not (batch \(s.batch), D \(s.channels), W \(s.stateWidth))")
        // Lanes per channel: the states spread over up to 32 lanes of a warp.
        var lanes = 1
        while lanes < min(s.dState, 32) { lanes <<= 1 }
        let n = s.batch * s.channels * lanes
        precondition(n < Int(Int32.max), "selective scan step: batch·D·lanes \(n) must stay below 2³¹ (32-bit indices)")
        launch(.scan, "wm_scan_step_\(s.isComplex ? "complex" : "real")", grid: ((n + 127) / 128, 1, 1), block: (128, 1, 1),
               [scanArgs(x, length: 1), .pointer(ptr(state)), .pointer(ptr(out)), .int64(out.rowStride), .int32(Int32(lanes))])
    }
}
