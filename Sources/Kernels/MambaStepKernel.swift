// One generation step of a pre-norm residual Mamba block, out = x + Mamba(LayerNorm(x)), fused
// over preallocated buffers for a few streams on one thread (the CPU fast path of step mode).
//
// The layouts are chosen for the step, not shared with training:
// - conv state (rows, K − 1, D) as a ring over the K − 1 slots, vectors over channels d;
// - SSM state per stream and group of 16 channels: (N, 16) real, or (N, re/im, 16) complex,
//   contiguous in the order the step reads it (a sequential stream: at batch 16 the state is
//   megabytes, beyond L2, and strided planes defeated the prefetcher). The state index n is the
//   inner loop and 16 channels the SIMD lanes, so y = Σ_n C_n·h_n accumulates vertically (no
//   horizontal sums) and Δ, u, z are plain vectors;
// - x_proj's outputs are permuted when packed so that complex B and C arrive as planes
//   (B re, B im, C re, C im) instead of interleaved pairs;
// - A·log₂e and A_imag·2/π are precomputed, as (D/16, N, 16).
// The arithmetic is the selective-scan step's (same exp2 / sincos / softplus approximations),
// so the step equals the parallel forward to float rounding.

import Foundation

/// The parameters of one residual Mamba block, copied and packed for the step (a snapshot:
/// make new weights after the parameters change).
public final class MambaStepWeights {
    public let dModel: Int, dInner: Int, dtRank: Int, dState: Int, dConv: Int
    public let isComplex: Bool
    let normWeight: UnsafeMutablePointer<Float>, normBias: UnsafeMutablePointer<Float>
    let inProj: PackedLinear, xProj: PackedLinear, dtProj: PackedLinear, outProj: PackedLinear
    /// (K, D): conv tap k of channel d at [k·D + d].
    let convWeight: UnsafeMutablePointer<Float>
    let convBias: UnsafeMutablePointer<Float>
    let dtBias: UnsafeMutablePointer<Float>
    /// (D/16, N, 16): A·log₂e (A = −exp(A_log)), and A_imag·2/π (complex only).
    let aLog2: UnsafeMutablePointer<Float>
    let aImagHalfPi: UnsafeMutablePointer<Float>?
    let skip: UnsafeMutablePointer<Float>
    private var owned: [UnsafeMutablePointer<Float>] = []

    /// Pointers are PyTorch-layout parameters: inProj (2D × H), convWeight (D × 1 × K),
    /// xProj (R + 2W × D), dtProj (D × R), ALog and AImag (D × N), D (D).
    public init(dModel H: Int, dInner D: Int, dtRank R: Int, dState N: Int, dConv K: Int, isComplex: Bool,
                normWeight: UnsafePointer<Float>, normBias: UnsafePointer<Float>,
                inProj: UnsafePointer<Float>, convWeight: UnsafePointer<Float>, convBias: UnsafePointer<Float>,
                xProj: UnsafePointer<Float>, dtProjWeight: UnsafePointer<Float>, dtProjBias: UnsafePointer<Float>?,
                ALog: UnsafePointer<Float>, AImag: UnsafePointer<Float>?, D skipD: UnsafePointer<Float>, outProj: UnsafePointer<Float>) {
        precondition(D % 16 == 0, "Mamba step kernel: dInner \(D) must be a multiple of 16 (use the generic step path)")
        precondition(!isComplex || AImag != nil, "Mamba step kernel: a complex block needs A_imag")
        dModel = H; dInner = D; dtRank = R; dState = N; dConv = K
        self.isComplex = isComplex
        let W = isComplex ? 2 * N : N
        func copy(_ p: UnsafePointer<Float>?, _ n: Int) -> UnsafeMutablePointer<Float> {
            let q = UnsafeMutablePointer<Float>.allocate(capacity: n)
            if let p { q.initialize(from: p, count: n) } else { q.initialize(repeating: 0, count: n) }
            return q
        }
        self.normWeight = copy(normWeight, H)
        self.normBias = copy(normBias, H)
        self.inProj = PackedLinear(weight: inProj, bias: nil, outFeatures: 2 * D, inFeatures: H)
        // Complex B and C: PyTorch columns R + 2n (re), R + 2n + 1 (im); packed as planes.
        self.xProj = PackedLinear(weight: xProj, bias: nil, outFeatures: R + 2 * W, inFeatures: D, outputIndex: isComplex ? { j in
            if j < R { return j }
            let block = (j - R) / N, n = (j - R) % N   // 0: B re, 1: B im, 2: C re, 3: C im
            return R + (block / 2) * W + 2 * n + block % 2
        } : nil)
        dtProj = PackedLinear(weight: dtProjWeight, bias: nil, outFeatures: D, inFeatures: R)
        self.outProj = PackedLinear(weight: outProj, bias: nil, outFeatures: H, inFeatures: D)
        self.convWeight = .allocate(capacity: K * D)
        for d in 0..<D { for k in 0..<K { self.convWeight[k * D + d] = convWeight[d * K + k] } }
        self.convBias = copy(convBias, D)
        dtBias = copy(dtProjBias, D)
        aLog2 = .allocate(capacity: N * D)
        // Channel d, state n at ((d / 16)·N + n)·16 + d % 16.
        for d in 0..<D { for n in 0..<N { aLog2[((d / 16) * N + n) * 16 + d % 16] = -Float(exp(Double(ALog[d * N + n]))) * scanLog2e } }
        if let AImag {
            let p = UnsafeMutablePointer<Float>.allocate(capacity: N * D)
            for d in 0..<D { for n in 0..<N { p[((d / 16) * N + n) * 16 + d % 16] = AImag[d * N + n] * scanTwoOverPi } }
            aImagHalfPi = p
        } else {
            aImagHalfPi = nil
        }
        skip = copy(skipD, D)
        owned = [self.normWeight, self.normBias, self.convWeight, self.convBias, dtBias, aLog2, skip] + (aImagHalfPi.map { [$0] } ?? [])
    }

    deinit { for p in owned { p.deallocate() } }
}

/// The per-stream state and scratch of one residual Mamba block for `rows` streams.
public final class MambaStepWorkspace {
    public let rows: Int
    let normed, xz, xc, dbl, delta, y: UnsafeMutablePointer<Float>
    let ldDbl: Int
    /// (rows, K − 1, D) ring; `convHead` is the slot holding the oldest input.
    let convState: UnsafeMutablePointer<Float>
    var convHead = 0
    /// (rows, D/16, N, 16) real or (rows, D/16, N, 2, 16) complex.
    let ssmState: UnsafeMutablePointer<Float>
    let convCount: Int, ssmCount: Int

    public init(_ w: MambaStepWeights, rows: Int) {
        self.rows = rows
        let H = w.dModel, D = w.dInner
        ldDbl = w.xProj.paddedOut
        normed = .allocate(capacity: rows * H)
        xz = .allocate(capacity: rows * 2 * D)
        xc = .allocate(capacity: rows * D)
        dbl = .allocate(capacity: rows * ldDbl)
        delta = .allocate(capacity: rows * D)
        y = .allocate(capacity: rows * D)
        convCount = rows * max(0, w.dConv - 1) * D
        ssmCount = rows * (w.isComplex ? 2 : 1) * w.dState * D
        convState = .allocate(capacity: max(1, convCount))
        ssmState = .allocate(capacity: ssmCount)
        reset()
    }

    deinit { for p in [normed, xz, xc, dbl, delta, y, convState, ssmState] { p.deallocate() } }

    /// Forgets every stream's history.
    public func reset() {
        convState.initialize(repeating: 0, count: max(1, convCount))
        ssmState.initialize(repeating: 0, count: ssmCount)
        convHead = 0
    }
}

public enum MambaStepKernel {
    /// out = x + Mamba(LayerNorm(x)) for one step of `ws.rows` streams. x, out: rows × dModel
    /// contiguous (out may alias x: an in-place residual update). Single-threaded, allocation-free.
    public static func residualStep(_ w: MambaStepWeights, _ ws: MambaStepWorkspace, x: UnsafePointer<Float>,
                                    out: UnsafeMutablePointer<Float>, pool: ThreadPool) {
        let rows = ws.rows, H = w.dModel, D = w.dInner
        LayerNorm.forward(x: x, weight: w.normWeight, bias: w.normBias, y: ws.normed, mean: nil, rstd: nil,
                          rows: rows, channels: H, pool: pool)
        w.inProj.apply(x: ws.normed, ldx: H, rows: rows, y: ws.xz, ldy: 2 * D)
        convStep(w, ws)
        w.xProj.apply(x: ws.xc, ldx: D, rows: rows, y: ws.dbl, ldy: ws.ldDbl)
        w.dtProj.apply(x: ws.dbl, ldx: ws.ldDbl, rows: rows, y: ws.delta, ldy: D)
        scanStep(w, ws)
        w.outProj.apply(x: ws.y, ldx: D, rows: rows, y: out, ldy: H, addend: x, ldAddend: H)
    }

    /// xc = SiLU(bias + Σ_k w_k·x_{t−(K−1)+k}) from the x half of xz; the ring takes x_t.
    static func convStep(_ w: MambaStepWeights, _ ws: MambaStepWorkspace) {
        let D = w.dInner, S = w.dConv - 1
        let head = ws.convHead
        for r in 0..<ws.rows {
            let xr = ws.xz + r * 2 * D, st = ws.convState + r * S * D, o = ws.xc + r * D
            var d = 0
            while d < D {
                let xv = load16(xr + d)
                var a = load16(w.convBias + d)
                for j in 0..<S {
                    let slot = head + j < S ? head + j : head + j - S
                    a = a.addingProduct(load16(w.convWeight + j * D + d), load16(st + slot * D + d))
                }
                a = a.addingProduct(load16(w.convWeight + S * D + d), xv)
                if S > 0 { store16(xv, st + head * D + d) }
                store16(a * scanSigmoid(a), o + d)
                d += 16
            }
        }
        if S > 0 { ws.convHead = head + 1 == S ? 0 : head + 1 }
    }

    /// y = (Σ_n C_n·h_n [2·Re for complex] + D·u)·SiLU(z), h_n ← exp(Δ·A_n)·h_n + Δ·u·B_n,
    /// Δ = softplus(dt_proj(·) + bias); vectors over channels, the state index outer.
    /// 16 channels per vector (two AVX registers): their two dependency chains (exp2 → sincos →
    /// update) interleave, which Zen 1's out-of-order window cannot do for a single 8-wide chain
    /// (that version was latency-bound).
    static func scanStep(_ w: MambaStepWeights, _ ws: MambaStepWorkspace) {
        let D = w.dInner, N = w.dState, R = w.dtRank
        for r in 0..<ws.rows {
            let bc = ws.dbl + r * ws.ldDbl + R
            let u = ws.xc + r * D, z = ws.xz + r * 2 * D + D, dl = ws.delta + r * D, yr = ws.y + r * D
            if let ai = w.aImagHalfPi {
                var d = 0
                while d < D {
                    let h = ws.ssmState + (r * D + d) * 2 * N, a2 = w.aLog2 + d * N, a2i = ai + d * N
                    let s = scanSoftplus(load16(dl + d) + load16(w.dtBias + d))
                    let uv = load16(u + d), su = s * uv
                    var acc = F16()
                    for n in 0..<N {
                        let e = scanExp2(s * load16(a2 + n * 16))
                        let sc = scanSinCosHalfPi(s * load16(a2i + n * 16))
                        let ar = e * sc.cos, aim = e * sc.sin
                        let pr = h + n * 32, pi = pr + 16
                        let hr = load16(pr), hi = load16(pi)
                        let br = F16(repeating: bc[n]), bi = F16(repeating: bc[N + n])
                        let cr = F16(repeating: bc[2 * N + n]), ci = F16(repeating: bc[3 * N + n])
                        let nr = (su * br).addingProduct(ar, hr).addingProduct(-aim, hi)
                        let ni = (su * bi).addingProduct(ar, hi).addingProduct(aim, hr)
                        store16(nr, pr)
                        store16(ni, pi)
                        acc = acc.addingProduct(cr, nr).addingProduct(-ci, ni)
                    }
                    var yv = (2 * acc).addingProduct(load16(w.skip + d), uv)
                    let zv = load16(z + d)
                    yv = yv * (zv * scanSigmoid(zv))
                    store16(yv, yr + d)
                    d += 16
                }
            } else {
                var d = 0
                while d < D {
                    let h = ws.ssmState + (r * D + d) * N, a2 = w.aLog2 + d * N
                    let s = scanSoftplus(load16(dl + d) + load16(w.dtBias + d))
                    let uv = load16(u + d), su = s * uv
                    var acc = F16()
                    for n in 0..<N {
                        let p = h + n * 16
                        let hn = (su * F16(repeating: bc[n])).addingProduct(scanExp2(s * load16(a2 + n * 16)), load16(p))
                        store16(hn, p)
                        acc = acc.addingProduct(F16(repeating: bc[N + n]), hn)
                    }
                    var yv = acc.addingProduct(load16(w.skip + d), uv)
                    let zv = load16(z + d)
                    yv = yv * (zv * scanSigmoid(zv))
                    store16(yv, yr + d)
                    d += 16
                }
            }
        }
    }
}
