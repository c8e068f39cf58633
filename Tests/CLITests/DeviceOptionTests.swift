import Foundation
import XCTest

/// `--device` parsing and `info --devices`, through the built binary.
final class DeviceOptionTests: XCTestCase {
    func testInfoDevicesSaysWhyNoGPUIsUsable() throws {
        let r = try CLI.run(["info", "--devices"])
        XCTAssertEqual(r.status, 0, r.stderr)
        let lines = r.stdout.split(separator: "\n").map(String.init)
        XCTAssertTrue(lines.first?.hasPrefix("cpu      ") ?? false, r.stdout)
        XCTAssertTrue(lines.contains { $0.hasPrefix("cuda") }, r.stdout)
        XCTAssertTrue(lines.contains { $0.hasPrefix("nvrtc    ") }, r.stdout)
        if !FileManager.default.fileExists(atPath: "/dev/nvidiactl") && !lines.contains(where: { $0.hasPrefix("cuda:") }) {
            XCTAssertTrue(lines.contains { $0.hasPrefix("cuda     unavailable: ") }, r.stdout)
        }
    }

    func testInfoWithoutArgumentsAsksForSome() throws {
        let r = try CLI.run(["info"])
        XCTAssertNotEqual(r.status, 0)
        XCTAssertTrue(r.stderr.contains("--devices"), r.stderr)
    }

    func testBadDeviceValuesAreRejected() throws {
        for bad in ["tpu", "cuda:", "cuda:-1", "cuda:x"] {
            let r = try CLI.run(["bench", "scan", "--quick", "--device", bad])
            XCTAssertNotEqual(r.status, 0, bad)
            XCTAssertTrue(r.stderr.contains("--device"), "\(bad): \(r.stderr)")
        }
    }

    func testExplicitCUDAWithoutAGPUIsAClearError() throws {
        guard !FileManager.default.fileExists(atPath: "/dev/nvidiactl") else { print("skipped: a GPU host"); return }
        let r = try CLI.run(["selftest", "--device", "cuda:1"])
        XCTAssertEqual(r.status, 1, r.stderr)
        XCTAssertTrue(r.stderr.contains("--device cuda:1: "), r.stderr)
        let auto = try CLI.run(["selftest"])
        XCTAssertEqual(auto.status, 0, auto.stderr)
        XCTAssertEqual(auto.stdout, "skipped: no CUDA device\n")
        XCTAssertTrue(auto.stderr.hasPrefix("device: cpu (no usable GPU: "), auto.stderr)
    }

    func testBenchScanRunsTheShapesAndKindsAsked() throws {
        let r = try CLI.run(["bench", "scan", "--device", "cpu", "--threads", "1", "--no-reference", "--shapes", "1x16x300x4,2x8x100x2", "--kinds", "complex"])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertTrue(r.stdout.contains("complex (1, 16, 300, 4)") && r.stdout.contains("complex (2, 8, 100, 2)"), r.stdout)
        XCTAssertFalse(r.stdout.contains("real ("), r.stdout)
        for (option, bad) in [("--shapes", "1x16x300"), ("--shapes", "1x0x300x4"), ("--kinds", "quaternion")] {
            let e = try CLI.run(["bench", "scan", "--device", "cpu", option, bad])
            XCTAssertNotEqual(e.status, 0, bad)
            XCTAssertTrue(e.stderr.contains(option) && e.stderr.contains(bad), "\(bad): \(e.stderr)")
        }
    }

    func testTF32OnTheCPUIsAClearError() throws {
        guard !FileManager.default.fileExists(atPath: "/dev/nvidiactl") else { print("skipped: a GPU host"); return }
        let r = try CLI.run(["bench", "scan", "--quick", "--device", "cpu", "--precision", "tf32"])
        XCTAssertNotEqual(r.status, 0)
        XCTAssertTrue(r.stderr.contains("--precision tf32 needs a GPU"), r.stderr)
        let bad = try CLI.run(["bench", "scan", "--quick", "--precision", "fp16"])
        XCTAssertNotEqual(bad.status, 0)
        XCTAssertTrue(bad.stderr.contains("--precision"), bad.stderr)
    }
}
