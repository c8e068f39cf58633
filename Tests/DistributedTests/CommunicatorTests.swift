import XCTest
@testable import Distributed

final class CommunicatorTests: XCTestCase {
    /// Outside mpirun no MPI library is touched: the single-process path needs none.
    func testNotLaunchedByMPIMeansNoCommunicator() throws {
        guard !MPICommunicator.launchedByMPI else { throw XCTSkip("running under mpirun") }
        XCTAssertNil(try MPICommunicator.detect())
        XCTAssertTrue(try Distribution.detect() is SingleProcess)
    }

    func testSingleProcessCollectivesLeaveDataAlone() throws {
        let c = SingleProcess()
        var v: [Float] = [1, 2, 3]
        try c.allReduceSum(&v)
        XCTAssertEqual(v, [1, 2, 3])
        var i: [Int64] = [7]
        try c.broadcast(&i, what: "test")
        XCTAssertEqual(i, [7])
        XCTAssertEqual(c.rank, 0)
        XCTAssertEqual(c.size, 1)
        try c.finish()
    }

    /// The watchdog ends nothing when the call returns in time, and passes its result through.
    func testWatchdogPassesResultThrough() {
        XCTAssertEqual(MPICommunicator.watchdog(seconds: 5, "unused") { 42 }, 42)
    }
}
