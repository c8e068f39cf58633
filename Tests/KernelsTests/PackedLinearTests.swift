import XCTest
@testable import Kernels

final class PackedLinearTests: XCTestCase {
    /// y = addend + bias + x·Wᵀ against a straightforward double loop, over row counts that hit
    /// the 4-row block and the single-row tail, widths with a partial last panel, and reordered
    /// inputs and outputs.
    func testMatchesReferenceLoop() {
        var rng: UInt64 = 99
        func rand() -> Float {
            rng = rng &* 6364136223846793005 &+ 1442695040888963407
            return Float(Int64(bitPattern: rng) >> 40) / Float(1 << 23)
        }
        for (rows, inF, outF, permuted, withAddend) in [(1, 8, 16, false, false), (4, 16, 48, false, true), (7, 33, 20, true, false),
                                                         (9, 64, 68, true, true), (16, 5, 256, false, true), (3, 128, 7, true, true)] {
            let w = (0..<(outF * inF)).map { _ in rand() }, bias = (0..<outF).map { _ in rand() }
            let ldx = inF + 3, ldy = outF + 5
            let x = (0..<(rows * ldx)).map { _ in rand() }
            let addend = (0..<(rows * ldy)).map { _ in rand() }
            let inIndex: (Int) -> Int = { (($0 * 7) + 3) % inF }, outIndex: (Int) -> Int = { outF - 1 - $0 }
            precondition(Set((0..<inF).map(inIndex)).count == inF || !permuted)
            let packed = w.withUnsafeBufferPointer { wp in
                bias.withUnsafeBufferPointer { bp in
                    PackedLinear(weight: wp.baseAddress!, bias: bp.baseAddress!, outFeatures: outF, inFeatures: inF,
                                 inputIndex: permuted && Set((0..<inF).map(inIndex)).count == inF ? inIndex : nil,
                                 outputIndex: permuted ? outIndex : nil)
                }
            }
            let usesIn = permuted && Set((0..<inF).map(inIndex)).count == inF
            // The addend aliases the output: y starts as the addend.
            var y = addend
            x.withUnsafeBufferPointer { xp in
                y.withUnsafeMutableBufferPointer { yp in
                    packed.apply(x: xp.baseAddress!, ldx: ldx, rows: rows, y: yp.baseAddress!, ldy: ldy,
                                 addend: withAddend ? UnsafePointer(yp.baseAddress!) : nil, ldAddend: ldy)
                }
            }
            for r in 0..<rows {
                for j in 0..<ldy {
                    if j >= outF {
                        XCTAssertEqual(y[r * ldy + j], addend[r * ldy + j], "padding column \(j) written")
                        continue
                    }
                    let o = permuted ? outIndex(j) : j
                    var s = Double(bias[o]) + (withAddend ? Double(addend[r * ldy + j]) : 0)
                    for k in 0..<inF { s += Double(x[r * ldx + k]) * Double(w[o * inF + (usesIn ? inIndex(k) : k)]) }
                    XCTAssertEqual(Double(y[r * ldy + j]), s, accuracy: 1e-4 * (1 + abs(s)), "rows \(rows) in \(inF) out \(outF): [\(r), \(j)]")
                }
            }
        }
    }
}
