// Warp-wide reductions and the one-row LayerNorm, shared by the families that use them (norms,
// the selective scan, the fused block step, the loss and the on-device draw). Prepended to
// their sources, in front of any other shared header, when they are compiled
// (KernelFamily.source).

// Sum over each chain of LC lanes (LC = 32: the warp; 16: each half-warp), every lane getting its chain's.
template <int LC = 32>
__device__ __forceinline__ float wm_chain_sum(float v) {
    for (int o = LC / 2; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}
__device__ __forceinline__ float wm_warp_sum(float v) { return wm_chain_sum<32>(v); }
__device__ __forceinline__ float wm_warp_max(float v) {
    for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
    return v;
}

// y = (x − μ)·rstd·w + b over one row of C values by the 32 lanes of a warp (`lane`: this
// thread's; w, b null: 1, 0); returns (μ, rstd). y may be shared memory.
__device__ __forceinline__ float2 wm_layernorm_row(const float* x, const float* w, const float* b, float* y, int C, float eps, int lane) {
    float s = 0.0f;
    for (int c = lane; c < C; c += 32) s += x[c];
    const float mu = wm_warp_sum(s) / C;
    float v = 0.0f;
    for (int c = lane; c < C; c += 32) { const float d = x[c] - mu; v += d * d; }
    const float rs = rsqrtf(wm_warp_sum(v) / C + eps);
    for (int c = lane; c < C; c += 32) y[c] = (x[c] - mu) * rs * (w ? w[c] : 1.0f) + (b ? b[c] : 0.0f);
    return make_float2(mu, rs);
}
