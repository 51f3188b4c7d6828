// GradKit — reshaping, broadcasting, transposing, row selection. SPDX-License-Identifier: MIT

extension Tensor {
    /// The same elements with a new shape (no copy). One dimension may be -1
    /// and is then inferred.
    /// - Precondition: the new shape has the same number of elements.
    public func reshaped(to newShape: [Int]) -> Tensor {
        var target = newShape
        if let inferred = newShape.firstIndex(of: -1) {
            let known = newShape.enumerated().filter { $0.offset != inferred }.reduce(1) { $0 * $1.element }
            precondition(
                newShape.filter({ $0 == -1 }).count == 1 && known > 0 && scalarCount % known == 0,
                "reshaped(to:): cannot reshape \(shape) to \(newShape)")
            target[inferred] = scalarCount / known
        }
        Shape.validate(target, op: "reshaped(to:)")
        precondition(
            Shape.count(target) == scalarCount,
            "reshaped(to:): cannot reshape \(shape) (\(scalarCount) elements) to \(newShape)")
        if target == shape { return self }
        let y = Tensor(storage: storage, shape: target)
        return Tensor.record(y, self, pullback: reshapePullback) { $0.shape0 = shape }
    }

    /// Inserts a dimension of size 1 at `axis` (which may equal ``rank``).
    public func expandingShape(at axis: Int) -> Tensor {
        let a = axis < 0 ? axis + rank + 1 : axis
        precondition(a >= 0 && a <= rank, "expandingShape(at:): axis \(axis) is out of range for rank \(rank)")
        var target = shape
        target.insert(1, at: a)
        return reshaped(to: target)
    }

    /// Removes the dimensions of size 1 at `axes` (all of them when `axes` is empty).
    /// - Precondition: each given axis has size 1.
    public func squeezingShape(at axes: Int...) -> Tensor {
        let normalized = Shape.normalizeAxes(axes, rank: rank, op: "squeezingShape(at:)")
        for axis in normalized {
            precondition(shape[axis] == 1, "squeezingShape(at:): axis \(axis) of shape \(shape) is not 1")
        }
        let drop = axes.isEmpty ? shape.indices.filter { shape[$0] == 1 } : normalized
        return reshaped(to: shape.enumerated().filter { !drop.contains($0.offset) }.map(\.element))
    }

    /// The tensor repeated along broadcast axes to `target` (NumPy rules).
    /// - Precondition: this shape broadcasts to `target`.
    public func broadcasted(to target: [Int]) -> Tensor {
        if target == shape { return self }
        let result = Shape.broadcast(shape, target, op: "broadcasted(to:)")
        precondition(result == target, "broadcasted(to:): shape \(shape) does not broadcast to \(target)")
        let y = Tensor(uninitializedShape: target)
        let layout = Shape.collapse(target, [Shape.broadcastStrides(shape, to: target)])
        withExtendedLifetime(self) {
            Kernels.stridedCopy(
                shape: layout.shape, strides: layout.strides[0], output: y.mutablePointer, input: pointer)
        }
        return Tensor.record(y, self, pullback: broadcastPullback) { $0.shape0 = shape }
    }

    /// Swaps the last two axes (the matrix transpose; a batch of them for
    /// rank > 2). Rank 0 and 1 are returned unchanged.
    public func transposed() -> Tensor {
        if rank < 2 { return self }
        let rows = shape[rank - 2], columns = shape[rank - 1]
        var target = shape
        target.swapAt(rank - 2, rank - 1)
        let y = Tensor(uninitializedShape: target)
        withExtendedLifetime(self) {
            Kernels.transpose(
                batch: scalarCount == 0 ? 0 : scalarCount / (rows * columns), rows: rows, columns: columns,
                output: y.mutablePointer, input: pointer)
        }
        return Tensor.record(y, self, pullback: transposePullback)
    }

    /// Reorders the axes: axis `i` of the result is axis `permutation[i]` of this tensor.
    /// - Precondition: `permutation` is a permutation of `0..<rank`.
    public func transposed(permutation: [Int]) -> Tensor {
        precondition(
            permutation.sorted() == Array(0..<rank),
            "transposed(permutation:): \(permutation) is not a permutation of the axes of shape \(shape)")
        if permutation == Array(0..<rank) { return self }
        let strides = Shape.strides(shape)
        let target = permutation.map { shape[$0] }
        let y = Tensor(uninitializedShape: target)
        let layout = Shape.collapse(target, [permutation.map { strides[$0] }])
        withExtendedLifetime(self) {
            Kernels.stridedCopy(
                shape: layout.shape, strides: layout.strides[0], output: y.mutablePointer, input: pointer)
        }
        return Tensor.record(y, self, pullback: permutePullback) { $0.indices = permutation }
    }

    /// The rows (entries along axis 0) in `range`, copied: a batch slice.
    /// - Precondition: `range` lies within `0..<shape[0]`.
    public func rows(_ range: Range<Int>) -> Tensor {
        precondition(rank >= 1, "rows(_:): needs rank >= 1, shape is \(shape)")
        precondition(
            range.lowerBound >= 0 && range.upperBound <= shape[0],
            "rows(_:): range \(range) is out of bounds for \(shape[0]) rows")
        let rowSize = scalarCount / Swift.max(shape[0], 1)
        var target = shape
        target[0] = range.count
        let y = Tensor(uninitializedShape: target)
        withExtendedLifetime(self) {
            y.mutablePointer.update(from: pointer + range.lowerBound * rowSize, count: range.count * rowSize)
        }
        return Tensor.record(y, self, pullback: rowsPullback) { record in
            record.shape0 = shape
            record.integer = range.lowerBound
        }
    }

    /// The rows (entries along axis 0) at `indices`, in that order; indices may
    /// repeat. For mini-batches drawn from a shuffled data set.
    /// - Precondition: every index lies in `0..<shape[0]`.
    public func rows(at indices: [Int]) -> Tensor {
        precondition(rank >= 1, "rows(at:): needs rank >= 1, shape is \(shape)")
        for index in indices where index < 0 || index >= shape[0] {
            preconditionFailure("rows(at:): index \(index) is out of bounds for \(shape[0]) rows")
        }
        let rowSize = shape[0] == 0 ? 0 : scalarCount / shape[0]
        var target = shape
        target[0] = indices.count
        let y = Tensor(uninitializedShape: target)
        withExtendedLifetime(self) {
            indices.withUnsafeBufferPointer { rows in
                if let start = rows.baseAddress {
                    Kernels.gatherRows(
                        count: indices.count, columns: rowSize, output: y.mutablePointer, input: pointer, rows: start)
                }
            }
        }
        return Tensor.record(y, self, pullback: gatherPullback) { record in
            record.shape0 = shape
            record.indices = indices
        }
    }
}

private let reshapePullback: Pullback = { record, gradient, sink in
    sink.accumulate(0, Tensor(storage: gradient.storage, shape: record.shape0))
}

private let broadcastPullback: Pullback = { record, gradient, sink in
    sink.accumulate(0, gradient.summed(toShape: record.shape0))
}

private let transposePullback: Pullback = { _, gradient, sink in
    sink.accumulate(0, gradient.transposed())
}

private let permutePullback: Pullback = { record, gradient, sink in
    var inverse = [Int](repeating: 0, count: record.indices.count)
    for (i, axis) in record.indices.enumerated() { inverse[axis] = i }
    sink.accumulate(0, gradient.transposed(permutation: inverse))
}

private let rowsPullback: Pullback = { record, gradient, sink in
    let input = Tensor(zeros: record.shape0)
    let rowSize = record.shape0[0] == 0 ? 0 : input.scalarCount / record.shape0[0]
    withExtendedLifetime(gradient) {
        (input.mutablePointer + record.integer * rowSize).update(from: gradient.pointer, count: gradient.scalarCount)
    }
    sink.accumulate(0, input)
}

private let gatherPullback: Pullback = { record, gradient, sink in
    let input = Tensor(zeros: record.shape0)
    let rowSize = record.shape0[0] == 0 ? 0 : input.scalarCount / record.shape0[0]
    withExtendedLifetime(gradient) {
        record.indices.withUnsafeBufferPointer { rows in
            if let start = rows.baseAddress {
                Kernels.scatterAddRows(
                    count: rows.count, columns: rowSize, output: input.mutablePointer, input: gradient.pointer,
                    rows: start)
            }
        }
    }
    sink.accumulate(0, input)
}
