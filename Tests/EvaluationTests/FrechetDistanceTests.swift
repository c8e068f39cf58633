import COpenBLAS
import AudioIO
import Foundation
import XCTest
@testable import Evaluation

final class FrechetDistanceTests: XCTestCase {
    /// n samples of N(μ, Σ) with Σ = L·Lᵀ (L lower-triangular, row-major).
    func sample(_ n: Int, mean: [Double], cholesky l: [Double], rng: inout SplitMix64) -> [[Double]] {
        let d = mean.count
        return (0..<n).map { _ in
            let z = (0..<d).map { _ in rng.normal() }
            var x = mean
            for i in 0..<d { for j in 0...i { x[i] += l[i * d + j] * z[j] } }
            return x
        }
    }

    func randomSPD(_ d: Int, rng: inout SplitMix64) -> [Double] {
        let a = (0..<(d * d)).map { _ in rng.normal() }
        var s = [Double](repeating: 0, count: d * d)
        for i in 0..<d {
            for j in 0..<d {
                var acc = 0.0
                for k in 0..<d { acc += a[i * d + k] * a[j * d + k] }
                s[i * d + j] = acc / Double(d)
            }
        }
        for i in 0..<d { s[i * d + i] += 0.1 }
        return s
    }

    func testSetAgainstItselfIsZero() {
        var rng = SplitMix64(seed: 1)
        let rows = (0..<300).map { _ in (0..<32).map { _ in rng.normal() * 3 + 1 } }
        let fit = GaussianFit(rows: rows)
        let trace = (0..<32).reduce(0) { $0 + fit.covariance[$1 * 32 + $1] }
        XCTAssertEqual(FrechetDistance.distance(fit, fit), 0, accuracy: 1e-9 * trace)
        // A singular covariance (fewer samples than dimensions) still gives 0.
        let few = GaussianFit(rows: Array(rows.prefix(10)))
        XCTAssertEqual(FrechetDistance.distance(few, few), 0, accuracy: 1e-8 * trace)
    }

    func testFitMatchesNumpyCov() {
        // np.cov([[1,2],[3,5],[4,4]], rowvar=False) = [[2.3333, 1.8333], [1.8333, 2.3333]]
        let fit = GaussianFit(rows: [[1.0, 2], [3, 5], [4, 4]])
        XCTAssertEqual(fit.mean[0], 8.0 / 3, accuracy: 1e-12)
        XCTAssertEqual(fit.mean[1], 11.0 / 3, accuracy: 1e-12)
        XCTAssertEqual(fit.covariance[0], 7.0 / 3, accuracy: 1e-12)
        XCTAssertEqual(fit.covariance[1], 11.0 / 6, accuracy: 1e-12)
        XCTAssertEqual(fit.covariance[2], 11.0 / 6, accuracy: 1e-12)
        XCTAssertEqual(fit.covariance[3], 7.0 / 3, accuracy: 1e-12)
    }

    /// Tr (Σ₁Σ₂)^½ through the symmetric route equals Σ √λ of the non-symmetric product's
    /// eigenvalues (LAPACK dgeev), for matrices that do not commute.
    func testTraceSqrtMatchesGeneralEigenvalues() {
        var rng = SplitMix64(seed: 7)
        let d = 6
        let s1 = randomSPD(d, rng: &rng), s2 = randomSPD(d, rng: &rng)
        var product = [Double](repeating: 0, count: d * d)
        cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(d), Int32(d), Int32(d), 1, s1, Int32(d), s2, Int32(d), 0, &product, Int32(d))
        var wr = [Double](repeating: 0, count: d), wi = [Double](repeating: 0, count: d)
        var vl = [Double](repeating: 0, count: 1), vr = [Double](repeating: 0, count: 1)
        let info = LAPACKE_dgeev(LAPACK_ROW_MAJOR, Int8(UInt8(ascii: "N")), Int8(UInt8(ascii: "N")), Int32(d), &product, Int32(d), &wr, &wi, &vl, 1, &vr, 1)
        XCTAssertEqual(info, 0)
        for v in wi { XCTAssertEqual(v, 0, accuracy: 1e-9) }  // Σ₁Σ₂ has real, positive eigenvalues
        let expected = wr.reduce(0) { $0 + $1.squareRoot() }
        XCTAssertEqual(FrechetDistance.traceSqrtProduct(s1, s2, dimension: d), expected, accuracy: 1e-9 * expected)
        // And the square root squares back.
        let r = FrechetDistance.symmetricSqrt(s1, dimension: d)
        for i in 0..<d {
            for j in 0..<d {
                var rr = 0.0
                for k in 0..<d { rr += r[i * d + k] * r[k * d + j] }
                XCTAssertEqual(rr, s1[i * d + j], accuracy: 1e-10)
            }
        }
    }

    /// FID of fits to samples of two Gaussians matches the closed form
    /// ‖μ₁−μ₂‖² + Tr(Σ₁ + Σ₂ − 2(Σ₁Σ₂)^½) of the true parameters. Σ₁ = Q D₁ Qᵀ and
    /// Σ₂ = Q D₂ Qᵀ share a random rotation Q, so Tr(Σ₁Σ₂)^½ = Σ √(d₁ᵢ d₂ᵢ) is known
    /// without any matrix square root.
    func testClosedFormOnSampledGaussians() {
        var rng = SplitMix64(seed: 42)
        let d = 4
        // Random orthogonal Q from Gram–Schmidt.
        var q = [[Double]]()
        while q.count < d {
            var v = (0..<d).map { _ in rng.normal() }
            for u in q { let dot = zip(u, v).reduce(0) { $0 + $1.0 * $1.1 }; v = zip(v, u).map { $0 - dot * $1 } }
            let n = v.reduce(0) { $0 + $1 * $1 }.squareRoot()
            q.append(v.map { $0 / n })
        }
        let d1 = [4.0, 1.0, 0.25, 2.0], d2 = [1.0, 3.0, 1.0, 0.5]
        func cov(_ diag: [Double]) -> [Double] {
            var s = [Double](repeating: 0, count: d * d)
            for i in 0..<d { for j in 0..<d { for k in 0..<d { s[i * d + j] += q[k][i] * diag[k] * q[k][j] as Double } } }
            return s
        }
        func cholesky(_ a: [Double]) -> [Double] {
            var l = a
            let info = LAPACKE_dpotrf(LAPACK_ROW_MAJOR, Int8(UInt8(ascii: "L")), Int32(d), &l, Int32(d))
            XCTAssertEqual(info, 0)
            for i in 0..<d { for j in (i + 1)..<d { l[i * d + j] = 0 } }
            return l
        }
        let mu1 = [0.0, 1.0, -1.0, 0.5], mu2 = [1.0, 1.0, 0.0, -0.5]
        let s1 = cov(d1), s2 = cov(d2)
        var closed = 0.0
        for i in 0..<d {
            closed += (mu1[i] - mu2[i]) * (mu1[i] - mu2[i])
            closed += d1[i] + d2[i] - 2 * (d1[i] * d2[i]).squareRoot()
        }
        // Exact on the true parameters…
        let exact = FrechetDistance.distance(GaussianFit(mean: mu1, covariance: s1, count: 0), GaussianFit(mean: mu2, covariance: s2, count: 0))
        XCTAssertEqual(exact, closed, accuracy: 1e-9)
        // …and close on 20 000 samples of each (sampling error ~1 %).
        let a = sample(20000, mean: mu1, cholesky: cholesky(s1), rng: &rng)
        let b = sample(20000, mean: mu2, cholesky: cholesky(s2), rng: &rng)
        let fid = FrechetDistance.distance(GaussianFit(rows: a), GaussianFit(rows: b))
        XCTAssertEqual(fid, closed, accuracy: 0.05 * closed)
        // A shift of the mean alone adds exactly ‖Δμ‖².
        let shifted = a.map { r in r.map { $0 + 2 } }
        XCTAssertEqual(FrechetDistance.distance(GaussianFit(rows: a), GaussianFit(rows: shifted)), 4 * Double(d), accuracy: 1e-8)
    }

    func testNonFiniteGivesNaN() {
        let good = GaussianFit(rows: [[0.0, 1], [1, 0], [2, 2]])
        let bad = GaussianFit(mean: [.nan, 0], covariance: [1, 0, 0, 1], count: 3)
        XCTAssertTrue(FrechetDistance.distance(good, bad).isNaN)
        XCTAssertEqual(FrechetDistance.minimumStableSamples(dimension: 64), 128)
    }
}
