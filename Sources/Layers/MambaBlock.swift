import Engine
import Foundation

/// Options of a Mamba block (mamba_simple.Mamba), with the paper's defaults.
public struct MambaConfig: Codable, Sendable, Equatable {
    public var dModel: Int
    public var dState: Int = 16
    public var dConv: Int = 4
    public var expand: Int = 2
    /// Rank of Δ's projection; nil means ⌈dModel / 16⌉ as the official code.
    public var dtRank: Int? = nil
    /// Complex A, B, C (S4D-Lin initialisation), as the Mamba paper uses for audio.
    public var isComplex: Bool = false
    public var dtMin: Double = 0.001
    public var dtMax: Double = 0.1
    public var dtInitFloor: Double = 1e-4
    public var dtScale: Double = 1.0
    /// Time steps between the scan's stored states (memory vs recomputation).
    public var scanChunk: Int = 64

    public init(dModel: Int, dState: Int = 16, dConv: Int = 4, expand: Int = 2, dtRank: Int? = nil, isComplex: Bool = false) {
        self.dModel = dModel
        self.dState = dState
        self.dConv = dConv
        self.expand = expand
        self.dtRank = dtRank
        self.isComplex = isComplex
    }

    public var dInner: Int { expand * dModel }
    public var resolvedDtRank: Int { dtRank ?? (dModel + 15) / 16 }
    /// Floats per position of B (and of C): N real or 2N complex.
    public var stateWidth: Int { isComplex ? 2 * dState : dState }
}

/// The Mamba block (Gu & Dao, Fig. 3; `mamba_simple.Mamba`): in_proj → (x, z);
/// x → causal depthwise conv1d → SiLU → x_proj → (Δ, B, C); Δ → dt_proj;
/// y = SelectiveScan(x, Δ, A = −exp(A_log) [+ i·A_imag], B, C, D) · SiLU(z); out_proj.
/// Parameter names and shapes are the official state_dict's.
public struct MambaBlock {
    public let config: MambaConfig
    public let inProj: Linear
    public let conv1dWeight: Variable
    public let conv1dBias: Variable
    public let xProj: Linear
    public let dtProj: Linear
    public let ALog: Variable
    public let AImag: Variable?
    public let D: Variable
    public let outProj: Linear

    /// Registers the parameters under `prefix` (e.g. "center.3.mixer") with the official
    /// initialisation: S4D-Real A (A_log = log n) or S4D-Lin for complex (A_log = log ½,
    /// A_imag = π·n); Δ log-uniform in [dtMin, dtMax] through dt_proj.bias = softplus⁻¹(Δ);
    /// D = 1; the linear layers as PyTorch initialises them.
    public init(_ store: ParameterStore, prefix: String, config: MambaConfig, seed: UInt64) {
        self.config = config
        let c = config, b = store.backend
        let p = prefix.isEmpty ? "" : prefix + "."
        let dInner = c.dInner, R = c.resolvedDtRank
        (inProj, conv1dWeight, conv1dBias) = MambaBlock.addInput(store, prefix: p, config: c, seed: seed)
        xProj = Linear(store, p + "x_proj", inFeatures: dInner, outFeatures: R + 2 * c.stateWidth, bias: false,
                       seed: parameterSeed(seed, p + "x_proj"))
        // dt_proj: weight U(±R^-½·dtScale); bias = inverse softplus of Δ ~ log-uniform.
        let dtStd = Float(pow(Double(R), -0.5) * c.dtScale)
        let dtWeight = store.add(p + "dt_proj.weight", shape: [dInner, R], options: .ssmProjection) {
            b.fillUniform($0, low: -dtStd, high: dtStd, seed: parameterSeed(seed, p + "dt_proj.weight"))
        }
        let invDt = Self.initialDeltaBias(config: c, backend: b, seed: parameterSeed(seed, p + "dt_proj.bias"))
        let dtBias = store.add(p + "dt_proj.bias", shape: [dInner], values: invDt, options: .ssm)
        dtProj = Linear(weight: dtWeight, bias: dtBias)
        (ALog, AImag) = Self.addA(store, prefix: p, config: c)
        D = store.add(p + "D", shape: [dInner], values: [Float](repeating: 1, count: dInner), options: .noDecay)
        outProj = Linear(store, p + "out_proj", inFeatures: dInner, outFeatures: c.dModel, bias: false, seed: parameterSeed(seed, p + "out_proj"))
    }

    /// x: (batch·L, dModel) token-major → (batch·L, dModel).
    public func callAsFunction(_ x: Variable, batch: Int, _ tape: Tape) -> Variable {
        let c = config, dInner = c.dInner, R = c.resolvedDtRank, W = c.stateWidth
        let xz = Op.split(inProj(x, tape), [dInner, dInner], tape)
        let xc = Op.causalConv1d(xz[0], conv1dWeight, conv1dBias, batch: batch, silu: true, tape)
        let dbl = Op.split(xProj(xc, tape), [R, W, W], tape)
        // Δ's bias is applied inside the scan (before its softplus), as the official code does.
        let delta = Op.linear(dbl[0], dtProj.weight, nil, tape)
        let A = Op.scale(Op.exp(ALog, tape), -1, tape)
        let y = Op.selectiveScan(u: xc, delta: delta, A: A, AImag: AImag, B: dbl[1], C: dbl[2], D: D, z: xz[1],
                                 deltaBias: dtProj.bias, batch: batch, chunk: c.scanChunk, tape)
        return outProj(y, tape)
    }
}

extension MambaBlock {
    /// Registers `in_proj` and the depthwise causal conv (PyTorch's default initialisation:
    /// uniform in ±1/√d_conv), the input side both Mamba blocks share.
    static func addInput(_ store: ParameterStore, prefix p: String, config c: MambaConfig, seed: UInt64)
        -> (inProj: Linear, conv1dWeight: Variable, conv1dBias: Variable) {
        let b = store.backend, dInner = c.dInner
        let inProj = Linear(store, p + "in_proj", inFeatures: c.dModel, outFeatures: 2 * dInner, bias: false, seed: parameterSeed(seed, p + "in_proj"))
        let convBound = 1 / Float(c.dConv).squareRoot()
        let weight = store.add(p + "conv1d.weight", shape: [dInner, 1, c.dConv]) {
            b.fillUniform($0, low: -convBound, high: convBound, seed: parameterSeed(seed, p + "conv1d.weight"))
        }
        let bias = store.add(p + "conv1d.bias", shape: [dInner], options: .noDecay) {
            b.fillUniform($0, low: -convBound, high: convBound, seed: parameterSeed(seed, p + "conv1d.bias"))
        }
        return (inProj, weight, bias)
    }

    /// Δ's bias, softplus⁻¹(Δ) for Δ log-uniform in [dtMin, dtMax] (floored at dtInitFloor), one
    /// per inner channel: dt_proj.bias, and the non-selective block's dt_bias.
    static func initialDeltaBias(config c: MambaConfig, backend b: any Backend, seed: UInt64) -> [Float] {
        let u = b.empty([c.dInner])
        b.fillUniform(u, low: 0, high: 1, seed: seed)
        return u.floats().map { r in
            let dt = max(exp(Double(r) * (log(c.dtMax) - log(c.dtMin)) + log(c.dtMin)), c.dtInitFloor)
            return Float(dt + log(-expm1(-dt)))
        }
    }

    /// Registers `A_log` (and `A_imag`) as the official code initialises them: S4D-Real
    /// (A_log = log n) or S4D-Lin for complex (A_log = log ½, A_imag = π·n).
    static func addA(_ store: ParameterStore, prefix p: String, config c: MambaConfig) -> (ALog: Variable, AImag: Variable?) {
        let dInner = c.dInner, N = c.dState
        guard c.isComplex else {
            return (store.add(p + "A_log", shape: [dInner, N], values: (0..<(dInner * N)).map { Float(log(Double($0 % N + 1))) }, options: .ssm), nil)
        }
        return (store.add(p + "A_log", shape: [dInner, N], values: [Float](repeating: Float(log(0.5)), count: dInner * N), options: .ssm),
                store.add(p + "A_imag", shape: [dInner, N], values: (0..<(dInner * N)).map { Float.pi * Float($0 % N) }, options: .ssm))
    }
}

extension Linear {
    /// A linear layer over existing parameters.
    public init(weight: Variable, bias: Variable?) {
        self.weight = weight
        self.bias = bias
    }
}
