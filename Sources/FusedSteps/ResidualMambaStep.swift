import Engine

/// Everything one fused generation step of a pre-norm residual Mamba block reads and updates
/// (`StepGraphBackend.residualMambaSteps`): out = x + Mamba(LayerNorm(x)) for every stream.
/// The projections are held transposed, (in, out), the layout a fused kernel reads coalesced;
/// they are copies made when the step state is (a snapshot: make a new state after the
/// parameters change). The states are the unfused step's (`MambaStepState`), so either path
/// can take the next step.
public struct ResidualMambaStep {
    public let dModel: Int, dInner: Int, dtRank: Int, dState: Int, dConv: Int
    public let isComplex: Bool
    /// LayerNorm weight and bias (dModel).
    public let normWeight: Tensor, normBias: Tensor
    /// (dModel, 2·dInner).
    public let inProjT: Tensor
    /// (dInner, 1, dConv) and (dInner).
    public let convWeight: Tensor, convBias: Tensor
    /// (dInner, `xProjColumns`): dtRank + 2W columns (W = dState real or 2·dState complex, B and
    /// C interleaved re/im), then zero columns up to a multiple of 4 (16-byte rows for vector loads).
    public let xProjT: Tensor
    /// (dtRank, dInner) and its bias (dInner), added before the softplus.
    public let dtProjT: Tensor
    public let dtBias: Tensor?
    /// (dInner, dState): A = −exp(A_log), and A's imaginary part when complex.
    public let A: Tensor, AImag: Tensor?
    /// (dInner): the skip D.
    public let D: Tensor
    /// (dInner, dModel).
    public let outProjT: Tensor
    /// (batch, dInner, dConv − 1) and (batch, dInner, W): updated in place.
    public let convState: Tensor, ssmState: Tensor

    public init(dModel: Int, dInner: Int, dtRank: Int, dState: Int, dConv: Int, isComplex: Bool, normWeight: Tensor, normBias: Tensor,
                inProjT: Tensor, convWeight: Tensor, convBias: Tensor, xProjT: Tensor, dtProjT: Tensor, dtBias: Tensor?,
                A: Tensor, AImag: Tensor?, D: Tensor, outProjT: Tensor, convState: Tensor, ssmState: Tensor) {
        precondition(dModel % 4 == 0 && dInner % 4 == 0, "ResidualMambaStep: dModel \(dModel) and dInner \(dInner) must be multiples of 4")
        let W = isComplex ? 2 * dState : dState
        precondition(inProjT.shape == [dModel, 2 * dInner] && xProjT.shape == [dInner, Self.xProjColumns(dtRank: dtRank, width: W)]
                     && dtProjT.shape == [dtRank, dInner] && outProjT.shape == [dInner, dModel],
                     "ResidualMambaStep: transposed projections \(inProjT.shape), \(xProjT.shape), \(dtProjT.shape), \(outProjT.shape) "
                     + "do not fit dModel \(dModel), dInner \(dInner), dtRank \(dtRank), W \(W)")
        precondition(!isComplex || AImag != nil, "ResidualMambaStep: a complex block needs A_imag")
        self.dModel = dModel; self.dInner = dInner; self.dtRank = dtRank; self.dState = dState; self.dConv = dConv
        self.isComplex = isComplex
        self.normWeight = normWeight; self.normBias = normBias
        self.inProjT = inProjT; self.convWeight = convWeight; self.convBias = convBias
        self.xProjT = xProjT; self.dtProjT = dtProjT; self.dtBias = dtBias
        self.A = A; self.AImag = AImag; self.D = D; self.outProjT = outProjT
        self.convState = convState; self.ssmState = ssmState
    }

    /// x_proj's columns in the transposed copy: dtRank + 2W rounded up to a multiple of 4.
    public static func xProjColumns(dtRank: Int, width W: Int) -> Int { (dtRank + 2 * W + 3) / 4 * 4 }
    public var xProjColumns: Int { xProjT.shape[1] }

    /// Whether a block of this size can take the fused step (its rows are whole 16-byte vectors).
    public static func supports(dModel: Int, dInner: Int) -> Bool { dModel % 4 == 0 && dInner % 4 == 0 }

    /// Bytes of the four projections (what each thread block of a fused step reads).
    public var projectionBytes: Int { 4 * (inProjT.count + xProjT.count + dtProjT.count + outProjT.count) }

    /// Streams (rows of the states).
    public var batch: Int { ssmState.shape[0] }
}
