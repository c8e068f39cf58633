import COpenBLAS
import Foundation

/// A Gaussian fitted to row vectors: the sample mean and the unbiased (n − 1) covariance,
/// as `np.mean(x, 0)` and `np.cov(x, rowvar=False)` in the FID scripts. Double throughout.
public struct GaussianFit: Sendable, Equatable {
    public let dimension: Int
    /// Samples the fit was made from.
    public let count: Int
    public let mean: [Double]
    /// (dimension, dimension) row-major, symmetric.
    public let covariance: [Double]

    public init(mean: [Double], covariance: [Double], count: Int) {
        precondition(covariance.count == mean.count * mean.count, "covariance must be \(mean.count)²")
        dimension = mean.count
        self.count = count
        self.mean = mean
        self.covariance = covariance
    }

    /// Fits `rows` (n rows of equal length, n ≥ 2).
    public init(rows: [[Double]]) {
        precondition(rows.count >= 2, "a Gaussian fit needs at least 2 samples, got \(rows.count)")
        let n = rows.count, d = rows[0].count
        var mu = [Double](repeating: 0, count: d)
        for r in rows { for k in 0..<d { mu[k] += r[k] } }
        for k in 0..<d { mu[k] /= Double(n) }
        // Centred data, then C = XᶜᵀXᶜ / (n − 1) with one dsyrk.
        var centred = [Double](repeating: 0, count: n * d)
        for (i, r) in rows.enumerated() { for k in 0..<d { centred[i * d + k] = r[k] - mu[k] } }
        var cov = [Double](repeating: 0, count: d * d)
        cblas_dsyrk(CblasRowMajor, CblasUpper, CblasTrans, Int32(d), Int32(n), 1 / Double(n - 1), centred, Int32(d), 0, &cov, Int32(d))
        for i in 0..<d { for j in 0..<i { cov[i * d + j] = cov[j * d + i] } }
        self.init(mean: mu, covariance: cov, count: n)
    }

    /// Fits rows of Float (e.g. classifier embeddings).
    public init(rows: [[Float]]) { self.init(rows: rows.map { $0.map(Double.init) }) }
}

/// The Fréchet distance between two Gaussians (FID when fitted to classifier embeddings):
///
///     d² = ‖μ₁ − μ₂‖² + Tr(Σ₁ + Σ₂ − 2 (Σ₁Σ₂)^½)
///
/// The scripts take `scipy.linalg.sqrtm(Σ₁Σ₂)` of a non-symmetric product and drop an
/// imaginary part. Here the trace comes from the symmetric route, which is exact for PSD
/// matrices and never complex: Tr (Σ₁Σ₂)^½ = Tr (Σ₁^½ Σ₂ Σ₁^½)^½ (the two products are
/// similar), with Σ₁^½ and the outer square root from LAPACK's symmetric eigensolver
/// (`dsyev`, double precision), negative round-off eigenvalues clamped to zero.
public enum FrechetDistance {
    /// Below this many samples per set (relative to the feature dimension d) a warning is
    /// given: with n ≤ d the covariance is singular, and below 2·d the estimate of
    /// Tr (Σ₁Σ₂)^½ is so noisy that FID is strongly biased upward. (SC09 papers score 2048
    /// or more clips; compare FIDs only at equal sample counts.)
    public static func minimumStableSamples(dimension: Int) -> Int { 2 * dimension }

    /// d² between the two fits (clamped at 0 against round-off); NaN when either fit has a
    /// non-finite entry (e.g. a clip whose samples were NaN).
    public static func distance(_ a: GaussianFit, _ b: GaussianFit) -> Double {
        precondition(a.dimension == b.dimension, "Fréchet distance of fits of dimension \(a.dimension) and \(b.dimension)")
        let d = a.dimension
        let finite = (a.mean + a.covariance + b.mean + b.covariance).allSatisfy(\.isFinite)
        guard finite else { return .nan }
        var meanTerm = 0.0
        for k in 0..<d { meanTerm += (a.mean[k] - b.mean[k]) * (a.mean[k] - b.mean[k]) }
        var trace = 0.0
        for k in 0..<d { trace += a.covariance[k * d + k] + b.covariance[k * d + k] }
        return max(0, meanTerm + trace - 2 * traceSqrtProduct(a.covariance, b.covariance, dimension: d))
    }

    /// Tr (Σ₁Σ₂)^½ for symmetric PSD Σ₁, Σ₂ (row-major d×d): Σᵢ √λᵢ(Σ₁^½ Σ₂ Σ₁^½).
    public static func traceSqrtProduct(_ s1: [Double], _ s2: [Double], dimension d: Int) -> Double {
        let root = symmetricSqrt(s1, dimension: d)
        // M = R Σ₂ R (R symmetric), symmetrised against round-off before the eigensolver.
        var t = [Double](repeating: 0, count: d * d), m = [Double](repeating: 0, count: d * d)
        cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(d), Int32(d), Int32(d), 1, root, Int32(d), s2, Int32(d), 0, &t, Int32(d))
        cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(d), Int32(d), Int32(d), 1, t, Int32(d), root, Int32(d), 0, &m, Int32(d))
        for i in 0..<d { for j in 0..<i { let s = 0.5 * (m[i * d + j] + m[j * d + i]); m[i * d + j] = s; m[j * d + i] = s } }
        return symmetricEigen(m, dimension: d).values.reduce(0) { $0 + max(0, $1).squareRoot() }
    }

    /// The PSD square root V·diag(√max(λ, 0))·Vᵀ of a symmetric matrix.
    public static func symmetricSqrt(_ a: [Double], dimension d: Int) -> [Double] {
        let (values, vectors) = symmetricEigen(a, dimension: d)
        // vectors: row-major with eigenvector j in column j. B = V·diag(√λ); R = B·Vᵀ.
        var scaled = vectors
        for i in 0..<d { for j in 0..<d { scaled[i * d + j] *= max(0, values[j]).squareRoot() } }
        var out = [Double](repeating: 0, count: d * d)
        cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(d), Int32(d), Int32(d), 1, scaled, Int32(d), vectors, Int32(d), 0, &out, Int32(d))
        return out
    }

    /// Eigenvalues (ascending) and eigenvectors (columns of a row-major d×d matrix) of a
    /// symmetric matrix, by LAPACK `dsyev`.
    public static func symmetricEigen(_ a: [Double], dimension d: Int) -> (values: [Double], vectors: [Double]) {
        precondition(a.count == d * d)
        var work = a, w = [Double](repeating: 0, count: d)
        let info = LAPACKE_dsyev(LAPACK_ROW_MAJOR, Int8(UInt8(ascii: "V")), Int8(UInt8(ascii: "U")), Int32(d), &work, Int32(d), &w)
        // dsyev fails only for NaN/Inf input or (practically never) non-convergence.
        precondition(info == 0, "LAPACKE_dsyev failed (info \(info)); the covariance has NaN or infinite entries")
        return (w, work)
    }
}
