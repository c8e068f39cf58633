import Engine

// The fused generation step of a residual Mamba block (mamba_step.cu describes the kernel).
extension CUDABackend {
    /// mamba_step.cu's WM_STEP_PART.
    static let fusedStepPartFloats = 8192
    /// mamba_step.cu's WM_STACK_MAX: blocks in one launch's parameters.
    static let fusedStackMaximum = 16

    /// Threads per block of the fused step: 512 (one block an SM: the kernel's 128 registers a
    /// thread fill the register file) while one stream per block fills at most every SM, else
    /// 256 (two blocks an SM, one stream each: while one block waits on a barrier or a load the
    /// other issues). WAVEMAMBA_FUSED_STEP_THREADS fixes it. Measured on an H100 (RTF complex /
    /// real, SaShiMi-small, stage kernels after the instruction diet): batch 16, 512 threads
    /// 4.97 / 5.55 against 256 threads 4.70 / 5.47; batch 256, 512 threads × 2 streams 51.7 /
    /// 66.3 against 256 × 1 57.5 / 70.5 (and 256 × 2 42.8 / 59.6).
    public func fusedStepThreads(batch: Int) -> Int {
        if let v = fusedStepThreadsOverride { return v }
        return batch > max(1, info.multiprocessors) ? 256 : 512
    }

    /// Streams per thread block: the fewest (1, 2, 4, 8) whose blocks are all resident at once
    /// (one 512-thread or two 256-thread blocks an SM). Each block reads every weight once
    /// whatever its stream count; fewer streams per block spread the work over more warps,
    /// which this latency-bound kernel needs more than it needs the weights reread less.
    /// Measured on an H100 at batch 256 (ncu, µs per outer / middle / centre stage launch of
    /// 8 blocks, complex, 512 threads): 1 stream (two waves) 281 / 525 / 1581, 2 streams 194 /
    /// 415 / 914, 4 streams 334 / 647 / —.
    public func fusedStepStreams(batch: Int) -> Int {
        if let v = fusedStepStreamsOverride { return v }
        let slots = (fusedStepThreads(batch: batch) == 512 ? 1 : 2) * max(1, info.multiprocessors)
        for s in [1, 2, 4] where (batch + s - 1) / s <= slots { return s }
        return 8
    }

    /// Shared memory a block may ask for: 96 KiB fits every GPU from sm_80 on (sm_86/89 opt in
    /// to 99 KiB, sm_80 to 163, sm_90 to 227).
    static let fusedStepSharedLimit = 96 << 10

    /// Shared memory of one block in bytes: mamba_step.cu's xs, u, xz, dbl and dl for `s` streams,
    /// then `part`, then x0 (the stage's input, for the stage residual).
    static func fusedStepSharedBytes(streams s: Int, _ p: ResidualMambaStep) -> Int {
        4 * (s * (3 * p.dModel + 3 * p.dInner + p.xProjColumns) + fusedStepPartFloats)
    }

    /// The fused step while its thread blocks together read at most `fusedStepMaxTraffic` bytes
    /// of weights a block-step (each reads all of them); past that the unfused step's GEMMs,
    /// which read each weight about once, are faster.
    public func fusedStepPays(_ step: ResidualMambaStep) -> Bool {
        let streams = fusedStepStreams(batch: step.batch)
        return step.projectionBytes * ((step.batch + streams - 1) / streams) <= fusedStepMaxTraffic
    }

    public func residualMambaSteps(_ steps: ArraySlice<ResidualMambaStep>, x: Tensor, addend: Tensor?, out: Tensor, stageResidual: Bool) {
        guard let p = steps.first else {
            precondition(addend == nil && !stageResidual, "residualMambaSteps: no blocks")
            copy2D(from: x, to: out, accumulate: false)
            return
        }
        let batch = p.batch
        precondition(x.isContiguous && out.isContiguous && x.shape == [batch, p.dModel] && out.shape == x.shape
                     && addend.map { $0.isContiguous && $0.shape == x.shape } != false,
                     "residualMambaSteps: x \(x.shape), addend \(addend?.shape ?? []) and out \(out.shape) must be contiguous (batch \(batch), dModel \(p.dModel))")
        for q in steps {
            precondition(q.dModel == p.dModel && q.dInner == p.dInner && q.dtRank == p.dtRank && q.dState == p.dState && q.dConv == p.dConv
                          && q.isComplex == p.isComplex && q.batch == batch && q.xProjColumns == p.xProjColumns,
                          "residualMambaSteps: the blocks of one launch must share their widths, kind and batch")
            precondition(q.convState.isContiguous && q.ssmState.isContiguous && q.dConv >= 1, "residualMambaSteps: states must be contiguous")
        }
        var s = fusedStepStreams(batch: batch)
        precondition([1, 2, 4, 8].contains(s), "fused Mamba step: \(s) streams per block (1, 2, 4 or 8)")
        // Every GEMM's results for the block's streams pass through `part`, and everything must fit the shared memory.
        let widest = max(2 * p.dInner, p.dModel, p.xProjColumns)
        while s > 1 && (s * widest > Self.fusedStepPartFloats || Self.fusedStepSharedBytes(streams: s, p) > Self.fusedStepSharedLimit) { s /= 2 }
        let shared = Self.fusedStepSharedBytes(streams: s, p)
        precondition(shared <= Self.fusedStepSharedLimit && widest <= Self.fusedStepPartFloats,
                     "fused Mamba step: \(shared) bytes of shared memory for dModel \(p.dModel), dInner \(p.dInner) exceed "
                     + "\(Self.fusedStepSharedLimit), or 2·dInner exceeds \(Self.fusedStepPartFloats) (switch it off with WAVEMAMBA_CUDA_FUSED_STEP=0)")
        let perLaunch = fusedStackLayers
        precondition((addend == nil && !stageResidual) || steps.count <= perLaunch,
                     "residualMambaSteps: an addend or the stage residual needs the run in one launch (\(steps.count) blocks, \(perLaunch) a launch)")
        let grid = (batch + s - 1) / s
        var first = steps.startIndex
        var input = x
        while first < steps.endIndex {
            let run = steps[first..<min(first + perLaunch, steps.endIndex)]
            var b = StructBuilder()
            b.pointer(ptr(input)); b.pointer(ptr(addend)); b.pointer(ptr(out)); b.int64(batch)
            b.int32(run.count)
            b.int32(p.dModel); b.int32(p.dInner); b.int32(p.dtRank); b.int32(p.dState); b.int32(p.dConv); b.int32(p.xProjColumns)
            b.float(Self.normEps)
            // One thread block (batch 1) prefetching a whole block's weights alone was slower.
            b.int32((fusedStepPrefetchWeights && grid > 1 ? 1 : 0) | (fusedStepStreamStates ? 2 : 0) | (stageResidual ? 4 : 0))
            // All WM_STACK_MAX layer slots are passed; those past the run stay zero.
            for i in 0..<Self.fusedStackMaximum {
                let q: ResidualMambaStep? = i < run.count ? run[run.startIndex + i] : nil
                let tensors: [Tensor?] = [q?.normWeight, q?.normBias, q?.inProjT, q?.convWeight, q?.convBias, q?.xProjT, q?.dtProjT,
                                          q?.dtBias, q?.A, q?.AImag, q?.D, q?.outProjT, q?.convState, q?.ssmState]
                for t in tensors { b.pointer(ptr(t)) }
            }
            launch(.mambaStep, "wm_mamba_step_\(p.isComplex ? "complex" : "real")_s\(s)", grid: (grid, 1, 1),
                   block: (fusedStepThreads(batch: batch), 1, 1), shared: shared, [.bytes(b.finished)])
            input = out
            first = run.endIndex
        }
    }
}
