// Arithmetic shared by the selective scan (scan.cu) and the fused Mamba block step
// (mamba_step.cu): SFU softplus, sigmoid and sincos, complex pairs, the per-step decay, the
// step-mode state update.
// Prepended to both sources, after warp.cuh, when they are compiled (KernelFamily.source).

// softplus and sigmoid through the SFU (__expf, __logf): log1p(e) by its series below
// e = 0.03 (relative error ≤ e³/4 ≈ 7e-6·e … 2e-7), by __logf(1 + e) above (absolute error
// ≈ 4e-7 on a value ≥ 0.03: ≤ 1.3e-5 relative). libm's log1pf(expf(x)) was a fifth of the
// forward's instructions.
__device__ __forceinline__ float wm_softplus_s(float x) {
    if (x > 20.0f) return x;
    float e = __expf(x);
    return e < 0.03f ? e * (1.0f - e * (0.5f - e * (1.0f / 3.0f))) : __logf(1.0f + e);
}
__device__ __forceinline__ float wm_sigmoid_s(float x) { return __fdividef(1.0f, 1.0f + __expf(-x)); }

// sin and cos of x through the SFU (MUFU.SIN / COS reduce the argument themselves). An explicit
// reduction to [−π, π] first (rint and two FMAs) bought no accuracy worth its 4 instructions
// per complex state update: the SFU's input, x/2π rounded, is off by ≲ 1 ulp of x, the same
// order as the rounding of x = Δ·A_im itself.
__device__ __forceinline__ void wm_sincos(float x, float* s, float* c) { __sincosf(x, s, c); }

// Complex numbers as (re, im) pairs.
struct WmC { float r, i; };
__device__ __forceinline__ WmC wm_mul(WmC a, WmC b) { return {a.r * b.r - a.i * b.i, a.r * b.i + a.i * b.r}; }
__device__ __forceinline__ WmC wm_fma(WmC a, WmC b, WmC c) { return {fmaf(a.r, b.r, fmaf(-a.i, b.i, c.r)), fmaf(a.r, b.i, fmaf(a.i, b.r, c.i))}; }
__device__ __forceinline__ WmC wm_conj(WmC a) { return {a.r, -a.i}; }

// Decay a = exp(Δ·A) of one step (A2 = A·log2 e).
template <bool CX>
__device__ __forceinline__ WmC wm_decay(float sdt, float A2, float Ai) {
    float e;
    asm("ex2.approx.ftz.f32 %0, %1;" : "=f"(e) : "f"(sdt * A2));   // 2 ulp; exp2f adds range handling we don't need
    if (!CX) return {e, 0.0f};
    float s, c; wm_sincos(sdt * Ai, &s, &c);
    return {e * c, e * s};
}

// One state's update in step mode, h ← exp(Δ·A)·h + Δ·u·B (sdt = Δ, du = Δ·u), stored to *out;
// returns its share of y: C·h, or 2·Re(C·h) for complex (B, C: re/im pairs). The step kernels'
// arithmetic: scan.cu's wm_scan_step and mamba_step.cu's fused block step.
__device__ __forceinline__ float wm_step_state_re(float sdt, float du, float A, float B, float C, float h, float* out) {
    WmC av = wm_decay<false>(sdt, A * 1.4426950408889634f, 0.0f);
    float nh = av.r * h + du * B;
    *out = nh;
    return C * nh;
}
__device__ __forceinline__ float wm_step_state_cx(float sdt, float du, float A, float Ai, const float* B, const float* C, float2 h, float2* out) {
    WmC av = wm_decay<true>(sdt, A * 1.4426950408889634f, Ai);
    float nr = av.r * h.x - av.i * h.y + du * B[0], ni = av.r * h.y + av.i * h.x + du * B[1];
    *out = make_float2(nr, ni);
    return 2.0f * (C[0] * nr - C[1] * ni);
}
