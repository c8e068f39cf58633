// Fused softmax cross-entropy (max-shifted log-sum-exp) and temperature softmax, one warp
// per row. The forward writes each row's loss; reduce.cu sums them deterministically. The warp
// reductions are warp.cuh's and the row softmax softmax.cuh's, compiled in front of this file.

// loss[r] = lse_r − logits[r, t_r] (0 for a negative target); logSumExp[r] = lse_r.
extern "C" __global__ void wm_cross_entropy_forward(const float* logits, long long ld, const int* targets,
                                                    float* loss, float* logSumExp, long long rows, int V) {
    long long r = (long long)blockIdx.x * (blockDim.x / 32) + threadIdx.x / 32;
    int lane = threadIdx.x % 32;
    if (r >= rows) return;
    const float* x = logits + r * ld;
    float m = -__int_as_float(0x7f800000);
    for (int j = lane; j < V; j += 32) m = fmaxf(m, x[j]);
    m = wm_warp_max(m);
    float s = 0.0f;
    for (int j = lane; j < V; j += 32) s += expf(x[j] - m);
    float lse = m + logf(wm_warp_sum(s));
    if (lane == 0) {
        int t = targets[r];
        logSumExp[r] = lse;
        loss[r] = t >= 0 ? lse - x[t] : 0.0f;
    }
}

// dLogits[r, j] (+)= scale·(softmax_j − [j == t_r]); rows with a negative target get 0.
extern "C" __global__ void wm_cross_entropy_backward(const float* logits, long long ld, const int* targets,
                                                     const float* logSumExp, float scale, float* dLogits,
                                                     long long rows, int V, int acc) {
    long long n = rows * V;
    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (long long)blockDim.x * gridDim.x) {
        long long r = i / V; int j = (int)(i % V);
        int t = targets[r];
        float g = t >= 0 ? scale * (expf(logits[r * ld + j] - logSumExp[r]) - (j == t ? 1.0f : 0.0f)) : 0.0f;
        float* o = dLogits + r * ld + j;
        *o = acc ? *o + g : g;
    }
}

// probs[r, :] = softmax(logits[r, :] / temperature)
extern "C" __global__ void wm_softmax(const float* logits, float* probs, long long rows, int V, float temperature) {
    long long r = (long long)blockIdx.x * (blockDim.x / 32) + threadIdx.x / 32;
    int lane = threadIdx.x % 32;
    if (r >= rows) return;
    wm_softmax_row(logits + r * V, probs + r * V, V, temperature, lane);
}
