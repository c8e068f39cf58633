// Counter-based random numbers, identical streams to the CPU's Kernels/Random.swift:
// Philox4x32-10, word i of the stream keyed by a 64-bit seed is word (i mod 4) of
// Philox(counter = i / 4 as a 128-bit integer, key = seed). Uniforms use the top 24 bits;
// normals are Box–Muller on word pairs (2m, 2m+1) in double; dropout keeps u ≥ p.

__device__ __forceinline__ unsigned int wm_philox_word(unsigned long long seed, unsigned long long index) {
    unsigned long long c = index / 4;
    unsigned int x0 = (unsigned int)c, x1 = (unsigned int)(c >> 32), x2 = 0u, x3 = 0u;
    unsigned int k0 = (unsigned int)seed, k1 = (unsigned int)(seed >> 32);
    for (int round = 0; round < 10; ++round) {
        if (round > 0) { k0 += 0x9E3779B9u; k1 += 0xBB67AE85u; }
        unsigned long long p0 = (unsigned long long)x0 * 0xD2511F53ull;
        unsigned long long p1 = (unsigned long long)x2 * 0xCD9E8D57ull;
        unsigned int h0 = (unsigned int)(p0 >> 32), l0 = (unsigned int)p0;
        unsigned int h1 = (unsigned int)(p1 >> 32), l1 = (unsigned int)p1;
        x0 = h1 ^ x1 ^ k0; x1 = l1; x2 = h0 ^ x3 ^ k1; x3 = l0;
    }
    switch (index % 4) { case 0: return x0; case 1: return x1; case 2: return x2; default: return x3; }
}

__device__ __forceinline__ float wm_unit(unsigned int w) { return (float)(w >> 8) * 5.9604644775390625e-08f; }

extern "C" __global__ void wm_fill_uniform(float* out, long long n, float low, float high, unsigned long long seed) {
    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (long long)blockDim.x * gridDim.x) {
        out[i] = low + (high - low) * wm_unit(wm_philox_word(seed, (unsigned long long)i));
    }
}

extern "C" __global__ void wm_fill_normal(float* out, long long n, float mean, float stddev, unsigned long long seed) {
    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (long long)blockDim.x * gridDim.x) {
        unsigned long long g = (unsigned long long)i, e = g & ~1ull;
        double u1 = ((double)(wm_philox_word(seed, e) >> 8) + 1.0) * 5.9604644775390625e-08;
        double u2 = (double)(wm_philox_word(seed, e + 1) >> 8) * 5.9604644775390625e-08;
        double rho = sqrt(-2.0 * log(u1)), th = 6.283185307179586 * u2;
        double z = (g & 1ull) == 0 ? rho * cos(th) : rho * sin(th);
        out[i] = mean + stddev * (float)z;
    }
}

// y (+)= keep_i ? x/(1 − p) : 0, keep_i = u(word offset + i) ≥ p (the backward is the same map
// on dy with the same seed and offset). A data-parallel rank passes its first sample's element
// index as `offset`, so every sample's mask is a function of (seed, global element index) only,
// as in Kernels/Dropout.swift.
extern "C" __global__ void wm_dropout(const float* x, float* y, long long n, float p, unsigned long long seed,
                                      unsigned long long offset, int acc) {
    float scale = p < 1.0f ? 1.0f / (1.0f - p) : 0.0f;
    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (long long)blockDim.x * gridDim.x) {
        float v = wm_unit(wm_philox_word(seed, offset + (unsigned long long)i)) >= p ? x[i] * scale : 0.0f;
        y[i] = acc ? y[i] + v : v;
    }
}
