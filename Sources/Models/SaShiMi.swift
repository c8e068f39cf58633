import Engine
import Foundation
import Layers
import Spectral

/// SaShiMi's multi-scale U-Net over 8-bit audio with Mamba (or S4D) blocks, an embedding of
/// the 256 levels in front and a 256-way head behind. Token-major throughout: a batch of B
/// clips of L samples is a (B·L, channels) matrix.
///
/// Parameter names (PyTorch conventions; see docs/parameters.md):
/// `embedding.weight`; `center.{j}.norm.*`, `center.{j}.mixer.*`; `up.{i}.0.linear.*` (the
/// UpPool), `up.{i}.{k}.norm.*`, `up.{i}.{k}.mixer.*` (k ≥ 1); `norm.*`; `head.*`; the DownPools
/// `down.{i}.linear.*` (`sashimi`), or with `unet` the blocks `down.{i}.{k}.*` (k < m, the
/// stage's m blocks) and the DownPool `down.{i}.{m}.linear.*`.
public final class SaShiMi {
    public let config: SaShiMiConfig
    public let store: ParameterStore
    public let embedding: Variable
    /// Per pooling level, the residual blocks before its DownPool (`unet` only; else empty).
    public let downBlocks: [[ResidualBlock]]
    public let down: [DownPool]
    public let center: [ResidualBlock]
    public let up: [(pool: UpPool, blocks: [ResidualBlock])]
    public let norm: LayerNormModule
    public let head: Linear
    /// FFTW plans of the S4D layers (owned by the model, shared by its layers).
    public let fftPlans = FFTPlanCache()

    public init(config: SaShiMiConfig, backend: any Backend, seed: UInt64) {
        self.config = config
        let store = ParameterStore(backend: backend)
        let fftPlans = self.fftPlans
        self.store = store
        var H = config.dModel
        embedding = store.add("embedding.weight", shape: [config.classes, H], options: .noDecay) {
            backend.fillNormal($0, mean: 0, std: 1, seed: parameterSeed(seed, "embedding.weight"))
        }
        var down: [DownPool] = [], downBlocks: [[ResidualBlock]] = []
        for (i, p) in config.pool.enumerated() {
            var prefix = "down.\(i)"
            if config.backbone == .unet {
                let blocks = Self.stage(store, prefix: prefix, width: H, kind: config.outer, config: config, seed: seed, plans: fftPlans)
                downBlocks.append(blocks)
                prefix += ".\(blocks.count)"
            } else {
                downBlocks.append([])
            }
            down.append(DownPool(store, prefix: prefix, width: H, expand: config.expand, pool: p, seed: seed))
            H *= config.expand
        }
        self.down = down
        self.downBlocks = downBlocks
        center = Self.stage(store, prefix: "center", width: H, kind: config.center, config: config, seed: seed, plans: fftPlans)
        var up: [(UpPool, [ResidualBlock])] = []
        for (i, p) in config.pool.reversed().enumerated() {
            let pool = UpPool(store, prefix: "up.\(i).0", inWidth: H, expand: config.expand, pool: p, seed: seed)
            H /= config.expand
            up.append((pool, Self.stage(store, prefix: "up.\(i)", width: H, kind: config.outer, config: config, seed: seed, plans: fftPlans, first: 1)))
        }
        self.up = up
        norm = LayerNormModule(store, "norm", channels: H)
        head = Linear(store, "head", inFeatures: H, outFeatures: config.classes, bias: true, seed: parameterSeed(seed, "head"))
        store.finalize()
    }

    /// The residual blocks of one stage: one Mamba block per layer, or S4D (or MHA) then FF.
    static func stage(_ store: ParameterStore, prefix: String, width: Int, kind: BlockKind, config: SaShiMiConfig,
                      seed: UInt64, plans: FFTPlanCache, first: Int = 0) -> [ResidualBlock] {
        var blocks: [ResidualBlock] = []
        var index = first
        func add(_ make: (String) -> Mixer) {
            let p = "\(prefix).\(index)"
            blocks.append(ResidualBlock(norm: LayerNormModule(store, p + ".norm", channels: width), mixer: make(p + ".mixer"),
                                        dropout: config.dropout))
            index += 1
        }
        for _ in 0..<config.nLayers {
            switch kind {
            case .mamba, .mambaComplex:
                add { .mamba(MambaBlock(store, prefix: $0, config: config.mamba(width, complex: kind == .mambaComplex), seed: seed)) }
            case .mambaLTI:
                add { .mambaLTI(MambaLTIBlock(store, prefix: $0, config: config.mamba(width, complex: false), seed: seed)) }
            case .s4d:
                let s4 = S4DConfig(dState: config.s4dState, dropout: config.dropout)
                add { .s4d(S4D(store, prefix: $0, channels: width, config: s4, seed: parameterSeed(seed, $0), cache: plans)) }
                if config.ff > 0 {
                    add { .feedForward(FeedForward(store, prefix: $0, width: width, expand: config.ff, dropout: config.dropout, seed: seed)) }
                }
            case .mha:
                let layer = ResidualBlock.attentionLayer(store, prefix: prefix, index: index, width: width,
                                                         attention: MultiHeadAttentionConfig(heads: config.mhaHeads), ff: config.ff,
                                                         dropout: config.dropout, seed: seed)
                blocks += layer
                index += layer.count
            }
        }
        return blocks
    }

    public var parameterCount: Int { store.count }

    /// Logits (B·L, classes) for Int32 input tokens (B, L); L a multiple of `config.totalPool`.
    /// `seed` drives dropout (unused at dropout 0); `firstSample` is the global index of the
    /// first row of `tokens` when a data-parallel rank runs its share of a batch (dropout
    /// masks are keyed by it, so K ranks draw the masks of one process). `recompute`: which
    /// activations the tape keeps (the values and gradients are the same either way).
    public func logits(_ tokens: Tensor, tape: Tape, training: Bool = false, seed: UInt64 = 0, firstSample: Int = 0,
                       recompute: Recomputation = .none) -> Variable {
        let batch = tokens.shape[0], L = tokens.shape[1]
        precondition(L % config.totalPool == 0, "sequence length \(L) is not a multiple of the pooling \(config.totalPool)")
        var x = Op.reshape(Op.embedding(embedding, indices: tokens, tape), [batch * L, config.dModel], tape)
        var layerSeed = seed
        func block(_ b: ResidualBlock) {
            layerSeed = layerSeed &+ 0x9E37_79B9
            let seed = layerSeed
            switch recompute {
            case .none: x = b(x, batch: batch, tape, training: training, seed: seed, firstSample: firstSample)
            case .blocks:
                x = Op.recompute(x, tape) { x, tape in b(x, batch: batch, tape, training: training, seed: seed, firstSample: firstSample) }
            }
        }
        // The skip stack. sashimi: each level's input, and the center's. unet (`unet.py`): the
        // input of every layer on the way down (blocks and DownPools) and of the center, popped
        // by its mirror on the way up, which adds it to its output.
        var outputs: [Variable] = []
        for (d, blocks) in zip(down, downBlocks) {
            for b in blocks {
                outputs.append(x)
                block(b)
            }
            outputs.append(x)
            x = d(x, tape)
        }
        outputs.append(x)
        center.forEach(block)
        x = Op.add(x, outputs.removeLast(), tape)
        for stage in up {
            x = Op.add(stage.pool(x, batch: batch, tape), outputs.removeLast(), tape)
            if config.backbone == .unet {
                for b in stage.blocks {
                    block(b)
                    x = Op.add(x, outputs.removeLast(), tape)
                }
            } else {
                let skip = x
                stage.blocks.forEach(block)
                x = Op.add(x, skip, tape)
            }
        }
        precondition(outputs.isEmpty, "SaShiMi: \(outputs.count) skips left unused")
        return head(norm(x, tape), tape)
    }

    /// Mean next-sample cross-entropy (nats) of `targets` (B, L) given `inputs` (B, L).
    public func loss(inputs: Tensor, targets: Tensor, tape: Tape, training: Bool = false, seed: UInt64 = 0, firstSample: Int = 0,
                     recompute: Recomputation = .none) -> Variable {
        let l = logits(inputs, tape: tape, training: training, seed: seed, firstSample: firstSample, recompute: recompute)
        return Op.crossEntropy(l, targets: targets.reshaped([targets.count]), tape)
    }
}
