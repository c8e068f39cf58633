import XCTest
import Foundation
@testable import Kernels

final class RandomDropoutTests: XCTestCase {
    func testPhiloxKnownAnswers() {
        // Random123 kat_vectors, philox4x32_10.
        let a = Random.philox(counter: (0, 0, 0, 0), key: (0, 0))
        XCTAssertEqual([a.0, a.1, a.2, a.3], [0x6627_e8d5, 0xe169_c58d, 0xbc57_ac4c, 0x9b00_dbd8])
        let b = Random.philox(counter: (.max, .max, .max, .max), key: (.max, .max))
        XCTAssertEqual([b.0, b.1, b.2, b.3], [0x408f_276d, 0x41c8_3b0e, 0xa20b_c7c6, 0x6d54_51fd])
        let c = Random.philox(counter: (0x243f_6a88, 0x85a3_08d3, 0x1319_8a2e, 0x0370_7344), key: (0xa409_3822, 0x299f_31d0))
        XCTAssertEqual([c.0, c.1, c.2, c.3], [0xd16c_fe09, 0x94fd_cceb, 0x5001_e420, 0x2412_6ea1])
    }

    func testUniformAndOffsets() {
        let n = 100_003
        let u = Buf(count: n)
        Random.uniform(u.p, count: n, low: -2, high: 3, seed: 42, pool: pool2)
        let a = u.a
        XCTAssertTrue(a.allSatisfy { $0 >= -2 && $0 < 3 })
        let mean = a.reduce(0.0) { $0 + Double($1) } / Double(n)
        XCTAssertEqual(mean, 0.5, accuracy: 0.03)
        // Matches the scalar stream definition.
        for i in [0, 1, 2, 3, 4, 31, 32, 33, 99_999] {
            let w = Random.word(seed: 42, index: UInt64(i))
            XCTAssertEqual(a[i], -2 + 5 * Float(w >> 8) * 0x1p-24)
        }
        // Thread-count independence and offset consistency: [0, n) = [0, 37) ++ [37, n) at offset 37.
        let u1 = Buf(count: n)
        Random.uniform(u1.p, count: n, low: -2, high: 3, seed: 42, pool: pool3)
        XCTAssertTrue(bitsEqual(u1.a, a))
        let head = Buf(count: 37), tail = Buf(count: n - 37)
        Random.uniform(head.p, count: 37, low: -2, high: 3, seed: 42, pool: pool2)
        Random.uniform(tail.p, count: n - 37, low: -2, high: 3, seed: 42, offset: 37, pool: pool2)
        XCTAssertTrue(bitsEqual(head.a + tail.a, a))
        // Another seed differs.
        let v = Buf(count: 64)
        Random.uniform(v.p, count: 64, seed: 43, pool: pool1)
        XCTAssertFalse(bitsEqual(v.a, Array(u1.a[0..<64])))
    }

    func testNormal() {
        let n = 200_001
        let z = Buf(count: n)
        Random.normal(z.p, count: n, mean: 1, std: 2, seed: 7, pool: pool2)
        let a = z.a.map(Double.init)
        let m = a.reduce(0, +) / Double(n)
        let s = (a.reduce(0) { $0 + ($1 - m) * ($1 - m) } / Double(n)).squareRoot()
        print("normal(1, 2): sample mean \(m), std \(s)")
        XCTAssertEqual(m, 1, accuracy: 0.02)
        XCTAssertEqual(s, 2, accuracy: 0.02)
        // Fraction within one std ≈ 0.6827.
        let within = Double(a.filter { abs($0 - 1) < 2 }.count) / Double(n)
        XCTAssertEqual(within, 0.6827, accuracy: 0.005)
        let z3 = Buf(count: n)
        Random.normal(z3.p, count: n, mean: 1, std: 2, seed: 7, pool: pool3)
        XCTAssertTrue(bitsEqual(z3.a, z.a))
        let tail = Buf(count: n - 5)
        Random.normal(tail.p, count: n - 5, mean: 1, std: 2, seed: 7, offset: 5, pool: pool2)
        XCTAssertTrue(bitsEqual(tail.a, Array(z.a[5...])))
    }

    func testDropout() {
        var rng = TestRNG(90)
        let n = 100_037
        let x = rng.floats(n)
        let xb = Buf(x)
        for p: Float in [0, 0.1, 0.5, 0.9, 1] {
            let y = Buf(count: n, value: .nan)
            Dropout.forward(x: xb.c, y: y.p, count: n, p: p, seed: 1234, offset: 77, pool: pool2)
            let mask = Buf(count: n)
            Dropout.mask(mask.p, count: n, p: p, seed: 1234, offset: 77, pool: pool1)
            let dropped = Double(mask.a.filter { $0 == 0 }.count) / Double(n)
            print("dropout p=\(p): dropped fraction \(dropped)")
            XCTAssertEqual(dropped, Double(p), accuracy: 0.01)
            let scale: Float = p < 1 ? 1 / (1 - p) : 0
            let ya = y.a, ma = mask.a
            XCTAssertTrue((0..<n).allSatisfy { ya[$0] == (ma[$0] != 0 ? x[$0] * scale : 0) })
            // Same seed ⇒ same output for any thread count.
            let y3 = Buf(count: n)
            Dropout.forward(x: xb.c, y: y3.p, count: n, p: p, seed: 1234, offset: 77, pool: pool3)
            XCTAssertTrue(bitsEqual(y3.a, ya))
            // Backward regenerates the same mask: dx = 1 + mask·dy.
            let dx = Buf(count: n, value: 1)
            Dropout.backward(dy: xb.c, dx: dx.p, count: n, p: p, seed: 1234, offset: 77, pool: pool2)
            let dxa = dx.a
            XCTAssertTrue((0..<n).allSatisfy { dxa[$0] == 1 + ya[$0] })
            let dx2 = Buf(count: n, value: .nan)
            Dropout.backward(dy: xb.c, dx: dx2.p, count: n, p: p, seed: 1234, offset: 77, accumulate: false, pool: pool1)
            XCTAssertTrue(bitsEqual(dx2.a, ya))
        }
        // A different seed gives a different mask.
        let m1 = Buf(count: 1000), m2 = Buf(count: 1000)
        Dropout.mask(m1.p, count: 1000, p: 0.5, seed: 1, pool: pool1)
        Dropout.mask(m2.p, count: 1000, p: 0.5, seed: 2, pool: pool1)
        XCTAssertFalse(bitsEqual(m1.a, m2.a))
    }
}
