import XCTest
@testable import Kernels

/// Kernels switch to streaming (non-temporal) stores for outputs of at least
/// `streamingStoreMinCount` floats. The streamed path must give bit-identical results to the
/// plain path, including misaligned heads and partial tails, for any thread count.
final class StreamingStoreTests: XCTestCase {
    /// A 64-byte-aligned float buffer (like the engine's allocator).
    final class Aligned {
        let p: UnsafeMutablePointer<Float>
        let n: Int
        init(_ n: Int, value: Float = .nan) {
            self.n = n
            p = UnsafeMutableRawPointer.allocate(byteCount: n * 4, alignment: 64).bindMemory(to: Float.self, capacity: n)
            p.initialize(repeating: value, count: n)
        }
        var c: UnsafePointer<Float> { UnsafePointer(p) }
        deinit { p.deallocate() }
    }

    /// Runs `body(out, lo, count)` once over the whole (streamed) range and once in pieces of
    /// `piece` elements, below the threshold (plain stores), and compares bitwise.
    private func assertStreamedMatchesPlain(n: Int, offset: Int, piece: Int = 100_003,
                                            _ body: (UnsafeMutablePointer<Float>, Int, Int) -> Void,
                                            file: StaticString = #filePath, line: UInt = #line) {
        let streamed = Aligned(n + offset), plain = Aligned(n + offset)
        XCTAssertGreaterThanOrEqual(n, streamingStoreMinCount)
        body(streamed.p + offset, 0, n)
        var lo = 0
        while lo < n {
            let c = min(n - lo, piece)
            body(plain.p + offset + lo, lo, c)
            lo += c
        }
        for i in 0..<n where streamed.p[offset + i].bitPattern != plain.p[offset + i].bitPattern {
            XCTFail("element \(i): streamed \(streamed.p[offset + i]) vs plain \(plain.p[offset + i])", file: file, line: line)
            return
        }
    }

    func testElementwiseAndActivationsStreamBitIdentically() {
        let n = streamingStoreMinCount + 37
        var rng = TestRNG(71)
        let x = Aligned(n + 16), y = Aligned(n + 16)
        for i in 0..<(n + 16) { x.p[i] = rng.uniform(-12, 12); y.p[i] = rng.uniform(-3, 3) }
        for (offset, pool) in [(0, pool2), (3, pool3), (13, pool1)] {
            assertStreamedMatchesPlain(n: n, offset: offset) { out, lo, c in
                Activations.silu(x.c + 5 + lo, out, count: c, pool: pool)
            }
            assertStreamedMatchesPlain(n: n, offset: offset) { out, lo, c in
                Activations.softplus(x.c + lo, out, count: c, pool: pool)
            }
            assertStreamedMatchesPlain(n: n, offset: offset) { out, lo, c in
                Activations.siluBackward(x: x.c + lo, dy: y.c + 1 + lo, dx: out, count: c, accumulate: false, pool: pool)
            }
            assertStreamedMatchesPlain(n: n, offset: offset) { out, lo, c in
                Elementwise.add(x.c + lo, y.c + 2 + lo, out, count: c, pool: pool)
            }
        }
        // Accumulating into a large output never streams and still adds.
        let acc = Aligned(n, value: 1)
        Elementwise.mul(x.c, y.c, acc.p, count: n, accumulate: true, pool: pool2)
        for i in stride(from: 0, to: n, by: 9973) { XCTAssertEqual(acc.p[i], 1 + x.p[i] * y.p[i]) }
    }

    func testNormsStreamBitIdentically() {
        let C = 64, rows = streamingStoreMinCount / C + 5
        var rng = TestRNG(72)
        let x = Aligned(rows * C), w = Aligned(C), b = Aligned(C)
        for i in 0..<(rows * C) { x.p[i] = rng.uniform(-4, 4) + 2 }
        for c in 0..<C { w.p[c] = rng.uniform(0.5, 1.5); b.p[c] = rng.uniform(-1, 1) }
        let mean = Aligned(rows), rstd = Aligned(rows), mean2 = Aligned(rows), rstd2 = Aligned(rows)
        for pool in [pool2, pool3] {
            assertStreamedMatchesPlain(n: rows * C, offset: 0, piece: C * 1000) { out, lo, c in
                let r0 = lo / C
                LayerNorm.forward(x: x.c + lo, weight: w.c, bias: b.c, y: out, mean: (lo == 0 && c == rows * C ? mean.p : mean2.p) + r0,
                                  rstd: (lo == 0 && c == rows * C ? rstd.p : rstd2.p) + r0, rows: c / C, channels: C, pool: pool)
            }
            for r in 0..<rows { XCTAssertEqual(mean.p[r], mean2.p[r]); XCTAssertEqual(rstd.p[r], rstd2.p[r]) }
            assertStreamedMatchesPlain(n: rows * C, offset: 0, piece: C * 1000) { out, lo, c in
                RMSNorm.forward(x: x.c + lo, weight: w.c, y: out, rstd: nil, rows: c / C, channels: C, pool: pool)
            }
        }
    }

    func testCrossEntropyBackwardStreamsBitIdentically() {
        let V = 256, rows = streamingStoreMinCount / V + 3
        var rng = TestRNG(73)
        let logits = Aligned(rows * V)
        for i in 0..<(rows * V) { logits.p[i] = rng.uniform(-6, 6) }
        let targets = IBuf((0..<rows).map { $0 % 97 == 5 ? -1 : Int32(rng.int(V)) })
        let lse = Aligned(rows)
        CrossEntropy.forward(logits: logits.c, targets: targets.c, rows: rows, classes: V, losses: nil, logSumExp: lse.p, pool: pool2)
        assertStreamedMatchesPlain(n: rows * V, offset: 0, piece: V * 300) { out, lo, c in
            let r0 = lo / V
            CrossEntropy.backward(logits: logits.c + lo, targets: targets.c + r0, logSumExp: lse.c + r0, dLoss: nil, scale: 0.5,
                                  dLogits: out, rows: c / V, classes: V, accumulate: false, pool: pool2)
        }
    }
}
