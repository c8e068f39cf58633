import Engine
import FusedSteps

// The fused generation step of a residual Mamba block (mamba_step.cu describes the kernel).
extension CUDABackend {
    /// mamba_step.cu's WM_STEP_PART.
    static let fusedStepPartFloats = 8192
    /// mamba_step.cu's WM_STACK_MAX: blocks in one launch's parameters.
    static let fusedStackMaximum = CUDATuning.fusedStackMaximum

    /// Threads per block of the fused step: 512 (one block an SM: the kernel's 128 registers a
    /// thread fill the register file) while one stream per block fills at most every SM, else
    /// 256 (two blocks an SM, one stream each: while one block waits on a barrier or a load the
    /// other issues). WAVEMAMBA_FUSED_STEP_THREADS fixes it. Both choices won where they are
    /// taken (docs/performance.md, "Fused block step").
    public func fusedStepThreads(batch: Int) -> Int {
        if let v = tuning.fusedStepThreads { return v }
        return batch > max(1, info.multiprocessors) ? 256 : 512
    }

    /// Streams per thread block: the fewest (1, 2, 4, 8) whose blocks are all resident at once
    /// (one 512-thread or two 256-thread blocks an SM). Each block reads every weight once
    /// whatever its stream count; fewer streams per block spread the work over more warps,
    /// which this latency-bound kernel needs more than it needs the weights reread less
    /// (docs/performance.md, "Fused block step").
    public func fusedStepStreams(batch: Int) -> Int {
        if let v = tuning.fusedStepStreams { return v }
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

    /// mamba_step_cluster.cu's WM_CL_PART.
    static let clusterPartFloats = 8192

    /// The cluster step's shape: thread blocks a cluster (4 or 8; each owns dInner / blocks
    /// channels) and streams a cluster (1, 2, 4, 8 or 16).
    public struct ClusterShape: Equatable, Sendable {
        public var blocks: Int
        public var streams: Int
    }

    /// The cluster step's shape for `p` (mamba_step_cluster.cu), or nil where a block takes the
    /// one-block step (mamba_step.cu): on sm_90 and later, for blocks whose dInner splits into
    /// slices of whole 16-byte vectors and which have no one-block kernel compiled for their
    /// width (`fusedStepFixedWidth`), the first of (8 blocks, 1, 2 or 4 streams) whose clusters
    /// are all resident at once (one thread block an SM), fewer streams while the shared memory
    /// would not fit. Past that batch (4 streams × SMs / 8: 66 on an H100 or H200) every SM
    /// already has a stream of its own, and the one-block step, which needs no cluster barriers,
    /// is faster. The cluster step beats the generic one-block kernel up to that batch, loses to
    /// the fixed-width one-block kernels (which is why it is only for widths without one), and
    /// past that batch no cluster shape tried came close to the one-block step
    /// (docs/performance.md, "Fused block step"). `tuning.fusedStepClusterStreams` and
    /// `tuning.fusedStepClusterBlocks` (WAVEMAMBA_CLUSTER_STREAMS, WAVEMAMBA_CLUSTER_BLOCKS) fix
    /// them, at any batch and width; 0 streams is the one-block step.
    public func fusedStepClusterShape(_ p: ResidualMambaStep) -> ClusterShape? {
        guard info.computeCapability.major >= 9, tuning.fusedStepClusterStreams != 0, p.dModel % 4 == 0,
              fusedStepSpecialised || tuning.fusedStepClusterStreams != nil || tuning.fusedStepClusterBlocks != nil else { return nil }
        let sms = max(8, info.multiprocessors)
        let candidates = [(8, 1), (8, 2), (8, 4), (4, 2), (4, 4), (4, 8)].map { ClusterShape(blocks: $0.0, streams: $0.1) }
            .filter { p.dInner % (4 * $0.blocks) == 0 }
        func resident(_ c: ClusterShape) -> Bool { (p.batch + c.streams - 1) / c.streams * c.blocks <= (c.blocks == 8 ? 1 : 2) * sms }
        var shape: ClusterShape
        switch (tuning.fusedStepClusterBlocks, tuning.fusedStepClusterStreams) {
        case let (b?, s?): shape = ClusterShape(blocks: b, streams: s)
        case let (b?, nil):
            guard let c = candidates.first(where: { $0.blocks == b && resident($0) }) ?? candidates.last(where: { $0.blocks == b }) else { return nil }
            shape = c
        case let (nil, s?): shape = ClusterShape(blocks: 8, streams: s)
        case (nil, nil):
            guard fusedStepFixedWidth(p, streams: fusedStepStreams(batch: p.batch), threads: fusedStepThreads(batch: p.batch)) == nil,
                  let c = candidates.first(where: { $0.blocks == 8 && resident($0) }) else { return nil }
            shape = c
        }
        guard p.dInner % (4 * shape.blocks) == 0 else { return nil }
        let widest = max(2 * p.dInner / shape.blocks, p.dModel, p.xProjColumns)
        func fits(_ c: ClusterShape) -> Bool {
            c.streams * widest <= Self.clusterPartFloats && Self.clusterSharedBytes(c, p) <= info.sharedMemoryPerBlock
        }
        while shape.streams > 1 && !fits(shape) { shape.streams /= 2 }
        return fits(shape) ? shape : nil
    }

    /// Shared memory of one thread block of the cluster step: xs, u, outPart, x0, xz, xpPart and
    /// dbl for its streams, then the GEMMs' partial sums.
    static func clusterSharedBytes(_ c: ClusterShape, _ p: ResidualMambaStep) -> Int {
        4 * (c.streams * (4 * p.dModel + 2 * p.dInner / c.blocks + 2 * p.xProjColumns) + clusterPartFloats)
    }

    /// The stage widths mamba_step.cu has one-stream kernels compiled for (WM_MAMBA_STEP_FIXED).
    static let fixedStepWidths: Set<Int> = [64, 128, 256]

    /// `p`'s width when a block of `threads` threads with `streams` streams takes the one-block
    /// kernel compiled for it: SaShiMi's stage shape (dInner = 2·dModel, dState 16, dtRank
    /// ⌈dModel/16⌉, dConv 4) at a width in `fixedStepWidths`, one stream a block; nil for the
    /// generic kernel (any shape, widths read at run time).
    public func fusedStepFixedWidth(_ p: ResidualMambaStep, streams: Int, threads: Int) -> Int? {
        guard fusedStepSpecialised, streams == 1, [256, 512].contains(threads), Self.fixedStepWidths.contains(p.dModel),
              p.dInner == 2 * p.dModel, p.dState == 16, p.dtRank == (p.dModel + 15) / 16, p.dConv == 4 else { return nil }
        return p.dModel
    }

    /// The fused step while its thread blocks (or clusters) together read at most
    /// `tuning.fusedStepMaxTraffic` bytes of weights a block-step (each reads all of them); past that the
    /// unfused step's GEMMs, which read each weight about once, are faster.
    public func fusedStepPays(_ step: ResidualMambaStep) -> Bool {
        let streams = fusedStepClusterShape(step)?.streams ?? fusedStepStreams(batch: step.batch)
        return step.projectionBytes * ((step.batch + streams - 1) / streams) <= tuning.fusedStepMaxTraffic
    }

    public func residualMambaSteps(_ steps: ArraySlice<ResidualMambaStep>, x: Tensor, addend: Tensor?, out: Tensor, stageResidual: Bool) {
        fusedSteps(steps, x: x, addend: addend, out: out, stageResidual: stageResidual, head: nil)
    }

    /// The head rides in the stage's launch (WM_STEP_HEAD) when the stage is one launch, with
    /// classes a multiple of 4 (one-block step) or of 4 × the cluster's blocks (cluster step:
    /// each block a slice of the classes).
    public func residualMambaSteps(_ steps: ArraySlice<ResidualMambaStep>, x: Tensor, addend: Tensor?, out: Tensor, head: StepHead) -> Bool {
        guard tuning.fusedStepHead, let p = steps.first, steps.count <= fusedStackLayers,
              head.width == p.dModel, head.logits.isContiguous, head.logits.shape == [p.batch, head.classes] else { return false }
        if let c = fusedStepClusterShape(p) {
            guard head.classes % (4 * c.blocks) == 0, c.streams * head.classes / c.blocks <= Self.clusterPartFloats else { return false }
        } else {
            guard head.classes % 4 == 0, fusedStepStreams(batch: p.batch) * head.classes <= Self.fusedStepPartFloats else { return false }
        }
        fusedSteps(steps, x: x, addend: addend, out: out, stageResidual: true, head: head)
        return true
    }

    private func fusedSteps(_ steps: ArraySlice<ResidualMambaStep>, x: Tensor, addend: Tensor?, out: Tensor, stageResidual: Bool,
                            head: StepHead?) {
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
        let perLaunch = fusedStackLayers
        precondition((addend == nil && !stageResidual) || steps.count <= perLaunch,
                     "residualMambaSteps: an addend or the stage residual needs the run in one launch (\(steps.count) blocks, \(perLaunch) a launch)")
        let flags = (tuning.fusedStepStreamStates ? 2 : 0) | (stageResidual ? 4 : 0) | (head != nil ? 8 : 0)
        if let c = fusedStepClusterShape(p) {
            precondition([4, 8].contains(c.blocks) && [1, 2, 4, 8, 16].contains(c.streams),
                         "cluster Mamba step: \(c.blocks) blocks (4 or 8) and \(c.streams) streams (1, 2, 4, 8 or 16) a cluster")
            let grid = (batch + c.streams - 1) / c.streams * c.blocks
            launchStacks(steps, x: x, addend: addend, out: out, flags: flags | (tuning.fusedStepPrefetchWeights ? 1 : 0), head: head) { args in
                launch(.mambaStepCluster, "wm_mamba_cluster\(c.blocks)_\(p.isComplex ? "complex" : "real")_s\(c.streams)", grid: (grid, 1, 1),
                       block: (tuning.fusedStepThreads ?? 256, 1, 1), shared: Self.clusterSharedBytes(c, p), [.bytes(args)])
            }
            return
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
        let grid = (batch + s - 1) / s, threads = fusedStepThreads(batch: batch)
        let name = "wm_mamba_step_\(p.isComplex ? "complex" : "real")_s\(s)"
            + (fusedStepFixedWidth(p, streams: s, threads: threads).map { "_h\($0)_t\(threads)" } ?? "")
        // One thread block (batch 1) prefetching a whole block's weights alone was slower.
        launchStacks(steps, x: x, addend: addend, out: out, flags: flags | (tuning.fusedStepPrefetchWeights && grid > 1 ? 1 : 0), head: head) { args in
            launch(.mambaStep, name, grid: (grid, 1, 1), block: (threads, 1, 1), shared: shared, [.bytes(args)])
        }
    }

    /// Calls `launch` with the MambaStackArgs (mamba_step.cuh) of each run of at most
    /// `fusedStackLayers` consecutive blocks: the first run reads x (+ addend), the later ones out;
    /// `head` (flag 8) goes with a run of one launch.
    private func launchStacks(_ steps: ArraySlice<ResidualMambaStep>, x: Tensor, addend: Tensor?, out: Tensor, flags: Int,
                              head: StepHead?, _ launch: ([UInt8]) -> Void) {
        precondition(head == nil || steps.count <= fusedStackLayers, "residualMambaSteps: the head needs the run in one launch")
        let p = steps.first!
        var first = steps.startIndex
        var input = x
        while first < steps.endIndex {
            let run = steps[first..<min(first + fusedStackLayers, steps.endIndex)]
            var b = StructBuilder()
            b.pointer(ptr(input)); b.pointer(ptr(addend)); b.pointer(ptr(out)); b.int64(p.batch)
            b.int32(run.count)
            b.int32(p.dModel); b.int32(p.dInner); b.int32(p.dtRank); b.int32(p.dState); b.int32(p.dConv); b.int32(p.xProjColumns)
            b.float(Self.normEps)
            b.int32(flags)
            b.pointer(ptr(head?.normWeight)); b.pointer(ptr(head?.normBias)); b.pointer(ptr(head?.weightT)); b.pointer(ptr(head?.bias))
            b.pointer(ptr(head?.logits)); b.int32(head?.classes ?? 0)
            // All WM_STACK_MAX layer slots are passed; those past the run stay zero.
            for i in 0..<Self.fusedStackMaximum {
                let q: ResidualMambaStep? = i < run.count ? run[run.startIndex + i] : nil
                let tensors: [Tensor?] = [q?.normWeight, q?.normBias, q?.inProjT, q?.convWeight, q?.convBias, q?.xProjT, q?.dtProjT,
                                          q?.dtBias, q?.A, q?.AImag, q?.D, q?.outProjT, q?.convState, q?.ssmState]
                for t in tensors { b.pointer(ptr(t)) }
            }
            launch(b.finished)
            first = run.endIndex
            input = out
        }
    }
}
