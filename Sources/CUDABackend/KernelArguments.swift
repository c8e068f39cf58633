/// The parameter block of one kernel launch: each argument in its own 8-byte-aligned slot,
/// and the array of slot addresses cuLaunchKernel takes. Structs (the scan's argument
/// bundles) are passed as their C layout bytes.
struct KernelArguments {
    enum Value {
        case pointer(UInt64)
        case int64(Int)
        case int32(Int32)
        case float(Float)
        case double(Double)
        case uint64(UInt64)
        case bytes([UInt8])
    }

    var values: [Value] = []

    init(_ values: [Value]) { self.values = values }

    /// Calls body with the `void**` parameter array (valid only inside body).
    func withParameters<R>(_ body: (UnsafeMutablePointer<UnsafeMutableRawPointer?>) -> R) -> R {
        let sizes = values.map { v -> Int in
            if case .bytes(let b) = v { return (b.count + 7) & ~7 }
            return 8
        }
        let total = max(8, sizes.reduce(0, +))
        let storage = UnsafeMutableRawPointer.allocate(byteCount: total, alignment: 16)
        defer { storage.deallocate() }
        storage.initializeMemory(as: UInt8.self, repeating: 0, count: total)
        let slots = UnsafeMutablePointer<UnsafeMutableRawPointer?>.allocate(capacity: max(1, values.count))
        defer { slots.deallocate() }
        var offset = 0
        for (i, v) in values.enumerated() {
            let p = storage + offset
            switch v {
            case .pointer(let x), .uint64(let x): p.storeBytes(of: x, as: UInt64.self)
            case .int64(let x): p.storeBytes(of: Int64(x), as: Int64.self)
            case .int32(let x): p.storeBytes(of: x, as: Int32.self)
            case .float(let x): p.storeBytes(of: x, as: Float.self)
            case .double(let x): p.storeBytes(of: x, as: Double.self)
            case .bytes(let b): b.withUnsafeBytes { p.copyMemory(from: $0.baseAddress!, byteCount: b.count) }
            }
            slots[i] = p
            offset += sizes[i]
        }
        return body(slots)
    }
}

/// Builds a C struct's bytes field by field with natural alignment (8-byte fields: pointers,
/// long long; 4-byte: int, float), padded to 8 bytes at the end.
struct StructBuilder {
    private(set) var bytes: [UInt8] = []

    private mutating func align(_ n: Int) { while bytes.count % n != 0 { bytes.append(0) } }

    mutating func pointer(_ p: UInt64) { align(8); withUnsafeBytes(of: p) { bytes += $0 } }
    mutating func int64(_ v: Int) { align(8); withUnsafeBytes(of: Int64(v)) { bytes += $0 } }
    mutating func int32(_ v: Int) { align(4); withUnsafeBytes(of: Int32(v)) { bytes += $0 } }
    mutating func float(_ v: Float) { align(4); withUnsafeBytes(of: v) { bytes += $0 } }

    var finished: [UInt8] {
        var b = self
        b.align(8)
        return b.bytes
    }
}
