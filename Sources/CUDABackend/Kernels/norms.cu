// LayerNorm and RMSNorm over the last dimension (eps 1e-5), one warp per row. Weight and
// bias gradients go through per-row-chunk partials (reduce.cu's wm_column_finish adds them),
// so they are deterministic. The warp reductions and the row LayerNorm are warp.cuh's, compiled
// in front of this file.

#define ROW_PER_WARP \
    long long row = (long long)blockIdx.x * (blockDim.x / 32) + threadIdx.x / 32; \
    int lane = threadIdx.x % 32; \
    if (row >= rows) return;

// y = (x − μ)·rstd·w + b; mean and rstd per row.
extern "C" __global__ void wm_layernorm_forward(const float* x, const float* w, const float* b, float* y,
                                                float* mean, float* rstd, long long rows, int C, float eps) {
    ROW_PER_WARP
    const float2 m = wm_layernorm_row(x + row * C, w, b, y + row * C, C, eps, lane);
    if (lane == 0) { mean[row] = m.x; rstd[row] = m.y; }
}

// dx += rstd·(g − mean(g) − x̂·mean(g·x̂)), g = dy·w.
extern "C" __global__ void wm_layernorm_backward_dx(const float* dy, const float* x, const float* w,
                                                    const float* mean, const float* rstd, float* dx, long long rows, int C) {
    ROW_PER_WARP
    const float* xr = x + row * C;
    const float* gr = dy + row * C;
    float mu = mean[row], rs = rstd[row];
    float sg = 0.0f, sgx = 0.0f;
    for (int c = lane; c < C; c += 32) {
        float g = gr[c] * (w ? w[c] : 1.0f), h = (xr[c] - mu) * rs;
        sg += g; sgx += g * h;
    }
    sg = wm_warp_sum(sg) / C; sgx = wm_warp_sum(sgx) / C;
    float* dr = dx + row * C;
    for (int c = lane; c < C; c += 32) {
        float g = gr[c] * (w ? w[c] : 1.0f), h = (xr[c] - mu) * rs;
        dr[c] += rs * (g - sg - h * sgx);
    }
}

// partials for dWeight (Σ dy·x̂) and dBias (Σ dy) per row chunk. Block (32, 8); grid (⌈C/32⌉, chunks).
// rstdOnly = 1 is RMSNorm (x̂ = x·rstd, no mean).
extern "C" __global__ void wm_norm_param_partials(const float* dy, const float* x, const float* mean, const float* rstd,
                                                  long long rows, long long C, long long rowsPerChunk,
                                                  float* partialW, float* partialB) {
    __shared__ float sw[8][33], sb[8][33];
    long long c = (long long)blockIdx.x * 32 + threadIdx.x;
    long long r0 = (long long)blockIdx.y * rowsPerChunk, r1 = min(rows, r0 + rowsPerChunk);
    float aw = 0.0f, ab = 0.0f;
    if (c < C) {
        for (long long r = r0 + threadIdx.y; r < r1; r += 8) {
            float g = dy[r * C + c];
            float h = (x[r * C + c] - (mean ? mean[r] : 0.0f)) * rstd[r];
            aw += g * h; ab += g;
        }
    }
    sw[threadIdx.y][threadIdx.x] = aw; sb[threadIdx.y][threadIdx.x] = ab;
    __syncthreads();
    if (threadIdx.y == 0 && c < C) {
        float tw = 0.0f, tb = 0.0f;
        for (int j = 0; j < 8; ++j) { tw += sw[j][threadIdx.x]; tb += sb[j][threadIdx.x]; }
        if (partialW) partialW[(long long)blockIdx.y * C + c] = tw;
        if (partialB) partialB[(long long)blockIdx.y * C + c] = tb;
    }
}

// y = x·rstd·w, rstd = 1/√(mean(x²) + eps).
extern "C" __global__ void wm_rmsnorm_forward(const float* x, const float* w, float* y, float* rstd,
                                              long long rows, int C, float eps) {
    ROW_PER_WARP
    const float* xr = x + row * C;
    float s = 0.0f;
    for (int c = lane; c < C; c += 32) s += xr[c] * xr[c];
    float rs = rsqrtf(wm_warp_sum(s) / C + eps);
    float* yr = y + row * C;
    for (int c = lane; c < C; c += 32) yr[c] = xr[c] * rs * (w ? w[c] : 1.0f);
    if (lane == 0) rstd[row] = rs;
}

// dx += rstd·(g − x̂·mean(g·x̂)), g = dy·w, x̂ = x·rstd.
extern "C" __global__ void wm_rmsnorm_backward_dx(const float* dy, const float* x, const float* w, const float* rstd,
                                                  float* dx, long long rows, int C) {
    ROW_PER_WARP
    const float* xr = x + row * C;
    const float* gr = dy + row * C;
    float rs = rstd[row];
    float sgx = 0.0f;
    for (int c = lane; c < C; c += 32) sgx += gr[c] * (w ? w[c] : 1.0f) * xr[c] * rs;
    sgx = wm_warp_sum(sgx) / C;
    float* dr = dx + row * C;
    for (int c = lane; c < C; c += 32) {
        float g = gr[c] * (w ? w[c] : 1.0f);
        dr[c] += rs * (g - xr[c] * rs * sgx);
    }
}
