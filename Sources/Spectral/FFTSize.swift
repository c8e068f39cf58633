/// FFT lengths that FFTW transforms fast.
public enum FFTSize {
    /// The smallest 7-smooth number (2^a·3^b·5^c·7^d) that is at least `n` (and at least 1).
    /// FFTW has hard-coded codelets for these radices; larger prime factors fall back to
    /// slower generic or Rader algorithms.
    public static func smooth(atLeast n: Int) -> Int {
        var m = max(1, n)
        while !isSmooth(m) { m += 1 }
        return m
    }

    /// Whether `n` has no prime factor above 7.
    public static func isSmooth(_ n: Int) -> Bool {
        guard n > 0 else { return false }
        var m = n
        for p in [2, 3, 5, 7] { while m % p == 0 { m /= p } }
        return m == 1
    }
}
