@testable import Models

/// A small U-Net for the model tests: dModel 16 (widths 16, 32, 64), two layers per stage,
/// pooling [4, 2], short scan chunks so several checkpoints occur.
func smallTestConfig(_ outer: BlockKind, _ center: BlockKind, dState: Int, backbone: Backbone = .sashimi) -> SaShiMiConfig {
    var c = SaShiMiConfig()
    c.backbone = backbone
    c.dModel = 16
    c.nLayers = 2
    c.pool = [4, 2]
    c.dState = dState
    c.outer = outer
    c.center = center
    c.scanChunk = 16
    c.s4dState = 8
    return c
}

/// `batch × length` pseudo-random tokens in 0..<256 (an LCG: the same on every platform).
func testTokens(batch: Int, length: Int, seed: UInt64) -> [Int32] {
    var rng = seed
    return (0..<(batch * length)).map { _ in
        rng = rng &* 6364136223846793005 &+ 1442695040888963407
        return Int32((rng >> 33) % 256)
    }
}
