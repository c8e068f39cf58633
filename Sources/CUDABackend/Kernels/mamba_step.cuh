// The parts of a fused generation step of residual Mamba blocks that mamba_step.cu (one
// thread block a group of streams) and mamba_step_cluster.cu (a cluster of thread blocks a
// group of streams, each block a slice of the channels) share: the launch's arguments, the
// scan step and gate of a (stream, channel) pair, and the L2 prefetch. Compiled in front of
// both files, after warp.cuh and ssm_math.cuh.

// One residual Mamba block's weights and states.
struct MambaLayerArgs {
    const float* normW; const float* normB;
    const float* inT;                      // (H, 2D)
    const float* convW; const float* convB; // (D, K), (D)
    const float* xT;                       // (D, P)
    const float* dtT;                      // (R, D)
    const float* dtB;                      // (D) or null
    const float* A; const float* AImag;    // (D, N): A = −exp(A_log); AImag null when real
    const float* Dskip;                    // (D)
    const float* outT;                     // (D, H)
    float* convState;                      // (batch, D, K − 1)
    float* ssmState;                       // (batch, D, W)
};

#define WM_STACK_MAX 16              // blocks one launch runs (the host splits longer runs)
#define WM_STEP_PREFETCH_WEIGHTS 1   // flags: prefetch the next block's weights into L2,
#define WM_STEP_STREAM_STATES 2      //        store the SSM states evict-first (st.global.cs),
#define WM_STEP_STAGE_RESIDUAL 4     //        out = the last block's output + the input (SaShiMi's stage residual),
#define WM_STEP_HEAD 8               //        then logits = head(LayerNorm(out))

// A run of consecutive blocks of one width, all stepped by one launch: out = the last block's
// output for input x. Passed by value (1.9 KB of kernel parameters) as a __grid_constant__, so
// that a layer's pointers are read from the constant bank, not copied to local memory.
struct MambaStackArgs {
    const float* x; const float* x2;      // the input rows: x, plus x2 when not null
    float* out; long long batch;
    int layers;
    int H, D, R, N, K, P; float eps;      // P: xT's columns, R + 2W rounded up to a multiple of 4
    int flags;                            // WM_STEP_PREFETCH_WEIGHTS | WM_STEP_STREAM_STATES | WM_STEP_STAGE_RESIDUAL | WM_STEP_HEAD
    // SaShiMi's output head, with WM_STEP_HEAD: its LayerNorm (C wide, null: 1 and 0), the
    // linear layer's weight transposed (C, classes) and bias (null: none), the logits (batch, classes).
    const float* headNormW; const float* headNormB; const float* headT; const float* headB;
    float* logits; int classes;
    MambaLayerArgs l[WM_STACK_MAX];
};

#define WM_STEP_NMAX 16   // states a thread holds in registers in the scan step

// One (stream, channel)'s share of the scan step: the `per` consecutive states from n0 (per a
// multiple of 4, at most WM_STEP_NMAX), updated in place in h (the channel's W floats, 16-byte
// aligned, as A and A_imag's rows; evict-first stores with cs); returns their part of y.
// States and A move as 16-byte vectors, all loaded before any update (in flight together);
// the updates go in chunks of 4 behind a branch uniform across the block, so that a thread
// owning fewer than WM_STEP_NMAX states skips the rest instead of issuing them predicated off.
// (Every G-th state per thread with a 64-bit address and a branch per state was a quarter of
// the outer stage's instructions.)
template <typename T> __device__ __forceinline__ void wm_store(T* p, T v, bool cs) { if (cs) __stcs(p, v); else *p = v; }

template <bool CX>
__device__ __forceinline__ float wm_scan_run(float* __restrict__ h, const float* __restrict__ Ad, const float* __restrict__ Aid,
                                             const float* Bv, const float* Cv, float sdt, float du, int n0, int per,
                                             bool live, bool cs) {
    constexpr int NC = WM_STEP_NMAX / 4;   // chunks of 4 states
    const float4 zero = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
    const float4* a4 = reinterpret_cast<const float4*>(Ad + n0);
    float y = 0.0f;
    if (CX) {
        float4* h4 = reinterpret_cast<float4*>(h + 2 * n0);   // two complex states a vector
        const float4* i4 = reinterpret_cast<const float4*>(Aid + n0);
        float4 hv[2 * NC], ar[NC], ai[NC];
#pragma unroll
        for (int c = 0; c < NC; ++c) {
            if (4 * c >= per) break;
            hv[2 * c] = live ? h4[2 * c] : zero; hv[2 * c + 1] = live ? h4[2 * c + 1] : zero;
            ar[c] = __ldg(a4 + c); ai[c] = __ldg(i4 + c);
        }
#pragma unroll
        for (int c = 0; c < NC; ++c) {
            if (4 * c >= per) break;
            const float* B = Bv + 2 * (n0 + 4 * c);
            const float* C = Cv + 2 * (n0 + 4 * c);
            const float are[4] = {ar[c].x, ar[c].y, ar[c].z, ar[c].w}, aim[4] = {ai[c].x, ai[c].y, ai[c].z, ai[c].w};
            const float2 hin[4] = {make_float2(hv[2 * c].x, hv[2 * c].y), make_float2(hv[2 * c].z, hv[2 * c].w),
                                   make_float2(hv[2 * c + 1].x, hv[2 * c + 1].y), make_float2(hv[2 * c + 1].z, hv[2 * c + 1].w)};
            float2 nh[4];
#pragma unroll
            for (int m = 0; m < 4; ++m) y += wm_step_state_cx(sdt, du, are[m], aim[m], B + 2 * m, C + 2 * m, hin[m], &nh[m]);
            if (live) {
                wm_store(h4 + 2 * c, make_float4(nh[0].x, nh[0].y, nh[1].x, nh[1].y), cs);
                wm_store(h4 + 2 * c + 1, make_float4(nh[2].x, nh[2].y, nh[3].x, nh[3].y), cs);
            }
        }
    } else {
        float4* h4 = reinterpret_cast<float4*>(h + n0);
        float4 hv[NC], ar[NC];
#pragma unroll
        for (int c = 0; c < NC; ++c) {
            if (4 * c >= per) break;
            hv[c] = live ? h4[c] : zero;
            ar[c] = __ldg(a4 + c);
        }
#pragma unroll
        for (int c = 0; c < NC; ++c) {
            if (4 * c >= per) break;
            const float* B = Bv + n0 + 4 * c;
            const float* C = Cv + n0 + 4 * c;
            const float a[4] = {ar[c].x, ar[c].y, ar[c].z, ar[c].w}, hin[4] = {hv[c].x, hv[c].y, hv[c].z, hv[c].w};
            float nh[4];
#pragma unroll
            for (int m = 0; m < 4; ++m) y += wm_step_state_re(sdt, du, a[m], B[m], C[m], hin[m], &nh[m]);
            if (live) wm_store(h4 + c, make_float4(nh[0], nh[1], nh[2], nh[3]), cs);
        }
    }
    return y;
}

// The same for any N, any alignment: every G-th state from sub, one at a time.
template <bool CX>
__device__ float wm_scan_states_any(float* __restrict__ h, const float* __restrict__ Ad, const float* __restrict__ Aid,
                                    const float* Bv, const float* Cv, float sdt, float du, int sub, int G, int N,
                                    bool live, bool cs) {
    float y = 0.0f;
    for (int n = sub; n < N; n += G) {
        if (CX) {
            float2* __restrict__ h2 = reinterpret_cast<float2*>(h);
            float2 nh;
            y += wm_step_state_cx(sdt, du, Ad[n], Aid[n], Bv + 2 * n, Cv + 2 * n, live ? h2[n] : make_float2(0.0f, 0.0f), &nh);
            if (live) wm_store(h2 + n, nh, cs);
        } else {
            float nh;
            y += wm_step_state_re(sdt, du, Ad[n], Bv[n], Cv[n], live ? h[n] : 0.0f, &nh);
            if (live) wm_store(h + n, nh, cs);
        }
    }
    return y;
}

// Every stride-th 128-byte line of p's first `bytes` bytes from line `first` into L2 (prefetch:
// nothing waits for them).
__device__ __forceinline__ void wm_prefetch_lines(const float* p, long long bytes, long long first, long long stride) {
    const char* c = reinterpret_cast<const char*>(p);
    for (long long o = first * 128ll; o < bytes; o += stride * 128ll) asm volatile("prefetch.global.L2 [%0];" :: "l"(c + o));
}

// The causal conv step and SiLU of channel d of stream b for in_proj's x output v: the state (its
// K − 1 latest inputs) shifts by one. Returns 0 for a row past the batch (live false).
__device__ __forceinline__ float wm_conv_silu(const MambaLayerArgs& L, long long b, int d, int D, int K, float v, bool live) {
    if (!live) return 0.0f;
    const int KS = K - 1;
    float* st = L.convState + (b * D + d) * KS;
    const float* wc = L.convW + d * K;
    float r = L.convB[d];
    for (int k = 0; k < KS; ++k) r = fmaf(wc[k], st[k], r);
    r = fmaf(wc[KS], v, r);
    for (int k = 0; k + 1 < KS; ++k) st[k] = st[k + 1];
    if (KS > 0) st[KS - 1] = v;
    return r * wm_sigmoid_s(r);
}

// The scan step and gate of the S streams' channels d0 … d0 + Dl − 1 (of D): y = C·h (2·Re for
// complex) + D·u, times SiLU(z), written over the x half in place. xz holds a stream's row as
// (x: Dl, z: Dl), dbl as (dt: R, B: W, C: W, padding) of P floats; rawDt(s, c) is channel
// d0 + c's dt_proj output before its bias and the softplus. G threads per (stream, channel),
// each owning N / G consecutive states, when the pairs leave threads idle (the outer stage:
// 128 or 256 pairs); their y meet by shuffles. T is the block's thread count (a constant in the
// fixed-width kernels, so that G and the loop bounds fold). Ends with a barrier.
template <int S, bool CX, typename Dt>
__device__ __forceinline__ void wm_scan_gate(const MambaLayerArgs& L, float* xz, const float* dbl, int P, int R, int D, int N,
                                             long long b0, int rows, int d0, int Dl, bool cs, int T, Dt rawDt) {
    const int W = CX ? 2 * N : N;
    int G = 1, lg = 0;
    if ((S * Dl) % 32 == 0)
        while (G < 4 && S * Dl * G * 2 <= T && N % (G * 2) == 0) { G *= 2; ++lg; }
    const int per = N / G;
    const bool runs = per % 4 == 0 && per <= WM_STEP_NMAX
        && ((reinterpret_cast<unsigned long long>(L.A) | reinterpret_cast<unsigned long long>(L.AImag)
             | reinterpret_cast<unsigned long long>(L.ssmState)) & 15) == 0;
    for (int i = threadIdx.x; i < S * Dl * G; i += T) {
        const int pi = i >> lg, sub = i & (G - 1);
        int s = 0, c = pi;
#pragma unroll
        for (int r = 1; r < S; ++r) if (c >= Dl) { c -= Dl; ++s; }
        const int d = d0 + c;
        const bool live = s < rows;
        float* xv = xz + s * 2 * Dl + c;
        const float sdt = wm_softplus_s(rawDt(s, c) + (L.dtB ? L.dtB[d] : 0.0f));
        const float uu = *xv, du = sdt * uu;
        const float* Bv = dbl + s * P + R;
        const float* Cv = Bv + W;
        float* __restrict__ h = L.ssmState + ((b0 + s) * D + d) * W;
        const float* __restrict__ Ad = L.A + d * N;
        const float* __restrict__ Aid = CX ? L.AImag + d * N : nullptr;
        float y = runs ? wm_scan_run<CX>(h, Ad, Aid, Bv, Cv, sdt, du, sub * per, per, live, cs)
                       : wm_scan_states_any<CX>(h, Ad, Aid, Bv, Cv, sdt, du, sub, G, N, live, cs);
        // Groups of G consecutive lanes; every lane of a warp is here (S·Dl·G ≤ threads when G > 1,
        // and S·Dl a multiple of 32).
        for (int o = 1; o < G; o <<= 1) y += __shfl_xor_sync(0xffffffffu, y, o);
        if (sub == 0) {
            y += L.Dskip[d] * uu;
            const float zz = xv[Dl];
            *xv = live ? y * (zz * wm_sigmoid_s(zz)) : 0.0f;
        }
    }
    __syncthreads();
}

// LayerNorm (weight w, bias b) of the S residual rows xs (H wide) into u, one warp a row; the
// rows past the batch are zeros. Ends with a barrier.
template <int S>
__device__ __forceinline__ void wm_layernorm_rows(const float* xs, const float* w, const float* b, float* u, int H, float eps, int rows, int T) {
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    for (int sw = warp; sw < S; sw += T / 32) {
        float* ur = u + sw * H;
        if (sw < rows) {
            wm_layernorm_row(xs + sw * H, w, b, ur, H, eps, lane);
        } else {
            for (int c = lane; c < H; c += 32) ur[c] = 0.0f;
        }
    }
    __syncthreads();
}
