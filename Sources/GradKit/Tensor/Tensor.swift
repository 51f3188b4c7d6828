// GradKit — the tensor type. SPDX-License-Identifier: MIT

/// An n-dimensional array of `Float`, row-major, with value semantics.
///
/// Copies share memory until one of them is mutated (copy-on-write). Buffers
/// are 64-byte aligned and recycled per thread, so a training loop allocates
/// nothing new after its first step.
///
/// Operations on tensors that involve a ``Parameter`` — directly through
/// ``Parameter/value`` or through a tensor computed from one — are recorded on
/// a tape, and ``backward(seed:)`` propagates gradients back to the parameters.
/// Everything else runs untracked at no bookkeeping cost.
///
/// ```swift
/// let x = Tensor(shape: [2, 3], scalars: [1, 2, 3, 4, 5, 6])
/// let y = (x * 2 + 1).sum(alongAxes: 1)   // shape [2, 1]
/// ```
public struct Tensor {
    var storage: TensorStorage
    /// The size of each dimension, outermost first. `[]` is a scalar.
    public private(set) var shape: [Int]
    /// The tape session (for a recorded result) or the Parameter (for a
    /// parameter's value) this tensor's gradient flows to; nil when untracked.
    var origin: AnyObject?
    /// The node on the tape (>= 0), `Tensor.leafNode` for a parameter's value,
    /// or `Tensor.untracked`.
    var node: Int32

    static let untracked: Int32 = -1
    static let leafNode: Int32 = -2

    @inline(__always)
    init(storage: TensorStorage, shape: [Int]) {
        self.storage = storage
        self.shape = shape
        self.origin = nil
        self.node = Tensor.untracked
    }

    /// An uninitialized tensor of `shape`, for kernels to fill.
    @inline(__always)
    init(uninitializedShape shape: [Int]) {
        self.init(storage: TensorStorage(count: Shape.count(shape)), shape: shape)
    }

    /// A tensor with the given shape and row-major values.
    /// - Precondition: `scalars.count` is the product of `shape`; no dimension is negative.
    public init(shape: [Int], scalars: [Float]) {
        Shape.validate(shape, op: "Tensor(shape:scalars:)")
        let count = Shape.count(shape)
        precondition(
            scalars.count == count,
            "Tensor(shape:scalars:): shape \(shape) needs \(count) scalars, got \(scalars.count)")
        self.init(uninitializedShape: shape)
        scalars.withUnsafeBufferPointer { source in
            if let start = source.baseAddress { storage.base.update(from: start, count: count) }
        }
    }

    /// A rank-0 tensor holding `scalar`.
    public init(_ scalar: Float) {
        self.init(uninitializedShape: [])
        storage.base[0] = scalar
    }

    /// A rank-1 tensor holding `scalars`.
    public init(_ scalars: [Float]) {
        self.init(shape: [scalars.count], scalars: scalars)
    }

    /// A rank-2 tensor from rows of equal length.
    /// - Precondition: every row has the same length.
    public init(_ rows: [[Float]]) {
        let columns = rows.first?.count ?? 0
        for (index, row) in rows.enumerated() {
            precondition(
                row.count == columns,
                "Tensor(rows): row \(index) has \(row.count) scalars, row 0 has \(columns)")
        }
        self.init(shape: [rows.count, columns], scalars: rows.flatMap { $0 })
    }

    /// A tensor of `shape` with every element equal to `value`.
    public init(shape: [Int], repeating value: Float) {
        Shape.validate(shape, op: "Tensor(shape:repeating:)")
        self.init(uninitializedShape: shape)
        Kernels.fill(count: scalarCount, output: storage.base, value: value)
    }

    /// A tensor of zeros.
    public init(zeros shape: [Int]) { self.init(shape: shape, repeating: 0) }

    /// A tensor of ones.
    public init(ones shape: [Int]) { self.init(shape: shape, repeating: 1) }

    /// The number of dimensions.
    public var rank: Int { shape.count }

    /// The number of elements: the product of ``shape`` (1 for a scalar).
    public var scalarCount: Int { storage.count }

    /// The elements in row-major order.
    public var scalars: [Float] {
        withExtendedLifetime(storage) {
            Array(UnsafeBufferPointer(start: storage.base, count: storage.count))
        }
    }

    /// The single element of a one-element tensor.
    /// - Precondition: ``scalarCount`` is 1.
    public var scalar: Float {
        precondition(scalarCount == 1, "Tensor.scalar: needs exactly one element, shape is \(shape)")
        return withExtendedLifetime(storage) { storage.base[0] }
    }

    /// The element at a full index, e.g. `t[1, 2]`.
    /// - Precondition: one index per dimension, each in range.
    public subscript(_ indices: Int...) -> Float {
        precondition(indices.count == rank, "Tensor[\(indices)]: shape \(shape) needs \(rank) indices")
        var offset = 0
        for (axis, index) in indices.enumerated() {
            precondition(index >= 0 && index < shape[axis], "Tensor[\(indices)]: index out of range for shape \(shape)")
            offset = offset * shape[axis] + index
        }
        return withExtendedLifetime(storage) { storage.base[offset] }
    }

    /// Calls `body` with the elements in row-major order.
    public func withUnsafeBufferPointer<Result>(
        _ body: (UnsafeBufferPointer<Float>) throws -> Result
    ) rethrows -> Result {
        try withExtendedLifetime(storage) {
            try body(UnsafeBufferPointer(start: storage.base, count: storage.count))
        }
    }

    /// Calls `body` with the elements for writing; copies first if the memory is
    /// shared with another tensor. The result is no longer recorded on the tape.
    public mutating func withUnsafeMutableBufferPointer<Result>(
        _ body: (inout UnsafeMutableBufferPointer<Float>) throws -> Result
    ) rethrows -> Result {
        makeUniquelyOwned()
        origin = nil
        node = Tensor.untracked
        var buffer = UnsafeMutableBufferPointer(start: storage.base, count: storage.count)
        return try withExtendedLifetime(storage) { try body(&buffer) }
    }

    /// Gives this tensor its own storage if the current one is shared or a view.
    @inline(__always)
    mutating func makeUniquelyOwned() {
        if !isKnownUniquelyReferenced(&storage) || storage.isView { storage = storage.copy() }
    }

    // Internal pointer access for kernels. The storage must be kept alive by the
    // caller across the kernel call (a local Tensor used afterwards, or
    // withExtendedLifetime).
    @inline(__always) var pointer: ConstFloatPointer { UnsafePointer(storage.base) }
    @inline(__always) var mutablePointer: FloatPointer { storage.base }
}

extension Tensor: @unchecked Sendable {}

extension Tensor: Equatable {
    /// Same shape and elementwise equal values (so NaN != NaN, 0 == -0).
    public static func == (lhs: Tensor, rhs: Tensor) -> Bool {
        guard lhs.shape == rhs.shape else { return false }
        return lhs.withUnsafeBufferPointer { a in
            rhs.withUnsafeBufferPointer { b in
                for i in 0..<a.count where a[i] != b[i] { return false }
                return true
            }
        }
    }
}

extension Tensor: CustomStringConvertible {
    /// Nested brackets like NumPy, elided beyond 6 values per dimension.
    public var description: String {
        let values = scalars
        func render(_ axis: Int, _ offset: Int) -> String {
            if axis == shape.count { return formatScalar(values[offset]) }
            let size = shape[axis]
            let stride = shape[(axis + 1)...].reduce(1, *)
            var parts: [String] = []
            let shown = size <= 6 ? Array(0..<size) : Array(0..<3) + Array((size - 3)..<size)
            for (position, index) in shown.enumerated() {
                if size > 6 && position == 3 { parts.append("...") }
                parts.append(render(axis + 1, offset + index * stride))
            }
            return "[" + parts.joined(separator: ", ") + "]"
        }
        return "Tensor(shape: \(shape), \(render(0, 0)))"
    }

    private func formatScalar(_ value: Float) -> String {
        if value == value.rounded() && Swift.abs(value) < 1e7 { return String(Int(value)) }
        return "\(value)"
    }
}
