// The S4D baseline on the GPU: its convolution kernel K from the parameters (and the
// gradient), in Double as Layers/S4DKernel.swift does on the CPU (the phase dt·A_imag·l
// reaches 1e5 rad at audio lengths), and the layout / pointwise steps around cuFFT for the
// causal long convolution (the FFTs themselves are cuFFT calls; see CUDABackend+S4D.swift).
//
// Parameters (s4d.py): log_dt (H), C (H, M, 2), log_A_real (H, M), A_imag (H, M); K (H, L).
// Per mode: dt = exp(log_dt), A = −exp(log_A_real) + i·A_imag, w = exp(dt·A),
// B̄ = (w − 1)/A, C' = C·B̄, K[l] = 2·Re Σ_n C'_n·w_n^l. Every w^l is exp(l·dt·A) evaluated
// directly (exact to Double rounding; the CPU's anchored recurrence agrees to 1e-13).

struct WmZ { double r, i; };
__device__ __forceinline__ WmZ wz_mul(WmZ a, WmZ b) { return {a.r * b.r - a.i * b.i, a.r * b.i + a.i * b.r}; }
__device__ __forceinline__ WmZ wz_div(WmZ a, WmZ b) {
    double d = b.r * b.r + b.i * b.i;
    return {(a.r * b.r + a.i * b.i) / d, (a.i * b.r - a.r * b.i) / d};
}
__device__ __forceinline__ WmZ wz_exp(WmZ z) { double m = exp(z.r), s, c; sincos(z.i, &s, &c); return {m * c, m * s}; }

// One mode's discretisation (S4DMode on the CPU): w − 1 without cancellation for small dt·A.
struct WmMode { double dt; WmZ a, dtA, w, bBar, c; };
__device__ __forceinline__ WmMode wz_mode(const float* logDt, const float* C, const float* logAReal, const float* AImag, int h, int n, int M) {
    WmMode m;
    int i = h * M + n;
    m.dt = exp((double)logDt[h]);
    m.a = {-exp((double)logAReal[i]), (double)AImag[i]};
    m.dtA = {m.dt * m.a.r, m.dt * m.a.i};
    m.w = wz_exp(m.dtA);
    double half = sin(m.dtA.i / 2), s, c;
    sincos(m.dtA.i, &s, &c);
    WmZ wm1 = {expm1(m.dtA.r) * c - 2 * half * half, exp(m.dtA.r) * s};
    m.bBar = wz_div(wm1, m.a);
    m.c = {(double)C[2 * i], (double)C[2 * i + 1]};
    return m;
}

// Per-mode (dt·A, C') for the kernel sums: modes (H, M, 4) doubles.
extern "C" __global__ void wm_s4d_modes(const float* logDt, const float* C, const float* logAReal, const float* AImag,
                                        double* modes, int H, int M) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= H * M) return;
    WmMode m = wz_mode(logDt, C, logAReal, AImag, i / M, i % M, M);
    WmZ cp = wz_mul(m.c, m.bBar);
    modes[4 * i] = m.dtA.r; modes[4 * i + 1] = m.dtA.i; modes[4 * i + 2] = cp.r; modes[4 * i + 3] = cp.i;
}

// K[h, l]: one thread per (h, l); grid (⌈L/256⌉, H).
extern "C" __global__ void wm_s4d_kernel(const double* modes, float* K, int M, long long L) {
    long long l = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    int h = blockIdx.y;
    extern __shared__ double sm[];                 // this channel's modes (M × 4)
    for (int k = threadIdx.x; k < 4 * M; k += blockDim.x) sm[k] = modes[(long long)h * M * 4 + k];
    __syncthreads();
    if (l >= L) return;
    double sum = 0.0, dl = (double)l;
    for (int n = 0; n < M; ++n) {
        WmZ p = wz_exp({dl * sm[4 * n], dl * sm[4 * n + 1]});
        sum += sm[4 * n + 2] * p.r - sm[4 * n + 3] * p.i;
    }
    K[(long long)h * L + l] = (float)(2.0 * sum);
}

// The Vandermonde sums of the backward, S_n = Σ_l dK[l]·w^l and P_n = Σ_l dK[l]·l·w^l, into
// sums (H, M, 4) doubles (zeroed first): grid (⌈L/256⌉, H), block 256; each block sums its 256
// steps per mode in shared memory and adds them with one atomic per value.
extern "C" __global__ void wm_s4d_sums(const double* modes, const float* dK, double* sums, int M, long long L) {
    long long l = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    int h = blockIdx.y;
    extern __shared__ double sm[];                 // modes (M × 4), then a 4 × 256 reduction buffer
    double* red = sm + 4 * M;
    for (int k = threadIdx.x; k < 4 * M; k += blockDim.x) sm[k] = modes[(long long)h * M * 4 + k];
    __syncthreads();
    double d = l < L ? (double)dK[(long long)h * L + l] : 0.0, dl = (double)l;
    for (int n = 0; n < M; ++n) {
        WmZ p = l < L ? wz_exp({dl * sm[4 * n], dl * sm[4 * n + 1]}) : WmZ{0.0, 0.0};
        double v[4] = {d * p.r, d * p.i, d * dl * p.r, d * dl * p.i};
        for (int k = 0; k < 4; ++k) red[k * blockDim.x + threadIdx.x] = v[k];
        __syncthreads();
        for (int o = blockDim.x / 2; o > 0; o >>= 1) {
            if (threadIdx.x < o)
                for (int k = 0; k < 4; ++k) red[k * blockDim.x + threadIdx.x] += red[k * blockDim.x + threadIdx.x + o];
            __syncthreads();
        }
        if (threadIdx.x < 4) atomicAdd(sums + ((long long)h * M + n) * 4 + threadIdx.x, red[threadIdx.x * blockDim.x]);
        __syncthreads();
    }
}

// Parameter gradients from the sums (the formulas of S4DKernel.backward): one block per
// channel, a thread per mode; d log_dt sums over the modes in shared memory.
extern "C" __global__ void wm_s4d_grads(const float* logDt, const float* C, const float* logAReal, const float* AImag,
                                        const double* sums, int M, float* dLogDt, float* dC, float* dLogAReal, float* dAImag) {
    int h = blockIdx.x;
    extern __shared__ double part[];               // blockDim.x partial d log_dt
    double acc = 0.0;
    for (int n = threadIdx.x; n < M; n += blockDim.x) {
        WmMode m = wz_mode(logDt, C, logAReal, AImag, h, n, M);
        int i = h * M + n;
        WmZ S = {sums[4 * i], sums[4 * i + 1]}, P = {sums[4 * i + 2], sums[4 * i + 3]};
        WmZ cp = wz_mul(m.c, m.bBar);
        WmZ t1 = wz_mul(wz_mul(m.c, m.w), S), t2 = wz_mul(wz_mul(cp, m.a), P);
        WmZ gDt = {t1.r + t2.r, t1.i + t2.i};
        WmZ cs = wz_mul(cp, S);
        WmZ gA = wz_div({m.dt * gDt.r - cs.r, m.dt * gDt.i - cs.i}, m.a);
        WmZ gC = wz_mul(m.bBar, S);
        acc += 2.0 * m.dt * gDt.r;
        dLogAReal[i] = (float)(2.0 * gA.r * m.a.r);
        dAImag[i] = (float)(-2.0 * gA.i);
        dC[2 * i] = (float)(2.0 * gC.r);
        dC[2 * i + 1] = (float)(-2.0 * gC.i);
    }
    part[threadIdx.x] = acc;
    __syncthreads();
    if (threadIdx.x == 0) {
        double s = 0.0;
        for (int k = 0; k < blockDim.x; ++k) s += part[k];
        dLogDt[h] = (float)s;
    }
}

// x (batch·L, H) token-major → X (batch, H, 2L) zero-padded rows (the FFT input); one thread
// per (b, h, t < 2L).
extern "C" __global__ void wm_fft_pad(const float* x, float* X, long long batch, long long L, long long H) {
    long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    long long n2 = 2 * L;
    if (i >= batch * H * n2) return;
    long long t = i % n2, h = (i / n2) % H, b = i / (n2 * H);
    X[i] = t < L ? x[(b * L + t) * H + h] : 0.0f;
}

// K (H, L) → (H, 2L) zero-padded.
extern "C" __global__ void wm_fft_pad_rows(const float* K, float* X, long long H, long long L) {
    long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= H * 2 * L) return;
    long long t = i % (2 * L), h = i / (2 * L);
    X[i] = t < L ? K[h * L + t] : 0.0f;
}

// Y (batch, H, 2L) → y (batch·L, H), the first L of each row times `scale`.
extern "C" __global__ void wm_fft_unpad(const float* Y, float* y, long long batch, long long L, long long H, float scale) {
    long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= batch * L * H) return;
    long long h = i % H, t = (i / H) % L, b = i / (H * L);
    y[i] = scale * Y[(b * H + h) * 2 * L + t];
}

// (H, 2L) rows → (H, L): the first L of each row times `scale`.
extern "C" __global__ void wm_fft_unpad_rows(const float* Y, float* K, long long H, long long L, float scale) {
    long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= H * L) return;
    K[i] = scale * Y[(i / L) * 2 * L + i % L];
}

// Spectra (rows of F = L + 1 complex): U[b, h] ← U[b, h]·K[h] (conj: ·conj(K[h])).
extern "C" __global__ void wm_fft_mul(float2* U, const float2* K, long long batch, long long H, long long F, int conj) {
    long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= batch * H * F) return;
    long long f = i % F, h = (i / F) % H;
    float2 u = U[i], k = K[h * F + f];
    if (conj) k.y = -k.y;
    U[i] = make_float2(u.x * k.x - u.y * k.y, u.x * k.y + u.y * k.x);
}

// G[h] = Σ_b D[b, h]·conj(U[b, h]) (the kernel gradient's spectrum).
extern "C" __global__ void wm_fft_cross(const float2* D, const float2* U, float2* G, long long batch, long long H, long long F) {
    long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= H * F) return;
    float sr = 0.0f, si = 0.0f;
    for (long long b = 0; b < batch; ++b) {
        float2 d = D[b * H * F + i], u = U[b * H * F + i];
        sr += d.x * u.x + d.y * u.y;
        si += d.y * u.x - d.x * u.y;
    }
    G[i] = make_float2(sr, si);
}
