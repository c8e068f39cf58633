import Engine
import Kernels

// The selective scan on the GPU (scan.cu describes the kernels). This backend's checkpoints
// are the start states of every chunk of `CUDABackend.scanChunk` steps, layout
// (batch, chunks, D, W); the `chunk` argument of the protocol is the CPU's interval and is
// not used here (the count reported by `selectiveScanCheckpointCount` is this layout's).
extension CUDABackend {
    /// Lanes per channel (a power of two ≤ 32) for N states; each lane owns ≤ 2 states.
    static func scanLanes(_ dState: Int) -> Int {
        precondition(dState >= 1 && dState <= 64, "selective scan on CUDA: dState \(dState) is not supported (1…64)")
        var p = 1
        while p < min(dState, 32) { p <<= 1 }
        return p
    }

    static func scanChunks(_ s: SelectiveScanShape) -> Int { (s.length + scanChunk - 1) / scanChunk }

    public func selectiveScanCheckpointCount(_ shape: SelectiveScanShape, chunk: Int) -> Int {
        shape.batch * Self.scanChunks(shape) * shape.channels * shape.stateWidth
    }

    /// scan.cu's `ScanArgs` in C layout.
    private func scanArgs(_ x: SelectiveScanTensors, length: Int, T: Int) -> KernelArguments.Value {
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
        b.int32(s.dState); b.int32(Self.scanLanes(s.dState)); b.int32(T)
        return .bytes(b.finished)
    }

    private func scanGrid(_ s: SelectiveScanShape, chunks: Int) -> (Int, Int, Int) {
        let perBlock = 128 / Self.scanLanes(s.dState)
        return (chunks, (s.channels + perBlock - 1) / perBlock, s.batch)
    }

    private func validate(_ x: SelectiveScanTensors) {
        let s = x.shape
        precondition(!s.isComplex || x.AImag != nil, "selective scan: complex scan needs AImag")
        precondition(x.u.rows == s.batch * s.length && x.B.columns >= s.stateWidth, "selective scan: tensors do not match \(s)")
        // The kernels read every row with these strides and no bounds (as the CPU's validate()).
        precondition(x.u.rowStride >= s.channels && x.delta.rowStride >= s.channels && (x.z?.rowStride ?? s.channels) >= s.channels
                     && x.B.rowStride >= s.stateWidth && x.C.rowStride >= s.stateWidth, "selective scan: a row stride is below its width")
        _ = Self.scanLanes(s.dState)
    }

    /// Chunk start states into `starts` (batch, chunks, D, W): passes 1 and 2 of the forward.
    private func scanStarts(_ x: SelectiveScanTensors, into starts: Tensor) {
        let s = x.shape, chunks = Self.scanChunks(s)
        let kind = s.isComplex ? "complex" : "real"
        let hEnd = scratch(s.batch * chunks * s.channels * s.stateWidth)
        let sumS = scratch(s.batch * chunks * s.channels)
        launch(.scan, "wm_scan_chunk_state_\(kind)", grid: scanGrid(s, chunks: chunks), block: (128, 1, 1),
               [scanArgs(x, length: s.length, T: Self.scanChunk), .pointer(ptr(hEnd)), .pointer(ptr(sumS))])
        combine(x, sumS: sumS, local: hEnd, starts: starts, reverse: false)
    }

    private func combine(_ x: SelectiveScanTensors, sumS: Tensor, local: Tensor, starts: Tensor, reverse: Bool) {
        let s = x.shape, chunks = Self.scanChunks(s)
        let n = s.batch * s.channels * s.dState
        var args: [Arg] = [.pointer(ptr(x.A))]
        if s.isComplex { args.append(.pointer(ptr(x.AImag))) }
        args += [.pointer(ptr(sumS)), .pointer(ptr(local)), .pointer(ptr(starts)), .int64(s.batch), .int64(chunks),
                 .int64(s.channels), .int32(Int32(s.dState)), .int32(reverse ? 1 : 0)]
        launch(.scan, "wm_scan_combine_\(s.isComplex ? "complex" : "real")", grid: ((n + 127) / 128, 1, 1), block: (128, 1, 1), args)
    }

    public func selectiveScan(_ x: SelectiveScanTensors, out: Tensor, lastState: Tensor?, checkpoints: Tensor?, chunk: Int) {
        validate(x)
        let s = x.shape
        if s.batch == 0 || s.length == 0 || s.channels == 0 {
            if let lastState { fill(lastState, value: 0) }
            return
        }
        let chunks = Self.scanChunks(s)
        // This backend's checkpoint layout (not the CPU's): a buffer sized by the CPU's count is too small.
        precondition(checkpoints.map { $0.count >= selectiveScanCheckpointCount(s, chunk: chunk) } ?? true,
                     "selective scan: checkpoints hold \(checkpoints?.count ?? 0) floats, this backend writes "
                     + "\(selectiveScanCheckpointCount(s, chunk: chunk)) (size them with selectiveScanCheckpointCount)")
        var starts: Tensor? = nil
        if chunks > 1 {
            let st = checkpoints ?? scratch(selectiveScanCheckpointCount(s, chunk: chunk))
            scanStarts(x, into: st)
            starts = st
        } else if let checkpoints {
            fill(checkpoints, value: 0)
        }
        launch(.scan, "wm_scan_chunk_output_\(s.isComplex ? "complex" : "real")", grid: scanGrid(s, chunks: chunks), block: (128, 1, 1),
               [scanArgs(x, length: s.length, T: Self.scanChunk), .pointer(ptr(starts)), .pointer(ptr(lastState)),
                .pointer(ptr(out)), .int64(out.rowStride)])
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
        let chunks = Self.scanChunks(s)
        let count = selectiveScanCheckpointCount(s, chunk: chunk)
        let starts: Tensor
        if let checkpoints {
            starts = checkpoints
        } else {
            starts = scratch(count)
            if chunks > 1 { scanStarts(x, into: starts) } else { fill(starts, value: 0) }
        }
        let kind = s.isComplex ? "complex" : "real"
        let args = scanArgs(x, length: s.length, T: Self.scanChunk)
        let incoming = scratch(count)
        if chunks > 1 {
            let sumS = scratch(s.batch * chunks * s.channels)
            launch(.scan, "wm_scan_bwd_chunk_carry_\(kind)", grid: scanGrid(s, chunks: chunks), block: (128, 1, 1),
                   [args, .pointer(ptr(dOut)), .int64(dOut.rowStride), .pointer(ptr(incoming)), .pointer(ptr(sumS))])
            combine(x, sumS: sumS, local: incoming, starts: incoming, reverse: true)
        } else {
            fill(incoming, value: 0)
        }
        var gb = StructBuilder()
        gb.pointer(ptr(g.du)); gb.int64(g.du.rowStride)
        gb.pointer(ptr(g.dDelta)); gb.int64(g.dDelta.rowStride)
        gb.pointer(ptr(g.dz)); gb.int64(g.dz?.rowStride ?? 0)
        gb.pointer(ptr(g.dB)); gb.int64(g.dB.rowStride)
        gb.pointer(ptr(g.dC)); gb.int64(g.dC.rowStride)
        gb.pointer(ptr(g.dA)); gb.pointer(ptr(g.dAImag)); gb.pointer(ptr(g.dD)); gb.pointer(ptr(g.dDeltaBias))
        launch(.scan, "wm_scan_bwd_chunk_\(kind)", grid: scanGrid(s, chunks: chunks), block: (128, 1, 1),
               [args, .pointer(ptr(starts)), .pointer(ptr(incoming)), .pointer(ptr(dOut)), .int64(dOut.rowStride), .bytes(gb.finished)])
    }

    public func selectiveScanStep(_ x: SelectiveScanTensors, state: Tensor, out: Tensor) {
        validate(x)
        let s = x.shape
        precondition(s.length == 1, "selective scan step: length must be 1")
        precondition(state.isContiguous && state.count == s.batch * s.channels * s.stateWidth,
                     "selective scan step: state \(state.shape) is not (batch \(s.batch), D \(s.channels), W \(s.stateWidth))")
        // One chunk of one step whose start and end state are both `state` (batch, D, W).
        launch(.scan, "wm_scan_chunk_output_\(s.isComplex ? "complex" : "real")", grid: scanGrid(s, chunks: 1), block: (128, 1, 1),
               [scanArgs(x, length: 1, T: 1), .pointer(ptr(state)), .pointer(ptr(state)), .pointer(ptr(out)), .int64(out.rowStride)])
    }
}
