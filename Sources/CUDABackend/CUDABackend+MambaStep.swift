import Engine

// The fused generation step of a residual Mamba block (mamba_step.cu describes the kernel).
extension CUDABackend {
    /// mamba_step.cu's WM_STEP_THREADS and WM_STEP_PART.
    static let fusedStepThreads = 256
    static let fusedStepPartFloats = 8192

    /// Streams per thread block: the fewest (1, 2, 4, 8) whose blocks are all resident at once,
    /// two to an SM (the kernel's 128 registers a thread allow two). Each block reads every
    /// weight once whatever its stream count; fewer streams per block spread the work over more
    /// warps, which this latency-bound kernel needs more than it needs the weights reread less.
    /// Measured on an H100 at batch 256 (RTF complex / real): 1 stream 36.8 / 48.4, 2 34.1 / 46.4,
    /// 4 26.5 / 37.9, 8 16.6 / 25.3 (with the weights streamed through shared memory; one
    /// stream was also best with them read into registers, 39.8 / 44.1 against 34.6 / 41.8 for 2).
    public func fusedStepStreams(batch: Int) -> Int {
        if let v = fusedStepStreamsOverride { return v }
        let slots = 2 * max(1, info.multiprocessors)
        for s in [1, 2, 4] where (batch + s - 1) / s <= slots { return s }
        return 8
    }

    /// Shared memory a block may ask for: 96 KiB fits every GPU from sm_80 on (sm_86/89 opt in
    /// to 99 KiB, sm_80 to 163, sm_90 to 227).
    static let fusedStepSharedLimit = 96 << 10

    /// Shared memory of one block in bytes: mamba_step.cu's u, xz, dbl and dl for `s` streams, then `part`.
    static func fusedStepSharedBytes(streams s: Int, _ p: ResidualMambaStep) -> Int {
        4 * (s * (p.dModel + 3 * p.dInner + p.xProjColumns) + fusedStepPartFloats)
    }

    public func residualMambaStep(_ p: ResidualMambaStep, x: Tensor, out: Tensor) {
        let batch = p.batch
        precondition(x.isContiguous && out.isContiguous && x.shape == [batch, p.dModel] && out.shape == x.shape,
                     "residualMambaStep: x \(x.shape) and out \(out.shape) must be contiguous (batch \(batch), dModel \(p.dModel))")
        precondition(p.convState.isContiguous && p.ssmState.isContiguous && p.dConv >= 1, "residualMambaStep: states must be contiguous")
        var s = fusedStepStreams(batch: batch)
        precondition([1, 2, 4, 8].contains(s), "fused Mamba step: \(s) streams per block (1, 2, 4 or 8)")
        // Every GEMM's results for the block's streams pass through `part`, and everything must fit the shared memory.
        let widest = max(2 * p.dInner, p.dModel, p.xProjColumns)
        while s > 1 && (s * widest > Self.fusedStepPartFloats || Self.fusedStepSharedBytes(streams: s, p) > Self.fusedStepSharedLimit) { s /= 2 }
        let shared = Self.fusedStepSharedBytes(streams: s, p)
        precondition(shared <= Self.fusedStepSharedLimit && widest <= Self.fusedStepPartFloats,
                     "fused Mamba step: \(shared) bytes of shared memory for dModel \(p.dModel), dInner \(p.dInner) exceed "
                     + "\(Self.fusedStepSharedLimit), or 2·dInner exceeds \(Self.fusedStepPartFloats) (switch it off with WAVEMAMBA_CUDA_FUSED_STEP=0)")
        var b = StructBuilder()
        b.pointer(ptr(x)); b.pointer(ptr(out)); b.int64(batch)
        b.pointer(ptr(p.normWeight)); b.pointer(ptr(p.normBias))
        b.pointer(ptr(p.inProjT))
        b.pointer(ptr(p.convWeight)); b.pointer(ptr(p.convBias))
        b.pointer(ptr(p.xProjT))
        b.pointer(ptr(p.dtProjT)); b.pointer(ptr(p.dtBias))
        b.pointer(ptr(p.A)); b.pointer(ptr(p.AImag))
        b.pointer(ptr(p.D))
        b.pointer(ptr(p.outProjT))
        b.pointer(ptr(p.convState)); b.pointer(ptr(p.ssmState))
        b.int32(p.dModel); b.int32(p.dInner); b.int32(p.dtRank); b.int32(p.dState); b.int32(p.dConv); b.int32(p.xProjColumns)
        b.float(Self.normEps)
        launch(.mambaStep, "wm_mamba_step_\(p.isComplex ? "complex" : "real")_s\(s)", grid: ((batch + s - 1) / s, 1, 1),
               block: (Self.fusedStepThreads, 1, 1), shared: shared, [.bytes(b.finished)])
    }
}
