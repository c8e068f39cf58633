// Internal SIMD plumbing shared by the kernels: unaligned 16-lane loads/stores, partial
// (tail) loads/stores, horizontal sums, and generic element-wise drivers.
//
// The drivers are generic over small op structs (not closures): inside the module (whole-
// module optimisation in release) they are specialised per op, so the op's body is inlined
// into the vector loop. Tails (< 16 elements) go through the same op on a zero-padded
// vector, so every element sees exactly the same arithmetic.

import Synchronization
#if arch(x86_64)
import _Builtin_intrinsics.intel
#endif

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

/// Loads `n` < 16 floats; the other lanes are `fill`. (A memcpy: compact code for tails; a
/// lane-by-lane loop bloats the callers enough that the optimiser stops inlining their math.)
@inline(__always)
func loadPartial(_ p: UnsafePointer<Float>, _ n: Int, fill: Float = 0) -> F16 {
    var v = F16(repeating: fill)
    withUnsafeMutableBytes(of: &v) { $0.baseAddress!.copyMemory(from: p, byteCount: n * 4) }
    return v
}

@inline(__always)
func storePartial(_ v: F16, _ p: UnsafeMutablePointer<Float>, _ n: Int) {
    withUnsafeBytes(of: v) { UnsafeMutableRawPointer(p).copyMemory(from: $0.baseAddress!, byteCount: n * 4) }
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
/// One call site of `op.apply` (full vectors and the tail share it) keeps the loop small
/// enough for the math to be inlined. Large overwrites stream the 64-byte-aligned middle of
/// each range (see `streamingStoreMinCount`); the head and tail go through the plain loop.
@inline(__always)
func mapUnary<Op: UnaryMap>(_ op: Op, _ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>,
                            _ n: Int, accumulate: Bool = false, _ pool: ThreadPool) {
    let stream = !accumulate && n >= streamingStoreMinCount
    pool.forRanges(n, grain: elementwiseGrain) { r in
        let end = r.upperBound
        let (sLo, sHi) = stream ? streamedPart(y, r) : (end, end)
        if sLo < sHi { streamUnary(op, x, y, sLo, sHi) }
        var i = r.lowerBound
        while i < end {
            if i == sLo { i = sHi; continue }
            let m = min(16, (i < sLo ? sLo : end) - i)
            let full = m == 16
            var v = op.apply(full ? load16(x + i) : loadPartial(x + i, m))
            if accumulate { v += full ? load16(y + i) : loadPartial(y + i, m) }
            if full { store16(v, y + i) } else { storePartial(v, y + i, m) }
            i += m
        }
    }
}

/// y[lo..<hi] = op(x[lo..<hi]) with streaming stores (y + lo 64-byte aligned, hi − lo a
/// multiple of 16). Out of line and free of stack buffers: a function with an address-taken
/// local gets Swift's stack protector, and LLVM then refuses to inline the vmovntps intrinsic.
@inline(never)
func streamUnary<Op: UnaryMap>(_ op: Op, _ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, _ lo: Int, _ hi: Int) {
    var i = lo
    while i < hi { streamStore16(op.apply(load16(x + i)), y + i); i += 16 }
    storeFence()
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
    let stream = !accumulate && n >= streamingStoreMinCount
    pool.forRanges(n, grain: elementwiseGrain) { r in
        let end = r.upperBound
        let (sLo, sHi) = stream ? streamedPart(out, r) : (end, end)
        if sLo < sHi { streamBinary(op, a, b, out, sLo, sHi) }
        var i = r.lowerBound
        while i < end {
            if i == sLo { i = sHi; continue }
            let m = min(16, (i < sLo ? sLo : end) - i)
            let full = m == 16
            var v = op.apply(full ? load16(a + i) : loadPartial(a + i, m), full ? load16(b + i) : loadPartial(b + i, m))
            if accumulate { v += full ? load16(out + i) : loadPartial(out + i, m) }
            if full { store16(v, out + i) } else { storePartial(v, out + i, m) }
            i += m
        }
    }
}

/// out[lo..<hi] = op(a, b) with streaming stores (see `streamUnary`).
@inline(never)
func streamBinary<Op: BinaryMap>(_ op: Op, _ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>,
                                 _ out: UnsafeMutablePointer<Float>, _ lo: Int, _ hi: Int) {
    var i = lo
    while i < hi { streamStore16(op.apply(load16(a + i), load16(b + i)), out + i); i += 16 }
    storeFence()
}

// MARK: - Streaming (non-temporal) stores
//
// An output far larger than the caches is evicted before anyone reads it again, so writing it
// through the cache costs a read-for-ownership of every line (a third more DRAM traffic for a
// one-in-one-out kernel). Non-temporal stores (vmovntps) write whole lines without reading
// them. Below the threshold the output may still be in cache for the next kernel: plain stores.

/// Smallest output (floats) written with streaming stores: 8 MiB, the dev box's L3.
let streamingStoreMinCount = 1 << 21

/// The part of range r whose output (from `out`) is streamed: from the first 64-byte boundary,
/// a whole number of 16-float vectors. Empty (lo == hi) when the range is too short.
@inline(__always)
func streamedPart(_ out: UnsafeMutablePointer<Float>, _ r: Range<Int>) -> (Int, Int) {
    let head = ((64 - Int(bitPattern: UInt(bitPattern: out + r.lowerBound)) & 63) & 63) / 4
    let lo = min(r.upperBound, r.lowerBound + head)
    return (lo, lo + (r.upperBound - lo) / 16 * 16)
}

/// Non-temporal store of 16 floats to a 32-byte-aligned p.
@inline(__always)
func streamStore16(_ v: F16, _ p: UnsafeMutablePointer<Float>) {
    #if arch(x86_64)
    _mm256_stream_ps(p, v.lowHalf)
    _mm256_stream_ps(p + 8, v.highHalf)
    #else
    store16(v, p)
    #endif
}

/// Orders this thread's streaming stores before its later memory operations (a full fence,
/// mfence: clang's _mm_sfence is not importable), so the pool's join publishes them.
@inline(__always)
func storeFence() {
    atomicMemoryFence(ordering: .sequentiallyConsistent)
}
