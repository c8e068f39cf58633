// The fused forward of the selective scan: one pass over the sequence per (batch element,
// group of 8 channels), the state h kept as W vectors of 8 channel lanes, never materialising
// (batch × L × D × N). Stores the state at chunk boundaries for the backward.

extension SelectiveScan {
    /// Runs the scan.
    ///
    /// - Parameters:
    ///   - out: (batch, L, D), row stride `strideOut` (default D). Only columns 0..<D of each row are written.
    ///   - lastState: optional (batch, D, W) contiguous: the state after the last step (complex:
    ///     re/im interleaved), the layout `step` uses.
    ///   - checkpoints: optional, `checkpointCount(shape, chunk:)` floats: states at chunk
    ///     boundaries for `backward` (which must get the same `chunk`). Pass nil for inference.
    ///   - chunk: checkpoint interval in time steps (≥ 1).
    public static func forward(_ x: SelectiveScanInputs,
                               out: UnsafeMutablePointer<Float>, strideOut: Int? = nil,
                               lastState: UnsafeMutablePointer<Float>? = nil,
                               checkpoints: UnsafeMutablePointer<Float>? = nil,
                               chunk: Int = defaultChunk, pool: ThreadPool) {
        x.validate()
        precondition(chunk >= 1, "selective scan: chunk must be ≥ 1")
        let s = x.shape
        let strideOut = strideOut ?? s.channels
        precondition(strideOut >= s.channels)
        if s.batch == 0 || s.channels == 0 { return }
        let W = s.stateWidth
        let groups = s.channelGroups
        pool.forEach(s.batch * groups) { task in
            let b = task / groups, g = task % groups
            withUnsafeTemporaryAllocation(of: V8.self, capacity: 2 * W) { tmp in
                let av = tmp.baseAddress!, h = av + W
                scanGroupForward(x, b: b, g: g, out: out, strideOut: strideOut, lastState: lastState,
                                 checkpoints: checkpoints, chunk: chunk, av: av, h: h)
            }
        }
    }

    /// av[k] (k < W) ← A for the 8 channels of group g (lanes beyond D are 0); complex:
    /// av[2n] = A_real[·, n], av[2n+1] = A_imag[·, n].
    @inline(__always)
    static func gatherA(_ x: SelectiveScanInputs, d0: Int, lanes: Int, into av: UnsafeMutablePointer<V8>) {
        let N = x.shape.dState
        for n in 0..<N {
            var re = V8(), im = V8()
            for i in 0..<lanes {
                re[i] = x.A[(d0 + i) * N + n]
                if x.shape.isComplex { im[i] = x.AImag![(d0 + i) * N + n] }
            }
            if x.shape.isComplex { av[2 * n] = re; av[2 * n + 1] = im } else { av[n] = re }
        }
    }

    /// One time step for one channel group, real A: hOut[n] = a·hIn[n] + s·u·B[n]; returns Σ_n C[n]·hOut[n].
    /// With `record`, also stores a_t[n] into aOut (for the backward). hIn may equal hOut.
    @inline(__always)
    static func stepReal(s: V8, su: V8, B pb: UnsafePointer<Float>, C pc: UnsafePointer<Float>,
                         av: UnsafePointer<V8>, hIn: UnsafePointer<V8>, hOut: UnsafeMutablePointer<V8>,
                         N: Int, record: Bool, aOut: UnsafeMutablePointer<V8>) -> V8 {
        var y0 = V8(), y1 = V8()
        var n = 0
        while n + 2 <= N {
            let a0 = fastExp(s * av[n]), a1 = fastExp(s * av[n + 1])
            let h0 = (su * pb[n]).addingProduct(a0, hIn[n])
            let h1 = (su * pb[n + 1]).addingProduct(a1, hIn[n + 1])
            hOut[n] = h0; hOut[n + 1] = h1
            if record { aOut[n] = a0; aOut[n + 1] = a1 }
            y0 = y0.addingProduct(V8(repeating: pc[n]), h0)
            y1 = y1.addingProduct(V8(repeating: pc[n + 1]), h1)
            n += 2
        }
        if n < N {
            let a0 = fastExp(s * av[n])
            let h0 = (su * pb[n]).addingProduct(a0, hIn[n])
            hOut[n] = h0
            if record { aOut[n] = a0 }
            y0 = y0.addingProduct(V8(repeating: pc[n]), h0)
        }
        return y0 + y1
    }

    /// One time step, complex A (vectors interleaved re/im per state index, B and C rows
    /// interleaved): h ← a·h + s·u·B with a = exp(s·A); returns Re(Σ_n C[n]·h[n]) (not doubled).
    @inline(__always)
    static func stepComplex(s: V8, su: V8, B pb: UnsafePointer<Float>, C pc: UnsafePointer<Float>,
                            av: UnsafePointer<V8>, hIn: UnsafePointer<V8>, hOut: UnsafeMutablePointer<V8>,
                            N: Int, record: Bool, aOut: UnsafeMutablePointer<V8>) -> V8 {
        var y0 = V8(), y1 = V8()
        for n in 0..<N {
            let e = fastExp(s * av[2 * n])
            let sc = fastSinCos(s * av[2 * n + 1])
            let ar = e * sc.cos, ai = e * sc.sin
            let hr = hIn[2 * n], hi = hIn[2 * n + 1]
            let nr = (su * pb[2 * n]).addingProduct(ar, hr).addingProduct(-ai, hi)
            let ni = (su * pb[2 * n + 1]).addingProduct(ar, hi).addingProduct(ai, hr)
            hOut[2 * n] = nr; hOut[2 * n + 1] = ni
            if record { aOut[2 * n] = ar; aOut[2 * n + 1] = ai }
            y0 = y0.addingProduct(V8(repeating: pc[2 * n]), nr)
            y1 = y1.addingProduct(V8(repeating: -pc[2 * n + 1]), ni)
        }
        return y0 + y1
    }

    /// Runs time steps t0..<t0+count of one group starting from state `h0` (W vectors).
    /// Forward mode (`record == false`): h updated in place in `hs`, gated outputs written to
    /// `out`. Recompute mode (`record == true`): states h_t → hs[(j+1)·W…], a_t → as[j·W…],
    /// softplus → sBuf[j], pre-gate y (incl. D·u) → yBuf[j]; `out` unused.
    @inline(__always)
    static func scanSteps(_ x: SelectiveScanInputs, b: Int, d0: Int, lanes: Int, t0: Int, count: Int,
                          av: UnsafePointer<V8>, dv: V8, biasv: V8,
                          hs: UnsafeMutablePointer<V8>, record: Bool,
                          aBuf: UnsafeMutablePointer<V8>, sBuf: UnsafeMutablePointer<V8>, yBuf: UnsafeMutablePointer<V8>,
                          out: UnsafeMutablePointer<Float>, strideOut: Int) {
        let L = x.shape.length, N = x.shape.dState, W = x.shape.stateWidth
        let complex = x.shape.isComplex
        for j in 0..<count {
            let row = b * L + t0 + j
            let s = fastSoftplus(loadLanes(x.delta + row * x.strideDelta + d0, lanes) + biasv)
            let uv = loadLanes(x.u + row * x.strideU + d0, lanes)
            let su = s * uv
            let pb = x.B + row * x.strideB, pc = x.C + row * x.strideC
            let hIn = record ? hs + j * W : hs
            let hOut = record ? hs + (j + 1) * W : hs
            let aOut = aBuf + j * W
            var y: V8
            if complex {
                y = stepComplex(s: s, su: su, B: pb, C: pc, av: av, hIn: hIn, hOut: hOut, N: N, record: record, aOut: aOut)
                y = y + y
            } else {
                y = stepReal(s: s, su: su, B: pb, C: pc, av: av, hIn: hIn, hOut: hOut, N: N, record: record, aOut: aOut)
            }
            y = y.addingProduct(dv, uv)
            if record {
                sBuf[j] = s
                yBuf[j] = y
            } else {
                if let z = x.z {
                    let zv = loadLanes(z + row * x.strideZ + d0, lanes)
                    y = y * (zv * fastSigmoid(zv))
                }
                storeLanes(y, out + row * strideOut + d0, lanes)
            }
        }
    }

    /// The whole forward of one (batch element, channel group).
    static func scanGroupForward(_ x: SelectiveScanInputs, b: Int, g: Int,
                                 out: UnsafeMutablePointer<Float>, strideOut: Int,
                                 lastState: UnsafeMutablePointer<Float>?, checkpoints: UnsafeMutablePointer<Float>?,
                                 chunk: Int, av: UnsafeMutablePointer<V8>, h: UnsafeMutablePointer<V8>) {
        let shape = x.shape
        let L = shape.length, W = shape.stateWidth, D = shape.channels
        let d0 = g * 8, lanes = min(8, D - d0)
        gatherA(x, d0: d0, lanes: lanes, into: av)
        let dv = x.D.map { loadLanes($0 + d0, lanes) } ?? V8()
        let biasv = x.deltaBias.map { loadLanes($0 + d0, lanes) } ?? V8()
        for k in 0..<W { h[k] = V8() }
        let chunks = chunkCount(shape, chunk: chunk)
        for c in 0..<chunks {
            let t0 = c * chunk, count = min(chunk, L - t0)
            scanSteps(x, b: b, d0: d0, lanes: lanes, t0: t0, count: count, av: av, dv: dv, biasv: biasv,
                      hs: h, record: false, aBuf: h, sBuf: h, yBuf: h, out: out, strideOut: strideOut)
            if let ck = checkpoints, c < chunks - 1 {
                let p = ck + checkpointOffset(shape, chunk: chunk, b: b, k: c, g: g)
                for k in 0..<W { storeV(h[k], p + 8 * k) }
            }
        }
        if let last = lastState {
            for i in 0..<lanes {
                let p = last + (b * D + d0 + i) * W
                for k in 0..<W { p[k] = h[k][i] }
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
