// Deterministic reductions. Whole-tensor sums: a fixed grid writes one double partial per
// block, summed in block order on the host. Column sums: partials per (row chunk, column),
// then one thread per column adds the chunks in order.

__device__ __forceinline__ double wm_block_sum(double v, double* shared) {
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    if (lane == 0) shared[warp] = v;
    __syncthreads();
    double s = 0.0;
    if (threadIdx.x == 0) {
        for (int w = 0; w < (int)(blockDim.x + 31) / 32; ++w) s += shared[w];
    }
    return s;
}

// partials[block] = Σ x (squares = 0) or Σ x² (squares = 1) over the block's grid-stride share.
extern "C" __global__ void wm_sum_partials(const float* x, long long n, int squares, double* partials) {
    __shared__ double shared[32];
    double s = 0.0;
    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (long long)blockDim.x * gridDim.x) {
        double v = x[i];
        s += squares ? v * v : v;
    }
    s = wm_block_sum(s, shared);
    if (threadIdx.x == 0) partials[blockIdx.x] = s;
}

// partials[chunk, c] = Σ_{r in chunk} a[r, c] (· b[r, c] when b is non-null).
// Block (32, 8): threads along columns (coalesced rows); grid (⌈cols/32⌉, chunks).
extern "C" __global__ void wm_column_partials(const float* a, long long lda, const float* b, long long ldb,
                                              long long rows, long long cols, long long rowsPerChunk, float* partials) {
    __shared__ float s[8][33];
    long long c = (long long)blockIdx.x * 32 + threadIdx.x;
    long long r0 = (long long)blockIdx.y * rowsPerChunk;
    long long r1 = min(rows, r0 + rowsPerChunk);
    float acc = 0.0f;
    if (c < cols) {
        for (long long r = r0 + threadIdx.y; r < r1; r += 8) {
            float v = a[r * lda + c];
            acc += b ? v * b[r * ldb + c] : v;
        }
    }
    s[threadIdx.y][threadIdx.x] = acc;
    __syncthreads();
    if (threadIdx.y == 0 && c < cols) {
        float t = 0.0f;
        for (int j = 0; j < 8; ++j) t += s[j][threadIdx.x];
        partials[(long long)blockIdx.y * cols + c] = t;
    }
}

// out[c] (+)= Σ_chunk partials[chunk, c]
extern "C" __global__ void wm_column_finish(const float* partials, long long chunks, long long cols, float* out, int acc) {
    long long c = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (c >= cols) return;
    float t = 0.0f;
    for (long long k = 0; k < chunks; ++k) t += partials[k * cols + c];
    out[c] = acc ? out[c] + t : t;
}
