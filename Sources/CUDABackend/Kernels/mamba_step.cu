// One generation step of a run of pre-norm residual Mamba blocks (a SaShiMi stage), each
// x ← x + Mamba(LayerNorm(x)), in one launch: per block LayerNorm → in_proj → causal conv step
// + SiLU → x_proj → dt_proj + softplus → selective-scan step → gate → out_proj → residual add.
// The unfused step is eight launches a block (six of them small GEMMs); at batch 256 a block's
// arithmetic is a few microseconds, so launches and round trips through global memory were
// most of a generated sample's time. A thread block carries its streams' residual rows from
// block to block in shared memory, and prefetches the next block's states and its share of
// the next block's weights into L2 while the current one runs.
//
// A thread block (512 threads, or 256 past one stream per SM: blockDim.x, chosen on the host)
// owns S consecutive streams (S = 1, 2, 4 or 8: the fewest that keep every block resident).
// Every intermediate of its streams stays in shared memory; global memory sees the input row,
// the weights, the conv and SSM states and the output row. The weights are read in their
// transposed layouts (inT: (H, 2D), xT: (D, P'), dtT: (R, D), outT: (D, H), made once when the
// step state is; P' = R + 2W rounded up to a multiple of 4 with zero columns), so that a
// warp's lanes read consecutive 16-byte column vectors of one input row: coalesced, and each
// weight is loaded once per thread block and used for its S streams from registers. The
// states keep the layouts of the unfused step (conv (batch, D, K − 1), SSM (batch, D, W)), so
// both paths share a state, and the arithmetic is the step kernels' (ssm_math.cuh) and the
// LayerNorm norms.cu's (warp.cuh), both compiled in front of this file.
//
// The kernel is latency- and issue-bound, not bandwidth-bound (Nsight Compute, batch 256: a
// quarter of the issue slots used, most stalls on global loads and barriers), so what paid was
// fewer instructions a warp (per-instruction counts from benchmarks/gpu/profile-sass.sh):
// GEMM loads at 32-bit offsets stepped by the row length, no accumulator over zero columns, the
// scan step over contiguous 16-byte runs of states: 25.9k → 18.4k warp instructions per stream
// and block at the outer stage (with 256-thread blocks). The GEMMs load 16-byte column
// vectors, 8 k-steps unrolled, so that a thread has 16 loads in flight. Tried and measured on
// an H100 at batch 256, slower: one out-of-line GEMM body with separate epilogue loops (1.4×),
// and the weights streamed through a ring of shared-memory buffers by cp.async, three chunks
// ahead of the GEMM (RTF 36.8 against 39.8 at one stream per block, complex; slower at batch
// 16 too: a barrier per chunk).

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
#define WM_STEP_STAGE_RESIDUAL 4     //        out = the last block's output + the input (SaShiMi's stage residual)

// A run of consecutive blocks of one width, all stepped by one launch: out = the last block's
// output for input x. Passed by value (1.9 KB of kernel parameters) as a __grid_constant__, so
// that a layer's pointers are read from the constant bank, not copied to local memory.
struct MambaStackArgs {
    const float* x; const float* x2;      // the input rows: x, plus x2 when not null
    float* out; long long batch;
    int layers;
    int H, D, R, N, K, P; float eps;      // P: xT's columns, R + 2W rounded up to a multiple of 4
    int flags;                            // WM_STEP_PREFETCH_WEIGHTS | WM_STEP_STREAM_STATES | WM_STEP_STAGE_RESIDUAL
    MambaLayerArgs l[WM_STACK_MAX];
};

#define WM_STEP_MAX_THREADS 512   // a block is 256 or 512 threads (blockDim.x, chosen on the host)
#define WM_STEP_PART 8192     // floats of shared memory for wm_block_gemm's partial sums

// For the S streams of the block: out(s, j) = Σ_k in[s·ldi + k]·WT[k·P + j], j < P (P a
// multiple of 4, WT 16-byte aligned), handed to epi(s, j, value) once each. A thread owns a
// slice of the k range and two accumulators of 4 consecutive columns (one 16-byte vector):
// vectors g and g + cols over the whole slice, or, where the columns leave threads over
// (Q ≤ cols: x_proj, out_proj and dt_proj at these widths), one vector over the two halves of
// the slice, added at the end (the second vector was all zeros there: half the loop's
// instructions wasted). The slices (a power of two ≤ 16 and ≤ K, as many as the columns
// leave threads for and `part` holds) meet in `part`, summed by one pass. The weights are the
// traffic: short k slices keep a thread's loads independent and in flight together. in is
// shared memory (a warp reads one address: a broadcast). Ends with a barrier.
template <int S, typename Epi>
__device__ __forceinline__ void wm_block_gemm(const float* in, int ldi, const float* __restrict__ WT, int K, int P,
                                              float* part, Epi epi) {
    const int T = blockDim.x;
    const int Q = P / 4;                                 // column vectors
    const int need = ((Q + 1) / 2 + 31) / 32 * 32;       // threads that cover them at two each
    int slices = 1;
    while (slices < 16 && slices * 2 <= K && need * slices * 2 <= T && (slices * 2) * S * P <= WM_STEP_PART) slices *= 2;
    const int cols = T / slices;
    const int c = threadIdx.x % cols, q = threadIdx.x / cols;
    const int k0 = K * q / slices, k1 = K * (q + 1) / slices;
    const bool two = Q > cols;                           // two columns, or two halves of the slice
    const int steps = two ? k1 - k0 : (k1 - k0 + 1) / 2;
    const int dg = two ? cols : 0, dk = two ? 0 : steps;
    const int last1 = two ? steps : k1 - k0 - steps;     // the second accumulator's k steps (one fewer on an odd slice)
    const float4* w4 = reinterpret_cast<const float4*>(WT);
    for (int g0 = c; g0 < Q; g0 += 2 * cols) {
        float acc[2][4][S];
#pragma unroll
        for (int t = 0; t < 2; ++t)
#pragma unroll
            for (int e = 0; e < 4; ++e)
#pragma unroll
                for (int s = 0; s < S; ++s) acc[t][e][s] = 0.0f;
        // 32-bit offsets stepped by Q (weights) and 1 (inputs): a load's address is one IMAD,
        // not a 64-bit multiply per k step.
        const bool ok1 = g0 + dg < Q;
        int o0 = k0 * Q + g0, o1 = (k0 + dk) * Q + g0 + dg;
        const float* x0 = in + k0;
        const float* x1 = in + k0 + dk;
#pragma unroll 8
        for (int i = 0; i < steps; ++i) {
            const bool live1 = ok1 && i < last1;
            const float4 v0 = __ldg(w4 + o0);
            const float4 v1 = live1 ? __ldg(w4 + o1) : make_float4(0.0f, 0.0f, 0.0f, 0.0f);
            o0 += Q; o1 += Q;
            const float w[2][4] = {{v0.x, v0.y, v0.z, v0.w}, {v1.x, v1.y, v1.z, v1.w}};
#pragma unroll
            for (int s = 0; s < S; ++s) {
                const float xa = x0[s * ldi + i], xb = i < last1 ? x1[s * ldi + i] : 0.0f;
#pragma unroll
                for (int e = 0; e < 4; ++e) {
                    acc[0][e][s] = fmaf(xa, w[0][e], acc[0][e][s]);
                    acc[1][e][s] = fmaf(xb, w[1][e], acc[1][e][s]);
                }
            }
        }
        if (!two) {
#pragma unroll
            for (int e = 0; e < 4; ++e)
#pragma unroll
                for (int s = 0; s < S; ++s) acc[0][e][s] += acc[1][e][s];
        }
#pragma unroll
        for (int t = 0; t < 2; ++t) {
            const int g = g0 + t * cols;
            if (t == 1 && (!two || g >= Q)) continue;
#pragma unroll
            for (int s = 0; s < S; ++s)
                reinterpret_cast<float4*>(part + (q * S + s) * P)[g] = make_float4(acc[t][0][s], acc[t][1][s], acc[t][2][s], acc[t][3][s]);
        }
    }
    // One call site of the epilogue (inlined once, not once per accumulator as before: the
    // kernels' code shrank from 135–207 KB to 84–101 KB at 1 and 2 streams, closer to what the
    // instruction cache holds while a generation step runs the same kernel layer after layer).
    // (s, j) from i without a division; the slices summed in two chains.
    __syncthreads();
    for (int i = threadIdx.x; i < S * P; i += T) {
        int s = 0, j = i;
#pragma unroll
        for (int r = 1; r < S; ++r) if (j >= P) { j -= P; ++s; }
        float v0 = part[s * P + j], v1 = 0.0f;
        int g = 1;
        for (; g + 1 < slices; g += 2) { v0 += part[(g * S + s) * P + j]; v1 += part[((g + 1) * S + s) * P + j]; }
        if (g < slices) v0 += part[(g * S + s) * P + j];
        epi(s, j, v0 + v1);
    }
    __syncthreads();
}

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

// A layer's reads into L2 ahead of its step (prefetch: nothing waits for them): the block's
// rows of the conv and SSM states, and this block's share (every gridDim.x-th 128-byte line)
// of the four projections, which the state traffic of the other layers (hundreds of MB a step
// at batch 256) has evicted since this layer's last step. The states are stored back
// evict-first (__stcs in the scan step) so that they displace the weights less.
__device__ __forceinline__ void wm_prefetch_lines(const float* p, long long bytes, long long first, long long stride) {
    const char* c = reinterpret_cast<const char*>(p);
    for (long long o = first * 128ll; o < bytes; o += stride * 128ll) asm volatile("prefetch.global.L2 [%0];" :: "l"(c + o));
}
__device__ __forceinline__ void wm_prefetch_layer(const MambaLayerArgs& L, long long b0, int rows, int H, int D, int W, int KS, int R, int P,
                                                  bool weights) {
    wm_prefetch_lines(L.ssmState + b0 * D * W, (long long)rows * D * W * 4, threadIdx.x, blockDim.x);
    wm_prefetch_lines(L.convState + b0 * D * KS, (long long)rows * D * KS * 4, threadIdx.x, blockDim.x);
    if (!weights) return;
    const long long first = (long long)blockIdx.x * blockDim.x + threadIdx.x, stride = (long long)gridDim.x * blockDim.x;
    wm_prefetch_lines(L.inT, (long long)H * 2 * D * 4, first, stride);
    wm_prefetch_lines(L.xT, (long long)D * P * 4, first, stride);
    wm_prefetch_lines(L.dtT, (long long)R * D * 4, first, stride);
    wm_prefetch_lines(L.outT, (long long)D * H * 4, first, stride);
}

template <int S, bool CX>
__device__ void wm_mamba_stack(const MambaStackArgs& a) {
    extern __shared__ float4 smem4[];
    float* smem = reinterpret_cast<float*>(smem4);
    const int H = a.H, D = a.D, R = a.R, N = a.N, K = a.K, W = CX ? 2 * N : N, P = a.P;
    float* xs = smem;           // (S, H) the residual stream, carried from block to block
    float* u = xs + S * H;      // (S, H) normed input
    float* xz = u + S * H;      // (S, 2D): in_proj's x half (→ conv output → gated y) and z half
    float* dbl = xz + S * 2 * D; // (S, P) x_proj: dt part, B, C (and zero padding)
    float* dl = dbl + S * P;    // (S, D) dt_proj output (before bias and softplus)
    float* part = dl + S * D;   // the GEMMs' partial sums
    const long long b0 = (long long)blockIdx.x * S;
    const int rows = (int)min((long long)S, a.batch - b0);
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    const int KS = K - 1;

    // Layer 0's states and weights into L2; each layer then prefetches the next one's while it
    // runs. The input rows into shared memory (zeros past the batch).
    const bool pw = a.flags & WM_STEP_PREFETCH_WEIGHTS, cs = a.flags & WM_STEP_STREAM_STATES;
    wm_prefetch_layer(a.l[0], b0, rows, H, D, W, KS, R, P, pw);
    // With x2, the input is x + x2, and with the stage residual it is kept (x0, after `part`) to
    // be added to the last block's output: the two adds around a SaShiMi stage, in this launch.
    const bool stage = a.flags & WM_STEP_STAGE_RESIDUAL;
    float* x0 = part + WM_STEP_PART;
    for (int i = threadIdx.x; i < S * H; i += blockDim.x) {
        float v = 0.0f;
        if (i < rows * H) { v = a.x[b0 * H + i]; if (a.x2) v += a.x2[b0 * H + i]; }
        xs[i] = v;
        if (stage) x0[i] = v;
    }
    __syncthreads();

    for (int layer = 0; layer < a.layers; ++layer) {
        const MambaLayerArgs& L = a.l[layer];
        if (layer + 1 < a.layers) wm_prefetch_layer(a.l[layer + 1], b0, rows, H, D, W, KS, R, P, pw);

        // 1. LayerNorm, one warp per stream (the rows past the batch are zeros).
        for (int sw = warp; sw < S; sw += blockDim.x / 32) {
            float* ur = u + sw * H;
            if (sw < rows) {
                wm_layernorm_row(xs + sw * H, L.normW, L.normB, ur, H, a.eps, lane);
            } else {
                for (int c = lane; c < H; c += 32) ur[c] = 0.0f;
            }
        }
        __syncthreads();

        // 2. in_proj; the x half goes straight through the conv step (its state shifts by one) and SiLU.
        wm_block_gemm<S>(u, H, L.inT, H, 2 * D, part, [&](int s, int j, float v) {
            if (j >= D) { xz[s * 2 * D + j] = v; return; }
            float r = 0.0f;
            if (s < rows) {
                float* st = L.convState + ((b0 + s) * D + j) * KS;
                const float* wc = L.convW + j * K;
                r = L.convB[j];
                for (int k = 0; k < KS; ++k) r = fmaf(wc[k], st[k], r);
                r = fmaf(wc[KS], v, r);
                for (int k = 0; k + 1 < KS; ++k) st[k] = st[k + 1];
                if (KS > 0) st[KS - 1] = v;
                r = r * wm_sigmoid_s(r);
            }
            xz[s * 2 * D + j] = r;
        });

        // 3. x_proj → (dt, B, C); 4. dt_proj.
        wm_block_gemm<S>(xz, 2 * D, L.xT, D, P, part, [&](int s, int j, float v) { dbl[s * P + j] = v; });
        wm_block_gemm<S>(dbl, P, L.dtT, R, D, part, [&](int s, int j, float v) { dl[s * D + j] = v; });

        // 5. Scan step and gate: y = C·h (2·Re for complex) + D·u, times SiLU(z), over the x half in
        // place. G threads per (stream, channel), each owning N / G consecutive states, when the
        // pairs leave threads idle (the outer stage: 128 or 256 pairs); their y meet by shuffles.
        int G = 1, lg = 0;
        if ((S * D) % 32 == 0)
            while (G < 4 && S * D * G * 2 <= (int)blockDim.x && N % (G * 2) == 0) { G *= 2; ++lg; }
        const int per = N / G;
        const bool runs = per % 4 == 0 && per <= WM_STEP_NMAX
            && ((reinterpret_cast<unsigned long long>(L.A) | reinterpret_cast<unsigned long long>(L.AImag)
                 | reinterpret_cast<unsigned long long>(L.ssmState)) & 15) == 0;
        for (int i = threadIdx.x; i < S * D * G; i += blockDim.x) {
            const int pi = i >> lg, sub = i & (G - 1);
            int s = 0, d = pi;
#pragma unroll
            for (int r = 1; r < S; ++r) if (d >= D) { d -= D; ++s; }
            const bool live = s < rows;
            float* xv = xz + s * 2 * D + d;
            const float sdt = wm_softplus_s(dl[pi] + (L.dtB ? L.dtB[d] : 0.0f));
            const float uu = *xv, du = sdt * uu;
            const float* Bv = dbl + s * P + R;
            const float* Cv = Bv + W;
            float* __restrict__ h = L.ssmState + ((b0 + s) * D + d) * W;
            const float* __restrict__ Ad = L.A + d * N;
            const float* __restrict__ Aid = CX ? L.AImag + d * N : nullptr;
            float y = runs ? wm_scan_run<CX>(h, Ad, Aid, Bv, Cv, sdt, du, sub * per, per, live, cs)
                           : wm_scan_states_any<CX>(h, Ad, Aid, Bv, Cv, sdt, du, sub, G, N, live, cs);
            // Groups of G consecutive lanes; every lane of a warp is here (S·D·G ≤ threads when G > 1,
            // and S·D a multiple of 32).
            for (int o = 1; o < G; o <<= 1) y += __shfl_xor_sync(0xffffffffu, y, o);
            if (sub == 0) {
                y += L.Dskip[d] * uu;
                const float zz = xv[D];
                *xv = live ? y * (zz * wm_sigmoid_s(zz)) : 0.0f;
            }
        }
        __syncthreads();

        // 6. out_proj and the residual, into the stream in shared memory (the GEMM ends with a barrier).
        wm_block_gemm<S>(xz, 2 * D, L.outT, D, H, part, [&](int s, int j, float v) {
            if (s < rows) xs[s * H + j] += v;
        });
    }

    for (int i = threadIdx.x; i < rows * H; i += blockDim.x) a.out[b0 * H + i] = stage ? xs[i] + x0[i] : xs[i];
}

#define WM_MAMBA_STEP(S) \
extern "C" __global__ void __launch_bounds__(WM_STEP_MAX_THREADS, 1) wm_mamba_step_real_s##S(const __grid_constant__ MambaStackArgs a) { wm_mamba_stack<S, false>(a); } \
extern "C" __global__ void __launch_bounds__(WM_STEP_MAX_THREADS, 1) wm_mamba_step_complex_s##S(const __grid_constant__ MambaStackArgs a) { wm_mamba_stack<S, true>(a); }

WM_MAMBA_STEP(1)
WM_MAMBA_STEP(2)
WM_MAMBA_STEP(4)
WM_MAMBA_STEP(8)
