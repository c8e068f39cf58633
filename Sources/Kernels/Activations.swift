// Point-wise activations, forward and backward (llm.c style: each forward beside its backward).
//
// Forward: y[i] = f(x[i]) over `count` contiguous floats (overwrite; y may alias x).
// Backward: dx[i] (+)= dy[i] · f'(·). SiLU, softplus, GELU and ReLU take the forward *input* x;
// exp, sigmoid and tanh take the forward *output* y (cheaper and what the tape keeps anyway).
// `accumulate` true adds into dx (the autodiff tape's default), false overwrites.
//
// Accuracy (measured in ActivationsTests against Double references on [-12, 12]): SiLU,
// sigmoid, softplus, exp, tanh ≤ 2e-7 relative. GELU (Φ through Numerical Recipes' erfcc,
// fractional error < 1.2e-7, with full relative accuracy in the lower tail) ≤ 2e-6 relative
// on [-5, 12]; below, Φ's relative condition number ≈ x² makes it ≤ 1e-6 + 1.5e-7·x²
// (1.4e-5 at x = −12, where GELU ≈ 2e-32). Backward kernels agree with the exact
// derivatives to ≤ 1.2e-6 (floor 1e-2).

// MARK: - Lane-wise math

@_transparent
func abs16(_ x: F16) -> F16 {
    unsafeBitCast(unsafeBitCast(x, to: SIMD16<UInt32>.self) & 0x7fff_ffff, to: F16.self)
}

/// Copies the sign of `s` onto `m` (m ≥ 0).
@_transparent
func withSign(_ m: F16, of s: F16) -> F16 {
    let sb = unsafeBitCast(s, to: SIMD16<UInt32>.self) & 0x8000_0000
    return unsafeBitCast(unsafeBitCast(m, to: SIMD16<UInt32>.self) | sb, to: F16.self)
}

/// tanh with full relative accuracy near 0 (Cephes tanhf: odd polynomial below 0.625,
/// 1 − 2/(e^{2|x|} + 1) above).
@_transparent
func preciseTanh(_ x: F16) -> F16 {
    let ax = abs16(x)
    let e = fastExp(2 * ax)
    let big = 1 - 2 / (e + 1)
    let s = x * x
    var p = F16(repeating: -5.70498872745e-3)
    p = F16(repeating: 2.06390887954e-2).addingProduct(p, s)
    p = F16(repeating: -5.37397155531e-2).addingProduct(p, s)
    p = F16(repeating: 1.33314422036e-1).addingProduct(p, s)
    p = F16(repeating: -3.33332819422e-1).addingProduct(p, s)
    let small = ax.addingProduct(p * s, ax)
    return withSign(simdSelect(ax .>= 0.625, big, small), of: x)
}

/// erfc(z) for z ≥ 0 (Numerical Recipes erfcc, Chebyshev fit, fractional error < 1.2e-7).
@_transparent
func erfcNonNegative(_ z: F16) -> F16 {
    let t = 1 / (1 + 0.5 * z)
    var p = F16(repeating: 0.17087277)
    p = F16(repeating: -0.82215223).addingProduct(p, t)
    p = F16(repeating: 1.48851587).addingProduct(p, t)
    p = F16(repeating: -1.13520398).addingProduct(p, t)
    p = F16(repeating: 0.27886807).addingProduct(p, t)
    p = F16(repeating: -0.18628806).addingProduct(p, t)
    p = F16(repeating: 0.09678418).addingProduct(p, t)
    p = F16(repeating: 0.37409196).addingProduct(p, t)
    p = F16(repeating: 1.00002368).addingProduct(p, t)
    p = F16(repeating: -1.26551223).addingProduct(p, t)
    return t * fastExp(p.addingProduct(-z, z))
}

/// Standard normal CDF Φ(x) = ½ erfc(−x/√2); full relative accuracy in the lower tail.
@_transparent
func normalCDF(_ x: F16) -> F16 {
    let h = 0.5 * erfcNonNegative(abs16(x) * 0.70710678118654752)
    return simdSelect(x .> 0, 1 - h, h)
}

@_transparent
func silu16(_ x: F16) -> F16 { fastSiLU(x) }

/// d/dx silu(x) = σ(x)·(1 + x·(1 − σ(x))).
@_transparent
func siluGrad16(_ x: F16) -> F16 {
    let s = fastSigmoid(x)
    return s * (1 + x * (1 - s))
}

// MARK: - Op structs

struct SiLUOp: UnaryMap { @_transparent func apply(_ x: F16) -> F16 { silu16(x) } }
struct SiLUGradOp: BinaryMap { @_transparent func apply(_ x: F16, _ dy: F16) -> F16 { dy * siluGrad16(x) } }
struct SoftplusOp: UnaryMap { @_transparent func apply(_ x: F16) -> F16 { fastSoftplus(x) } }
struct SoftplusGradOp: BinaryMap {
    @_transparent func apply(_ x: F16, _ dy: F16) -> F16 {
        dy * simdSelect(x .> 20, F16(repeating: 1), fastSigmoid(x))
    }
}
struct ExpOp: UnaryMap { @_transparent func apply(_ x: F16) -> F16 { fastExp(x) } }
struct SigmoidOp: UnaryMap { @_transparent func apply(_ x: F16) -> F16 { fastSigmoid(x) } }
struct SigmoidGradOp: BinaryMap { @_transparent func apply(_ y: F16, _ dy: F16) -> F16 { dy * y * (1 - y) } }
struct TanhOp: UnaryMap { @_transparent func apply(_ x: F16) -> F16 { preciseTanh(x) } }
struct TanhGradOp: BinaryMap { @_transparent func apply(_ y: F16, _ dy: F16) -> F16 { dy * (1 - y * y) } }
struct GELUOp: UnaryMap { @_transparent func apply(_ x: F16) -> F16 { x * normalCDF(x) } }
struct GELUGradOp: BinaryMap {
    @_transparent func apply(_ x: F16, _ dy: F16) -> F16 {
        // Φ(x) + x·φ(x), φ(x) = e^{−x²/2}/√(2π)
        let pdf = fastExp(-0.5 * x * x) * 0.39894228040143268
        return dy * (normalCDF(x) + x * pdf)
    }
}
struct ReLUOp: UnaryMap { @_transparent func apply(_ x: F16) -> F16 { simdSelect(x .> 0, x, F16()) } }
struct ReLUGradOp: BinaryMap { @_transparent func apply(_ x: F16, _ dy: F16) -> F16 { simdSelect(x .> 0, dy, F16()) } }

/// The activations as a value, for layers that choose one at run time.
public enum ActivationKind: Sendable {
    case identity, silu, softplus, exp, sigmoid, tanh, gelu, relu

    /// True when the backward needs the forward output y (exp, sigmoid, tanh); otherwise it
    /// needs the forward input x.
    public var backwardUsesOutput: Bool {
        switch self {
        case .exp, .sigmoid, .tanh: return true
        default: return false
        }
    }
}

public enum Activations {
    /// y = f(x) for the given kind (count elements, overwrite, y may alias x).
    public static func forward(_ kind: ActivationKind, _ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>,
                               count n: Int, pool: ThreadPool) {
        switch kind {
        case .identity: mapUnary(IdentityOp(), x, y, n, pool)
        case .silu: mapUnary(SiLUOp(), x, y, n, pool)
        case .softplus: mapUnary(SoftplusOp(), x, y, n, pool)
        case .exp: mapUnary(ExpOp(), x, y, n, pool)
        case .sigmoid: mapUnary(SigmoidOp(), x, y, n, pool)
        case .tanh: mapUnary(TanhOp(), x, y, n, pool)
        case .gelu: mapUnary(GELUOp(), x, y, n, pool)
        case .relu: mapUnary(ReLUOp(), x, y, n, pool)
        }
    }

    /// dx (+)= dy · f'(·). `saved` is x, or y when `kind.backwardUsesOutput`.
    public static func backward(_ kind: ActivationKind, saved: UnsafePointer<Float>, dy: UnsafePointer<Float>,
                                dx: UnsafeMutablePointer<Float>, count n: Int, accumulate: Bool = true, pool: ThreadPool) {
        switch kind {
        case .identity: mapUnary(IdentityOp(), dy, dx, n, accumulate: accumulate, pool)
        case .silu: mapBinary(SiLUGradOp(), saved, dy, dx, n, accumulate: accumulate, pool)
        case .softplus: mapBinary(SoftplusGradOp(), saved, dy, dx, n, accumulate: accumulate, pool)
        case .exp: mapBinary(MulOp(), saved, dy, dx, n, accumulate: accumulate, pool)
        case .sigmoid: mapBinary(SigmoidGradOp(), saved, dy, dx, n, accumulate: accumulate, pool)
        case .tanh: mapBinary(TanhGradOp(), saved, dy, dx, n, accumulate: accumulate, pool)
        case .gelu: mapBinary(GELUGradOp(), saved, dy, dx, n, accumulate: accumulate, pool)
        case .relu: mapBinary(ReLUGradOp(), saved, dy, dx, n, accumulate: accumulate, pool)
        }
    }

    /// y = x·σ(x).
    public static func silu(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, count n: Int, pool: ThreadPool) {
        mapUnary(SiLUOp(), x, y, n, pool)
    }
    /// dx (+)= dy·σ(x)(1 + x(1 − σ(x))).
    public static func siluBackward(x: UnsafePointer<Float>, dy: UnsafePointer<Float>, dx: UnsafeMutablePointer<Float>,
                                    count n: Int, accumulate: Bool = true, pool: ThreadPool) {
        mapBinary(SiLUGradOp(), x, dy, dx, n, accumulate: accumulate, pool)
    }

    /// y = log(1 + eˣ) (PyTorch threshold: x > 20 → x).
    public static func softplus(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, count n: Int, pool: ThreadPool) {
        mapUnary(SoftplusOp(), x, y, n, pool)
    }
    /// dx (+)= dy·σ(x) (1 above the threshold).
    public static func softplusBackward(x: UnsafePointer<Float>, dy: UnsafePointer<Float>, dx: UnsafeMutablePointer<Float>,
                                        count n: Int, accumulate: Bool = true, pool: ThreadPool) {
        mapBinary(SoftplusGradOp(), x, dy, dx, n, accumulate: accumulate, pool)
    }

    /// y = eˣ (below −87.3 gives 0).
    public static func exp(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, count n: Int, pool: ThreadPool) {
        mapUnary(ExpOp(), x, y, n, pool)
    }
    /// dx (+)= dy·y, from the forward output y.
    public static func expBackward(y: UnsafePointer<Float>, dy: UnsafePointer<Float>, dx: UnsafeMutablePointer<Float>,
                                   count n: Int, accumulate: Bool = true, pool: ThreadPool) {
        mapBinary(MulOp(), y, dy, dx, n, accumulate: accumulate, pool)
    }

    /// y = 1/(1 + e^{−x}).
    public static func sigmoid(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, count n: Int, pool: ThreadPool) {
        mapUnary(SigmoidOp(), x, y, n, pool)
    }
    /// dx (+)= dy·y(1 − y), from the forward output y.
    public static func sigmoidBackward(y: UnsafePointer<Float>, dy: UnsafePointer<Float>, dx: UnsafeMutablePointer<Float>,
                                       count n: Int, accumulate: Bool = true, pool: ThreadPool) {
        mapBinary(SigmoidGradOp(), y, dy, dx, n, accumulate: accumulate, pool)
    }

    /// y = tanh(x) (full relative accuracy near 0).
    public static func tanh(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, count n: Int, pool: ThreadPool) {
        mapUnary(TanhOp(), x, y, n, pool)
    }
    /// dx (+)= dy·(1 − y²), from the forward output y.
    public static func tanhBackward(y: UnsafePointer<Float>, dy: UnsafePointer<Float>, dx: UnsafeMutablePointer<Float>,
                                    count n: Int, accumulate: Bool = true, pool: ThreadPool) {
        mapBinary(TanhGradOp(), y, dy, dx, n, accumulate: accumulate, pool)
    }

    /// y = x·Φ(x) = ½x(1 + erf(x/√2)) (PyTorch's default, exact-erf GELU).
    public static func gelu(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, count n: Int, pool: ThreadPool) {
        mapUnary(GELUOp(), x, y, n, pool)
    }
    /// dx (+)= dy·(Φ(x) + x·φ(x)).
    public static func geluBackward(x: UnsafePointer<Float>, dy: UnsafePointer<Float>, dx: UnsafeMutablePointer<Float>,
                                    count n: Int, accumulate: Bool = true, pool: ThreadPool) {
        mapBinary(GELUGradOp(), x, dy, dx, n, accumulate: accumulate, pool)
    }

    /// y = max(x, 0) (NaN → 0).
    public static func relu(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, count n: Int, pool: ThreadPool) {
        mapUnary(ReLUOp(), x, y, n, pool)
    }
    /// dx (+)= dy·[x > 0].
    public static func reluBackward(x: UnsafePointer<Float>, dy: UnsafePointer<Float>, dx: UnsafeMutablePointer<Float>,
                                    count n: Int, accumulate: Bool = true, pool: ThreadPool) {
        mapBinary(ReLUGradOp(), x, dy, dx, n, accumulate: accumulate, pool)
    }
}
