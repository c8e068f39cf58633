/// SplitMix64: a small, fast, seedable generator (Steele, Lea & Flood 2014). Used for data
/// order only; model randomness lives in the kernels' counter-based generator.
public struct SplitMix64: RandomNumberGenerator, Sendable {
    public var state: UInt64
    public init(seed: UInt64) { state = seed }
    public mutating func next() -> UInt64 {
        state &+= 0x9e37_79b9_7f4a_7c15
        var z = state
        z = (z ^ (z >> 30)) &* 0xbf58_476d_1ce4_e5b9
        z = (z ^ (z >> 27)) &* 0x94d0_49bb_1331_11eb
        return z ^ (z >> 31)
    }
}

/// The order in which training visits segments: a fresh permutation each epoch, derived
/// from (seed, epoch) alone, so a resumed run sees exactly the order it would have seen.
public struct BatchOrder: Sendable {
    public let count: Int
    public let seed: UInt64

    public init(count: Int, seed: UInt64) {
        self.count = count
        self.seed = seed
    }

    public func permutation(epoch: Int) -> [Int] {
        var rng = SplitMix64(seed: seed ^ (UInt64(epoch) &* 0xd6e8_feb8_6659_fd93))
        var p = Array(0..<count)
        // Fisher–Yates with an unbiased bounded draw.
        if count > 1 {
            for i in stride(from: count - 1, to: 0, by: -1) {
                let j = Int(rng.next(upperBound: UInt64(i + 1)))
                p.swapAt(i, j)
            }
        }
        return p
    }

    /// Indices of batch `step` (0-based, counted over all epochs) of `batchSize` items;
    /// an epoch's last partial batch is dropped.
    public func batch(step: Int, batchSize: Int) -> (epoch: Int, indices: [Int]) {
        let perEpoch = max(1, count / batchSize)
        let epoch = step / perEpoch
        let k = step % perEpoch
        let p = permutation(epoch: epoch)
        return (epoch, Array(p[(k * batchSize)..<min(count, (k + 1) * batchSize)]))
    }
}
