import Engine

/// The recurrent state of a Mamba block for step-by-step generation, with every buffer a
/// step needs allocated once: a step allocates nothing. Holds the conv state (the last
/// d_conv − 1 inputs) and the SSM state (batch, dInner, N or 2N) of `batch` streams.
public final class MambaStepState {
    public let batch: Int
    public let convState: Tensor
    public let ssmState: Tensor
    /// A = −exp(A_log) (dInner, dState), computed once (the fused step reads it too).
    public let A: Tensor
    let xz, xc, dbl, delta, y: Tensor
    public let out: Tensor
    /// Views into the buffers above, made once (a view is a small struct with a shape array:
    /// building them per step would allocate).
    let scan: SelectiveScanTensors
    let xPart, dtPart: Tensor

    init(block: MambaBlock, batch: Int) {
        let c = block.config, b = block.ALog.backend
        let dInner = c.dInner, W = c.stateWidth
        self.batch = batch
        convState = b.zeros([batch, dInner, c.dConv - 1])
        ssmState = b.zeros([batch, dInner, W])
        // A = −exp(A_log) is fixed while generating: compute it once.
        A = b.empty(block.ALog.shape)
        b.activation(.exp, x: block.ALog.value, y: A)
        b.scale(A, by: -1, out: A, accumulate: false)
        xz = b.empty([batch, 2 * dInner])
        xc = b.empty([batch, dInner])
        dbl = b.empty([batch, c.resolvedDtRank + 2 * W])
        delta = b.empty([batch, dInner])
        y = b.empty([batch, dInner])
        out = b.empty([batch, c.dModel])
        let R = c.resolvedDtRank
        xPart = xz.columns(0..<dInner)
        dtPart = dbl.columns(0..<R)
        let shape = SelectiveScanShape(batch: batch, length: 1, channels: dInner, dState: c.dState, isComplex: c.isComplex)
        scan = SelectiveScanTensors(shape: shape, u: xc, delta: delta, z: xz.columns(dInner..<(2 * dInner)),
                                    B: dbl.columns(R..<(R + W)), C: dbl.columns((R + W)..<(R + 2 * W)), A: A,
                                    AImag: block.AImag?.value, D: block.D.value, deltaBias: block.dtProj.bias?.value)
    }

    /// Forgets all streams' history.
    public func reset() {
        convState.backend.fill(convState, value: 0)
        ssmState.backend.fill(ssmState, value: 0)
    }
}

extension MambaBlock {
    public func makeStepState(batch: Int) -> MambaStepState { MambaStepState(block: self, batch: batch) }

    /// One time step for every stream: x (batch, dModel) → `state.out` (batch, dModel).
    /// Equal to the parallel forward at the same position.
    @discardableResult
    public func step(_ x: Tensor, _ s: MambaStepState) -> Tensor {
        let b = x.backend
        b.linear(x: x, weight: inProj.weight.value, bias: nil, y: s.xz)
        b.causalConv1dStep(x: s.xPart, state: s.convState, weight: conv1dWeight.value, bias: conv1dBias.value, y: s.xc, silu: true)
        b.linear(x: s.xc, weight: xProj.weight.value, bias: nil, y: s.dbl)
        b.linear(x: s.dtPart, weight: dtProj.weight.value, bias: nil, y: s.delta)
        b.selectiveScanStep(s.scan, state: s.ssmState, out: s.y)
        b.linear(x: s.y, weight: outProj.weight.value, bias: nil, y: s.out)
        return s.out
    }
}
