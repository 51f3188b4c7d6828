// GradKit — softmax and log-softmax. SPDX-License-Identifier: MIT

extension Tensor {
    private func softmaxLayout(_ axis: Int, op: String) -> (outer: Int, extent: Int, inner: Int) {
        let axis = Shape.normalizeAxis(axis, rank: rank, op: op)
        return (shape[..<axis].reduce(1, *), shape[axis], shape[(axis + 1)...].reduce(1, *))
    }

    private func softmaxFamily(logarithmic: Bool, axis: Int) -> Tensor {
        let name = logarithmic ? "logSoftmax(alongAxis:)" : "softmax(alongAxis:)"
        precondition(rank >= 1, "\(name): needs rank >= 1, shape is \(shape)")
        let (outer, extent, inner) = softmaxLayout(axis, op: name)
        let y = Tensor(uninitializedShape: shape)
        withExtendedLifetime(self) {
            Kernels.softmax(
                logarithmic: logarithmic, outer: outer, extent: extent, inner: inner, output: y.mutablePointer,
                input: pointer)
        }
        return Tensor.record(y, self, pullback: softmaxPullback) { record in
            record.save(y)
            record.integer = logarithmic ? 1 : 0
            record.indices = [outer, extent, inner]
        }
    }

    /// `exp(x) / sum(exp(x))` along `axis` (default: the last), computed with the
    /// maximum subtracted first so large logits do not overflow.
    public func softmax(alongAxis axis: Int = -1) -> Tensor { softmaxFamily(logarithmic: false, axis: axis) }

    /// `x - log(sum(exp(x)))` along `axis` (default: the last), computed stably.
    public func logSoftmax(alongAxis axis: Int = -1) -> Tensor { softmaxFamily(logarithmic: true, axis: axis) }
}

private let softmaxPullback: Pullback = { record, gradient, sink in
    let y = record.saved0!
    let dx = Tensor(uninitializedShape: gradient.shape)
    withExtendedLifetime((y, gradient)) {
        Kernels.softmaxBackward(
            logarithmic: record.integer == 1, outer: record.indices[0], extent: record.indices[1],
            inner: record.indices[2], inputGradient: dx.mutablePointer, outputGradient: gradient.pointer,
            output: y.pointer)
    }
    sink.accumulate(0, dx)
}
