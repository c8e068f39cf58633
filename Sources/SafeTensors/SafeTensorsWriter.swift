import Foundation

/// Builds a safetensors file: F32 (or BF16) tensors under their names, string metadata, written
/// atomically (temp file in the same folder, fsync, rename, fsync of the folder), so a
/// crash mid-write leaves the previous file intact.
public struct SafeTensorsWriter {
    private var entries: [(name: String, shape: [Int], dtype: SafeTensorsDType, bytes: Data)] = []
    public var metadata: [String: String] = [:]

    public init(metadata: [String: String] = [:]) { self.metadata = metadata }

    /// Adds a tensor stored as `dtype`: F32, or BF16 (rounded to nearest, ties to even; NaN
    /// stays NaN), which halves a checkpoint at 8 bits of mantissa.
    public mutating func add(_ name: String, shape: [Int], values: UnsafeBufferPointer<Float>, dtype: SafeTensorsDType = .F32) {
        precondition(shape.reduce(1, *) == values.count, "shape \(shape) does not match \(values.count) values for '\(name)'")
        precondition(!entries.contains { $0.name == name } && name != "__metadata__", "duplicate tensor name '\(name)'")
        precondition(dtype == .F32 || dtype == .BF16, "SafeTensorsWriter writes F32 or BF16, not \(dtype.rawValue)")
        var bytes = Data(count: values.count * dtype.size)
        bytes.withUnsafeMutableBytes { raw in
            if dtype == .F32 {
                for i in 0..<values.count { raw.storeBytes(of: values[i].bitPattern.littleEndian, toByteOffset: 4 * i, as: UInt32.self) }
            } else {
                for i in 0..<values.count { raw.storeBytes(of: Self.bfloat16(values[i]).littleEndian, toByteOffset: 2 * i, as: UInt16.self) }
            }
        }
        entries.append((name, shape, dtype, bytes))
    }

    public mutating func add(_ name: String, shape: [Int], values: [Float], dtype: SafeTensorsDType = .F32) {
        values.withUnsafeBufferPointer { add(name, shape: shape, values: $0, dtype: dtype) }
    }

    /// The upper half of `x`'s bits, rounded to nearest even.
    static func bfloat16(_ x: Float) -> UInt16 {
        if x.isNaN { return 0x7FC0 }
        let b = x.bitPattern
        return UInt16(truncatingIfNeeded: (b &+ 0x7FFF &+ ((b >> 16) & 1)) >> 16)
    }

    /// The complete file contents.
    public func serialized() -> Data {
        // Sorted names give a byte-identical file for the same contents.
        let sorted = entries.sorted { $0.name < $1.name }
        var header: [String: Any] = [:]
        var offset = 0
        for e in sorted {
            header[e.name] = ["dtype": e.dtype.rawValue, "shape": e.shape, "data_offsets": [offset, offset + e.bytes.count]] as [String: Any]
            offset += e.bytes.count
        }
        if !metadata.isEmpty { header["__metadata__"] = metadata }
        var json = (try? JSONSerialization.data(withJSONObject: header, options: [.sortedKeys])) ?? Data("{}".utf8)
        // Pad with spaces so the data section starts 8-byte aligned, as the reference writer does.
        while (8 + json.count) % 8 != 0 { json.append(0x20) }
        var out = Data(capacity: 8 + json.count + offset)
        var n = UInt64(json.count).littleEndian
        withUnsafeBytes(of: &n) { out.append(contentsOf: $0) }
        out.append(json)
        for e in sorted { out.append(e.bytes) }
        return out
    }

    public func write(to url: URL) throws {
        try AtomicFile.write(serialized(), to: url)
    }
}

/// Atomic replacement of a file: write a temp file beside it, fsync, rename over the target,
/// fsync the folder. Readers see either the old file or the new one, never a partial one.
public enum AtomicFile {
    public static func write(_ data: Data, to url: URL) throws {
        let dir = url.deletingLastPathComponent()
        let tmp = dir.appendingPathComponent(".\(url.lastPathComponent).tmp-\(getpid())")
        let fd = open(tmp.path, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        guard fd >= 0 else {
            throw SafeTensorsError(path: url.path, "cannot create \(tmp.path): \(String(cString: strerror(errno))); check that the folder exists and is writable")
        }
        var ok = true
        var err: Int32 = 0
        data.withUnsafeBytes { raw in
            var done = 0
            while done < raw.count {
                let w = Foundation.write(fd, raw.baseAddress! + done, raw.count - done)
                if w < 0 { if errno == EINTR { continue }; ok = false; err = errno; return }
                done += w
            }
        }
        if ok && fsync(fd) != 0 { ok = false; err = errno }
        close(fd)
        guard ok else {
            unlink(tmp.path)
            throw SafeTensorsError(path: url.path, "write failed: \(String(cString: strerror(err))); check free disk space")
        }
        guard rename(tmp.path, url.path) == 0 else {
            let e = errno
            unlink(tmp.path)
            throw SafeTensorsError(path: url.path, "rename failed: \(String(cString: strerror(e)))")
        }
        let dfd = open(dir.path, O_RDONLY)
        if dfd >= 0 { fsync(dfd); close(dfd) }
    }
}
