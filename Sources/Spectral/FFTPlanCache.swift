import CFFTW
import Foundation

// FFTW's flag macros are shifts, which Swift does not import; values from fftw3.h.
let fftwMeasure: UInt32 = 0
let fftwDestroyInput: UInt32 = 1 << 0
let fftwEstimate: UInt32 = 1 << 6

/// Serialises every call into FFTW's planner (plan creation and destruction). The planner is
/// process-wide state inside libfftw3f, so per-cache locks alone would still let two caches
/// plan at once. `fftwf_make_planner_thread_safe` would do the same job but lives in
/// libfftw3f_threads, which CFFTW does not link. Immutable itself; it only guards FFTW.
enum FFTWPlanner {
    static let lock = NSLock()
}

/// The shape of a batch of 1-D real↔complex transforms in FFTW's advanced ("many") layout:
/// transform `i`, element `t` lives at `i·distance + t·stride` of its array. Strides and
/// distances are in elements (floats for the real side, complex pairs for the other).
struct RealFFTShape: Hashable, Sendable {
    enum Direction: Hashable, Sendable { case forward, inverse }  // r2c, c2r

    var direction: Direction
    /// Transform length n (real samples); the complex side has n/2 + 1 bins.
    var size: Int
    /// How many transforms one execution does.
    var count: Int
    var realStride: Int
    var realDistance: Int
    var complexStride: Int
    var complexDistance: Int

    var bins: Int { size / 2 + 1 }
    /// Floats the real array must hold.
    var realExtent: Int { (count - 1) * realDistance + (size - 1) * realStride + 1 }
    /// Floats (two per bin) the complex array must hold.
    var complexExtent: Int { 2 * ((count - 1) * complexDistance + (bins - 1) * complexStride + 1) }
}

/// Views interleaved floats as FFTW's `fftwf_complex` (float[2]); same memory layout.
@inline(__always)
func asComplex(_ p: UnsafeMutablePointer<Float>) -> UnsafeMutablePointer<fftwf_complex> {
    UnsafeMutableRawPointer(p).assumingMemoryBound(to: fftwf_complex.self)
}

/// A plan owned by an `FFTPlanCache`. Executing is thread-safe (FFTW's new-array execute
/// functions only read the plan), so many threads may run one plan on different buffers.
/// The buffers must come from `fftwf_malloc` (`AlignedFloats`): a plan assumes the
/// alignment of the arrays it was made with.
struct FFTPlan: @unchecked Sendable {
    let raw: OpaquePointer
    let shape: RealFFTShape

    /// Real `input` → complex `output` (interleaved re, im). Leaves `input` intact.
    @inline(__always)
    func forward(_ input: UnsafeMutablePointer<Float>, _ output: UnsafeMutablePointer<Float>) {
        fftwf_execute_dft_r2c(raw, input, asComplex(output))
    }

    /// Complex `input` → real `output`, unnormalised (scaled by n). Destroys `input`.
    @inline(__always)
    func inverse(_ input: UnsafeMutablePointer<Float>, _ output: UnsafeMutablePointer<Float>) {
        fftwf_execute_dft_c2r(raw, asComplex(input), output)
    }
}

/// Owns FFTW plans, made once per transform shape and reused. Thread-safe: lookups and
/// planning are under a lock; the plans it hands out may be executed concurrently.
///
/// Create one per model or evaluator and keep it alive as long as anything that got plans
/// from it (`FFTConvolution`, `STFT` hold a strong reference). `deinit` destroys the plans.
public final class FFTPlanCache: @unchecked Sendable {
    /// How hard FFTW searches for a fast plan.
    public enum Rigor: Sendable {
        /// Heuristic plans, made in microseconds. The same FFTW build always picks the same
        /// algorithm, so results are reproducible across processes. The default.
        case estimate
        /// Times candidate algorithms while planning (up to seconds for long transforms).
        /// Can be faster to execute, but the chosen algorithm — and so the last bits of the
        /// results — may differ between runs of the program.
        case measure
    }

    public let rigor: Rigor
    private let lock = NSLock()
    private var plans: [RealFFTShape: FFTPlan] = [:]

    public init(rigor: Rigor = .estimate) {
        self.rigor = rigor
    }

    deinit {
        FFTWPlanner.lock.lock()
        for plan in plans.values { fftwf_destroy_plan(plan.raw) }
        FFTWPlanner.lock.unlock()
    }

    /// Number of distinct plans made so far.
    public var count: Int {
        lock.lock(); defer { lock.unlock() }
        return plans.count
    }

    /// The plan for `shape`, made on first request.
    func plan(_ shape: RealFFTShape) -> FFTPlan {
        lock.lock(); defer { lock.unlock() }
        if let plan = plans[shape] { return plan }
        FFTWPlanner.lock.lock(); defer { FFTWPlanner.lock.unlock() }
        let plan = make(shape)
        plans[shape] = plan
        return plan
    }

    private func make(_ s: RealFFTShape) -> FFTPlan {
        precondition(s.size >= 1 && s.count >= 1, "empty FFT shape \(s)")
        // Scratch arrays only to show FFTW the extents and alignment; measuring overwrites them.
        let real = AlignedFloats(count: s.realExtent)
        let complex = AlignedFloats(count: s.complexExtent)
        var n = Int32(s.size)
        let cplx = asComplex(complex.pointer)
        let flags = (rigor == .estimate ? fftwEstimate : fftwMeasure)
        let raw: OpaquePointer?
        switch s.direction {
        case .forward:
            raw = fftwf_plan_many_dft_r2c(1, &n, Int32(s.count),
                                          real.pointer, nil, Int32(s.realStride), Int32(s.realDistance),
                                          cplx, nil, Int32(s.complexStride), Int32(s.complexDistance),
                                          flags)
        case .inverse:
            raw = fftwf_plan_many_dft_c2r(1, &n, Int32(s.count),
                                          cplx, nil, Int32(s.complexStride), Int32(s.complexDistance),
                                          real.pointer, nil, Int32(s.realStride), Int32(s.realDistance),
                                          flags | fftwDestroyInput)
        }
        guard let raw else { fatalError("FFTW could not plan \(s)") }
        return FFTPlan(raw: raw, shape: s)
    }
}
