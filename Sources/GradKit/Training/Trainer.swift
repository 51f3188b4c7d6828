// GradKit — the training loop. SPDX-License-Identifier: MIT
#if canImport(Glibc)
import Glibc
#endif

/// Fits a model to data: batches, loss (optionally scaled, ``lossScaler``),
/// backward, the gradient monitor's non-finite guard, clipping, the
/// optimizer step and the learning-rate schedule; validation, early stopping, callbacks, progress and an optional
/// JSON-lines log.
///
/// ```swift
/// let trainer = Trainer(model: model, optimizer: Adam(model.parameters), loss: .softmaxCrossEntropy,
///                       options: TrainingOptions(epochs: 30, batchSize: 32, clipping: .norm(1)))
/// let history = try trainer.fit(train, validation: validation)
/// print(trainer.monitor.report)
/// ```
/// Runs are deterministic: the same seed and data give the same numbers, and
/// ``checkpoint(configuration:)`` / ``restore(_:file:)`` at an epoch boundary
/// continue bit for bit — early stopping included.
public final class Trainer {
    /// The model trained.
    public let model: any Layer
    /// The optimizer that steps it.
    public let optimizer: Optimizer
    /// The objective minimized.
    public let loss: LossFunction
    /// The run's settings; may be changed between calls of ``fit(_:validation:)``.
    public var options: TrainingOptions
    /// Watches gradient health and guards against non-finite gradients.
    public let monitor: GradientMonitor

    /// Called after every step.
    public var onStep: ((StepRecord) -> Void)?
    /// Called after every epoch, after early stopping's bookkeeping; answer `.stop` to end training.
    public var onEpoch: ((EpochRecord) -> EpochDecision)?
    /// Called at the points of each run, in order (see ``TrainingCallback``).
    /// In data-parallel training, on rank 0 only.
    public var callbacks: [any TrainingCallback] = []

    /// Trains data-parallel across processes when set (`DataParallel`, in
    /// builds with the `MPI` trait): ``fit(_:validation:)`` first gives every
    /// rank rank 0's state, each step trains on this rank's shard of the batch
    /// and waits for the gradients summed over the ranks before the monitor's
    /// guard and the step, and step losses and accuracies are the global
    /// batch's. Rank 0 alone runs ``callbacks``, writes the log and prints
    /// progress; ``onStep`` and ``onEpoch`` run on every rank and see the same
    /// records, so their decisions agree.
    public var dataParallel: (any DataParallelTraining)?

    /// Scales the loss of every step when set (``LossScaler``, PyTorch's
    /// `GradScaler`): backward runs on `scale · loss`, the gradients are
    /// unscaled before the monitor's non-finite guard, clipping and the
    /// step, and the scale is updated from the guard's decision — a
    /// non-finite gradient skips the step (parameters and optimizer state
    /// untouched) and backs the scale off. Needs the monitor's
    /// ``GradientMonitor/NonFinitePolicy/skip`` policy and excludes
    /// ``TrainingOptions/detectsAnomalies`` (either would end training at the
    /// scaler's first, expected, overflow); its state is kept in checkpoints,
    /// and ``restore(_:file:)`` refuses a checkpoint holding one when this is nil.
    public var lossScaler: LossScaler?

    /// Epochs completed (across resumed runs).
    public private(set) var completedEpochs = 0
    /// Optimizer steps completed, skipped steps included (across resumed runs).
    public private(set) var completedSteps = 0
    /// Why the run ended for good (early stopping), if it did: a later
    /// ``fit(_:validation:)`` then trains nothing. Kept in checkpoints.
    public private(set) var finished: String?

    /// Each parameter group's rate at creation, which the schedule scales.
    private let baseLearningRates: [Float]
    private var bestLoss = Float.infinity
    private var epochsWithoutImprovement = 0
    private var bestWeights: [String: Tensor]?
    private let modelParameters: [Parameter]
    private let modelRunsOwnHooks: Bool
    /// Correct predictions in the last step's batch (classification only).
    private var lastCorrect: Int?
    private var stopRequested: String?
    private var diverged = false
    /// Skipped steps in a row that count toward ``TrainingOptions/maximumConsecutiveSkippedSteps``:
    /// with a ``lossScaler``, only those taken at a scale of 1 or less.
    private var divergingSkips = 0

    /// A trainer of `model` by `optimizer` on `loss`.
    ///
    /// - Parameters:
    ///   - model: the model; its parameters must be the ones `optimizer` updates.
    ///   - optimizer: the optimizer stepped after each batch.
    ///   - loss: the objective and what it reads from a batch.
    ///   - options: epochs, batch size, clipping, schedule and the rest (``TrainingOptions``).
    ///   - monitor: a monitor of `model` (default: one that samples every step and skips non-finite steps).
    public init(
        model: any Layer, optimizer: Optimizer, loss: LossFunction, options: TrainingOptions = TrainingOptions(),
        monitor: GradientMonitor? = nil
    ) {
        self.model = model
        self.optimizer = optimizer
        self.loss = loss
        self.options = options
        self.monitor = monitor ?? GradientMonitor(model: model)
        self.baseLearningRates = optimizer.parameterGroups.map(\.learningRate)
        self.modelParameters = model.parameters
        self.modelRunsOwnHooks = model.runsOwnForwardHooks
    }

    private func validate(_ data: Dataset, _ role: String) throws {
        // `Dataset.subset([])` is the one way to an empty data set; its epoch would report a loss of NaN.
        guard data.count > 0 else { throw DataError.invalidArgument("the \(role) data set has no examples") }
        if let width = model.inputWidth, width != data.featureCount {
            throw DataError.widthMismatch(dataset: data.featureCount, model: width)
        }
        switch loss.targets {
        case .labels where data.labels == nil:
            throw TrainingError.missingTargets("\(loss.name) needs integer class labels; the \(role) data has float targets")
        case .values where data.targetValues == nil:
            throw TrainingError.missingTargets("\(loss.name) needs float targets; the \(role) data has class labels")
        default:
            break
        }
        guard options.batchSize > 0, options.epochs >= 0 else {
            throw TrainingError.invalidOption("batch size must be > 0 and epochs >= 0, got \(options.batchSize) and \(options.epochs)")
        }
        if lossScaler != nil, monitor.policy != .skip {
            throw TrainingError.invalidOption(
                "a loss scaler needs the monitor's .skip policy: a non-finite gradient is its signal to skip the step and back off, not a fault (the monitor's policy is .\(monitor.policy))")
        }
        if lossScaler != nil, options.detectsAnomalies {
            throw TrainingError.invalidOption(
                "a loss scaler and anomaly mode (detectsAnomalies) exclude each other: anomaly mode would end training at the scaler's first overflow, which is its signal to back off, not a fault; look for the fault without the scaler")
        }
        if let limit = options.maximumConsecutiveSkippedSteps, limit < 1 {
            throw TrainingError.invalidOption("maximumConsecutiveSkippedSteps must be at least 1, got \(limit)")
        }
        if role == "training", data.count % options.batchSize == 1, !options.dropsLastBatch, containsBatchNorm(model) {
            throw TrainingError.invalidOption(
                "\(data.count) examples in batches of \(options.batchSize) leave a last batch of 1, which BatchNorm cannot normalize in training mode; set dropsLastBatch or change the batch size")
        }
        if role == "training", let parallel = dataParallel, containsBatchNorm(model) {
            let last = data.count % options.batchSize
            let smallest = (options.dropsLastBatch || last == 0 ? Swift.min(options.batchSize, data.count) : last) / parallel.size
            if smallest < 2 {
                throw TrainingError.invalidOption(
                    "batches of \(options.batchSize) (the last of \(last == 0 ? options.batchSize : last)) shared by \(parallel.size) processes leave a shard of \(smallest), which BatchNorm cannot normalize in training mode; use larger batches")
            }
        }
    }

    private func containsBatchNorm(_ layer: any Layer) -> Bool {
        layer is BatchNorm || layer.children.contains { containsBatchNorm($0) }
    }

    /// Sets each group's rate from the schedule, when it counts in `unit`.
    private func applySchedule(unit: ScheduledLearningRate.Unit, epoch: Int) {
        guard let scheduled = options.schedule, scheduled.unit == unit else { return }
        let step = unit == .step ? completedSteps : epoch
        var groups = optimizer.parameterGroups
        for (g, base) in baseLearningRates.enumerated() {
            groups[g].learningRate = Float(scheduled.schedule.learningRate(atStep: step, base: Double(base)))
        }
        optimizer.parameterGroups = groups
    }

    /// Trains until `options.epochs` epochs are complete (continuing from a
    /// restored checkpoint), or early stopping, divergence, the monitor's
    /// policy or `onEpoch` ends it.
    /// - Throws: ``DataError`` for an empty data set or one that does not fit
    ///   the model, ``TrainingError`` for data that does not fit the loss, invalid options
    ///   or a log that cannot be written, ``GradientMonitor/NonFiniteGradientError`` under
    ///   that policy, ``AnomalyError`` in anomaly mode, and what callbacks and ``dataParallel`` throw.
    @discardableResult
    public func fit(_ train: Dataset, validation: Dataset? = nil) throws -> History {
        try validate(train, "training")
        if let validation { try validate(validation, "validation") }
        if let parallel = dataParallel { try parallel.synchronize(self) }
        let isPrimary = (dataParallel?.rank ?? 0) == 0
        stopRequested = nil
        diverged = false
        var history = History()
        if let finished {
            history.stoppedEarly = finished
            return history
        }
        let callbacks = isPrimary ? self.callbacks + (options.logPath.map { [JSONLinesLogger(path: $0)] } ?? []) : []
        var ended = false
        defer {
            if !ended { for callback in callbacks { try? callback.trainingDidEnd(self, history) } }
        }
        for callback in callbacks { try callback.trainingWillBegin(self) }
        let progress = ProgressPrinter(style: isPrimary ? options.progress : .silent, epochs: options.epochs)
        while completedEpochs < options.epochs, stopRequested == nil {
            let record = try runEpoch(train, validation: validation, history: &history, progress: progress, callbacks: callbacks)
            guard let record else { break }
            if try endEpoch(record, history: &history, callbacks: callbacks) == .stop { break }
        }
        if let stopRequested, history.stoppedEarly == nil { history.stoppedEarly = stopRequested }
        history.diverged = diverged
        progress.finish()
        ended = true
        for callback in callbacks { try callback.trainingDidEnd(self, history) }
        return history
    }

    /// One epoch's steps and its record (nil when a step asked to stop mid-epoch).
    private func runEpoch(
        _ train: Dataset, validation: Dataset?, history: inout History, progress: ProgressPrinter, callbacks: [any TrainingCallback]
    ) throws -> EpochRecord? {
        let epoch = completedEpochs
        let clock = ContinuousClock()
        let started = clock.now
        model.isTraining = true
        applySchedule(unit: .epoch, epoch: epoch)
        var generator: SeededGenerator? = options.shuffle ? SeededGenerator(seed: options.seed &+ UInt64(epoch) &* 0x9E37_79B9_7F4A_7C15) : nil
        var batches = train.batches(size: options.batchSize, shuffledBy: &generator)
        if options.dropsLastBatch, batches.count > 1, batches[batches.count - 1].count < options.batchSize { batches.removeLast() }
        var lossSum = 0.0, lossExamples = 0, correct = 0, seen = 0, skipped = 0
        for (index, batch) in batches.enumerated() {
            applySchedule(unit: .step, epoch: epoch)
            let record = try trainStep(batch, epoch: epoch)
            if record.skipped {
                skipped += 1
            } else {
                lossSum += Double(record.loss) * Double(batch.count)
                lossExamples += batch.count
            }
            if let stepCorrect = lastCorrect {
                correct += stepCorrect
                seen += batch.count
            }
            history.steps.append(record)
            onStep?(record)
            for callback in callbacks { try callback.stepDidEnd(self, record) }
            progress.step(epoch: epoch, index: index + 1, of: batches.count, loss: record.loss, gradientNorm: record.gradientNorm, elapsed: started.duration(to: clock.now))
            if stopRequested != nil { return nil }
        }
        var record = EpochRecord(
            epoch: epoch + 1, loss: lossExamples > 0 ? Float(lossSum / Double(lossExamples)) : .nan,
            accuracy: loss.usesLabels && seen > 0 ? Float(correct) / Float(seen) : nil,
            validationLoss: nil, validationAccuracy: nil, learningRate: optimizer.learningRate, skippedSteps: skipped, seconds: 0)
        if let validation {
            let evaluation = evaluate(validation)
            record.validationLoss = evaluation.loss
            record.validationAccuracy = evaluation.accuracy
        }
        completedEpochs += 1
        record.seconds = started.duration(to: clock.now).seconds
        history.epochs.append(record)
        progress.epoch(record)
        return record
    }

    /// Early stopping, `onEpoch` and the callbacks, in that order, so that a
    /// checkpoint taken by either holds the model the run reports.
    private func endEpoch(_ record: EpochRecord, history: inout History, callbacks: [any TrainingCallback]) throws -> EpochDecision {
        var decision = EpochDecision.proceed
        if let early = options.earlyStopping, shouldStopEarly(record, early) {
            if early.restoresBestWeights, let best = bestWeights { try model.loadStateDictionary(best) }
            finished = "no improvement for \(early.patience) epochs (early stopping after epoch \(record.epoch))"
            history.stoppedEarly = finished
            decision = .stop
        }
        if onEpoch?(record) == .stop, decision == .proceed {
            history.stoppedEarly = "stopped by onEpoch after epoch \(record.epoch)"
            decision = .stop
        }
        var firstError: Error?
        for callback in callbacks {
            do { try callback.epochDidEnd(self, record) } catch { firstError = firstError ?? error }
        }
        if let firstError { throw firstError }
        return decision
    }

    /// One step: forward (observed by the monitor), backward, guard, clip, step;
    /// in anomaly mode, all of it inside ``withAnomalyDetection(_:)``.
    private func trainStep(_ batch: Batch, epoch: Int) throws -> StepRecord {
        if options.detectsAnomalies { return try withAnomalyDetection { try unguardedStep(batch, epoch: epoch) } }
        return try unguardedStep(batch, epoch: epoch)
    }

    private func unguardedStep(_ batch: Batch, epoch: Int) throws -> StepRecord {
        // Data-parallel: this rank's shard (none when the batch has fewer examples than ranks).
        let shard = dataParallel.map { $0.shard(batch) } ?? batch
        var stepLoss: Float = 0
        lastCorrect = nil
        if let shard {
            let logits = monitor.observeForward { model.apply(shard.features, runsOwnHooks: modelRunsOwnHooks) }
            let value = loss(logits, shard)
            if let labels = shard.labels, loss.usesLabels {
                lastCorrect = zip(withoutGradients { logits.argmax() }, labels).filter { $0 == $1 }.count
            }
            (lossScaler?.scaled(value) ?? value).backward()
            stepLoss = value.scalar
        }
        if let parallel = dataParallel {
            let shardCount = Double(shard?.count ?? 0)
            let totals = try parallel.synchronizeGradients(summing: [Double(stepLoss) * shardCount, Double(lastCorrect ?? 0)])
            stepLoss = Float(totals[0] / Double(batch.count))
            if loss.usesLabels, batch.labels != nil { lastCorrect = Int(totals[1]) }
        }
        lossScaler?.unscaleGradients(optimizer.parameters)
        let step = completedSteps
        completedSteps += 1
        var record = StepRecord(
            epoch: epoch, step: step, loss: stepLoss, gradientNorm: 0, learningRate: optimizer.learningRate, skipped: false, clipped: false)
        switch try monitor.inspectGradients(loss: stepLoss, learningRate: optimizer.learningRate) {
        case .step:
            lossScaler?.update(foundNonFinite: false)
            divergingSkips = 0
        case .skip(let parameter), .stop(let parameter):
            // Above a scale of 1 an overflow may be the scale's own (its back-off is the scaler finding
            // its range, as PyTorch's GradScaler does from 2^16); at 1 or less the gradients themselves
            // are not finite.
            if (lossScaler?.scale ?? 1) <= 1 { divergingSkips += 1 }
            lossScaler?.update(foundNonFinite: true)
            record.skipped = true
            record.gradientNorm = .nan
            clearGradients()
            if case .stop = monitor.policy {
                stopRequested = "non-finite gradient in '\(parameter)' at step \(step)"
                diverged = true
            } else if let limit = options.maximumConsecutiveSkippedSteps, divergingSkips >= limit {
                let scaled = lossScaler == nil ? "" : " at a loss scale of 1 or less"
                stopRequested = "\(divergingSkips) steps in a row had NaN or infinite gradients\(scaled) (last in '\(parameter)', step \(step)): training diverged"
                diverged = true
            }
            return record
        }
        monitor.willStep()
        (record.gradientNorm, record.clipped) = clipAndStep()
        monitor.didStep()
        clearGradients()
        return record
    }

    /// Clips as the options say and steps; the gradient norm before clipping and whether clipping changed anything.
    private func clipAndStep() -> (norm: Float, clipped: Bool) {
        switch options.clipping {
        case .norm(let maxNorm)?:
            let norm = optimizer.step(clippingGradientNorm: maxNorm)
            return (norm, clipCoefficient(total: norm, maxNorm: maxNorm) < 1)
        case .value(let value)?:
            let clipped = gradientNorm(optimizer.parameters, normType: .infinity) > value
            clipGradientValue(optimizer.parameters, clipValue: value)
            optimizer.step()
            return (monitor.lastGradientNorm, clipped)
        case .perTensor(let maxNorm)?:
            let clipped = clipGradientNormPerTensor(optimizer.parameters, maxNorm: maxNorm) > 0
            optimizer.step()
            return (monitor.lastGradientNorm, clipped)
        case .adaptive(let factor, let epsilon)?:
            let clipped = adaptiveClipGradients(optimizer.parameters, clipFactor: factor, epsilon: epsilon) > 0
            optimizer.step()
            return (monitor.lastGradientNorm, clipped)
        case nil:
            optimizer.step()
            return (monitor.lastGradientNorm, false)
        }
    }

    /// Forgets every gradient of the model and of the optimizer, so that a
    /// parameter the optimizer does not update cannot pile one up.
    private func clearGradients() {
        for p in modelParameters { p.gradient = nil }
        optimizer.zeroGradients()
    }

    private func shouldStopEarly(_ record: EpochRecord, _ early: EarlyStopping) -> Bool {
        let current = record.validationLoss ?? record.loss
        if current < bestLoss - early.minimumDelta {
            bestLoss = current
            epochsWithoutImprovement = 0
            if early.restoresBestWeights { bestWeights = model.stateDictionary() }
            return false
        }
        epochsWithoutImprovement += 1
        return epochsWithoutImprovement >= early.patience
    }

    /// Loss and accuracy on a data set, in evaluation mode without recording.
    public func evaluate(_ data: Dataset, batchSize: Int = 256) -> (loss: Float, accuracy: Float?) {
        let wasTraining = model.isTraining
        model.isTraining = false
        defer { model.isTraining = wasTraining }
        var generator: SeededGenerator? = nil
        var total = 0.0, correct = 0
        withoutGradients {
            for batch in data.batches(size: batchSize, shuffledBy: &generator) {
                let output = model(batch.features)
                total += Double(loss(output, batch).scalar) * Double(batch.count)
                if let labels = batch.labels { correct += zip(output.argmax(), labels).filter { $0 == $1 }.count }
            }
        }
        return (Float(total / Double(Swift.max(data.count, 1))), loss.usesLabels ? Float(correct) / Float(Swift.max(data.count, 1)) : nil)
    }

    /// The state to resume from: model, optimizer, counters, the dropout
    /// generators, early stopping's best loss and weights, and whether the run
    /// has finished. Take it between epochs: after ``fit(_:validation:)``
    /// returns, or in ``onEpoch`` or a callback's ``TrainingCallback/epochDidEnd(_:_:)``.
    public func checkpoint(configuration: [String: String] = [:]) -> Checkpoint {
        var random: [String: [UInt64]] = [:]
        for (path, dropout) in dropoutLayers() { random["dropout:\(path)"] = dropout.generatorState }
        var config = configuration
        config["trainer.bestLoss"] = "\(bestLoss)"
        config["trainer.epochsWithoutImprovement"] = "\(epochsWithoutImprovement)"
        if let finished { config["trainer.finished"] = finished }
        if let lossScaler { config.merge(lossScaler.state.configuration) { _, scaler in scaler } }
        var checkpoint = Checkpoint(
            model: model.stateDictionary(), optimizer: optimizer.exportState(), step: completedSteps, epoch: completedEpochs,
            randomState: random, configuration: config)
        checkpoint.bestModel = bestWeights
        return checkpoint
    }

    /// Restores a checkpoint made by ``checkpoint(configuration:)``; the next
    /// ``fit(_:validation:)`` continues from its epoch.
    ///
    /// With a ``lossScaler``, the checkpoint's scale and growth tracker are
    /// restored into it; a checkpoint without them (a run without loss
    /// scaling) leaves the scaler as it is, so scaling starts from its
    /// initial scale. Without a ``lossScaler``, a checkpoint that holds a
    /// scaler's state is refused: resuming would drop the run's loss scaling
    /// unseen. Set one before restoring to continue with loss scaling, or
    /// remove the state's two configuration entries to resume without it:
    /// ```swift
    /// var checkpoint = try Checkpoint.read(from: path)
    /// checkpoint.configuration["lossScaler.scale"] = nil
    /// checkpoint.configuration["lossScaler.growthTracker"] = nil
    /// try trainer.restore(checkpoint, file: path)
    /// ```
    /// - Throws: ``CheckpointError`` (also
    ///   ``CheckpointError/badMetadata(file:key:reason:)`` for a loss
    ///   scaler's state that is unreadable or invalid, see
    ///   ``LossScaler/restore(_:)``, or that this trainer has no scaler for) or
    ///   ``OptimizerStateError``; nothing is changed then (the model is put
    ///   back when the optimizer state does not fit).
    public func restore(_ checkpoint: Checkpoint, file: String = "checkpoint") throws {
        let scalerState = try lossScaler.flatMap {
            try LossScaler.State(configuration: checkpoint.configuration, growthInterval: $0.growthInterval, file: file)
        }
        if lossScaler == nil, let (key, value) = LossScaler.State.firstEntry(in: checkpoint.configuration) {
            throw CheckpointError.badMetadata(
                file: file, key: "configuration",
                reason: "\(key.quotedForMessage()) is \(value.quotedForMessage()): the checkpoint's run scaled its loss, and this trainer has no lossScaler; "
                    + "set `trainer.lossScaler = LossScaler()` (with that run's arguments) before restoring to continue with loss scaling, "
                    + "or remove the entries \(LossScaler.State.scaleKey.quotedForMessage()) and \(LossScaler.State.growthTrackerKey.quotedForMessage()) "
                    + "from the checkpoint's configuration to resume without it")
        }
        // Early stopping compares with it: a NaN would never be improved on. Float(String) reads a C
        // string, so a NUL would end the number early.
        var restoredBestLoss = Float.infinity
        if let text = checkpoint.configuration["trainer.bestLoss"] {
            guard !text.contains("\0"), let value = Float(text), !value.isNaN else {
                throw CheckpointError.badMetadata(
                    file: file, key: "configuration", reason: "'trainer.bestLoss' is \(text.quotedForMessage()), not a loss")
            }
            restoredBestLoss = value
        }
        let previous = model.stateDictionary()
        try checkpoint.load(into: model, file: file)
        if let state = checkpoint.optimizer {
            do {
                try optimizer.restoreState(state)
            } catch {
                try? model.loadStateDictionary(previous)
                throw error
            }
        }
        for (path, dropout) in dropoutLayers() {
            if let words = checkpoint.randomState["dropout:\(path)"], words.count == 4, words.contains(where: { $0 != 0 }) {
                dropout.generatorState = words
            }
        }
        completedSteps = checkpoint.step
        completedEpochs = checkpoint.epoch
        bestLoss = restoredBestLoss
        // Bounded like the checkpoint's counts, so that counting on cannot overflow.
        epochsWithoutImprovement = checkpoint.configuration["trainer.epochsWithoutImprovement"].flatMap(Int.init)
            .map { Swift.min(Swift.max($0, 0), Checkpoint.countLimit - 1) } ?? 0
        finished = checkpoint.configuration["trainer.finished"]
        // Checked against this scaler above, before anything changed: it does not throw here.
        if let lossScaler, let scalerState { try lossScaler.restore(scalerState) }
        bestWeights = checkpoint.bestModel
    }

    private func dropoutLayers() -> [(String, Dropout)] {
        var found: [(String, Dropout)] = []
        func visit(_ layer: any Layer, _ path: String) {
            if let dropout = layer as? Dropout { found.append((path, dropout)) }
            for (name, child) in layer.namedChildren { visit(child, path.isEmpty ? name : "\(path).\(name)") }
        }
        visit(model, "")
        return found
    }
}

/// Progress on standard output: a live bar on a terminal, plain lines otherwise.
final class ProgressPrinter {
    private let live: Bool
    private let silent: Bool
    private let epochs: Int

    init(style: ProgressStyle, epochs: Int) {
        self.epochs = epochs
        switch style {
        case .automatic: live = isatty(STDOUT_FILENO) != 0; silent = false
        case .bar: live = true; silent = false
        case .lines: live = false; silent = false
        case .silent: live = false; silent = true
        }
    }

    func step(epoch: Int, index: Int, of total: Int, loss: Float, gradientNorm: Float, elapsed: Duration) {
        guard live, !silent, index % Swift.max(1, total / 50) == 0 || index == total else { return }
        let width = 24, filled = width * index / Swift.max(total, 1)
        let seconds = elapsed.seconds
        let eta = seconds / Double(index) * Double(total - index)
        let bar = String(repeating: "=", count: filled) + String(repeating: " ", count: width - filled)
        print("\repoch \(epoch + 1)/\(epochs) [\(bar)] \(index)/\(total) loss \(fixed(loss)) |g| \(scientific(gradientNorm)) ETA \(fixed(Float(eta)))s  ", terminator: "")
        fflush(nil)
    }

    func epoch(_ record: EpochRecord) {
        guard !silent else { return }
        var line = "epoch \(record.epoch)/\(epochs): loss \(fixed(record.loss))"
        if let a = record.accuracy { line += ", accuracy \(percent(a))" }
        if let v = record.validationLoss { line += ", validation loss \(fixed(v))" }
        if let a = record.validationAccuracy { line += ", validation accuracy \(percent(a))" }
        line += ", lr \(scientific(record.learningRate)), skipped \(record.skippedSteps), \(fixed(Float(record.seconds)))s"
        print((live ? "\r" : "") + line + (live ? "                    " : ""))
        fflush(nil)
    }

    func finish() { fflush(nil) }
}
