// Fused selective scan (Mamba's S6), real and complex, forward, backward and step, in the
// token-major layout of Kernels/SelectiveScan.swift (u, delta, z, out: (batch, L, D) rows
// with strides; B, C: (batch, L, W) rows, W = N or 2N interleaved re/im; A, AImag: (D, N)).
//
// Work split (forward and backward). A thread block owns CPB = 8 (or 12) channels of one batch
// item and walks the whole sequence in tiles of T = 32·I steps: one warp per channel, and
// lane k of a warp owns the I consecutive steps k·I … k·I + I − 1 of the tile. For each state
// n a lane composes its I steps (h ← a·h + b) into one pair (Π a, local h), a warp-wide
// shuffle scan of those pairs gives every lane the state entering its steps, and the lane
// replays its steps to get h_t and y_t += C_t·h_t. The state is carried from tile to tile
// per (warp, n) in shared memory; it never goes to global memory per step — only the start
// state of each tile (the checkpoints, (batch, tiles, D, W)) for the backward.
// Forward and backward also come with chains of 16 lanes × 8 steps (LC = 16, WM_SCAN_KERNELS_L16):
// two channels a warp, the same 128-step tiles as the 4-step kernels, one shuffle round fewer
// per state and half the rounds per step, and B / C tiles shared by 16 channels (the host takes
// them where their blocks fill the SMs: CUDABackend.scanForwardKernel / scanBackwardKernel).
//
// Each tile's inputs are staged in shared memory by coalesced asynchronous copies
// (cp.async) of whole rows (8 channels = one 32-byte sector of u, delta, z; B and C in
// groups of G = min(32, W) columns) into a lane-major layout, so that lane k reads its steps
// without bank conflicts (see wm_slot). Two buffers: the next tile's copies are in flight
// while the current tile computes.
// softplus(delta), the gate and D·u are computed once per (t, d), not per state.
//
// The backward walks the tiles in reverse: it recomputes the tile's states from its
// checkpoint (the same scan), then runs the adjoint recurrence g_{t−1} = conj(a_t)·(g_t + c_t)
// (c_t = gy_t·C_t, or gy_t·2·conj(C_t) for complex, since y = 2 Re(C·h)) with a reversed warp
// scan, and forms every gradient from (ĝ_t, h_t, h_{t−1}). dB and dC sum over channels: the
// block's channels are summed in shared memory, two or four states per barrier, then one
// atomicAdd per (t, column) and block — on sm_90 one vector atomic (red.v2 / v4) per (t, group of
// those states) where the rows are aligned for it (ScanGrads.vecRed). dA, dD, dDeltaBias: per-warp sums, one atomicAdd per block.
//
// Complex A costs one exp2 and one sincos per state update; a lane owns whole complex states,
// and its steps' product Π exp(Δ_i·A) is exp(A·Σ Δ_i): one more decay, not I − 1 complex
// products. A staged complex B / C row has an even stride, so a (re, im) pair is one 64-bit load.
// The SFU math, complex pairs and the decay are in ssm_math.cuh, compiled in front of this file.

// Channels (warps) per block, CPB, is a template parameter: 8, or 12 where blocks of 8 would
// load the SMs unevenly (the host's scanChannels: at (1, 1536, 65536), 192 blocks of 8 on 132
// SMs put 16 channels on some SMs and 8 on the others; 128 blocks of 12 put 12 on each).
#define WM_MAX_W 128      // W ≤ 128 (N ≤ 64 complex, ≤ 128 real)

struct ScanArgs {
    const float* u; long long su;
    const float* delta; long long sdelta;
    const float* z; long long sz;
    const float* B; long long sB;
    const float* C; long long sC;
    const float* A; const float* AImag;
    const float* Dskip; const float* deltaBias;
    long long batch, L, D; int N;
};

struct ScanGrads {
    float* du; long long sdu;
    float* dDelta; long long sdDelta;
    float* dz; long long sdz;
    float* dB; long long sdB;
    float* dC; long long sdC;
    float* dA; float* dAImag; float* dD; float* dDeltaBias;
    int vecRed;   // 1: dB and dC rows take 8- and 16-byte vector atomics (aligned rows, sm_90)
};

// dst[0..K) += v[0..K) (K = 1, 2 or 4) in one atomic reduction: sm_90's vector red, one L2
// operation for K floats (dst aligned to 4·K bytes); scalar atomics before sm_90.
template <int K>
__device__ __forceinline__ void wm_red(float* dst, const float (&v)[K]) {
#if __CUDA_ARCH__ >= 900
    if constexpr (K == 4) { asm volatile("red.global.add.v4.f32 [%0], {%1, %2, %3, %4};" :: "l"(dst), "f"(v[0]), "f"(v[1]), "f"(v[2]), "f"(v[3]) : "memory"); return; }
    if constexpr (K == 2) { asm volatile("red.global.add.v2.f32 [%0], {%1, %2};" :: "l"(dst), "f"(v[0]), "f"(v[1]) : "memory"); return; }
#endif
    #pragma unroll
    for (int k = 0; k < K; ++k) atomicAdd(dst + k, v[k]);
}

// Sequence segments, for more parallelism when batch·D is small: blockIdx.z = segment
// segBase + z owns tiles [g·tilesPerSeg, (g + 1)·tilesPerSeg). `init` (batch, segments, D, W)
// is the carried value entering each segment (forward: state at its start; backward: adjoint
// at its end; null = zero). With `end` set the kernel only carries: it writes the value leaving
// the segment (from a zero `init`) to end[b, g] and Σ softplus(Δ) over the segment to sum[b, g]
// (what wm_scan_combine needs), and nothing else.
struct SegArgs {
    const float* init; float* end; float* sum;
    long long tilesPerSeg; int segments; int segBase;
};

// Shared-memory layout of a staged tile: step r = k·I + i (lane k, its step i) of column c at
// (i·LC + k)·stride + c, LC the lanes of one channel's chain (32, or 16: two channels a warp),
// with a row stride that puts the lanes' reads in different banks: odd (C + 1) for 32 lanes;
// C + 2 for 16 (even: the 16 lanes of a half-warp hit 16 even banks, the other half's channel
// column, one over, the 16 odd ones).
template <int I, int LC = 32>
__device__ __forceinline__ int wm_slot(int r, int c, int stride) { return ((r % I) * LC + r / I) * stride + c; }
__host__ __device__ constexpr int wm_row_stride(int CPB, int LC) { return LC == 32 ? CPB + 1 : CPB + 2; }

__device__ __forceinline__ void wm_cp_async(float* dst, const float* src, bool valid) {
    unsigned s = (unsigned)__cvta_generic_to_shared(dst);
    asm volatile("cp.async.ca.shared.global [%0], [%1], 4, %2;\n" :: "r"(s), "l"(src), "r"(valid ? 4 : 0));
}
__device__ __forceinline__ void wm_cp_commit() { asm volatile("cp.async.commit_group;\n" ::); }
template <int n> __device__ __forceinline__ void wm_cp_wait() { asm volatile("cp.async.wait_group %0;\n" :: "n"(n)); }

// Queues copies of rows [t0, t0 + T) of columns [c0, c0 + C) of a (batch, L, ·) matrix into
// `dst` (wm_slot layout with row stride ds > C; C divides the block); rows past L
// or columns past `width` become 0. Completes at the next wm_cp_wait after a commit.
template <int I, int LC = 32>
__device__ __forceinline__ void wm_stage(float* dst, int ds, const float* src, long long stride, long long rowBase, long long t0,
                                         long long L, int c0, int C, int width) {
    const int T = LC * I;
    const int c = threadIdx.x % C, step = blockDim.x / C;
    const bool colOK = c0 + c < width;
    int r = threadIdx.x / C;
    // One 64-bit multiply per call; the rows advance by a constant stride.
    const float* p = src + (rowBase + t0 + r) * stride + c0 + c;
    const long long pstep = (long long)step * stride;
    for (; r < T; r += step, p += pstep) {
        bool ok = colOK && t0 + r < L;
        wm_cp_async(dst + wm_slot<I, LC>(r, c, ds), ok ? p : src, ok);
    }
}

// Stores the channel columns of a staged tile (wm_slot layout, stride wm_row_stride) to rows
// [t0, t0 + T) of a (batch, L, ·) matrix.
template <int I, int CPB, int LC = 32>
__device__ __forceinline__ void wm_unstage(float* dstg, long long stride, const float* src, long long rowBase, long long t0,
                                           long long L, int c0, int width) {
    const int T = LC * I, C = CPB;
    const int c = threadIdx.x % C, step = blockDim.x / C;
    if (c0 + c >= width) return;
    for (int r = threadIdx.x / C; r < T; r += step) {
        long long t = t0 + r;
        if (t < L) dstg[(rowBase + t) * stride + c0 + c] = src[wm_slot<I, LC>(r, c, wm_row_stride(CPB, LC))];
    }
}

// (P, S) composition for the scan: applying (P1, S1) then (P2, S2) gives (P2·P1, P2·S1 + S2).
// (LC: the shuffles' width, lanes of one chain: 32, or 16 for two chains a warp.)
template <bool CX, int LC = 32> __device__ __forceinline__ WmC wm_up(WmC a, int o) {
    return {__shfl_up_sync(0xffffffffu, a.r, o, LC), CX ? __shfl_up_sync(0xffffffffu, a.i, o, LC) : 0.0f};
}
template <bool CX, int LC = 32> __device__ __forceinline__ WmC wm_down(WmC a, int o) {
    return {__shfl_down_sync(0xffffffffu, a.r, o, LC), CX ? __shfl_down_sync(0xffffffffu, a.i, o, LC) : 0.0f};
}
template <bool CX, int LC = 32> __device__ __forceinline__ WmC wm_bcast(WmC a, int l) {
    return {__shfl_sync(0xffffffffu, a.r, l, LC), CX ? __shfl_sync(0xffffffffu, a.i, l, LC) : 0.0f};
}
// (P, S) ← (P·Pe, P·Se + S): the earlier pair (Pe, Se) applied first.
template <bool CX> __device__ __forceinline__ void wm_compose(WmC& P, WmC& S, WmC Pe, WmC Se) {
    if (CX) { S = wm_fma(P, Se, S); P = wm_mul(P, Pe); }
    else { S.r = fmaf(P.r, Se.r, S.r); P.r *= Pe.r; }
}

// Forward scan over the lanes for NJ independent states at once (their shuffles interleave):
// in: each lane's composed (P, S) of its steps; out: the (P, S) of all steps before the
// lane's (exclusive), identity (1, 0) for lane 0. Over chains of LC lanes (lane: in the chain).
template <bool CX, int NJ, int LC = 32>
__device__ __forceinline__ void wm_scan_up(WmC (&P)[NJ], WmC (&S)[NJ], int lane) {
    #pragma unroll
    for (int o = 1; o < LC; o <<= 1) {
        WmC Pp[NJ], Sp[NJ];
        #pragma unroll
        for (int j = 0; j < NJ; ++j) { Pp[j] = wm_up<CX, LC>(P[j], o); Sp[j] = wm_up<CX, LC>(S[j], o); }
        if (lane >= o) {
            #pragma unroll
            for (int j = 0; j < NJ; ++j) wm_compose<CX>(P[j], S[j], Pp[j], Sp[j]);
        }
    }
    #pragma unroll
    for (int j = 0; j < NJ; ++j) {
        WmC Pe = wm_up<CX, LC>(P[j], 1), Se = wm_up<CX, LC>(S[j], 1);
        if (lane == 0) { Pe = {1.0f, 0.0f}; Se = {0.0f, 0.0f}; }
        P[j] = Pe; S[j] = Se;
    }
}
// The same over lanes in reverse order (the chain's last lane first): exclusive suffix composition.
template <bool CX, int NJ, int LC = 32>
__device__ __forceinline__ void wm_scan_down(WmC (&P)[NJ], WmC (&S)[NJ], int lane) {
    #pragma unroll
    for (int o = 1; o < LC; o <<= 1) {
        WmC Pn[NJ], Sn[NJ];
        #pragma unroll
        for (int j = 0; j < NJ; ++j) { Pn[j] = wm_down<CX, LC>(P[j], o); Sn[j] = wm_down<CX, LC>(S[j], o); }
        if (lane + o < LC) {
            #pragma unroll
            for (int j = 0; j < NJ; ++j) wm_compose<CX>(P[j], S[j], Pn[j], Sn[j]);
        }
    }
    #pragma unroll
    for (int j = 0; j < NJ; ++j) {
        WmC Pe = wm_down<CX, LC>(P[j], 1), Se = wm_down<CX, LC>(S[j], 1);
        if (lane == LC - 1) { Pe = {1.0f, 0.0f}; Se = {0.0f, 0.0f}; }
        P[j] = Pe; S[j] = Se;
    }
}

// B / C columns staged at once: the next power of two ≥ W, at least 2 (a real forward reads
// states in pairs; columns past W are zeros) and at most 32.
__host__ __device__ __forceinline__ int wm_group(int W) { int g = 2; while (g < W && g < 32) g <<= 1; return g; }
// Row stride of a staged B / C tile: G + 1 (odd: lane k's rows fall in 32 different banks), and
// G + 2 for complex, even so that a state's (re, im) pair is one aligned 64-bit load (a
// half-warp's 16 pairs then cover the 32 banks once).
__host__ __device__ __forceinline__ int wm_bc_stride(int G, bool complex) { return complex ? G + 2 : G + 1; }
// A staged (re, im) pair (complex B or C, wm_bc_stride layout).
__device__ __forceinline__ WmC wm_pair(const float* p) { const float2 v = *reinterpret_cast<const float2*>(p); return {v.x, v.y}; }

// Shared memory (floats). Forward: two buffers of (u, delta, z: (CPB + 1) × T each; B, C:
// wm_bc_stride × T each; or two of the rows and one of B / C), then the carried state and A (CPB × W each). Backward: two buffers of (u, delta, z, dOut; the
// tile's start states CPB × W), one of B, C (the backward needs the space for two blocks per
// SM more than it needs B / C early), the per-channel dB / dC values
// of RG states (RG × (2 or 4) × CPB × T), the carried adjoint, the dA sums and A (CPB × W each).
// RG, the states whose dB / dC are summed at one barrier: 2, and 4 for the real backward with 12
// channels (its one block an SM has the room; with 8, four would cost the third block an SM).
__host__ __device__ constexpr int wm_bwd_reduce_states(bool complex, int CPB) { return !complex && CPB == 12 ? 4 : 2; }
__host__ __device__ __forceinline__ int wm_bwd_buffer_floats(int T, int W, int CPB, int CS) { return 4 * CS * T + CPB * W; }

// Entry w of channel d's row of A laid out as its states (A·scale, or re/im pairs (A·scale,
// AImag) for complex; 0 past the last channel): what the tile kernels keep in shared memory,
// read once per block, not per tile.
template <bool CX>
__device__ __forceinline__ float wm_A_entry(const ScanArgs& a, long long d, int w, bool valid, float scale) {
    const int N = a.N;
    return !valid ? 0.0f : (CX && (w & 1)) ? a.AImag[d * N + w / 2] : a.A[d * N + (CX ? w / 2 : w)] * scale;
}

// Forward: out (may be null), the start state of every tile into ckpt (batch, tiles, D, W)
// (may be null), the final state into lastState (batch, D, W) (may be null).
// Real scans WM_NJ = 2 states at once (their chains interleave); complex one (the register
// cost of two complex chains outweighs it: measured slower, docs/scan-kernel.md).
template <bool CX, int I, int CPB, int LC = 32>
__device__ void wm_scan_fwd(ScanArgs a, float* out, long long sOut, float* ckpt, float* lastState, SegArgs sg, int bcBuffers) {
    extern __shared__ float smem[];
    const int T = LC * I, N = a.N, W = CX ? 2 * N : N, G = wm_group(W), CS = wm_row_stride(CPB, LC), GS = wm_bc_stride(G, CX);
    // Two buffers of (u, delta, z rows; B / C) — or, with bcBuffers = 1, two of the rows and one of
    // B / C, refilled once the tile's states are done (less shared memory: more blocks an SM).
    const bool oneBC = bcBuffers == 1;
    const int rowFloats = 3 * CS * T, bcFloats = 2 * GS * T, bufFloats = rowFloats + (oneBC ? 0 : bcFloats);
    float* const sBC0 = oneBC ? smem + 2 * rowFloats : nullptr;
    float* sH = smem + 2 * rowFloats + (oneBC ? 1 : 2) * bcFloats;   // (CPB, W) carried state
    float* sA = sH + CPB * W;                    // (CPB, W) A·log2 e [, AImag] per state, read once, not per tile
    // ch: this thread's channel in the block; lane: its place in the channel's chain of LC
    // lanes (a ch with LC = 32; LC = 16: a ch's two halves are two channels).
    const int ch = threadIdx.x / LC, lane = threadIdx.x % LC;
    int bcb[I];   // this lane's row of step i in a B / C tile
    #pragma unroll
    for (int i = 0; i < I; ++i) bcb[i] = (i * LC + lane) * GS;
    const long long b = blockIdx.y, d0 = (long long)blockIdx.x * CPB, d = d0 + ch;
    const bool valid = d < a.D;
    const long long rowBase = b * a.L, tiles = (a.L + T - 1) / T;
    const float bias = (valid && a.deltaBias) ? a.deltaBias[d] : 0.0f;
    const float Dd = (valid && a.Dskip) ? a.Dskip[d] : 0.0f;
    const int statesPerGroup = CX ? G / 2 : G;
    constexpr int WM_NJ = CX ? 1 : 2;
    const long long seg = blockIdx.z + sg.segBase;
    const long long tBegin = seg * sg.tilesPerSeg, tEnd = min(tiles, tBegin + sg.tilesPerSeg);
    const bool endOnly = sg.end != nullptr;
    if (endOnly) { out = nullptr; ckpt = nullptr; lastState = nullptr; }
    if (seg != sg.segments - 1) lastState = nullptr;
    for (int w = lane; w < W; w += LC) {
        sH[ch * W + w] = (sg.init && valid) ? sg.init[((b * sg.segments + seg) * a.D + d) * W + w] : 0.0f;
        sA[ch * W + w] = wm_A_entry<CX>(a, d, w, valid, 1.4426950408889634f);
    }
    float sumS = 0.0f;

    // Queues the copies of a tile's u, delta, z and B / C columns [g0, g0 + G) into buffer `buf`.
    auto issue = [&](long long tile, int buf, bool rows) {
        float* base = smem + buf * bufFloats;
        const long long t0 = tile * T;
        if (rows) {
            wm_stage<I, LC>(base, CS, a.u, a.su, rowBase, t0, a.L, (int)d0, CPB, (int)a.D);
            wm_stage<I, LC>(base + CS * T, CS, a.delta, a.sdelta, rowBase, t0, a.L, (int)d0, CPB, (int)a.D);
            if (a.z) wm_stage<I, LC>(base + 2 * CS * T, CS, a.z, a.sz, rowBase, t0, a.L, (int)d0, CPB, (int)a.D);
        }
    };
    auto issueBC = [&](long long tile, int buf, int g0) {
        float* base = oneBC ? sBC0 : smem + buf * bufFloats + rowFloats;
        const long long t0 = tile * T;
        wm_stage<I, LC>(base, GS, a.B, a.sB, rowBase, t0, a.L, g0, G, W);
        wm_stage<I, LC>(base + GS * T, GS, a.C, a.sC, rowBase, t0, a.L, g0, G, W);
    };
    if (tBegin >= tEnd) return;
    issue(tBegin, (int)(tBegin & 1), true); issueBC(tBegin, (int)(tBegin & 1), 0); wm_cp_commit();

    for (long long tile = tBegin; tile < tEnd; ++tile) {
        const long long t0 = tile * T;
        const int cur = (int)(tile & 1);
        float* sU = smem + cur * bufFloats;
        float* sDelta = sU + CS * T;
        float* sZ = sDelta + CS * T;
        float* sB = oneBC ? sBC0 : sZ + CS * T;
        float* sC = sB + GS * T;
        // Groups complete in order: with one B / C buffer, this tile's B / C went out after the
        // previous tile's states (below), before these rows.
        if (tile + 1 < tEnd) { issue(tile + 1, cur ^ 1, true); if (!oneBC) issueBC(tile + 1, cur ^ 1, 0); wm_cp_commit(); wm_cp_wait<1>(); }
        else wm_cp_wait<0>();
        __syncthreads();
        if (ckpt && valid)
            for (int w = lane; w < W; w += LC) ckpt[((b * tiles + tile) * a.D + d) * W + w] = sH[ch * W + w];
        float sdt[I], du[I], y[I], sdtLane = 0.0f;   // sdtLane: Σ Δ over the lane's steps
        #pragma unroll
        for (int i = 0; i < I; ++i) {
            int s = (i * LC + lane) * CS + ch;
            bool in = valid && t0 + lane * I + i < a.L;
            float uu = sU[s];
            sdt[i] = in ? wm_softplus_s(sDelta[s] + bias) : 0.0f;
            du[i] = sdt[i] * uu;
            y[i] = (CX ? 0.5f : 1.0f) * Dd * uu;   // complex: half of y, doubled after the states (y = 2 Re(C·h) + D·u)
            sdtLane += sdt[i];
        }
        sumS += sdtLane;
        for (int g0 = 0; g0 < W; g0 += G) {
            if (g0 > 0) {   // W > 32: the further column groups of this tile, loaded now
                __syncthreads();
                issueBC(tile, cur, g0); wm_cp_commit(); wm_cp_wait<0>();
                __syncthreads();
            }
            const int n0 = CX ? g0 / 2 : g0, n1 = min(N, n0 + statesPerGroup);
            for (int n = n0; n < n1; n += WM_NJ) {
                WmC av[WM_NJ][I], bv[WM_NJ][I], P[WM_NJ], S[WM_NJ];
                bool on[WM_NJ];
                int cr[WM_NJ];
                #pragma unroll
                for (int j = 0; j < WM_NJ; ++j) {
                    on[j] = n + j < n1;
                    cr[j] = CX ? 2 * (n + j - n0) : n + j - n0;
                    const int nj = on[j] ? n + j : n;   // past the last state: B, C columns are zeros
                    const float A2 = sA[ch * W + (CX ? 2 * nj : nj)];
                    const float Ai = CX ? sA[ch * W + 2 * nj + 1] : 0.0f;
                    #pragma unroll
                    for (int i = 0; i < I; ++i) {
                        av[j][i] = wm_decay<CX>(sdt[i], A2, Ai);
                        const WmC bb = CX ? wm_pair(sB + bcb[i] + cr[j]) : WmC{sB[bcb[i] + cr[j]], 0.0f};
                        bv[j][i] = {du[i] * bb.r, du[i] * bb.i};
                        // The first step's pair as it is: composing it with (1, 0) costs
                        // multiplications by 0 the compiler may not drop.
                        if (i == 0) { P[j] = av[j][0]; S[j] = bv[j][0]; }
                        else if (CX) S[j] = wm_fma(av[j][i], S[j], bv[j][i]);
                        else { S[j].r = fmaf(av[j][i].r, S[j].r, bv[j][i].r); P[j].r *= av[j][i].r; }
                    }
                    // Complex: Π exp(Δ_i·A) = exp(A·Σ Δ_i), one decay in place of I − 1 complex products.
                    if (CX && I > 1) P[j] = wm_decay<CX>(sdtLane, A2, Ai);
                }
                wm_scan_up<CX, WM_NJ, LC>(P, S, lane);
                #pragma unroll
                for (int j = 0; j < WM_NJ; ++j) {
                    const int w = CX ? 2 * (n + j) : n + j;
                    WmC hin = {on[j] ? sH[ch * W + w] : 0.0f, (CX && on[j]) ? sH[ch * W + w + 1] : 0.0f};
                    WmC h = CX ? wm_fma(P[j], hin, S[j]) : WmC{fmaf(P[j].r, hin.r, S[j].r), 0.0f};
                    #pragma unroll
                    for (int i = 0; i < I; ++i) {
                        if (CX) h = wm_fma(av[j][i], h, bv[j][i]); else h.r = fmaf(av[j][i].r, h.r, bv[j][i].r);
                        if (!endOnly) {
                            if (CX) { const WmC cc = wm_pair(sC + bcb[i] + cr[j]); y[i] = fmaf(cc.r, h.r, fmaf(-cc.i, h.i, y[i])); }
                            else y[i] = fmaf(sC[bcb[i] + cr[j]], h.r, y[i]);
                        }
                    }
                    h = wm_bcast<CX, LC>(h, LC - 1);
                    __syncwarp();
                    if (lane == 0 && on[j]) {
                        sH[ch * W + w] = h.r;
                        if (CX) sH[ch * W + w + 1] = h.i;
                    }
                }
                __syncwarp();
            }
        }
        if (out) {
            // y (+ D·u already in) through the gate, back through shared memory (own slots of sDelta).
            #pragma unroll
            for (int i = 0; i < I; ++i) {
                int s = (i * LC + lane) * CS + ch;
                float v = CX ? 2.0f * y[i] : y[i];
                if (a.z) { float zz = sZ[s]; v *= zz * wm_sigmoid_s(zz); }
                sDelta[s] = v;
            }
            __syncthreads();   // (every warp is past its states: the B / C buffer is free)
            if (oneBC && tile + 1 < tEnd) { issueBC(tile + 1, 0, 0); wm_cp_commit(); }
            wm_unstage<I, CPB, LC>(out, sOut, sDelta, rowBase, t0, a.L, (int)d0, (int)a.D);
        }
        __syncthreads();   // this buffer is refilled by the next iteration's copies
        if (oneBC && !out && tile + 1 < tEnd) { issueBC(tile + 1, 0, 0); wm_cp_commit(); }
    }
    if (lastState && valid)
        for (int w = lane; w < W; w += LC) lastState[(b * a.D + d) * W + w] = sH[ch * W + w];
    if (endOnly) {
        sumS = wm_chain_sum<LC>(sumS);
        if (valid) {
            for (int w = lane; w < W; w += LC) sg.end[((b * sg.segments + seg) * a.D + d) * W + w] = sH[ch * W + w];
            if (lane == 0) sg.sum[(b * sg.segments + seg) * a.D + d] = sumS;
        }
    }
}

// Backward from the forward's tile checkpoints (batch, tiles, D, W; null = one tile from a
// zero state). dB, dC, dA, dAImag, dD, dDeltaBias must be zero on entry (atomic sums); du,
// dDelta, dz are written.
template <bool CX, int I, int CPB, int LC = 32>
__device__ void wm_scan_bwd(ScanArgs a, const float* ckpt, const float* dOut, long long sdOut, ScanGrads g, SegArgs sg) {
    extern __shared__ float smem[];
    const int T = LC * I, N = a.N, W = CX ? 2 * N : N, G = wm_group(W), CS = wm_row_stride(CPB, LC), GS = wm_bc_stride(G, CX);
    const int bufFloats = wm_bwd_buffer_floats(T, W, CPB, CS);
    float* sB = smem + 2 * bufFloats;
    float* sC = sB + GS * T;
    constexpr int RG = wm_bwd_reduce_states(CX, CPB);
    float* sRed = sC + GS * T;                         // (RG, 2 or 4, CPB, T): dB re, [dB im,] dC re, [dC im] per channel, of RG states
    float* sAdj = sRed + RG * (CX ? 4 : 2) * CPB * T;  // (CPB, W) carried adjoint
    float* sAccA = sAdj + CPB * W;                 // (CPB, W) dA (re, im interleaved for complex)
    float* sA = sAccA + CPB * W;                    // (CPB, W) A [, AImag] per state, read once, not per tile
    const int redC = CX ? 2 : 1;                      // offset of the dC components in sRed
    const int R = 2 * redC;                           // components in sRed
    const int ch = threadIdx.x / LC, lane = threadIdx.x % LC;   // channel in the block, lane in its chain (as the forward)
    int bcb[I];   // this lane's row of step i in a B / C tile
    #pragma unroll
    for (int i = 0; i < I; ++i) bcb[i] = (i * LC + lane) * GS;
    const long long b = blockIdx.y, d0 = (long long)blockIdx.x * CPB, d = d0 + ch;
    const bool valid = d < a.D;
    const long long rowBase = b * a.L, tiles = (a.L + T - 1) / T;
    const int nc = (int)min((long long)CPB, a.D - d0);
    const float bias = (valid && a.deltaBias) ? a.deltaBias[d] : 0.0f;
    const float Dd = (valid && a.Dskip) ? a.Dskip[d] : 0.0f;
    const long long seg = blockIdx.z + sg.segBase;
    const long long tBegin = seg * sg.tilesPerSeg, tEnd = min(tiles, tBegin + sg.tilesPerSeg);
    const bool adjOnly = sg.end != nullptr;   // carry the adjoint only (see SegArgs)
    for (int w = lane; w < W; w += LC) {
        sAdj[ch * W + w] = (sg.init && valid) ? sg.init[((b * sg.segments + seg) * a.D + d) * W + w] : 0.0f;
        sAccA[ch * W + w] = 0.0f;
        sA[ch * W + w] = wm_A_entry<CX>(a, d, w, valid, 1.0f);
    }
    float accD = 0.0f, accBias = 0.0f, sumS = 0.0f;
    if (tBegin >= tEnd) return;
    const int statesPerGroup = CX ? G / 2 : G;

    auto issue = [&](long long tile, int buf) {
        float* base = smem + buf * bufFloats;
        const long long t0 = tile * T;
        wm_stage<I, LC>(base, CS, a.u, a.su, rowBase, t0, a.L, (int)d0, CPB, (int)a.D);
        wm_stage<I, LC>(base + CS * T, CS, a.delta, a.sdelta, rowBase, t0, a.L, (int)d0, CPB, (int)a.D);
        if (a.z) wm_stage<I, LC>(base + 2 * CS * T, CS, a.z, a.sz, rowBase, t0, a.L, (int)d0, CPB, (int)a.D);
        wm_stage<I, LC>(base + 3 * CS * T, CS, dOut, sdOut, rowBase, t0, a.L, (int)d0, CPB, (int)a.D);
        float* h0 = base + 4 * CS * T;
        for (int w = lane; w < W; w += LC) {
            bool ok = ckpt && valid;
            wm_cp_async(h0 + ch * W + w, ok ? ckpt + ((b * tiles + tile) * a.D + d) * W + w : a.u, ok);
        }
    };
    auto issueBC = [&](long long tile, int g0) {
        const long long t0 = tile * T;
        wm_stage<I, LC>(sB, GS, a.B, a.sB, rowBase, t0, a.L, g0, G, W);
        wm_stage<I, LC>(sC, GS, a.C, a.sC, rowBase, t0, a.L, g0, G, W);
    };
    issue(tEnd - 1, (int)((tEnd - 1) & 1)); wm_cp_commit();

    for (long long tile = tEnd - 1; tile >= tBegin; --tile) {
        const long long t0 = tile * T;
        const int cur = (int)(tile & 1);
        float* sU = smem + cur * bufFloats;
        float* sDelta = sU + CS * T;
        float* sZ = sDelta + CS * T;
        float* sG = sZ + CS * T;                   // dOut tile
        float* sH0 = sG + CS * T;                  // (CPB, W) the tile's start state
        issueBC(tile, 0); wm_cp_commit();              // groups complete in order: this tile's rows, then B / C
        if (tile > tBegin) { issue(tile - 1, cur ^ 1); wm_cp_commit(); wm_cp_wait<1>(); }
        else wm_cp_wait<0>();
        __syncthreads();
        float sdt[I], du[I], gy[I], y[I], X[I], Y[I], sdtLane = 0.0f;   // sdtLane: Σ Δ over the lane's steps
        #pragma unroll
        for (int i = 0; i < I; ++i) {
            int s = (i * LC + lane) * CS + ch;
            bool in = valid && t0 + lane * I + i < a.L;
            float uu = sU[s];
            sdt[i] = in ? wm_softplus_s(sDelta[s] + bias) : 0.0f;
            du[i] = sdt[i] * uu;
            float gg = in ? sG[s] : 0.0f;
            if (a.z) { float zz = sZ[s]; gg *= zz * wm_sigmoid_s(zz); }
            gy[i] = gg;
            y[i] = Dd * uu; X[i] = 0.0f; Y[i] = 0.0f;
            sdtLane += sdt[i];
        }
        sumS += sdtLane;
        for (int g0 = 0; g0 < W; g0 += G) {
            if (g0 > 0) {
                __syncthreads();
                issueBC(tile, g0); wm_cp_commit(); wm_cp_wait<0>();
                __syncthreads();
            }
            const int n0 = CX ? g0 / 2 : g0, n1 = min(N, n0 + statesPerGroup);
            for (int n = n0; n < n1; ++n) {
                const int cr = CX ? 2 * (n - n0) : n - n0;
                const int jp = (n - n0) % RG;   // this state's part of sRed
                const float Ar = sA[ch * W + (CX ? 2 * n : n)], A2 = Ar * 1.4426950408889634f;
                const float Ai = CX ? sA[ch * W + 2 * n + 1] : 0.0f;
                // 1. The tile's states from its checkpoint (as the forward).
                WmC av[I], bv[I], hv[I];
                WmC P[1], S[1];
                #pragma unroll
                for (int i = 0; i < I; ++i) av[i] = wm_decay<CX>(sdt[i], A2, Ai);
                // Complex: the lane's product Π a_i = exp(A·Σ Δ_i) in one decay, for the state's
                // scan and (conjugated) the adjoint's, in place of 2 (I − 1) complex products.
                const WmC Plane = CX ? wm_decay<CX>(sdtLane, A2, Ai) : WmC{1.0f, 0.0f};
                WmC hprev0 = {0.0f, 0.0f};   // state before the lane's steps
                {   // (also in the adjoint-only pass: guarding it moves hv[] to local memory)
                    #pragma unroll
                    for (int i = 0; i < I; ++i) {
                        const WmC bb = CX ? wm_pair(sB + bcb[i] + cr) : WmC{sB[bcb[i] + cr], 0.0f};
                        bv[i] = {du[i] * bb.r, du[i] * bb.i};
                        if (i == 0) { P[0] = av[0]; S[0] = bv[0]; }   // (as the forward)
                        else if (CX) S[0] = wm_fma(av[i], S[0], bv[i]);
                        else { S[0].r = fmaf(av[i].r, S[0].r, bv[i].r); P[0].r *= av[i].r; }
                    }
                    if (CX) P[0] = Plane;
                    wm_scan_up<CX, 1, LC>(P, S, lane);
                    WmC h0 = {sH0[ch * W + (CX ? 2 * n : n)], CX ? sH0[ch * W + 2 * n + 1] : 0.0f};
                    hprev0 = CX ? wm_fma(P[0], h0, S[0]) : WmC{fmaf(P[0].r, h0.r, S[0].r), 0.0f};
                    WmC h = hprev0;
                    #pragma unroll
                    for (int i = 0; i < I; ++i) {
                        if (CX) h = wm_fma(av[i], h, bv[i]); else h.r = fmaf(av[i].r, h.r, bv[i].r);
                        hv[i] = h;
                    }
                }
                // 2. Adjoint: g_{t−1} = conj(a_t)·(g_t + c_t), lanes in reverse, carried from the next tile.
                #pragma unroll
                for (int i = I - 1; i >= 0; --i) {
                    const WmC cc = CX ? wm_pair(sC + bcb[i] + cr) : WmC{sC[bcb[i] + cr], 0.0f};
                    const float c_r = cc.r;
                    WmC al = wm_conj(av[i]);
                    const bool last = i == I - 1;   // the lane's last step starts the pair (no (1, 0) to compose with)
                    if (CX) {
                        WmC c = {2.0f * gy[i] * c_r, -2.0f * gy[i] * cc.i};
                        S[0] = last ? wm_mul(al, c) : wm_mul(al, WmC{S[0].r + c.r, S[0].i + c.i});
                    } else {
                        S[0].r = last ? al.r * (gy[i] * c_r) : al.r * (S[0].r + gy[i] * c_r);
                        P[0].r = last ? al.r : P[0].r * al.r;
                    }
                }
                if (CX) P[0] = wm_conj(Plane);
                wm_scan_down<CX, 1, LC>(P, S, lane);
                WmC gin = {sAdj[ch * W + (CX ? 2 * n : n)], CX ? sAdj[ch * W + 2 * n + 1] : 0.0f};
                WmC gcar = CX ? wm_fma(P[0], gin, S[0]) : WmC{fmaf(P[0].r, gin.r, S[0].r), 0.0f};  // adjoint arriving after the lane's last step
                float accAr = 0.0f, accAi = 0.0f;
                if (adjOnly) {
                    #pragma unroll
                    for (int i = I - 1; i >= 0; --i) {
                        const WmC cc = CX ? wm_pair(sC + bcb[i] + cr) : WmC{sC[bcb[i] + cr], 0.0f};
                        WmC gh = CX ? WmC{gcar.r + 2.0f * gy[i] * cc.r, gcar.i - 2.0f * gy[i] * cc.i}
                                    : WmC{gcar.r + gy[i] * cc.r, 0.0f};
                        gcar = CX ? wm_mul(wm_conj(av[i]), gh) : WmC{gh.r * av[i].r, 0.0f};
                    }
                } else {
                #pragma unroll
                for (int i = I - 1; i >= 0; --i) {
                    int slot = jp * R * CPB * T + i * LC + lane;   // this step in this state's (R, CPB, T) part of sRed (item-major)
                    const WmC cc = CX ? wm_pair(sC + bcb[i] + cr) : WmC{sC[bcb[i] + cr], 0.0f};
                    const WmC bb = CX ? wm_pair(sB + bcb[i] + cr) : WmC{sB[bcb[i] + cr], 0.0f};
                    const float c_r = cc.r, br = bb.r;
                    WmC hp = i > 0 ? hv[i - 1] : hprev0;
                    if (CX) {
                        const float c_i = cc.i, bi = bb.i;
                        WmC gh = {gcar.r + 2.0f * gy[i] * c_r, gcar.i - 2.0f * gy[i] * c_i};
                        y[i] += 2.0f * (c_r * hv[i].r - c_i * hv[i].i);
                        sRed[(0 * CPB + ch) * T + slot] = gh.r * du[i];
                        sRed[(1 * CPB + ch) * T + slot] = gh.i * du[i];
                        sRed[(2 * CPB + ch) * T + slot] = 2.0f * gy[i] * hv[i].r;
                        sRed[(3 * CPB + ch) * T + slot] = -2.0f * gy[i] * hv[i].i;
                        X[i] += gh.r * br + gh.i * bi;
                        WmC ga = {gh.r * hp.r + gh.i * hp.i, gh.i * hp.r - gh.r * hp.i};       // ĝ·conj(h_{t−1})
                        WmC gv = {ga.r * av[i].r + ga.i * av[i].i, ga.i * av[i].r - ga.r * av[i].i};  // ·conj(a_t)
                        accAr += gv.r * sdt[i]; accAi += gv.i * sdt[i];
                        Y[i] += gv.r * Ar + gv.i * Ai;
                        gcar = wm_mul(wm_conj(av[i]), gh);
                    } else {
                        float gh = gcar.r + gy[i] * c_r;
                        y[i] = fmaf(c_r, hv[i].r, y[i]);
                        sRed[(0 * CPB + ch) * T + slot] = gh * du[i];
                        sRed[(1 * CPB + ch) * T + slot] = gy[i] * hv[i].r;
                        X[i] += gh * br;
                        float gv = gh * hp.r * av[i].r;
                        accAr += gv * sdt[i];
                        Y[i] += gv * Ar;
                        gcar.r = gh * av[i].r;
                    }
                }
                }
                // The carried adjoint for the previous tile: lane 0's after its first step.
                gcar = wm_bcast<CX, LC>(gcar, 0);
                accAr = wm_chain_sum<LC>(accAr);
                if (CX) accAi = wm_chain_sum<LC>(accAi);
                __syncwarp();
                if (lane == 0) {
                    sAdj[ch * W + (CX ? 2 * n : n)] = gcar.r;
                    if (CX) sAdj[ch * W + 2 * n + 1] = gcar.i;
                    sAccA[ch * W + (CX ? 2 * n : n)] += accAr;
                    if (CX) sAccA[ch * W + 2 * n + 1] += accAi;
                }
                if (adjOnly) continue;
                // 3. dB, dC: the block's channels summed, one atomic per step and column, for RG
                // states at once (a pair of barriers per RG states, not per state).
                if (jp < RG - 1 && n + 1 < n1) continue;
                __syncthreads();
                if (g.vecRed && jp == RG - 1) {
                    // A whole group of RG states (the first even): per step, dB's and dC's RG·(1 or 2)
                    // adjacent floats summed over the channels and added by one vector atomic
                    // each (a quarter of the complex backward's atomics, half the real one's).
                    constexpr int K = RG * (CX ? 2 : 1);
                    for (int p = threadIdx.x; p < 2 * T; p += blockDim.x) {
                        const int side = p / T, q = p - side * T;   // side 0: dB, 1: dC
                        const int i = q / LC, k = q % LC;
                        const long long t = t0 + k * I + i;
                        if (t >= a.L) continue;
                        float v[K];
                        #pragma unroll
                        for (int e = 0; e < K; ++e) v[e] = 0.0f;
                        for (int w = 0; w < nc; ++w) {
                            #pragma unroll
                            for (int j = 0; j < RG; ++j) {
                                const float* red = sRed + j * R * CPB * T + (side * redC * CPB + w) * T + q;
                                v[j * (CX ? 2 : 1)] += red[0];
                                if (CX) v[j * 2 + 1] += red[CPB * T];
                            }
                        }
                        const long long row = rowBase + t;
                        const int col = (CX ? 2 : 1) * (n - jp);
                        wm_red<K>(side ? g.dC + row * g.sdC + col : g.dB + row * g.sdB + col, v);
                    }
                } else
                for (int p = threadIdx.x; p < (jp + 1) * T; p += blockDim.x) {
                    const int j = p / T, q = p - j * T, nj = n - jp + j;
                    const int i = q / LC, k = q % LC;
                    const long long t = t0 + k * I + i;
                    if (t >= a.L) continue;
                    const float* red = sRed + j * R * CPB * T;
                    float v0 = 0.0f, v1 = 0.0f, v2 = 0.0f, v3 = 0.0f;
                    for (int w = 0; w < nc; ++w) {
                        v0 += red[(0 * CPB + w) * T + q]; v2 += red[(redC * CPB + w) * T + q];
                        if (CX) { v1 += red[(1 * CPB + w) * T + q]; v3 += red[(3 * CPB + w) * T + q]; }
                    }
                    const long long row = rowBase + t;
                    if (CX) {
                        atomicAdd(g.dB + row * g.sdB + 2 * nj, v0); atomicAdd(g.dB + row * g.sdB + 2 * nj + 1, v1);
                        atomicAdd(g.dC + row * g.sdC + 2 * nj, v2); atomicAdd(g.dC + row * g.sdC + 2 * nj + 1, v3);
                    } else {
                        atomicAdd(g.dB + row * g.sdB + nj, v0);
                        atomicAdd(g.dC + row * g.sdC + nj, v2);
                    }
                }
                __syncthreads();
            }
        }
        // du, dDelta, dz of the tile through shared memory (own slots of sU, sDelta, sG).
        if (!adjOnly) {
        #pragma unroll
        for (int i = 0; i < I; ++i) {
            int s = (i * LC + lane) * CS + ch;
            bool in = valid && t0 + lane * I + i < a.L;
            float uu = sU[s], pre = sDelta[s] + bias, dout = sG[s];
            float dpre = (X[i] * uu + Y[i]) * wm_sigmoid_s(pre);
            float dz = 0.0f;
            if (a.z) { float zz = sZ[s], sg = wm_sigmoid_s(zz); dz = dout * y[i] * sg * (1.0f + zz * (1.0f - sg)); }
            if (in) { accD += gy[i] * uu; accBias += dpre; }
            sU[s] = X[i] * sdt[i] + gy[i] * Dd;
            sDelta[s] = dpre;
            sG[s] = dz;
        }
        __syncthreads();
        wm_unstage<I, CPB, LC>(g.du, g.sdu, sU, rowBase, t0, a.L, (int)d0, (int)a.D);
        wm_unstage<I, CPB, LC>(g.dDelta, g.sdDelta, sDelta, rowBase, t0, a.L, (int)d0, (int)a.D);
        if (a.z && g.dz) wm_unstage<I, CPB, LC>(g.dz, g.sdz, sG, rowBase, t0, a.L, (int)d0, (int)a.D);
        }
        __syncthreads();   // this buffer is refilled by the next iteration's copies
    }
    if (adjOnly) {
        sumS = wm_chain_sum<LC>(sumS);
        if (valid) {
            for (int w = lane; w < W; w += LC) sg.end[((b * sg.segments + seg) * a.D + d) * W + w] = sAdj[ch * W + w];
            if (lane == 0) sg.sum[(b * sg.segments + seg) * a.D + d] = sumS;
        }
        return;
    }
    accD = wm_chain_sum<LC>(accD); accBias = wm_chain_sum<LC>(accBias);
    if (valid) {
        for (int n = lane; n < N; n += LC) {
            atomicAdd(g.dA + d * N + n, sAccA[ch * W + (CX ? 2 * n : n)]);
            if (CX) atomicAdd(g.dAImag + d * N + n, sAccA[ch * W + 2 * n + 1]);
        }
        if (lane == 0) {
            if (g.dD) atomicAdd(g.dD + d, accD);
            if (g.dDeltaBias) atomicAdd(g.dDeltaBias + d, accBias);
        }
    }
}

// Launch bounds: the real backward keeps three blocks of 8 warps per SM at I = 4 (its shared
// memory allows them; unbounded, ptxas spends 106 registers and only two fit); blocks of 12
// run one an SM (the host picks them only where they are at most as many as SMs). 12 channels only
// with I = 4: the complex backward at I = 8 needs 194 registers, over the 170 that 384
// threads may have.
#define WM_SCAN_KERNELS(I, CPB) \
extern "C" __global__ void __launch_bounds__(32 * CPB) wm_scan_fwd_real_i##I##_c##CPB(ScanArgs a, float* out, long long sOut, float* ckpt, float* last, SegArgs sg, int bcBuffers) { \
    wm_scan_fwd<false, I, CPB>(a, out, sOut, ckpt, last, sg, bcBuffers); } \
extern "C" __global__ void __launch_bounds__(32 * CPB) wm_scan_fwd_complex_i##I##_c##CPB(ScanArgs a, float* out, long long sOut, float* ckpt, float* last, SegArgs sg, int bcBuffers) { \
    wm_scan_fwd<true, I, CPB>(a, out, sOut, ckpt, last, sg, bcBuffers); } \
extern "C" __global__ void __launch_bounds__(32 * CPB, CPB == 12 ? 1 : 96 / (I * CPB)) wm_scan_bwd_real_i##I##_c##CPB(ScanArgs a, const float* ckpt, const float* dOut, long long sdOut, ScanGrads g, SegArgs sg) { \
    wm_scan_bwd<false, I, CPB>(a, ckpt, dOut, sdOut, g, sg); } \
extern "C" __global__ void __launch_bounds__(32 * CPB) wm_scan_bwd_complex_i##I##_c##CPB(ScanArgs a, const float* ckpt, const float* dOut, long long sdOut, ScanGrads g, SegArgs sg) { \
    wm_scan_bwd<true, I, CPB>(a, ckpt, dOut, sdOut, g, sg); }

WM_SCAN_KERNELS(4, 8)
WM_SCAN_KERNELS(8, 8)
WM_SCAN_KERNELS(4, 12)

// Kernels of two channels a warp: chains of 16 lanes × 8 steps, the same tile of 128 steps as
// the 4-step kernels above (either backward reads either forward's checkpoints), one shuffle
// round fewer per state and half the rounds per step; CPB channels in CPB / 2 warps.
#define WM_SCAN_KERNELS_L16(CPB) \
extern "C" __global__ void __launch_bounds__(16 * CPB) wm_scan_fwd_real_i8_c##CPB##_l16(ScanArgs a, float* out, long long sOut, float* ckpt, float* last, SegArgs sg, int bcBuffers) { \
    wm_scan_fwd<false, 8, CPB, 16>(a, out, sOut, ckpt, last, sg, bcBuffers); } \
extern "C" __global__ void __launch_bounds__(16 * CPB) wm_scan_fwd_complex_i8_c##CPB##_l16(ScanArgs a, float* out, long long sOut, float* ckpt, float* last, SegArgs sg, int bcBuffers) { \
    wm_scan_fwd<true, 8, CPB, 16>(a, out, sOut, ckpt, last, sg, bcBuffers); } \
extern "C" __global__ void __launch_bounds__(16 * CPB) wm_scan_bwd_real_i8_c##CPB##_l16(ScanArgs a, const float* ckpt, const float* dOut, long long sdOut, ScanGrads g, SegArgs sg) { \
    wm_scan_bwd<false, 8, CPB, 16>(a, ckpt, dOut, sdOut, g, sg); } \
extern "C" __global__ void __launch_bounds__(16 * CPB) wm_scan_bwd_complex_i8_c##CPB##_l16(ScanArgs a, const float* ckpt, const float* dOut, long long sdOut, ScanGrads g, SegArgs sg) { \
    wm_scan_bwd<true, 8, CPB, 16>(a, ckpt, dOut, sdOut, g, sg); }

WM_SCAN_KERNELS_L16(8)
WM_SCAN_KERNELS_L16(12)
WM_SCAN_KERNELS_L16(16)

// Carried values across segments, per (b, d, n), in segment order: forward (reverse = 0)
// starts[g] = P_{g−1}·starts[g−1] + end[g−1] with starts[0] = 0; backward (reverse = 1)
// starts[g] = conj(P_{g+1})·starts[g+1] + end[g+1] with starts[last] = 0; P_g = exp(A·sum[g]),
// the decay of segment g (complex for complex A). end, sum: (batch, segments, D, W / ·).
template <bool CX>
__device__ void wm_combine(const float* A, const float* AImag, const float* sum, const float* end, float* starts,
                           long long batch, long long segments, long long D, int N, int reverse) {
    long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= batch * D * N) return;
    const int W = CX ? 2 * N : N;
    long long n = i % N, d = (i / N) % D, b = i / (N * D);
    float Ar = A[d * N + n], Ai = CX ? AImag[d * N + n] : 0.0f;
    float gr = 0.0f, gi = 0.0f;
    for (long long k = 0; k < segments; ++k) {
        long long g = reverse ? segments - 1 - k : k;
        long long base = ((b * segments + g) * D + d) * W;
        if (CX) { starts[base + 2 * n] = gr; starts[base + 2 * n + 1] = gi; } else starts[base + n] = gr;
        if (k == segments - 1) break;
        float S = sum[(b * segments + g) * D + d];
        float lr = CX ? end[base + 2 * n] : end[base + n], li = CX ? end[base + 2 * n + 1] : 0.0f;
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

extern "C" __global__ void wm_scan_combine_real(const float* A, const float* sum, const float* end, float* starts,
                                                long long batch, long long segments, long long D, int N, int reverse) {
    wm_combine<false>(A, nullptr, sum, end, starts, batch, segments, D, N, reverse);
}
extern "C" __global__ void wm_scan_combine_complex(const float* A, const float* AImag, const float* sum, const float* end,
                                                   float* starts, long long batch, long long segments, long long D, int N, int reverse) {
    wm_combine<true>(A, AImag, sum, end, starts, batch, segments, D, N, reverse);
}

// Step mode (length 1): P lanes per (batch, channel) (P a power of two ≤ 32), lane j updating
// states j, j + P, … in place and the lanes' y summed by shuffles. state: (batch, D, W).
// Indices in 32 bits (the host checks batch·D·P < 2³¹), P's by shift and mask, not 64-bit
// divisions, which nearly halves the kernel's code and shortens the step (docs/performance.md).
template <bool CX>
__device__ void wm_scan_step(ScanArgs a, float* state, float* out, long long sOut, int P) {
    const int N = a.N, W = CX ? 2 * N : N;
    const unsigned gid = blockIdx.x * blockDim.x + threadIdx.x, lg = __ffs(P) - 1, ch = gid >> lg;
    const int j = (int)(gid & (P - 1));
    const unsigned D32 = (unsigned)a.D;
    const bool valid = ch < (unsigned)(a.batch * a.D);
    const unsigned bq = valid ? ch / D32 : 0;
    const long long b = bq, d = valid ? ch - bq * D32 : 0;
    float sdt = 0.0f, uu = 0.0f, y = 0.0f;
    if (valid) {
        sdt = wm_softplus_s(a.delta[b * a.sdelta + d] + (a.deltaBias ? a.deltaBias[d] : 0.0f));
        uu = a.u[b * a.su + d];
        const float du = sdt * uu;
        const float* Br = a.B + b * a.sB;
        const float* Cr = a.C + b * a.sC;
        float* h = state + (b * a.D + d) * W;
        for (int n = j; n < N; n += P) {
            if (CX) {
                float2* h2 = reinterpret_cast<float2*>(h) + n;
                y += wm_step_state_cx(sdt, du, a.A[d * N + n], a.AImag[d * N + n], Br + 2 * n, Cr + 2 * n, *h2, h2);
            } else {
                y += wm_step_state_re(sdt, du, a.A[d * N + n], Br[n], Cr[n], h[n], h + n);
            }
        }
    }
    for (int o = P / 2; o > 0; o >>= 1) y += __shfl_xor_sync(0xffffffffu, y, o);
    if (valid && j == 0) {
        if (a.Dskip) y += a.Dskip[d] * uu;
        if (a.z) { float zz = a.z[b * a.sz + d]; y *= zz * wm_sigmoid_s(zz); }
        out[b * sOut + d] = y;
    }
}

extern "C" __global__ void wm_scan_step_real(ScanArgs a, float* state, float* out, long long sOut, int P) { wm_scan_step<false>(a, state, out, sOut, P); }
extern "C" __global__ void wm_scan_step_complex(ScanArgs a, float* state, float* out, long long sOut, int P) { wm_scan_step<true>(a, state, out, sOut, P); }
