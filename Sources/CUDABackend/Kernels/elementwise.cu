// Elementwise kernels: activations and their gradients, add / mul / scale, row-vector
// products, GLU, the linear layer's bias broadcast, embedding lookup and the parameter EMA.
// Grid-stride loops over `long long` counts; `acc` != 0 adds into the output.
// Activation kinds follow Kernels.ActivationKind:
//   0 identity, 1 silu, 2 softplus, 3 exp, 4 sigmoid, 5 tanh, 6 gelu, 7 relu.
// Gradients of exp, sigmoid and tanh take the forward output; the others the forward input.

#define GRID_STRIDE(i, n) for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < (n); \
                               i += (long long)blockDim.x * gridDim.x)

__device__ __forceinline__ float wm_sigmoid(float x) { return 1.0f / (1.0f + expf(-x)); }
__device__ __forceinline__ float wm_softplus(float x) { return x > 20.0f ? x : log1pf(expf(x)); }

__device__ __forceinline__ float wm_activation(int kind, float x) {
    switch (kind) {
    case 1: return x * wm_sigmoid(x);
    case 2: return wm_softplus(x);
    case 3: return expf(x);
    case 4: return wm_sigmoid(x);
    case 5: return tanhf(x);
    case 6: return x * normcdff(x);
    case 7: return x > 0.0f ? x : 0.0f;
    default: return x;
    }
}

// f'(·)·dy from the saved value s (x, or y for exp / sigmoid / tanh).
__device__ __forceinline__ float wm_activation_grad(int kind, float s, float dy) {
    switch (kind) {
    case 1: { float g = wm_sigmoid(s); return dy * g * (1.0f + s * (1.0f - g)); }
    case 2: return dy * wm_sigmoid(s);
    case 3: return dy * s;
    case 4: return dy * s * (1.0f - s);
    case 5: return dy * (1.0f - s * s);
    case 6: return dy * (normcdff(s) + s * 0.3989422804014327f * expf(-0.5f * s * s));
    case 7: return s > 0.0f ? dy : 0.0f;
    default: return dy;
    }
}

extern "C" __global__ void wm_activation_forward(int kind, const float* x, float* y, long long n) {
    GRID_STRIDE(i, n) { y[i] = wm_activation(kind, x[i]); }
}

extern "C" __global__ void wm_activation_backward(int kind, const float* saved, const float* dy, float* dx,
                                                  long long n, int acc) {
    GRID_STRIDE(i, n) {
        float g = wm_activation_grad(kind, saved[i], dy[i]);
        dx[i] = acc ? dx[i] + g : g;
    }
}

extern "C" __global__ void wm_add(const float* a, const float* b, float* out, long long n) {
    GRID_STRIDE(i, n) { out[i] = a[i] + b[i]; }
}

extern "C" __global__ void wm_mul(const float* a, const float* b, float* out, long long n, int acc) {
    GRID_STRIDE(i, n) {
        float v = a[i] * b[i];
        out[i] = acc ? out[i] + v : v;
    }
}

extern "C" __global__ void wm_scale(const float* x, float s, float* out, long long n, int acc) {
    GRID_STRIDE(i, n) {
        float v = x[i] * s;
        out[i] = acc ? out[i] + v : v;
    }
}

// out[r, c] = x[r, c] · v[c]
extern "C" __global__ void wm_mul_row_vector(const float* x, const float* v, float* out, long long rows, long long cols) {
    GRID_STRIDE(i, rows * cols) { out[i] = x[i] * v[i % cols]; }
}

// dx[r, c] += dy[r, c] · v[c]
extern "C" __global__ void wm_mul_row_vector_dx(const float* dy, const float* v, float* dx, long long rows, long long cols) {
    GRID_STRIDE(i, rows * cols) { dx[i] += dy[i] * v[i % cols]; }
}

// GLU over the last dimension: x (rows × 2H) = [a, b] → y (rows × H) = a·σ(b).
extern "C" __global__ void wm_glu_forward(const float* x, float* y, long long rows, long long half) {
    GRID_STRIDE(i, rows * half) {
        long long r = i / half, c = i % half;
        const float* row = x + r * 2 * half;
        y[i] = row[c] * wm_sigmoid(row[half + c]);
    }
}

extern "C" __global__ void wm_glu_backward(const float* dy, const float* x, float* dx, long long rows, long long half, int acc) {
    GRID_STRIDE(i, rows * half) {
        long long r = i / half, c = i % half;
        const float* row = x + r * 2 * half;
        float* drow = dx + r * 2 * half;
        float a = row[c], s = wm_sigmoid(row[half + c]), g = dy[i];
        float da = g * s, db = g * a * s * (1.0f - s);
        if (acc) { drow[c] += da; drow[half + c] += db; } else { drow[c] = da; drow[half + c] = db; }
    }
}

// y[r, c] = bias[c] for a (possibly column-slice) output with row stride ldy: the linear
// layer's GEMM then adds x·Wᵀ with β = 1.
extern "C" __global__ void wm_broadcast_rows(const float* bias, float* y, long long rows, long long cols, long long ldy) {
    GRID_STRIDE(i, rows * cols) {
        long long r = i / cols, c = i % cols;
        y[r * ldy + c] = bias[c];
    }
}

// out[i, :] = table[indices[i], :]
extern "C" __global__ void wm_embedding_forward(const float* table, const int* indices, float* out,
                                                long long count, long long channels) {
    GRID_STRIDE(i, count * channels) {
        long long r = i / channels, c = i % channels;
        out[i] = table[(long long)indices[r] * channels + c];
    }
}

// dTable[indices[i], :] += dOut[i, :] (atomics: indices repeat).
extern "C" __global__ void wm_embedding_backward(const float* dOut, const int* indices, float* dTable,
                                                 long long count, long long channels) {
    GRID_STRIDE(i, count * channels) {
        long long r = i / channels, c = i % channels;
        atomicAdd(dTable + (long long)indices[r] * channels + c, dOut[i]);
    }
}

// average = decay·average + (1 − decay)·parameters
extern "C" __global__ void wm_ema(float* average, const float* parameters, long long n, float decay) {
    GRID_STRIDE(i, n) { average[i] = (1.0f - decay) * parameters[i] + decay * average[i]; }
}
