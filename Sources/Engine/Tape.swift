/// Reverse-mode autodiff over coarse ops. Each op runs its forward at once and, while the
/// tape records, appends a closure that computes its inputs' gradients from its output's.
/// `backward` runs the closures newest first. An inference tape records nothing, so no
/// activation is kept alive for a backward pass.
public final class Tape {
    public let isRecording: Bool
    private var entries: [(op: String, backward: () -> Void)] = []

    public init(recording: Bool = true) { isRecording = recording }

    /// An inference-mode tape.
    public static func inference() -> Tape { Tape(recording: false) }

    /// Whether an op with these inputs must record a backward.
    public func needsGrad(_ inputs: Variable?...) -> Bool {
        isRecording && inputs.contains { $0?.requiresGrad == true }
    }

    /// Records `backward` for op `op` (used by every op, including those of higher layers).
    public func record(_ op: String, _ backward: @escaping () -> Void) {
        precondition(isRecording)
        entries.append((op, backward))
    }

    public var count: Int { entries.count }
    public var ops: [String] { entries.map(\.op) }

    /// Seeds d(loss)/d(loss) = `seed` and runs the recorded backwards, newest first. The tape
    /// is emptied afterwards, releasing the activations it held.
    public func backward(from loss: Variable, seed: Float = 1) {
        precondition(loss.value.count == 1, "backward starts from a scalar loss")
        loss.withGrad { g, accumulate in
            if accumulate {
                let one = loss.backend.tensor([seed], shape: loss.shape)
                loss.backend.add(g, one, out: g)
            } else {
                loss.backend.fill(g, value: seed)
            }
        }
        while let e = entries.popLast() { e.backward() }
    }

    /// Runs the recorded backwards, newest first, from `output` whose gradient is `grad`
    /// (`Op.recompute`: the gradient its outer output received). `grad` is shared, not copied.
    public func backward(from output: Variable, grad: Tensor) {
        output.seedGrad(grad)
        while let e = entries.popLast() { e.backward() }
    }

    /// Drops everything recorded (e.g. after a skipped step).
    public func reset() { entries.removeAll() }
}
