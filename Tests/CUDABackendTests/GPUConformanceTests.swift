@testable import CUDAChecks
import Engine
import Fixtures
import Foundation
import XCTest
@testable import CUDABackend

/// The CUDA backend against the CPU backend (every method, the scan, golden files, whole
/// model). Without a usable GPU each test prints `skipped: no CUDA device` and passes.
final class GPUConformanceTests: XCTestCase {
    static let gpu: CUDABackend? = try? CUDABackend(ordinal: 0)

    func backends() -> (CUDABackend, CPUBackend)? {
        guard let g = Self.gpu else { print("skipped: no CUDA device"); return nil }
        return (g, CPUBackend(threads: 2))
    }

    func assertAll(_ outcomes: [CheckOutcome], file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertFalse(outcomes.isEmpty, file: file, line: line)
        for o in outcomes {
            print(o)
            XCTAssertTrue(o.passed, o.description, file: file, line: line)
        }
    }

    func testEveryBackendMethodMatchesTheCPU() {
        guard let (g, c) = backends() else { return }
        assertAll(KernelChecks(gpu: g, cpu: c).all().filter { !$0.name.hasPrefix("selective scan") })
    }

    func testTF32PrecisionIsOnAndClose() throws {
        guard let (g, c) = backends() else { return }
        assertAll(PrecisionChecks(gpu: g, cpu: c).all())
    }

    func testS4DLayerMatchesTheCPU() {
        guard let (g, c) = backends() else { return }
        assertAll(S4DChecks(gpu: g, cpu: c).all())
    }

    func testCausalAttentionMatchesTheCPU() {
        guard let (g, c) = backends() else { return }
        assertAll(AttentionChecks(gpu: g, cpu: c).all())
    }

    func testSelectiveScanMatchesTheCPU() {
        guard let (g, c) = backends() else { return }
        assertAll(ScanChecks(gpu: g, cpu: c).all())
    }

    func testGoldenFilesOnTheGPU() throws {
        guard let (g, _) = backends() else { return }
        assertAll(try GoldenChecks(backend: g, directory: Fixtures.golden).all())
    }

    func testTrainingStepStepModeAndCheckpointResume() throws {
        guard let (g, c) = backends() else { return }
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("wm-gpu-\(getpid())")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        assertAll(try ModelChecks(gpu: g, cpu: c).all(folder: folder))
    }

    func testStepGraphsAndDeviceSamplingMatchTheGenericPath() {
        guard let (g, _) = backends() else { return }
        assertAll(GraphChecks(gpu: g).all())
    }

    /// The check code runs here with the CPU in both roles: everything must agree exactly
    /// enough, and the golden files must pass through GoldenChecks on the CPU backend.
    func testChecksRunOnTheCPU() throws {
        let a = CPUBackend(threads: 2), b = CPUBackend(threads: 1)
        assertAll(KernelChecks(gpu: a, cpu: b).all())
        let repo = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        if let dir = GoldenChecks.findDirectory(from: repo) { assertAll(try GoldenChecks(backend: a, directory: dir).all()) }
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("wm-cpu-\(getpid())")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        assertAll(try ModelChecks(gpu: a, cpu: b).all(folder: folder))
    }

    /// The comparison can fail: a 1e-3 change in one element of a tensor is caught, NaN too.
    func testComparisonDetectsDifferences() {
        let ref: [Float] = (0..<100).map { Float($0) / 10 - 5 }
        var off = ref
        off[37] += 5e-3
        XCTAssertEqual(relativeError(ref, ref), 0)
        XCTAssertEqual(relativeError(off, ref), 1e-3, accuracy: 1e-5)
        XCTAssertFalse(CheckOutcome(name: "x", error: relativeError(off, ref), tolerance: 1e-4, detail: "").passed)
        off[3] = .nan
        XCTAssertEqual(relativeError(off, ref), .infinity)
    }
}
