// GradKit — regression and classification losses. SPDX-License-Identifier: MIT

private func reduce(_ values: Tensor, _ reduction: Reduction) -> Tensor {
    switch reduction {
    case .mean: values.mean()
    case .sum: values.sum()
    case .none: values
    }
}

private func checkSameShape(_ a: Tensor, _ b: Tensor, _ op: String, _ names: (String, String)) {
    precondition(a.shape == b.shape, "\(op): \(names.0) \(a.shape) and \(names.1) \(b.shape) differ in shape")
}

/// The mean squared error, PyTorch's `mse_loss`: `(predicted − expected)²`,
/// reduced by `reduction`.
/// - Precondition: equal shapes.
public func meanSquaredError(predicted: Tensor, expected: Tensor, reduction: Reduction = .mean) -> Tensor {
    checkSameShape(predicted, expected, "meanSquaredError(predicted:expected:)", ("predicted", "expected"))
    return reduce((predicted - expected).squared(), reduction)
}

/// The Huber loss (Huber, 1964), PyTorch's `huber_loss`: with d = predicted − expected,
/// ```
/// |d| <= delta:  d² / 2
/// otherwise:     delta · (|d| − delta / 2)
/// ```
/// quadratic near zero, linear (so bounded gradients) beyond `delta`.
/// - Precondition: equal shapes, `delta > 0`.
public func huber(predicted: Tensor, expected: Tensor, delta: Float = 1, reduction: Reduction = .mean) -> Tensor {
    checkSameShape(predicted, expected, "huber(predicted:expected:)", ("predicted", "expected"))
    precondition(delta > 0, "huber(predicted:expected:delta:): delta must be > 0, got \(delta)")
    let d = predicted - expected
    let c = d.clamped(min: -delta, max: delta)
    // c²/2 + delta (|d| − |c|): inside, c = d; outside, |c| = delta.
    return reduce(0.5 * c.squared() + delta * (d.abs() - c.abs()), reduction)
}

/// Binary cross-entropy on logits, PyTorch's `binary_cross_entropy_with_logits`,
/// computed stably:
/// ```
/// loss = max(x, 0) − x·y + log(1 + e^(−|x|))          (= −[y log σ(x) + (1−y) log(1−σ(x))])
/// ```
/// with gradient `σ(x) − y` for the logits (and `−x` for the labels).
/// - Parameters:
///   - logits: any shape.
///   - labels: targets in [0, 1], same shape.
///   - reduction: mean (default), sum or none (one loss per element).
/// - Precondition: equal shapes.
public func binaryCrossEntropy(logits: Tensor, labels: Tensor, reduction: Reduction = .mean) -> Tensor {
    checkSameShape(logits, labels, "binaryCrossEntropy(logits:labels:)", ("logits", "labels"))
    let values = withoutGradients {
        logits.relu() - logits * labels + (-logits.abs()).softplus()
    }
    let recorded = Tensor.record(values, logits, labels, pullback: binaryCrossEntropyPullback) { $0.save(logits, labels) }
    return reduce(recorded, reduction)
}

private let binaryCrossEntropyPullback: Pullback = { record, gradient, sink in
    let x = record.saved0!, y = record.saved1!
    if sink.isNeeded(0) {
        sink.accumulate(0, Tensor.combined(.mul, gradient, Tensor.combined(.sub, x.mapped(.sigmoid), y, name: "bce"), name: "bce"))
    }
    if sink.isNeeded(1) {
        sink.accumulate(1, Tensor.combined(.mul, gradient, x.mapped(.negate), name: "bce"))
    }
}

/// Binary cross-entropy on probabilities, PyTorch's `binary_cross_entropy`:
/// `−[y log p + (1−y) log(1−p)]`, each logarithm clamped at −100 as PyTorch
/// does. Prefer ``binaryCrossEntropy(logits:labels:reduction:)``, which is stable.
/// - Precondition: equal shapes.
public func binaryCrossEntropy(probabilities: Tensor, labels: Tensor, reduction: Reduction = .mean) -> Tensor {
    checkSameShape(probabilities, labels, "binaryCrossEntropy(probabilities:labels:)", ("probabilities", "labels"))
    let logP = probabilities.log().clamped(min: -100)
    let log1mP = (1 - probabilities).log().clamped(min: -100)
    return reduce(-(labels * logP + (1 - labels) * log1mP), reduction)
}

/// The negative log-likelihood of integer labels, PyTorch's `nll_loss`:
/// `loss_r = −logProbabilities[r, labels[r]]`, reduced by `reduction`.
/// With ``Tensor/logSoftmax(alongAxis:)`` it equals ``softmaxCrossEntropy(logits:labels:reduction:)``.
/// - Precondition: `logProbabilities` is `[N, classes]`, N labels in range.
public func negativeLogLikelihood(logProbabilities: Tensor, labels: [Int], reduction: Reduction = .mean) -> Tensor {
    let op = "negativeLogLikelihood(logProbabilities:labels:)"
    precondition(logProbabilities.rank == 2, "\(op): expected [batch, classes], got \(logProbabilities.shape)")
    let rows = logProbabilities.shape[0], classes = logProbabilities.shape[1]
    precondition(labels.count == rows, "\(op): \(labels.count) labels for \(rows) rows of \(logProbabilities.shape)")
    for (row, label) in labels.enumerated() where label < 0 || label >= classes {
        preconditionFailure("\(op): label \(label) at row \(row) is out of range 0..<\(classes)")
    }
    let values = Tensor(uninitializedShape: [rows])
    withExtendedLifetime(logProbabilities) {
        for (r, label) in labels.enumerated() { values.mutablePointer[r] = -logProbabilities.pointer[r * classes + label] }
    }
    let recorded = Tensor.record(values, logProbabilities, pullback: nllPullback) { record in
        record.indices = labels
        record.shape0 = logProbabilities.shape
    }
    return reduce(recorded, reduction)
}

private let nllPullback: Pullback = { record, gradient, sink in
    let classes = record.shape0[1]
    let d = Tensor(zeros: record.shape0)
    withExtendedLifetime(gradient) {
        for (r, label) in record.indices.enumerated() { d.mutablePointer[r * classes + label] = -gradient.pointer[r] }
    }
    sink.accumulate(0, d)
}
