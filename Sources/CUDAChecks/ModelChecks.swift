import Engine
import Foundation
import Models

/// Whole-model checks of a GPU backend against the CPU: one training step (loss, gradients,
/// updated parameters), step-mode generation equal to the parallel forward on the GPU, and a
/// checkpoint written from the GPU that the CPU loads to the same logits and bytes.
public struct ModelChecks {
    public let gpu: any Backend
    public let cpu: any Backend

    public init(gpu: any Backend, cpu: any Backend) {
        self.gpu = gpu
        self.cpu = cpu
    }

    static func config(_ kind: BlockKind, _ backbone: Backbone = .sashimi) -> SaShiMiConfig {
        var c = SaShiMiConfig()
        c.backbone = backbone
        c.dModel = 16; c.nLayers = 2; c.pool = [4, 2]; c.dState = 4
        c.outer = kind; c.center = kind; c.scanChunk = 16
        return c
    }

    static func tokens(_ n: Int, seed: UInt64) -> [Int32] {
        hostValues(n, seed: seed, 0, 256).map { Int32($0) }
    }

    /// The same weights on both: initialised on the CPU, copied to the GPU.
    func pair(_ kind: BlockKind, _ backbone: Backbone) -> (SaShiMi, SaShiMi) {
        let c = SaShiMi(config: Self.config(kind, backbone), backend: cpu, seed: 5)
        let g = SaShiMi(config: Self.config(kind, backbone), backend: gpu, seed: 5)
        g.store.values!.copy(from: c.store.values!.floats())
        return (c, g)
    }

    /// "mamba", or "mamba, unet" for the unet backbone.
    static func label(_ kind: BlockKind, _ backbone: Backbone) -> String {
        backbone == .sashimi ? kind.rawValue : "\(kind.rawValue), \(backbone)"
    }

    public func trainingStep(_ kind: BlockKind, _ backbone: Backbone = .sashimi) -> CheckOutcome {
        let (mc, mg) = pair(kind, backbone)
        let batch = 2, L = 64
        let toks = Self.tokens(batch * (L + 1), seed: 9)
        func step(_ m: SaShiMi, _ b: any Backend) -> [Float] {
            var inTokens: [Int32] = [], outTokens: [Int32] = []
            for r in 0..<batch {
                let start = r * (L + 1)
                inTokens += toks[start..<(start + L)]
                outTokens += toks[(start + 1)..<(start + L + 1)]
            }
            let inputs = b.indices(inTokens, shape: [batch, L])
            let targets = b.indices(outTokens, shape: [batch, L])
            let opt = AdamWOptimizer(store: m.store)
            m.store.zeroGrad()
            let tape = Tape()
            let loss = m.loss(inputs: inputs, targets: targets, tape: tape, training: true)
            tape.backward(from: loss)
            let grads = m.store.grads!.floats()
            _ = opt.update(learningRate: 1e-5)   // small: a rounding-level sign flip of a tiny gradient stays far below the tolerance
            return [loss.value.floats()[0]] + grads + m.store.values!.floats()
        }
        let c = step(mc, cpu), g = step(mg, gpu)
        let n = mc.store.count
        let eLoss = relativeError([g[0]], [c[0]])
        let eGrad = relativeError(Array(g[1...n]), Array(c[1...n]))
        let eParam = relativeError(Array(g[(n + 1)...]), Array(c[(n + 1)...]))
        return CheckOutcome(name: "one training step GPU = CPU (\(Self.label(kind, backbone)))", error: max(eLoss, eGrad, eParam), tolerance: 1e-4,
                            detail: String(format: "loss %.1e, gradients %.1e, parameters %.1e", eLoss, eGrad, eParam))
    }

    public func stepMode(_ kind: BlockKind, _ backbone: Backbone = .sashimi) -> CheckOutcome {
        let (_, m) = pair(kind, backbone)
        let batch = 2, L = 40
        let toks = Self.tokens(batch * L, seed: 13)
        let parallel = m.logits(gpu.indices(toks, shape: [batch, L]), tape: Tape.inference()).value.floats()
        let state = m.makeStepState(batch: batch)
        var stepped = [Float](repeating: 0, count: parallel.count)
        for t in 0..<L {
            let o = m.step(tokens: (0..<batch).map { toks[$0 * L + t] }, state).floats()
            for b in 0..<batch { for k in 0..<256 { stepped[(b * L + t) * 256 + k] = o[b * 256 + k] } }
        }
        return CheckOutcome(name: "step mode = parallel forward on the GPU (\(Self.label(kind, backbone)))", error: relativeError(stepped, parallel),
                            tolerance: 1e-4, detail: "")
    }

    public func checkpointResume(_ kind: BlockKind, _ backbone: Backbone = .sashimi, folder: URL) throws -> CheckOutcome {
        let (_, mg) = pair(kind, backbone)
        let audio = AudioSettings()
        let url = folder.appendingPathComponent("gpu-\(kind.rawValue)-\(backbone).safetensors")
        try ModelCheckpoint.save(mg, audio: audio, to: url)
        let (mc, _, _) = try ModelCheckpoint.load(url, backend: cpu)
        let url2 = folder.appendingPathComponent("cpu-\(kind.rawValue)-\(backbone).safetensors")
        try ModelCheckpoint.save(mc, audio: audio, to: url2)
        let same = try Data(contentsOf: url) == Data(contentsOf: url2)
        let toks = Self.tokens(64, seed: 17)
        let lg = mg.logits(gpu.indices(toks, shape: [1, 64]), tape: Tape.inference()).value.floats()
        let lc = mc.logits(cpu.indices(toks, shape: [1, 64]), tape: Tape.inference()).value.floats()
        return CheckOutcome(name: "GPU checkpoint resumes on the CPU (\(Self.label(kind, backbone)))", error: same ? relativeError(lg, lc) : .infinity,
                            tolerance: 1e-4, detail: same ? "files byte-identical" : "checkpoint bytes differ between devices")
    }

    public func all(folder: URL) throws -> [CheckOutcome] {
        var out: [CheckOutcome] = []
        for kind in [BlockKind.mambaComplex, .mamba] {
            out.append(trainingStep(kind))
            out.append(stepMode(kind))
            out.append(try checkpointResume(kind, folder: folder))
        }
        // The unet backbone: the paper's SC09 layout.
        out.append(trainingStep(.mamba, .unet))
        out.append(stepMode(.mamba, .unet))
        out.append(try checkpointResume(.mamba, .unet, folder: folder))
        // S4D (kernel and FFT convolution on the device); its step mode runs on the CPU only.
        out.append(trainingStep(.s4d))
        out.append(trainingStep(.s4d, .unet))
        // Attention (Table 5's MHA + MLP): a training step and its KV-cached step mode.
        out.append(trainingStep(.mha, .unet))
        out.append(stepMode(.mha, .unet))
        // Fig. 10's non-selective Mamba: Δ, B, C broadcast from parameters into the same scan kernels.
        out.append(trainingStep(.mambaLTI, .unet))
        out.append(stepMode(.mambaLTI, .unet))
        out.append(try checkpointResume(.mambaLTI, .unet, folder: folder))
        return out
    }
}
