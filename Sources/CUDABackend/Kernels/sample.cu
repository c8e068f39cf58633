// On-device sampling for generation: softmax with temperature, nucleus (top-p) filtering and
// a categorical draw, one block per stream, so that a generated sample needs no host round
// trip. It mirrors the host sampler (Sampler.draw) operation for operation: the softmax is
// wm_softmax's (softmax.cuh, compiled in front of this file and of loss.cu), the sums over classes run in
// one thread in the host's order, and the uniform is the host's SplitMix64 word. Given the
// same probabilities it therefore draws the same token.

// Word k (0-based) of SplitMix64 seeded with `seed` (Steele, Lea & Flood 2014): the state
// after k + 1 increments, mixed. A pure function of (seed, k), equal to the host generator's
// (k + 1)-th next().
__device__ __forceinline__ unsigned long long wm_splitmix64_word(unsigned long long seed, unsigned long long k) {
    unsigned long long z = seed + (k + 1ull) * 0x9E3779B97F4A7C15ull;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

// Stream s = blockIdx.x draws from softmax(logits[s, :] / temperature) with top-p, using word
// k = counters[s] of SplitMix64(seed + s·0x9E3779B97F4A7C15); writes tokens[s] and
// history[s, k mod capacity], then counters[s] = k + 1. With logp (else null), also
// logp[s, k mod capacity] = the drawn class's log-probability under the model's own
// distribution, log softmax(logits[s, :])[c] at temperature 1 whatever the sampling
// temperature and top-p (the likelihood generate records). Dynamic shared memory: V floats
// (probabilities), V floats (the same in descending order) and V ints (their classes), so
// that the sequential sums read consecutive addresses. Block: 256 threads (≥ 32).
extern "C" __global__ void wm_sample_tokens(const float* logits, int V, float temperature, float topP, unsigned long long seed,
                                            unsigned long long* counters, int* tokens, int* history, long long capacity, float* logp) {
    extern __shared__ float4 wm_sample_shared4[];   // float4: 16-byte aligned for the vector loads
    float* wm_sample_shared = reinterpret_cast<float*>(wm_sample_shared4);
    float* p = wm_sample_shared;
    float* sorted = wm_sample_shared + V;
    int* order = (int*)(wm_sample_shared + 2 * V);
    int s = blockIdx.x;
    const float* x = logits + (long long)s * V;
    __shared__ float logZ;   // log Σ exp(logits), untempered (logp only)
    if (threadIdx.x < 32) {
        wm_softmax_row(x, p, V, temperature, threadIdx.x);   // wm_softmax's row (softmax.cuh)
        if (logp) {
            float m = -__int_as_float(0x7f800000);
            for (int j = threadIdx.x; j < V; j += 32) m = fmaxf(m, x[j]);
            m = wm_warp_max(m);
            float e = 0.0f;
            for (int j = threadIdx.x; j < V; j += 32) e += expf(x[j] - m);
            e = wm_warp_sum(e);
            if (threadIdx.x == 0) logZ = m + logf(e);
        }
    }
    __syncthreads();
    if (topP < 1.0f) {
        // Rank of class j in a stable sort by descending probability (ties keep class order, as
        // the host's stable sort): order[rank] = j. O(V²/threads); V is 256 for μ-law audio.
        for (int j = threadIdx.x; j < V; j += blockDim.x) { order[j] = j; sorted[j] = p[j]; }
        __syncthreads();
        for (int j = threadIdx.x; j < V; j += blockDim.x) {
            float pj = p[j];
            int r = 0;
            for (int i = 0; i < V; i++) {
                float pi = p[i];
                r += (pi > pj) || (pi == pj && i < j);
            }
            if (r < V) { order[r] = j; sorted[r] = pj; }
        }
        __syncthreads();
    }
    unsigned long long k = counters[s];
    unsigned long long z = wm_splitmix64_word(seed + (unsigned long long)s * 0x9E3779B97F4A7C15ull, k);
    float u = (float)(z >> 40) / 16777216.0f;
    int c;
    if (topP >= 1.0f) {
        // The host's sums, in its order, by one thread: prefix[j] = p[0] + … + p[j] (in `sorted`,
        // unused on this path); total = prefix[V − 1]. The host returns the first j with
        // prefix[j] > u·total; prefixes of non-negative terms never decrease, so that j is the
        // number of prefixes ≤ u·total, which all threads count (V − 1 when none exceeds it).
        // (The host's two loops, run by one thread, cost a noticeable share of a step.)
        __shared__ int below;
        if (threadIdx.x == 0) {
            // 32 values at a time through registers: the loads and stores of a group issue
            // together, and only the additions wait on each other.
            float acc = 0.0f;
            int j = 0;
            if ((V & 3) == 0) {
                for (; j + 32 <= V; j += 32) {
                    float4 q[8];
#pragma unroll
                    for (int t = 0; t < 8; ++t) q[t] = reinterpret_cast<const float4*>(p + j)[t];
#pragma unroll
                    for (int t = 0; t < 8; ++t) {
                        acc += q[t].x; q[t].x = acc; acc += q[t].y; q[t].y = acc;
                        acc += q[t].z; q[t].z = acc; acc += q[t].w; q[t].w = acc;
                    }
#pragma unroll
                    for (int t = 0; t < 8; ++t) reinterpret_cast<float4*>(sorted + j)[t] = q[t];
                }
            }
            for (; j < V; j++) { acc += p[j]; sorted[j] = acc; }
            below = 0;
        }
        __syncthreads();
        const float target = u * sorted[V - 1];
        int n = 0;
        for (int j = threadIdx.x; j < V; j += blockDim.x) n += sorted[j] <= target;
        for (int o = 16; o > 0; o >>= 1) n += __shfl_xor_sync(0xffffffffu, n, o);
        if ((threadIdx.x & 31) == 0 && n > 0) atomicAdd(&below, n);
        __syncthreads();
        if (threadIdx.x != 0) return;
        c = target != target ? V - 1 : below;   // NaN: the host's loop never stops early
    } else {
        if (threadIdx.x != 0) return;
        int kept = 0;
        float mass = 0.0f;
        while (kept < V) {
            mass += sorted[kept];
            kept += 1;
            if (mass >= topP) break;
        }
        float target = u * mass;
        float acc = 0.0f;
        c = order[kept - 1];
        for (int i = 0; i < kept; i++) {
            acc += sorted[i];
            if (acc > target) { c = order[i]; break; }
        }
    }
    c = c < 0 ? 0 : (c >= V ? V - 1 : c);   // NaN logits must still give a valid class
    tokens[s] = c;
    history[(long long)s * capacity + (long long)(k % (unsigned long long)capacity)] = c;
    if (logp) logp[(long long)s * capacity + (long long)(k % (unsigned long long)capacity)] = x[c] - logZ;
    counters[s] = k + 1ull;
}
