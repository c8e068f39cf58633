import Fixtures
import Foundation
import XCTest

/// FastMath.swift's SIMD8 and SIMD16 sections are written by scripts/gen-fastmath.py from its
/// SIMD4 section; the committed file must be what the script writes.
final class FastMathGeneratorTests: XCTestCase {
    func testFastMathIsTheGeneratorsOutput() throws {
        let script = Fixtures.repository.appendingPathComponent("scripts/gen-fastmath.py")
        guard let python = ["/usr/bin/python3", "/usr/local/bin/python3", "/bin/python3"]
            .first(where: { FileManager.default.isExecutableFile(atPath: $0) })
        else { throw XCTSkip("python3 not found: cannot run scripts/gen-fastmath.py --check") }
        let p = Process()
        p.executableURL = URL(fileURLWithPath: python)
        p.arguments = [script.path, "--check"]
        let out = Pipe()
        p.standardOutput = out
        p.standardError = out
        try p.run()
        let text = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        p.waitUntilExit()
        XCTAssertEqual(p.terminationStatus, 0, text)
    }
}
