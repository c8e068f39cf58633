import Engine
import Foundation
import Spectral

/// Options of an S4D layer (s4d.py's S4D and S4DKernel arguments), with its defaults.
/// Keys missing when decoding take the defaults.
public struct S4DConfig: Codable, Sendable, Equatable {
    /// N: the state size; the layer keeps N/2 complex modes per channel (the other half
    /// are their conjugates). Even.
    public var dState: Int = 64
    /// Range of the log-uniform initial step Δ.
    public var dtMin: Double = 0.001
    public var dtMax: Double = 0.1
    /// DropoutNd probability after the GELU (mask tied over the sequence).
    public var dropout: Float = 0

    public init(dState: Int = 64, dtMin: Double = 0.001, dtMax: Double = 0.1, dropout: Float = 0) {
        self.dState = dState
        self.dtMin = dtMin
        self.dtMax = dtMax
        self.dropout = dropout
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        self.init()
        dState = try c.decodeIfPresent(Int.self, forKey: .dState) ?? dState
        dtMin = try c.decodeIfPresent(Double.self, forKey: .dtMin) ?? dtMin
        dtMax = try c.decodeIfPresent(Double.self, forKey: .dtMax) ?? dtMax
        dropout = try c.decodeIfPresent(Float.self, forKey: .dropout) ?? dropout
    }

    /// N/2, the complex modes per channel.
    public var modes: Int { dState / 2 }
}

/// The S4D layer of s4d.py — the LTI state-space baseline of SaShiMi and the Mamba paper:
///
///     K = S4DKernel(L)                       (H, L), see `S4DKernel`
///     y = K ∗ u + D·u                        causal FFT convolution per channel
///     y = GLU(output_linear(dropout(GELU(y))))
///
/// on token-major (batch·L, H) activations (s4d.py's transposed = False layout). Parameter
/// names and shapes are s4d.py's state_dict; output_linear.0 is its kernel-size-1 Conv1d,
/// applied as a linear map over channels, and the GLU gates the first H channels by the
/// sigmoid of the last H, as nn.GLU(dim = −2) does.
public struct S4D {
    public let config: S4DConfig
    /// H.
    public let channels: Int
    public let D: Variable
    public let C: Variable
    public let logDt: Variable
    public let logAReal: Variable
    public let AImag: Variable
    /// output_linear.0: Conv1d(H, 2H, kernel_size = 1), weight (2H, H, 1).
    public let outputWeight: Variable
    public let outputBias: Variable
    /// FFTW plans, owned by the model and shared by its layers.
    public let cache: FFTPlanCache

    /// Registers the parameters under `prefix` (e.g. "layers.0"; "" for none) in
    /// s4d.py's state_dict order, initialised as s4d.py does:
    /// - D ~ N(0, 1) (H);
    /// - kernel.C ~ complex standard normal (H, N/2, 2): torch.randn(cfloat) has E|C|² = 1,
    ///   so real and imaginary parts are each N(0, ½);
    /// - kernel.log_dt ~ U(log dtMin, log dtMax) (H);
    /// - kernel.log_A_real = log ½, kernel.A_imag = π·n (S4D-Lin) (H, N/2);
    /// - output_linear.0 as PyTorch's Conv1d: weight and bias U(±1/√H).
    ///
    /// Optimiser groups: log_dt, log_A_real and A_imag are s4d.py's `register`ed tensors
    /// (no weight decay, lr ≤ 1e-3: `.ssm`). C is a plain parameter there and gets the
    /// default group (weight decay, base lr). D and the bias get no weight decay, as Mamba
    /// marks D (s4d.py's example optimiser would decay D; a deliberate choice here).
    public init(_ store: ParameterStore, prefix: String, channels H: Int, config: S4DConfig = S4DConfig(), seed: UInt64,
                cache: FFTPlanCache) {
        precondition(config.dState >= 2 && config.dState % 2 == 0, "S4D needs an even dState ≥ 2")
        precondition(config.dtMin > 0 && config.dtMin <= config.dtMax, "S4D needs 0 < dtMin ≤ dtMax")
        self.config = config
        self.channels = H
        self.cache = cache
        let b = store.backend, M = config.modes
        let p = prefix.isEmpty ? "" : prefix + "."
        func seedOf(_ name: String) -> UInt64 { parameterSeed(seed, p + name) }

        D = store.add(p + "D", shape: [H], options: .noDecay) {
            b.fillNormal($0, mean: 0, std: 1, seed: seedOf("D"))
        }
        C = store.add(p + "kernel.C", shape: [H, M, 2]) {
            b.fillNormal($0, mean: 0, std: Float(0.5.squareRoot()), seed: seedOf("kernel.C"))
        }
        logDt = store.add(p + "kernel.log_dt", shape: [H], options: .ssm) {
            b.fillUniform($0, low: Float(log(config.dtMin)), high: Float(log(config.dtMax)), seed: seedOf("kernel.log_dt"))
        }
        logAReal = store.add(p + "kernel.log_A_real", shape: [H, M],
                             values: [Float](repeating: Float(log(0.5)), count: H * M), options: .ssm)
        AImag = store.add(p + "kernel.A_imag", shape: [H, M], values: (0..<(H * M)).map { Float.pi * Float($0 % M) },
                          options: .ssm)
        let bound = 1 / Float(H).squareRoot()
        outputWeight = store.add(p + "output_linear.0.weight", shape: [2 * H, H, 1]) {
            b.fillUniform($0, low: -bound, high: bound, seed: seedOf("output_linear.0.weight"))
        }
        outputBias = store.add(p + "output_linear.0.bias", shape: [2 * H], options: .noDecay) {
            b.fillUniform($0, low: -bound, high: bound, seed: seedOf("output_linear.0.bias"))
        }
    }

    /// x: (batch·L, H) token-major → (batch·L, H). Dropout applies when `config.dropout > 0`
    /// and a `dropoutSeed` is given (training; use a fresh seed per step and layer);
    /// `firstSample`: the global index of the batch's first sample (data-parallel ranks).
    public func callAsFunction(_ x: Variable, batch: Int, _ tape: Tape, dropoutSeed: UInt64? = nil, firstSample: Int = 0) -> Variable {
        precondition(x.value.columns == channels, "S4D: input has \(x.value.columns) channels, expected \(channels)")
        precondition(x.value.rows % batch == 0, "S4D: \(x.value.rows) rows for batch \(batch)")
        let k = kernel(length: x.value.rows / batch, tape)
        let y = Op.add(Op.fftConvolution(x, k, batch: batch, cache: cache, tape), Op.mulRowVector(x, D, tape), tape)
        let z = Op.tiedDropout(Op.gelu(y, tape), batch: batch, p: config.dropout, seed: dropoutSeed, firstSample: firstSample, tape)
        return Op.glu(Op.linear(z, outputWeight, outputBias, tape), tape)
    }

    /// The convolution kernel K (H, L) as a differentiable function of log_dt, C,
    /// log_A_real and A_imag.
    public func kernel(length L: Int, _ tape: Tape) -> Variable {
        let backend = logDt.backend
        let params = [logDt, C, logAReal, AImag]
        // The backend's kernel (Double arithmetic on the CPU and on the device) reads a snapshot
        // of the parameters (the backward reads their values as they were in the forward).
        let p = params.map { v -> Tensor in
            let t = backend.empty(v.value.shape)
            backend.copy2D(from: v.value, to: t, accumulate: false)
            return t
        }
        let k = backend.empty([channels, L])
        backend.s4dKernel(logDt: p[0], C: p[1], logAReal: p[2], AImag: p[3], length: L, kernel: k)
        let out = Variable(k, requiresGrad: tape.isRecording && params.contains { $0.requiresGrad })
        guard out.requiresGrad else { return out }
        tape.record("s4dKernel") {
            guard let dk = out.grad else { return }
            let grads = params.map { backend.empty($0.value.shape) }
            backend.s4dKernelBackward(logDt: p[0], C: p[1], logAReal: p[2], AImag: p[3], length: L, dKernel: dk.contiguous(),
                                      dLogDt: grads[0], dC: grads[1], dLogAReal: grads[2], dAImag: grads[3])
            for (v, g) in zip(params, grads) where v.requiresGrad {
                v.withGrad { dv, acc in backend.scale(g, by: 1, out: dv, accumulate: acc) }
            }
        }
        return out
    }
}
