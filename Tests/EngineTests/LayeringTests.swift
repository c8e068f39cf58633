import Foundation
import XCTest

/// Only the backends import Kernels (docs/architecture.md). SwiftPM lets any target import a
/// module it reaches through its dependencies (every layer reaches Kernels through the Engine),
/// so the package graph alone cannot enforce it: this test reads the sources.
final class LayeringTests: XCTestCase {
    /// Targets that may import Kernels, and single files elsewhere, each with its reason.
    static let allowedTargets: Set<String> = [
        "Kernels", "Engine", "CUDABackend",
        "CUDAChecks",   // compares the CUDA kernels with the CPU ones
        "wavemamba",    // the benches measure the kernels
    ]
    static let allowedFiles: Set<String> = [
        "Spectral/FFTConvolution.swift",   // Layout.transpose; Spectral is host code beside the kernels
        "Models/SaShiMiFastStep.swift",    // the CPU fast step, until the CPU backend has fused steps
    ]

    func testOnlyBackendsImportKernels() throws {
        let sources = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            .deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("Sources")
        let files = FileManager.default.enumerator(at: sources, includingPropertiesForKeys: nil)!
            .compactMap { $0 as? URL }.filter { $0.pathExtension == "swift" }
        XCTAssertFalse(files.isEmpty, "no sources under \(sources.path)")
        var offenders: [String] = []
        for file in files {
            let relative = String(file.path.dropFirst(sources.path.count + 1))
            let target = String(relative.prefix { $0 != "/" })
            if Self.allowedTargets.contains(target) || Self.allowedFiles.contains(relative) { continue }
            let text = try String(contentsOf: file, encoding: .utf8)
            if text.split(separator: "\n").contains(where: { $0.hasPrefix("import Kernels") || $0.hasPrefix("@_exported import Kernels") }) {
                offenders.append(relative)
            }
        }
        XCTAssertEqual(offenders.sorted(), [], "import Kernels above the Engine")
    }
}
