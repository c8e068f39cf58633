import Engine

/// A recorded sequence of device launches that replays as one launch (a CUDA graph). Opaque:
/// only the backend that captured it can launch it; its device resources go with it.
public protocol DeviceGraph: AnyObject {
    /// Kernels, copies and memsets in the graph.
    var nodeCount: Int { get }
}

/// A backend that can capture a generation step once and replay it, and draw the next tokens
/// on the device (so that a generated sample costs one launch and no host round trip).
/// Generation uses it through this protocol; the CPU backend does not conform.
public protocol StepGraphBackend: Backend {
    /// False when switched off (CUDA: WAVEMAMBA_CUDA_GRAPHS=0): generation then takes the
    /// generic step with host sampling.
    var stepGraphsEnabled: Bool { get }
    /// Records, without running, everything `body` queues on the device. Inside `body` nothing
    /// may wait for the device or copy to or from the host (upload, download, `floats()`).
    /// Tensors created before and used inside must outlive the graph.
    func captureGraph(_ body: () -> Void) -> any DeviceGraph
    /// Queues one replay of `graph`.
    func launchGraph(_ graph: any DeviceGraph)
    /// For each stream s (row of `logits`, (batch, classes)): softmax(logits / temperature),
    /// nucleus filtering at `topP`, and a categorical draw with the uniform of SplitMix64
    /// word k of seed `seed &+ s &* 0x9E3779B97F4A7C15`, k = `counters[s]` (UInt64 per stream,
    /// stored as 2·batch Int32), which is then advanced. The token is written to `tokens[s]`
    /// (Int32) and to `history[s, k mod capacity]` (Int32, (batch, capacity)). The same draw
    /// as `Sampler.draw` on the host. With `logProbs` (Float32, shaped as `history`), also
    /// `logProbs[s, k mod capacity]` = log softmax(logits[s])[token]: the model's own
    /// (untempered, unfiltered) log-probability of the drawn token.
    func sampleTokens(logits: Tensor, temperature: Float, topP: Float, seed: UInt64, counters: Tensor, tokens: Tensor, history: Tensor,
                      logProbs: Tensor?)
    /// Whether generation steps run residual Mamba blocks through the fused kernel
    /// (`residualMambaSteps`: a stage's blocks in one launch); false when switched off (CUDA:
    /// WAVEMAMBA_CUDA_FUSED_STEP=0), and settable so that a benchmark can time both paths in one run.
    var fusedBlockSteps: Bool { get set }
    /// The smallest batch that takes the fused block steps (where fewer streams would leave the
    /// GPU so idle that the unfused GEMMs, spread over SMs, are faster; 1 on CUDA, measured).
    var fusedStepMinimumBatch: Int { get set }
    /// Whether `step`'s block at its batch takes the fused step rather than the unfused one (the
    /// fused step's thread blocks each read all of the block's weights: wide blocks at large
    /// batches read more than the unfused GEMMs do).
    func fusedStepPays(_ step: ResidualMambaStep) -> Bool
    /// The most consecutive blocks one fused launch steps (`residualMambaSteps`; longer runs
    /// take several launches). Settable so that a benchmark can time one launch per block
    /// against one per run (CUDA: 16, WAVEMAMBA_FUSED_STACK overrides it).
    var fusedStackLayers: Int { get set }
    /// Whether the fused step may take its specialised kernels (CUDA: thread block clusters at
    /// small batches, kernels compiled for SaShiMi's stage widths) rather than the generic
    /// one-block kernel; settable so that a benchmark times both in one run (CUDA:
    /// WAVEMAMBA_FUSED_SPECIALISED=0 switches them off).
    var fusedStepSpecialised: Bool { get set }
    /// For one step of every stream, out = the last of `steps` applied in order, each
    /// x ← x + Mamba(LayerNorm(x)) (x, out: (batch, dModel) contiguous; out may be x), updating
    /// each step's conv and SSM states: what LayerNorm, `MambaBlock.step` and the residual add do
    /// in eight launches a block, in one launch for up to `fusedStackLayers` blocks. The steps
    /// share their widths, their kind (real or complex) and their batch. With `addend` the input
    /// is x + addend; with `stageResidual` out is the last block's output plus that input
    /// (SaShiMi's residual around a stage): both only for runs of at most `fusedStackLayers`.
    func residualMambaSteps(_ steps: ArraySlice<ResidualMambaStep>, x: Tensor, addend: Tensor?, out: Tensor, stageResidual: Bool)
    /// `residualMambaSteps` with the stage residual, then `head` on out (head.logits =
    /// LayerNorm(out)·Wᵀ + bias) in the same launch; false, with nothing queued, where the
    /// backend does not fuse the head for these steps (the caller then steps the stage and the
    /// head itself).
    func residualMambaSteps(_ steps: ArraySlice<ResidualMambaStep>, x: Tensor, addend: Tensor?, out: Tensor, head: StepHead) -> Bool
}

extension StepGraphBackend {
    public func sampleTokens(logits: Tensor, temperature: Float, topP: Float, seed: UInt64, counters: Tensor, tokens: Tensor, history: Tensor) {
        sampleTokens(logits: logits, temperature: temperature, topP: topP, seed: seed, counters: counters, tokens: tokens, history: history,
                     logProbs: nil)
    }

    public func residualMambaSteps(_ steps: ArraySlice<ResidualMambaStep>, x: Tensor, out: Tensor) {
        residualMambaSteps(steps, x: x, addend: nil, out: out, stageResidual: false)
    }
}
