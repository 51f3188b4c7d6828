// GradKit — softmax cross-entropy with integer labels. SPDX-License-Identifier: MIT

/// How a loss combines its per-example values, as PyTorch's `reduction`.
public enum Reduction: Sendable {
    /// The average (PyTorch's default).
    case mean
    /// The total.
    case sum
    /// No reduction: one value per example (per element for elementwise losses).
    case none
}

/// The softmax cross-entropy of `logits` against integer class labels, as
/// PyTorch's `cross_entropy(logits, labels)`:
///
/// ```
/// loss_r = log Σ_c exp(logits[r, c]) − logits[r, labels[r]]
/// ```
/// reduced by `reduction` (mean by default). Softmax and logarithm are fused
/// and stabilized by the row maximum; the gradient is
/// `(softmax(logits) − onehot(labels)) · g_r`.
/// - Parameters:
///   - logits: unnormalized scores, shape `[N, classes]`.
///   - labels: `N` class indices in `0..<classes`.
///   - reduction: mean (default), sum or none (one loss per row).
/// - Returns: rank 0 for mean and sum (mean: NaN when N is 0), `[N]` for none.
/// - Precondition: the shapes agree and every label is in range.
public func softmaxCrossEntropy(logits: Tensor, labels: [Int], reduction: Reduction = .mean) -> Tensor {
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
    let result: Tensor
    switch reduction {
    case .mean: result = losses.reducedKeepingAxes(.sum, axes: [0], mean: true).reshaped(to: [])
    case .sum: result = losses.reducedKeepingAxes(.sum, axes: [0], mean: false).reshaped(to: [])
    case .none: result = losses
    }
    return Tensor.record(result, logits, pullback: crossEntropyPullback) { record in
        record.save(probabilities)
        record.indices = labels
        record.integer = reduction == .mean ? 0 : (reduction == .sum ? 1 : 2)
    }
}

private let crossEntropyPullback: Pullback = { record, gradient, sink in
    let probabilities = record.saved0!
    let rows = probabilities.shape[0], classes = probabilities.shape[1]
    var dlogits = Tensor(uninitializedShape: probabilities.shape)
    // Mean and sum: one fused pass with the scalar scale. None: scale 1, then each row by its gradient.
    let scale: Float = record.integer == 2 ? 1 : gradient.scalar / (record.integer == 0 ? Float(rows) : 1)
    withExtendedLifetime(probabilities) {
        record.indices.withUnsafeBufferPointer { labels in
            if let start = labels.baseAddress, classes > 0 {
                Kernels.softmaxCrossEntropyBackward(
                    rows: rows, classes: classes, logitsGradient: dlogits.mutablePointer,
                    probabilities: probabilities.pointer, labels: start, scale: scale)
            }
        }
    }
    if record.integer == 2 {
        dlogits = Tensor.combined(.mul, dlogits, gradient.reshaped(to: [rows, 1]), name: "softmaxCrossEntropy backward")
    }
    sink.accumulate(0, dlogits)
}
