import Foundation

/// One tensor's entry in a safetensors header.
public struct SafeTensorInfo: Sendable, Equatable {
    public let name: String
    public let dtype: SafeTensorsDType
    public let shape: [Int]
    /// Byte range inside the data section (after the 8-byte length and the header).
    public let dataRange: Range<Int>

    public var elementCount: Int { shape.reduce(1, *) }
}

/// A safetensors file read and validated in full before any tensor is touched.
///
/// Layout: an 8-byte little-endian header length N, N bytes of JSON
/// `{"name": {"dtype", "shape", "data_offsets": [begin, end]}, "__metadata__": {…}}`, then the data.
/// The reader checks everything a hostile or truncated file could get wrong — header length
/// against the file size, JSON syntax, known dtypes, non-negative shapes without overflow,
/// offsets inside the data section, sizes matching shapes, no two tensors overlapping — so
/// that no later read can go out of bounds.
public struct SafeTensorsFile: Sendable {
    /// Headers larger than this are refused as absurd (the official library's limit is 100 MB).
    public static let maxHeaderBytes = 100_000_000

    public let path: String
    /// String metadata (`__metadata__`); wavemamba stores its model config here as JSON.
    public let metadata: [String: String]
    /// Tensors in the order of their data offsets.
    public let tensors: [SafeTensorInfo]
    private let data: Data
    private let dataStart: Int
    private let index: [String: Int]

    public var names: [String] { tensors.map(\.name) }

    public init(contentsOf url: URL) throws {
        let path = url.path
        let data: Data
        do {
            data = try Data(contentsOf: url, options: .alwaysMapped)
        } catch {
            throw SafeTensorsError(path: path, "cannot read file (\(Self.describe(error))); check the path and its permissions")
        }
        try self.init(data: data, path: path)
    }

    public init(data: Data, path: String = "<memory>") throws {
        self.path = path
        func fail(_ reason: String) -> SafeTensorsError { SafeTensorsError(path: path, reason) }

        guard data.count >= 8 else {
            throw fail("file is \(data.count) bytes, shorter than the 8-byte header length; not a safetensors file")
        }
        let headerLength: UInt64 = data.withUnsafeBytes { raw in
            var v: UInt64 = 0
            for i in 0..<8 { v |= UInt64(raw[i]) << (8 * UInt64(i)) }
            return v
        }
        guard headerLength <= UInt64(Self.maxHeaderBytes) else {
            throw fail("header length \(headerLength) bytes is absurd (limit \(Self.maxHeaderBytes)); the file is corrupt or not safetensors")
        }
        guard headerLength <= UInt64(data.count - 8) else {
            throw fail("header length \(headerLength) bytes runs past the end of the \(data.count)-byte file; the file is truncated")
        }
        let start = 8 + Int(headerLength)
        let headerBytes = data.subdata(in: 8..<start)
        let json: Any
        do {
            json = try JSONSerialization.jsonObject(with: headerBytes, options: [])
        } catch {
            throw fail("header is not valid JSON; the file is corrupt or not safetensors")
        }
        guard let object = json as? [String: Any] else {
            throw fail("header JSON is not an object")
        }
        let dataSize = data.count - start

        var metadata: [String: String] = [:]
        var infos: [SafeTensorInfo] = []
        for (name, value) in object {
            if name == "__metadata__" {
                guard let dict = value as? [String: Any] else { throw fail("__metadata__ is not an object") }
                for (k, v) in dict {
                    guard let s = v as? String else { throw fail("__metadata__[\(k)] is not a string") }
                    metadata[k] = s
                }
                continue
            }
            guard let entry = value as? [String: Any] else { throw fail("tensor '\(name)': entry is not an object") }
            guard let dtypeName = entry["dtype"] as? String else { throw fail("tensor '\(name)': missing dtype") }
            guard let dtype = SafeTensorsDType(rawValue: dtypeName) else {
                throw fail("tensor '\(name)': unknown dtype '\(dtypeName)'")
            }
            guard let shapeAny = entry["shape"] as? [Any] else { throw fail("tensor '\(name)': missing shape") }
            var shape: [Int] = []
            var count = 1
            for d in shapeAny {
                guard let n = Self.integer(d), n >= 0 else { throw fail("tensor '\(name)': shape \(shapeAny) is not a list of non-negative integers") }
                let (p, overflow) = count.multipliedReportingOverflow(by: n)
                guard !overflow else { throw fail("tensor '\(name)': shape \(shapeAny) overflows") }
                count = p
                shape.append(n)
            }
            guard let offsets = entry["data_offsets"] as? [Any], offsets.count == 2,
                  let begin = Self.integer(offsets[0]), let end = Self.integer(offsets[1]) else {
                throw fail("tensor '\(name)': data_offsets must be [begin, end]")
            }
            guard begin >= 0, begin <= end else { throw fail("tensor '\(name)': data_offsets [\(begin), \(end)] are reversed or negative") }
            guard end <= dataSize else {
                throw fail("tensor '\(name)': data_offsets [\(begin), \(end)] run past the end of the data (\(dataSize) bytes); the file is truncated")
            }
            let (bytes, overflow) = count.multipliedReportingOverflow(by: dtype.size)
            guard !overflow, bytes == end - begin else {
                throw fail("tensor '\(name)': shape \(shape) of \(dtype.rawValue) needs \(overflow ? "too many" : String(bytes)) bytes but data_offsets span \(end - begin)")
            }
            infos.append(SafeTensorInfo(name: name, dtype: dtype, shape: shape, dataRange: begin..<end))
        }
        infos.sort { ($0.dataRange.lowerBound, $0.dataRange.upperBound, $0.name) < ($1.dataRange.lowerBound, $1.dataRange.upperBound, $1.name) }
        for i in infos.indices.dropFirst() where !infos[i].dataRange.isEmpty {
            // Compare against the last non-empty range before this one.
            if let prev = infos[..<i].last(where: { !$0.dataRange.isEmpty }), prev.dataRange.upperBound > infos[i].dataRange.lowerBound {
                throw fail("tensors '\(prev.name)' and '\(infos[i].name)' overlap in the data section")
            }
        }
        self.metadata = metadata
        self.tensors = infos
        self.data = data
        self.dataStart = start
        var index: [String: Int] = [:]
        for (i, t) in infos.enumerated() { index[t.name] = i }
        self.index = index
    }

    public func info(_ name: String) -> SafeTensorInfo? { index[name].map { tensors[$0] } }

    public func shape(_ name: String) -> [Int]? { info(name)?.shape }

    /// The tensor's raw little-endian bytes.
    public func bytes(_ name: String) throws -> Data {
        guard let t = info(name) else { throw SafeTensorsError(path: path, "no tensor named '\(name)'") }
        return data.subdata(in: (dataStart + t.dataRange.lowerBound)..<(dataStart + t.dataRange.upperBound))
    }

    /// The tensor converted to Float32 (from F32, F64, F16 or BF16).
    public func floats(_ name: String) throws -> [Float] {
        guard let t = info(name) else { throw SafeTensorsError(path: path, "no tensor named '\(name)'") }
        var out = [Float](repeating: 0, count: t.elementCount)
        try read(name, into: &out)
        return out
    }

    /// Converts the tensor to Float32 into `out` (whose count must equal the element count).
    public func read(_ name: String, into out: UnsafeMutableBufferPointer<Float>) throws {
        guard let t = info(name) else { throw SafeTensorsError(path: path, "no tensor named '\(name)'") }
        guard out.count == t.elementCount else {
            throw SafeTensorsError(path: path, "tensor '\(name)' has \(t.elementCount) elements, destination has \(out.count)")
        }
        guard t.dtype.isFloatingPoint else {
            throw SafeTensorsError(path: path, "tensor '\(name)' is \(t.dtype.rawValue), not a floating-point type")
        }
        let n = t.elementCount
        data.withUnsafeBytes { raw in
            let base = raw.baseAddress! + dataStart + t.dataRange.lowerBound
            switch t.dtype {
            case .F32:
                for i in 0..<n { out[i] = Float(bitPattern: base.loadUnaligned(fromByteOffset: 4 * i, as: UInt32.self).littleEndian) }
            case .F64:
                for i in 0..<n { out[i] = Float(Double(bitPattern: base.loadUnaligned(fromByteOffset: 8 * i, as: UInt64.self).littleEndian)) }
            case .BF16:
                for i in 0..<n {
                    let h = UInt32(base.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self).littleEndian)
                    out[i] = Float(bitPattern: h << 16)
                }
            case .F16:
                for i in 0..<n { out[i] = Self.halfToFloat(base.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self).littleEndian) }
            default:
                break
            }
        }
    }

    public func read(_ name: String, into out: inout [Float]) throws {
        try out.withUnsafeMutableBufferPointer { try read(name, into: $0) }
    }

    // IEEE half → float, including subnormals, infinities and NaN.
    static func halfToFloat(_ h: UInt16) -> Float {
        let sign = UInt32(h & 0x8000) << 16
        let exp = Int((h >> 10) & 0x1f)
        let mant = UInt32(h & 0x3ff)
        if exp == 0 {
            let v = Float(mant) * Float(sign == 0 ? 1 : -1) / 16_777_216 // 2^-24
            return v
        }
        if exp == 31 { return Float(bitPattern: sign | 0x7f80_0000 | (mant << 13)) }
        return Float(bitPattern: sign | (UInt32(exp - 15 + 127) << 23) | (mant << 13))
    }

    private static func integer(_ any: Any) -> Int? {
        guard let n = any as? NSNumber else { return nil }
        // Reject booleans and non-integral numbers.
        if String(cString: n.objCType) == "c" { return nil }
        let d = n.doubleValue
        guard d.rounded() == d, abs(d) < 9.0e15 else { return nil }
        return n.intValue
    }

    private static func describe(_ error: Error) -> String {
        let ns = error as NSError
        if let under = ns.userInfo[NSUnderlyingErrorKey] as? NSError, under.domain == NSPOSIXErrorDomain,
           let code = POSIXErrorCode(rawValue: Int32(under.code)) {
            return String(cString: strerror(code.rawValue))
        }
        return ns.localizedDescription
    }
}
