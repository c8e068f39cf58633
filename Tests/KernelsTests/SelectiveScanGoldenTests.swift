import Fixtures
import Foundation
import SafeTensors
import XCTest
@testable import Kernels

/// Runs every `selective_scan` case of the golden folder (official selective_scan_ref in
/// float64, see Tests/Fixtures/golden/README.md) through the fused forward + backward, after
/// transposing from the files' (batch, dim, L) / (batch, dstate, L) layout to ours.
/// `mamba_block` cases are skipped here (tested at the layer level).
final class SelectiveScanGoldenTests: XCTestCase {
    static var goldenDirectory: URL { Fixtures.golden }

    /// (batch, dim, L) → (batch, L, dim)
    static func fromBDL(_ a: [Float], _ b: Int, _ d: Int, _ l: Int) -> [Double] {
        var r = [Double](repeating: 0, count: a.count)
        for bi in 0..<b { for di in 0..<d { for t in 0..<l { r[(bi * l + t) * d + di] = Double(a[(bi * d + di) * l + t]) } } }
        return r
    }

    /// B/C from (batch, N, L) real or (batch, N, 2L) interleaved along L → (batch, L, W).
    static func fromBNL(_ a: [Float], _ b: Int, _ n: Int, _ l: Int, complex: Bool) -> [Double] {
        var r = [Double](repeating: 0, count: a.count)
        for bi in 0..<b {
            for ni in 0..<n {
                for t in 0..<l {
                    if complex {
                        let src = (bi * n + ni) * 2 * l
                        r[(bi * l + t) * 2 * n + 2 * ni] = Double(a[src + 2 * t])
                        r[(bi * l + t) * 2 * n + 2 * ni + 1] = Double(a[src + 2 * t + 1])
                    } else {
                        r[(bi * l + t) * n + ni] = Double(a[(bi * n + ni) * l + t])
                    }
                }
            }
        }
        return r
    }

    func testGoldenSelectiveScans() throws {
        let dir = Self.goldenDirectory
        let files = try FileManager.default.contentsOfDirectory(atPath: dir.path)
            .filter { $0.hasSuffix(".safetensors") }.sorted()
        XCTAssertFalse(files.isEmpty, "no golden files in \(dir.path)")
        var ran = 0
        for name in files {
            let st = try SafeTensorsFile(contentsOf: dir.appendingPathComponent(name))
            guard st.metadata["kind"] == "selective_scan" else {
                print("golden \(name): skipped (kind \(st.metadata["kind"] ?? "?"), tested elsewhere)")
                continue
            }
            ran += 1
            let complex = st.metadata["complex"] == "True"
            XCTAssertEqual(st.metadata["delta_softplus"] ?? "True", "True", "\(name): only delta_softplus=True is supported")
            guard let uShape = st.shape("in_u"), uShape.count == 3, let aShape = st.shape(complex ? "in_A_real" : "in_A") else {
                XCTFail("golden \(name): FAIL missing in_u / in_A"); continue
            }
            let b = uShape[0], d = uShape[1], l = uShape[2], n = aShape[1]
            let shape = SelectiveScanShape(batch: b, length: l, channels: d, dState: n, isComplex: complex)
            func opt(_ t: String) throws -> [Float]? { st.info(t) == nil ? nil : try st.floats(t) }
            let inputs = SelectiveScanReference.Inputs(
                shape: shape,
                u: Self.fromBDL(try st.floats("in_u"), b, d, l),
                delta: Self.fromBDL(try st.floats("in_delta"), b, d, l),
                z: try opt("in_z").map { Self.fromBDL($0, b, d, l) },
                B: Self.fromBNL(try st.floats("in_B"), b, n, l, complex: complex),
                C: Self.fromBNL(try st.floats("in_C"), b, n, l, complex: complex),
                A: (try st.floats(complex ? "in_A_real" : "in_A")).map(Double.init),
                AImag: complex ? (try st.floats("in_A_imag")).map(Double.init) : nil,
                D: try opt("in_D")?.map(Double.init),
                deltaBias: try opt("in_delta_bias")?.map(Double.init))
            let dy = Self.fromBDL(try st.floats("in_dy"), b, d, l)
            let problem = ScanProblem(shape: shape, ref: inputs, dOut: dy)
            // A chunk shorter than L so that the checkpoints are exercised.
            let f = runFused(problem, chunk: 16, pool: ThreadPool(threads: 2))

            var cmp: [(String, [Float], [Double])] = [
                ("out_y", f.out, Self.fromBDL(try st.floats("out_y"), b, d, l)),
                ("grad_u", f.du, Self.fromBDL(try st.floats("grad_u"), b, d, l)),
                ("grad_delta", f.dDelta, Self.fromBDL(try st.floats("grad_delta"), b, d, l)),
                ("grad_B", f.dB, Self.fromBNL(try st.floats("grad_B"), b, n, l, complex: complex)),
                ("grad_C", f.dC, Self.fromBNL(try st.floats("grad_C"), b, n, l, complex: complex)),
            ]
            if complex {
                let re = try st.floats("out_last_state_real"), im = try st.floats("out_last_state_imag")
                var last = [Double](repeating: 0, count: 2 * re.count)
                for i in 0..<re.count { last[2 * i] = Double(re[i]); last[2 * i + 1] = Double(im[i]) }
                cmp.append(("out_last_state", f.lastState, last))
                cmp.append(("grad_A_real", f.dA, (try st.floats("grad_A_real")).map(Double.init)))
                cmp.append(("grad_A_imag", f.dAImag!, (try st.floats("grad_A_imag")).map(Double.init)))
            } else {
                cmp.append(("out_last_state", f.lastState, (try st.floats("out_last_state")).map(Double.init)))
                cmp.append(("grad_A", f.dA, (try st.floats("grad_A")).map(Double.init)))
            }
            if let g = try opt("grad_z") { cmp.append(("grad_z", f.dz!, Self.fromBDL(g, b, d, l))) }
            if let g = try opt("grad_D") { cmp.append(("grad_D", f.dD, g.map(Double.init))) }
            if let g = try opt("grad_delta_bias") { cmp.append(("grad_delta_bias", f.dDeltaBias, g.map(Double.init))) }
            // Every grad_* in the file must have been compared.
            let compared = Set(cmp.map(\.0))
            for t in st.names where t.hasPrefix("grad_") && !compared.contains(t) {
                XCTFail("golden \(name): FAIL gradient \(t) not compared")
            }

            var worst = (name: "", err: 0.0)
            var failures: [String] = []
            for (t, mine, gold) in cmp {
                let e = relativeError(mine, gold)
                if e > worst.err || worst.name.isEmpty { worst = (t, e) }
                if !(e <= 1e-4) { failures.append("\(t) rel err \(e)") }
            }
            // The Double reference on the same inputs, as a cross-check of the oracle.
            let ref = SelectiveScanReference.forward(inputs), rg = SelectiveScanReference.backward(inputs, dOut: dy)
            let refErr = max(relativeError(ref.out, cmp[0].2), relativeError(rg.du, cmp[1].2),
                             relativeError(rg.dA, complex ? (try st.floats("grad_A_real")).map(Double.init) : (try st.floats("grad_A")).map(Double.init)),
                             relativeError(rg.dDelta, cmp[2].2), relativeError(rg.dB, cmp[3].2), relativeError(rg.dC, cmp[4].2))
            if failures.isEmpty {
                print("golden \(name): ok (max rel err \(worst.err) in \(worst.name); Double reference max rel err \(refErr))")
            } else {
                print("golden \(name): FAIL \(failures.joined(separator: ", "))")
                XCTFail("golden \(name): FAIL \(failures.joined(separator: ", "))")
            }
            XCTAssertLessThanOrEqual(refErr, 1e-4, "\(name): reference disagrees with golden")
        }
        XCTAssertGreaterThan(ran, 0, "no selective_scan golden cases in \(dir.path)")
    }
}
