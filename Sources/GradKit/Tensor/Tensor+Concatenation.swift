// GradKit — concatenation and stacking along an axis. SPDX-License-Identifier: MIT

extension Tensor {
    /// The tensors joined along `axis` (negative counts from the end): every
    /// other dimension must agree. Differentiable in every input.
    /// - Precondition: at least one tensor; equal ranks and equal sizes off `axis`.
    public init(concatenating tensors: [Tensor], alongAxis axis: Int = 0) {
        precondition(!tensors.isEmpty, "Tensor(concatenating:): needs at least one tensor")
        let first = tensors[0]
        let axis = Shape.normalizeAxis(axis, rank: first.rank, op: "Tensor(concatenating:alongAxis:)")
        for t in tensors {
            var a = t.shape, b = first.shape
            precondition(
                a.count == b.count,
                "Tensor(concatenating:alongAxis:): shapes \(first.shape) and \(t.shape) differ in rank")
            a[axis] = 0
            b[axis] = 0
            precondition(
                a == b, "Tensor(concatenating:alongAxis:): shapes \(first.shape) and \(t.shape) differ off axis \(axis)")
        }
        let outer = first.shape[..<axis].reduce(1, *)
        let inner = first.shape[(axis + 1)...].reduce(1, *)
        let extents = tensors.map { $0.shape[axis] }
        var shape = first.shape
        shape[axis] = extents.reduce(0, +)
        let y = Tensor(uninitializedShape: shape)
        let rowLength = shape[axis] * inner
        var offset = 0
        for (t, extent) in zip(tensors, extents) {
            let block = extent * inner
            withExtendedLifetime(t) {
                for o in 0..<outer {
                    (y.mutablePointer + o * rowLength + offset).update(from: t.pointer + o * block, count: block)
                }
            }
            offset += block
        }
        // Up to three inputs per record: longer lists are joined in chunks.
        if tensors.count > 3 {
            if tensors.allSatisfy({ $0.node == Tensor.untracked }) {
                self = y
                return
            }
            self.init(concatenatingInChunks: tensors, axis: axis)
            return
        }
        let a = tensors[0], b = tensors.count > 1 ? tensors[1] : nil, c = tensors.count > 2 ? tensors[2] : nil
        let recorded: Tensor
        switch tensors.count {
        case 1: recorded = Tensor.record(y, a, pullback: concatenationPullback) { $0.indices = [axis] + extents }
        case 2: recorded = Tensor.record(y, a, b!, pullback: concatenationPullback) { $0.indices = [axis] + extents }
        default: recorded = Tensor.record(y, a, b!, c!, pullback: concatenationPullback) { $0.indices = [axis] + extents }
        }
        self = recorded
    }

    /// Joins many recorded tensors as a tree of concatenations of at most three.
    private init(concatenatingInChunks tensors: [Tensor], axis: Int) {
        var level = tensors
        while level.count > 1 {
            level = stride(from: 0, to: level.count, by: 3).map { start in
                let chunk = Array(level[start..<Swift.min(start + 3, level.count)])
                return chunk.count == 1 ? chunk[0] : Tensor(concatenating: chunk, alongAxis: axis)
            }
        }
        self = level[0]
    }

    /// The tensors stacked along a new axis at `axis` (`[a, b]` of shape `[3]`
    /// stacked along 1 gives `[3, 2]`). Differentiable in every input.
    /// - Precondition: at least one tensor; all of the same shape.
    public init(stacking tensors: [Tensor], alongAxis axis: Int = 0) {
        precondition(!tensors.isEmpty, "Tensor(stacking:): needs at least one tensor")
        let shape = tensors[0].shape
        for t in tensors where t.shape != shape {
            preconditionFailure("Tensor(stacking:alongAxis:): shapes \(shape) and \(t.shape) differ")
        }
        let position = axis < 0 ? axis + shape.count + 1 : axis
        precondition(
            position >= 0 && position <= shape.count,
            "Tensor(stacking:alongAxis:): axis \(axis) is out of range for rank \(shape.count + 1)")
        self.init(concatenating: tensors.map { $0.expandingShape(at: position) }, alongAxis: position)
    }

    /// The entries `range` along `axis` (a copy). Differentiable.
    /// - Precondition: `range` lies within the axis.
    public func slicing(_ range: Range<Int>, alongAxis axis: Int) -> Tensor {
        let axis = Shape.normalizeAxis(axis, rank: rank, op: "slicing(_:alongAxis:)")
        precondition(
            range.lowerBound >= 0 && range.upperBound <= shape[axis],
            "slicing(_:alongAxis:): range \(range) is out of bounds for axis \(axis) of shape \(shape)")
        let y = sliced(range, axis: axis)
        return Tensor.record(y, self, pullback: slicePullback) { record in
            record.shape0 = shape
            record.indices = [axis, range.lowerBound, range.upperBound]
        }
    }

    /// Untracked slice along an axis.
    func sliced(_ range: Range<Int>, axis: Int) -> Tensor {
        let outer = shape[..<axis].reduce(1, *), inner = shape[(axis + 1)...].reduce(1, *)
        var target = shape
        target[axis] = range.count
        let y = Tensor(uninitializedShape: target)
        let block = range.count * inner, row = shape[axis] * inner
        withExtendedLifetime(self) {
            for o in 0..<outer {
                (y.mutablePointer + o * block).update(from: pointer + o * row + range.lowerBound * inner, count: block)
            }
        }
        return y
    }
}

/// Each input receives its slice of the output gradient.
private let concatenationPullback: Pullback = { record, gradient, sink in
    let axis = record.indices[0]
    var start = 0
    for (slot, extent) in record.indices.dropFirst().enumerated() {
        if sink.isNeeded(slot) { sink.accumulate(slot, gradient.sliced(start..<(start + extent), axis: axis)) }
        start += extent
    }
}

/// The slice's gradient, placed into zeros of the input's shape.
private let slicePullback: Pullback = { record, gradient, sink in
    let shape = record.shape0, axis = record.indices[0], lower = record.indices[1], upper = record.indices[2]
    let input = Tensor(zeros: shape)
    let outer = shape[..<axis].reduce(1, *), inner = shape[(axis + 1)...].reduce(1, *)
    let block = (upper - lower) * inner, row = shape[axis] * inner
    withExtendedLifetime(gradient) {
        for o in 0..<outer {
            (input.mutablePointer + o * row + lower * inner).update(from: gradient.pointer + o * block, count: block)
        }
    }
    sink.accumulate(0, input)
}
