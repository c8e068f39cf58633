// A linear layer for a handful of rows (step-mode generation: one row per stream), with the
// weight packed once into panels of 16 output columns so the inner loop streams one panel
// contiguously and keeps 4 rows × 16 columns of accumulators in registers. At these sizes
// ((≤ 16) × 64 · 64 × 256) OpenBLAS's per-call cost (argument checks, buffer packing, its
// thread hand-off) is larger than the arithmetic; this kernel has none of it and allocates
// nothing. Single-threaded: the caller parallelises at a coarser grain (streams).

/// y = addend + bias + x·Wᵀ with W packed at construction (a snapshot: pack again after the
/// parameters change).
public final class PackedLinear {
    public let inFeatures: Int
    public let outFeatures: Int
    /// Output columns rounded up to 16: y's rows must have room for this many floats.
    public let paddedOut: Int
    /// panels × inFeatures × 16: panel p holds W[p·16 + j, k] at [k·16 + j].
    let packed: UnsafeMutablePointer<Float>
    /// paddedOut, zero past outFeatures.
    let bias: UnsafeMutablePointer<Float>

    /// - Parameters:
    ///   - weight: (outFeatures × inFeatures) row-major, PyTorch nn.Linear's layout.
    ///   - inputIndex: which input feature of W the packed layer's input k reads (a reordering
    ///     of x's columns folded into the weight); identity when nil.
    ///   - outputIndex: which output feature of W the packed layer writes at column j; identity
    ///     when nil.
    public init(weight: UnsafePointer<Float>, bias: UnsafePointer<Float>?, outFeatures: Int, inFeatures: Int,
                inputIndex: ((Int) -> Int)? = nil, outputIndex: ((Int) -> Int)? = nil) {
        precondition(outFeatures > 0 && inFeatures > 0, "PackedLinear: empty weight \(outFeatures) × \(inFeatures)")
        self.inFeatures = inFeatures
        self.outFeatures = outFeatures
        paddedOut = (outFeatures + 15) / 16 * 16
        let K = inFeatures
        packed = .allocate(capacity: paddedOut * K)
        packed.initialize(repeating: 0, count: paddedOut * K)
        self.bias = .allocate(capacity: paddedOut)
        self.bias.initialize(repeating: 0, count: paddedOut)
        for j in 0..<outFeatures {
            let o = outputIndex?(j) ?? j
            precondition(o >= 0 && o < outFeatures, "PackedLinear: output index \(o) out of range")
            let panel = packed + (j / 16) * K * 16, lane = j % 16
            for k in 0..<K {
                let i = inputIndex?(k) ?? k
                panel[k * 16 + lane] = weight[o * K + i]
            }
            if let bias { self.bias[j] = bias[o] }
        }
    }

    deinit {
        packed.deallocate()
        bias.deallocate()
    }

    /// y[r, 0..<outFeatures] = addend[r, :] + bias + x[r, :]·Wᵀ for r in 0..<rows.
    /// x: rows × inFeatures (row stride ldx); y: row stride ldy ≥ outFeatures; addend (optional,
    /// row stride ldAddend) may alias y: each block of y is written right after its addend is read.
    /// Each row's arithmetic is the same whatever `rows` is (one FMA chain per output, k in order).
    public func apply(x: UnsafePointer<Float>, ldx: Int, rows: Int, y: UnsafeMutablePointer<Float>, ldy: Int,
                      addend: UnsafePointer<Float>? = nil, ldAddend: Int = 0) {
        precondition(ldy >= outFeatures, "PackedLinear: output row stride \(ldy) < \(outFeatures)")
        let K = inFeatures, full = outFeatures / 16
        for p in 0..<full {
            let w = UnsafePointer(packed + p * K * 16), c0 = p * 16
            let b0 = loadV(bias + c0), b1 = loadV(bias + c0 + 8)
            var r = 0
            while r + 4 <= rows {
                var a00 = b0, a01 = b1, a10 = b0, a11 = b1, a20 = b0, a21 = b1, a30 = b0, a31 = b1
                if let addend {
                    let q = addend + r * ldAddend + c0
                    a00 += loadV(q); a01 += loadV(q + 8)
                    a10 += loadV(q + ldAddend); a11 += loadV(q + ldAddend + 8)
                    a20 += loadV(q + 2 * ldAddend); a21 += loadV(q + 2 * ldAddend + 8)
                    a30 += loadV(q + 3 * ldAddend); a31 += loadV(q + 3 * ldAddend + 8)
                }
                let x0 = x + r * ldx, x1 = x0 + ldx, x2 = x1 + ldx, x3 = x2 + ldx
                for k in 0..<K {
                    let w0 = loadV(w + k * 16), w1 = loadV(w + k * 16 + 8)
                    let v0 = V8(repeating: x0[k]), v1 = V8(repeating: x1[k])
                    let v2 = V8(repeating: x2[k]), v3 = V8(repeating: x3[k])
                    a00 = a00.addingProduct(v0, w0); a01 = a01.addingProduct(v0, w1)
                    a10 = a10.addingProduct(v1, w0); a11 = a11.addingProduct(v1, w1)
                    a20 = a20.addingProduct(v2, w0); a21 = a21.addingProduct(v2, w1)
                    a30 = a30.addingProduct(v3, w0); a31 = a31.addingProduct(v3, w1)
                }
                let o = y + r * ldy + c0
                storeV(a00, o); storeV(a01, o + 8)
                storeV(a10, o + ldy); storeV(a11, o + ldy + 8)
                storeV(a20, o + 2 * ldy); storeV(a21, o + 2 * ldy + 8)
                storeV(a30, o + 3 * ldy); storeV(a31, o + 3 * ldy + 8)
                r += 4
            }
        }
        // Leftover rows (fewer than 4): one row against 4 panels at once, so 8 independent FMA
        // chains hide the FMA latency (a single row's 2 chains would be latency-bound).
        for r in (rows / 4 * 4)..<rows {
            var p = 0
            while p + 4 <= full {
                rowPanels4(x: x + r * ldx, w: UnsafePointer(packed + p * K * 16), c0: p * 16, y: y + r * ldy,
                           addend: addend.map { $0 + r * ldAddend })
                p += 4
            }
            while p < full {
                let w = UnsafePointer(packed + p * K * 16), c0 = p * 16
                var a0 = loadV(bias + c0), a1 = loadV(bias + c0 + 8)
                if let addend {
                    let q = addend + r * ldAddend + c0
                    a0 += loadV(q); a1 += loadV(q + 8)
                }
                let x0 = x + r * ldx
                for k in 0..<K {
                    let v0 = V8(repeating: x0[k])
                    a0 = a0.addingProduct(v0, loadV(w + k * 16))
                    a1 = a1.addingProduct(v0, loadV(w + k * 16 + 8))
                }
                storeV(a0, y + r * ldy + c0); storeV(a1, y + r * ldy + c0 + 8)
                p += 1
            }
        }
        if full * 16 < outFeatures {
            lastPanel4(x: x, ldx: ldx, rows: rows / 4 * 4, y: y, ldy: ldy, addend: addend, ldAddend: ldAddend)
            applyLastPanel(x: x, ldx: ldx, rows: (rows / 4 * 4)..<rows, y: y, ldy: ldy, addend: addend, ldAddend: ldAddend)
        }
    }

    /// One row (x, y at the row) against the 4 panels starting at column c0.
    @inline(__always)
    private func rowPanels4(x: UnsafePointer<Float>, w: UnsafePointer<Float>, c0: Int, y: UnsafeMutablePointer<Float>,
                            addend: UnsafePointer<Float>?) {
        let K = inFeatures, stride = K * 16
        var a0 = loadV(bias + c0), a1 = loadV(bias + c0 + 8), a2 = loadV(bias + c0 + 16), a3 = loadV(bias + c0 + 24)
        var a4 = loadV(bias + c0 + 32), a5 = loadV(bias + c0 + 40), a6 = loadV(bias + c0 + 48), a7 = loadV(bias + c0 + 56)
        if let q = addend.map({ $0 + c0 }) {
            a0 += loadV(q); a1 += loadV(q + 8); a2 += loadV(q + 16); a3 += loadV(q + 24)
            a4 += loadV(q + 32); a5 += loadV(q + 40); a6 += loadV(q + 48); a7 += loadV(q + 56)
        }
        let w1 = w + stride, w2 = w1 + stride, w3 = w2 + stride
        for k in 0..<K {
            let v = V8(repeating: x[k])
            a0 = a0.addingProduct(v, loadV(w + k * 16)); a1 = a1.addingProduct(v, loadV(w + k * 16 + 8))
            a2 = a2.addingProduct(v, loadV(w1 + k * 16)); a3 = a3.addingProduct(v, loadV(w1 + k * 16 + 8))
            a4 = a4.addingProduct(v, loadV(w2 + k * 16)); a5 = a5.addingProduct(v, loadV(w2 + k * 16 + 8))
            a6 = a6.addingProduct(v, loadV(w3 + k * 16)); a7 = a7.addingProduct(v, loadV(w3 + k * 16 + 8))
        }
        storeV(a0, y + c0); storeV(a1, y + c0 + 8); storeV(a2, y + c0 + 16); storeV(a3, y + c0 + 24)
        storeV(a4, y + c0 + 32); storeV(a5, y + c0 + 40); storeV(a6, y + c0 + 48); storeV(a7, y + c0 + 56)
    }

    /// The last, partial panel for rows 0..<rows (a multiple of 4), 4 rows at a time (8 FMA
    /// chains) with partial loads and stores.
    private func lastPanel4(x: UnsafePointer<Float>, ldx: Int, rows: Int, y: UnsafeMutablePointer<Float>, ldy: Int,
                            addend: UnsafePointer<Float>?, ldAddend: Int) {
        let K = inFeatures, c0 = outFeatures / 16 * 16, cols = outFeatures - c0
        let n0 = min(8, cols), n1 = max(0, cols - 8)
        let w = UnsafePointer(packed + c0 * K)
        let b0 = loadV(bias + c0), b1 = loadV(bias + c0 + 8)
        var r = 0
        while r < rows {
            var a0 = (b0, b1), a1 = (b0, b1), a2 = (b0, b1), a3 = (b0, b1)
            if let addend {
                let q = addend + r * ldAddend + c0
                a0.0 += loadLanes(q, n0); a0.1 += loadLanes(q + 8, n1)
                a1.0 += loadLanes(q + ldAddend, n0); a1.1 += loadLanes(q + ldAddend + 8, n1)
                a2.0 += loadLanes(q + 2 * ldAddend, n0); a2.1 += loadLanes(q + 2 * ldAddend + 8, n1)
                a3.0 += loadLanes(q + 3 * ldAddend, n0); a3.1 += loadLanes(q + 3 * ldAddend + 8, n1)
            }
            let x0 = x + r * ldx, x1 = x0 + ldx, x2 = x1 + ldx, x3 = x2 + ldx
            for k in 0..<K {
                let w0 = loadV(w + k * 16), w1 = loadV(w + k * 16 + 8)
                let v0 = V8(repeating: x0[k]), v1 = V8(repeating: x1[k])
                let v2 = V8(repeating: x2[k]), v3 = V8(repeating: x3[k])
                a0.0 = a0.0.addingProduct(v0, w0); a0.1 = a0.1.addingProduct(v0, w1)
                a1.0 = a1.0.addingProduct(v1, w0); a1.1 = a1.1.addingProduct(v1, w1)
                a2.0 = a2.0.addingProduct(v2, w0); a2.1 = a2.1.addingProduct(v2, w1)
                a3.0 = a3.0.addingProduct(v3, w0); a3.1 = a3.1.addingProduct(v3, w1)
            }
            let o = y + r * ldy + c0
            storeLanes(a0.0, o, n0); storeLanes(a0.1, o + 8, n1)
            storeLanes(a1.0, o + ldy, n0); storeLanes(a1.1, o + ldy + 8, n1)
            storeLanes(a2.0, o + 2 * ldy, n0); storeLanes(a2.1, o + 2 * ldy + 8, n1)
            storeLanes(a3.0, o + 3 * ldy, n0); storeLanes(a3.1, o + 3 * ldy + 8, n1)
            r += 4
        }
    }

    /// The last, partial panel (outFeatures % 16 columns), row by row with partial loads and stores.
    private func applyLastPanel(x: UnsafePointer<Float>, ldx: Int, rows: Range<Int>, y: UnsafeMutablePointer<Float>, ldy: Int,
                                addend: UnsafePointer<Float>?, ldAddend: Int) {
        let K = inFeatures, c0 = outFeatures / 16 * 16, cols = outFeatures - c0
        let n0 = min(8, cols), n1 = max(0, cols - 8)
        let w = UnsafePointer(packed + c0 * K)
        for r in rows {
            var a0 = loadV(bias + c0), a1 = loadV(bias + c0 + 8)
            if let addend {
                let q = addend + r * ldAddend + c0
                a0 += loadLanes(q, n0); a1 += loadLanes(q + 8, n1)
            }
            let x0 = x + r * ldx
            for k in 0..<K {
                let v0 = V8(repeating: x0[k])
                a0 = a0.addingProduct(v0, loadV(w + k * 16))
                a1 = a1.addingProduct(v0, loadV(w + k * 16 + 8))
            }
            storeLanes(a0, y + r * ldy + c0, n0)
            storeLanes(a1, y + r * ldy + c0 + 8, n1)
        }
    }
}
