/// How the optimiser treats a parameter.
public struct ParameterOptions: Sendable, Equatable, Codable {
    /// Decoupled weight decay may apply (off for biases, norms, and Mamba's A_log and D, as
    /// the official code marks them with `_no_weight_decay`).
    public var weightDecay: Bool
    /// One of the SSM parameters (A, Δ): the optimiser's SSM settings cap its learning rate
    /// and decide whether its decay applies (`AdamWOptimizer.Config.ssmLearningRate`).
    public var ssm: Bool

    public init(weightDecay: Bool = true, ssm: Bool = false) {
        self.weightDecay = weightDecay
        self.ssm = ssm
    }

    public static let noDecay = ParameterOptions(weightDecay: false)
    /// A_log, A_imag, dt_proj.bias, S4D's A and log Δ: never decayed (mamba_ssm and S4 agree).
    public static let ssm = ParameterOptions(weightDecay: false, ssm: true)
    /// Δ's projection matrix (dt_proj.weight): a plain weight to mamba_ssm, an SSM parameter to
    /// S4's convention; `AdamWOptimizer.Config.ssmWeightDecay` chooses.
    public static let ssmProjection = ParameterOptions(weightDecay: true, ssm: true)
}

/// All parameters of a model, under their PyTorch state_dict names.
///
/// Layers create and register their parameters one by one; `finalize()` then moves them
/// into one flat value buffer and one flat gradient buffer (each parameter a view), so the
/// optimiser, gradient clipping, EMA and the data-parallel all-reduce each work on a few
/// large contiguous ranges instead of hundreds of small tensors.
public final class ParameterStore {
    public let backend: any Backend
    public private(set) var parameters: [Variable] = []
    public private(set) var options: [ParameterOptions] = []
    /// Element offset of each parameter in the flat buffers.
    public private(set) var offsets: [Int] = []
    public private(set) var values: Tensor?
    public private(set) var grads: Tensor?
    private var index: [String: Int] = [:]

    public init(backend: any Backend) { self.backend = backend }

    public var count: Int { parameters.reduce(0) { $0 + $1.value.count } }
    public var names: [String] { parameters.map { $0.name! } }
    public var isFinalized: Bool { values != nil }

    /// Registers a new parameter with initial `values` (host) under `name`.
    @discardableResult
    public func add(_ name: String, shape: [Int], values: [Float], options: ParameterOptions = ParameterOptions()) -> Variable {
        precondition(!isFinalized, "parameters are added before finalize()")
        precondition(index[name] == nil, "duplicate parameter name \(name)")
        precondition(values.count == shape.reduce(1, *), "\(name): \(values.count) values for shape \(shape)")
        let v = Variable(backend.tensor(values, shape: shape), requiresGrad: true, name: name)
        index[name] = parameters.count
        parameters.append(v)
        self.options.append(options)
        return v
    }

    /// Registers a parameter filled by `initialise` on the backend (e.g. seeded normal).
    @discardableResult
    public func add(_ name: String, shape: [Int], options: ParameterOptions = ParameterOptions(),
                    initialise: (Tensor) -> Void) -> Variable {
        let t = backend.empty(shape)
        initialise(t)
        return add(name, shape: shape, values: t.floats(), options: options)
    }

    public subscript(name: String) -> Variable? { index[name].map { parameters[$0] } }

    /// Packs every parameter into the flat buffers. Call once, after the model is built.
    public func finalize() {
        precondition(!isFinalized)
        let total = count
        let flatValues = backend.empty([total]), flatGrads = backend.zeros([total])
        var offset = 0
        offsets = []
        for p in parameters {
            let n = p.value.count
            let v = Tensor(storage: flatValues.storage, offset: offset, shape: p.value.shape)
            let g = Tensor(storage: flatGrads.storage, offset: offset, shape: p.value.shape)
            backend.copy2D(from: p.value.reshaped([1, n]), to: v.reshaped([1, n]), accumulate: false)
            p.rebind(value: v, grad: g)
            offsets.append(offset)
            offset += n
        }
        values = flatValues
        grads = flatGrads
    }

    public func zeroGrad() {
        if let grads { backend.fill(grads, value: 0) }
    }

    /// Consecutive runs of parameters that share options, as flat ranges (optimiser calls).
    public var optionRuns: [(range: Range<Int>, options: ParameterOptions)] {
        var runs: [(Range<Int>, ParameterOptions)] = []
        for (i, p) in parameters.enumerated() {
            let r = offsets[i]..<(offsets[i] + p.value.count)
            if let last = runs.last, last.1 == options[i], last.0.upperBound == r.lowerBound {
                runs[runs.count - 1].0 = last.0.lowerBound..<r.upperBound
            } else {
                runs.append((r, options[i]))
            }
        }
        return runs
    }

    /// A flat range of a flat buffer as a 1-D view.
    public func view(_ flat: Tensor, _ range: Range<Int>) -> Tensor {
        Tensor(storage: flat.storage, offset: flat.offset + range.lowerBound, shape: [range.count])
    }
}
