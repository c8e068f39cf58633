import Kernels

public typealias SelectiveScanShape = Kernels.SelectiveScanShape

/// The inputs of a selective scan as tensors (token-major; any may be a column-slice view,
/// whose row stride the kernels honour). See Kernels/SelectiveScan.swift for the maths.
public struct SelectiveScanTensors {
    public var shape: SelectiveScanShape
    /// (batch·L, D) each.
    public var u: Tensor
    public var delta: Tensor
    public var z: Tensor?
    /// (batch·L, N) real or (batch·L, 2N) complex interleaved.
    public var B: Tensor
    public var C: Tensor
    /// (D, N): A, or A's real part when complex.
    public var A: Tensor
    public var AImag: Tensor?
    public var D: Tensor?
    public var deltaBias: Tensor?

    public init(shape: SelectiveScanShape, u: Tensor, delta: Tensor, z: Tensor?, B: Tensor, C: Tensor, A: Tensor,
                AImag: Tensor?, D: Tensor?, deltaBias: Tensor?) {
        self.shape = shape
        self.u = u; self.delta = delta; self.z = z; self.B = B; self.C = C
        self.A = A; self.AImag = AImag; self.D = D; self.deltaBias = deltaBias
    }
}

/// Where the scan's backward writes (all overwritten), shapes as the inputs.
public struct SelectiveScanGradientTensors {
    public var du: Tensor
    public var dDelta: Tensor
    public var dz: Tensor?
    public var dB: Tensor
    public var dC: Tensor
    public var dA: Tensor
    public var dAImag: Tensor?
    public var dD: Tensor?
    public var dDeltaBias: Tensor?

    public init(du: Tensor, dDelta: Tensor, dz: Tensor?, dB: Tensor, dC: Tensor, dA: Tensor, dAImag: Tensor?, dD: Tensor?, dDeltaBias: Tensor?) {
        self.du = du; self.dDelta = dDelta; self.dz = dz; self.dB = dB; self.dC = dC
        self.dA = dA; self.dAImag = dAImag; self.dD = dD; self.dDeltaBias = dDeltaBias
    }
}
