// The row softmax shared by the temperature softmax (loss.cu) and the on-device draw
// (sample.cu), so that the draw sees the very probabilities the host sampler is given.
// Prepended to both sources, after warp.cuh, when they are compiled (KernelFamily.source).

// p[0, V) = softmax(x[0, V) / temperature), by the 32 lanes of one warp (`lane`: this thread's).
__device__ __forceinline__ void wm_softmax_row(const float* x, float* p, int V, float temperature, int lane) {
    float inv = 1.0f / temperature;
    float m = -__int_as_float(0x7f800000);
    for (int j = lane; j < V; j += 32) m = fmaxf(m, x[j] * inv);
    m = wm_warp_max(m);
    float s = 0.0f;
    for (int j = lane; j < V; j += 32) s += expf(x[j] * inv - m);
    s = wm_warp_sum(s);
    for (int j = lane; j < V; j += 32) p[j] = expf(x[j] * inv - m) / s;
}
