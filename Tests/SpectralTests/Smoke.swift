import XCTest
@testable import Spectral
final class SpectralSmokeTests: XCTestCase { func testBuilds() {} }
