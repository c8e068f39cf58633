import Engine
import Foundation

/// The Mamba block without its selection mechanism: the Mamba paper's "Mamba-S4" (Fig. 10,
/// its YouTubeMix ablation: S6 → S4 inside the Mamba block). Everything is `MambaBlock`'s (in_proj,
/// causal conv1d, SiLU, SiLU(z) gate, out_proj, A_log, D, same initialisation) except that
/// Δ, B and C are learned parameters, the same at every position and for every input:
/// Δ = softplus(dt_bias) per inner channel, B and C one value per state shared by every
/// channel — what Mamba's (Δ, B, C) = x_proj(x) become when they stop depending on x. No
/// x_proj, no dt_proj. Its SSM is linear time-invariant: a fixed convolution of the conv's output.
///
/// It runs on the selective scan: Δ's raw value is zero and dt_bias enters as the scan's
/// Δ bias (before its softplus), B and C are broadcast to the (batch·L, N) rows the scan
/// reads; the (batch × L × channels × N) states are never stored, as for `MambaBlock`.
public struct MambaLTIBlock {
    public let config: MambaConfig
    public let inProj: Linear
    public let conv1dWeight: Variable
    public let conv1dBias: Variable
    /// (dInner): Δ = softplus(dt_bias), initialised as `MambaBlock`'s dt_proj.bias.
    public let dtBias: Variable
    /// (N), or (2N) interleaved re/im when complex: S4D's initialisation, B = 1 and C ~ N(0, 1).
    public let B: Variable
    public let C: Variable
    public let ALog: Variable
    public let AImag: Variable?
    public let D: Variable
    public let outProj: Linear

    /// Registers the parameters under `prefix` (e.g. "center.3.mixer"); the shared ones with
    /// `MambaBlock`'s names, shapes and initialisation. B follows S4's convention for an SSM
    /// parameter (no decay, the SSM learning-rate cap); C is a plain weight, as in S4.
    public init(_ store: ParameterStore, prefix: String, config: MambaConfig, seed: UInt64) {
        self.config = config
        let c = config, b = store.backend
        let p = prefix.isEmpty ? "" : prefix + "."
        let dInner = c.dInner, W = c.stateWidth
        (inProj, conv1dWeight, conv1dBias) = MambaBlock.addInput(store, prefix: p, config: c, seed: seed)
        dtBias = store.add(p + "dt_bias", shape: [dInner],
                           values: MambaBlock.initialDeltaBias(config: c, backend: b, seed: parameterSeed(seed, p + "dt_bias")), options: .ssm)
        B = store.add(p + "B", shape: [W], values: (0..<W).map { c.isComplex && $0 % 2 == 1 ? 0 : 1 }, options: .ssm)
        // Complex C: real and imaginary parts N(0, ½) each, a unit complex normal (s4d.py's randn(cfloat)).
        let cStd: Float = c.isComplex ? Float(0.5).squareRoot() : 1
        C = store.add(p + "C", shape: [W]) { b.fillNormal($0, mean: 0, std: cStd, seed: parameterSeed(seed, p + "C")) }
        (ALog, AImag) = MambaBlock.addA(store, prefix: p, config: c)
        D = store.add(p + "D", shape: [dInner], values: [Float](repeating: 1, count: dInner), options: .noDecay)
        outProj = Linear(store, p + "out_proj", inFeatures: dInner, outFeatures: c.dModel, bias: false, seed: parameterSeed(seed, p + "out_proj"))
    }

    /// x: (batch·L, dModel) token-major → (batch·L, dModel).
    public func callAsFunction(_ x: Variable, batch: Int, _ tape: Tape) -> Variable {
        let c = config, dInner = c.dInner, rows = x.value.rows, b = x.backend
        let xz = Op.split(inProj(x, tape), [dInner, dInner], tape)
        let xc = Op.causalConv1d(xz[0], conv1dWeight, conv1dBias, batch: batch, silu: true, tape)
        // Ones times a row vector: B and C at every position, their gradients summed over positions.
        let ones = b.empty([rows, c.stateWidth])
        b.fill(ones, value: 1)
        let A = Op.scale(Op.exp(ALog, tape), -1, tape)
        let y = Op.selectiveScan(u: xc, delta: Variable(b.zeros([rows, dInner])), A: A, AImag: AImag,
                                 B: Op.mulRowVector(Variable(ones), B, tape), C: Op.mulRowVector(Variable(ones), C, tape), D: D,
                                 z: xz[1], deltaBias: dtBias, batch: batch, chunk: c.scanChunk, tape)
        return outProj(y, tape)
    }
}
