// AdamW (PyTorch semantics) over a flat range; the host passes the bias corrections
// (computed in double, as PyTorch does) and the gradient scale (the clip factor).
//   g = gradScale·grad;  p ← p·decay (when doDecay);  m ← β1 m + (1−β1) g;  v ← β2 v + (1−β2) g²
//   p ← p − stepSize·m / (√v·invSqrtBC2 + eps)

extern "C" __global__ void wm_adamw(float* p, const float* grad, float* m, float* v, long long n,
                                    float stepSize, float invSqrtBC2, float decay, int doDecay,
                                    float beta1, float beta2, float eps, float gradScale) {
    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (long long)blockDim.x * gridDim.x) {
        float g = grad[i] * gradScale;
        float pi = p[i];
        if (doDecay) pi *= decay;
        float mi = beta1 * m[i] + (1.0f - beta1) * g;
        float vi = beta2 * v[i] + (1.0f - beta2) * (g * g);
        pi -= stepSize * mi / (sqrtf(vi) * invSqrtBC2 + eps);
        p[i] = pi; m[i] = mi; v[i] = vi;
    }
}
