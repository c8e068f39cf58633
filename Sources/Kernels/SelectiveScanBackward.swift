// The fused backward of the selective scan. Per (batch element, channel group) it walks the
// chunks from last to first: recomputes the chunk's states from the checkpoint (storing h_t
// and a_t of that chunk only, in per-task scratch), then walks the chunk backwards carrying
// the state gradient g_h. Memory: O(chunk · W) scratch per task, never B·L·D·N.
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
// Determinism: the work is split into tasks (batch element, slice of channel groups) that
// depend only on the shape and thread count. dB/dC (sums over channels) are accumulated per
// task in a fixed group order (slice 0 straight into dB/dC, other slices into workspace) and
// the slices then added in slice order; dA/dD/dbias (sums over batch) go to per-batch partials
// added in batch order. Same thread count ⇒ bit-identical gradients.

extension SelectiveScan {
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
        let groups = shape.channelGroups, slices = layout.slices

        if shape.batch > 0 {
            pool.forEach(layout.tasks) { task in
                let b = task / slices, slice = task % slices
                let gLo = slice * groups / slices, gHi = (slice + 1) * groups / slices
                // dB/dC destination of this task.
                let dBBase: UnsafeMutablePointer<Float>, dCBase: UnsafeMutablePointer<Float>
                let dBStride: Int, dCStride: Int
                if slice == 0 {
                    dBBase = grads.dB + b * L * grads.strideDB; dBStride = grads.strideDB
                    dCBase = grads.dC + b * L * grads.strideDC; dCStride = grads.strideDC
                } else {
                    let p = ws + layout.partialOffset + ((b * (slices - 1) + slice - 1) * 2) * L * W
                    dBBase = p; dBStride = W
                    dCBase = p + L * W; dCStride = W
                }
                for t in 0..<L {
                    let pb = dBBase + t * dBStride, pc = dCBase + t * dCStride
                    for k in 0..<W { pb[k] = 0; pc[k] = 0 }
                }
                let scratch = UnsafeMutableRawPointer(ws + layout.scratchOffset + task * layout.scratch)
                    .assumingMemoryBound(to: V8.self)
                let params = ws + layout.paramOffset + b * layout.paramStride
                for g in gLo..<gHi {
                    backwardGroup(x, b: b, g: g, dOut: dOut, strideDOut: strideDOut, checkpoints: checkpoints,
                                  chunk: chunk, grads: grads, dB: dBBase, dBStride: dBStride,
                                  dC: dCBase, dCStride: dCStride, params: params, scratch: scratch)
                }
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
        pool.forRanges(D * N, grain: 4096) { r in
            for i in r {
                var acc: Float = 0
                for b in 0..<batch { acc += pp[b * stride + i] }
                grads.dA[i] = acc
                if let dAI = grads.dAImag {
                    var acc: Float = 0
                    for b in 0..<batch { acc += pp[b * stride + D * N + i] }
                    dAI[i] = acc
                }
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

    /// The backward of one (batch element, channel group) over the whole sequence.
    static func backwardGroup(_ x: SelectiveScanInputs, b: Int, g: Int,
                              dOut: UnsafePointer<Float>, strideDOut: Int,
                              checkpoints: UnsafePointer<Float>?, chunk: Int,
                              grads: SelectiveScanGradients,
                              dB: UnsafeMutablePointer<Float>, dBStride: Int,
                              dC: UnsafeMutablePointer<Float>, dCStride: Int,
                              params: UnsafeMutablePointer<Float>, scratch: UnsafeMutablePointer<V8>) {
        let shape = x.shape
        let L = shape.length, W = shape.stateWidth, D = shape.channels, N = shape.dState
        let complex = shape.isComplex
        let d0 = g * 8, lanes = min(8, D - d0)
        let c = min(chunk, max(1, L))
        // Scratch layout (in vectors), matching backwardScratchCount.
        let hs = scratch                  // (c+1)·W: h_{t0−1}, h_{t0}, …
        let aBuf = hs + (c + 1) * W       // c·W
        let sBuf = aBuf + c * W           // c
        let yBuf = sBuf + c               // c
        let gh = yBuf + c                 // W
        let dAacc = gh + W                // W
        let av = dAacc + W                // W
        let dBv = av + W                  // W
        let dCv = dBv + W                 // W

        gatherA(x, d0: d0, lanes: lanes, into: av)
        let dv = x.D.map { loadLanes($0 + d0, lanes) } ?? V8()
        let biasv = x.deltaBias.map { loadLanes($0 + d0, lanes) } ?? V8()
        for k in 0..<W { gh[k] = V8(); dAacc[k] = V8() }
        var dDacc = V8(), dbAcc = V8()

        let chunks = chunkCount(shape, chunk: chunk)
        for ci in stride(from: chunks - 1, through: 0, by: -1) {
            let t0 = ci * chunk, count = min(chunk, L - t0)
            if ci == 0 {
                for k in 0..<W { hs[k] = V8() }
            } else {
                let p = checkpoints! + checkpointOffset(shape, chunk: chunk, b: b, k: ci - 1, g: g)
                for k in 0..<W { hs[k] = loadV(p + 8 * k) }
            }
            scanSteps(x, b: b, d0: d0, lanes: lanes, t0: t0, count: count, av: av, dv: dv, biasv: biasv,
                      hs: hs, record: true, aBuf: aBuf, sBuf: sBuf, yBuf: yBuf,
                      out: grads.du, strideOut: 0)

            for j in stride(from: count - 1, through: 0, by: -1) {
                let t = t0 + j, row = b * L + t
                let s = sBuf[j]
                let uv = loadLanes(x.u + row * x.strideU + d0, lanes)
                let go = loadLanes(dOut + row * strideDOut + d0, lanes)
                var gy = go
                if let z = x.z {
                    let zv = loadLanes(z + row * x.strideZ + d0, lanes)
                    let (silu, dsilu) = siluAndDerivative(zv)
                    gy = go * silu
                    storeLanes(go * yBuf[j] * dsilu, grads.dz! + row * grads.strideDZ + d0, lanes)
                }
                dDacc = dDacc.addingProduct(gy, uv)
                let su = s * uv
                let pb = x.B + row * x.strideB, pc = x.C + row * x.strideC
                let hNow = hs + (j + 1) * W, hPrev = hs + j * W, aNow = aBuf + j * W
                var gB = V8(), dsA = V8()
                if complex {
                    let gy2 = gy + gy
                    var gB1 = V8(), dsA1 = V8()
                    for n in 0..<N {
                        let cr = pc[2 * n], cim = pc[2 * n + 1]
                        let ghr = gh[2 * n].addingProduct(gy2, cr)
                        let ghi = gh[2 * n + 1].addingProduct(gy2, -cim)
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
                        dsA = dsA.addingProduct(gvr, av[2 * n])
                        dsA1 = dsA1.addingProduct(gvi, av[2 * n + 1])
                        dAacc[2 * n] = dAacc[2 * n].addingProduct(gvr, s)
                        dAacc[2 * n + 1] = dAacc[2 * n + 1].addingProduct(gvi, s)
                    }
                    gB = gB + gB1; dsA = dsA + dsA1
                } else {
                    var gB1 = V8(), dsA1 = V8()
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
                    gB = gB + gB1; dsA = dsA + dsA1
                }
                let du = (gy * dv).addingProduct(s, gB)
                let ds = dsA.addingProduct(uv, gB)
                let dl = loadLanes(x.delta + row * x.strideDelta + d0, lanes) + biasv
                let dDelta = ds * fastSigmoid(dl)
                dbAcc += dDelta
                storeLanes(du, grads.du + row * grads.strideDU + d0, lanes)
                storeLanes(dDelta, grads.dDelta + row * grads.strideDDelta + d0, lanes)
                addLaneSums(dBv, W, to: dB + t * dBStride)
                addLaneSums(dCv, W, to: dC + t * dCStride)
            }
        }
        // Per-batch parameter partials: [dA (D·N) | dAImag (D·N) | dD (D) | dbias (D)].
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
            params[D * W + d] = dDacc[i]
            params[D * W + D + d] = dbAcc[i]
        }
    }
}
