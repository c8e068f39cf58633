import Foundation

/// The straightforward selective scan: a per-time-step scalar loop in Double over contiguous
/// arrays in our token-major layout (u, delta, z, out: (batch, L, D); B, C: (batch, L, W);
/// A, AImag: (D, N); last state (batch, D, W); W = N or 2N interleaved re/im). It is the test
/// oracle of the fused kernels (its own backward is checked by finite differences) and the
/// baseline of the benchmark ("the straightforward loop"). Complex arithmetic is spelled out
/// on (re, im) pairs; the backward keeps every state of one (b, d) sequence (L·W doubles).
public enum SelectiveScanReference {
    public struct Inputs {
        public var shape: SelectiveScanShape
        public var u: [Double], delta: [Double], z: [Double]?
        public var B: [Double], C: [Double]
        public var A: [Double], AImag: [Double]?
        public var D: [Double]?, deltaBias: [Double]?

        public init(shape: SelectiveScanShape, u: [Double], delta: [Double], z: [Double]? = nil,
                    B: [Double], C: [Double], A: [Double], AImag: [Double]? = nil,
                    D: [Double]? = nil, deltaBias: [Double]? = nil) {
            let s = shape
            precondition(u.count == s.batch * s.length * s.channels && delta.count == u.count)
            precondition(z == nil || z!.count == u.count)
            precondition(B.count == s.batch * s.length * s.stateWidth && C.count == B.count)
            precondition(A.count == s.channels * s.dState && (!s.isComplex || AImag?.count == A.count))
            precondition(D == nil || D!.count == s.channels)
            precondition(deltaBias == nil || deltaBias!.count == s.channels)
            self.shape = shape; self.u = u; self.delta = delta; self.z = z; self.B = B; self.C = C
            self.A = A; self.AImag = AImag; self.D = D; self.deltaBias = deltaBias
        }
    }

    public struct Outputs {
        /// (batch, L, D)
        public var out: [Double]
        /// (batch, D, W)
        public var lastState: [Double]
    }

    public struct Gradients {
        public var du: [Double], dDelta: [Double], dz: [Double]?
        public var dB: [Double], dC: [Double]
        public var dA: [Double], dAImag: [Double]?
        public var dD: [Double], dDeltaBias: [Double]
    }

    @inline(__always) static func softplus(_ x: Double) -> Double { x > 20 ? x : log1p(exp(x)) }
    @inline(__always) static func sigmoid(_ x: Double) -> Double { 1 / (1 + exp(-x)) }

    public static func forward(_ x: Inputs) -> Outputs {
        let s = x.shape
        let L = s.length, Dn = s.channels, N = s.dState, W = s.stateWidth
        var out = [Double](repeating: 0, count: s.batch * L * Dn)
        var last = [Double](repeating: 0, count: s.batch * Dn * W)
        var h = [Double](repeating: 0, count: W)
        for b in 0..<s.batch {
            for d in 0..<Dn {
                for k in 0..<W { h[k] = 0 }
                for t in 0..<L {
                    let i = (b * L + t) * Dn + d
                    let row = (b * L + t) * W
                    let dt = softplus(x.delta[i] + (x.deltaBias?[d] ?? 0))
                    let u = x.u[i]
                    var y = 0.0
                    for n in 0..<N {
                        if s.isComplex {
                            let e = exp(dt * x.A[d * N + n]), th = dt * x.AImag![d * N + n]
                            let ar = e * cos(th), ai = e * sin(th)
                            let hr = ar * h[2 * n] - ai * h[2 * n + 1] + dt * u * x.B[row + 2 * n]
                            let hi = ar * h[2 * n + 1] + ai * h[2 * n] + dt * u * x.B[row + 2 * n + 1]
                            h[2 * n] = hr; h[2 * n + 1] = hi
                            y += 2 * (x.C[row + 2 * n] * hr - x.C[row + 2 * n + 1] * hi)
                        } else {
                            h[n] = exp(dt * x.A[d * N + n]) * h[n] + dt * u * x.B[row + n]
                            y += x.C[row + n] * h[n]
                        }
                    }
                    if let D = x.D { y += D[d] * u }
                    if let z = x.z { y *= z[i] * sigmoid(z[i]) }
                    out[i] = y
                }
                for k in 0..<W { last[(b * Dn + d) * W + k] = h[k] }
            }
        }
        return Outputs(out: out, lastState: last)
    }

    public static func backward(_ x: Inputs, dOut: [Double]) -> Gradients {
        let s = x.shape
        let L = s.length, Dn = s.channels, N = s.dState, W = s.stateWidth
        let cx = s.isComplex
        var g = Gradients(du: .init(repeating: 0, count: dOut.count), dDelta: .init(repeating: 0, count: dOut.count),
                          dz: x.z == nil ? nil : .init(repeating: 0, count: dOut.count),
                          dB: .init(repeating: 0, count: x.B.count), dC: .init(repeating: 0, count: x.C.count),
                          dA: .init(repeating: 0, count: Dn * N), dAImag: cx ? .init(repeating: 0, count: Dn * N) : nil,
                          dD: .init(repeating: 0, count: Dn), dDeltaBias: .init(repeating: 0, count: Dn))
        // hist[(t+1)·W + k] = h_t, hist[0..<W] = h_{-1} = 0.
        var hist = [Double](repeating: 0, count: (L + 1) * W)
        var gh = [Double](repeating: 0, count: W)
        for b in 0..<s.batch {
            for d in 0..<Dn {
                let bias = x.deltaBias?[d] ?? 0
                // Forward, keeping every state.
                for t in 0..<L {
                    let i = (b * L + t) * Dn + d, row = (b * L + t) * W
                    let dt = softplus(x.delta[i] + bias), u = x.u[i]
                    for n in 0..<N {
                        if cx {
                            let e = exp(dt * x.A[d * N + n]), th = dt * x.AImag![d * N + n]
                            let ar = e * cos(th), ai = e * sin(th)
                            let pr = hist[t * W + 2 * n], pi = hist[t * W + 2 * n + 1]
                            hist[(t + 1) * W + 2 * n] = ar * pr - ai * pi + dt * u * x.B[row + 2 * n]
                            hist[(t + 1) * W + 2 * n + 1] = ar * pi + ai * pr + dt * u * x.B[row + 2 * n + 1]
                        } else {
                            hist[(t + 1) * W + n] = exp(dt * x.A[d * N + n]) * hist[t * W + n] + dt * u * x.B[row + n]
                        }
                    }
                }
                // Backward.
                for k in 0..<W { gh[k] = 0 }   // G_h(t) from the future: conj(a_{t+1})·G_h(t+1)
                for t in stride(from: L - 1, through: 0, by: -1) {
                    let i = (b * L + t) * Dn + d, row = (b * L + t) * W
                    let pre = x.delta[i] + bias
                    let dt = softplus(pre), u = x.u[i]
                    // y before the gate
                    var y = 0.0
                    for n in 0..<N {
                        if cx {
                            y += 2 * (x.C[row + 2 * n] * hist[(t + 1) * W + 2 * n] - x.C[row + 2 * n + 1] * hist[(t + 1) * W + 2 * n + 1])
                        } else {
                            y += x.C[row + n] * hist[(t + 1) * W + n]
                        }
                    }
                    if let D = x.D { y += D[d] * u }
                    var gy = dOut[i]
                    if let z = x.z {
                        let zz = z[i], sg = sigmoid(zz)
                        g.dz![i] = dOut[i] * y * sg * (1 + zz * (1 - sg))
                        gy = dOut[i] * zz * sg
                    }
                    var du = 0.0, ddt = 0.0
                    if let D = x.D { du += gy * D[d]; g.dD[d] += gy * u }
                    for n in 0..<N {
                        if cx {
                            let cr = x.C[row + 2 * n], ci = x.C[row + 2 * n + 1]
                            let hr = hist[(t + 1) * W + 2 * n], hi = hist[(t + 1) * W + 2 * n + 1]
                            // y = 2(cr·hr − ci·hi)
                            g.dC[row + 2 * n] += 2 * gy * hr
                            g.dC[row + 2 * n + 1] += -2 * gy * hi
                            let ghr = gh[2 * n] + 2 * gy * cr
                            let ghi = gh[2 * n + 1] - 2 * gy * ci
                            // h = a·p + dt·u·B
                            let br = x.B[row + 2 * n], bi = x.B[row + 2 * n + 1]
                            g.dB[row + 2 * n] += ghr * dt * u
                            g.dB[row + 2 * n + 1] += ghi * dt * u
                            let gBu = ghr * br + ghi * bi        // ∂L/∂(dt·u)
                            du += gBu * dt
                            ddt += gBu * u
                            let Ar = x.A[d * N + n], Ai = x.AImag![d * N + n]
                            let e = exp(dt * Ar), th = dt * Ai
                            let ar = e * cos(th), ai = e * sin(th)
                            let pr = hist[t * W + 2 * n], pi = hist[t * W + 2 * n + 1]
                            // G_a = G_h·conj(p); a = exp(v) ⇒ G_v = G_a·conj(a); v = dt·A.
                            let gar = ghr * pr + ghi * pi, gai = ghi * pr - ghr * pi
                            let gvr = gar * ar + gai * ai, gvi = gai * ar - gar * ai
                            g.dA[d * N + n] += gvr * dt
                            g.dAImag![d * N + n] += gvi * dt
                            ddt += gvr * Ar + gvi * Ai
                            // G_p = G_h·conj(a)
                            gh[2 * n] = ghr * ar + ghi * ai
                            gh[2 * n + 1] = ghi * ar - ghr * ai
                        } else {
                            let hn = hist[(t + 1) * W + n], p = hist[t * W + n]
                            g.dC[row + n] += gy * hn
                            let ghn = gh[n] + gy * x.C[row + n]
                            g.dB[row + n] += ghn * dt * u
                            du += ghn * x.B[row + n] * dt
                            ddt += ghn * x.B[row + n] * u
                            let An = x.A[d * N + n]
                            let a = exp(dt * An)
                            let gv = ghn * p * a
                            g.dA[d * N + n] += gv * dt
                            ddt += gv * An
                            gh[n] = ghn * a
                        }
                    }
                    g.du[i] = du
                    let dpre = ddt * sigmoid(pre)
                    g.dDelta[i] = dpre
                    g.dDeltaBias[d] += dpre
                }
            }
        }
        return g
    }
}
