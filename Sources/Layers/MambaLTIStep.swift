import Engine

/// The recurrent state of a non-selective Mamba block (`MambaLTIBlock`) for `batch` streams,
/// every buffer a step needs allocated once. As `MambaStepState`: the conv state and the SSM
/// state (batch, dInner, N or 2N). A, Δ's zero raw value and the B, C rows are fixed while
/// generating, so they are made now: a snapshot of the parameters (make a new state after
/// they change).
public final class MambaLTIStepState {
    public let batch: Int
    public let convState: Tensor
    public let ssmState: Tensor
    let xz, xc, y: Tensor
    public let out: Tensor
    /// The scan's inputs over the buffers above (views made once: a step allocates nothing).
    let scan: SelectiveScanTensors
    let xPart: Tensor

    init(block: MambaLTIBlock, batch: Int) {
        let c = block.config, b = block.ALog.backend
        let dInner = c.dInner, W = c.stateWidth
        self.batch = batch
        convState = b.zeros([batch, dInner, c.dConv - 1])
        ssmState = b.zeros([batch, dInner, W])
        let A = b.empty(block.ALog.shape)
        b.activation(.exp, x: block.ALog.value, y: A)
        b.scale(A, by: -1, out: A, accumulate: false)
        let ones = b.empty([batch, W])
        b.fill(ones, value: 1)
        let B = b.empty([batch, W]), C = b.empty([batch, W])
        b.mulRowVector(ones, block.B.value, out: B)
        b.mulRowVector(ones, block.C.value, out: C)
        xz = b.empty([batch, 2 * dInner])
        xc = b.empty([batch, dInner])
        y = b.empty([batch, dInner])
        out = b.empty([batch, c.dModel])
        xPart = xz.columns(0..<dInner)
        let shape = SelectiveScanShape(batch: batch, length: 1, channels: dInner, dState: c.dState, isComplex: c.isComplex)
        scan = SelectiveScanTensors(shape: shape, u: xc, delta: b.zeros([batch, dInner]), z: xz.columns(dInner..<(2 * dInner)),
                                    B: B, C: C, A: A, AImag: block.AImag?.value, D: block.D.value, deltaBias: block.dtBias.value)
    }

    /// Forgets all streams' history.
    public func reset() {
        convState.backend.fill(convState, value: 0)
        ssmState.backend.fill(ssmState, value: 0)
    }
}

extension MambaLTIBlock {
    public func makeStepState(batch: Int) -> MambaLTIStepState { MambaLTIStepState(block: self, batch: batch) }

    /// One time step for every stream: x (batch, dModel) → `state.out` (batch, dModel).
    /// Equal to the parallel forward at the same position.
    @discardableResult
    public func step(_ x: Tensor, _ s: MambaLTIStepState) -> Tensor {
        let b = x.backend
        b.linear(x: x, weight: inProj.weight.value, bias: nil, y: s.xz)
        b.causalConv1dStep(x: s.xPart, state: s.convState, weight: conv1dWeight.value, bias: conv1dBias.value, y: s.xc, silu: true)
        b.selectiveScanStep(s.scan, state: s.ssmState, out: s.y)
        b.linear(x: s.y, weight: outProj.weight.value, bias: nil, y: s.out)
        return s.out
    }
}
