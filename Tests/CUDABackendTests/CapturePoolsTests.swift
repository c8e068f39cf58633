import XCTest
@testable import CUDABackend

/// The allocator's graph-pool bookkeeping (plain addresses; no device needed): blocks that a
/// captured graph may still write never reach the shared cache while the graph exists.
final class CapturePoolsTests: XCTestCase {
    func testBlocksReleasedWhileCapturingStayWithTheGraphUntilItIsDestroyed() {
        var pools = CapturePools()
        let (a, b, c, d, e): (UInt64, UInt64, UInt64, UInt64, UInt64) = (0x1000, 0x2000, 0x3000, 0x4000, 0x5000)
        // No capture: every release goes to the shared cache.
        XCTAssertFalse(pools.release(a, size: 512))
        XCTAssertNil(pools.take(size: 512))

        let first = pools.begin()
        XCTAssertEqual(pools.capturing, first)
        XCTAssertNil(pools.take(size: 512), "a new pool has no free blocks")
        pools.adopt(a)                                   // handed out from the cache during the capture
        XCTAssertTrue(pools.release(a, size: 512))
        XCTAssertEqual(pools.freeBytes(first), 512)
        XCTAssertEqual(pools.take(size: 512), a, "reused within the same capture")
        XCTAssertNil(pools.take(size: 1024), "size classes are kept apart")
        XCTAssertTrue(pools.release(a, size: 512))
        XCTAssertTrue(pools.release(b, size: 1024), "a block from before the capture, released during it, joins the pool")
        pools.adopt(c)                                   // still live when the capture ends
        pools.adopt(d)                                   // still live when the graph is destroyed
        pools.end()
        XCTAssertNil(pools.capturing)

        XCTAssertFalse(pools.release(e, size: 512), "after the capture, other blocks go to the cache")
        XCTAssertNil(pools.take(size: 512), "no pool hands out blocks outside a capture")
        XCTAssertTrue(pools.release(c, size: 512), "a block allocated during the capture returns to its graph's pool")
        XCTAssertEqual(pools.freeBytes(first), 512 + 1024 + 512)

        let second = pools.begin()
        XCTAssertNotEqual(second, first)
        XCTAssertNil(pools.take(size: 512), "another graph never gets the first graph's blocks")
        pools.end()
        XCTAssertEqual(pools.count, 2)

        let returned = pools.destroy(first).sorted { $0.address < $1.address }
        XCTAssertEqual(returned.map(\.address), [a, b, c])
        XCTAssertEqual(returned.map(\.size), [512, 1024, 512])
        XCTAssertEqual(pools.freeBytes(first), 0)
        XCTAssertFalse(pools.release(d, size: 512), "a live block of a destroyed graph is an ordinary block again")
        XCTAssertTrue(pools.destroy(first).isEmpty)
        XCTAssertEqual(pools.count, 1)
    }
}
