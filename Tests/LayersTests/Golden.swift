import Fixtures
import Foundation
import SafeTensors

/// The golden folder (Tests/Fixtures/golden, or WAVEMAMBA_GOLDEN_DIR).
enum Golden {
    static var directory: URL { Fixtures.golden }

    /// Every golden file whose metadata `kind` is `kind`, sorted by name.
    static func files(kind: String) throws -> [(name: String, file: SafeTensorsFile)] {
        let names = try FileManager.default.contentsOfDirectory(atPath: directory.path).filter { $0.hasSuffix(".safetensors") }.sorted()
        return try names.compactMap { n in
            let f = try SafeTensorsFile(contentsOf: directory.appendingPathComponent(n))
            return f.metadata["kind"] == kind ? (n, f) : nil
        }
    }

    static func relativeError(_ a: [Float], _ b: [Float]) -> Double {
        precondition(a.count == b.count)
        var num = 0.0, den = 0.0
        for (x, y) in zip(a, b) { num += Double(x - y) * Double(x - y); den += Double(y) * Double(y) }
        return (num / max(den, 1e-30)).squareRoot()
    }
}
