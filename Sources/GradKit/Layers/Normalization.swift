// GradKit — batch and layer normalization. SPDX-License-Identifier: MIT

/// Batch normalization (Ioffe and Szegedy, 2015) with PyTorch `nn.BatchNorm1d`'s
/// semantics, over inputs `[batch, features]` or `[batch, features, length]`.
///
/// In training, each feature is normalized with the batch's statistics and the
/// running statistics are updated:
/// ```
/// y = (x - mean) / √(var + epsilon) · weight + bias     (var: biased, over batch and length)
/// runningMean     = (1 - momentum) · runningMean     + momentum · mean
/// runningVariance = (1 - momentum) · runningVariance + momentum · var · n / (n - 1)
/// ```
/// (the running variance is unbiased; `momentum: nil` uses the cumulative
/// average 1 / batches seen, as PyTorch). In evaluation the running statistics
/// replace the batch's. Defaults are PyTorch's: epsilon 1e-5, momentum 0.1,
/// affine weight (ones) and bias (zeros), running statistics tracked.
/// Buffers: `running_mean`, `running_var`, `num_batches_tracked`.
public final class BatchNorm: HookedLayer {
    /// The number of features (the size of axis 1 of the input).
    public let featureCount: Int
    /// Added to the variance before the square root (PyTorch's `eps`).
    public let epsilon: Float
    /// The weight of the newest batch in the running statistics; nil for the cumulative average over every batch (PyTorch's `momentum=None`).
    public let momentum: Float?
    /// Shape `[featureCount]`, named `"weight"` (nil when not affine).
    public let weight: Parameter?
    /// Shape `[featureCount]`, named `"bias"` (nil when not affine).
    public let bias: Parameter?
    /// Buffer `running_mean`, shape `[featureCount]`: the running mean, used in evaluation.
    public let runningMean: Buffer
    /// Buffer `running_var`, shape `[featureCount]`: the running unbiased variance, used in evaluation.
    public let runningVariance: Buffer
    /// Buffer `num_batches_tracked`, a scalar: training batches seen, for the cumulative average.
    public let batchesTracked: Buffer
    /// Whether running statistics are updated and used in evaluation; when false, evaluation normalizes with the batch's statistics too (PyTorch's `track_running_stats`).
    public let tracksRunningStatistics: Bool
    /// Training mode: normalize with the batch's statistics and update the running ones.
    public var isTraining = true

    /// A batch normalization with PyTorch's defaults.
    ///
    /// - Parameters:
    ///   - featureCount: the features per example (axis 1 of the input).
    ///   - epsilon: added to the variance (default 1e-5).
    ///   - momentum: the newest batch's weight in the running statistics (default 0.1; nil: cumulative average).
    ///   - affine: whether to learn `weight` (ones) and `bias` (zeros) (default true).
    ///   - tracksRunningStatistics: whether to keep running statistics for evaluation (default true).
    /// - Precondition: `featureCount > 0`.
    public init(
        featureCount: Int, epsilon: Float = 1e-5, momentum: Float? = 0.1, affine: Bool = true,
        tracksRunningStatistics: Bool = true
    ) {
        precondition(featureCount > 0, "BatchNorm: featureCount must be positive, got \(featureCount)")
        self.featureCount = featureCount
        self.epsilon = epsilon
        self.momentum = momentum
        self.weight = affine ? Parameter(Tensor(ones: [featureCount]), name: "weight") : nil
        self.bias = affine ? Parameter(Tensor(zeros: [featureCount]), name: "bias") : nil
        self.runningMean = Buffer(Tensor(zeros: [featureCount]), name: "running_mean")
        self.runningVariance = Buffer(Tensor(ones: [featureCount]), name: "running_var")
        self.batchesTracked = Buffer(Tensor(0), name: "num_batches_tracked")
        self.tracksRunningStatistics = tracksRunningStatistics
    }

    let forwardHooks = ForwardHooks()

    /// Normalizes `input` per feature (with the batch's statistics in training, the running ones in evaluation) and runs the forward hooks.
    /// - Precondition: input `[batch, featureCount]` or `[batch, featureCount, length]`,
    ///   and more than one value per feature in training.
    public func callAsFunction(_ input: Tensor) -> Tensor { forwardHooks.run(self, input, forward(input)) }

    private func forward(_ input: Tensor) -> Tensor {
        precondition(
            (input.rank == 2 || input.rank == 3) && input.shape[1] == featureCount,
            "BatchNorm(featureCount: \(featureCount)): expected input [batch, \(featureCount)] or [batch, \(featureCount), length], got \(input.shape)")
        let axes = input.rank == 2 ? [0] : [0, 2]
        let statisticShape = input.rank == 2 ? [1, featureCount] : [1, featureCount, 1]
        let count = input.scalarCount / featureCount
        let normalized: Tensor
        if isTraining || !tracksRunningStatistics {
            precondition(
                !isTraining || count > 1,
                "BatchNorm(featureCount: \(featureCount)): expected more than 1 value per feature when training, got input \(input.shape)")
            let mean = input.mean(alongAxes: axes)
            let centered = input - mean
            let variance = centered.squared().mean(alongAxes: axes)
            normalized = centered / (variance + epsilon).sqrt()
            if isTraining && tracksRunningStatistics { updateRunningStatistics(mean: mean, variance: variance, count: count) }
        } else {
            normalized = (input - runningMean.value.reshaped(to: statisticShape))
                / (runningVariance.value.reshaped(to: statisticShape) + epsilon).sqrt()
        }
        guard let weight, let bias else { return normalized }
        return normalized * weight.value.reshaped(to: statisticShape) + bias.value.reshaped(to: statisticShape)
    }

    private func updateRunningStatistics(mean: Tensor, variance: Tensor, count: Int) {
        withoutGradients {
            let batches = batchesTracked.value.scalar + 1
            batchesTracked.value = Tensor(batches)
            let factor = momentum ?? 1 / batches
            let unbiased = variance.reshaped(to: [featureCount]) * (Float(count) / Float(count - 1))
            runningMean.value = runningMean.value * (1 - factor) + mean.reshaped(to: [featureCount]) * factor
            runningVariance.value = runningVariance.value * (1 - factor) + unbiased * factor
        }
    }

    /// `weight` and `bias`, when affine.
    public var parameters: [Parameter] { [weight, bias].compactMap { $0 } }
    /// `running_mean`, `running_var` and `num_batches_tracked`.
    public var buffers: [Buffer] { [runningMean, runningVariance, batchesTracked] }
    /// ``featureCount``.
    public var inputWidth: Int? { featureCount }
}

/// Layer normalization (Ba, Kiros and Hinton, 2016), PyTorch's `nn.LayerNorm`:
/// each example is normalized over its last `normalizedShape.count` axes,
/// `y = (x - mean) / √(var + epsilon) · weight + bias` (biased variance), the
/// same in training and evaluation.
public final class LayerNorm: HookedLayer {
    /// The trailing shape each example is normalized over.
    public let normalizedShape: [Int]
    /// Added to the variance before the square root (PyTorch's `eps`).
    public let epsilon: Float
    /// Shape `normalizedShape`, named `"weight"` (nil without affine parameters).
    public let weight: Parameter?
    /// Shape `normalizedShape`, named `"bias"` (nil without affine parameters).
    public let bias: Parameter?
    /// Has no effect: layer normalization is the same in training and evaluation.
    public var isTraining = true

    /// A layer normalization over the trailing `normalizedShape`.
    ///
    /// - Parameters:
    ///   - normalizedShape: the trailing axes' sizes; non-empty and positive.
    ///   - epsilon: added to the variance (default 1e-5).
    ///   - elementwiseAffine: whether to learn `weight` (ones) and `bias` (zeros) (default true).
    public init(normalizedShape: [Int], epsilon: Float = 1e-5, elementwiseAffine: Bool = true) {
        precondition(
            !normalizedShape.isEmpty && normalizedShape.allSatisfy { $0 > 0 },
            "LayerNorm: normalizedShape must be non-empty and positive, got \(normalizedShape)")
        self.normalizedShape = normalizedShape
        self.epsilon = epsilon
        self.weight = elementwiseAffine ? Parameter(Tensor(ones: normalizedShape), name: "weight") : nil
        self.bias = elementwiseAffine ? Parameter(Tensor(zeros: normalizedShape), name: "bias") : nil
    }

    /// Normalizes over the last axis of size `featureCount`.
    public convenience init(featureCount: Int, epsilon: Float = 1e-5) {
        self.init(normalizedShape: [featureCount], epsilon: epsilon)
    }

    let forwardHooks = ForwardHooks()

    /// Normalizes each example over its trailing ``normalizedShape`` and runs the forward hooks.
    /// - Precondition: the input ends in ``normalizedShape``.
    public func callAsFunction(_ input: Tensor) -> Tensor { forwardHooks.run(self, input, forward(input)) }

    private func forward(_ input: Tensor) -> Tensor {
        precondition(
            input.rank >= normalizedShape.count && Array(input.shape.suffix(normalizedShape.count)) == normalizedShape,
            "LayerNorm(normalizedShape: \(normalizedShape)): input of shape \(input.shape) does not end in \(normalizedShape)")
        let axes = Array((input.rank - normalizedShape.count)..<input.rank)
        let mean = input.mean(alongAxes: axes)
        let centered = input - mean
        let normalized = centered / (centered.squared().mean(alongAxes: axes) + epsilon).sqrt()
        guard let weight, let bias else { return normalized }
        return normalized * weight.value + bias.value
    }

    /// `weight` and `bias`, when affine.
    public var parameters: [Parameter] { [weight, bias].compactMap { $0 } }
}
