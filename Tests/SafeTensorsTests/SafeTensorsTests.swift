import Fixtures
import Foundation
import XCTest
@testable import SafeTensors

final class SafeTensorsTests: XCTestCase {
    private var tmp: URL!

    override func setUpWithError() throws {
        tmp = FileManager.default.temporaryDirectory.appendingPathComponent("st-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: tmp, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(at: tmp)
    }

    static var goldenDirectory: URL { Fixtures.golden }

    /// BF16 storage: round to nearest even on the upper 16 bits, read back as Float32.
    func testBF16RoundTrip() throws {
        let values: [Float] = [1, -2.5, 1 + 1.0 / 256, 1 + 3.0 / 256, 1 + 1.0 / 512, 1 + 3.0 / 512, 3.14159, -1e-30, 0, .infinity]
        // BF16's step at 1 is 2⁻⁷: 1 + 2⁻⁸ is a tie, to even (1); 1 + 3·2⁻⁸ a tie, to even
        // (1 + 2·2⁻⁷); 1 + 2⁻⁹ rounds down; 1 + 1.5·2⁻⁸ rounds up.
        let expected: [Float] = [1, -2.5, 1, 1 + 1.0 / 64, 1, 1 + 1.0 / 128, 3.140625, Float(bitPattern: Float(-1e-30).bitPattern & 0xFFFF_0000), 0, .infinity]
        var w = SafeTensorsWriter()
        w.add("x", shape: [values.count], values: values, dtype: .BF16)
        w.add("n", shape: [1], values: [.nan], dtype: .BF16)
        let url = tmp.appendingPathComponent("bf16.safetensors")
        try w.write(to: url)
        let f = try SafeTensorsFile(contentsOf: url)
        XCTAssertEqual(f.info("x")?.dtype, .BF16)
        XCTAssertEqual(try Data(contentsOf: url).count, 8 + Int(try Data(contentsOf: url).prefix(8).withUnsafeBytes { $0.load(as: UInt64.self) }) + 2 * (values.count + 1))
        XCTAssertEqual(try f.floats("x"), expected)
        XCTAssertTrue(try f.floats("n")[0].isNaN)
    }

    func testRoundTripIsExactAndAtomic() throws {
        var w = SafeTensorsWriter(metadata: ["config": #"{"d_model":64}"#])
        let a: [Float] = (0..<30).map { Float($0) * 0.37 - 3 }
        let b: [Float] = [Float.pi, -0, .greatestFiniteMagnitude, .leastNonzeroMagnitude]
        w.add("layers.0.mixer.A_log", shape: [5, 6], values: a)
        w.add("norm.weight", shape: [4], values: b)
        w.add("empty", shape: [0, 3], values: [])
        let url = tmp.appendingPathComponent("m.safetensors")
        try w.write(to: url)
        // No temp file is left behind.
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: tmp.path), ["m.safetensors"])
        let f = try SafeTensorsFile(contentsOf: url)
        XCTAssertEqual(f.metadata["config"], #"{"d_model":64}"#)
        XCTAssertEqual(Set(f.names), ["layers.0.mixer.A_log", "norm.weight", "empty"])
        XCTAssertEqual(f.shape("layers.0.mixer.A_log"), [5, 6])
        XCTAssertEqual(try f.floats("layers.0.mixer.A_log"), a)
        XCTAssertEqual(try f.floats("norm.weight").map(\.bitPattern), b.map(\.bitPattern))
        XCTAssertEqual(try f.floats("empty"), [])
        // Data section is 8-byte aligned, as the reference writer makes it.
        let data = try Data(contentsOf: url)
        let n = data.prefix(8).enumerated().reduce(UInt64(0)) { $0 | UInt64($1.element) << (8 * UInt64($1.offset)) }
        XCTAssertEqual((8 + n) % 8, 0)
        // Writing twice gives identical bytes.
        XCTAssertEqual(w.serialized(), data)
    }

    func testReadsFilesWrittenByPythonSafetensors() throws {
        let dir = Self.goldenDirectory
        let files = try FileManager.default.contentsOfDirectory(atPath: dir.path).filter { $0.hasSuffix(".safetensors") }.sorted()
        XCTAssertFalse(files.isEmpty, "no golden files in \(dir.path)")
        for name in files {
            let f = try SafeTensorsFile(contentsOf: dir.appendingPathComponent(name))
            XCTAssertNotNil(f.metadata["kind"], name)
            XCTAssertTrue(f.names.contains("out_y"), name)
            for t in f.tensors {
                let v = try f.floats(t.name)
                XCTAssertEqual(v.count, t.elementCount)
                XCTAssertTrue(v.allSatisfy(\.isFinite), "\(name): \(t.name) has non-finite values")
            }
        }
    }

    func testHalfAndBFloatConversion() throws {
        // F16: 1.0 = 0x3C00, -2.0 = 0xC000, 65504 = 0x7BFF, smallest subnormal 0x0001 = 2^-24.
        // BF16: 1.0 = 0x3F80, -0.5 = 0xBF00.
        let f16: [UInt16] = [0x3C00, 0xC000, 0x7BFF, 0x0001]
        let bf16: [UInt16] = [0x3F80, 0xBF00]
        var body = Data()
        for h in f16 + bf16 { body.append(UInt8(h & 0xff)); body.append(UInt8(h >> 8)) }
        let header = #"{"h":{"dtype":"F16","shape":[4],"data_offsets":[0,8]},"b":{"dtype":"BF16","shape":[2],"data_offsets":[8,12]}}"#
        let f = try SafeTensorsFile(data: Self.file(header: header, body: body))
        XCTAssertEqual(try f.floats("h"), [1, -2, 65504, Float(1.0 / 16_777_216)])
        XCTAssertEqual(try f.floats("b"), [1, -0.5])
    }

    static func file(header: String, body: Data, lengthOverride: UInt64? = nil) -> Data {
        var d = Data()
        var n = (lengthOverride ?? UInt64(header.utf8.count)).littleEndian
        withUnsafeBytes(of: &n) { d.append(contentsOf: $0) }
        d.append(Data(header.utf8))
        d.append(body)
        return d
    }

    private func assertRejected(_ data: Data, _ expected: String, file: StaticString = #filePath, line: UInt = #line) {
        do {
            _ = try SafeTensorsFile(data: data, path: "bad.safetensors")
            XCTFail("accepted a malformed file (expected: \(expected))", file: file, line: line)
        } catch let e as SafeTensorsError {
            XCTAssertTrue(e.description.hasPrefix("bad.safetensors: "), e.description, file: file, line: line)
            XCTAssertTrue(e.description.contains(expected), "\(e.description) lacks '\(expected)'", file: file, line: line)
        } catch {
            XCTFail("unexpected error \(error)", file: file, line: line)
        }
    }

    func testRejectsHostileAndTruncatedFiles() {
        let ok = #"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#
        let body = Data(count: 8)
        XCTAssertNoThrow(try SafeTensorsFile(data: Self.file(header: ok, body: body)))
        assertRejected(Data([1, 2, 3]), "shorter than the 8-byte")
        assertRejected(Self.file(header: ok, body: body, lengthOverride: 1 << 60), "absurd")
        assertRejected(Self.file(header: ok, body: body, lengthOverride: 5000), "past the end")
        assertRejected(Self.file(header: "{not json", body: body), "not valid JSON")
        assertRejected(Self.file(header: "[1,2]", body: body), "not an object")
        assertRejected(Self.file(header: #"{"a":{"dtype":"Q7","shape":[2],"data_offsets":[0,8]}}"#, body: body), "unknown dtype 'Q7'")
        assertRejected(Self.file(header: #"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,80]}}"#, body: body), "run past the end")
        assertRejected(Self.file(header: #"{"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}"#, body: body), "needs 12 bytes")
        assertRejected(Self.file(header: #"{"a":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}}"#, body: body), "non-negative")
        assertRejected(Self.file(header: #"{"a":{"dtype":"F32","shape":[4000000000,4000000000,4000000000],"data_offsets":[0,8]}}"#, body: body), "overflows")
        assertRejected(Self.file(header: #"{"a":{"dtype":"F32","shape":[1],"data_offsets":[4,0]}}"#, body: body), "reversed")
        assertRejected(Self.file(header: #"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}"#, body: body), "overlap")
        assertRejected(Self.file(header: #"{"a":{"dtype":"F32","shape":[2]}}"#, body: body), "data_offsets must be")
        assertRejected(Self.file(header: #"{"__metadata__":{"k":3}}"#, body: body), "not a string")
        // Truncating a valid file anywhere never crashes: it is rejected (or, cut exactly
        // after the data, accepted).
        let full = Self.file(header: ok, body: body)
        for cut in 0..<full.count {
            XCTAssertThrowsError(try SafeTensorsFile(data: full.prefix(cut)), "cut at \(cut)")
        }
    }
}
