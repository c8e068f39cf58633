// One generation step of a pre-norm residual Mamba block, out = x + Mamba(LayerNorm(x)), in
// one launch: LayerNorm → in_proj → causal conv step + SiLU → x_proj → dt_proj + softplus →
// selective-scan step → gate → out_proj → residual add. The unfused step is eight launches
// (six of them small GEMMs); at batch 256 the block's arithmetic is a few microseconds, so
// launches and round trips through global memory were most of a generated sample's time.
//
// A thread block (512 threads, or 256: blockDim.x, chosen on the host) owns S consecutive
// streams (S = 1, 2, 4 or 8: the fewest that keep every block resident). Every intermediate of its
// streams stays in shared memory; global memory sees the input row, the weights, the conv and
// SSM states and the output row. The weights are read in their transposed layouts (inT:
// (H, 2D), xT: (D, P'), dtT: (R, D), outT: (D, H), made once when the step state is; P' =
// R + 2W rounded up to a multiple of 4 with zero columns), so that a warp's lanes read
// consecutive 16-byte column vectors of one input row: coalesced, and each weight is loaded
// once per block and used for its S streams from registers. The states keep the layouts of
// the unfused step (conv (batch, D, K − 1), SSM (batch, D, W)), so both paths share a state,
// and the arithmetic is the step kernels' (ssm_math.cuh, compiled in front of this file). The
// block's states are prefetched into L2 when it starts.
//
// The GEMMs load 16-byte column vectors, 8 k-steps unrolled, so that a thread has 16 loads in
// flight. Tried and measured on an H100 at batch 256, slower: one out-of-line GEMM body with
// separate epilogue loops (1.4×), and the weights streamed through a ring of shared-memory
// buffers by cp.async, three chunks ahead of the GEMM (RTF 36.8 against 39.8 at one stream
// per block, complex; slower at batch 16 too: a barrier per chunk).

struct MambaStepArgs {
    const float* x; float* out; long long batch;
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
    int H, D, R, N, K, P; float eps;       // P: xT's columns, R + 2W rounded up to a multiple of 4
};

#define WM_STEP_MAX_THREADS 512   // a block is 256 or 512 threads (blockDim.x, chosen on the host)
#define WM_STEP_JQ 2          // column vectors per thread and pass in wm_block_gemm
#define WM_STEP_PART 8192     // floats of shared memory for wm_block_gemm's partial sums

// For the S streams of the block: out(s, j) = Σ_k in[s·ldi + k]·WT[k·P + j], j < P (P a
// multiple of 4, WT 16-byte aligned), handed to epi(s, j, value) once each. A thread owns JQ
// vectors of 4 consecutive columns and a slice of the k range; the slices (a power of two ≤ 16,
// as many as the columns leave threads for and `part` holds) meet in `part`, summed by one
// pass. The weights are the traffic: short k slices keep a thread's loads independent and in
// flight together. in is shared memory (a warp reads one address: a broadcast). Ends with a
// barrier.
template <int S, typename Epi>
__device__ __forceinline__ void wm_block_gemm(const float* in, int ldi, const float* __restrict__ WT, int K, int P,
                                              float* part, Epi epi) {
    const int T = blockDim.x;
    const int Q = P / 4;                                                 // column vectors
    const int need = ((Q + WM_STEP_JQ - 1) / WM_STEP_JQ + 31) / 32 * 32; // threads that cover them at JQ each
    int slices = 1;
    while (slices < 16 && need * slices * 2 <= T && (slices * 2) * S * P <= WM_STEP_PART) slices *= 2;
    const int cols = T / slices;
    const int c = threadIdx.x % cols, q = threadIdx.x / cols;
    const int k0 = K * q / slices, k1 = K * (q + 1) / slices;
    const float4* w4 = reinterpret_cast<const float4*>(WT);
    for (int g0 = c; g0 < Q; g0 += cols * WM_STEP_JQ) {
        float acc[WM_STEP_JQ][4][S];
#pragma unroll
        for (int t = 0; t < WM_STEP_JQ; ++t)
#pragma unroll
            for (int e = 0; e < 4; ++e)
#pragma unroll
                for (int s = 0; s < S; ++s) acc[t][e][s] = 0.0f;
#pragma unroll 8
        for (int k = k0; k < k1; ++k) {
            float w[WM_STEP_JQ][4];
#pragma unroll
            for (int t = 0; t < WM_STEP_JQ; ++t) {
                const int g = g0 + t * cols;
                float4 v = g < Q ? __ldg(w4 + (long long)k * Q + g) : make_float4(0.0f, 0.0f, 0.0f, 0.0f);
                w[t][0] = v.x; w[t][1] = v.y; w[t][2] = v.z; w[t][3] = v.w;
            }
#pragma unroll
            for (int s = 0; s < S; ++s) {
                const float x = in[s * ldi + k];
#pragma unroll
                for (int t = 0; t < WM_STEP_JQ; ++t)
#pragma unroll
                    for (int e = 0; e < 4; ++e) acc[t][e][s] = fmaf(x, w[t][e], acc[t][e][s]);
            }
        }
#pragma unroll
        for (int t = 0; t < WM_STEP_JQ; ++t) {
            const int g = g0 + t * cols;
            if (g >= Q) continue;
#pragma unroll
            for (int s = 0; s < S; ++s)
                reinterpret_cast<float4*>(part + (q * S + s) * P)[g] = make_float4(acc[t][0][s], acc[t][1][s], acc[t][2][s], acc[t][3][s]);
        }
    }
    // One call site of the epilogue (inlined once, not once per accumulator as before: the
    // kernels' code shrank from 135–207 KB to 84–101 KB at 1 and 2 streams, closer to what the
    // instruction cache holds while a generation step runs the same kernel layer after layer).
    __syncthreads();
    for (int i = threadIdx.x; i < S * P; i += T) {
        const int s = i / P, j = i - s * P;
        float v = part[s * P + j];
        for (int g = 1; g < slices; ++g) v += part[(g * S + s) * P + j];
        epi(s, j, v);
    }
    __syncthreads();
}

#define WM_STEP_NMAX 16   // states a thread holds in registers in the scan step

template <int S, bool CX>
__device__ void wm_mamba_step(const MambaStepArgs& a) {
    extern __shared__ float4 smem4[];
    float* smem = reinterpret_cast<float*>(smem4);
    const int H = a.H, D = a.D, R = a.R, N = a.N, K = a.K, W = CX ? 2 * N : N, P = a.P;
    float* u = smem;            // (S, H) normed input
    float* xz = u + S * H;      // (S, 2D): in_proj's x half (→ conv output → gated y) and z half
    float* dbl = xz + S * 2 * D; // (S, P) x_proj: dt part, B, C (and zero padding)
    float* dl = dbl + S * P;    // (S, D) dt_proj output (before bias and softplus)
    float* part = dl + S * D;   // the GEMMs' partial sums
    const long long b0 = (long long)blockIdx.x * S;
    const int rows = (int)min((long long)S, a.batch - b0);
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    const int KS = K - 1;

    // 0. The block's states into L2 (read in steps 2 and 5), while the LayerNorm and in_proj run.
    {
        const char* h = reinterpret_cast<const char*>(a.ssmState + b0 * D * W);
        const long long hb = (long long)rows * D * W * 4, cb = (long long)rows * D * KS * 4;
        for (long long o = threadIdx.x * 128ll; o < hb; o += blockDim.x * 128ll) asm volatile("prefetch.global.L2 [%0];" :: "l"(h + o));
        const char* cs = reinterpret_cast<const char*>(a.convState + b0 * D * KS);
        for (long long o = threadIdx.x * 128ll; o < cb; o += blockDim.x * 128ll) asm volatile("prefetch.global.L2 [%0];" :: "l"(cs + o));
    }

    // 1. LayerNorm, one warp per stream (the rows past the batch are zeros).
    for (int sw = warp; sw < S; sw += blockDim.x / 32) {
        float* ur = u + sw * H;
        if (sw < rows) {
            const float* xr = a.x + (b0 + sw) * H;
            float s = 0.0f;
            for (int c = lane; c < H; c += 32) s += xr[c];
            float mu = wm_warp_sum(s) / H;
            float v = 0.0f;
            for (int c = lane; c < H; c += 32) { float d = xr[c] - mu; v += d * d; }
            float rs = rsqrtf(wm_warp_sum(v) / H + a.eps);
            for (int c = lane; c < H; c += 32) ur[c] = (xr[c] - mu) * rs * a.normW[c] + a.normB[c];
        } else {
            for (int c = lane; c < H; c += 32) ur[c] = 0.0f;
        }
    }
    __syncthreads();

    // 2. in_proj; the x half goes straight through the conv step (its state shifts by one) and SiLU.
    wm_block_gemm<S>(u, H, a.inT, H, 2 * D, part, [&](int s, int j, float v) {
        if (j >= D) { xz[s * 2 * D + j] = v; return; }
        float r = 0.0f;
        if (s < rows) {
            float* st = a.convState + ((b0 + s) * D + j) * KS;
            const float* wc = a.convW + j * K;
            r = a.convB[j];
            for (int k = 0; k < KS; ++k) r = fmaf(wc[k], st[k], r);
            r = fmaf(wc[KS], v, r);
            for (int k = 0; k + 1 < KS; ++k) st[k] = st[k + 1];
            if (KS > 0) st[KS - 1] = v;
            r = r * wm_sigmoid_s(r);
        }
        xz[s * 2 * D + j] = r;
    });

    // 3. x_proj → (dt, B, C); 4. dt_proj.
    wm_block_gemm<S>(xz, 2 * D, a.xT, D, P, part, [&](int s, int j, float v) { dbl[s * P + j] = v; });
    wm_block_gemm<S>(dbl, P, a.dtT, R, D, part, [&](int s, int j, float v) { dl[s * D + j] = v; });

    // 5. Scan step and gate: y = C·h (2·Re for complex) + D·u, times SiLU(z), over the x half in
    // place. G threads per (stream, channel), each owning every G-th state, when the pairs leave
    // threads idle (the outer stage at one stream per block: 128 pairs); their y meet by shuffles.
    int G = 1;
    if ((S * D) % 32 == 0)
        while (G < 4 && S * D * G * 2 <= (int)blockDim.x && N % (G * 2) == 0) G *= 2;
    for (int i = threadIdx.x; i < S * D * G; i += blockDim.x) {
        const int pi = i / G, sub = i - pi * G, s = pi / D, d = pi - s * D;
        const bool live = s < rows;
        float* xv = xz + s * 2 * D + d;
        const float sdt = wm_softplus_s(dl[pi] + (a.dtB ? a.dtB[d] : 0.0f));
        const float uu = *xv, du = sdt * uu;
        const float* Bv = dbl + s * P + R;
        const float* Cv = Bv + W;
        float* __restrict__ h = a.ssmState + ((b0 + s) * D + d) * W;
        const float* __restrict__ Ad = a.A + d * N;
        float y = 0.0f;
        if (CX) {
            const float* __restrict__ Aid = a.AImag + d * N;
            float2* __restrict__ h2 = reinterpret_cast<float2*>(h);
            if (N <= WM_STEP_NMAX) {
                float2 hv[WM_STEP_NMAX]; float ar[WM_STEP_NMAX], ai[WM_STEP_NMAX];
#pragma unroll
                for (int m = 0; m < WM_STEP_NMAX; ++m) {
                    const int n = sub + m * G;
                    if (n < N) { hv[m] = live ? h2[n] : make_float2(0.0f, 0.0f); ar[m] = Ad[n]; ai[m] = Aid[n]; }
                }
#pragma unroll
                for (int m = 0; m < WM_STEP_NMAX; ++m) {
                    const int n = sub + m * G;
                    if (n < N) {
                        float2 nh;
                        y += wm_step_state_cx(sdt, du, ar[m], ai[m], Bv + 2 * n, Cv + 2 * n, hv[m], &nh);
                        if (live) h2[n] = nh;
                    }
                }
            } else {
                for (int n = sub; n < N; n += G) {
                    float2 nh;
                    y += wm_step_state_cx(sdt, du, Ad[n], Aid[n], Bv + 2 * n, Cv + 2 * n, live ? h2[n] : make_float2(0.0f, 0.0f), &nh);
                    if (live) h2[n] = nh;
                }
            }
        } else {
            if (N <= WM_STEP_NMAX) {
                float hv[WM_STEP_NMAX], ar[WM_STEP_NMAX];
#pragma unroll
                for (int m = 0; m < WM_STEP_NMAX; ++m) {
                    const int n = sub + m * G;
                    if (n < N) { hv[m] = live ? h[n] : 0.0f; ar[m] = Ad[n]; }
                }
#pragma unroll
                for (int m = 0; m < WM_STEP_NMAX; ++m) {
                    const int n = sub + m * G;
                    if (n < N) {
                        float nh;
                        y += wm_step_state_re(sdt, du, ar[m], Bv[n], Cv[n], hv[m], &nh);
                        if (live) h[n] = nh;
                    }
                }
            } else {
                for (int n = sub; n < N; n += G) {
                    float nh;
                    y += wm_step_state_re(sdt, du, Ad[n], Bv[n], Cv[n], live ? h[n] : 0.0f, &nh);
                    if (live) h[n] = nh;
                }
            }
        }
        // Groups of G consecutive lanes; every lane of a warp is here (S·D·G ≤ threads when G > 1,
        // and S·D a multiple of 32).
        for (int o = 1; o < G; o <<= 1) y += __shfl_xor_sync(0xffffffffu, y, o);
        if (sub == 0) {
            y += a.Dskip[d] * uu;
            const float zz = xv[D];
            *xv = live ? y * (zz * wm_sigmoid_s(zz)) : 0.0f;
        }
    }
    __syncthreads();

    // 6. out_proj and the residual.
    wm_block_gemm<S>(xz, 2 * D, a.outT, D, H, part, [&](int s, int j, float v) {
        if (s < rows) { const long long o = (b0 + s) * H + j; a.out[o] = v + a.x[o]; }
    });
}

#define WM_MAMBA_STEP(S) \
extern "C" __global__ void __launch_bounds__(WM_STEP_MAX_THREADS, 1) wm_mamba_step_real_s##S(MambaStepArgs a) { wm_mamba_step<S, false>(a); } \
extern "C" __global__ void __launch_bounds__(WM_STEP_MAX_THREADS, 1) wm_mamba_step_complex_s##S(MambaStepArgs a) { wm_mamba_step<S, true>(a); }

WM_MAMBA_STEP(1)
WM_MAMBA_STEP(2)
WM_MAMBA_STEP(4)
WM_MAMBA_STEP(8)
