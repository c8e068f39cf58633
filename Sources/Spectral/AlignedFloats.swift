import CFFTW

/// An owned, zero-initialised float buffer from `fftwf_malloc`, so it has the SIMD alignment
/// that FFTW's plans were made for (the new-array execute functions require it).
/// A class only so that `deinit` can free it; the floats themselves are reached by pointer.
final class AlignedFloats {
    let pointer: UnsafeMutablePointer<Float>
    let count: Int

    /// `count` floats (at least one, so the pointer is never null), all zero.
    init(count: Int) {
        self.count = max(1, count)
        guard let p = fftwf_alloc_real(self.count) else { fatalError("fftwf_alloc_real(\(count)) failed") }
        p.initialize(repeating: 0, count: self.count)
        pointer = p
    }

    deinit { fftwf_free(pointer) }
}
