// The fused backward of the selective scan. A task is (batch element, slice of channel
// groups). It walks the chunks from last to first; for each chunk it stages the chunk's B/C
// rows once, then for every group of its slice: stages the group's inputs, recomputes the
// chunk's states from the checkpoint (keeping h_t and a_t of that chunk only), walks the chunk
// backwards carrying the state gradient g_h (kept per group across chunks), and writes du,
// dDelta, dz. Memory: O(chunk · W) scratch per task, never B·L·D·N.
//
// Gradients (real-component derivatives; for complex values G = ∂L/∂re + i·∂L/∂im):
//   g_y      = dOut · silu(z)                 dz = dOut · y · silu'(z)
//   G_h(t)   = conj(a_{t+1})·G_h(t+1) + g_y·C_t        (complex: 2·g_y·conj(C_t))
//   dC_t    += g_y · h_t                               (complex: 2·g_y·conj(h_t))
//   dB_t    += G_h(t) · s_t·u_t
//   G_v      = G_h(t) · conj(a_t · h_{t−1})            (v = s_t·A, a = exp(v))
//   dA      += s_t · G_v
//   ds_t     = u_t·Re(Σ G_h·conj(B_t)) + Re(Σ G_v·conj(A))
//   du_t     = g_y·D + s_t·Re(Σ G_h·conj(B_t))         dD += g_y·u_t
//   dDelta_t = ds_t · σ(delta_t + bias)                dbias += dDelta_t
// The conjugates are the ones the golden README warns about.
//
// Determinism: tasks depend only on the shape and thread count. dB/dC (sums over channels) of
// a chunk are accumulated in a chunk buffer in a fixed group order, then written to dB/dC
// (slice 0) or to the slice's partial buffer, and the slices are added in slice order at the
// end; dA/dD/dbias (sums over batch) go to per-batch partials added in batch order.
// Same thread count ⇒ bit-identical gradients.

/// Offsets (in floats, from the 32-byte-aligned workspace base) of the backward's buffers.
struct BackwardLayout {
    let slices: Int
    let tasks: Int
    let groupsPerTask: Int
    let steps: Int            // chunk length actually used: min(chunk, L)
    let scratch: Int          // floats per task
    let partialOffset: Int    // dB/dC slice partials: [b][slice−1][dB|dC][L][W]
    let paramOffset: Int      // [b][dA (D·N) | dAImag (D·N, complex) | dD (D) | dbias (D)]
    let paramStride: Int
    let total: Int

    init(_ shape: SelectiveScanShape, chunk: Int, threads: Int) {
        precondition(chunk >= 1)
        let W = shape.stateWidth
        slices = SelectiveScan.slices(shape, threads: threads)
        tasks = shape.batch * slices
        groupsPerTask = (shape.channelGroups + slices - 1) / slices
        let c = max(1, min(chunk, shape.length))
        steps = c
        // Shared per chunk: bRows, cRows, dbBuf, dcBuf (c·W floats each, rounded to vectors);
        // per group (persistent): gh, dAacc, av (W vectors each) + dD, dbias accumulators;
        // per (chunk, group): hs ((c+1)·W), aBuf (c·W), 10 per-step vectors, dBv, dCv (W each).
        let shared = 4 * ((c * W + 7) / 8 * 8)
        let perGroup = 8 * (3 * W + 2) * groupsPerTask
        let temp = 8 * ((c + 1) * W + c * W + 10 * c + 2 * W)
        scratch = shared + perGroup + temp
        partialOffset = tasks * scratch
        let partials = shape.batch * (slices - 1) * 2 * shape.length * W
        paramOffset = partialOffset + partials
        paramStride = (shape.channels * W + 2 * shape.channels + 7) / 8 * 8
        total = paramOffset + shape.batch * paramStride + 16
    }
}

extension SelectiveScan {
    /// Floats of the backward's workspace (caller-allocated, any alignment, no initialisation
    /// needed): per-task scratch (batch × slices tasks, each ≈ 8·(2c+1)·W + 4c·W + 80c floats
    /// plus 8·(3W+2) per channel group of the task; c = min(chunk, L)), the dB/dC partial sums of
    /// the channel slices beyond the first (batch × (slices − 1) × 2 × L × W) and per-batch
    /// parameter-gradient partials (batch × (D·W + 2D)), plus 16 floats for alignment.
    public static func backwardWorkspaceCount(_ shape: SelectiveScanShape, chunk: Int, threads: Int) -> Int {
        BackwardLayout(shape, chunk: chunk, threads: threads).total
    }

    /// Gradients of the scan given the upstream gradient `dOut` of `out`.
    ///
    /// - Parameters:
    ///   - dOut: (batch, L, D), row stride `strideDOut` (default D).
    ///   - checkpoints: what `forward` wrote with the same `chunk` (may be nil only when
    ///     L ≤ chunk, i.e. `checkpointCount` is 0).
    ///   - grads: destinations, all overwritten.
    ///   - workspace: `backwardWorkspaceCount(shape, chunk:, threads: pool.threads)` floats, any alignment.
    public static func backward(_ x: SelectiveScanInputs,
                                dOut: UnsafePointer<Float>, strideDOut: Int? = nil,
                                checkpoints: UnsafePointer<Float>?,
                                chunk: Int = defaultChunk,
                                grads: SelectiveScanGradients,
                                workspace: UnsafeMutablePointer<Float>,
                                pool: ThreadPool) {
        x.validate()
        let shape = x.shape
        precondition(chunk >= 1, "selective scan: chunk must be ≥ 1")
        precondition(checkpoints != nil || checkpointCount(shape, chunk: chunk) == 0,
                     "selective scan backward: checkpoints required when L > chunk")
        precondition(x.z == nil || grads.dz != nil, "selective scan backward: dz required when z is given")
        precondition(!shape.isComplex || grads.dAImag != nil, "selective scan backward: dAImag required for complex")
        let strideDOut = strideDOut ?? shape.channels
        let D = shape.channels, W = shape.stateWidth, N = shape.dState, L = shape.length
        if D == 0 { return }
        let layout = BackwardLayout(shape, chunk: chunk, threads: pool.threads)
        // 32-byte aligned base: scratch is accessed as SIMD8 vectors.
        let misalign = (Int(bitPattern: workspace) & 31) / 4
        let ws = workspace + (misalign == 0 ? 0 : 8 - misalign)
        let slices = layout.slices

        if shape.batch > 0 && L > 0 {
            pool.forEach(layout.tasks) { task in
                backwardTask(x, b: task / slices, slice: task % slices, layout: layout, dOut: dOut,
                             strideDOut: strideDOut, checkpoints: checkpoints, chunk: chunk, grads: grads,
                             scratch: ws + task * layout.scratch, partials: ws + layout.partialOffset,
                             params: ws + layout.paramOffset + (task / slices) * layout.paramStride)
            }
        }

        // dB/dC: add the other slices' partials, in slice order.
        if slices > 1 && shape.batch > 0 {
            pool.forRanges(shape.batch * L, grain: 256) { rows in
                for r in rows {
                    let b = r / L, t = r % L
                    let pb = grads.dB + r * grads.strideDB, pc = grads.dC + r * grads.strideDC
                    for sl in 1..<slices {
                        let p = ws + layout.partialOffset + ((b * (slices - 1) + sl - 1) * 2) * L * W + t * W
                        for k in 0..<W { pb[k] += p[k] }
                        for k in 0..<W { pc[k] += p[L * W + k] }
                    }
                }
            }
        }
        // Parameter gradients: sum the per-batch partials in batch order.
        let pp = ws + layout.paramOffset
        let stride = layout.paramStride
        let batch = shape.batch
        for i in 0..<(D * N) {
            var acc: Float = 0
            for b in 0..<batch { acc += pp[b * stride + i] }
            grads.dA[i] = acc
            if let dAI = grads.dAImag {
                var acc: Float = 0
                for b in 0..<batch { acc += pp[b * stride + D * N + i] }
                dAI[i] = acc
            }
        }
        for d in 0..<D {
            if let dD = grads.dD {
                var acc: Float = 0
                for b in 0..<batch { acc += pp[b * stride + D * W + d] }
                dD[d] = acc
            }
            if let db = grads.dDeltaBias {
                var acc: Float = 0
                for b in 0..<batch { acc += pp[b * stride + D * W + D + d] }
                db[d] = acc
            }
        }
    }

    /// One backward task: batch element b, channel groups of `slice`.
    static func backwardTask(_ x: SelectiveScanInputs, b: Int, slice: Int, layout: BackwardLayout,
                             dOut: UnsafePointer<Float>, strideDOut: Int,
                             checkpoints: UnsafePointer<Float>?, chunk: Int,
                             grads: SelectiveScanGradients, scratch: UnsafeMutablePointer<Float>,
                             partials: UnsafeMutablePointer<Float>, params: UnsafeMutablePointer<Float>) {
        let shape = x.shape
        let L = shape.length, W = shape.stateWidth, D = shape.channels, N = shape.dState
        let complex = shape.isComplex
        let groups = shape.channelGroups, slices = layout.slices
        let gLo = slice * groups / slices, gHi = (slice + 1) * groups / slices
        let c = layout.steps
        let cw = (c * W + 7) / 8 * 8
        // Scratch layout, matching BackwardLayout.
        let bRows = scratch, cRows = bRows + cw, dbBuf = cRows + cw, dcBuf = dbBuf + cw
        let vbase = UnsafeMutableRawPointer(dcBuf + cw).assumingMemoryBound(to: V8.self)
        let groupState = vbase                                   // (3W + 2) per group
        let hs = groupState + (3 * W + 2) * layout.groupsPerTask  // (c+1)·W
        let aBuf = hs + (c + 1) * W                              // c·W
        let sv = aBuf + c * W                                    // 10 per-step vectors × c
        let stage = ScanStage(s: sv, su: sv + c, u: sv + 2 * c, gate: sv + 3 * c, y: sv + 4 * c,
                              bRows: bRows, cRows: cRows)
        let sig = sv + 5 * c, dsilu = sv + 6 * c, go = sv + 7 * c, duBuf = sv + 8 * c, ddBuf = sv + 9 * c
        let dBv = sv + 10 * c, dCv = dBv + W

        // dB/dC destination of this task.
        let dBBase: UnsafeMutablePointer<Float>, dCBase: UnsafeMutablePointer<Float>
        let dBStride: Int, dCStride: Int
        if slice == 0 {
            dBBase = grads.dB + b * L * grads.strideDB; dBStride = grads.strideDB
            dCBase = grads.dC + b * L * grads.strideDC; dCStride = grads.strideDC
        } else {
            let p = partials + ((b * (slices - 1) + slice - 1) * 2) * L * W
            dBBase = p; dBStride = W
            dCBase = p + L * W; dCStride = W
        }

        // Per-group persistent state: gh (W), dAacc (W), av (W), dD acc, dbias acc.
        for g in gLo..<gHi {
            let st = groupState + (g - gLo) * (3 * W + 2)
            for k in 0..<(2 * W) { st[k] = V8() }
            gatherA(x, d0: g * 8, lanes: min(8, D - g * 8), into: st + 2 * W)
            st[3 * W] = V8(); st[3 * W + 1] = V8()
        }

        let chunks = chunkCount(shape, chunk: chunk)
        var ci = chunks
        while ci > 0 {
            ci -= 1
            let t0 = ci * chunk, count = min(chunk, L - t0)
            stageBC(x, b: b, t0: t0, count: count, bRows: bRows, cRows: cRows)
            for k in 0..<(count * W) { dbBuf[k] = 0; dcBuf[k] = 0 }
            for g in gLo..<gHi {
                let st = groupState + (g - gLo) * (3 * W + 2)
                let gh = st, dAacc = st + W, av = st + 2 * W
                let d0 = g * 8, lanes = min(8, D - d0)
                let dv = x.D.map { loadLanes($0 + d0, lanes) } ?? V8()
                let biasv = x.deltaBias.map { loadLanes($0 + d0, lanes) } ?? V8()

                // Phase 1: stage this group's inputs of the chunk, two rows at a time (SIMD16:
                // two interleaved dependency chains).
                var j = 0
                while j < count {
                    let two = j + 1 < count
                    let row = b * L + t0 + j, row1 = two ? row + 1 : row
                    let dl = SIMD16(lowHalf: loadLanes(x.delta + row * x.strideDelta + d0, lanes) + biasv,
                                    highHalf: loadLanes(x.delta + row1 * x.strideDelta + d0, lanes) + biasv)
                    let (s, sg) = scanSoftplusAndSigmoid(dl)
                    let u0 = loadLanes(x.u + row * x.strideU + d0, lanes)
                    stage.s[j] = s.lowHalf; stage.u[j] = u0; stage.su[j] = s.lowHalf * u0
                    sig[j] = sg.lowHalf
                    go[j] = loadLanes(dOut + row * strideDOut + d0, lanes)
                    var gate = SIMD16<Float>(), ds = SIMD16<Float>()
                    if let z = x.z {
                        (gate, ds) = siluAndDerivative(SIMD16(lowHalf: loadLanes(z + row * x.strideZ + d0, lanes),
                                                              highHalf: loadLanes(z + row1 * x.strideZ + d0, lanes)))
                        stage.gate[j] = gate.lowHalf; dsilu[j] = ds.lowHalf
                    }
                    if two {
                        let u1 = loadLanes(x.u + row1 * x.strideU + d0, lanes)
                        stage.s[j + 1] = s.highHalf; stage.u[j + 1] = u1; stage.su[j + 1] = s.highHalf * u1
                        sig[j + 1] = sg.highHalf
                        go[j + 1] = loadLanes(dOut + row1 * strideDOut + d0, lanes)
                        stage.gate[j + 1] = gate.highHalf; dsilu[j + 1] = ds.highHalf
                    }
                    j += 2
                }
                // Phase 2: recompute the chunk's states from the checkpoint.
                if ci == 0 {
                    for k in 0..<W { hs[k] = V8() }
                } else {
                    let p = checkpoints! + checkpointOffset(shape, chunk: chunk, b: b, k: ci - 1, g: g)
                    for k in 0..<W { hs[k] = loadV(p + 8 * k) }
                }
                recurBlock(count: count, N: N, complex: complex, stage: stage, bRows: bRows, cRows: cRows,
                           av: av, hs: hs, record: true, aBuf: aBuf)

                // Phase 3: walk the chunk backwards.
                let acc = walkBlock(count: count, N: N, complex: complex, gated: x.z != nil, stage: stage,
                                    bufs: WalkBuffers(sig: sig, go: go, du: duBuf, dDelta: ddBuf, dBv: dBv, dCv: dCv,
                                                      dbRows: dbBuf, dcRows: dcBuf),
                                    bRows: bRows, cRows: cRows, hs: hs, aBuf: aBuf, av: av, gh: gh, dAacc: dAacc,
                                    dv: dv, dD: st[3 * W], dBias: st[3 * W + 1])
                let gated = x.z != nil
                st[3 * W] = acc.dD; st[3 * W + 1] = acc.dBias

                // Phase 4: write this group's du, dDelta, dz rows of the chunk.
                for j in 0..<count {
                    let row = b * L + t0 + j
                    storeLanes(duBuf[j], grads.du + row * grads.strideDU + d0, lanes)
                    storeLanes(ddBuf[j], grads.dDelta + row * grads.strideDDelta + d0, lanes)
                    if gated {
                        let y = stage.y[j].addingProduct(dv, stage.u[j])
                        storeLanes(go[j] * y * dsilu[j], grads.dz! + row * grads.strideDZ + d0, lanes)
                    }
                }
            }
            // The chunk's dB/dC rows of this slice.
            for j in 0..<count {
                copyRow(dbBuf + j * W, dBBase + (t0 + j) * dBStride, W)
                copyRow(dcBuf + j * W, dCBase + (t0 + j) * dCStride, W)
            }
        }

        // Per-batch parameter partials: [dA (D·N) | dAImag (D·N) | dD (D) | dbias (D)].
        for g in gLo..<gHi {
            let st = groupState + (g - gLo) * (3 * W + 2)
            let dAacc = st + W
            let d0 = g * 8, lanes = min(8, D - d0)
            for i in 0..<lanes {
                let d = d0 + i
                for n in 0..<N {
                    if complex {
                        params[d * N + n] = dAacc[2 * n][i]
                        params[D * N + d * N + n] = dAacc[2 * n + 1][i]
                    } else {
                        params[d * N + n] = dAacc[n][i]
                    }
                }
                params[D * W + d] = st[3 * W][i]
                params[D * W + D + d] = st[3 * W + 1][i]
            }
        }
    }
}

/// Per-step buffers of one (chunk, group) for the backward walk.
struct WalkBuffers {
    var sig: UnsafeMutablePointer<V8>      // σ(delta + bias)
    var go: UnsafeMutablePointer<V8>       // dOut
    var du: UnsafeMutablePointer<V8>       // out: du
    var dDelta: UnsafeMutablePointer<V8>   // out: dDelta
    var dBv: UnsafeMutablePointer<V8>      // W vectors: per-step dB before the lane sums
    var dCv: UnsafeMutablePointer<V8>      // W vectors
    var dbRows: UnsafeMutablePointer<Float> // count × W: dB rows of the chunk (accumulated over groups)
    var dcRows: UnsafeMutablePointer<Float> // count × W
}

extension SelectiveScan {
    /// Phase 3 of the backward: walks `count` recomputed steps of one group backwards, carrying
    /// the state gradient `gh` (W vectors) and accumulating dA (`dAacc`, W vectors), dD and
    /// dbias (returned); writes du, dDelta per step and adds dB/dC lane sums into the rows.
    @inline(__always)
    static func walkBlock(count: Int, N: Int, complex: Bool, gated: Bool, stage: ScanStage, bufs: WalkBuffers,
                          bRows: UnsafePointer<Float>, cRows: UnsafePointer<Float>,
                          hs: UnsafePointer<V8>, aBuf: UnsafePointer<V8>, av: UnsafePointer<V8>,
                          gh: UnsafeMutablePointer<V8>, dAacc: UnsafeMutablePointer<V8>,
                          dv: V8, dD: V8, dBias: V8) -> (dD: V8, dBias: V8) {
        var dDacc = dD, dbAcc = dBias
        let W = complex ? 2 * N : N
        let sig = bufs.sig, go = bufs.go, duBuf = bufs.du, ddBuf = bufs.dDelta
        let dBv = bufs.dBv, dCv = bufs.dCv, dbBuf = bufs.dbRows, dcBuf = bufs.dcRows
        var j = count
        while j > 0 {
            j -= 1
            let s = stage.s[j], uv = stage.u[j], su = stage.su[j]
            let gy = gated ? go[j] * stage.gate[j] : go[j]
            dDacc = dDacc.addingProduct(gy, uv)
            let pb = UnsafePointer(bRows + j * W), pc = UnsafePointer(cRows + j * W)
            let hNow = hs + (j + 1) * W, hPrev = hs + j * W, aNow = aBuf + j * W
            var gB = V8(), dsA = V8(), gB1 = V8(), dsA1 = V8()
            if complex {
                let gy2 = gy + gy
                for n in 0..<N {
                    let ghr = gh[2 * n].addingProduct(gy2, pc[2 * n])
                    let ghi = gh[2 * n + 1].addingProduct(gy2, -pc[2 * n + 1])
                    dCv[2 * n] = gy2 * hNow[2 * n]
                    dCv[2 * n + 1] = -(gy2 * hNow[2 * n + 1])
                    dBv[2 * n] = ghr * su
                    dBv[2 * n + 1] = ghi * su
                    gB = gB.addingProduct(ghr, pb[2 * n])
                    gB1 = gB1.addingProduct(ghi, pb[2 * n + 1])
                    let ar = aNow[2 * n], ai = aNow[2 * n + 1]
                    // w = G_h · conj(a): the state gradient carried to t−1.
                    let wr = (ghr * ar).addingProduct(ghi, ai)
                    let wi = (ghi * ar).addingProduct(-ghr, ai)
                    gh[2 * n] = wr; gh[2 * n + 1] = wi
                    // G_v = w · conj(h_{t−1})
                    let pr = hPrev[2 * n], pi = hPrev[2 * n + 1]
                    let gvr = (wr * pr).addingProduct(wi, pi)
                    let gvi = (wi * pr).addingProduct(-wr, pi)
                    // ds += Re(G_v·conj(A)); av holds A_real·log2 e and A_imag·2/π.
                    dsA = dsA.addingProduct(gvr, av[2 * n])
                    dsA1 = dsA1.addingProduct(gvi, av[2 * n + 1])
                    dAacc[2 * n] = dAacc[2 * n].addingProduct(gvr, s)
                    dAacc[2 * n + 1] = dAacc[2 * n + 1].addingProduct(gvi, s)
                }
                dsA = dsA * (1 / scanLog2e)
                dsA1 = dsA1 * (1 / scanTwoOverPi)
            } else {
                var n = 0
                while n + 2 <= N {
                    let g0 = gh[n].addingProduct(gy, pc[n])
                    let g1 = gh[n + 1].addingProduct(gy, pc[n + 1])
                    dCv[n] = gy * hNow[n]; dCv[n + 1] = gy * hNow[n + 1]
                    dBv[n] = g0 * su; dBv[n + 1] = g1 * su
                    gB = gB.addingProduct(g0, pb[n])
                    gB1 = gB1.addingProduct(g1, pb[n + 1])
                    let w0 = g0 * aNow[n], w1 = g1 * aNow[n + 1]
                    gh[n] = w0; gh[n + 1] = w1
                    let v0 = w0 * hPrev[n], v1 = w1 * hPrev[n + 1]
                    dsA = dsA.addingProduct(v0, av[n])
                    dsA1 = dsA1.addingProduct(v1, av[n + 1])
                    dAacc[n] = dAacc[n].addingProduct(v0, s)
                    dAacc[n + 1] = dAacc[n + 1].addingProduct(v1, s)
                    n += 2
                }
                if n < N {
                    let g0 = gh[n].addingProduct(gy, pc[n])
                    dCv[n] = gy * hNow[n]
                    dBv[n] = g0 * su
                    gB = gB.addingProduct(g0, pb[n])
                    let w0 = g0 * aNow[n]
                    gh[n] = w0
                    let v0 = w0 * hPrev[n]
                    dsA = dsA.addingProduct(v0, av[n])
                    dAacc[n] = dAacc[n].addingProduct(v0, s)
                }
                dsA = (dsA + dsA1) * (1 / scanLog2e)
                dsA1 = V8()
            }
            gB = gB + gB1
            duBuf[j] = (gy * dv).addingProduct(s, gB)
            let dDelta = (dsA + dsA1).addingProduct(uv, gB) * sig[j]
            ddBuf[j] = dDelta
            dbAcc += dDelta
            addLaneSums(dBv, W, to: dbBuf + j * W)
            addLaneSums(dCv, W, to: dcBuf + j * W)
        }
        return (dDacc, dbAcc)
    }
}
