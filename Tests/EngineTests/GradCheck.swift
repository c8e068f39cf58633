import XCTest
@testable import Engine

/// Central finite differences of L = Σ out ⊙ r (r random, fixed) against the tape's gradients.
///
/// Float32 forward passes limit the accuracy of a difference quotient to about
/// ε_machine·|L| / h; with h = 1e-2·max(1, |x|) and L of order 1–10 that is ≈ 1e-5, so we
/// compare ‖g_fd − g‖ / ‖g‖ ≤ 1e-3 per input (measured: 1e-6…3e-5 for most ops; softmax
/// cross-entropy over 256 classes 1.2e-3, checked at 5e-3).
struct GradCheck {
    let backend: CPUBackend
    var seed: UInt64 = 1

    func random(_ shape: [Int], seed: UInt64, low: Float = -1, high: Float = 1) -> [Float] {
        let t = backend.empty(shape)
        backend.fillUniform(t, low: low, high: high, seed: seed)
        return t.floats()
    }

    /// `build` maps input variables to the output; inputs are (name, shape, requiresGrad, values?).
    func check(_ name: String, inputs: [(String, [Int], Bool, [Float]?)], tolerance: Double = 1e-3, step: Float = 1e-2,
               file: StaticString = #filePath, line: UInt = #line, _ build: ([Variable], Tape) -> Variable) {
        let values = inputs.enumerated().map { i, inp in inp.3 ?? random(inp.1, seed: seed &+ UInt64(i) &* 7919) }
        func makeVars(_ vals: [[Float]], grad: Bool) -> [Variable] {
            zip(inputs, vals).map { inp, v in Variable(backend.tensor(v, shape: inp.1), requiresGrad: grad && inp.2) }
        }
        // Analytic.
        let tape = Tape()
        let vars = makeVars(values, grad: true)
        let out0 = build(vars, tape)
        let r = random(out0.shape, seed: seed &+ 99991)
        let rT = backend.tensor(r, shape: out0.shape)
        let loss = Op.weightedSum(out0, rT, tape)
        tape.backward(from: loss)
        func lossAt(_ vals: [[Float]]) -> Double {
            let out = build(makeVars(vals, grad: false), Tape.inference()).value.floats()
            return zip(out, r).reduce(0.0) { $0 + Double($1.0) * Double($1.1) }
        }
        for (i, inp) in inputs.enumerated() where inp.2 {
            let analytic = vars[i].grad?.floats() ?? [Float](repeating: 0, count: values[i].count)
            var num = 0.0, den = 0.0
            var worst = (index: -1, fd: 0.0, an: 0.0)
            for j in 0..<values[i].count {
                var plus = values, minus = values
                let h = step * max(1, abs(values[i][j]))
                plus[i][j] += h
                minus[i][j] -= h
                let fd = (lossAt(plus) - lossAt(minus)) / Double(2 * h)
                let d = fd - Double(analytic[j])
                num += d * d
                den += Double(analytic[j]) * Double(analytic[j])
                if abs(d) > abs(worst.fd - worst.an) { worst = (j, fd, Double(analytic[j])) }
            }
            let rel = (num / max(den, 1e-20)).squareRoot()
            print("gradcheck \(name) d\(inp.0): rel err \(String(format: "%.2e", rel))")
            XCTAssertLessThanOrEqual(rel, tolerance, "\(name): d\(inp.0) rel err \(rel); worst element \(worst)", file: file, line: line)
        }
    }
}
