import Fixtures
import Foundation
import XCTest

/// `wavemamba experiment NAME --quick`: each writes results.json, results.md and plot.png with
/// its rows and columns; the memory exponents say what the block types are; a stopped
/// ablation continues without retraining its finished cells.
final class ExperimentCommandTests: XCTestCase {
    var dir: URL!

    override func setUpWithError() throws {
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("wm-experiment-cli-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: dir) }

    /// Runs `experiment NAME --quick` into dir/NAME (from the repository root, so that the
    /// bundled corpora are found as a user finds them) and returns results.json and results.md.
    @discardableResult
    func quick(_ name: String, _ extra: [String] = [], file: StaticString = #filePath, line: UInt = #line) throws
        -> (json: [String: Any], markdown: String, result: CLI.Result) {
        let out = dir.appendingPathComponent(name)
        let r = try CLI.run(["experiment", name, "--quick", "--out", out.path, "--device", "cpu", "--threads", "2", "--data",
                             Fixtures.repository.appendingPathComponent(name == "context" ? "Assets/piano" : "Assets/digits").path] + extra)
        XCTAssertEqual(r.status, 0, r.stderr, file: file, line: line)
        let json = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(contentsOf: out.appendingPathComponent("results.json"))) as? [String: Any])
        let md = try String(contentsOf: out.appendingPathComponent("results.md"), encoding: .utf8)
        let png = try Data(contentsOf: out.appendingPathComponent("plot.png"))
        XCTAssertEqual(Array(png.prefix(8)), [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A], "plot.png is not a PNG", file: file, line: line)
        XCTAssertTrue(md.contains("](plot.png)"), md, file: file, line: line)
        return (json, md, r)
    }

    func cells(_ json: [String: Any]) -> [String: [String: Any]] {
        var out: [String: [String: Any]] = [:]
        for c in json["cells"] as? [[String: Any]] ?? [] { out[c["cell"] as! String] = c }
        return out
    }

    func rows(_ md: String, startingWith prefix: String) -> [String] { md.split(separator: "\n").map(String.init).filter { $0.hasPrefix(prefix) } }

    /// Table 5's 3 × 3 grid, then Fig. 10's non-selective Mamba cells.
    static let ablationCells = ["mamba-mamba", "mamba-s4d", "mamba-mha", "s4d-mamba", "s4d-s4d", "s4d-mha", "mha-mamba", "mha-s4d", "mha-mha",
                                "mamba-lti-mamba-lti", "mamba-lti-mamba", "mamba-mamba-lti"]

    func testAblationQuickWritesTheGridWithEveryMetric() throws {
        let (json, md, _) = try quick("ablation")
        XCTAssertEqual(json["complete"] as? Bool, true)
        let c = cells(json)
        XCTAssertEqual(Set(c.keys), Set(Self.ablationCells))
        let reference = try XCTUnwrap(c["mamba-mamba"]?["parameters"] as? Int)
        for (name, cell) in c {
            for key in ["parameters", "parameters_vs_reference", "test_bits_per_sample", "fid", "is", "mis", "am", "generated_event_rate", "reference_event_rate"] {
                XCTAssertNotNil(cell[key] as? NSNumber, "\(name): \(key) missing in \(cell)")
            }
            let p = try XCTUnwrap(cell["parameters"] as? Int), dev = try XCTUnwrap(cell["parameters_vs_reference"] as? Double)
            XCTAssertEqual(dev, Double(p) / Double(reference) - 1, accuracy: 1e-12)
            XCTAssertTrue((1...9).contains(try XCTUnwrap(cell["test_bits_per_sample"] as? Double)), "\(cell)")
            XCTAssertEqual(cell["steps"] as? Int, 4)
            XCTAssertTrue(FileManager.default.fileExists(atPath: dir.appendingPathComponent("ablation/cells/\(name)/checkpoints/step-4.safetensors").path))
        }
        // Block types change the parameter count: the grid is not nine copies of one model.
        XCTAssertGreaterThan(Set(c.values.compactMap { $0["parameters"] as? Int }).count, 3)
        XCTAssertTrue(md.contains("| outer | center | FF | parameters | vs Mamba/Mamba | steps | test NLL (bits/sample) | FID | IS | mIS | AM | event rate (gen / valid) | status |"), md)
        let tableRows = rows(md, startingWith: "| m") + rows(md, startingWith: "| s")
        XCTAssertEqual(tableRows.count, 12, md)
        XCTAssertTrue(tableRows.allSatisfy { $0.hasSuffix("| done |") }, md)
        XCTAssertTrue(md.contains("| mamba | mamba | – | \(reference) | +0.0 % | 4 |"), md)
        // Fig. 10: without x_proj and dt_proj a non-selective stage has fewer parameters, and no FF to match them with.
        var fig10: [String: Int] = [:]
        for (outer, center) in [("mamba-lti", "mamba-lti"), ("mamba-lti", "mamba"), ("mamba", "mamba-lti")] {
            let cell = try XCTUnwrap(c["\(outer)-\(center)"])
            XCTAssertEqual(cell["outer"] as? String, outer)
            XCTAssertEqual(cell["center"] as? String, center)
            let p = try XCTUnwrap(cell["parameters"] as? Int)
            XCTAssertLessThan(p, reference, "\(outer) / \(center)")
            fig10["\(outer)-\(center)"] = p
            let dev = String(format: "%+.1f %%", 100 * (Double(p) / Double(reference) - 1))
            XCTAssertTrue(tableRows.contains { $0.hasPrefix("| \(outer) | \(center) | – | \(p) | \(dev)") }, "\(outer) / \(center) row: \(md)")
        }
        // Both stages' savings add up in the all-non-selective cell.
        XCTAssertEqual(reference - fig10["mamba-lti-mamba-lti"]!, 2 * reference - fig10["mamba-lti-mamba"]! - fig10["mamba-mamba-lti"]!)
        XCTAssertTrue(md.contains("(> ±5 %)"), "deviations outside the paper's ±5 % are flagged: \(md)")
    }

    /// A stopped ablation continues where it stopped. First a session whose --max-time is over
    /// before the first cell: it says how to continue and records nothing. Then a full run.
    /// Then the state a kill during cell mamba-s4d leaves (its result not recorded, its newest
    /// checkpoint at step 2): the rerun resumes that cell from step 2, leaves every other
    /// cell's run folder untouched, and the table is complete again.
    func testStoppedAblationResumesWithoutRetrainingFinishedCells() throws {
        let stopped = try quick("ablation", ["--max-time", "0.000001s"])
        XCTAssertTrue(stopped.result.stdout.contains("stopped by the time limit (--max-time); run the same command again to continue"), stopped.result.stdout)
        XCTAssertEqual(stopped.json["complete"] as? Bool, false)
        XCTAssertEqual((stopped.json["pending"] as? [String])?.count, 12)
        XCTAssertEqual(rows(stopped.markdown, startingWith: "| ").filter { $0.hasSuffix("| to run |") }.count, 12, stopped.markdown)

        _ = try quick("ablation")
        let root = dir.appendingPathComponent("ablation")
        let results = root.appendingPathComponent("results.json")
        var json = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(contentsOf: results)) as? [String: Any])
        json["cells"] = (json["cells"] as! [[String: Any]]).filter { $0["cell"] as? String != "mamba-s4d" }
        try JSONSerialization.data(withJSONObject: json).write(to: results)
        let cell = root.appendingPathComponent("cells/mamba-s4d/checkpoints")
        for f in ["step-4.safetensors", "step-4.optim.safetensors"] { try FileManager.default.removeItem(at: cell.appendingPathComponent(f)) }
        XCTAssertTrue(FileManager.default.fileExists(atPath: cell.appendingPathComponent("step-2.safetensors").path))

        func snapshot() throws -> [String: [String]] {
            var out: [String: [String]] = [:]
            for name in Self.ablationCells where name != "mamba-s4d" {
                let folder = root.appendingPathComponent("cells/\(name)")
                let files = try XCTUnwrap(FileManager.default.subpathsOfDirectory(atPath: folder.path)).sorted()
                out[name] = try files.map { f in
                    let a = try FileManager.default.attributesOfItem(atPath: folder.appendingPathComponent(f).path)
                    return "\(f) \(a[.size] ?? 0) \((a[.modificationDate] as? Date)?.timeIntervalSince1970 ?? 0)"
                }
            }
            return out
        }
        let before = try snapshot()
        let again = try quick("ablation")
        XCTAssertEqual(try snapshot(), before, "a finished cell's run folder changed")
        XCTAssertTrue(again.result.stdout.contains("cell mamba-s4d: resuming at step 2 of 4 steps"), again.result.stdout)
        XCTAssertEqual(again.result.stdout.components(separatedBy: "recorded in results.json, skipped").count - 1, 11, again.result.stdout)
        let metrics = try String(contentsOf: root.appendingPathComponent("cells/mamba-s4d/metrics.jsonl"), encoding: .utf8)
        XCTAssertTrue(metrics.contains("\"type\":\"resume\",\"step\":2,"), metrics)
        XCTAssertEqual(again.json["complete"] as? Bool, true)
        XCTAssertEqual(cells(again.json)["mamba-s4d"]?["steps"] as? Int, 4)
        XCTAssertEqual(rows(again.markdown, startingWith: "| ").filter { $0.hasSuffix("| done |") }.count, 12, again.markdown)
    }

    func testLengthQuickScoresOneToEightTimesWithPerPositionCurves() throws {
        let (json, md, _) = try quick("length")
        let c = cells(json)
        XCTAssertEqual(Set(c.keys), ["mamba", "s4d"])
        for (name, cell) in c {
            XCTAssertEqual(cell["lengths"] as? [Int], [256, 512, 1024, 2048])
            let bits = try XCTUnwrap(cell["test_bits_per_sample"] as? [Double])
            let curves = try XCTUnwrap(cell["per_position_bits"] as? [[Double]])
            XCTAssertEqual(curves.map(\.count), [4, 8, 16, 32], name)
            // The whole-clip NLL and the mean of the position buckets: two paths, one number.
            for (b, curve) in zip(bits, curves) { XCTAssertEqual(b, curve.reduce(0, +) / Double(curve.count), accuracy: 1e-6, name) }
        }
        XCTAssertTrue(md.contains("| block | parameters | steps | NLL at 256 (1×) | NLL at 512 (2×) | NLL at 1024 (4×) | NLL at 2048 (8×) |"), md)
        XCTAssertEqual(rows(md, startingWith: "| mamba |").count + rows(md, startingWith: "| s4d |").count, 2, md)
        XCTAssertEqual(rows(md, startingWith: "| 1984 ..< 2048 |").count, 1, md)
    }

    /// Mamba trains in memory linear in the length and steps in a state of constant size;
    /// attention's step state (its KV cache) grows with the length.
    func testMemoryQuickExponents() throws {
        let (json, md, _) = try quick("memory")
        let c = cells(json)
        XCTAssertEqual(c.count, 12)
        let summary = try XCTUnwrap(json["summary"] as? [String: [String: [Double]]])
        let mambaTrain = try XCTUnwrap(summary["mamba"]?["train_memory_exponents"])
        XCTAssertEqual(mambaTrain.count, 3)
        for e in mambaTrain { XCTAssertLessThanOrEqual(e, 1.1); XCTAssertGreaterThan(e, 0.5) }
        func state(_ kind: String) -> [Int] { [64, 128, 256, 512].map { c["\(kind)@\($0)"]?["generation_state_bytes"] as? Int ?? -1 } }
        let mamba = state("mamba"), mha = state("mha")
        XCTAssertGreaterThan(mamba[0], 0)
        XCTAssertEqual(Set(mamba).count, 1, "Mamba's step state should not depend on the length: \(mamba)")
        XCTAssertEqual(summary["mamba"]?["generation_state_exponents"], [0, 0, 0])
        XCTAssertTrue(zip(mha, mha.dropFirst()).allSatisfy { $0 < $1 }, "attention's KV cache should grow: \(mha)")
        for e in try XCTUnwrap(summary["mha"]?["generation_state_exponents"]) { XCTAssertGreaterThan(e, 0.5) }
        XCTAssertTrue(md.contains("| block | length | training peak (MiB) | training step (ms) | generation state (KiB) | generation step (ms) |"), md)
        // Four lengths in the first table, the exponents' row in the second.
        XCTAssertEqual(rows(md, startingWith: "| mha | ").count, 5, md)
    }

    func testContextQuickTrainsEachLengthAtFixedSamplesPerBatch() throws {
        let (json, md, _) = try quick("context")
        let c = cells(json)
        XCTAssertEqual(Set(c.keys), ["mamba@256", "mamba@512", "mamba@1024", "s4d@256", "s4d@512", "s4d@1024"])
        for (name, cell) in c {
            let length = try XCTUnwrap(cell["length"] as? Int), batch = try XCTUnwrap(cell["batch_size"] as? Int)
            XCTAssertEqual(length * batch, 2048, name)
            XCTAssertTrue((1...9).contains(try XCTUnwrap(cell["test_bits_per_sample"] as? Double)), "\(cell)")
        }
        XCTAssertTrue(md.contains("| length | batch | mamba test NLL (bits/sample) | mamba parameters | s4d test NLL (bits/sample) | s4d parameters |"), md)
        for l in ["| 256 | 8 |", "| 512 | 4 |", "| 1024 | 2 |"] { XCTAssertEqual(rows(md, startingWith: l).count, 1, md) }
    }
}
