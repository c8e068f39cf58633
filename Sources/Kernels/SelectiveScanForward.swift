// The fused forward of the selective scan: one pass over the sequence per (batch element,
// group of 8 channels), the state h kept as W vectors of 8 channel lanes, never materialising
// (batch × L × D × N). Stores the state at chunk boundaries for the backward.
//
// The sequence is processed in blocks of ≤ `forwardBlock` steps, in three phases:
//   1. stage: softplus(delta + bias), s·u, silu(z) and copies of the B and C rows of the block
//      into per-task scratch (independent strided loads, so the cache misses overlap);
//   2. recurrence over the staged block (the hot loop: one exp per state update, no strided
//      memory traffic);
//   3. outputs: out = (y + D·u)·silu(z) written back row by row.
// The backward reuses phases 1–2 to recompute a chunk's states.

/// Per-task scratch of one block of steps for one channel group (vectors = 8 channel lanes).
struct ScanStage {
    var s: UnsafeMutablePointer<V8>       // softplus(delta + bias)
    var su: UnsafeMutablePointer<V8>      // s·u
    var u: UnsafeMutablePointer<V8>
    var gate: UnsafeMutablePointer<V8>    // silu(z) (if z)
    var y: UnsafeMutablePointer<V8>       // Σ C·h (complex: 2·Re), without D·u
    var bRows: UnsafeMutablePointer<Float> // block × W, B rows
    var cRows: UnsafeMutablePointer<Float> // block × W, C rows

    /// Vectors needed for `steps` steps of width W.
    static func vectors(steps: Int, W: Int) -> Int { 5 * steps + (2 * steps * W + 7) / 8 }
}

extension ScanStage {
    init(_ base: UnsafeMutablePointer<V8>, steps: Int, W: Int) {
        s = base; su = s + steps; u = su + steps; gate = u + steps; y = gate + steps
        bRows = UnsafeMutableRawPointer(y + steps).assumingMemoryBound(to: Float.self)
        cRows = bRows + steps * W
    }
}

/// Scratch layout of one forward task (in vectors from an aligned base).
struct ForwardLayout {
    let slices: Int, tasks: Int, groupsPerTask: Int, block: Int
    let perTask: Int          // vectors per task
    init(_ shape: SelectiveScanShape, chunk: Int, threads: Int) {
        let W = shape.stateWidth
        slices = SelectiveScan.slices(shape, threads: threads)
        tasks = shape.batch * slices
        groupsPerTask = (shape.channelGroups + slices - 1) / slices
        block = max(1, min(SelectiveScan.forwardBlock, chunk, shape.length))
        // per group: h, av (W each); stage: 5 vectors per step + B/C rows, sized for the
        // largest block whatever the chunk (so the workspace size does not depend on it).
        perTask = 2 * W * groupsPerTask
            + ScanStage.vectors(steps: max(1, min(SelectiveScan.forwardBlock, shape.length)), W: W)
    }
}

extension SelectiveScan {
    /// Steps per staged block in the forward.
    static let forwardBlock = 64

    /// Floats of the optional forward workspace (any alignment, no initialisation): per task
    /// (batch × slices tasks) 8·(2W·groups + 5·64) + 128·W floats; ≈ 34 KiB per task for
    /// N = 16 real with 16 groups per task.
    public static func forwardWorkspaceCount(_ shape: SelectiveScanShape, threads: Int) -> Int {
        let l = ForwardLayout(shape, chunk: 1, threads: threads)
        return 8 * l.tasks * l.perTask + 8
    }

    /// Runs the scan.
    ///
    /// - Parameters:
    ///   - out: (batch, L, D), row stride `strideOut` (default D). Only columns 0..<D of each row are written.
    ///   - lastState: optional (batch, D, W) contiguous: the state after the last step (complex:
    ///     re/im interleaved), the layout `step` uses.
    ///   - checkpoints: optional, `checkpointCount(shape, chunk:)` floats: states at chunk
    ///     boundaries for `backward` (which must get the same `chunk`). Pass nil for inference.
    ///   - chunk: checkpoint interval in time steps (≥ 1).
    ///   - workspace: optional, `forwardWorkspaceCount(shape, threads: pool.threads)`
    ///     floats (any alignment); when nil, the call allocates that much on the heap once.
    public static func forward(_ x: SelectiveScanInputs,
                               out: UnsafeMutablePointer<Float>, strideOut: Int? = nil,
                               lastState: UnsafeMutablePointer<Float>? = nil,
                               checkpoints: UnsafeMutablePointer<Float>? = nil,
                               chunk: Int = defaultChunk,
                               workspace: UnsafeMutablePointer<Float>? = nil,
                               pool: ThreadPool) {
        x.validate()
        precondition(chunk >= 1, "selective scan: chunk must be ≥ 1")
        let s = x.shape
        let strideOut = strideOut ?? s.channels
        precondition(strideOut >= s.channels)
        if s.batch == 0 || s.channels == 0 || s.length == 0 { return }
        let layout = ForwardLayout(s, chunk: chunk, threads: pool.threads)
        // Caller workspace (aligned to 32 bytes), or one heap block for the call: the stack
        // (withUnsafeTemporaryAllocation) would ask pthread_getattr_np for the stack bounds,
        // which on the main thread reads /proc/self/maps, for every task.
        let owned: UnsafeMutablePointer<V8>? = workspace == nil ? .allocate(capacity: layout.tasks * layout.perTask) : nil
        defer { owned?.deallocate() }
        let ws: UnsafeMutablePointer<V8> = owned ?? {
            let p = workspace!
            let misalign = (Int(bitPattern: p) & 31) / 4
            return UnsafeMutableRawPointer(p + (misalign == 0 ? 0 : 8 - misalign)).assumingMemoryBound(to: V8.self)
        }()
        pool.forEach(layout.tasks) { task in
            forwardTask(x, b: task / layout.slices, slice: task % layout.slices, layout: layout, out: out,
                        strideOut: strideOut, lastState: lastState, checkpoints: checkpoints, chunk: chunk,
                        scratch: ws + task * layout.perTask)
        }
    }

    /// av[k] (k < W) ← the exponents' factors for the 8 channels of group g (lanes beyond D
    /// are 0): real: A·log2 e; complex: av[2n] = A_real·log2 e, av[2n+1] = A_imag·2/π.
    @inline(__always)
    static func gatherA(_ x: SelectiveScanInputs, d0: Int, lanes: Int, into av: UnsafeMutablePointer<V8>) {
        let N = x.shape.dState
        for n in 0..<N {
            var re = V8(), im = V8()
            for i in 0..<lanes {
                re[i] = x.A[(d0 + i) * N + n]
                if x.shape.isComplex { im[i] = x.AImag![(d0 + i) * N + n] }
            }
            if x.shape.isComplex { av[2 * n] = re * scanLog2e; av[2 * n + 1] = im * scanTwoOverPi } else { av[n] = re * scanLog2e }
        }
    }

    /// Phase 1: stages steps t0..<t0+count of group (b, d0) (not the B/C rows: `stageBC`).
    @inline(__always)
    static func stageBlock(_ x: SelectiveScanInputs, b: Int, d0: Int, lanes: Int, t0: Int, count: Int,
                           biasv: V8, stage: ScanStage) {
        let L = x.shape.length
        // Two rows per iteration as one SIMD16 (two interleaved dependency chains).
        var j = 0
        while j + 2 <= count {
            let row = b * L + t0 + j
            let dl = SIMD16(lowHalf: loadLanes(x.delta + row * x.strideDelta + d0, lanes) + biasv,
                            highHalf: loadLanes(x.delta + (row + 1) * x.strideDelta + d0, lanes) + biasv)
            let s = scanSoftplus(dl)
            let u0 = loadLanes(x.u + row * x.strideU + d0, lanes)
            let u1 = loadLanes(x.u + (row + 1) * x.strideU + d0, lanes)
            stage.s[j] = s.lowHalf; stage.s[j + 1] = s.highHalf
            stage.u[j] = u0; stage.u[j + 1] = u1
            stage.su[j] = s.lowHalf * u0; stage.su[j + 1] = s.highHalf * u1
            if let z = x.z {
                let zv = SIMD16(lowHalf: loadLanes(z + row * x.strideZ + d0, lanes),
                                highHalf: loadLanes(z + (row + 1) * x.strideZ + d0, lanes))
                let gate = zv * scanSigmoid(zv)
                stage.gate[j] = gate.lowHalf; stage.gate[j + 1] = gate.highHalf
            }
            j += 2
        }
        if j < count {
            let row = b * L + t0 + j
            let s = scanSoftplus(loadLanes(x.delta + row * x.strideDelta + d0, lanes) + biasv)
            let uv = loadLanes(x.u + row * x.strideU + d0, lanes)
            stage.s[j] = s
            stage.u[j] = uv
            stage.su[j] = s * uv
            if let z = x.z {
                let zv = loadLanes(z + row * x.strideZ + d0, lanes)
                stage.gate[j] = zv * scanSigmoid(zv)
            }
        }
    }

    /// Copies B and C rows t0..<t0+count of batch element b into contiguous count × W buffers.
    @inline(__always)
    static func stageBC(_ x: SelectiveScanInputs, b: Int, t0: Int, count: Int,
                        bRows: UnsafeMutablePointer<Float>, cRows: UnsafeMutablePointer<Float>) {
        let L = x.shape.length, W = x.shape.stateWidth
        for j in 0..<count {
            let row = b * L + t0 + j
            copyRow(x.B + row * x.strideB, bRows + j * W, W)
            copyRow(x.C + row * x.strideC, cRows + j * W, W)
        }
    }

    @inline(__always)
    static func copyRow(_ src: UnsafePointer<Float>, _ dst: UnsafeMutablePointer<Float>, _ n: Int) {
        var k = 0
        while k + 8 <= n { storeV(loadV(src + k), dst + k); k += 8 }
        while k < n { dst[k] = src[k]; k += 1 }
    }

    /// Phase 2: the recurrence over `count` staged steps. Forward mode (`record == false`):
    /// the state is updated in place in hs[0..<W]. Recompute mode: h_j → hs[(j+1)·W…] (hs[0…]
    /// holds the initial state) and a_j → aBuf[j·W…]. Writes stage.y[j] = Σ C·h (complex 2·Re).
    @inline(__always)
    static func recurBlock(count: Int, N: Int, complex: Bool, stage: ScanStage, bRows: UnsafePointer<Float>,
                           cRows: UnsafePointer<Float>, av: UnsafePointer<V8>,
                           hs: UnsafeMutablePointer<V8>, record: Bool, aBuf: UnsafeMutablePointer<V8>) {
        let W = complex ? 2 * N : N
        for j in 0..<count {
            let s = stage.s[j], su = stage.su[j]
            let pb = bRows + j * W, pc = cRows + j * W
            let hIn = record ? hs + j * W : hs
            let hOut = record ? hs + (j + 1) * W : hs
            let aOut = aBuf + j * W
            var y0 = V8(), y1 = V8()
            if complex {
                // Two state indices per iteration: n (low halves) and n + 1 (high halves).
                var n = 0
                while n < N {
                    let two = n + 1 < N
                    let k1 = two ? 2 * n + 2 : 2 * n
                    let e = scanExp2(SIMD16(lowHalf: s * av[2 * n], highHalf: s * av[k1]))
                    let sc = scanSinCosHalfPi(SIMD16(lowHalf: s * av[2 * n + 1], highHalf: s * av[k1 + 1]))
                    let ar2 = e * sc.cos, ai2 = e * sc.sin
                    do {
                        let ar = ar2.lowHalf, ai = ai2.lowHalf
                        let hr = hIn[2 * n], hi = hIn[2 * n + 1]
                        let nr = (su * pb[2 * n]).addingProduct(ar, hr).addingProduct(-ai, hi)
                        let ni = (su * pb[2 * n + 1]).addingProduct(ar, hi).addingProduct(ai, hr)
                        hOut[2 * n] = nr; hOut[2 * n + 1] = ni
                        if record { aOut[2 * n] = ar; aOut[2 * n + 1] = ai }
                        y0 = y0.addingProduct(V8(repeating: pc[2 * n]), nr)
                        y1 = y1.addingProduct(V8(repeating: -pc[2 * n + 1]), ni)
                    }
                    if two {
                        let ar = ar2.highHalf, ai = ai2.highHalf
                        let hr = hIn[k1], hi = hIn[k1 + 1]
                        let nr = (su * pb[k1]).addingProduct(ar, hr).addingProduct(-ai, hi)
                        let ni = (su * pb[k1 + 1]).addingProduct(ar, hi).addingProduct(ai, hr)
                        hOut[k1] = nr; hOut[k1 + 1] = ni
                        if record { aOut[k1] = ar; aOut[k1 + 1] = ai }
                        y0 = y0.addingProduct(V8(repeating: pc[k1]), nr)
                        y1 = y1.addingProduct(V8(repeating: -pc[k1 + 1]), ni)
                    }
                    n += 2
                }
                let y = y0 + y1
                stage.y[j] = y + y
            } else {
                var n = 0
                while n + 2 <= N {
                    let a = scanExp2(SIMD16(lowHalf: s * av[n], highHalf: s * av[n + 1]))
                    let a0 = a.lowHalf, a1 = a.highHalf
                    let h0 = (su * pb[n]).addingProduct(a0, hIn[n])
                    let h1 = (su * pb[n + 1]).addingProduct(a1, hIn[n + 1])
                    hOut[n] = h0; hOut[n + 1] = h1
                    if record { aOut[n] = a0; aOut[n + 1] = a1 }
                    y0 = y0.addingProduct(V8(repeating: pc[n]), h0)
                    y1 = y1.addingProduct(V8(repeating: pc[n + 1]), h1)
                    n += 2
                }
                if n < N {
                    let a0 = scanExp2(s * av[n])
                    let h0 = (su * pb[n]).addingProduct(a0, hIn[n])
                    hOut[n] = h0
                    if record { aOut[n] = a0 }
                    y0 = y0.addingProduct(V8(repeating: pc[n]), h0)
                }
                stage.y[j] = y0 + y1
            }
        }
    }

    /// One forward task: batch element b, the channel groups of `slice`, block by block; in
    /// each block the B/C rows are staged once and every group of the slice advances.
    static func forwardTask(_ x: SelectiveScanInputs, b: Int, slice: Int, layout: ForwardLayout,
                            out: UnsafeMutablePointer<Float>, strideOut: Int,
                            lastState: UnsafeMutablePointer<Float>?, checkpoints: UnsafeMutablePointer<Float>?,
                            chunk: Int, scratch: UnsafeMutablePointer<V8>) {
        let shape = x.shape
        let L = shape.length, W = shape.stateWidth, D = shape.channels, N = shape.dState
        let groups = shape.channelGroups
        let gLo = slice * groups / layout.slices, gHi = (slice + 1) * groups / layout.slices
        let groupState = scratch                                   // per group: h (W), av (W)
        let stage = ScanStage(scratch + 2 * W * layout.groupsPerTask, steps: layout.block, W: W)
        for g in gLo..<gHi {
            let h = groupState + (g - gLo) * 2 * W
            for k in 0..<W { h[k] = V8() }
            gatherA(x, d0: g * 8, lanes: min(8, D - g * 8), into: h + W)
        }
        let gated = x.z != nil
        let chunks = chunkCount(shape, chunk: chunk)
        for c in 0..<chunks {
            let cEnd = min(L, (c + 1) * chunk)
            var t0 = c * chunk
            while t0 < cEnd {
                let count = min(layout.block, cEnd - t0)
                stageBC(x, b: b, t0: t0, count: count, bRows: stage.bRows, cRows: stage.cRows)
                for g in gLo..<gHi {
                    let h = groupState + (g - gLo) * 2 * W
                    let d0 = g * 8, lanes = min(8, D - d0)
                    let biasv = x.deltaBias.map { loadLanes($0 + d0, lanes) } ?? V8()
                    stageBlock(x, b: b, d0: d0, lanes: lanes, t0: t0, count: count, biasv: biasv, stage: stage)
                    recurBlock(count: count, N: N, complex: shape.isComplex, stage: stage, bRows: stage.bRows,
                               cRows: stage.cRows, av: h + W, hs: h, record: false, aBuf: h)
                    let dv = x.D.map { loadLanes($0 + d0, lanes) } ?? V8()
                    for j in 0..<count {
                        var y = stage.y[j].addingProduct(dv, stage.u[j])
                        if gated { y = y * stage.gate[j] }
                        storeLanes(y, out + (b * L + t0 + j) * strideOut + d0, lanes)
                    }
                }
                t0 += count
            }
            if let ck = checkpoints, c < chunks - 1 {
                for g in gLo..<gHi {
                    let h = groupState + (g - gLo) * 2 * W
                    let p = ck + checkpointOffset(shape, chunk: chunk, b: b, k: c, g: g)
                    for k in 0..<W { storeV(h[k], p + 8 * k) }
                }
            }
        }
        if let last = lastState {
            for g in gLo..<gHi {
                let h = groupState + (g - gLo) * 2 * W
                let d0 = g * 8
                for i in 0..<min(8, D - d0) {
                    let p = last + (b * D + d0 + i) * W
                    for k in 0..<W { p[k] = h[k][i] }
                }
            }
        }
    }

    /// Float offset of the checkpoint (state after chunk k) of batch b, group g.
    @inline(__always)
    static func checkpointOffset(_ shape: SelectiveScanShape, chunk: Int, b: Int, k: Int, g: Int) -> Int {
        let perBatch = chunkCount(shape, chunk: chunk) - 1
        return ((b * perBatch + k) * shape.channelGroups + g) * shape.stateWidth * 8
    }
}
