// Causal multi-head scaled-dot-product attention, FlashAttention's way (Dao et al. 2022; Dao
// 2023, FlashAttention-2), as Kernels/CausalAttention.swift does on the CPU: keys and values
// are visited in shared-memory tiles with an online softmax, so only the row log-sum-exp is
// kept for the backward (never the L×L scores), and the backward recomputes the scores.
//
//     s_ij = scale·q_i·k_j (j ≤ i),   p_ij = exp(s_ij − lse_i),   o_i = Σ_j p_ij·v_j
//     δ_i = do_i·o_i,   ds_ij = p_ij·(do_i·v_j − δ_i)
//     dq_i = scale·Σ_j ds_ij·k_j,   dk_j = scale·Σ_i ds_ij·q_i,   dv_j = Σ_i p_ij·do_i
//
// Token-major rows (batch·L, heads·D) with row strides (q, k, v are column slices of one
// in_proj output); head h in columns h·D..<(h+1)·D. A thread block of 128 threads owns a tile of
// 32 rows (queries in the forward and dq, keys in dk/dv), four threads per row: the thread of
// quad lane t handles the row's columns t, t + 4, … (≤ WM_ATT_MAXD / 4 registers) and its
// scores against tile entries t, t + 4, …. The four threads of a row are consecutive lanes of
// one warp, so row reductions are two shuffles and a row's probabilities in shared memory are
// shared after __syncwarp. Shared rows are padded to D + 1 floats (no bank conflicts across rows).

#define WM_ATT_ROWS 32
#define WM_ATT_THREADS 128
#define WM_ATT_MAXD 128
#define WM_ATT_PER (WM_ATT_MAXD / 4)
#define WM_ATT_SLOTS (WM_ATT_ROWS / 4)
#define WM_ATT_NEG_INF __int_as_float(0xff800000)

__device__ __forceinline__ float wm_att_quad_max(float v) {
    v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, 1));
    return fmaxf(v, __shfl_xor_sync(0xffffffffu, v, 2));
}
__device__ __forceinline__ float wm_att_quad_sum(float v) {
    v += __shfl_xor_sync(0xffffffffu, v, 1);
    return v + __shfl_xor_sync(0xffffffffu, v, 2);
}

// Rows r0..r0+32 of one head into shared `dst` (row stride D + 1), times `scale`; rows at or
// beyond `end` are zero.
__device__ __forceinline__ void wm_att_load(float* dst, const float* src, long long ld, long long first, int r0, int end, int col,
                                            int D, float scale) {
    for (int e = threadIdx.x; e < WM_ATT_ROWS * D; e += WM_ATT_THREADS) {
        const int r = e / D, d = e - r * D, row = r0 + r;
        dst[r * (D + 1) + d] = row < end ? scale * src[(first + row) * ld + col + d] : 0.0f;
    }
}

// Grid (⌈L/32⌉, heads, batch), 128 threads, shared 4·(3·32·(D + 1) + 32·33) bytes.
extern "C" __global__ void wm_attention_forward(const float* __restrict__ q, const float* __restrict__ k, const float* __restrict__ v,
                                                float* __restrict__ out, float* __restrict__ lse,
                                                long long ldq, long long ldk, long long ldv, long long ldo,
                                                int L, int heads, int D, float scale) {
    extern __shared__ float sm[];
    const int ld = D + 1;
    float* Qs = sm;
    float* Ks = Qs + WM_ATT_ROWS * ld;
    float* Vs = Ks + WM_ATT_ROWS * ld;
    float* Ps = Vs + WM_ATT_ROWS * ld;                   // 32 × 33
    const int h = blockIdx.y, col = h * D;
    const long long first = (long long)blockIdx.z * L;
    const int r = threadIdx.x >> 2, t = threadIdx.x & 3;
    const int i0 = blockIdx.x * WM_ATT_ROWS, i = i0 + r;
    const int end = min(L, i0 + WM_ATT_ROWS);            // keys beyond the tile's last query are masked for all its rows
    wm_att_load(Qs, q, ldq, first, i0, L, col, D, scale);
    float acc[WM_ATT_PER];
#pragma unroll
    for (int u = 0; u < WM_ATT_PER; ++u) acc[u] = 0.0f;
    float m = WM_ATT_NEG_INF, l = 0.0f;
    for (int j0 = 0; j0 < end; j0 += WM_ATT_ROWS) {
        __syncthreads();                                  // the previous tile is consumed (and Qs is loaded)
        wm_att_load(Ks, k, ldk, first, j0, end, col, D, 1.0f);
        wm_att_load(Vs, v, ldv, first, j0, end, col, D, 1.0f);
        __syncthreads();
        float s[WM_ATT_SLOTS];
        float tmax = WM_ATT_NEG_INF;
#pragma unroll
        for (int u = 0; u < WM_ATT_SLOTS; ++u) {
            const int c = t + 4 * u, j = j0 + c;
            float dot = 0.0f;
            for (int d = 0; d < D; ++d) dot = fmaf(Qs[r * ld + d], Ks[c * ld + d], dot);
            s[u] = (j <= i && i < L) ? dot : WM_ATT_NEG_INF;
            tmax = fmaxf(tmax, s[u]);
        }
        tmax = wm_att_quad_max(tmax);
        const float mNew = fmaxf(m, tmax);
        // A row with no visible key yet (or past L) keeps m = −inf: exponents are taken against 0.
        const float base = mNew == WM_ATT_NEG_INF ? 0.0f : mNew;
        const float alpha = __expf(m - base);             // 0 while m = −inf
        float psum = 0.0f;
#pragma unroll
        for (int u = 0; u < WM_ATT_SLOTS; ++u) {
            const float p = s[u] == WM_ATT_NEG_INF ? 0.0f : __expf(s[u] - base);
            psum += p;
            Ps[r * (WM_ATT_ROWS + 1) + t + 4 * u] = p;
        }
        l = l * alpha + wm_att_quad_sum(psum);
        m = mNew;
        __syncwarp();
#pragma unroll
        for (int u = 0; u < WM_ATT_PER; ++u) {
            const int d = t + 4 * u;
            if (d < D) {
                float a = acc[u] * alpha;
                for (int c = 0; c < WM_ATT_ROWS; ++c) a = fmaf(Ps[r * (WM_ATT_ROWS + 1) + c], Vs[c * ld + d], a);
                acc[u] = a;
            }
        }
    }
    if (i < L) {
        const float inv = 1.0f / l;
        float* o = out + (first + i) * ldo + col;
#pragma unroll
        for (int u = 0; u < WM_ATT_PER; ++u) {
            const int d = t + 4 * u;
            if (d < D) o[d] = acc[u] * inv;
        }
        if (t == 0) lse[((long long)blockIdx.z * heads + h) * L + i] = m + logf(l);
    }
}

// δ (batch, heads, L) = Σ_d dOut·out per row and head; one thread each, grid-stride.
extern "C" __global__ void wm_attention_delta(const float* __restrict__ dOut, const float* __restrict__ out, float* __restrict__ delta,
                                              long long ldd, long long ldo, int batch, int L, int heads, int D) {
    const long long n = (long long)batch * heads * L;
    for (long long e = (long long)blockIdx.x * blockDim.x + threadIdx.x; e < n; e += (long long)gridDim.x * blockDim.x) {
        const int i = (int)(e % L);
        const long long bh = e / L;
        const int h = (int)(bh % heads);
        const long long row = (bh / heads) * L + i;
        const float* g = dOut + row * ldd + h * D;
        const float* o = out + row * ldo + h * D;
        float s = 0.0f;
        for (int d = 0; d < D; ++d) s = fmaf(g[d], o[d], s);
        delta[e] = s;
    }
}

// dq: grid (⌈L/32⌉, heads, batch), 128 threads; a block owns 32 query rows and walks the key
// tiles up to its last row. Shared 4·(4·32·(D + 1) + 32·33) bytes.
extern "C" __global__ void wm_attention_backward_dq(const float* __restrict__ dOut, const float* __restrict__ q, const float* __restrict__ k,
                                                    const float* __restrict__ v, const float* __restrict__ lse,
                                                    const float* __restrict__ delta, float* __restrict__ dq,
                                                    long long ldd, long long ldq, long long ldk, long long ldv, long long lddq,
                                                    int L, int heads, int D, float scale) {
    extern __shared__ float sm[];
    const int ld = D + 1;
    float* Qs = sm;
    float* Gs = Qs + WM_ATT_ROWS * ld;                   // dOut rows
    float* Ks = Gs + WM_ATT_ROWS * ld;
    float* Vs = Ks + WM_ATT_ROWS * ld;
    float* Ss = Vs + WM_ATT_ROWS * ld;                   // ds, 32 × 33
    const int h = blockIdx.y, col = h * D;
    const long long first = (long long)blockIdx.z * L, stats = ((long long)blockIdx.z * heads + h) * L;
    const int r = threadIdx.x >> 2, t = threadIdx.x & 3;
    const int i0 = blockIdx.x * WM_ATT_ROWS, i = i0 + r;
    const int end = min(L, i0 + WM_ATT_ROWS);
    wm_att_load(Qs, q, ldq, first, i0, L, col, D, 1.0f);
    wm_att_load(Gs, dOut, ldd, first, i0, L, col, D, 1.0f);
    const float li = i < L ? lse[stats + i] : 0.0f, di = i < L ? delta[stats + i] : 0.0f;
    float acc[WM_ATT_PER];
#pragma unroll
    for (int u = 0; u < WM_ATT_PER; ++u) acc[u] = 0.0f;
    for (int j0 = 0; j0 < end; j0 += WM_ATT_ROWS) {
        __syncthreads();
        wm_att_load(Ks, k, ldk, first, j0, end, col, D, 1.0f);
        wm_att_load(Vs, v, ldv, first, j0, end, col, D, 1.0f);
        __syncthreads();
#pragma unroll
        for (int u = 0; u < WM_ATT_SLOTS; ++u) {
            const int c = t + 4 * u, j = j0 + c;
            float ds = 0.0f;
            if (j <= i && i < L) {
                float s = 0.0f, g = 0.0f;
                for (int d = 0; d < D; ++d) {
                    s = fmaf(Qs[r * ld + d], Ks[c * ld + d], s);
                    g = fmaf(Gs[r * ld + d], Vs[c * ld + d], g);
                }
                ds = __expf(scale * s - li) * (g - di);
            }
            Ss[r * (WM_ATT_ROWS + 1) + c] = ds;
        }
        __syncwarp();
#pragma unroll
        for (int u = 0; u < WM_ATT_PER; ++u) {
            const int d = t + 4 * u;
            if (d < D) {
                float a = acc[u];
                for (int c = 0; c < WM_ATT_ROWS; ++c) a = fmaf(Ss[r * (WM_ATT_ROWS + 1) + c], Ks[c * ld + d], a);
                acc[u] = a;
            }
        }
    }
    if (i < L) {
        float* o = dq + (first + i) * lddq + col;
#pragma unroll
        for (int u = 0; u < WM_ATT_PER; ++u) {
            const int d = t + 4 * u;
            if (d < D) o[d] = scale * acc[u];
        }
    }
}

// dk, dv: grid (⌈L/32⌉, heads, batch), 128 threads; a block owns 32 key rows and walks the
// query tiles from its first row to L. Shared 4·(4·32·(D + 1) + 2·32·33 + 64) bytes.
extern "C" __global__ void wm_attention_backward_dkv(const float* __restrict__ dOut, const float* __restrict__ q, const float* __restrict__ k,
                                                     const float* __restrict__ v, const float* __restrict__ lse,
                                                     const float* __restrict__ delta, float* __restrict__ dk, float* __restrict__ dv,
                                                     long long ldd, long long ldq, long long ldk, long long ldv, long long lddk, long long lddv,
                                                     int L, int heads, int D, float scale) {
    extern __shared__ float sm[];
    const int ld = D + 1;
    float* Ks = sm;
    float* Vs = Ks + WM_ATT_ROWS * ld;
    float* Qs = Vs + WM_ATT_ROWS * ld;
    float* Gs = Qs + WM_ATT_ROWS * ld;                   // dOut rows
    float* Ps = Gs + WM_ATT_ROWS * ld;                   // p, key-major 32 × 33
    float* Ss = Ps + WM_ATT_ROWS * (WM_ATT_ROWS + 1);    // ds, key-major 32 × 33
    float* Ls = Ss + WM_ATT_ROWS * (WM_ATT_ROWS + 1);    // the query tile's lse
    float* Ds = Ls + WM_ATT_ROWS;                        // and δ
    const int h = blockIdx.y, col = h * D;
    const long long first = (long long)blockIdx.z * L, stats = ((long long)blockIdx.z * heads + h) * L;
    const int c = threadIdx.x >> 2, t = threadIdx.x & 3;  // this thread's key row in the tile, quad lane
    const int j0 = blockIdx.x * WM_ATT_ROWS, j = j0 + c;
    wm_att_load(Ks, k, ldk, first, j0, L, col, D, 1.0f);
    wm_att_load(Vs, v, ldv, first, j0, L, col, D, 1.0f);
    float accK[WM_ATT_PER], accV[WM_ATT_PER];
#pragma unroll
    for (int u = 0; u < WM_ATT_PER; ++u) { accK[u] = 0.0f; accV[u] = 0.0f; }
    // Query tiles are aligned with key tiles: the first that sees key j0 starts at j0.
    for (int i0 = j0; i0 < L; i0 += WM_ATT_ROWS) {
        __syncthreads();
        wm_att_load(Qs, q, ldq, first, i0, L, col, D, 1.0f);
        wm_att_load(Gs, dOut, ldd, first, i0, L, col, D, 1.0f);
        if (threadIdx.x < WM_ATT_ROWS) {
            const int i = i0 + threadIdx.x;
            Ls[threadIdx.x] = i < L ? lse[stats + i] : 0.0f;
            Ds[threadIdx.x] = i < L ? delta[stats + i] : 0.0f;
        }
        __syncthreads();
#pragma unroll
        for (int u = 0; u < WM_ATT_SLOTS; ++u) {
            const int rq = t + 4 * u, i = i0 + rq;
            float p = 0.0f, ds = 0.0f;
            if (j < L && i < L && j <= i) {
                float s = 0.0f, g = 0.0f;
                for (int d = 0; d < D; ++d) {
                    s = fmaf(Qs[rq * ld + d], Ks[c * ld + d], s);
                    g = fmaf(Gs[rq * ld + d], Vs[c * ld + d], g);
                }
                p = __expf(scale * s - Ls[rq]);
                ds = p * (g - Ds[rq]);
            }
            Ps[c * (WM_ATT_ROWS + 1) + rq] = p;
            Ss[c * (WM_ATT_ROWS + 1) + rq] = ds;
        }
        __syncwarp();
#pragma unroll
        for (int u = 0; u < WM_ATT_PER; ++u) {
            const int d = t + 4 * u;
            if (d < D) {
                float ak = accK[u], av = accV[u];
                for (int rq = 0; rq < WM_ATT_ROWS; ++rq) {
                    ak = fmaf(Ss[c * (WM_ATT_ROWS + 1) + rq], Qs[rq * ld + d], ak);
                    av = fmaf(Ps[c * (WM_ATT_ROWS + 1) + rq], Gs[rq * ld + d], av);
                }
                accK[u] = ak;
                accV[u] = av;
            }
        }
    }
    if (j < L) {
        float* ok = dk + (first + j) * lddk + col;
        float* ov = dv + (first + j) * lddv + col;
#pragma unroll
        for (int u = 0; u < WM_ATT_PER; ++u) {
            const int d = t + 4 * u;
            if (d < D) { ok[d] = scale * accK[u]; ov[d] = accV[u]; }
        }
    }
}

// One generation step over the KV cache: grid (heads, batch), 128 threads (D ≤ 128: thread d
// owns output channel d). Appends k, v at row *position of the stream's caches (batch,
// maxLength, heads·D), then attends over rows 0…position in tiles of 128 keys (one score per
// thread, online softmax). The position is read on the device, so a captured graph replays
// correctly; wm_attention_advance increments it afterwards. Past the cache's end the output is
// NaN (the host checks first; this keeps a replayed graph from writing out of bounds).
extern "C" __global__ void wm_attention_step(const float* __restrict__ q, const float* __restrict__ k, const float* __restrict__ v,
                                             float* keyCache, float* valueCache, const int* __restrict__ position,
                                             float* __restrict__ out, long long ldq, long long ldk, long long ldv, long long ldo,
                                             int maxLength, int heads, int D, float scale) {
    __shared__ float qs[WM_ATT_MAXD];
    __shared__ float ps[WM_ATT_THREADS];
    __shared__ float red[2][WM_ATT_THREADS / 32];
    const int h = blockIdx.x, b = blockIdx.y, tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
    const int E = heads * D, pos = *position;
    float* o = out + (long long)b * ldo + h * D;
    if (pos < 0 || pos >= maxLength) {
        if (tid < D) o[tid] = __int_as_float(0x7fc00000);
        return;
    }
    float* kc = keyCache + (long long)b * maxLength * E + h * D;
    float* vc = valueCache + (long long)b * maxLength * E + h * D;
    if (tid < D) {
        kc[(long long)pos * E + tid] = k[(long long)b * ldk + h * D + tid];
        vc[(long long)pos * E + tid] = v[(long long)b * ldv + h * D + tid];
        qs[tid] = scale * q[(long long)b * ldq + h * D + tid];
    }
    __syncthreads();                                      // the appended row and qs are visible to the block
    float m = WM_ATT_NEG_INF, l = 0.0f, acc = 0.0f;
    for (int j0 = 0; j0 <= pos; j0 += WM_ATT_THREADS) {
        const int j = j0 + tid;
        float s = WM_ATT_NEG_INF;
        if (j <= pos) {
            const float* kr = kc + (long long)j * E;
            float dot = 0.0f;
            for (int d = 0; d < D; ++d) dot = fmaf(qs[d], kr[d], dot);
            s = dot;
        }
        float w = s;
        for (int off = 16; off > 0; off >>= 1) w = fmaxf(w, __shfl_xor_sync(0xffffffffu, w, off));
        if (lane == 0) red[0][warp] = w;
        __syncthreads();
        float tmax = red[0][0];
        for (int x = 1; x < WM_ATT_THREADS / 32; ++x) tmax = fmaxf(tmax, red[0][x]);
        const float mNew = fmaxf(m, tmax);                // finite: key j0 ≤ pos is in every tile
        const float alpha = __expf(m - mNew);             // 0 on the first tile (m = −inf)
        const float p = j <= pos ? __expf(s - mNew) : 0.0f;
        ps[tid] = p;
        float z = p;
        for (int off = 16; off > 0; off >>= 1) z += __shfl_xor_sync(0xffffffffu, z, off);
        if (lane == 0) red[1][warp] = z;
        __syncthreads();                                  // ps and both partials are complete
        float psum = 0.0f;
        for (int x = 0; x < WM_ATT_THREADS / 32; ++x) psum += red[1][x];
        l = l * alpha + psum;
        m = mNew;
        if (tid < D) {
            const int n = min(WM_ATT_THREADS, pos + 1 - j0);
            float a = acc * alpha;
            for (int c = 0; c < n; ++c) a = fmaf(ps[c], vc[(long long)(j0 + c) * E + tid], a);
            acc = a;
        }
        __syncthreads();                                  // ps and red are read before the next tile writes them
    }
    if (tid < D) o[tid] = acc / l;
}

// position += 1 (after every head's step has read it).
extern "C" __global__ void wm_attention_advance(int* position) {
    if (threadIdx.x == 0 && blockIdx.x == 0) *position += 1;
}
