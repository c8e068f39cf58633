import ArgumentParser
import Foundation
import Kernels

/// `bench scan`: the fused selective scan (forward, forward + backward) against the
/// straightforward per-time-step loop (`SelectiveScanReference`, one thread, states kept per
/// channel), on the same shapes in the same run; plus the extra memory the backward needs.
struct ScanBench {
    let pool: ThreadPool
    let quick: Bool

    struct Case {
        var batch, channels, length, dState: Int
        var complex: Bool
    }

    /// (batch, D, L, N) of the default run.
    var defaultShapes: [(Int, Int, Int, Int)] {
        quick ? [(1, 64, 2048, 16), (2, 128, 4096, 16)] : [(1, 64, 4096, 16), (4, 256, 16384, 16)]
    }

    static func cases(_ shapes: [(Int, Int, Int, Int)], _ complexities: [Bool]) -> [Case] {
        shapes.flatMap { s in complexities.map { Case(batch: s.0, channels: s.1, length: s.2, dState: s.3, complex: $0) } }
    }

    /// `--shapes 1x1536x65536x16,4x256x16384x16`: (batch, D, L, N) each.
    static func parseShapes(_ text: String) throws -> [(Int, Int, Int, Int)] {
        try text.split(separator: ",").map { item in
            let v = item.split(separator: "x").compactMap { Int($0) }
            guard v.count == 4, v.allSatisfy({ $0 > 0 }) else {
                throw ValidationError("--shapes: '\(item)' is not BATCHxDxLENGTHxN with four positive integers (e.g. 4x256x16384x16)")
            }
            return (v[0], v[1], v[2], v[3])
        }
    }

    /// `--kinds real,complex`: which scans (false = real, true = complex), in that order.
    static func parseKinds(_ text: String) throws -> [Bool] {
        try text.split(separator: ",").map { k in
            switch k {
            case "real": return false
            case "complex": return true
            default: throw ValidationError("--kinds: unknown scan '\(k)'; use real or complex")
            }
        }
    }

    func run(cases: [Case], chunk: Int = SelectiveScan.defaultChunk, reference: Bool = true) -> BenchReport {
        var report = BenchReport(title: "wavemamba bench scan (fused selective scan vs the per-time-step loop)", threads: pool.threads)
        for c in cases {
            let shape = SelectiveScanShape(batch: c.batch, length: c.length, channels: c.channels, dState: c.dState, isComplex: c.complex)
            let rows = c.batch * c.length, D = c.channels, W = shape.stateWidth, N = c.dState
            func buffer(_ n: Int, _ seed: UInt64, _ lo: Float, _ hi: Float) -> UnsafeMutablePointer<Float> {
                let p = UnsafeMutablePointer<Float>.allocate(capacity: n)
                Random.uniform(p, count: n, low: lo, high: hi, seed: seed, pool: pool)
                return p
            }
            let u = buffer(rows * D, 1, -1, 1), delta = buffer(rows * D, 2, -4, -1), z = buffer(rows * D, 3, -1, 1)
            let B = buffer(rows * W, 4, -1, 1), C = buffer(rows * W, 5, -1, 1), dOut = buffer(rows * D, 6, -1, 1)
            let A = buffer(D * N, 7, -2, -0.1), AImag = buffer(D * N, 8, 0, 3), Dskip = buffer(D, 9, 0.5, 1.5), bias = buffer(D, 10, -1, 0)
            let out = UnsafeMutablePointer<Float>.allocate(capacity: rows * D)
            let grads = (0..<5).map { i in UnsafeMutablePointer<Float>.allocate(capacity: i >= 3 ? rows * W : rows * D) }
            let small = (0..<4).map { _ in UnsafeMutablePointer<Float>.allocate(capacity: D * N) }
            let ckCount = SelectiveScan.checkpointCount(shape, chunk: chunk)
            let wsCount = SelectiveScan.backwardWorkspaceCount(shape, chunk: chunk, threads: pool.threads)
            let checkpoints = UnsafeMutablePointer<Float>.allocate(capacity: max(1, ckCount))
            let workspace = UnsafeMutablePointer<Float>.allocate(capacity: wsCount)
            let fwdWorkspace = UnsafeMutablePointer<Float>.allocate(capacity: max(1, SelectiveScan.forwardWorkspaceCount(shape, threads: pool.threads)))
            defer {
                for p in [u, delta, z, B, C, dOut, A, AImag, Dskip, bias, out, checkpoints, workspace, fwdWorkspace] + grads + small { p.deallocate() }
            }
            let x = SelectiveScanInputs(shape: shape, u: u, delta: delta, z: z, B: B, C: C, A: A, AImag: c.complex ? AImag : nil,
                                        D: Dskip, deltaBias: bias)
            let g = SelectiveScanGradients(shape: shape, du: grads[0], dDelta: grads[1], dz: grads[2], dB: grads[3], dC: grads[4],
                                           dA: small[0], dAImag: c.complex ? small[1] : nil, dD: small[2], dDeltaBias: small[3])
            let repeats = quick ? 2 : 3
            let tInfer = Bandwidth.bestTime(repeats: repeats) { SelectiveScan.forward(x, out: out, workspace: fwdWorkspace, pool: pool) }
            let tFwd = Bandwidth.bestTime(repeats: repeats) {
                SelectiveScan.forward(x, out: out, checkpoints: checkpoints, chunk: chunk, workspace: fwdWorkspace, pool: pool)
            }
            let tBwd = Bandwidth.bestTime(repeats: repeats) {
                SelectiveScan.backward(x, dOut: dOut, checkpoints: checkpoints, chunk: chunk, grads: g, workspace: workspace, pool: pool)
            }
            let updates = Double(shape.stateUpdates)
            // Bytes of the backward's inputs and outputs (u, Δ, z, B, C, dOut; du, dΔ, dz, dB, dC) and what it adds.
            let ioBytes = 4.0 * Double(6 * rows * D + 4 * rows * W)
            let extraBytes = 4.0 * Double(ckCount + wsCount)
            var values: [String: Double] = [
                "fwd ms": tInfer * 1e3, "fwd+bwd ms": (tFwd + tBwd) * 1e3,
                "fwd upd/s": updates / tInfer, "fwd+bwd upd/s": updates / (tFwd + tBwd),
                "mem ratio": (ioBytes + extraBytes) / ioBytes,
            ]
            if reference {
                let (rf, rfb) = referenceTimes(shape, x: x, dOut: dOut)
                values["loop fwd ms"] = rf * 1e3
                values["loop fwd+bwd ms"] = rfb * 1e3
                values["speedup fwd"] = rf / tInfer
                values["speedup fwd+bwd"] = rfb / (tFwd + tBwd)
            }
            report.add("scan", "\(c.complex ? "complex" : "real") (\(c.batch), \(c.channels), \(c.length), \(c.dState))", values)
        }
        report.notes.append("upd/s = batch·channels·length·d_state / seconds (complex counts one complex state update as one)")
        report.notes.append("fwd = inference forward; fwd+bwd = training forward (with state checkpoints every \(chunk) steps) + backward")
        report.notes.append("loop = SelectiveScanReference: the straightforward per-time-step loop (Double, one thread, all states of a channel kept)")
        report.notes.append("mem ratio = (backward's inputs + outputs + checkpoints + workspace) / (inputs + outputs); target ≤ 1.5")
        return report
    }

    /// One timed run of the reference loop (it is slow; no repeats).
    private func referenceTimes(_ shape: SelectiveScanShape, x: SelectiveScanInputs, dOut: UnsafePointer<Float>) -> (Double, Double) {
        let rows = shape.batch * shape.length, D = shape.channels, W = shape.stateWidth, N = shape.dState
        func d(_ p: UnsafePointer<Float>, _ n: Int) -> [Double] { (0..<n).map { Double(p[$0]) } }
        let ri = SelectiveScanReference.Inputs(shape: shape, u: d(x.u, rows * D), delta: d(x.delta, rows * D), z: d(x.z!, rows * D),
                                               B: d(x.B, rows * W), C: d(x.C, rows * W), A: d(x.A, D * N),
                                               AImag: x.AImag.map { d($0, D * N) }, D: d(x.D!, D), deltaBias: d(x.deltaBias!, D))
        let dO = d(dOut, rows * D)
        let tf = Bandwidth.bestTime(repeats: 1, warmup: 0) { _ = SelectiveScanReference.forward(ri) }
        // The reference backward recomputes the states itself: fwd+bwd = forward + backward.
        let tb = Bandwidth.bestTime(repeats: 1, warmup: 0) { _ = SelectiveScanReference.backward(ri, dOut: dO) }
        return (tf, tf + tb)
    }

    static let columns: [String: [String]] = [
        "scan": ["fwd ms", "fwd+bwd ms", "fwd upd/s", "fwd+bwd upd/s", "loop fwd ms", "loop fwd+bwd ms", "speedup fwd", "speedup fwd+bwd", "mem ratio"],
    ]
}
