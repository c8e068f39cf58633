// Fallback SGEMM for hosts without cuBLAS (fp32, row-major, strided-batched):
//   C[b] = α·op(A[b])·op(B[b]) + β·C[b],  op(A) m×k, op(B) k×n,
// with leading dimensions lda / ldb / ldc (row strides) and batch strides. 64×64 tiles of C
// per block of 256 threads, each thread a 4×4 register tile; k in steps of 16 through
// shared memory. cuBLAS is used whenever it loads.

#define TM 64
#define TN 64
#define TK 16

extern "C" __global__ void wm_sgemm(int transA, int transB, long long m, long long n, long long k, float alpha,
                                    const float* A, long long lda, long long strideA,
                                    const float* B, long long ldb, long long strideB,
                                    float beta, float* C, long long ldc, long long strideC) {
    __shared__ float As[TK][TM + 4];
    __shared__ float Bs[TK][TN + 4];
    A += (long long)blockIdx.z * strideA; B += (long long)blockIdx.z * strideB; C += (long long)blockIdx.z * strideC;
    long long row0 = (long long)blockIdx.y * TM, col0 = (long long)blockIdx.x * TN;
    int tx = threadIdx.x % 16, ty = threadIdx.x / 16;
    float acc[4][4];
    for (int i = 0; i < 4; ++i) for (int j = 0; j < 4; ++j) acc[i][j] = 0.0f;
    for (long long k0 = 0; k0 < k; k0 += TK) {
        for (int e = threadIdx.x; e < TK * TM; e += 256) {
            int kk = e % TK, mm = e / TK;
            long long r = row0 + mm, c = k0 + kk;
            float v = 0.0f;
            if (r < m && c < k) v = transA ? A[c * lda + r] : A[r * lda + c];
            As[kk][mm] = v;
        }
        for (int e = threadIdx.x; e < TK * TN; e += 256) {
            int nn = e % TN, kk = e / TN;
            long long r = k0 + kk, c = col0 + nn;
            float v = 0.0f;
            if (r < k && c < n) v = transB ? B[c * ldb + r] : B[r * ldb + c];
            Bs[kk][nn] = v;
        }
        __syncthreads();
        for (int kk = 0; kk < TK; ++kk) {
            float a[4], b[4];
            for (int i = 0; i < 4; ++i) a[i] = As[kk][ty * 4 + i];
            for (int j = 0; j < 4; ++j) b[j] = Bs[kk][tx * 4 + j];
            for (int i = 0; i < 4; ++i) for (int j = 0; j < 4; ++j) acc[i][j] += a[i] * b[j];
        }
        __syncthreads();
    }
    for (int i = 0; i < 4; ++i) {
        long long r = row0 + ty * 4 + i;
        if (r >= m) continue;
        for (int j = 0; j < 4; ++j) {
            long long c = col0 + tx * 4 + j;
            if (c >= n) continue;
            float* o = C + r * ldc + c;
            *o = alpha * acc[i][j] + (beta == 0.0f ? 0.0f : beta * *o);
        }
    }
}
