// Layout kernels: fill and copy of (possibly strided) 2-D views, batched transpose.

extern "C" __global__ void wm_fill2d(float* p, long long rows, long long cols, long long ld, float value) {
    long long n = rows * cols;
    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (long long)blockDim.x * gridDim.x) {
        p[(i / cols) * ld + i % cols] = value;
    }
}

// dst[r, c] (+)= src[r, c] with row strides lds / ldd.
extern "C" __global__ void wm_copy2d(const float* src, long long lds, float* dst, long long ldd,
                                     long long rows, long long cols, int acc) {
    long long n = rows * cols;
    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (long long)blockDim.x * gridDim.x) {
        long long r = i / cols, c = i % cols;
        float v = src[r * lds + c];
        float* d = dst + r * ldd + c;
        *d = acc ? *d + v : v;
    }
}

// (batch, rows, cols) → (batch, cols, rows) through a 32×33 shared tile (both sides
// coalesced, no bank conflicts). Block (32, 8); grid (⌈cols/32⌉, ⌈rows/32⌉, batch).
extern "C" __global__ void wm_transpose(const float* src, float* dst, long long rows, long long cols, int acc) {
    __shared__ float tile[32][33];
    const float* s = src + (long long)blockIdx.z * rows * cols;
    float* d = dst + (long long)blockIdx.z * rows * cols;
    long long c0 = (long long)blockIdx.x * 32, r0 = (long long)blockIdx.y * 32;
    for (int j = threadIdx.y; j < 32; j += 8) {
        long long r = r0 + j, c = c0 + threadIdx.x;
        if (r < rows && c < cols) tile[j][threadIdx.x] = s[r * cols + c];
    }
    __syncthreads();
    for (int j = threadIdx.y; j < 32; j += 8) {
        long long c = c0 + j, r = r0 + threadIdx.x;
        if (r < rows && c < cols) {
            float v = tile[threadIdx.x][j];
            float* o = d + c * rows + r;
            *o = acc ? *o + v : v;
        }
    }
}
