// Pointwise products of interleaved complex arrays (re, im, re, im, …): the frequency-domain
// half of FFT convolution. Counts are in complex elements. Plain loops: with -Ounchecked and
// AVX2 the compiler vectorises them, and they are memory-bound next to the FFTs anyway.

/// x[i] ← x[i] · k[i]   (convolution)
@inline(__always)
func complexMultiply(_ x: UnsafeMutablePointer<Float>, by k: UnsafePointer<Float>, count: Int) {
    for i in 0..<count {
        let xr = x[2 * i], xi = x[2 * i + 1], kr = k[2 * i], ki = k[2 * i + 1]
        x[2 * i] = xr * kr - xi * ki
        x[2 * i + 1] = xr * ki + xi * kr
    }
}

/// x[i] ← x[i] · conj(k[i])   (correlation: the adjoint of convolution)
@inline(__always)
func complexMultiplyConjugate(_ x: UnsafeMutablePointer<Float>, by k: UnsafePointer<Float>, count: Int) {
    for i in 0..<count {
        let xr = x[2 * i], xi = x[2 * i + 1], kr = k[2 * i], ki = k[2 * i + 1]
        x[2 * i] = xr * kr + xi * ki
        x[2 * i + 1] = xi * kr - xr * ki
    }
}

/// acc[i] ← a[i] · conj(b[i]), or acc[i] + a[i] · conj(b[i]) when `accumulate`.
@inline(__always)
func complexCorrelate(_ acc: UnsafeMutablePointer<Float>, _ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>,
                      count: Int, accumulate: Bool) {
    if accumulate {
        for i in 0..<count {
            let ar = a[2 * i], ai = a[2 * i + 1], br = b[2 * i], bi = b[2 * i + 1]
            acc[2 * i] += ar * br + ai * bi
            acc[2 * i + 1] += ai * br - ar * bi
        }
    } else {
        for i in 0..<count {
            let ar = a[2 * i], ai = a[2 * i + 1], br = b[2 * i], bi = b[2 * i + 1]
            acc[2 * i] = ar * br + ai * bi
            acc[2 * i + 1] = ai * br - ar * bi
        }
    }
}
