import Engine
import Foundation
import Kernels
import SafeTensors

/// The selective-scan golden files (official selective_scan_ref in float64, see
/// Tests/Fixtures/golden/README.md) through a backend's forward and backward, after transposing
/// from the files' (batch, dim, L) / (batch, dstate, L) layout to ours.
public struct GoldenChecks {
    public let backend: any Backend
    public let directory: URL
    public var tolerance = 1e-4

    public init(backend: any Backend, directory: URL) {
        self.backend = backend
        self.directory = directory
    }

    /// WAVEMAMBA_GOLDEN_DIR, else the checkout's Tests/Fixtures/golden from the current folder.
    public static func findDirectory(from start: URL = URL(fileURLWithPath: FileManager.default.currentDirectoryPath)) -> URL? {
        if let d = ProcessInfo.processInfo.environment["WAVEMAMBA_GOLDEN_DIR"], !d.isEmpty { return URL(fileURLWithPath: d) }
        let u = start.appendingPathComponent("Tests/Fixtures/golden")
        return FileManager.default.fileExists(atPath: u.path) ? u : nil
    }

    static func fromBDL(_ a: [Float], _ b: Int, _ d: Int, _ l: Int) -> [Float] {
        var r = [Float](repeating: 0, count: a.count)
        for bi in 0..<b { for di in 0..<d { for t in 0..<l { r[(bi * l + t) * d + di] = a[(bi * d + di) * l + t] } } }
        return r
    }

    static func fromBNL(_ a: [Float], _ b: Int, _ n: Int, _ l: Int, complex: Bool) -> [Float] {
        var r = [Float](repeating: 0, count: a.count)
        for bi in 0..<b {
            for ni in 0..<n {
                for t in 0..<l {
                    if complex {
                        let src = (bi * n + ni) * 2 * l
                        r[(bi * l + t) * 2 * n + 2 * ni] = a[src + 2 * t]
                        r[(bi * l + t) * 2 * n + 2 * ni + 1] = a[src + 2 * t + 1]
                    } else {
                        r[(bi * l + t) * n + ni] = a[(bi * n + ni) * l + t]
                    }
                }
            }
        }
        return r
    }

    public func all() throws -> [CheckOutcome] {
        let files = try FileManager.default.contentsOfDirectory(atPath: directory.path).filter { $0.hasSuffix(".safetensors") }.sorted()
        var out: [CheckOutcome] = []
        let be = backend
        for name in files {
            let st = try SafeTensorsFile(contentsOf: directory.appendingPathComponent(name))
            guard st.metadata["kind"] == "selective_scan" else { continue }
            let complex = st.metadata["complex"] == "True"
            guard let uShape = st.shape("in_u"), uShape.count == 3, let aShape = st.shape(complex ? "in_A_real" : "in_A") else {
                throw CUDAChecksError("\(name): missing in_u / in_A")
            }
            let b = uShape[0], d = uShape[1], l = uShape[2], n = aShape[1]
            let shape = SelectiveScanShape(batch: b, length: l, channels: d, dState: n, isComplex: complex)
            let rows = b * l, W = shape.stateWidth
            func opt(_ t: String) throws -> [Float]? { st.info(t) == nil ? nil : try st.floats(t) }
            func bdl(_ t: String) throws -> Tensor { be.tensor(Self.fromBDL(try st.floats(t), b, d, l), shape: [rows, d]) }
            func bnl(_ t: String) throws -> Tensor { be.tensor(Self.fromBNL(try st.floats(t), b, n, l, complex: complex), shape: [rows, W]) }
            let x = SelectiveScanTensors(shape: shape, u: try bdl("in_u"), delta: try bdl("in_delta"),
                                         z: st.info("in_z") == nil ? nil : try bdl("in_z"), B: try bnl("in_B"), C: try bnl("in_C"),
                                         A: be.tensor(try st.floats(complex ? "in_A_real" : "in_A"), shape: [d, n]),
                                         AImag: complex ? be.tensor(try st.floats("in_A_imag"), shape: [d, n]) : nil,
                                         D: try opt("in_D").map { be.tensor($0, shape: [d]) },
                                         deltaBias: try opt("in_delta_bias").map { be.tensor($0, shape: [d]) })
            let y = be.empty([rows, d]), last = be.empty([b, d, W])
            let ck = be.empty([max(1, be.selectiveScanCheckpointCount(shape, chunk: 16))])
            be.selectiveScan(x, out: y, lastState: last, checkpoints: ck, chunk: 16)
            let g = SelectiveScanGradientTensors(du: be.empty([rows, d]), dDelta: be.empty([rows, d]), dz: x.z == nil ? nil : be.empty([rows, d]),
                                                 dB: be.empty([rows, W]), dC: be.empty([rows, W]), dA: be.empty([d, n]),
                                                 dAImag: complex ? be.empty([d, n]) : nil, dD: be.empty([d]), dDeltaBias: be.empty([d]))
            be.selectiveScanBackward(x, dOut: try bdl("in_dy"), checkpoints: ck, chunk: 16, grads: g)
            var cmp: [(String, [Float], [Float])] = [
                ("out_y", y.floats(), Self.fromBDL(try st.floats("out_y"), b, d, l)),
                ("grad_u", g.du.floats(), Self.fromBDL(try st.floats("grad_u"), b, d, l)),
                ("grad_delta", g.dDelta.floats(), Self.fromBDL(try st.floats("grad_delta"), b, d, l)),
                ("grad_B", g.dB.floats(), Self.fromBNL(try st.floats("grad_B"), b, n, l, complex: complex)),
                ("grad_C", g.dC.floats(), Self.fromBNL(try st.floats("grad_C"), b, n, l, complex: complex)),
            ]
            if complex {
                let re = try st.floats("out_last_state_real"), im = try st.floats("out_last_state_imag")
                var l2 = [Float](repeating: 0, count: 2 * re.count)
                for i in 0..<re.count { l2[2 * i] = re[i]; l2[2 * i + 1] = im[i] }
                cmp.append(("out_last_state", last.floats(), l2))
                cmp.append(("grad_A_real", g.dA.floats(), try st.floats("grad_A_real")))
                cmp.append(("grad_A_imag", g.dAImag!.floats(), try st.floats("grad_A_imag")))
            } else {
                cmp.append(("out_last_state", last.floats(), try st.floats("out_last_state")))
                cmp.append(("grad_A", g.dA.floats(), try st.floats("grad_A")))
            }
            if let gz = try opt("grad_z") { cmp.append(("grad_z", g.dz!.floats(), Self.fromBDL(gz, b, d, l))) }
            if let gd = try opt("grad_D") { cmp.append(("grad_D", g.dD!.floats(), gd)) }
            if let gb = try opt("grad_delta_bias") { cmp.append(("grad_delta_bias", g.dDeltaBias!.floats(), gb)) }
            var worst = (name: "", err: 0.0)
            for (t, mine, gold) in cmp {
                let e = relativeError(mine, gold)
                if e > worst.err || worst.name.isEmpty || e.isNaN { worst = (t, e.isNaN ? .infinity : e) }
            }
            out.append(CheckOutcome(name: "golden \(name) on \(be.device)", error: worst.err, tolerance: tolerance, detail: "worst: \(worst.name)"))
        }
        if out.isEmpty { throw CUDAChecksError("no selective_scan golden files in \(directory.path)") }
        return out
    }
}

public struct CUDAChecksError: Error, CustomStringConvertible {
    public var description: String
    init(_ d: String) { description = d }
}
