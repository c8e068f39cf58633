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
// vectors, 8 k-steps unrolled, so that a thread has 16 loads in flight. Tried and slower (figures
// in docs/performance.md): one out-of-line GEMM body with separate epilogue loops, and the
// weights streamed through a ring of shared-memory buffers by cp.async, three chunks ahead of
// the GEMM (a barrier per chunk).

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
                                              float* part, int T, Epi epi) {
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

// A layer's reads into L2 ahead of its step (prefetch: nothing waits for them): the block's
// rows of the conv and SSM states, and this block's share (every gridDim.x-th 128-byte line)
// of the four projections, which the state traffic of the other layers (hundreds of MB a step
// at batch 256) has evicted since this layer's last step. The states are stored back
// evict-first (__stcs in the scan step) so that they displace the weights less.
__device__ __forceinline__ void wm_prefetch_layer(const MambaLayerArgs& L, long long b0, int rows, int H, int D, int W, int KS, int R, int P,
                                                  int T, bool weights) {
    wm_prefetch_lines(L.ssmState + b0 * D * W, (long long)rows * D * W * 4, threadIdx.x, T);
    wm_prefetch_lines(L.convState + b0 * D * KS, (long long)rows * D * KS * 4, threadIdx.x, T);
    if (!weights) return;
    const long long first = (long long)blockIdx.x * T + threadIdx.x, stride = (long long)gridDim.x * T;
    wm_prefetch_lines(L.inT, (long long)H * 2 * D * 4, first, stride);
    wm_prefetch_lines(L.xT, (long long)D * P * 4, first, stride);
    wm_prefetch_lines(L.dtT, (long long)R * D * 4, first, stride);
    wm_prefetch_lines(L.outT, (long long)D * H * 4, first, stride);
}

// TC > 0 fixes the threads per block, HC > 0 the stage's shape (SaShiMi's: dModel HC, dInner
// 2·HC, dState 16, dtRank ⌈HC/16⌉, dConv 4) at compile time: every GEMM's slices, trip counts
// and offsets become constants (no integer divisions, no remainder loops, no predicates for
// columns past the end), about half the instructions of the generic kernel at the outer stage.
template <int S, bool CX, int TC = 0, int HC = 0>
__device__ void wm_mamba_stack(const MambaStackArgs& a) {
    extern __shared__ float4 smem4[];
    float* smem = reinterpret_cast<float*>(smem4);
    constexpr bool FIX = HC > 0;
    const int T = TC > 0 ? TC : (int)blockDim.x;
    const int H = FIX ? HC : a.H, D = FIX ? 2 * HC : a.D, R = FIX ? (HC + 15) / 16 : a.R, N = FIX ? 16 : a.N, K = FIX ? 4 : a.K;
    const int W = CX ? 2 * N : N, P = FIX ? (R + 2 * W + 3) / 4 * 4 : a.P;
    float* xs = smem;           // (S, H) the residual stream, carried from block to block
    float* u = xs + S * H;      // (S, H) normed input
    float* xz = u + S * H;      // (S, 2D): in_proj's x half (→ conv output → gated y) and z half
    float* dbl = xz + S * 2 * D; // (S, P) x_proj: dt part, B, C (and zero padding)
    float* dl = dbl + S * P;    // (S, D) dt_proj output (before bias and softplus)
    float* part = dl + S * D;   // the GEMMs' partial sums
    const long long b0 = (long long)blockIdx.x * S;
    const int rows = (int)min((long long)S, a.batch - b0);
    const int KS = K - 1;

    // Layer 0's states and weights into L2; each layer then prefetches the next one's while it
    // runs. The input rows into shared memory (zeros past the batch).
    const bool pw = a.flags & WM_STEP_PREFETCH_WEIGHTS, cs = a.flags & WM_STEP_STREAM_STATES;
    wm_prefetch_layer(a.l[0], b0, rows, H, D, W, KS, R, P, T, pw);
    // With x2, the input is x + x2, and with the stage residual it is kept (x0, after `part`) to
    // be added to the last block's output: the two adds around a SaShiMi stage, in this launch.
    const bool stage = a.flags & WM_STEP_STAGE_RESIDUAL;
    float* x0 = part + WM_STEP_PART;
    for (int i = threadIdx.x; i < S * H; i += T) {
        float v = 0.0f;
        if (i < rows * H) { v = a.x[b0 * H + i]; if (a.x2) v += a.x2[b0 * H + i]; }
        xs[i] = v;
        if (stage) x0[i] = v;
    }
    __syncthreads();

    for (int layer = 0; layer < a.layers; ++layer) {
        const MambaLayerArgs& L = a.l[layer];
        if (layer + 1 < a.layers) wm_prefetch_layer(a.l[layer + 1], b0, rows, H, D, W, KS, R, P, T, pw);

        // 1. LayerNorm.
        wm_layernorm_rows<S>(xs, L.normW, L.normB, u, H, a.eps, rows, T);

        // 2. in_proj; the x half goes straight through the conv step (its state shifts by one) and SiLU.
        wm_block_gemm<S>(u, H, L.inT, H, 2 * D, part, T, [&](int s, int j, float v) {
            xz[s * 2 * D + j] = j >= D ? v : wm_conv_silu(L, b0 + s, j, D, K, v, s < rows);
        });

        // 3. x_proj → (dt, B, C); 4. dt_proj.
        wm_block_gemm<S>(xz, 2 * D, L.xT, D, P, part, T, [&](int s, int j, float v) { dbl[s * P + j] = v; });
        wm_block_gemm<S>(dbl, P, L.dtT, R, D, part, T, [&](int s, int j, float v) { dl[s * D + j] = v; });

        // 5. Scan step and gate over the x half in place.
        wm_scan_gate<S, CX>(L, xz, dbl, P, R, D, N, b0, rows, 0, D, cs, T, [&](int s, int c) { return dl[s * D + c]; });

        // 6. out_proj and the residual, into the stream in shared memory (the GEMM ends with a barrier).
        wm_block_gemm<S>(xz, 2 * D, L.outT, D, H, part, T, [&](int s, int j, float v) {
            if (s < rows) xs[s * H + j] += v;
        });
    }

    const bool head = a.flags & WM_STEP_HEAD;
    for (int i = threadIdx.x; i < rows * H; i += T) {
        const float v = stage ? xs[i] + x0[i] : xs[i];
        a.out[b0 * H + i] = v;
        if (head) xs[i] = v;
    }
    if (!head) return;
    // SaShiMi's output head on the stage's output rows, where they already are (three launches
    // fewer a generated sample): logits = LayerNorm(out)·headᵀ + bias.
    __syncthreads();
    wm_layernorm_rows<S>(xs, a.headNormW, a.headNormB, u, H, a.eps, rows, T);
    wm_block_gemm<S>(u, H, a.headT, H, a.classes, part, T, [&](int s, int j, float v) {
        if (s < rows) a.logits[(b0 + s) * a.classes + j] = v + (a.headB ? a.headB[j] : 0.0f);
    });
}

#define WM_MAMBA_STEP(S) \
extern "C" __global__ void __launch_bounds__(WM_STEP_MAX_THREADS, 1) wm_mamba_step_real_s##S(const __grid_constant__ MambaStackArgs a) { wm_mamba_stack<S, false>(a); } \
extern "C" __global__ void __launch_bounds__(WM_STEP_MAX_THREADS, 1) wm_mamba_step_complex_s##S(const __grid_constant__ MambaStackArgs a) { wm_mamba_stack<S, true>(a); }

WM_MAMBA_STEP(1)
WM_MAMBA_STEP(2)
WM_MAMBA_STEP(4)
WM_MAMBA_STEP(8)

// One stream a block at SaShiMi's stage widths (64, 128, 256: SC09-small and YouTubeMix), for
// both thread counts the host chooses (at most 128 registers: 256-thread blocks run two an SM).
#define WM_MAMBA_STEP_FIXED(H, T) \
extern "C" __global__ void __launch_bounds__(T, 512 / T) wm_mamba_step_real_s1_h##H##_t##T(const __grid_constant__ MambaStackArgs a) { wm_mamba_stack<1, false, T, H>(a); } \
extern "C" __global__ void __launch_bounds__(T, 512 / T) wm_mamba_step_complex_s1_h##H##_t##T(const __grid_constant__ MambaStackArgs a) { wm_mamba_stack<1, true, T, H>(a); }

WM_MAMBA_STEP_FIXED(64, 256)
WM_MAMBA_STEP_FIXED(64, 512)
WM_MAMBA_STEP_FIXED(128, 256)
WM_MAMBA_STEP_FIXED(128, 512)
WM_MAMBA_STEP_FIXED(256, 256)
WM_MAMBA_STEP_FIXED(256, 512)
