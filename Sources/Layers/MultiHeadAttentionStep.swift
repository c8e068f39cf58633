import Engine

extension MultiHeadAttention {
    /// The KV cache of a causal attention layer for step-by-step generation of `batch` streams,
    /// up to `maxLength` steps, with every buffer a step needs allocated once: a step allocates
    /// nothing. Memory: 2·batch·maxLength·E floats (at E = 256, 16 streams and 16 000 steps, 500 MB).
    ///
    /// The step position lives on the device (`Backend.causalAttentionStep` reads and advances
    /// it), so a captured step graph replays correctly; `length` mirrors it on the host.
    public final class StepState {
        public let batch: Int
        public let maxLength: Int
        /// (batch, maxLength, E): the keys and values of the steps so far.
        public let keyCache: Tensor
        public let valueCache: Tensor
        /// Int32 [1]: the next step's row in the caches.
        public let position: Tensor
        /// Steps taken since the last reset (the host's copy of `position`).
        public internal(set) var length = 0
        /// (batch, 3E) in_proj output, and its q, k, v column views (made once: a view is a small
        /// struct with a shape array, building one per step would allocate).
        let qkv: Tensor
        let q: Tensor, k: Tensor, v: Tensor
        /// (batch, E): the heads' outputs before out_proj, and the layer's output of the last step.
        let attended: Tensor
        public let out: Tensor

        init(layer: MultiHeadAttention, batch: Int, maxLength: Int) {
            precondition(batch > 0 && maxLength > 0, "MultiHeadAttention step state: batch \(batch), maxLength \(maxLength)")
            let b = layer.inProjWeight.backend, E = layer.width
            self.batch = batch
            self.maxLength = maxLength
            keyCache = b.zeros([batch, maxLength, E])
            valueCache = b.zeros([batch, maxLength, E])
            position = b.empty([1], dtype: .int32)
            qkv = b.empty([batch, 3 * E])
            q = qkv.columns(0..<E)
            k = qkv.columns(E..<(2 * E))
            v = qkv.columns((2 * E)..<(3 * E))
            attended = b.empty([batch, E])
            out = b.empty([batch, E])
            reset()
        }

        /// Forgets every stream's history (the caches' rows are overwritten as steps come).
        public func reset() {
            position.copy(from: [Int32(0)])
            length = 0
        }

        /// Counts a step that a replayed step graph took on the device.
        public func advanceWithoutLaunching() {
            precondition(length < maxLength, "MultiHeadAttention step: the KV cache holds \(maxLength) steps")
            length += 1
        }
    }

    public func makeStepState(batch: Int, maxLength: Int) -> StepState { StepState(layer: self, batch: batch, maxLength: maxLength) }

    /// One time step of every stream: x (batch, E) → `state.out` (batch, E). Equal to the
    /// parallel forward's output at the same position.
    @discardableResult
    public func step(_ x: Tensor, _ s: StepState) -> Tensor {
        precondition(x.rows == s.batch && x.columns == width, "MultiHeadAttention step: input \(x.shape), expected \([s.batch, width])")
        precondition(s.length < s.maxLength, "MultiHeadAttention step: the KV cache holds \(s.maxLength) steps")
        let b = x.backend
        b.linear(x: x, weight: inProjWeight.value, bias: inProjBias.value, y: s.qkv)
        b.causalAttentionStep(q: s.q, k: s.k, v: s.v, keyCache: s.keyCache, valueCache: s.valueCache, position: s.position, out: s.attended,
                              heads: heads, scale: scale)
        b.linear(x: s.attended, weight: outProj.weight.value, bias: outProj.bias?.value, y: s.out)
        s.length += 1
        return s.out
    }
}
