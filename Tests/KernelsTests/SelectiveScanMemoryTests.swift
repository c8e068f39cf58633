import XCTest
@testable import Kernels

/// The backward's extra memory (state checkpoints + workspace) stays a small fraction of the
/// op's inputs and outputs at every shape and thread count: the fused scan never holds the
/// (batch × L × D × N) states, and narrow layers don't pay for many channel slices.
final class SelectiveScanMemoryTests: XCTestCase {
    func testBackwardExtraMemoryWithinHalfOfInputsAndOutputs() {
        // Model-sized layers (D ≥ 64, L ≥ 1024). Shorter or narrower ones are dominated by the fixed per-task
        // scratch (a few chunk × W blocks, well under 1 MB) and are left out.
        let shapes: [(Int, Int, Int, Int)] = [(1, 64, 4096, 16), (4, 256, 16384, 16), (2, 128, 1024, 16), (1, 64, 2048, 16),
                                              (8, 64, 4000, 16), (16, 512, 256, 16)]
        for (batch, channels, length, dState) in shapes {
            for complex in [false, true] {
                for threads in [1, 2, 8, 16] {
                    let shape = SelectiveScanShape(batch: batch, length: length, channels: channels, dState: dState, isComplex: complex)
                    let rows = batch * length, W = shape.stateWidth
                    // u, Δ, z, dOut, du, dΔ, dz (D wide) + B, C, dB, dC (W wide): what the bench counts, less
                    // out (not read by the backward): 6 D-wide and 4 W-wide rows per token.
                    let io = Double(6 * rows * channels + 4 * rows * W)
                    let extra = Double(SelectiveScan.checkpointCount(shape, chunk: 64)
                                       + SelectiveScan.backwardWorkspaceCount(shape, chunk: 64, threads: threads))
                    XCTAssertLessThanOrEqual(extra / io, 0.5, "\(shape), \(threads) threads: extra \(extra) floats vs io \(io)")
                }
            }
        }
    }
}
