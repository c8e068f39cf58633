import Engine

// The fused generation step of a residual Mamba block (mamba_step.cu describes the kernel).
extension CUDABackend {
    /// mamba_step.cu's WM_STEP_PART.
    static let fusedStepPartFloats = 8192

    /// Threads per block of the fused step: 512 (one block an SM: the kernel's 128 registers a
    /// thread fill the register file), or 256 (two) with WAVEMAMBA_FUSED_STEP_THREADS=256.
    /// Measured on an H100 (RTF complex / real, 512 against 256 threads): batch 1 0.352 / 0.381
    /// against 0.330 / 0.369, 16 4.79 / 5.22 against 4.41 / 5.01, 256 48.0 / 58.5 against
    /// 46.4 / 59.1: more warps for one block's latency-bound chain of phases.
    var fusedStepThreads: Int { fusedStepThreadsOverride ?? 512 }

    /// Streams per thread block: the fewest (1, 2, 4, 8) whose blocks are all resident at once
    /// (one 512-thread or two 256-thread blocks an SM). Each block reads every weight once
    /// whatever its stream count; fewer streams per block spread the work over more warps,
    /// which this latency-bound kernel needs more than it needs the weights reread less.
    /// Measured on an H100 at batch 256 (RTF complex / real): 512 threads, 2 streams 48.0 / 58.5,
    /// 1 stream (two waves) 40.4 / 47.7; 256 threads, 1 stream 46.1 / 57.4, 2 streams 40.0 / 49.5.
    public func fusedStepStreams(batch: Int) -> Int {
        if let v = fusedStepStreamsOverride { return v }
        let slots = (fusedStepThreads == 512 ? 1 : 2) * max(1, info.multiprocessors)
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
               block: (fusedStepThreads, 1, 1), shared: shared, [.bytes(b.finished)])
    }
}
