import XCTest
@testable import Distributed

final class CommunicatorTests: XCTestCase {
    /// Outside mpirun no MPI library is touched: the single-process path needs none.
    func testNotLaunchedByMPIMeansNoCommunicator() throws {
        guard !MPICommunicator.launchedByMPI else { throw XCTSkip("running under mpirun") }
        XCTAssertNil(try MPICommunicator.detect())
    }

    func testSingleProcessCollectivesLeaveDataAlone() throws {
        let c = SingleProcess()
        var v: [Float] = [1, 2, 3]
        try v.withUnsafeMutableBufferPointer { try c.allReduceSum($0.baseAddress!, count: 3) }
        XCTAssertEqual(v, [1, 2, 3])
        XCTAssertEqual(c.rank, 0)
        XCTAssertEqual(c.size, 1)
    }
}
