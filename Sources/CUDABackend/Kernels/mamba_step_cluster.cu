// One generation step of a run of pre-norm residual Mamba blocks (a SaShiMi stage), as in
// mamba_step.cu, but by a cluster of CL thread blocks (CL = 4 or 8; sm_90: thread block clusters
// and distributed shared memory) for each group of S streams: block r of a cluster owns channels
// d0 = r·D/CL … d0 + D/CL − 1 of every Mamba block, for all S streams.
//
// Why: mamba_step.cu's kernel gives a thread block one stream at batch 256, so every block
// reads every weight and runs a block's six dependent phases on its own 8 warps: latency-bound
// (docs/performance.md has the block-step's time). Here a weight is read
// once per cluster and feeds its S streams from registers, and a thread block does 1/CL of a
// block-step. The two places where a Mamba block mixes its channels, x_proj (dt, B and C from
// every channel's conv output) and out_proj (the residual from every channel's gated y), become
// partial sums over each thread block's channels that the cluster's blocks read from each
// other's shared memory around a cluster barrier (barrier.cluster: hardware, no global memory).
//
// Per block, each Mamba block of the run (phases end with a barrier; ◆ a cluster barrier):
//   1. LayerNorm of the S residual rows (every block of the cluster the same rows);
//   2. in_proj's x and z columns of its channels; the conv step and SiLU on x;
//   3. x_proj's partial sums over its channels → xpPart ◆
//   4. dbl = Σ over the cluster's xpPart (dt, B, C);
//   5. dt_proj of its channels (dot products of length R), the scan step and the gate;
//   6. out_proj's partial sums over its channels → outPart ◆
//   7. xs += Σ over the cluster's outPart, summed in rank order by every block alike, so the
//      cluster's copies of the residual rows stay identical.
// With WM_STEP_HEAD, after the last block, the output head's LayerNorm in every block and a
// slice of its classes per block.
// A block's xpPart is written again only after the second barrier of the block-step, and its
// outPart after the first barrier of the next: by then the whole cluster has read them. The
// states, the weights and the arguments are mamba_step.cu's (mamba_step.cuh), so the two paths
// share a step state.

#if __CUDA_ARCH__ >= 900

#define WM_CL_MAX_THREADS 512    // a block is 256 or 512 threads (blockDim.x, chosen on the host)
#define WM_CL_PART 8192          // floats of shared memory for the GEMMs' k-slice partial sums

__device__ __forceinline__ unsigned wm_cluster_rank() {
    unsigned r;
    asm("mov.u32 %0, %%cluster_ctarank;" : "=r"(r));
    return r;
}

// Arrive and wait: this block's shared-memory writes before it are visible to the cluster after.
__device__ __forceinline__ void wm_cluster_sync() {
    asm volatile("barrier.cluster.arrive.release.aligned;\n\tbarrier.cluster.wait.acquire.aligned;" ::: "memory");
}

// The address of this block's shared `p` in the shared memory of the cluster's block `rank`.
__device__ __forceinline__ unsigned wm_cluster_map(const void* p, unsigned rank) {
    unsigned local, mapped;
    asm("{ .reg .u64 t; cvta.to.shared.u64 t, %1; cvt.u32.u64 %0, t; }" : "=r"(local) : "l"(p));
    asm("mapa.shared::cluster.u32 %0, %1, %2;" : "=r"(mapped) : "r"(local), "r"(rank));
    return mapped;
}

__device__ __forceinline__ float4 wm_cluster_load4(unsigned address) {
    float4 v;
    asm volatile("ld.shared::cluster.v4.f32 {%0, %1, %2, %3}, [%4];" : "=f"(v.x), "=f"(v.y), "=f"(v.z), "=f"(v.w) : "r"(address) : "memory");
    return v;
}

// dst (+)= Σ over the cluster's CL blocks, in rank order, of their `src` (n4 16-byte vectors of
// shared memory at the same offset in every block). The CL loads of a vector go out together.
template <int CL, bool ADD>
__device__ __forceinline__ void wm_cluster_sum(float* dst, const float* src, int n4) {
    unsigned peer[CL];
#pragma unroll
    for (int r = 0; r < CL; ++r) peer[r] = wm_cluster_map(src, r);
    for (int i = threadIdx.x; i < n4; i += blockDim.x) {
        float4 v[CL];
#pragma unroll
        for (int r = 0; r < CL; ++r) v[r] = wm_cluster_load4(peer[r] + 16u * i);
        float4 s = v[0];
#pragma unroll
        for (int r = 1; r < CL; ++r) { s.x += v[r].x; s.y += v[r].y; s.z += v[r].z; s.w += v[r].w; }
        float4* d = reinterpret_cast<float4*>(dst) + i;
        if (ADD) { const float4 o = *d; s.x += o.x; s.y += o.y; s.z += o.z; s.w += o.w; }
        *d = s;
    }
}

// For the S streams: out(s, j) = Σ_{k<K} in[s·ldi + k]·Wt[k·ldw + col(j / 4) + j % 4], j < J (J a
// multiple of 4; col(v) a multiple of 4: each run of 4 columns is one 16-byte weight vector),
// handed to epi(s, j, value) once each. A thread owns one weight vector for SS streams (4·SS
// FMAs a load, the inputs broadcast from shared memory) over one of Q k-slices (a power of two:
// as many as the threads, K and `part` allow, so that short slices keep loads in flight); the
// slices meet in `part`. Threads run over (vector, slice, stream group), slices before stream
// groups, so that a warp's input reads fall in different banks. Ends with a barrier.
template <int S, typename Col, typename Epi>
__device__ __forceinline__ void wm_cluster_gemm(const float* in, int ldi, const float* __restrict__ Wt, int ldw, int K, int J,
                                                Col col, float* part, Epi epi) {
    constexpr int SS = S < 4 ? S : 4, SG = S / SS;
    const int T = blockDim.x, V = J / 4, units = V * SG;
    int Q = 1;
    while (Q < 16 && 2 * Q <= K && units * 2 * Q <= T && 2 * Q * S * J <= WM_CL_PART) Q *= 2;
    for (int t = threadIdx.x; t < units * Q; t += T) {
        const int v = t % V, rest = t / V, q = rest % Q, sg = rest / Q;
        const int k0 = K * q / Q, k1 = K * (q + 1) / Q;
        const float* x = in + sg * SS * ldi;
        const float* w = Wt + col(v);
        float acc[SS][4];
#pragma unroll
        for (int ss = 0; ss < SS; ++ss) acc[ss][0] = acc[ss][1] = acc[ss][2] = acc[ss][3] = 0.0f;
        int o = k0 * ldw;
#pragma unroll 4
        for (int k = k0; k < k1; ++k, o += ldw) {
            const float4 wv = __ldg(reinterpret_cast<const float4*>(w + o));
#pragma unroll
            for (int ss = 0; ss < SS; ++ss) {
                const float xv = x[ss * ldi + k];
                acc[ss][0] = fmaf(xv, wv.x, acc[ss][0]);
                acc[ss][1] = fmaf(xv, wv.y, acc[ss][1]);
                acc[ss][2] = fmaf(xv, wv.z, acc[ss][2]);
                acc[ss][3] = fmaf(xv, wv.w, acc[ss][3]);
            }
        }
#pragma unroll
        for (int ss = 0; ss < SS; ++ss)
            reinterpret_cast<float4*>(part + (q * S + sg * SS + ss) * J)[v] = make_float4(acc[ss][0], acc[ss][1], acc[ss][2], acc[ss][3]);
    }
    __syncthreads();
    for (int i = threadIdx.x; i < S * J; i += T) {
        float v0 = part[i], v1 = 0.0f;
        int q = 1;
        for (; q + 1 < Q; q += 2) { v0 += part[q * S * J + i]; v1 += part[(q + 1) * S * J + i]; }
        if (q < Q) v0 += part[q * S * J + i];
        const int s = i / J;
        epi(s, i - s * J, v0 + v1);
    }
    __syncthreads();
}

// Every 128-byte line of `rows` runs of `bytes` bytes, `stride` floats apart, into L2.
__device__ __forceinline__ void wm_prefetch_runs(const float* p, int rows, long long stride, int bytes) {
    const int lines = (bytes + 127) / 128 + 1;   // the most lines a run covers (it need not start on one)
    for (int i = threadIdx.x; i < rows * lines; i += blockDim.x) {
        const int r = i / lines, l = i - r * lines;
        const char* run = reinterpret_cast<const char*>(p + r * stride);
        const int skew = (int)(reinterpret_cast<unsigned long long>(run) & 127);
        if (l * 128 < skew + bytes) asm volatile("prefetch.global.L2 [%0];" :: "l"(run - skew + l * 128));
    }
}

// A layer's reads of this block into L2 ahead of its step: its channels' rows of the conv and
// SSM states for its streams, and (weights) its slices of the projections.
__device__ __forceinline__ void wm_cluster_prefetch(const MambaLayerArgs& L, long long b0, int rows, int H, int D, int W, int KS, int P,
                                                    int d0, int Dc, bool weights) {
    wm_prefetch_runs(L.ssmState + (b0 * D + d0) * W, rows, (long long)D * W, Dc * W * 4);
    wm_prefetch_runs(L.convState + (b0 * D + d0) * KS, rows, (long long)D * KS, Dc * KS * 4);
    if (!weights) return;
    wm_prefetch_runs(L.inT + d0, H, 2 * D, Dc * 4);
    wm_prefetch_runs(L.inT + D + d0, H, 2 * D, Dc * 4);
    wm_prefetch_runs(L.xT + (long long)d0 * P, 1, 0, Dc * P * 4);
    wm_prefetch_runs(L.outT + (long long)d0 * H, 1, 0, Dc * H * 4);
}

template <int CL, int S, bool CX>
__device__ void wm_mamba_cluster(const MambaStackArgs& a) {
    extern __shared__ float4 smem4[];
    float* smem = reinterpret_cast<float*>(smem4);
    const int H = a.H, D = a.D, R = a.R, N = a.N, K = a.K, W = CX ? 2 * N : N, P = a.P, KS = K - 1;
    const int rank = (int)wm_cluster_rank(), Dc = D / CL, d0 = rank * Dc;
    float* xs = smem;                  // (S, H) the residual rows, carried from block to block
    float* u = xs + S * H;             // (S, H) normed input
    float* outPart = u + S * H;        // (S, H) out_proj over this block's channels (read by the cluster)
    float* x0 = outPart + S * H;       // (S, H) the stage's input, for the stage residual
    float* xz = x0 + S * H;            // (S, 2Dc) x (→ conv output → gated y) and z of this block's channels
    float* xpPart = xz + S * 2 * Dc;   // (S, P) x_proj over this block's channels (read by the cluster)
    float* dbl = xpPart + S * P;       // (S, P) x_proj: dt part, B, C (and zero padding)
    float* part = dbl + S * P;         // the GEMMs' k-slice partial sums
    const long long b0 = (long long)(blockIdx.x / CL) * S;
    const int rows = (int)min((long long)S, a.batch - b0);
    const bool pw = a.flags & WM_STEP_PREFETCH_WEIGHTS, cs = a.flags & WM_STEP_STREAM_STATES;
    const bool stage = a.flags & WM_STEP_STAGE_RESIDUAL;

    wm_cluster_prefetch(a.l[0], b0, rows, H, D, W, KS, P, d0, Dc, pw);
    for (int i = threadIdx.x; i < S * H; i += blockDim.x) {
        float v = 0.0f;
        if (i < rows * H) { v = a.x[b0 * H + i]; if (a.x2) v += a.x2[b0 * H + i]; }
        xs[i] = v;
        x0[i] = v;
    }
    __syncthreads();

    const int Dc4 = Dc / 4;
    for (int layer = 0; layer < a.layers; ++layer) {
        const MambaLayerArgs& L = a.l[layer];
        if (layer + 1 < a.layers) wm_cluster_prefetch(a.l[layer + 1], b0, rows, H, D, W, KS, P, d0, Dc, pw);

        wm_layernorm_rows<S>(xs, L.normW, L.normB, u, H, a.eps, rows, blockDim.x);

        // in_proj: vectors v < Dc/4 are the x columns d0 + 4v, the rest the z columns D + d0 + 4(v − Dc/4).
        wm_cluster_gemm<S>(u, H, L.inT, 2 * D, H, 2 * Dc, [&](int v) { return v < Dc4 ? d0 + 4 * v : D + d0 + 4 * (v - Dc4); }, part,
                           [&](int s, int j, float v) {
            xz[s * 2 * Dc + j] = j >= Dc ? v : wm_conv_silu(L, b0 + s, d0 + j, D, K, v, s < rows);
        });
        wm_cluster_gemm<S>(xz, 2 * Dc, L.xT + (long long)d0 * P, P, Dc, P, [](int v) { return 4 * v; }, part,
                           [&](int s, int j, float v) { xpPart[s * P + j] = v; });
        wm_cluster_sync();
        wm_cluster_sum<CL, false>(dbl, xpPart, S * P / 4);
        __syncthreads();

        wm_scan_gate<S, CX>(L, xz, dbl, P, R, D, N, b0, rows, d0, Dc, cs, blockDim.x, [&](int s, int c) {
            const float* dt = dbl + s * P;
            const float* wt = L.dtT + d0 + c;
            float r = 0.0f;
            for (int k = 0; k < R; ++k) r = fmaf(dt[k], __ldg(wt + k * D), r);
            return r;
        });
        wm_cluster_gemm<S>(xz, 2 * Dc, L.outT + (long long)d0 * H, H, Dc, H, [](int v) { return 4 * v; }, part,
                           [&](int s, int j, float v) { outPart[s * H + j] = v; });
        wm_cluster_sync();
        wm_cluster_sum<CL, true>(xs, outPart, S * H / 4);
        __syncthreads();
    }
    // No block may exit while the cluster still reads its outPart.
    wm_cluster_sync();
    const int T = blockDim.x;
    for (int i = rank * T + threadIdx.x; i < rows * H; i += CL * T) a.out[b0 * H + i] = stage ? xs[i] + x0[i] : xs[i];
    if (!(a.flags & WM_STEP_HEAD)) return;
    // SaShiMi's output head on the stage's output rows (every block has them): the LayerNorm in
    // every block, then block r the r-th slice of the classes (classes a multiple of 4·CL).
    if (stage) for (int i = threadIdx.x; i < S * H; i += T) xs[i] += x0[i];
    __syncthreads();
    wm_layernorm_rows<S>(xs, a.headNormW, a.headNormB, u, H, a.eps, rows, T);
    const int Cc = a.classes / CL, c0 = rank * Cc;
    wm_cluster_gemm<S>(u, H, a.headT + c0, a.classes, H, Cc, [](int v) { return 4 * v; }, part, [&](int s, int j, float v) {
        if (s < rows) a.logits[(b0 + s) * a.classes + c0 + j] = v + (a.headB ? a.headB[c0 + j] : 0.0f);
    });
}

#define WM_MAMBA_CLUSTER(CL, S) \
extern "C" __global__ void __cluster_dims__(CL, 1, 1) __launch_bounds__(WM_CL_MAX_THREADS, 1) \
wm_mamba_cluster##CL##_real_s##S(const __grid_constant__ MambaStackArgs a) { wm_mamba_cluster<CL, S, false>(a); } \
extern "C" __global__ void __cluster_dims__(CL, 1, 1) __launch_bounds__(WM_CL_MAX_THREADS, 1) \
wm_mamba_cluster##CL##_complex_s##S(const __grid_constant__ MambaStackArgs a) { wm_mamba_cluster<CL, S, true>(a); }

WM_MAMBA_CLUSTER(8, 1)
WM_MAMBA_CLUSTER(8, 2)
WM_MAMBA_CLUSTER(8, 4)
WM_MAMBA_CLUSTER(8, 8)
WM_MAMBA_CLUSTER(8, 16)
WM_MAMBA_CLUSTER(4, 1)
WM_MAMBA_CLUSTER(4, 2)
WM_MAMBA_CLUSTER(4, 4)
WM_MAMBA_CLUSTER(4, 8)
WM_MAMBA_CLUSTER(4, 16)

#endif
