import XCTest
@testable import Kernels

/// A heap buffer of floats for tests (kernels take raw pointers).
final class Buf {
    let p: UnsafeMutablePointer<Float>
    let n: Int
    init(count n: Int, value: Float = 0) {
        self.n = n
        p = .allocate(capacity: max(1, n))
        p.initialize(repeating: value, count: max(1, n))
    }
    convenience init(_ a: [Float]) {
        self.init(count: a.count)
        for i in 0..<a.count { p[i] = a[i] }
    }
    var c: UnsafePointer<Float> { UnsafePointer(p) }
    var a: [Float] { Array(UnsafeBufferPointer(start: p, count: n)) }
    var d: [Double] { a.map(Double.init) }
    func copy() -> Buf { Buf(a) }
    deinit { p.deallocate() }
}

final class IBuf {
    let p: UnsafeMutablePointer<Int32>
    let n: Int
    init(_ a: [Int32]) {
        n = a.count
        p = .allocate(capacity: max(1, n))
        for i in 0..<n { p[i] = a[i] }
    }
    var c: UnsafePointer<Int32> { UnsafePointer(p) }
    deinit { p.deallocate() }
}

final class DBuf {
    let p: UnsafeMutablePointer<Double>
    init(count n: Int) { p = .allocate(capacity: max(1, n)); p.initialize(repeating: .nan, count: max(1, n)) }
    deinit { p.deallocate() }
}

/// SplitMix64, for test data.
struct TestRNG {
    var s: UInt64
    init(_ seed: UInt64) { s = seed }
    mutating func next() -> UInt64 {
        s &+= 0x9E37_79B9_7F4A_7C15
        var z = s
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    mutating func uniform(_ lo: Float = -1, _ hi: Float = 1) -> Float {
        lo + (hi - lo) * Float(next() >> 40) * 0x1p-24
    }
    mutating func floats(_ n: Int, _ lo: Float = -1, _ hi: Float = 1) -> [Float] {
        (0..<n).map { _ in uniform(lo, hi) }
    }
    mutating func int(_ n: Int) -> Int { Int(next() % UInt64(n)) }
}

let pool1 = ThreadPool(threads: 1)
let pool2 = ThreadPool(threads: 2)
let pool3 = ThreadPool(threads: 3)

/// max_i |a_i − b_i| / max(|b_i|, floor).
func maxRelErr(_ a: [Float], _ b: [Double], floor: Double = 1e-3) -> Double {
    precondition(a.count == b.count, "count mismatch \(a.count) vs \(b.count)")
    var w = 0.0
    for i in 0..<a.count {
        let e = abs(Double(a[i]) - b[i]) / max(abs(b[i]), floor)
        if e.isNaN { return .infinity }
        w = max(w, e)
    }
    return w
}

/// max_i |a_i − b_i| / max(max_i |b_i|, floor) (norm-wise relative error; 0-safe).
func normRelErr(_ a: [Float], _ b: [Double], floor: Double = 1e-30) -> Double {
    precondition(a.count == b.count, "count mismatch \(a.count) vs \(b.count)")
    var e = 0.0, m = floor
    for i in 0..<a.count {
        let d = abs(Double(a[i]) - b[i])
        if d.isNaN { return .infinity }
        e = max(e, d); m = max(m, abs(b[i]))
    }
    return e / m
}

/// Central finite differences of a double-precision scalar loss.
func fdGradient(_ x: [Double], eps: Double = 1e-5, _ loss: ([Double]) -> Double) -> [Double] {
    var g = [Double](repeating: 0, count: x.count)
    var xp = x
    for i in 0..<x.count {
        let h = eps * max(1, abs(x[i]))
        xp[i] = x[i] + h
        let lp = loss(xp)
        xp[i] = x[i] - h
        let lm = loss(xp)
        xp[i] = x[i]
        g[i] = (lp - lm) / (2 * h)
    }
    return g
}

func dotD(_ a: [Double], _ b: [Double]) -> Double {
    var s = 0.0
    for i in 0..<a.count { s += a[i] * b[i] }
    return s
}

func bitsEqual(_ a: [Float], _ b: [Float]) -> Bool {
    a.count == b.count && zip(a, b).allSatisfy { $0.bitPattern == $1.bitPattern }
}


/// max_i |a_i − b_i| / s_i for per-element scales s (e.g. Σ|terms| of a sum).
func scaledErr(_ a: [Float], _ b: [Double], _ s: [Double]) -> Double {
    var w = 0.0
    for i in 0..<a.count {
        let e = abs(Double(a[i]) - b[i]) / max(s[i], 1e-30)
        if e.isNaN { return .infinity }
        w = max(w, e)
    }
    return w
}
