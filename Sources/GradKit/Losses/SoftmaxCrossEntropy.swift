// GradKit — softmax cross-entropy with integer labels. SPDX-License-Identifier: MIT

/// The mean softmax cross-entropy of `logits` against integer class labels, as
/// PyTorch's `cross_entropy(logits, labels)` with the default mean reduction:
///
/// ```
/// loss = (1/N) Σ_r [ log Σ_c exp(logits[r, c]) − logits[r, labels[r]] ]
/// ```
///
/// Softmax and logarithm are fused and stabilized by the row maximum; the
/// gradient is `(softmax(logits) − onehot(labels)) / N`.
/// - Parameters:
///   - logits: unnormalized scores, shape `[N, classes]`.
///   - labels: `N` class indices in `0..<classes`.
/// - Returns: a rank-0 tensor (NaN when N is 0).
/// - Precondition: the shapes agree and every label is in range.
public func softmaxCrossEntropy(logits: Tensor, labels: [Int]) -> Tensor {
    let op = "softmaxCrossEntropy(logits:labels:)"
    precondition(logits.rank == 2, "\(op): logits must have shape [batch, classes], got \(logits.shape)")
    let rows = logits.shape[0], classes = logits.shape[1]
    precondition(
        labels.count == rows, "\(op): \(labels.count) labels for logits of shape \(logits.shape) (\(rows) rows)")
    for (row, label) in labels.enumerated() where label < 0 || label >= classes {
        preconditionFailure("\(op): label \(label) at row \(row) is out of range 0..<\(classes)")
    }
    let losses = Tensor(uninitializedShape: [rows])
    let probabilities = Tensor(uninitializedShape: logits.shape)
    withExtendedLifetime(logits) {
        labels.withUnsafeBufferPointer { labelBuffer in
            if let start = labelBuffer.baseAddress, classes > 0 {
                Kernels.softmaxCrossEntropy(
                    rows: rows, classes: classes, losses: losses.mutablePointer,
                    probabilities: probabilities.mutablePointer, logits: logits.pointer, labels: start)
            }
        }
    }
    let loss = losses.reducedKeepingAxes(.sum, axes: [0], mean: true).reshaped(to: [])
    return Tensor.record(loss, logits, pullback: crossEntropyPullback) { record in
        record.save(probabilities)
        record.indices = labels
    }
}

private let crossEntropyPullback: Pullback = { record, gradient, sink in
    let probabilities = record.saved0!
    let rows = probabilities.shape[0], classes = probabilities.shape[1]
    let dlogits = Tensor(uninitializedShape: probabilities.shape)
    let scale = gradient.scalar / Float(rows)
    withExtendedLifetime(probabilities) {
        record.indices.withUnsafeBufferPointer { labels in
            if let start = labels.baseAddress, classes > 0 {
                Kernels.softmaxCrossEntropyBackward(
                    rows: rows, classes: classes, logitsGradient: dlogits.mutablePointer,
                    probabilities: probabilities.pointer, labels: start, scale: scale)
            }
        }
    }
    sink.accumulate(0, dlogits)
}
