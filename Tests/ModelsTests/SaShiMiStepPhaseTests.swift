import Engine
import XCTest
@testable import Models

/// The stage counters behind step graphs: `advanceWithoutLaunching` moves them exactly as a
/// real step does, and they cycle with `period` (so one recorded step per phase serves all).
final class SaShiMiStepPhaseTests: XCTestCase {
    func counters(_ s: SaShiMiStepState) -> [Int] {
        s.downs.map(\.count) + s.ups.map(\.pool.index)
    }

    func testAdvanceWithoutLaunchingMatchesStepAndCountersCycleWithThePeriod() {
        let backend = CPUBackend(threads: 1)
        for (pool, backbone) in [([4, 2], Backbone.sashimi), ([2, 2, 2], .sashimi), ([3], .sashimi), ([4, 4], .sashimi), ([2, 3], .unet)] {
            var c = smallTestConfig(.mamba, .mamba, dState: 4, backbone: backbone)
            c.nLayers = 1
            c.pool = pool
            let model = SaShiMi(config: c, backend: backend, seed: 2)
            let stepped = model.makeStepState(batch: 1), advanced = model.makeStepState(batch: 1)
            let period = pool.reduce(1, *)
            XCTAssertEqual(stepped.period, period)
            var seen: [[Int]] = [counters(stepped)]
            for t in 0..<(2 * period + 3) {
                model.step(tokens: [Int32(t % 256)], stepped)
                model.advanceWithoutLaunching(advanced)
                XCTAssertEqual(counters(advanced), counters(stepped), "pool \(pool), after step \(t + 1)")
                XCTAssertEqual(advanced.steps, t + 1)
                XCTAssertEqual(advanced.phase, (t + 1) % period)
                seen.append(counters(stepped))
            }
            for t in 0..<(period + 3) {
                XCTAssertEqual(seen[t + period], seen[t], "pool \(pool): counters after \(t) and \(t + period) steps differ")
            }
            // Within a period the counter states are distinct, so the phase is all a step depends on.
            XCTAssertEqual(Set(seen[0..<period]).count, period, "pool \(pool)")
        }
    }
}
