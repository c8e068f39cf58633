import XCTest
@testable import AudioIO
final class AudioIOSmokeTests: XCTestCase { func testBuilds() {} }
