import CUDABackend
import Engine
import Foundation
import Kernels

/// The selective scan of the CUDA backend against the CPU's fused scan: forward (output, last
/// state), backward (every gradient) and step, real and complex, with column-slice inputs,
/// lengths that are not a multiple of the chunk, channel counts that leave a thread block
/// partly empty, and N from 4 to 64.
public struct ScanChecks {
    public let gpu: any Backend
    public let cpu: any Backend

    public init(gpu: any Backend, cpu: any Backend) {
        self.gpu = gpu
        self.cpu = cpu
    }

    struct Case {
        var batch, length, channels, dState: Int
        var complex, gate, skip, bias: Bool
    }

    static let cases: [Case] = [
        Case(batch: 2, length: 150, channels: 24, dState: 16, complex: false, gate: true, skip: true, bias: true),
        Case(batch: 2, length: 150, channels: 24, dState: 16, complex: true, gate: true, skip: true, bias: true),
        Case(batch: 1, length: 64, channels: 8, dState: 4, complex: false, gate: false, skip: false, bias: false),
        Case(batch: 1, length: 200, channels: 5, dState: 64, complex: false, gate: true, skip: true, bias: false),
        Case(batch: 2, length: 129, channels: 9, dState: 64, complex: true, gate: false, skip: true, bias: true),
        Case(batch: 3, length: 1, channels: 7, dState: 8, complex: true, gate: true, skip: false, bias: true),
        Case(batch: 1, length: 1000, channels: 33, dState: 16, complex: true, gate: true, skip: true, bias: true),
        // N not a power of two: 40 (complex, W = 80: three B / C column groups), 3 (real, odd: the
        // forward's state pairs read a zero column).
        Case(batch: 2, length: 130, channels: 11, dState: 40, complex: true, gate: true, skip: true, bias: true),
        Case(batch: 2, length: 70, channels: 37, dState: 3, complex: false, gate: true, skip: true, bias: true),
        // Long and narrow: the CUDA scan splits the sequence into segments (3 here; 2 for the
        // last), with a partial last tile.
        Case(batch: 1, length: 3000, channels: 12, dState: 16, complex: false, gate: true, skip: true, bias: true),
        Case(batch: 1, length: 3000, channels: 12, dState: 16, complex: true, gate: true, skip: true, bias: true),
        Case(batch: 2, length: 2100, channels: 9, dState: 5, complex: false, gate: false, skip: true, bias: false),
    ]

    func tensors(_ b: any Backend, _ c: Case) -> SelectiveScanTensors {
        let shape = SelectiveScanShape(batch: c.batch, length: c.length, channels: c.channels, dState: c.dState, isComplex: c.complex)
        let rows = c.batch * c.length, D = c.channels, N = c.dState, W = shape.stateWidth
        func t(_ shape: [Int], _ seed: UInt64, _ lo: Float, _ hi: Float) -> Tensor {
            b.tensor(hostValues(shape.reduce(1, *), seed: seed, lo, hi), shape: shape)
        }
        let wide = t([rows, 3 * D + 2], 101, -1, 1)          // u | z | spare: column slices, as in the block
        let deltaWide = t([rows, D + 3], 102, -4, -1)
        let bc = t([rows, 2 * W + 5], 103, -1, 1)
        return SelectiveScanTensors(shape: shape, u: wide.columns(1..<(1 + D)), delta: deltaWide.columns(3..<(3 + D)),
                                    z: c.gate ? wide.columns((1 + D)..<(1 + 2 * D)) : nil,
                                    B: bc.columns(2..<(2 + W)), C: bc.columns((3 + W)..<(3 + 2 * W)),
                                    A: t([D, N], 104, -2, -0.1), AImag: c.complex ? t([D, N], 105, 0, 3) : nil,
                                    D: c.skip ? t([D], 106, 0.5, 1.5) : nil, deltaBias: c.bias ? t([D], 107, -1, 0) : nil)
    }

    /// `alignedGrads`: dB and dC are column views whose rows start on 16-byte boundaries (the CUDA
    /// backward then adds them by vector atomics); otherwise views of an odd-width matrix
    /// (scalar atomics).
    func run(_ b: any Backend, _ c: Case, alignedGrads: Bool) -> [Tensor] {
        let x = tensors(b, c)
        let s = x.shape, rows = s.batch * s.length, W = s.stateWidth
        let chunk = 16
        let out = b.empty([rows, s.channels]), last = b.empty([s.batch, s.channels, W])
        let ck = b.empty([max(1, b.selectiveScanCheckpointCount(s, chunk: chunk))])
        b.selectiveScan(x, out: out, lastState: last, checkpoints: ck, chunk: chunk)
        let dOut = b.tensor(hostValues(rows * s.channels, seed: 108), shape: [rows, s.channels])
        let cOffset = alignedGrads ? (W + 3) / 4 * 4 + 4 : W + 1   // where dC starts in the wide matrix
        let dWide = b.zeros([rows, cOffset + W + (alignedGrads ? (4 - W % 4) % 4 : 0)])
        let g = SelectiveScanGradientTensors(du: b.empty([rows, s.channels]), dDelta: b.empty([rows, s.channels]),
                                             dz: c.gate ? b.empty([rows, s.channels]) : nil,
                                             dB: dWide.columns(0..<W), dC: dWide.columns(cOffset..<(cOffset + W)),
                                             dA: b.empty([s.channels, s.dState]), dAImag: c.complex ? b.empty([s.channels, s.dState]) : nil,
                                             dD: b.empty([s.channels]), dDeltaBias: b.empty([s.channels]))
        b.selectiveScanBackward(x, dOut: dOut, checkpoints: ck, chunk: chunk, grads: g)
        // The inference forward (no checkpoints) must give the same output.
        let out2 = b.empty([rows, s.channels])
        b.selectiveScan(x, out: out2, lastState: nil, checkpoints: nil, chunk: chunk)
        var r = [out, last, out2, g.du, g.dDelta, dWide, g.dA, g.dD!, g.dDeltaBias!]
        if let dz = g.dz { r.append(dz) }
        if let di = g.dAImag { r.append(di) }
        return r
    }

    /// Ten steps from a random state, fed the rows of a sequence one at a time.
    func step(_ b: any Backend, _ c: Case) -> [Tensor] {
        let s1 = SelectiveScanShape(batch: c.batch, length: 1, channels: c.channels, dState: c.dState, isComplex: c.complex)
        let state = b.tensor(hostValues(c.batch * c.channels * s1.stateWidth, seed: 109), shape: [c.batch, c.channels, s1.stateWidth])
        var outs: [Tensor] = []
        for k in 0..<10 {
            var cc = c
            cc.length = 1
            var x = tensors(b, cc)
            // A different token per step: shift the values through the seed-independent scale.
            x.u = b.tensor(x.u.floats().map { $0 * Float(k + 1) * 0.3 }, shape: [c.batch, c.channels])
            let out = b.empty([c.batch, c.channels])
            b.selectiveScanStep(x, state: state, out: out)
            outs.append(out)
        }
        return outs + [state]
    }

    public func all() -> [CheckOutcome] {
        let k = KernelChecks(gpu: gpu, cpu: cpu)
        var out: [CheckOutcome] = []
        // The CUDA scan has three tile kernels (4 or 8 steps per lane with 8 channels per block,
        // 4 with 12; chosen by shape): every case through each, with dB / dC rows aligned for
        // the backward's vector atomics and without. The 4-step ones also with the forward and
        // the backward of 16-lane chains (two channels a warp) in blocks of 16, 8 and 12 channels.
        let cuda = gpu as? CUDABackend
        // The forward also with one B / C tile buffer and with two (scanBCBuffers).
        let saved = (cuda?.tuning.scanItems, cuda?.tuning.scanChannels, cuda?.tuning.scanBCBuffers,
                     cuda?.tuning.scanForwardLanes, cuda?.tuning.scanForwardChannels,
                     cuda?.tuning.scanBackwardLanes, cuda?.tuning.scanBackwardChannels)
        defer {
            cuda?.tuning.scanItems = saved.0; cuda?.tuning.scanChannels = saved.1; cuda?.tuning.scanBCBuffers = saved.2
            cuda?.tuning.scanForwardLanes = saved.3; cuda?.tuning.scanForwardChannels = saved.4
            cuda?.tuning.scanBackwardLanes = saved.5; cuda?.tuning.scanBackwardChannels = saved.6
        }
        // (steps per lane, channels per block; the forward's lanes and channels per block; the backward's)
        let variants: [(Int, Int, Int, Int, Int, Int)?] = cuda == nil ? [nil]
            : [(4, 8, 32, 8, 32, 8), (8, 8, 32, 8, 32, 8), (4, 12, 32, 12, 32, 12),
               (4, 8, 16, 16, 32, 8), (4, 8, 16, 8, 16, 16), (4, 12, 16, 12, 16, 12), (4, 8, 32, 8, 16, 8)]
        let layouts: [(aligned: Bool, bcBuffers: Int?)] = cuda == nil ? [(true, nil), (false, nil)] : [(true, 2), (false, 2), (true, 1)]
        for v in variants {
            cuda?.tuning.scanItems = v?.0
            cuda?.tuning.scanChannels = v?.1
            cuda?.tuning.scanForwardLanes = v?.2
            cuda?.tuning.scanForwardChannels = v?.3
            cuda?.tuning.scanBackwardLanes = v?.4
            cuda?.tuning.scanBackwardChannels = v?.5
            for c in Self.cases {
                for (aligned, bc) in layouts {
                    cuda?.tuning.scanBCBuffers = bc
                    let name = "selective scan fwd + bwd (batch \(c.batch), L \(c.length), D \(c.channels), N \(c.dState)\(c.complex ? ", complex" : "")"
                        + "\(c.gate ? ", z" : "")\(c.skip ? ", D" : "")\(c.bias ? ", bias" : "")"
                        + "\(v.map { ", \($0.0) steps per lane, \($0.1) channels per block\($0.2 == 16 ? ", forward 16 lanes × 8 steps, \($0.3) channels" : "")\($0.4 == 16 ? ", backward 16 lanes × 8 steps, \($0.5) channels" : "")" } ?? "")\(aligned ? "" : ", odd-stride dB / dC")"
                        + "\(bc.map { ", \($0) B / C buffer\($0 == 1 ? "" : "s")" } ?? ""))"
                    out.append(k.check(name) { run($0, c, alignedGrads: aligned) })
                }
            }
        }
        for c in Self.cases.prefix(2) {
            out.append(k.check("selective scan step ×10 (batch \(c.batch), D \(c.channels), N \(c.dState)\(c.complex ? ", complex" : ""))") { step($0, c) })
        }
        return out
    }
}
