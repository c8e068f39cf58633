// Fused selective scan (Mamba's S6), real and complex, forward, backward and step, in the
// token-major layout of Kernels/SelectiveScan.swift (u, delta, z, out: (batch, L, D) rows
// with strides; B, C: (batch, L, W) rows, W = N or 2N interleaved re/im; A, AImag: (D, N)).
//
// Work split. A thread block has 128 threads = (128 / P) channels × P lanes; lane j of a
// channel owns the states n = j + s·P (s < S ≤ 2), so N ≤ 2·32 = 64. P is a power of two
// ≤ 32 dividing the warp, so sums over n (y, and du / dDelta in the backward) are P-lane
// xor shuffles and never leave the warp; threads along channels read each row coalesced.
// Time is cut into chunks of T ≤ 64 steps; grid = (chunks, channel blocks, batch), so the
// parallelism is batch·D·N·chunks, not batch·D. The state never goes to memory per step:
//
//   forward   1. wm_scan_chunk_state   each chunk from a zero state: its end state and Σ softplus(delta)
//             2. wm_scan_combine       per (b, d, n), in chunk order: start_c = P_c·start_{c−1} + end_{c−1},
//                                      P_c = exp(A·Σ_t s_t) (the chunk's decay product, complex for complex A)
//             3. wm_scan_chunk_output  each chunk again from its true start state: y, D·u, gate, out
//   The chunk start states are the checkpoints (layout (batch, chunks, D, W)).
//   backward  1. wm_scan_bwd_chunk_carry   each chunk's reverse adjoint from zero (needs no state) and Σ s_t
//             2. wm_scan_bwd_combine       per (b, d, n), in reverse chunk order: the true incoming adjoint
//             3. wm_scan_bwd_chunk         recompute the chunk's states from its checkpoint (kept per
//                                          thread, T·W floats), then the reverse pass with every gradient.
//   dB, dC sum over channels: reduced across the warp's channels by shuffles, then one atomicAdd
//   per warp; dA, dD, dDeltaBias: per-thread sums over the chunk, one atomicAdd each.
// Complex A costs one exp and one sincos per state update; a thread owns whole complex
// states, so a complex multiply needs no exchange between lanes.

#define WM_MAX_T 64
#define WM_MAX_S 2

struct ScanArgs {
    const float* u; long long su;
    const float* delta; long long sdelta;
    const float* z; long long sz;
    const float* B; long long sB;
    const float* C; long long sC;
    const float* A; const float* AImag;
    const float* Dskip; const float* deltaBias;
    long long batch, L, D; int N, P, T;
};

__device__ __forceinline__ float wm_softplus_s(float x) { return x > 20.0f ? x : log1pf(expf(x)); }
__device__ __forceinline__ float wm_sigmoid_s(float x) { return 1.0f / (1.0f + expf(-x)); }

__device__ __forceinline__ float wm_lane_sum(float v, int P) {
    for (int o = P / 2; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}
// Sum over the channels of a warp (lanes with the same position in their P-group).
__device__ __forceinline__ float wm_channel_sum(float v, int P) {
    for (int o = P; o < 32; o <<= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

// Thread coordinates: channel d, lane j; valid = d < D.
#define SCAN_THREAD \
    const int P = a.P, N = a.N, W = CX ? 2 * N : N; \
    const int cpb = 128 / P; \
    const long long b = blockIdx.z, c = blockIdx.x; \
    const long long d = (long long)blockIdx.y * cpb + threadIdx.x / P; \
    const int j = threadIdx.x % P; \
    const bool valid = d < a.D; \
    const long long t0 = c * a.T, t1 = min(a.L, t0 + a.T); \
    const long long chunks = (a.L + a.T - 1) / a.T; \
    float Ar[WM_MAX_S], Ai[WM_MAX_S]; bool has[WM_MAX_S]; \
    _Pragma("unroll") for (int s = 0; s < WM_MAX_S; ++s) { \
        int n = j + s * P; has[s] = valid && n < N; \
        Ar[s] = has[s] ? a.A[d * N + n] : 0.0f; \
        Ai[s] = (CX && has[s]) ? a.AImag[d * N + n] : 0.0f; \
    } \
    const float bias = (valid && a.deltaBias) ? a.deltaBias[d] : 0.0f; \
    (void)W; (void)chunks;

// State element index of (b, chunk, d, k) in a (batch, chunks, D, W) buffer.
#define STATE_AT(bb, cc, dd, k) ((((bb) * chunks + (cc)) * a.D + (dd)) * W + (k))

// h ← a·h + s·u·B for one state slot (complex: (hr, hi) ← (ar + i ai)(hr + i hi) + s·u·(br + i bi)).
template <bool CX>
__device__ __forceinline__ void wm_update(float& hr, float& hi, float sdt, float Ar, float Ai, float su, float br, float bi,
                                          float& ar, float& ai) {
    if (CX) {
        float e = expf(sdt * Ar), sn, cs;
        sincosf(sdt * Ai, &sn, &cs);
        ar = e * cs; ai = e * sn;
        float nr = ar * hr - ai * hi + su * br;
        float ni = ar * hi + ai * hr + su * bi;
        hr = nr; hi = ni;
    } else {
        ar = expf(sdt * Ar); ai = 0.0f;
        hr = ar * hr + su * br;
    }
}

template <bool CX>
__device__ void wm_chunk_state(ScanArgs a, float* hEnd, float* sumS) {
    SCAN_THREAD
    float hr[WM_MAX_S] = {}, hi[WM_MAX_S] = {};
    float total = 0.0f;
    for (long long t = t0; t < t1; ++t) {
        long long row = b * a.L + t;
        float sdt = 0.0f, uu = 0.0f;
        if (valid) { sdt = wm_softplus_s(a.delta[row * a.sdelta + d] + bias); uu = a.u[row * a.su + d]; }
        total += sdt;
        const float* Br = a.B + row * a.sB;
        #pragma unroll
        for (int s = 0; s < WM_MAX_S; ++s) {
            if (!has[s]) continue;
            int n = j + s * P;
            float br = CX ? Br[2 * n] : Br[n], bi = CX ? Br[2 * n + 1] : 0.0f, ar, ai;
            wm_update<CX>(hr[s], hi[s], sdt, Ar[s], Ai[s], sdt * uu, br, bi, ar, ai);
        }
    }
    #pragma unroll
    for (int s = 0; s < WM_MAX_S; ++s) {
        if (!has[s]) continue;
        int n = j + s * P;
        if (CX) { hEnd[STATE_AT(b, c, d, 2 * n)] = hr[s]; hEnd[STATE_AT(b, c, d, 2 * n + 1)] = hi[s]; }
        else hEnd[STATE_AT(b, c, d, n)] = hr[s];
    }
    if (valid && j == 0) sumS[(b * chunks + c) * a.D + d] = total;
}

extern "C" __global__ void __launch_bounds__(128) wm_scan_chunk_state_real(ScanArgs a, float* hEnd, float* sumS) { wm_chunk_state<false>(a, hEnd, sumS); }
extern "C" __global__ void __launch_bounds__(128) wm_scan_chunk_state_complex(ScanArgs a, float* hEnd, float* sumS) { wm_chunk_state<true>(a, hEnd, sumS); }

// Forward combine: starts[b, c] = P_c−1·starts[b, c−1] + hEnd[b, c−1]; one thread per (b, d, n).
// reverse = 1 is the backward's combine of adjoints: in reverse chunk order with conj(P_c)
// (in place: buffer holds each chunk's local adjoint, and gets its incoming adjoint).
template <bool CX>
__device__ void wm_combine(const float* A, const float* AImag, const float* sumS, const float* local, float* starts,
                           long long batch, long long chunks, long long D, int N, int reverse) {
    long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= batch * D * N) return;
    const int W = CX ? 2 * N : N;
    long long n = i % N, d = (i / N) % D, b = i / (N * D);
    float Ar = A[d * N + n], Ai = CX ? AImag[d * N + n] : 0.0f;
    float gr = 0.0f, gi = 0.0f;
    for (long long k = 0; k < chunks; ++k) {
        long long cc = reverse ? chunks - 1 - k : k;
        long long base = ((b * chunks + cc) * D + d) * W;
        float S = sumS[(b * chunks + cc) * D + d];
        float lr = CX ? local[base + 2 * n] : local[base + n], li = CX ? local[base + 2 * n + 1] : 0.0f;
        if (CX) { starts[base + 2 * n] = gr; starts[base + 2 * n + 1] = gi; } else starts[base + n] = gr;
        float e = expf(S * Ar);
        if (CX) {
            float sn, cs; sincosf(S * Ai, &sn, &cs);
            float pr = e * cs, pi = reverse ? -e * sn : e * sn;
            float nr = pr * gr - pi * gi + lr, ni = pr * gi + pi * gr + li;
            gr = nr; gi = ni;
        } else {
            gr = e * gr + lr;
        }
    }
}

extern "C" __global__ void wm_scan_combine_real(const float* A, const float* sumS, const float* local, float* starts,
                                                long long batch, long long chunks, long long D, int N, int reverse) {
    wm_combine<false>(A, nullptr, sumS, local, starts, batch, chunks, D, N, reverse);
}
extern "C" __global__ void wm_scan_combine_complex(const float* A, const float* AImag, const float* sumS, const float* local,
                                                   float* starts, long long batch, long long chunks, long long D, int N, int reverse) {
    wm_combine<true>(A, AImag, sumS, local, starts, batch, chunks, D, N, reverse);
}

// Forward output of each chunk from its start state (null = zero). endStates (batch, D, W),
// when non-null, gets the state after the last step (the step mode passes state as both).
template <bool CX>
__device__ void wm_chunk_output(ScanArgs a, const float* starts, float* endStates, float* out, long long sOut) {
    SCAN_THREAD
    float hr[WM_MAX_S] = {}, hi[WM_MAX_S] = {};
    #pragma unroll
    for (int s = 0; s < WM_MAX_S; ++s) {
        if (!has[s] || !starts) continue;
        int n = j + s * P;
        if (CX) { hr[s] = starts[STATE_AT(b, c, d, 2 * n)]; hi[s] = starts[STATE_AT(b, c, d, 2 * n + 1)]; }
        else hr[s] = starts[STATE_AT(b, c, d, n)];
    }
    const float Dd = (valid && a.Dskip) ? a.Dskip[d] : 0.0f;
    for (long long t = t0; t < t1; ++t) {
        long long row = b * a.L + t;
        float sdt = 0.0f, uu = 0.0f;
        if (valid) { sdt = wm_softplus_s(a.delta[row * a.sdelta + d] + bias); uu = a.u[row * a.su + d]; }
        const float* Br = a.B + row * a.sB;
        const float* Cr = a.C + row * a.sC;
        float y = 0.0f;
        #pragma unroll
        for (int s = 0; s < WM_MAX_S; ++s) {
            if (!has[s]) continue;
            int n = j + s * P;
            float br = CX ? Br[2 * n] : Br[n], bi = CX ? Br[2 * n + 1] : 0.0f, ar, ai;
            wm_update<CX>(hr[s], hi[s], sdt, Ar[s], Ai[s], sdt * uu, br, bi, ar, ai);
            y += CX ? 2.0f * (Cr[2 * n] * hr[s] - Cr[2 * n + 1] * hi[s]) : Cr[n] * hr[s];
        }
        y = wm_lane_sum(y, P);
        if (valid && j == 0) {
            y += Dd * uu;
            if (a.z) { float zz = a.z[row * a.sz + d]; y *= zz * wm_sigmoid_s(zz); }
            out[row * sOut + d] = y;
        }
    }
    if (endStates && c == chunks - 1) {
        #pragma unroll
        for (int s = 0; s < WM_MAX_S; ++s) {
            if (!has[s]) continue;
            int n = j + s * P;
            if (CX) { endStates[(b * a.D + d) * W + 2 * n] = hr[s]; endStates[(b * a.D + d) * W + 2 * n + 1] = hi[s]; }
            else endStates[(b * a.D + d) * W + n] = hr[s];
        }
    }
}

extern "C" __global__ void __launch_bounds__(128) wm_scan_chunk_output_real(ScanArgs a, const float* starts, float* endStates, float* out, long long sOut) {
    wm_chunk_output<false>(a, starts, endStates, out, sOut);
}
extern "C" __global__ void __launch_bounds__(128) wm_scan_chunk_output_complex(ScanArgs a, const float* starts, float* endStates, float* out, long long sOut) {
    wm_chunk_output<true>(a, starts, endStates, out, sOut);
}

// The gate's split of dOut: gy = ∂L/∂y (before the gate).
__device__ __forceinline__ float wm_gy(const ScanArgs& a, const float* dOut, long long sdOut, long long row, long long d) {
    float g = dOut[row * sdOut + d];
    if (a.z) { float zz = a.z[row * a.sz + d]; g *= zz * wm_sigmoid_s(zz); }
    return g;
}

// Backward pass 1: each chunk's adjoint at its start from a zero adjoint at its end, and Σ s_t.
// gh_{t−1} = conj(a_t)·(gh_t + gy_t·C̃_t), C̃ = C (real) or 2·conj(C) (complex, y = 2 Re(C·h)).
template <bool CX>
__device__ void wm_bwd_chunk_carry(ScanArgs a, const float* dOut, long long sdOut, float* local, float* sumS) {
    SCAN_THREAD
    float gr[WM_MAX_S] = {}, gi[WM_MAX_S] = {};
    float total = 0.0f;
    for (long long t = t1 - 1; t >= t0; --t) {
        long long row = b * a.L + t;
        float sdt = 0.0f, gy = 0.0f;
        if (valid) { sdt = wm_softplus_s(a.delta[row * a.sdelta + d] + bias); gy = wm_gy(a, dOut, sdOut, row, d); }
        total += sdt;
        const float* Cr = a.C + row * a.sC;
        #pragma unroll
        for (int s = 0; s < WM_MAX_S; ++s) {
            if (!has[s]) continue;
            int n = j + s * P;
            if (CX) {
                float hr_ = gr[s] + 2.0f * gy * Cr[2 * n], hi_ = gi[s] - 2.0f * gy * Cr[2 * n + 1];
                float e = expf(sdt * Ar[s]), sn, cs; sincosf(sdt * Ai[s], &sn, &cs);
                float ar = e * cs, ai = e * sn;
                gr[s] = hr_ * ar + hi_ * ai; gi[s] = hi_ * ar - hr_ * ai;
            } else {
                gr[s] = (gr[s] + gy * Cr[n]) * expf(sdt * Ar[s]);
            }
        }
    }
    #pragma unroll
    for (int s = 0; s < WM_MAX_S; ++s) {
        if (!has[s]) continue;
        int n = j + s * P;
        if (CX) { local[STATE_AT(b, c, d, 2 * n)] = gr[s]; local[STATE_AT(b, c, d, 2 * n + 1)] = gi[s]; }
        else local[STATE_AT(b, c, d, n)] = gr[s];
    }
    if (valid && j == 0) sumS[(b * chunks + c) * a.D + d] = total;
}

extern "C" __global__ void __launch_bounds__(128) wm_scan_bwd_chunk_carry_real(ScanArgs a, const float* dOut, long long sdOut, float* local, float* sumS) {
    wm_bwd_chunk_carry<false>(a, dOut, sdOut, local, sumS);
}
extern "C" __global__ void __launch_bounds__(128) wm_scan_bwd_chunk_carry_complex(ScanArgs a, const float* dOut, long long sdOut, float* local, float* sumS) {
    wm_bwd_chunk_carry<true>(a, dOut, sdOut, local, sumS);
}

struct ScanGrads {
    float* du; long long sdu;
    float* dDelta; long long sdDelta;
    float* dz; long long sdz;
    float* dB; long long sdB;
    float* dC; long long sdC;
    float* dA; float* dAImag; float* dD; float* dDeltaBias;
};

// Backward pass 3: the chunk's states from its checkpoint, then the reverse pass from the
// incoming adjoint with every gradient. dB, dC, dA, dAImag, dD, dDeltaBias must be zeroed
// first (they are sums over channels / tokens by atomics).
template <bool CX>
__device__ void wm_bwd_chunk(ScanArgs a, const float* starts, const float* incoming, const float* dOut, long long sdOut, ScanGrads g) {
    SCAN_THREAD
    // hist[t − t0] = the state after step t; the state before t0 is h0.
    float hist[WM_MAX_T][WM_MAX_S][CX ? 2 : 1];
    float h0r[WM_MAX_S] = {}, h0i[WM_MAX_S] = {}, gr[WM_MAX_S] = {}, gi[WM_MAX_S] = {};
    #pragma unroll
    for (int s = 0; s < WM_MAX_S; ++s) {
        if (!has[s]) continue;
        int n = j + s * P;
        if (CX) {
            h0r[s] = starts[STATE_AT(b, c, d, 2 * n)]; h0i[s] = starts[STATE_AT(b, c, d, 2 * n + 1)];
            gr[s] = incoming[STATE_AT(b, c, d, 2 * n)]; gi[s] = incoming[STATE_AT(b, c, d, 2 * n + 1)];
        } else {
            h0r[s] = starts[STATE_AT(b, c, d, n)];
            gr[s] = incoming[STATE_AT(b, c, d, n)];
        }
    }
    {
        float hr[WM_MAX_S], hi[WM_MAX_S];
        #pragma unroll
        for (int s = 0; s < WM_MAX_S; ++s) { hr[s] = h0r[s]; hi[s] = h0i[s]; }
        for (long long t = t0; t < t1; ++t) {
            long long row = b * a.L + t;
            float sdt = 0.0f, uu = 0.0f;
            if (valid) { sdt = wm_softplus_s(a.delta[row * a.sdelta + d] + bias); uu = a.u[row * a.su + d]; }
            const float* Br = a.B + row * a.sB;
            #pragma unroll
            for (int s = 0; s < WM_MAX_S; ++s) {
                if (has[s]) {
                    int n = j + s * P;
                    float br = CX ? Br[2 * n] : Br[n], bi = CX ? Br[2 * n + 1] : 0.0f, ar, ai;
                    wm_update<CX>(hr[s], hi[s], sdt, Ar[s], Ai[s], sdt * uu, br, bi, ar, ai);
                }
                hist[t - t0][s][0] = hr[s];
                if (CX) hist[t - t0][s][CX ? 1 : 0] = hi[s];
            }
        }
    }
    const float Dd = (valid && a.Dskip) ? a.Dskip[d] : 0.0f;
    float accA[WM_MAX_S] = {}, accAi[WM_MAX_S] = {}, accD = 0.0f, accBias = 0.0f;
    const bool firstChannelOfWarp = (threadIdx.x % 32) < P;
    for (long long t = t1 - 1; t >= t0; --t) {
        long long row = b * a.L + t;
        float pre = 0.0f, sdt = 0.0f, uu = 0.0f, dout = 0.0f, zz = 0.0f;
        if (valid) {
            pre = a.delta[row * a.sdelta + d] + bias; sdt = wm_softplus_s(pre); uu = a.u[row * a.su + d];
            dout = dOut[row * sdOut + d];
            if (a.z) zz = a.z[row * a.sz + d];
        }
        const float* Br = a.B + row * a.sB;
        const float* Cr = a.C + row * a.sC;
        // y before the gate (for dz), from the stored states.
        float y = 0.0f;
        #pragma unroll
        for (int s = 0; s < WM_MAX_S; ++s) {
            if (!has[s]) continue;
            int n = j + s * P;
            y += CX ? 2.0f * (Cr[2 * n] * hist[t - t0][s][0] - Cr[2 * n + 1] * hist[t - t0][s][CX ? 1 : 0]) : Cr[n] * hist[t - t0][s][0];
        }
        y = wm_lane_sum(y, P) + Dd * uu;
        float gy = dout;
        if (a.z) {
            float sg = wm_sigmoid_s(zz);
            if (valid && j == 0 && g.dz) g.dz[row * g.sdz + d] = dout * y * sg * (1.0f + zz * (1.0f - sg));
            gy = dout * zz * sg;
        }
        float X = 0.0f, Y = 0.0f;
        #pragma unroll
        for (int s = 0; s < WM_MAX_S; ++s) {
            int n = j + s * P;
            float dCr = 0.0f, dCi = 0.0f, dBr = 0.0f, dBi = 0.0f;
            if (has[s]) {
                float hr = hist[t - t0][s][0], hi = CX ? hist[t - t0][s][CX ? 1 : 0] : 0.0f;
                float pr, pi;
                if (t > t0) { pr = hist[t - t0 - 1][s][0]; pi = CX ? hist[t - t0 - 1][s][CX ? 1 : 0] : 0.0f; }
                else { pr = h0r[s]; pi = h0i[s]; }
                if (CX) {
                    float cr = Cr[2 * n], ci = Cr[2 * n + 1], br = Br[2 * n], bi = Br[2 * n + 1];
                    dCr = 2.0f * gy * hr; dCi = -2.0f * gy * hi;
                    float ghr = gr[s] + 2.0f * gy * cr, ghi = gi[s] - 2.0f * gy * ci;
                    dBr = ghr * sdt * uu; dBi = ghi * sdt * uu;
                    X += ghr * br + ghi * bi;
                    float e = expf(sdt * Ar[s]), sn, cs; sincosf(sdt * Ai[s], &sn, &cs);
                    float ar = e * cs, ai = e * sn;
                    float gar = ghr * pr + ghi * pi, gai = ghi * pr - ghr * pi;
                    float gvr = gar * ar + gai * ai, gvi = gai * ar - gar * ai;
                    accA[s] += gvr * sdt; accAi[s] += gvi * sdt;
                    Y += gvr * Ar[s] + gvi * Ai[s];
                    gr[s] = ghr * ar + ghi * ai; gi[s] = ghi * ar - ghr * ai;
                } else {
                    float cn = Cr[n], bn = Br[n];
                    dCr = gy * hr;
                    float ghn = gr[s] + gy * cn;
                    dBr = ghn * sdt * uu;
                    X += ghn * bn;
                    float an = expf(sdt * Ar[s]);
                    float gv = ghn * pr * an;
                    accA[s] += gv * sdt;
                    Y += gv * Ar[s];
                    gr[s] = ghn * an;
                }
            }
            // Σ over the warp's channels, then one atomic per warp and state slot.
            dCr = wm_channel_sum(dCr, P); dBr = wm_channel_sum(dBr, P);
            if (CX) { dCi = wm_channel_sum(dCi, P); dBi = wm_channel_sum(dBi, P); }
            if (firstChannelOfWarp && n < N) {
                if (CX) {
                    atomicAdd(g.dC + row * g.sdC + 2 * n, dCr); atomicAdd(g.dC + row * g.sdC + 2 * n + 1, dCi);
                    atomicAdd(g.dB + row * g.sdB + 2 * n, dBr); atomicAdd(g.dB + row * g.sdB + 2 * n + 1, dBi);
                } else {
                    atomicAdd(g.dC + row * g.sdC + n, dCr);
                    atomicAdd(g.dB + row * g.sdB + n, dBr);
                }
            }
        }
        X = wm_lane_sum(X, P); Y = wm_lane_sum(Y, P);
        if (valid && j == 0) {
            g.du[row * g.sdu + d] = X * sdt + gy * Dd;
            float dpre = (X * uu + Y) * wm_sigmoid_s(pre);
            g.dDelta[row * g.sdDelta + d] = dpre;
            accD += gy * uu; accBias += dpre;
        }
    }
    #pragma unroll
    for (int s = 0; s < WM_MAX_S; ++s) {
        if (!has[s]) continue;
        int n = j + s * P;
        atomicAdd(g.dA + d * N + n, accA[s]);
        if (CX) atomicAdd(g.dAImag + d * N + n, accAi[s]);
    }
    if (valid && j == 0) {
        if (g.dD) atomicAdd(g.dD + d, accD);
        if (g.dDeltaBias) atomicAdd(g.dDeltaBias + d, accBias);
    }
}

extern "C" __global__ void __launch_bounds__(128) wm_scan_bwd_chunk_real(ScanArgs a, const float* starts, const float* incoming,
                                                                         const float* dOut, long long sdOut, ScanGrads g) {
    wm_bwd_chunk<false>(a, starts, incoming, dOut, sdOut, g);
}
extern "C" __global__ void __launch_bounds__(128) wm_scan_bwd_chunk_complex(ScanArgs a, const float* starts, const float* incoming,
                                                                            const float* dOut, long long sdOut, ScanGrads g) {
    wm_bwd_chunk<true>(a, starts, incoming, dOut, sdOut, g);
}
