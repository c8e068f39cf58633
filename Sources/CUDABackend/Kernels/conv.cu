// Causal depthwise conv1d over time, token-major (batch, L, C) with row strides (x may be
// a column slice), weight (C, K), optional bias and fused SiLU:
//   z[b,t,c] = bias[c] + Σ_k w[c,k]·x[b, t−(K−1)+k, c]   (x = 0 before t = 0);  y = z or silu(z).
// Threads run along channels, so every row access is coalesced.

__device__ __forceinline__ float wm_conv_z(const float* x, long long ldx, const float* w, const float* bias,
                                           long long b, long long t, long long L, long long c, int K) {
    float z = bias ? bias[c] : 0.0f;
    const float* wc = w + c * K;
    for (int k = 0; k < K; ++k) {
        long long s = t - (K - 1) + k;
        if (s >= 0) z += wc[k] * x[(b * L + s) * ldx + c];
    }
    return z;
}

extern "C" __global__ void wm_conv_forward(const float* x, long long ldx, const float* w, const float* bias,
                                           float* y, long long ldy, long long batch, long long L, long long C,
                                           int K, int silu) {
    long long n = batch * L * C;
    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (long long)blockDim.x * gridDim.x) {
        long long c = i % C, bt = i / C, t = bt % L, b = bt / L;
        float z = wm_conv_z(x, ldx, w, bias, b, t, L, c, K);
        if (silu) z = z / (1.0f + expf(-z));
        y[bt * ldy + c] = z;
    }
}

// dz (contiguous (batch·L, C)) = dy·silu'(z), or dy without SiLU.
extern "C" __global__ void wm_conv_backward_dz(const float* dy, long long ldy, const float* x, long long ldx,
                                               const float* w, const float* bias, float* dz,
                                               long long batch, long long L, long long C, int K, int silu) {
    long long n = batch * L * C;
    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (long long)blockDim.x * gridDim.x) {
        long long c = i % C, bt = i / C, t = bt % L, b = bt / L;
        float g = dy[bt * ldy + c];
        if (silu) {
            float z = wm_conv_z(x, ldx, w, bias, b, t, L, c, K);
            float s = 1.0f / (1.0f + expf(-z));
            g *= s * (1.0f + z * (1.0f - s));
        }
        dz[i] = g;
    }
}

// dx[b,s,c] += Σ_k w[c,k]·dz[b, s+(K−1)−k, c]
extern "C" __global__ void wm_conv_backward_dx(const float* dz, const float* w, float* dx, long long lddx,
                                               long long batch, long long L, long long C, int K) {
    long long n = batch * L * C;
    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (long long)blockDim.x * gridDim.x) {
        long long c = i % C, bs = i / C, s = bs % L, b = bs / L;
        const float* wc = w + c * K;
        float g = 0.0f;
        for (int k = 0; k < K; ++k) {
            long long t = s + (K - 1) - k;
            if (t < L) g += wc[k] * dz[(b * L + t) * C + c];
        }
        dx[bs * lddx + c] += g;
    }
}

// partials[chunk, c, k] = Σ_{rows in chunk} dz[b,t,c]·x[b, t−(K−1)+k, c] for k < K, and at k = K
// Σ dz (the bias gradient). Rows are (b·L + t). Block (32, 8); grid (⌈C/32⌉, chunks); K ≤ 16.
extern "C" __global__ void wm_conv_param_partials(const float* dz, const float* x, long long ldx,
                                                  long long batch, long long L, long long C, int K,
                                                  long long rowsPerChunk, float* partials) {
    __shared__ float s[8][33];
    long long c = (long long)blockIdx.x * 32 + threadIdx.x;
    long long rows = batch * L;
    long long r0 = (long long)blockIdx.y * rowsPerChunk, r1 = min(rows, r0 + rowsPerChunk);
    float acc[17];
    for (int k = 0; k <= 16; ++k) acc[k] = 0.0f;
    if (c < C) {
        for (long long r = r0 + threadIdx.y; r < r1; r += 8) {
            long long t = r % L;
            float g = dz[r * C + c];
            for (int k = 0; k < K; ++k) {
                long long sft = t - (K - 1) + k;
                if (sft >= 0) acc[k] += g * x[(r - (K - 1) + k) * ldx + c];
            }
            acc[K] += g;
        }
    }
    for (int k = 0; k <= K; ++k) {
        s[threadIdx.y][threadIdx.x] = acc[k];
        __syncthreads();
        if (threadIdx.y == 0 && c < C) {
            float t = 0.0f;
            for (int j = 0; j < 8; ++j) t += s[j][threadIdx.x];
            partials[((long long)blockIdx.y * C + c) * (K + 1) + k] = t;
        }
        __syncthreads();
    }
}

// dW[c,k] += Σ_chunk partials[chunk,c,k]; dBias[c] += Σ_chunk partials[chunk,c,K].
extern "C" __global__ void wm_conv_param_finish(const float* partials, long long chunks, long long C, int K,
                                                float* dW, float* dBias) {
    long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= C * (K + 1)) return;
    long long c = i / (K + 1); int k = (int)(i % (K + 1));
    float t = 0.0f;
    for (long long j = 0; j < chunks; ++j) t += partials[(j * C + c) * (K + 1) + k];
    if (k < K) { if (dW) dW[c * K + k] += t; }
    else if (dBias) dBias[c] += t;
}

// One generation step: state (batch, C, K−1) holds the last inputs; x (batch, C) with row
// stride ldx; y overwritten (row stride ldy).
extern "C" __global__ void wm_conv_step(const float* x, long long ldx, float* state, const float* w, const float* bias,
                                        float* y, long long ldy, long long batch, long long C, int K, int silu) {
    long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= batch * C) return;
    long long b = i / C, c = i % C;
    int S = K - 1;
    float* st = state + (b * C + c) * S;
    const float* wc = w + c * K;
    float xv = x[b * ldx + c];
    float a = bias ? bias[c] : 0.0f;
    for (int k = 0; k < S; ++k) a += wc[k] * st[k];
    a += wc[S] * xv;
    if (S > 0) {
        for (int k = 0; k < S - 1; ++k) st[k] = st[k + 1];
        st[S - 1] = xv;
    }
    if (silu) a = a / (1.0f + expf(-a));
    y[b * ldy + c] = a;
}
