// Internal SIMD plumbing shared by the kernels: unaligned 16-lane loads/stores, partial
// (tail) loads/stores, horizontal sums, and generic element-wise drivers.
//
// The drivers are generic over small op structs (not closures): inside the module (whole-
// module optimisation in release) they are specialised per op, so the op's body is inlined
// into the vector loop. Tails (< 16 elements) go through the same op on a zero-padded
// vector, so every element sees exactly the same arithmetic.

typealias F16 = SIMD16<Float>

/// Elements per task below which an element-wise kernel stays on one thread.
let elementwiseGrain = 32768

@inline(__always)
func load16(_ p: UnsafePointer<Float>) -> F16 {
    UnsafeRawPointer(p).loadUnaligned(as: F16.self)
}

@inline(__always)
func load16(_ p: UnsafeMutablePointer<Float>) -> F16 {
    UnsafeRawPointer(p).loadUnaligned(as: F16.self)
}

@inline(__always)
func store16(_ v: F16, _ p: UnsafeMutablePointer<Float>) {
    UnsafeMutableRawPointer(p).storeBytes(of: v, as: F16.self)
}

/// Loads `n` < 16 floats; the other lanes are `fill`.
@inline(__always)
func loadPartial(_ p: UnsafePointer<Float>, _ n: Int, fill: Float = 0) -> F16 {
    var v = F16(repeating: fill)
    for i in 0..<n { v[i] = p[i] }
    return v
}

@inline(__always)
func storePartial(_ v: F16, _ p: UnsafeMutablePointer<Float>, _ n: Int) {
    for i in 0..<n { p[i] = v[i] }
}

/// Horizontal sum in a fixed tree order (8+8, 4+4, 2+2, 1+1).
@inline(__always)
func hsum(_ v: F16) -> Float {
    let a = v.lowHalf + v.highHalf
    let b = a.lowHalf + a.highHalf
    let c = b.lowHalf + b.highHalf
    return c[0] + c[1]
}

/// Horizontal max.
@inline(__always)
func hmax(_ v: F16) -> Float {
    let a = simdMax(v.lowHalf, v.highHalf)
    let b = simdMax(a.lowHalf, a.highHalf)
    return max(max(b[0], b[1]), max(b[2], b[3]))
}

/// Sum of 16 lanes into double (for blocked summation).
@inline(__always)
func hsumDouble(_ v: F16) -> Double {
    Double(hsum(v))
}

// MARK: - Generic element-wise drivers

/// y = f(x), lane-wise.
protocol UnaryMap {
    func apply(_ x: F16) -> F16
}

/// out = f(a, b), lane-wise.
protocol BinaryMap {
    func apply(_ a: F16, _ b: F16) -> F16
}

/// y[i] = op(x[i]) (overwrite), or y[i] += op(x[i]) when `accumulate`.
@inline(__always)
func mapUnary<Op: UnaryMap>(_ op: Op, _ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>,
                            _ n: Int, accumulate: Bool = false, _ pool: ThreadPool) {
    pool.forRanges(n, grain: elementwiseGrain) { r in
        var i = r.lowerBound
        let end = r.upperBound
        if accumulate {
            while i + 16 <= end { store16(load16(y + i) + op.apply(load16(x + i)), y + i); i += 16 }
            if i < end {
                let m = end - i
                storePartial(loadPartial(y + i, m) + op.apply(loadPartial(x + i, m)), y + i, m)
            }
        } else {
            while i + 16 <= end { store16(op.apply(load16(x + i)), y + i); i += 16 }
            if i < end {
                let m = end - i
                storePartial(op.apply(loadPartial(x + i, m)), y + i, m)
            }
        }
    }
}

@inline(__always)
func loadPartial(_ p: UnsafeMutablePointer<Float>, _ n: Int, fill: Float = 0) -> F16 {
    loadPartial(UnsafePointer(p), n, fill: fill)
}

/// out[i] = op(a[i], b[i]) (overwrite), or out[i] += op(a[i], b[i]) when `accumulate`.
@inline(__always)
func mapBinary<Op: BinaryMap>(_ op: Op, _ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>,
                              _ out: UnsafeMutablePointer<Float>, _ n: Int, accumulate: Bool = false,
                              _ pool: ThreadPool) {
    pool.forRanges(n, grain: elementwiseGrain) { r in
        var i = r.lowerBound
        let end = r.upperBound
        if accumulate {
            while i + 16 <= end {
                store16(load16(out + i) + op.apply(load16(a + i), load16(b + i)), out + i); i += 16
            }
            if i < end {
                let m = end - i
                storePartial(loadPartial(out + i, m) + op.apply(loadPartial(a + i, m), loadPartial(b + i, m)), out + i, m)
            }
        } else {
            while i + 16 <= end { store16(op.apply(load16(a + i), load16(b + i)), out + i); i += 16 }
            if i < end {
                let m = end - i
                storePartial(op.apply(loadPartial(a + i, m), loadPartial(b + i, m)), out + i, m)
            }
        }
    }
}
