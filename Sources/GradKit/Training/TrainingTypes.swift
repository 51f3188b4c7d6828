// GradKit — what a training run is configured with and what it reports. SPDX-License-Identifier: MIT

/// The objective a ``Trainer`` minimizes.
public enum LossFunction: Sendable {
    /// Integer labels; also reports accuracy.
    case softmaxCrossEntropy
    /// Float targets.
    case meanSquaredError
    /// Float targets in [0, 1] against logits.
    case binaryCrossEntropy
    /// Float targets, Huber with the given delta.
    case huber(delta: Float)

    func callAsFunction(_ output: Tensor, _ batch: Batch) -> Tensor {
        switch self {
        case .softmaxCrossEntropy: GradKit.softmaxCrossEntropy(logits: output, labels: batch.labels ?? [])
        case .meanSquaredError: GradKit.meanSquaredError(predicted: output, expected: batch.targets!)
        case .binaryCrossEntropy: GradKit.binaryCrossEntropy(logits: output, labels: batch.targets!)
        case .huber(let delta): GradKit.huber(predicted: output, expected: batch.targets!, delta: delta)
        }
    }

    var usesLabels: Bool { if case .softmaxCrossEntropy = self { return true } else { return false } }
}

/// Gradient clipping applied between `backward()` and the optimizer step.
public enum GradientClipping: Sendable, Equatable {
    /// Global norm (``clipGradientNorm(_:maxNorm:normType:)``, fused into the step).
    case norm(Float)
    /// Elementwise (``clipGradientValue(_:clipValue:)``).
    case value(Float)
    /// Each tensor to its own norm (``clipGradientNormPerTensor(_:maxNorm:)``).
    case perTensor(Float)
    /// Adaptive, unit-wise (``adaptiveClipGradients(_:clipFactor:epsilon:)``).
    case adaptive(clipFactor: Float = 0.01, epsilon: Float = 1e-3)
}

/// Stops training when the monitored loss (validation loss when there is a
/// validation set, else the training loss) has not improved by more than
/// `minimumDelta` for `patience` epochs, as Keras' `EarlyStopping`.
public struct EarlyStopping: Sendable {
    public var patience: Int
    public var minimumDelta: Float
    /// Put back the weights of the best epoch when stopping.
    public var restoresBestWeights: Bool

    public init(patience: Int = 5, minimumDelta: Float = 0, restoresBestWeights: Bool = true) {
        self.patience = patience
        self.minimumDelta = minimumDelta
        self.restoresBestWeights = restoresBestWeights
    }
}

/// How ``Trainer`` reports progress on standard output.
public enum ProgressStyle: Sendable {
    /// A live bar (ETA, loss, gradient norm) on a terminal, one plain line per epoch otherwise.
    case automatic
    case bar
    case lines
    case silent
}

/// The settings of a training run.
public struct TrainingOptions: Sendable {
    public var epochs: Int
    public var batchSize: Int
    /// Seeds the shuffling of each epoch.
    public var seed: UInt64
    public var shuffle: Bool
    /// Skip the last batch of an epoch when it is smaller than the others
    /// (PyTorch's `drop_last`).
    public var dropsLastBatch: Bool
    public var clipping: GradientClipping?
    public var schedule: (any LearningRateSchedule)?
    /// Advance the schedule after every step (true) or every epoch (false).
    public var schedulePerStep: Bool
    public var earlyStopping: EarlyStopping?
    public var progress: ProgressStyle
    /// Appends one JSON object per step and per epoch to this file.
    public var logPath: String?

    public init(
        epochs: Int = 10, batchSize: Int = 32, seed: UInt64 = 0, shuffle: Bool = true, dropsLastBatch: Bool = false,
        clipping: GradientClipping? = nil,
        schedule: (any LearningRateSchedule)? = nil, schedulePerStep: Bool = false, earlyStopping: EarlyStopping? = nil,
        progress: ProgressStyle = .automatic, logPath: String? = nil
    ) {
        self.epochs = epochs
        self.batchSize = batchSize
        self.seed = seed
        self.shuffle = shuffle
        self.dropsLastBatch = dropsLastBatch
        self.clipping = clipping
        self.schedule = schedule
        self.schedulePerStep = schedulePerStep
        self.earlyStopping = earlyStopping
        self.progress = progress
        self.logPath = logPath
    }
}

/// One optimizer step, as reported to ``Trainer/onStep``.
public struct StepRecord: Sendable, Equatable {
    public var epoch: Int
    public var step: Int
    public var loss: Float
    /// The global gradient norm before clipping.
    public var gradientNorm: Float
    public var learningRate: Float
    /// The step was skipped by the non-finite guard.
    public var skipped: Bool
    /// Clipping changed the gradients (the norm was above the limit, an
    /// element beyond the value, a tensor or unit was scaled).
    public var clipped: Bool
}

/// One epoch's figures.
public struct EpochRecord: Sendable, Equatable {
    public var epoch: Int
    public var loss: Float
    /// Training accuracy (classification only).
    public var accuracy: Float?
    public var validationLoss: Float?
    public var validationAccuracy: Float?
    public var learningRate: Float
    public var seconds: Double
}

/// What ``Trainer/onEpoch`` answers.
public enum EpochDecision: Sendable { case proceed, stop }

/// What a run produced.
public struct History: Sendable {
    public var epochs: [EpochRecord] = []
    public var steps: [StepRecord] = []
    /// Why training ended early, if it did.
    public var stoppedEarly: String?
}

/// Errors a training run throws instead of trapping.
public enum TrainingError: Error, Equatable, CustomStringConvertible {
    case missingTargets(String)
    case invalidOption(String)

    public var description: String {
        switch self {
        case .missingTargets(let what): what
        case .invalidOption(let what): what
        }
    }
}
