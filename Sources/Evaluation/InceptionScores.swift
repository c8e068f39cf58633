import Foundation

/// Classifier-based scores of a set of class distributions p(y|x) (rows of `probabilities`,
/// each summing to 1), as defined for SC09 by the WaveGAN / DiffWave / SaShiMi evaluations:
///
/// - Inception Score  IS  = exp(E_x KL(p(y|x) ‖ p(y))), p(y) = E_x p(y|x) over the same set:
///   high when each clip is classified confidently and all classes occur (1 … K).
///   (SaShiMi's script takes p(y) from a held-out random half of the clips instead; with
///   hundreds of clips the two agree closely, and this one is deterministic.)
/// - modified IS      mIS = exp(E_{x,x'} KL(p(y|x) ‖ p(y|x'))), x, x' independent draws
///   from the set (all n² ordered pairs, x = x' included): also rewards diversity within
///   a class. SaShiMi's script estimates the same expectation from 10 000 random pairs.
/// - AM score         AM  = KL(p_ref(y) ‖ p_gen(y)) + E_x H(p(y|x)): the label marginal
///   should match the reference set's and each clip should be confident; lower is better
///   (0 at best).
///
/// All in nats inside, Double throughout. A zero probability contributes 0 as p, and is
/// floored at `InceptionScores.floor` as q, so a KL term is at most −log(floor) ≈ 27.6
/// rather than infinite (one-hot rows would otherwise make mIS infinite).
public enum InceptionScores {
    public static let floor = 1e-12

    /// KL(p ‖ q) in nats.
    public static func kl(_ p: [Double], _ q: [Double]) -> Double {
        var s = 0.0
        for k in p.indices where p[k] > 0 { s += p[k] * (Foundation.log(p[k]) - Foundation.log(max(q[k], floor))) }
        return s
    }

    /// Entropy H(p) in nats.
    public static func entropy(_ p: [Double]) -> Double {
        var s = 0.0
        for x in p where x > 0 { s -= x * Foundation.log(x) }
        return s
    }

    /// E_x p(y|x).
    public static func marginal(_ probabilities: [[Double]]) -> [Double] {
        guard let k = probabilities.first?.count else { return [] }
        var m = [Double](repeating: 0, count: k)
        for p in probabilities { for j in 0..<k { m[j] += p[j] } }
        return m.map { $0 / Double(probabilities.count) }
    }

    public static func inceptionScore(_ probabilities: [[Double]]) -> Double {
        guard !probabilities.isEmpty else { return .nan }
        let m = marginal(probabilities)
        let meanKL = probabilities.reduce(0) { $0 + kl($1, m) } / Double(probabilities.count)
        return Foundation.exp(meanKL)
    }

    /// Exact over all ordered pairs: E KL(p_i ‖ p_j) = E_i Σ_k p_ik log p_ik − E_i Σ_k p_ik E_j log p_jk,
    /// so it costs O(n·K), not O(n²·K).
    public static func modifiedInceptionScore(_ probabilities: [[Double]]) -> Double {
        guard let k = probabilities.first?.count else { return .nan }
        let n = Double(probabilities.count)
        var meanLogQ = [Double](repeating: 0, count: k)
        for p in probabilities { for j in 0..<k { meanLogQ[j] += Foundation.log(max(p[j], floor)) / n } }
        var total = 0.0
        for p in probabilities {
            for j in 0..<k where p[j] > 0 { total += p[j] * (Foundation.log(p[j]) - meanLogQ[j]) }
        }
        return Foundation.exp(total / n)
    }

    public static func amScore(reference: [[Double]], generated: [[Double]]) -> Double {
        guard !reference.isEmpty, !generated.isEmpty else { return .nan }
        let meanEntropy = generated.reduce(0) { $0 + entropy($1) } / Double(generated.count)
        return kl(marginal(reference), marginal(generated)) + meanEntropy
    }

    /// Numerically stable softmax of logits / temperature, in Double.
    public static func softmax(_ logits: [Float], temperature: Double = 1) -> [Double] {
        let mx = Double(logits.max() ?? 0)
        let e = logits.map { Foundation.exp((Double($0) - mx) / temperature) }
        let s = e.reduce(0, +)
        return e.map { $0 / s }
    }
}
