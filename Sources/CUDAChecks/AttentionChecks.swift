import Engine
import Foundation
import Layers

/// The causal attention of the CUDA backend (attention.cu) against the CPU's: forward (output
/// and row log-sum-exp) and every gradient at the Backend level, with column-slice inputs,
/// lengths off the 32- and 64-row tiles, head dimensions 5…128 and a sharp softmax; the
/// MultiHeadAttention layer's output and parameter gradients through the tape; and its
/// KV-cache step (which also checks the device-side position counter).
public struct AttentionChecks {
    public let gpu: any Backend
    public let cpu: any Backend

    public init(gpu: any Backend, cpu: any Backend) {
        self.gpu = gpu
        self.cpu = cpu
    }

    /// q, k, v as column slices of one (rows, 3E + 2) buffer, gradients as column slices of another.
    func backendCase(_ b: any Backend, batch: Int, length L: Int, heads: Int, headDim D: Int, scale: Float? = nil, spread: Float = 2) -> [Tensor] {
        let s = AttentionShape(batch: batch, length: L, heads: heads, headDim: D, scale: scale)
        let E = s.width, rows = batch * L
        let packed = b.tensor(hostValues(rows * (3 * E + 2), seed: 71, -spread, spread), shape: [rows, 3 * E + 2])
        let parts = (0..<3).map { packed.columns((1 + $0 * E)..<(1 + ($0 + 1) * E)) }
        let out = b.empty([rows, E]), lse = b.empty([batch, heads, L])
        b.causalAttention(q: parts[0], k: parts[1], v: parts[2], shape: s, out: out, logSumExp: lse)
        let dOut = b.tensor(hostValues(rows * E, seed: 72), shape: [rows, E])
        let grads = b.zeros([rows, 3 * E + 2])
        let g = (0..<3).map { grads.columns((1 + $0 * E)..<(1 + ($0 + 1) * E)) }
        b.causalAttentionBackward(dOut: dOut, q: parts[0], k: parts[1], v: parts[2], out: out, logSumExp: lse, shape: s,
                                  dq: g[0], dk: g[1], dv: g[2])
        return [out, lse, grads]
    }

    /// The layer on the tape: output, input gradient and every parameter gradient of Σ y ⊙ w.
    func layerCase(_ b: any Backend, batch: Int, length L: Int, width E: Int, heads: Int) -> [Tensor] {
        let store = ParameterStore(backend: b)
        let layer = MultiHeadAttention(store, prefix: "", width: E, config: MultiHeadAttentionConfig(heads: heads), seed: 21)
        store.finalize()
        let x = Variable(b.tensor(hostValues(batch * L * E, seed: 22), shape: [batch * L, E]), requiresGrad: true)
        let tape = Tape()
        let y = layer(x, batch: batch, tape)
        tape.backward(from: Op.weightedSum(y, b.tensor(hostValues(batch * L * E, seed: 23), shape: [batch * L, E]), tape))
        return [y.value, x.grad!] + store.parameters.map { $0.grad! }
    }

    /// `steps` KV-cache steps of the layer (cache one row longer), every step's output stacked.
    func stepCase(_ b: any Backend, batch: Int, steps: Int, width E: Int, heads: Int) -> [Tensor] {
        let store = ParameterStore(backend: b)
        let layer = MultiHeadAttention(store, prefix: "", width: E, config: MultiHeadAttentionConfig(heads: heads), seed: 31)
        store.finalize()
        let state = layer.makeStepState(batch: batch, maxLength: steps + 1)
        let xs = hostValues(steps * batch * E, seed: 32)
        let x = b.empty([batch, E]), outs = b.empty([steps, batch * E])
        for t in 0..<steps {
            x.copy(from: Array(xs[(t * batch * E)..<((t + 1) * batch * E)]))
            let y = layer.step(x, state)
            b.copy2D(from: y.reshaped([1, batch * E]), to: outs.slice(rows: t..<(t + 1)), accumulate: false)
        }
        let position = b.tensor(state.position.int32s().map(Float.init), shape: [1])
        return [outs, position]
    }

    public func all() -> [CheckOutcome] {
        let k = KernelChecks(gpu: gpu, cpu: cpu)
        return [
            k.check("causal attention fwd + bwd (batch 2, L 70, 3 heads of 5, column slices)") {
                backendCase($0, batch: 2, length: 70, heads: 3, headDim: 5)
            },
            k.check("causal attention fwd + bwd (batch 1, L 300, 2 heads of 64)") {
                backendCase($0, batch: 1, length: 300, heads: 2, headDim: 64)
            },
            k.check("causal attention fwd + bwd (batch 3, L 33, 1 head of 128)") {
                backendCase($0, batch: 3, length: 33, heads: 1, headDim: 128)
            },
            k.check("causal attention fwd + bwd (batch 2, L 97, 2 heads of 40, scale 2: sharp softmax)") {
                backendCase($0, batch: 2, length: 97, heads: 2, headDim: 40, scale: 2)
            },
            k.check("MultiHeadAttention layer fwd + bwd (batch 2, L 100, E 64, 4 heads)") {
                layerCase($0, batch: 2, length: 100, width: 64, heads: 4)
            },
            k.check("MultiHeadAttention KV-cache step (batch 3, 140 steps, E 48, 2 heads)") {
                stepCase($0, batch: 3, steps: 140, width: 48, heads: 2)
            },
        ]
    }
}
