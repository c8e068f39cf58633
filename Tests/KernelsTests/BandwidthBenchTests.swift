import XCTest
@testable import Kernels

/// Release-mode throughput of the memory-bound kernels against memcpy (prints; asserts nothing).
/// Run: WAVEMAMBA_BENCH=1 swift test -c release --filter KernelsTests.BandwidthBenchTests
/// GB/s counts bytes read + bytes written (memcpy of N bytes moves 2N).
final class BandwidthBenchTests: XCTestCase {
    func testBandwidthRatios() throws {
        guard ProcessInfo.processInfo.environment["WAVEMAMBA_BENCH"] != nil else { throw XCTSkip("set WAVEMAMBA_BENCH=1") }
        let pool = ThreadPool()
        let (B, L, C) = (8, 16000, 128)
        let n = B * L * C
        let bytes = n * 4
        let reps = 7
        var rng = TestRNG(1)
        let x = Buf(count: n), y = Buf(count: n), g = Buf(count: n), dx = Buf(count: n)
        Random.uniform(x.p, count: n, low: -3, high: 3, seed: 1, pool: pool)
        Random.uniform(g.p, count: n, low: -1, high: 1, seed: 2, pool: pool)
        let w = Buf(rng.floats(C * 4)), bias = Buf(rng.floats(C)), lw = Buf(rng.floats(C)), lb = Buf(rng.floats(C))
        let mean = Buf(count: B * L), rstd = Buf(count: B * L)

        let mem = Bandwidth.memcpyGBps(bytes: bytes, repeats: reps, pool: pool)
        print(String(format: "memcpy (%d threads, %.1f MB): %.2f GB/s", pool.threads, Double(bytes) / 1e6, mem))
        // Each kernel is timed alternately with a memcpy of the same size (best of 7 each), so
        // that the ratio survives the load drift of a shared machine.
        func report(_ name: String, _ moved: Int, _ body: () -> Void) {
            let (gbps, m) = Bandwidth.compareToMemcpy(bytesMoved: moved, memcpyBytes: bytes, rounds: reps, pool: pool, body)
            print(String(format: "%-34@ %7.2f GB/s  (memcpy %6.2f)  %5.1f %% of memcpy", name as NSString, gbps, m, 100 * gbps / m))
        }
        report("SiLU forward", 2 * bytes) { Activations.silu(x.c, y.p, count: n, pool: pool) }
        report("LayerNorm forward (C=128)", 2 * bytes) {
            LayerNorm.forward(x: x.c, weight: lw.c, bias: lb.c, y: y.p, mean: mean.p, rstd: rstd.p, rows: B * L, channels: C, pool: pool)
        }
        report("causal conv forward (K=4)", 2 * bytes) {
            CausalConv1d.forward(x: x.c, weight: w.c, bias: bias.c, y: y.p, batch: B, length: L, channels: C, width: 4, pool: pool)
        }
        report("causal conv forward + SiLU", 2 * bytes) {
            CausalConv1d.forward(x: x.c, weight: w.c, bias: bias.c, y: y.p, batch: B, length: L, channels: C, width: 4,
                                 silu: true, pool: pool)
        }
        // Secondary kernels, for the record.
        report("add", 3 * bytes) { Elementwise.add(x.c, g.c, y.p, count: n, pool: pool) }
        report("GELU forward", 2 * bytes) { Activations.gelu(x.c, y.p, count: n, pool: pool) }
        report("SiLU backward (accumulate)", 4 * bytes) { Activations.siluBackward(x: x.c, dy: g.c, dx: dx.p, count: n, pool: pool) }
        let lnScratch = DBuf(count: LayerNorm.backwardScratchCount(rows: B * L, channels: C))
        report("LayerNorm backward (accumulate)", 4 * bytes) {
            LayerNorm.backward(dy: g.c, x: x.c, weight: lw.c, mean: mean.c, rstd: rstd.c, dx: dx.p, dWeight: nil, dBias: nil,
                               rows: B * L, channels: C, scratch: lnScratch.p, pool: pool)
        }
        let cScratch = Buf(count: CausalConv1d.backwardScratchCount(batch: B, length: L, channels: C, width: 4))
        let dw = Buf(count: C * 4), db = Buf(count: C)
        report("causal conv backward + SiLU", 4 * bytes) {
            CausalConv1d.backward(dy: g.c, x: x.c, weight: w.c, bias: bias.c, dx: dx.p, dWeight: dw.p, dBias: db.p,
                                  batch: B, length: L, channels: C, width: 4, silu: true, scratch: cScratch.p, pool: pool)
        }
        report("RMSNorm forward", 2 * bytes) {
            RMSNorm.forward(x: x.c, weight: lw.c, y: y.p, rstd: rstd.p, rows: B * L, channels: C, pool: pool)
        }
        report("GLU forward (H=64)", bytes + bytes / 2) { GLU.forward(x: x.c, y: y.p, rows: B * L, half: 64, pool: pool) }
        report("sum of squares", bytes) { _ = Reductions.sumOfSquares(x.c, count: n, pool: pool) }
        report("column sums (C=128)", bytes) {
            Reductions.columnSums(x.c, rows: B * L, cols: C, out: db.p, pool: pool)
        }
        report("transpose (B, L, C) -> (B, C, L)", 2 * bytes) {
            Layout.transpose(src: x.c, dst: y.p, batch: B, rows: L, cols: C, pool: pool)
        }
        report("dropout forward p=0.1", 2 * bytes) { Dropout.forward(x: x.c, y: y.p, count: n, p: 0.1, seed: 3, pool: pool) }
        let m = Buf(count: n), v = Buf(count: n)
        report("AdamW update", 7 * bytes) {
            AdamW.update(params: y.p, grads: g.c, m: m.p, v: v.p, count: n, step: 10, config: AdamW.Config(), pool: pool)
        }
        // Cross-entropy over V = 256: (B·L/4) rows of 256 logits = n/4·… use n floats of logits.
        let rows = n / 256
        let t = IBuf((0..<rows).map { Int32($0 % 256) })
        let lse = Buf(count: rows)
        report("cross-entropy forward (V=256)", bytes) {
            _ = CrossEntropy.forward(logits: x.c, targets: t.c, rows: rows, classes: 256, losses: nil, logSumExp: lse.p, pool: pool)
        }
        report("cross-entropy backward (V=256)", 2 * bytes) {
            CrossEntropy.backward(logits: x.c, targets: t.c, logSumExp: lse.c, dLoss: nil, scale: 1 / Float(rows),
                                  dLogits: y.p, rows: rows, classes: 256, accumulate: false, pool: pool)
        }
    }
}
