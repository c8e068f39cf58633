/// A Float32 (or Int32) array with a shape, row-major, on one device.
///
/// A tensor is a view: `storage` + element `offset` + `shape`, and, for 2-D column slices,
/// a `rowStride` larger than the number of columns (e.g. the z half of in_proj's output
/// without a copy). Every other tensor is contiguous. Views cost nothing; `contiguous()`
/// copies when a kernel needs dense rows.
public struct Tensor: @unchecked Sendable {
    public let storage: Storage
    public let offset: Int
    public let shape: [Int]
    public let dtype: DType
    /// Elements between consecutive rows of a 2-D view; equals `shape[1]` when dense.
    public let rowStride: Int

    public init(storage: Storage, offset: Int = 0, shape: [Int], dtype: DType = .float32, rowStride: Int? = nil) {
        self.storage = storage
        self.offset = offset
        self.shape = shape
        self.dtype = dtype
        self.rowStride = rowStride ?? (shape.last ?? 1)
        precondition(rowStride == nil || shape.count == 2, "strided views are 2-D")
    }

    public var count: Int { shape.reduce(1, *) }
    public var rank: Int { shape.count }
    public var backend: any Backend { storage.backend }
    public var device: Device { storage.backend.device }
    public var isContiguous: Bool { shape.count < 2 || rowStride == shape[shape.count - 1] }

    /// Rows and columns when viewed as a matrix (all leading dimensions are rows).
    public var rows: Int { shape.count <= 1 ? 1 : shape.dropLast().reduce(1, *) }
    public var columns: Int { shape.last ?? 1 }

    /// Host pointer to the first element. CPU tensors only.
    public var pointer: UnsafeMutablePointer<Float> {
        precondition(device == .cpu, "host access to a \(device) tensor")
        return storage.address.assumingMemoryBound(to: Float.self) + offset
    }

    public var int32Pointer: UnsafeMutablePointer<Int32> {
        precondition(device == .cpu && dtype == .int32)
        return storage.address.assumingMemoryBound(to: Int32.self) + offset
    }

    /// The same elements with another shape (contiguous tensors only).
    public func reshaped(_ newShape: [Int]) -> Tensor {
        var newShape = newShape
        if let i = newShape.firstIndex(of: -1) {
            newShape[i] = count / newShape.enumerated().filter { $0.offset != i }.map(\.element).reduce(1, *)
        }
        precondition(newShape.reduce(1, *) == count, "cannot reshape \(shape) to \(newShape)")
        precondition(isContiguous, "reshape of a strided view; call contiguous() first")
        return Tensor(storage: storage, offset: offset, shape: newShape, dtype: dtype)
    }

    /// Columns `range` of the tensor seen as a matrix, as a strided view (no copy).
    public func columns(_ range: Range<Int>) -> Tensor {
        precondition(range.lowerBound >= 0 && range.upperBound <= columns)
        return Tensor(storage: storage, offset: offset + range.lowerBound, shape: [rows, range.count], dtype: dtype,
                      rowStride: rowStride)
    }

    /// Rows `range` (first dimension) of a contiguous tensor, as a view.
    public func slice(rows range: Range<Int>) -> Tensor {
        precondition(isContiguous && !shape.isEmpty && range.upperBound <= shape[0])
        let inner = shape.dropFirst().reduce(1, *)
        return Tensor(storage: storage, offset: offset + range.lowerBound * inner, shape: [range.count] + shape.dropFirst(), dtype: dtype)
    }

    /// A dense copy if this is a strided view, else self.
    public func contiguous() -> Tensor {
        if isContiguous { return self }
        let out = backend.empty(shape, dtype: dtype)
        backend.copy2D(from: self, to: out, accumulate: false)
        return out
    }

    /// Copies the elements to the host.
    public func floats() -> [Float] {
        precondition(dtype == .float32)
        let dense = contiguous()
        var out = [Float](repeating: 0, count: count)
        out.withUnsafeMutableBytes { backend.download(dense, into: $0) }
        return out
    }

    public func int32s() -> [Int32] {
        precondition(dtype == .int32)
        var out = [Int32](repeating: 0, count: count)
        out.withUnsafeMutableBytes { backend.download(self, into: $0) }
        return out
    }

    /// Overwrites the elements from the host.
    public func copy(from values: [Float]) {
        precondition(values.count == count && isContiguous && dtype == .float32)
        values.withUnsafeBytes { backend.upload($0, into: self) }
    }

    public func copy(from values: [Int32]) {
        precondition(values.count == count && dtype == .int32)
        values.withUnsafeBytes { backend.upload($0, into: self) }
    }
}
