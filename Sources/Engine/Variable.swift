/// A value in the computation and, when it takes part in differentiation, its gradient.
/// Parameters are named leaves (`name` is the PyTorch state_dict key).
public final class Variable {
    public private(set) var value: Tensor
    public let requiresGrad: Bool
    public let name: String?
    /// Gradient of the loss with respect to `value`; allocated on first use unless the
    /// variable was created with a preallocated gradient (parameters in a `ParameterStore`).
    public private(set) var grad: Tensor?
    /// Parameters accumulate into an existing (zeroed) buffer; intermediates start fresh.
    private var gradIsLive = false

    public init(_ value: Tensor, requiresGrad: Bool = false, name: String? = nil, grad: Tensor? = nil) {
        self.value = value
        self.requiresGrad = requiresGrad || grad != nil
        self.name = name
        self.grad = grad
        self.gradIsLive = grad != nil
    }

    public var shape: [Int] { value.shape }
    public var backend: any Backend { value.backend }

    /// Hands the gradient buffer to `body` with the flag a kernel needs: `accumulate` is
    /// false for the first contribution to a fresh buffer (the kernel overwrites, no zeroing
    /// pass), true afterwards.
    public func withGrad(_ body: (_ grad: Tensor, _ accumulate: Bool) -> Void) {
        precondition(requiresGrad)
        if let g = grad, gradIsLive {
            body(g, true)
        } else {
            let g = grad ?? value.backend.empty(value.shape)
            grad = g
            body(g, false)
            gradIsLive = true
        }
    }

    /// For kernels that can only overwrite: `body` writes this variable's full gradient
    /// contribution into the tensor it is given — the gradient buffer itself when fresh, else a
    /// temporary that is then added in.
    public func overwriteGrad(_ body: (Tensor) -> Void) {
        withGrad { g, accumulate in
            if !accumulate { body(g); return }
            let tmp = value.backend.empty(value.shape)
            body(tmp)
            value.backend.add(g, tmp, out: g)
        }
    }

    /// Points a parameter at new storage (its slot in a flat buffer); values must already be there.
    func rebind(value: Tensor, grad: Tensor) {
        precondition(value.shape == self.value.shape && grad.shape == self.value.shape)
        self.value = value
        self.grad = grad
        self.gradIsLive = true
    }

    /// Makes `grad` this variable's (live) gradient, e.g. the one a recomputed output inherits.
    func seedGrad(_ grad: Tensor) {
        precondition(requiresGrad && grad.shape == value.shape)
        self.grad = grad
        gradIsLive = true
    }

    /// Forgets the gradient of an intermediate (parameters keep their buffer; zero it instead).
    public func clearGrad() {
        gradIsLive = false
    }
}
