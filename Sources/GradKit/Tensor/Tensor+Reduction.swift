// GradKit — sums, means, maxima and minima along axes. SPDX-License-Identifier: MIT
//
// Naming follows Swift for TensorFlow: `alongAxes:` keeps the reduced axes with
// size 1 (so the result broadcasts against the input, like PyTorch's
// keepdim=True); `squeezingAxes:` removes them (PyTorch's default).
// Sums accumulate in double in a fixed order: the same result for any thread
// count (see ck_reduce.h).

extension Tensor {
    /// Reduces `axes` (normalized) keeping them as size 1, not recorded.
    func reducedKeepingAxes(_ op: ReductionOperation, axes: [Int], mean: Bool) -> Tensor {
        var outShape = shape
        for axis in axes { outShape[axis] = 1 }
        // Runs of kept / reduced axes, size-1 axes dropped: each reduced run is
        // the middle axis of one [outer, extent, inner] kernel call.
        var groups: [(size: Int, reduced: Bool)] = []
        for (axis, size) in shape.enumerated() where size != 1 {
            let reduced = axes.contains(axis)
            if let last = groups.last, last.reduced == reduced {
                groups[groups.count - 1].size *= size
            } else {
                groups.append((size, reduced))
            }
        }
        var current = self
        while let g = groups.lastIndex(where: { $0.reduced }) {
            let outer = groups[..<g].reduce(1) { $0 * $1.size }
            let extent = groups[g].size
            let inner = groups[(g + 1)...].reduce(1) { $0 * $1.size }
            let y = Tensor(uninitializedShape: [outer * inner])
            withExtendedLifetime(current) {
                Kernels.reduce(
                    op, outer: outer, extent: extent, inner: inner, output: y.mutablePointer, input: current.pointer,
                    scale: mean ? 1 / Double(extent) : 1)
            }
            groups.remove(at: g)
            if g > 0, g < groups.count, !groups[g - 1].reduced, !groups[g].reduced {
                groups[g - 1].size *= groups[g].size
                groups.remove(at: g)
            }
            current = y
        }
        return Tensor(storage: current.storage, shape: outShape)
    }

    private func reduction(_ op: ReductionOperation, axes: [Int], mean: Bool, name: String) -> Tensor {
        let axes = Shape.normalizeAxes(axes, rank: rank, op: name)
        let y = reducedKeepingAxes(op, axes: axes, mean: mean)
        switch op {
        case .sum:
            return Tensor.record(y, self, pullback: sumPullback) { record in
                record.shape0 = shape
                record.scalar0 = mean ? 1 / Float(axes.reduce(1) { $0 * shape[$1] }) : 1
            }
        case .max, .min:
            return Tensor.record(y, self, pullback: extremumPullback) { record in
                record.save(self, y)
                record.indices = axes
            }
        }
    }

    /// The sum of all elements, as a rank-0 tensor.
    public func sum() -> Tensor { sum(alongAxes: Array(0..<rank)).reshaped(to: []) }
    /// Sums along `axes`, keeping them with size 1. Negative axes count from the end.
    public func sum(alongAxes axes: [Int]) -> Tensor { reduction(.sum, axes: axes, mean: false, name: "sum(alongAxes:)") }
    /// Variadic form of `sum(alongAxes:)`.
    public func sum(alongAxes axes: Int...) -> Tensor { sum(alongAxes: axes) }
    /// Sums along `axes` and removes them.
    public func sum(squeezingAxes axes: Int...) -> Tensor { squeezed(sum(alongAxes: axes), axes) }

    /// The mean of all elements, as a rank-0 tensor (NaN for an empty tensor).
    public func mean() -> Tensor { mean(alongAxes: Array(0..<rank)).reshaped(to: []) }
    /// Means along `axes`, keeping them with size 1.
    public func mean(alongAxes axes: [Int]) -> Tensor {
        reduction(.sum, axes: axes, mean: true, name: "mean(alongAxes:)")
    }
    /// Variadic form of `mean(alongAxes:)`.
    public func mean(alongAxes axes: Int...) -> Tensor { mean(alongAxes: axes) }
    /// Means along `axes` and removes them.
    public func mean(squeezingAxes axes: Int...) -> Tensor { squeezed(mean(alongAxes: axes), axes) }

    /// The largest element (NaN if any is NaN), as a rank-0 tensor. The gradient
    /// is shared equally by all elements equal to the maximum.
    public func max() -> Tensor { max(alongAxes: Array(0..<rank)).reshaped(to: []) }
    /// Maxima along `axes`, keeping them with size 1.
    public func max(alongAxes axes: [Int]) -> Tensor { reduction(.max, axes: axes, mean: false, name: "max(alongAxes:)") }
    /// Variadic form of `max(alongAxes:)`.
    public func max(alongAxes axes: Int...) -> Tensor { max(alongAxes: axes) }
    /// Maxima along `axes`, removed from the shape.
    public func max(squeezingAxes axes: Int...) -> Tensor { squeezed(max(alongAxes: axes), axes) }

    /// The smallest element, as a rank-0 tensor; ties share the gradient.
    public func min() -> Tensor { min(alongAxes: Array(0..<rank)).reshaped(to: []) }
    /// Minima along `axes`, keeping them with size 1.
    public func min(alongAxes axes: [Int]) -> Tensor { reduction(.min, axes: axes, mean: false, name: "min(alongAxes:)") }
    /// Variadic form of `min(alongAxes:)`.
    public func min(alongAxes axes: Int...) -> Tensor { min(alongAxes: axes) }
    /// Minima along `axes`, removed from the shape.
    public func min(squeezingAxes axes: Int...) -> Tensor { squeezed(min(alongAxes: axes), axes) }

    private func squeezed(_ kept: Tensor, _ axes: [Int]) -> Tensor {
        let normalized = Shape.normalizeAxes(axes, rank: rank, op: "squeezingAxes")
        let target = shape.enumerated().filter { !normalized.contains($0.offset) }.map(\.element)
        return kept.reshaped(to: target)
    }

    /// The index of the largest element along `axis` for every position of the
    /// other axes, in row-major order (for a `[batch, classes]` tensor: the
    /// predicted class of each row). The first index wins ties; NaN counts as largest.
    public func argmax(alongAxis axis: Int = -1) -> [Int] {
        let axis = Shape.normalizeAxis(axis, rank: rank, op: "argmax(alongAxis:)")
        let extent = shape[axis]
        precondition(extent > 0, "argmax(alongAxis:): axis \(axis) of shape \(shape) is empty")
        let inner = shape[(axis + 1)...].reduce(1, *)
        let outer = shape[..<axis].reduce(1, *)
        return withUnsafeBufferPointer { x in
            var result = [Int](repeating: 0, count: outer * inner)
            for o in 0..<outer {
                for i in 0..<inner {
                    var best = 0
                    var value = x[o * extent * inner + i]
                    for r in 1..<Swift.max(extent, 1) {
                        let v = x[(o * extent + r) * inner + i]
                        if !value.isNaN && (v > value || v.isNaN) {
                            best = r
                            value = v
                        }
                    }
                    result[o * inner + i] = best
                }
            }
            return result
        }
    }
}

/// Sum / mean: the output gradient broadcast back over the reduced axes.
private let sumPullback: Pullback = { record, gradient, sink in
    var g = gradient.broadcasted(to: record.shape0)
    if record.scalar0 != 1 { g = g.mapped(.mulScalar, record.scalar0) }
    sink.accumulate(0, g)
}

/// Max / min: the gradient goes to the elements equal to the result, shared
/// equally among ties.
private let extremumPullback: Pullback = { record, gradient, sink in
    let x = record.saved0!, y = record.saved1!
    let mask = Tensor.combined(.equal, x, y, name: "max/min backward")
    let ties = mask.reducedKeepingAxes(.sum, axes: record.indices, mean: false)
    let share = Tensor.combined(.div, gradient, ties, name: "max/min backward")
    sink.accumulate(0, Tensor.combined(.mul, mask, share, name: "max/min backward"))
}
