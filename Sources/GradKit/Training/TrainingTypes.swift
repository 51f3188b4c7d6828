// GradKit — what a training run is configured with and what it reports. SPDX-License-Identifier: MIT

/// The objective a ``Trainer`` minimizes: a differentiable function of the
/// model's output and the batch.
///
/// ```swift
/// Trainer(model: model, optimizer: optimizer, loss: .softmaxCrossEntropy)
/// // Any differentiable function of output and batch:
/// let weighted = LossFunction(name: "weighted MSE", targets: .values) { output, batch in
///     ((output - batch.targets!).squared() * classWeights).mean()
/// }
/// ```
public struct LossFunction: Sendable {
    /// What a loss reads from the batch, which the Trainer checks the data against.
    public enum Targets: Sendable {
        /// Integer class labels; the Trainer also reports accuracy.
        case labels
        /// Float targets.
        case values
        /// Whatever the function takes from the batch (say, its features, for an autoencoder).
        case any
    }

    /// The name used in messages.
    public let name: String
    /// What the loss reads from the batch.
    public let targets: Targets
    private let body: @Sendable (_ output: Tensor, _ batch: Batch) -> Tensor

    /// A loss computed by `body` from the model's output and the batch; it must
    /// return a one-element tensor recorded on the tape.
    public init(name: String = "custom loss", targets: Targets, _ body: @escaping @Sendable (_ output: Tensor, _ batch: Batch) -> Tensor) {
        self.name = name
        self.targets = targets
        self.body = body
    }

    /// The loss of `output` on `batch`.
    public func callAsFunction(_ output: Tensor, _ batch: Batch) -> Tensor { body(output, batch) }

    /// Softmax cross-entropy of logits against integer labels (reports accuracy).
    public static let softmaxCrossEntropy = LossFunction(name: "softmax cross-entropy", targets: .labels) { output, batch in
        GradKit.softmaxCrossEntropy(logits: output, labels: batch.labels!)
    }
    /// Mean squared error against float targets.
    public static let meanSquaredError = LossFunction(name: "mean squared error", targets: .values) { output, batch in
        GradKit.meanSquaredError(predicted: output, expected: batch.targets!)
    }
    /// Binary cross-entropy of logits against float targets in [0, 1].
    public static let binaryCrossEntropy = LossFunction(name: "binary cross-entropy", targets: .values) { output, batch in
        GradKit.binaryCrossEntropy(logits: output, labels: batch.targets!)
    }
    /// Huber loss with the given delta against float targets.
    public static func huber(delta: Float) -> LossFunction {
        LossFunction(name: "Huber loss", targets: .values) { output, batch in
            GradKit.huber(predicted: output, expected: batch.targets!, delta: delta)
        }
    }

    var usesLabels: Bool { if case .labels = targets { return true } else { return false } }
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
    /// Epochs without an improvement before training stops (Keras' `patience`).
    public var patience: Int
    /// The smallest decrease of the monitored loss that counts as an improvement (Keras' `min_delta`).
    public var minimumDelta: Float
    /// Put back the weights of the best epoch when stopping.
    public var restoresBestWeights: Bool

    /// Early stopping with Keras' semantics.
    ///
    /// - Parameters:
    ///   - patience: epochs without an improvement tolerated (default 5).
    ///   - minimumDelta: the smallest decrease that counts as an improvement (default 0).
    ///   - restoresBestWeights: put back the best epoch's weights when stopping (default true).
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
    /// A live bar, even when standard output is not a terminal.
    case bar
    /// One plain line per epoch.
    case lines
    /// Nothing on standard output.
    case silent
}

/// A learning-rate schedule and the unit its steps count: epochs or
/// optimizer steps. There is no default unit, since the same schedule means
/// very different things in each (a cosine over 30 "steps" ends within the
/// first epoch).
public struct ScheduledLearningRate: Sendable {
    /// What the schedule's step counts.
    public enum Unit: Sendable, Equatable {
        /// One schedule step per epoch.
        case epoch
        /// One schedule step per optimizer step (batch).
        case step
    }

    /// The learning rate per schedule step.
    public var schedule: any LearningRateSchedule
    /// What one schedule step is.
    public var unit: Unit

    /// A schedule whose steps count `unit`s.
    ///
    /// - Parameters:
    ///   - schedule: the learning rate per schedule step.
    ///   - unit: epochs or optimizer steps.
    public init(_ schedule: any LearningRateSchedule, unit: Unit) {
        self.schedule = schedule
        self.unit = unit
    }

    /// Advances once per epoch (PyTorch: `scheduler.step()` after each epoch).
    public static func perEpoch(_ schedule: any LearningRateSchedule) -> ScheduledLearningRate { .init(schedule, unit: .epoch) }
    /// Advances once per optimizer step (PyTorch: `scheduler.step()` after each batch, as for ``OneCycle``).
    public static func perStep(_ schedule: any LearningRateSchedule) -> ScheduledLearningRate { .init(schedule, unit: .step) }
}

/// The settings of a training run.
public struct TrainingOptions: Sendable {
    /// Epochs to train in all (a resumed run continues up to this many).
    public var epochs: Int
    /// Examples per batch.
    public var batchSize: Int
    /// Seeds the shuffling of each epoch.
    public var seed: UInt64
    /// Shuffle the examples every epoch (with a generator seeded from `seed` and the epoch).
    public var shuffle: Bool
    /// Skip the last batch of an epoch when it is smaller than the others
    /// (PyTorch's `drop_last`).
    public var dropsLastBatch: Bool
    /// Gradient clipping between backward and the step, if any.
    public var clipping: GradientClipping?
    /// The learning-rate schedule and its unit, if any.
    public var schedule: ScheduledLearningRate?
    /// Stop and restore the best weights when the loss stops improving, if set.
    public var earlyStopping: EarlyStopping?
    /// How progress is shown on standard output.
    public var progress: ProgressStyle
    /// Appends one JSON object per step, per sampled step's layers and per
    /// epoch to this file (a ``JSONLinesLogger``); the file is opened before
    /// the first step, and a write that fails ends training with an error.
    public var logPath: String?
    /// End training when this many steps in a row were skipped for NaN or
    /// infinite gradients (Keras' `TerminateOnNaN`, which stops at the first):
    /// the run has diverged and further steps would all be skipped too.
    /// ``History/diverged`` is then set. Nil never stops. Default 10. With a
    /// ``Trainer/lossScaler``, only steps skipped at a scale of 1 or less
    /// count: above it an overflow may be the scale's own, and backing off is
    /// how the scaler finds its range (16 halvings from its default 2¹⁶).
    public var maximumConsecutiveSkippedSteps: Int?
    /// Run every step in anomaly mode (``withAnomalyDetection(_:)``): the first
    /// NaN or infinity ends training with an ``AnomalyError`` naming the
    /// operation. Slow: for finding a fault.
    public var detectsAnomalies: Bool

    /// Options with these defaults: 10 epochs of 32 examples, seed 0, shuffled, the last
    /// short batch kept, no clipping, schedule or early stopping, automatic progress, no log,
    /// stop after 10 skipped steps in a row, anomaly mode off. Each parameter sets the
    /// property of the same name.
    public init(
        epochs: Int = 10, batchSize: Int = 32, seed: UInt64 = 0, shuffle: Bool = true, dropsLastBatch: Bool = false,
        clipping: GradientClipping? = nil, schedule: ScheduledLearningRate? = nil, earlyStopping: EarlyStopping? = nil,
        progress: ProgressStyle = .automatic, logPath: String? = nil, maximumConsecutiveSkippedSteps: Int? = 10,
        detectsAnomalies: Bool = false
    ) {
        self.epochs = epochs
        self.batchSize = batchSize
        self.seed = seed
        self.shuffle = shuffle
        self.dropsLastBatch = dropsLastBatch
        self.clipping = clipping
        self.schedule = schedule
        self.earlyStopping = earlyStopping
        self.progress = progress
        self.logPath = logPath
        self.maximumConsecutiveSkippedSteps = maximumConsecutiveSkippedSteps
        self.detectsAnomalies = detectsAnomalies
    }
}

/// One optimizer step, as reported to ``Trainer/onStep``.
public struct StepRecord: Sendable, Equatable {
    /// The epoch (0-based) the step belongs to.
    public var epoch: Int
    /// The step's number over the whole run (0-based, across resumed runs).
    public var step: Int
    /// The batch's loss (NaN or infinite when that is why the step was skipped).
    public var loss: Float
    /// The global gradient norm before clipping.
    public var gradientNorm: Float
    /// The first parameter group's learning rate for this step.
    public var learningRate: Float
    /// The step was skipped by the non-finite guard.
    public var skipped: Bool
    /// Clipping changed the gradients (the norm was above the limit, an
    /// element beyond the value, a tensor or unit was scaled).
    public var clipped: Bool
}

/// One epoch's figures.
public struct EpochRecord: Sendable, Equatable {
    /// The epoch's number, from 1.
    public var epoch: Int
    /// The mean training loss over the steps that were not skipped.
    public var loss: Float
    /// Training accuracy over the examples the epoch's batches held (classification only).
    public var accuracy: Float?
    /// The mean loss on the validation set, if one was given.
    public var validationLoss: Float?
    /// The accuracy (0...1) on the validation set, if one was given and the loss has labels.
    public var validationAccuracy: Float?
    /// The first parameter group's learning rate at the end of the epoch.
    public var learningRate: Float
    /// Steps of the epoch skipped for NaN or infinite gradients.
    public var skippedSteps: Int
    /// Wall-clock time of the epoch, validation included, in seconds.
    public var seconds: Double
}

/// What ``Trainer/onEpoch`` answers.
public enum EpochDecision: Sendable {
    /// Train the next epoch.
    case proceed
    /// End the run after this epoch (``History/stoppedEarly`` says so).
    case stop
}

/// What a run produced.
public struct History: Sendable {
    /// Every epoch completed in this call of ``Trainer/fit(_:validation:)``.
    public var epochs: [EpochRecord] = []
    /// Every step taken in this call.
    public var steps: [StepRecord] = []
    /// Why training ended early, if it did.
    public var stoppedEarly: String?
    /// Training ended because its gradients stayed non-finite
    /// (``TrainingOptions/maximumConsecutiveSkippedSteps``) or the monitor's
    /// policy stopped it at a non-finite gradient.
    public var diverged = false
    /// Steps skipped for NaN or infinite gradients.
    public var skippedSteps: Int { steps.filter(\.skipped).count }
}

/// Errors a training run throws instead of trapping.
public enum TrainingError: Error, Equatable, CustomStringConvertible {
    /// The data lacks what the loss needs (labels or targets).
    case missingTargets(String)
    /// An option that cannot work with this data or model.
    case invalidOption(String)
    /// A log, report or event file could not be written.
    case cannotWrite(path: String, reason: String)

    /// The message alone; a write failure is `PATH: cannot write: REASON`.
    public var description: String {
        switch self {
        case .missingTargets(let what): what
        case .invalidOption(let what): what
        case .cannotWrite(let path, let reason): "\(path.shownInMessage): cannot write: \(reason)"
        }
    }
}
