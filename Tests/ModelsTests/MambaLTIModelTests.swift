import Engine
import Layers
import XCTest
@testable import Models

/// The non-selective Mamba block (`mamba-lti`) inside the U-Net, both backbones.
final class MambaLTIModelTests: XCTestCase {
    /// Every stage holds `MambaLTIBlock`s under `.mixer`, with dt_bias, B and C in place of
    /// x_proj and dt_proj; one block per layer, as `mamba`.
    func testStagesHoldNonSelectiveBlocks() {
        for backbone in Backbone.allCases {
            let model = SaShiMi(config: smallTestConfig(.mambaLTI, .mambaLTI, dState: 4, backbone: backbone), backend: CPUBackend(), seed: 1)
            let blocks = model.downBlocks.joined() + model.center + model.up.flatMap(\.blocks)
            XCTAssertEqual(blocks.count, backbone == .unet ? 10 : 6)
            for b in blocks { guard case .mambaLTI = b.mixer else { return XCTFail("\(backbone): a block is not mamba-lti") } }
            let names = Set(model.store.names)
            for n in ["center.0.mixer.dt_bias", "center.1.mixer.B", "up.0.1.mixer.C", "up.1.2.mixer.A_log"] {
                XCTAssertTrue(names.contains(n), "\(backbone): missing \(n)")
            }
            XCTAssertFalse(names.contains { $0.hasSuffix("x_proj.weight") || $0.contains("dt_proj") }, "\(backbone)")
            // Not the CPU fast step (no packed kernel takes Δ, B, C as parameters): callers use the generic step.
            XCTAssertNil(model.makeFastStepState(batch: 2))
        }
    }

    /// The whole U-Net's gradients of the non-selective parameters (every block's B, C and
    /// four channels of dt_bias) and of its input-side weights against fourth-order finite
    /// differences of L = Σ logits ⊙ r, for both backbones. These gradients are small (1e-4…4e-2)
    /// against the Float32 rounding of a loss of 8192 terms, so the step is large: measured
    /// 8e-3 at h = 1e-2, 8e-4 at 0.1, 4e-4 at 0.2 (the error falls as 1/h: rounding, not
    /// truncation, which the fourth-order stencil keeps below it).
    func testGradientsThroughTheUNetMatchFiniteDifferences() {
        for backbone in Backbone.allCases {
            let backend = CPUBackend(threads: 2)
            var config = smallTestConfig(.mambaLTI, .mambaLTI, dState: 4, backbone: backbone)
            config.dModel = 8
            let model = SaShiMi(config: config, backend: backend, seed: 5)
            let batch = 2, L = 16
            let tokens = backend.indices(testTokens(batch: batch, length: L, seed: 3), shape: [batch, L])
            let r = backend.empty([batch * L, config.classes])
            backend.fillUniform(r, low: -1, high: 1, seed: 8)
            let rs = r.floats().map(Double.init)
            let tape = Tape()
            tape.backward(from: Op.weightedSum(model.logits(tokens, tape: tape), r, tape))
            func loss() -> Double {
                zip(model.logits(tokens, tape: Tape.inference()).value.floats(), rs).reduce(0.0) { $0 + Double($1.0) * $1.1 }
            }
            var checked: [(String, Variable, Range<Int>)] = []
            for p in model.store.parameters {
                let name = p.name!
                if name.hasSuffix(".B") || name.hasSuffix(".C") { checked.append((name, p, 0..<p.value.count)) }
                if name.hasSuffix(".dt_bias") { checked.append((name, p, 0..<4)) }
            }
            XCTAssertEqual(checked.count, (backbone == .unet ? 10 : 6) * 3)
            var num = 0.0, den = 0.0, worst = ("", 0.0)
            let h: Float = 0.2
            for (name, v, range) in checked {
                let analytic = v.grad!.floats(), p = v.value.pointer
                for j in range {
                    let x0 = p[j]
                    func at(_ k: Float) -> Double { p[j] = x0 + k * h; return loss() }
                    let fd = (-at(2) + 8 * at(1) - 8 * at(-1) + at(-2)) / (12 * Double(h))
                    p[j] = x0
                    let d = fd - Double(analytic[j])
                    num += d * d
                    den += Double(analytic[j]) * Double(analytic[j])
                    if abs(d) > worst.1 { worst = ("\(name)[\(j)] fd \(fd) vs \(analytic[j])", abs(d)) }
                }
            }
            let rel = (num / den).squareRoot()
            print("\(backbone) mamba-lti U-Net gradcheck: rel err \(rel); worst \(worst.0)")
            XCTAssertGreaterThan(den, 0)
            XCTAssertLessThanOrEqual(rel, 1e-3, "\(backbone): worst \(worst.0)")
        }
    }
}
