import Engine
import Layers

/// SaShiMi's DownPool: `pool` consecutive steps are stacked into channels (ordered (h, s)
/// as `rearrange('... h (l s) -> ... (h s) l')` does) and projected to expand·H.
public struct DownPool {
    public let linear: Linear
    public let pool: Int
    public let width: Int

    public init(_ store: ParameterStore, prefix: String, width: Int, expand: Int, pool: Int, seed: UInt64) {
        linear = Linear(store, prefix + ".linear", inFeatures: width * pool, outFeatures: width * expand, bias: true,
                        seed: parameterSeed(seed, prefix + ".linear"))
        self.pool = pool
        self.width = width
    }

    /// (batch·L, H) → (batch·L/pool, expand·H).
    public func callAsFunction(_ x: Variable, _ tape: Tape) -> Variable {
        let coarse = x.value.rows / pool
        // Token-major rows hold (s, h); the PyTorch layout orders the stacked channels (h, s).
        let hs = Op.transpose(x, batch: coarse, rows: pool, cols: width, tape)
        return linear(Op.reshape(hs, [coarse, width * pool], tape), tape)
    }
}

/// SaShiMi's UpPool: project to pool·H/expand channels, **shift right by one coarse step**
/// (so a fine step only sees coarse steps that finished before it), and unstack the channels
/// back into `pool` fine steps.
public struct UpPool {
    public let linear: Linear
    public let pool: Int
    /// Output width (H/expand).
    public let width: Int

    public init(_ store: ParameterStore, prefix: String, inWidth: Int, expand: Int, pool: Int, seed: UInt64) {
        width = inWidth / expand
        linear = Linear(store, prefix + ".linear", inFeatures: inWidth, outFeatures: width * pool, bias: true,
                        seed: parameterSeed(seed, prefix + ".linear"))
        self.pool = pool
    }

    /// (batch·Lc, H) → (batch·Lc·pool, H/expand).
    public func callAsFunction(_ x: Variable, batch: Int, _ tape: Tape) -> Variable {
        let coarse = x.value.rows
        let y = Op.shiftRight(linear(x, tape), batch: batch, steps: 1, tape)
        // Channels are (h, s): move s next to the time axis.
        let sh = Op.transpose(y, batch: coarse, rows: width, cols: pool, tape)
        return Op.reshape(sh, [coarse * pool, width], tape)
    }
}
