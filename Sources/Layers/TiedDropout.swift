import Engine
import Kernels

extension Op {
    /// S4's DropoutNd (tie = True): one keep/drop decision per (batch element, channel),
    /// shared by every position of the sequence, kept values scaled by 1/(1 − p).
    /// x: (batch·L, C) token-major. Applies when `p > 0` and a `seed` is given (training);
    /// otherwise returns x. The (batch, C) mask comes from the counter-based generator of
    /// `Kernels.Dropout`, so it does not depend on the thread count; `firstSample` is the
    /// global index of the batch's first sample (a data-parallel rank's share), so every
    /// sample gets the mask it gets in one process.
    public static func tiedDropout(_ x: Variable, batch: Int, p: Float, seed: UInt64?, firstSample: Int = 0, _ tape: Tape) -> Variable {
        guard p > 0, let seed else { return x }
        let xv = x.value.contiguous()
        let C = xv.columns, rows = xv.rows
        precondition(rows % batch == 0, "tiedDropout: \(rows) rows for batch \(batch)")
        let L = rows / batch
        let backend = x.backend
        let pool = cpuPool(backend)
        let mask = backend.empty([batch, C])
        Dropout.mask(mask.pointer, count: batch * C, p: p, seed: seed, offset: UInt64(firstSample * C), pool: pool)
        let y = backend.empty(xv.shape)
        scaleByMask(xv.pointer, mask.pointer, y.pointer, batch: batch, length: L, channels: C, accumulate: false, pool: pool)
        let out = Variable(y, requiresGrad: tape.needsGrad(x))
        if out.requiresGrad {
            tape.record("tiedDropout") {
                guard let dy = out.grad else { return }
                x.withGrad { dx, acc in
                    scaleByMask(dy.pointer, mask.pointer, dx.pointer, batch: batch, length: L, channels: C, accumulate: acc, pool: pool)
                }
            }
        }
        return out
    }

    /// y[b, t, c] (+)= x[b, t, c]·mask[b, c].
    static func scaleByMask(_ x: UnsafePointer<Float>, _ mask: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>,
                            batch: Int, length L: Int, channels C: Int, accumulate: Bool, pool: ThreadPool) {
        pool.forRanges(batch * L, grain: max(1, 16384 / C)) { rows in
            for r in rows {
                let m = mask + (r / L) * C, xr = x + r * C, yr = y + r * C
                if accumulate {
                    for c in 0..<C { yr[c] += xr[c] * m[c] }
                } else {
                    for c in 0..<C { yr[c] = xr[c] * m[c] }
                }
            }
        }
    }
}

/// The thread pool of a CPU backend (the S4D layer's kernels are host code).
func cpuPool(_ backend: any Backend) -> ThreadPool {
    guard let cpu = backend as? CPUBackend else { preconditionFailure("S4D runs on the CPU backend, not \(backend.device)") }
    return cpu.pool
}
