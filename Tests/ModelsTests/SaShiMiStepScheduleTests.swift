import XCTest
@testable import Models

/// The step schedule against a direct simulation of SaShiMi's pooling counters (a DownPool
/// counts its inputs and emits when it has `pool`; an UpPool counts its reads and refills when
/// it has read `pool`), and the order in which `run` calls an executor.
final class SaShiMiStepScheduleTests: XCTestCase {
    static let pools: [[Int]] = [[], [3], [4, 4], [4, 2], [2, 3], [2, 2, 2]]

    func testTicksMatchTheCountersOfSaShiMisPools() {
        for pool in Self.pools {
            let schedule = SaShiMiStepSchedule(pool: pool, dModel: 8, expand: 2, backbone: .sashimi)
            let levels = pool.count
            XCTAssertEqual(schedule.period, pool.reduce(1, *))
            var downCount = [Int](repeating: 0, count: levels), upIndex = [Int](repeating: 0, count: levels)
            for t in 0..<(3 * schedule.period + 2) {
                var downRows: [Int] = [], pooled = 0
                for i in 0..<levels {
                    downRows.append(downCount[i])
                    downCount[i] += 1
                    if downCount[i] < pool[i] { break }
                    downCount[i] = 0
                    pooled += 1
                }
                let tick = schedule.tick(sample: t)
                XCTAssertEqual(tick.pooled, pooled, "pool \(pool), sample \(t)")
                XCTAssertEqual(tick.downRows, downRows, "pool \(pool), sample \(t)")
                XCTAssertEqual(tick.runsCenter, pooled == levels)
                for stage in 0..<levels {
                    let level = levels - 1 - stage
                    XCTAssertEqual(schedule.mirror(upStage: stage), level)
                    guard level <= pooled else {
                        XCTAssertLessThan(stage, tick.firstUp, "pool \(pool), sample \(t): up stage \(stage) runs without its level")
                        continue
                    }
                    XCTAssertGreaterThanOrEqual(stage, tick.firstUp, "pool \(pool), sample \(t)")
                    XCTAssertEqual(tick.upRows[stage], upIndex[stage], "pool \(pool), sample \(t), up stage \(stage)")
                    upIndex[stage] += 1
                    let refills = upIndex[stage] == pool[level]
                    if refills { upIndex[stage] = 0 }
                    XCTAssertEqual(tick.upRefills[stage], refills, "pool \(pool), sample \(t), up stage \(stage)")
                    // A cache runs empty exactly when the coarser level has just stepped.
                    XCTAssertEqual(refills, level < pooled)
                }
            }
        }
    }

    func testBuffersAndCachesHaveTheirLevelsWidths() {
        let schedule = SaShiMiStepSchedule(pool: [4, 2], dModel: 16, expand: 3, backbone: .unet)
        XCTAssertEqual(schedule.widths, [16, 48, 144])
        XCTAssertTrue(schedule.downBuffer(level: 1) == (2, 48))
        XCTAssertTrue(schedule.upCache(stage: 0) == (2, 48))
        XCTAssertTrue(schedule.upCache(stage: 1) == (4, 16))
        XCTAssertTrue(schedule.skipsPerBlock)
        XCTAssertFalse(SaShiMiStepSchedule(pool: [4], dModel: 8, expand: 2, backbone: .sashimi).skipsPerBlock)
    }

    /// Records the calls `run` makes.
    struct Recorder: SaShiMiStepExecutor {
        var calls: [String] = []
        var appliesHead = false
        mutating func embed() { calls.append("embed") }
        mutating func down(level: Int, row: Int, emits: Bool) { calls.append("down \(level) row \(row)\(emits ? " emits" : "")") }
        mutating func center() { calls.append("center") }
        mutating func up(stage: Int, row: Int, refills: Bool, last: Bool) -> Bool {
            calls.append("up \(stage) row \(row)\(refills ? " refills" : "")\(last ? " last" : "")")
            return last && appliesHead
        }
        mutating func head() { calls.append("head") }
    }

    func testRunCallsTheStagesOfEachSampleInOrder() {
        let schedule = SaShiMiStepSchedule(pool: [2, 2], dModel: 8, expand: 2, backbone: .sashimi)
        func calls(_ t: Int, appliesHead: Bool = false) -> [String] {
            var r = Recorder(appliesHead: appliesHead)
            schedule.run(sample: t, &r)
            return r.calls
        }
        XCTAssertEqual(calls(0), ["embed", "down 0 row 0", "up 1 row 0 last", "head"])
        XCTAssertEqual(calls(1), ["embed", "down 0 row 1 emits", "down 1 row 0", "up 0 row 0", "up 1 row 1 refills last", "head"])
        XCTAssertEqual(calls(3), ["embed", "down 0 row 1 emits", "down 1 row 1 emits", "center", "up 0 row 1 refills",
                                  "up 1 row 1 refills last", "head"])
        XCTAssertEqual(calls(7), calls(3))
        XCTAssertEqual(calls(3, appliesHead: true).last, "up 1 row 1 refills last")
    }
}
