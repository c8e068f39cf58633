import Foundation
import XCTest
@testable import Kernels

/// Deterministic pseudo-random numbers (SplitMix64).
struct ScanRNG {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    mutating func uniform(_ lo: Double, _ hi: Double) -> Double {
        lo + (hi - lo) * Double(next() >> 11) / Double(1 << 53)
    }
    mutating func array(_ n: Int, _ lo: Double, _ hi: Double) -> [Double] {
        (0..<n).map { _ in uniform(lo, hi) }
    }
}

/// ‖a − b‖ / ‖b‖ (or ‖a − b‖ when b is 0).
func relativeError<A: BinaryFloatingPoint, B: BinaryFloatingPoint>(_ a: [A], _ b: [B]) -> Double {
    precondition(a.count == b.count, "count mismatch \(a.count) vs \(b.count)")
    var num = 0.0, den = 0.0
    for i in 0..<a.count {
        let x = Double(a[i]), y = Double(b[i])
        num += (x - y) * (x - y); den += y * y
    }
    if num.isNaN { return .infinity }
    return den == 0 ? num.squareRoot() : (num / den).squareRoot()
}

/// One random test problem in our layout, in Double (rounded to Float values so that the
/// Float kernel and the Double reference see the same inputs).
struct ScanProblem {
    var shape: SelectiveScanShape
    var ref: SelectiveScanReference.Inputs
    var dOut: [Double]

    init(_ shape: SelectiveScanShape, hasD: Bool, hasZ: Bool, hasBias: Bool, seed: UInt64) {
        var r = ScanRNG(seed: seed)
        let s = shape
        let nTok = s.batch * s.length * s.channels, nBC = s.batch * s.length * s.stateWidth
        func f(_ a: [Double]) -> [Double] { a.map { Double(Float($0)) } }
        let u = f(r.array(nTok, -1, 1))
        let delta = f(r.array(nTok, -4, 1))
        let z = hasZ ? f(r.array(nTok, -2, 2)) : nil
        let B = f(r.array(nBC, -1, 1)), C = f(r.array(nBC, -1, 1))
        let A: [Double], AImag: [Double]?
        if s.isComplex {
            A = f(r.array(s.channels * s.dState, -1, -0.2))
            AImag = f(r.array(s.channels * s.dState, 0, 10))
        } else {
            A = f(r.array(s.channels * s.dState, -4, -0.1))
            AImag = nil
        }
        let D = hasD ? f(r.array(s.channels, -1, 1)) : nil
        let bias = hasBias ? f(r.array(s.channels, -1, 0.5)) : nil
        self.shape = shape
        ref = .init(shape: shape, u: u, delta: delta, z: z, B: B, C: C, A: A, AImag: AImag, D: D, deltaBias: bias)
        dOut = f(r.array(nTok, -1, 1))
    }
}

/// Results of the fused kernels, in contiguous layout.
struct FusedResult {
    var out: [Float], lastState: [Float]
    var du: [Float], dDelta: [Float], dz: [Float]?, dB: [Float], dC: [Float]
    var dA: [Float], dAImag: [Float]?, dD: [Float], dDeltaBias: [Float]
}

/// An owned float buffer with a stable pointer (freed on deinit).
final class FloatBuffer {
    let count: Int
    let p: UnsafeMutablePointer<Float>
    init(_ count: Int, fill: Float = .nan) {
        self.count = count
        p = .allocate(capacity: max(1, count))
        p.initialize(repeating: fill, count: max(1, count))
    }
    convenience init(_ values: [Float]) {
        self.init(values.count)
        for i in 0..<values.count { p[i] = values[i] }
    }
    deinit { p.deallocate() }
    var array: [Float] { Array(UnsafeBufferPointer(start: p, count: count)) }
}

/// A column slice of a wider matrix: `rows` rows of `width` floats at row stride width + pad,
/// padding filled with `fill`.
final class Strided {
    let width: Int, stride: Int, rows: Int
    let buf: FloatBuffer
    var p: UnsafeMutablePointer<Float> { buf.p }
    init(rows: Int, width: Int, pad: Int, fill: Float) {
        self.width = width; stride = width + pad; self.rows = rows
        buf = FloatBuffer(rows * stride, fill: fill)
    }
    convenience init(_ values: [Double], width: Int, pad: Int, fill: Float = .nan) {
        self.init(rows: width == 0 ? 0 : values.count / width, width: width, pad: pad, fill: fill)
        for r in 0..<rows { for c in 0..<width { p[r * stride + c] = Float(values[r * width + c]) } }
    }
    var contiguous: [Float] {
        var a = [Float](); a.reserveCapacity(rows * width)
        for r in 0..<rows { for c in 0..<width { a.append(p[r * stride + c]) } }
        return a
    }
    /// True if no padding element differs (bitwise) from `fill`.
    func paddingIntact(_ fill: Float) -> Bool {
        for r in 0..<rows { for c in width..<stride where p[r * stride + c].bitPattern != fill.bitPattern { return false } }
        return true
    }
}

/// Strided float copies of a problem's inputs and the `SelectiveScanInputs` pointing at them.
final class FusedInputs {
    let u, delta, B, C: Strided
    let z: Strided?
    let A: FloatBuffer, AImag: FloatBuffer?, D: FloatBuffer?, bias: FloatBuffer?
    let inputs: SelectiveScanInputs
    init(_ x: SelectiveScanReference.Inputs, pads: Bool = true) {
        let s = x.shape, D = s.channels, W = s.stateWidth
        u = Strided(x.u, width: D, pad: pads ? 3 : 0); delta = Strided(x.delta, width: D, pad: pads ? 5 : 0)
        z = x.z.map { Strided($0, width: D, pad: pads ? 2 : 0) }
        B = Strided(x.B, width: W, pad: pads ? 7 : 0); C = Strided(x.C, width: W, pad: pads ? 1 : 0)
        A = FloatBuffer(x.A.map(Float.init)); AImag = x.AImag.map { FloatBuffer($0.map(Float.init)) }
        self.D = x.D.map { FloatBuffer($0.map(Float.init)) }
        bias = x.deltaBias.map { FloatBuffer($0.map(Float.init)) }
        inputs = SelectiveScanInputs(shape: s, u: u.p, strideU: u.stride, delta: self.delta.p, strideDelta: self.delta.stride,
                                     z: z.map { UnsafePointer($0.p) }, strideZ: z?.stride,
                                     B: B.p, strideB: B.stride, C: C.p, strideC: C.stride,
                                     A: A.p, AImag: AImag.map { UnsafePointer($0.p) },
                                     D: self.D.map { UnsafePointer($0.p) }, deltaBias: bias.map { UnsafePointer($0.p) })
    }
}

/// Runs the fused forward (+ backward if `backward`) on strided copies of the problem.
/// Checks that padding columns of outputs are untouched.
func runFused(_ p: ScanProblem, chunk: Int, pool: ThreadPool, backward: Bool = true,
              file: StaticString = #filePath, line: UInt = #line) -> FusedResult {
    let s = p.shape, x = p.ref
    let D = s.channels, W = s.stateWidth
    let sentinel = Float(-12345.5)
    let fin = FusedInputs(x)
    let inputs = fin.inputs
    let dOut = Strided(p.dOut, width: D, pad: 4)
    let rowsTok = s.batch * s.length
    let out = Strided(rows: rowsTok, width: D, pad: 2, fill: sentinel)
    let last = FloatBuffer(s.batch * D * W)
    let ck = FloatBuffer(SelectiveScan.checkpointCount(s, chunk: chunk))
    // Multi-threaded runs use a caller workspace (NaN-filled: must be fully written before
    // use), single-threaded ones the kernel's own heap block.
    let fws = FloatBuffer(pool.threads > 1 ? SelectiveScan.forwardWorkspaceCount(s, threads: pool.threads) : 0)
    SelectiveScan.forward(inputs, out: out.p, strideOut: out.stride, lastState: last.p,
                          checkpoints: ck.p, chunk: chunk, workspace: pool.threads > 1 ? fws.p : nil, pool: pool)
    XCTAssertTrue(out.paddingIntact(sentinel), "forward wrote outside its columns", file: file, line: line)
    var r = FusedResult(out: out.contiguous, lastState: last.array, du: [], dDelta: [], dz: nil, dB: [], dC: [],
                        dA: [], dAImag: nil, dD: [], dDeltaBias: [])
    guard backward else { return r }
    let du = Strided(rows: rowsTok, width: D, pad: 1, fill: sentinel)
    let dDelta = Strided(rows: rowsTok, width: D, pad: 2, fill: sentinel)
    let dz = Strided(rows: rowsTok, width: D, pad: 3, fill: sentinel)
    let dB = Strided(rows: rowsTok, width: W, pad: 2, fill: sentinel)
    let dC = Strided(rows: rowsTok, width: W, pad: 5, fill: sentinel)
    let dA = FloatBuffer(D * s.dState), dAI = FloatBuffer(D * s.dState)
    let dD = FloatBuffer(D), dbias = FloatBuffer(D)
    let ws = FloatBuffer(SelectiveScan.backwardWorkspaceCount(s, chunk: chunk, threads: pool.threads))
    let grads = SelectiveScanGradients(shape: s, du: du.p, strideDU: du.stride, dDelta: dDelta.p, strideDDelta: dDelta.stride,
                                       dz: x.z == nil ? nil : dz.p, strideDZ: dz.stride,
                                       dB: dB.p, strideDB: dB.stride, dC: dC.p, strideDC: dC.stride,
                                       dA: dA.p, dAImag: s.isComplex ? dAI.p : nil, dD: dD.p, dDeltaBias: dbias.p)
    SelectiveScan.backward(inputs, dOut: dOut.p, strideDOut: dOut.stride, checkpoints: ck.p,
                           chunk: chunk, grads: grads, workspace: ws.p, pool: pool)
    for (name, m) in [("du", du), ("dDelta", dDelta), ("dB", dB), ("dC", dC)] + (x.z == nil ? [] : [("dz", dz)]) {
        XCTAssertTrue(m.paddingIntact(sentinel), "backward wrote outside the columns of \(name)", file: file, line: line)
    }
    r.du = du.contiguous; r.dDelta = dDelta.contiguous; r.dz = x.z == nil ? nil : dz.contiguous
    r.dB = dB.contiguous; r.dC = dC.contiguous; r.dA = dA.array; r.dAImag = s.isComplex ? dAI.array : nil
    r.dD = dD.array; r.dDeltaBias = dbias.array
    return r
}

extension ScanProblem {
    init(shape: SelectiveScanShape, ref: SelectiveScanReference.Inputs, dOut: [Double]) {
        self.shape = shape; self.ref = ref; self.dOut = dOut
    }
}
