import Engine
import FusedSteps
import Layers

extension MambaBlock {
    /// The fused step of this block behind a LayerNorm (`norm`: weight, bias), over `state`'s
    /// conv and SSM states: transposed copies of the four projections are made now (a
    /// snapshot of the parameters), the rest is read in place. Nil when the block's widths are
    /// not multiples of 4 (`ResidualMambaStep.supports`).
    public func residualStep(normWeight: Tensor, normBias: Tensor, state s: MambaStepState) -> ResidualMambaStep? {
        let c = config, b = ALog.backend
        guard ResidualMambaStep.supports(dModel: c.dModel, dInner: c.dInner) else { return nil }
        let xColumns = ResidualMambaStep.xProjColumns(dtRank: c.resolvedDtRank, width: c.stateWidth)
        return ResidualMambaStep(
            dModel: c.dModel, dInner: c.dInner, dtRank: c.resolvedDtRank, dState: c.dState, dConv: c.dConv, isComplex: c.isComplex,
            normWeight: normWeight, normBias: normBias, inProjT: b.transposed(inProj.weight.value),
            convWeight: conv1dWeight.value, convBias: conv1dBias.value, xProjT: b.transposed(xProj.weight.value, columns: xColumns),
            dtProjT: b.transposed(dtProj.weight.value), dtBias: dtProj.bias?.value, A: s.A, AImag: AImag?.value, D: D.value,
            outProjT: b.transposed(outProj.weight.value), convState: s.convState, ssmState: s.ssmState)
    }
}
