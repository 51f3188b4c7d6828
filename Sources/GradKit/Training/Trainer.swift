// GradKit — the training loop. SPDX-License-Identifier: MIT
#if canImport(Glibc)
import Glibc
#endif

/// Fits a model to data: batches, loss, backward, the gradient monitor's
/// non-finite guard, clipping, the optimizer step and the learning-rate
/// schedule; validation, early stopping, events, progress and an optional
/// JSON-lines log.
///
/// ```swift
/// let trainer = Trainer(model: model, optimizer: Adam(model.parameters), loss: .softmaxCrossEntropy,
///                       options: TrainingOptions(epochs: 30, batchSize: 32, clipping: .norm(1)))
/// let history = try trainer.fit(train, validation: validation)
/// print(trainer.monitor.report)
/// ```
/// Runs are deterministic: the same seed and data give the same numbers, and
/// ``checkpoint(configuration:)`` / ``restore(_:file:)`` at an epoch boundary continue bit for bit.
public final class Trainer {
    public let model: any Layer
    public let optimizer: Optimizer
    public let loss: LossFunction
    public var options: TrainingOptions
    /// Watches gradient health and guards against non-finite gradients.
    public let monitor: GradientMonitor

    /// Called after every step.
    public var onStep: ((StepRecord) -> Void)?
    /// Called after every epoch; answer `.stop` to end training.
    public var onEpoch: ((EpochRecord) -> EpochDecision)?

    /// Epochs and steps completed (across resumed runs).
    public private(set) var completedEpochs = 0
    public private(set) var completedSteps = 0
    private let baseLearningRate: Float
    private var bestLoss = Float.infinity
    private var epochsWithoutImprovement = 0
    private var bestWeights: [String: Tensor]?

    public init(
        model: any Layer, optimizer: Optimizer, loss: LossFunction, options: TrainingOptions = TrainingOptions(),
        monitor: GradientMonitor? = nil
    ) {
        self.model = model
        self.optimizer = optimizer
        self.loss = loss
        self.options = options
        self.monitor = monitor ?? GradientMonitor(model: model)
        self.baseLearningRate = optimizer.learningRate
    }

    private func validate(_ data: Dataset) throws {
        if let width = model.inputWidth, width != data.featureCount {
            throw DataError.widthMismatch(dataset: data.featureCount, model: width)
        }
        if loss.usesLabels, data.labels == nil { throw TrainingError.missingTargets("softmax cross-entropy needs a data set with labels") }
        if !loss.usesLabels, data.labels != nil { throw TrainingError.missingTargets("this loss needs a data set with float targets") }
        guard options.batchSize > 0, options.epochs >= 0 else {
            throw TrainingError.invalidOption("batch size must be > 0 and epochs >= 0, got \(options.batchSize) and \(options.epochs)")
        }
        if data.count % options.batchSize == 1, !options.dropsLastBatch, containsBatchNorm(model) {
            throw TrainingError.invalidOption(
                "\(data.count) examples in batches of \(options.batchSize) leave a last batch of 1, which BatchNorm cannot normalize in training mode; set dropsLastBatch or change the batch size")
        }
    }

    private func containsBatchNorm(_ layer: any Layer) -> Bool {
        layer is BatchNorm || layer.children.contains { containsBatchNorm($0) }
    }

    private func learningRate(atStep step: Int, epoch: Int) -> Float {
        guard let schedule = options.schedule else { return optimizer.learningRate }
        return Float(schedule.learningRate(atStep: options.schedulePerStep ? step : epoch, base: Double(baseLearningRate)))
    }

    /// Trains until `options.epochs` epochs are complete (continuing from a
    /// restored checkpoint), or early stopping or `onEpoch` ends it.
    /// - Throws: ``DataError/widthMismatch(dataset:model:)`` for data that does not fit
    ///   the model, ``TrainingError`` for data that does not fit the loss, ``GradientMonitor/NonFiniteGradientError`` under that policy.
    @discardableResult
    public func fit(_ train: Dataset, validation: Dataset? = nil) throws -> History {
        try validate(train)
        if let validation { try validate(validation) }
        var history = History()
        var log = options.logPath.map { JSONLinesLog(path: $0) }
        defer { log?.close() }
        let progress = ProgressPrinter(style: options.progress, epochs: options.epochs)
        let clock = ContinuousClock()
        epochLoop: while completedEpochs < options.epochs {
            let epoch = completedEpochs
            let started = clock.now
            model.isTraining = true
            if options.schedule != nil, !options.schedulePerStep { optimizer.learningRate = learningRate(atStep: completedSteps, epoch: epoch) }
            var generator: SeededGenerator? = options.shuffle ? SeededGenerator(seed: options.seed &+ UInt64(epoch) &* 0x9E37_79B9_7F4A_7C15) : nil
            var batches = train.batches(size: options.batchSize, shuffledBy: &generator)
            if options.dropsLastBatch, batches.count > 1, batches[batches.count - 1].count < options.batchSize { batches.removeLast() }
            var lossSum = 0.0, correct = 0, seen = 0
            for (index, batch) in batches.enumerated() {
                if options.schedule != nil, options.schedulePerStep { optimizer.learningRate = learningRate(atStep: completedSteps, epoch: epoch) }
                let record = try trainStep(batch, epoch: epoch)
                if !record.skipped {
                    lossSum += Double(record.loss) * Double(batch.count)
                    seen += batch.count
                }
                if let labels = batch.labels, let predictions = lastPredictions {
                    correct += zip(predictions, labels).filter { $0 == $1 }.count
                }
                history.steps.append(record)
                log?.write(["type": .string("step"), "epoch": .number(Double(epoch)), "step": .number(Double(record.step)),
                            "loss": .number(Double(record.loss)), "gradient_norm": .number(Double(record.gradientNorm)),
                            "learning_rate": .number(Double(record.learningRate)), "skipped": .bool(record.skipped),
                            "clipped": .bool(record.clipped)])
                onStep?(record)
                progress.step(epoch: epoch, index: index + 1, of: batches.count, loss: record.loss, gradientNorm: record.gradientNorm, elapsed: started.duration(to: clock.now))
                if stopRequested != nil {
                    history.stoppedEarly = stopRequested
                    break epochLoop
                }
            }
            let trainLoss = seen > 0 ? Float(lossSum / Double(seen)) : .nan
            var record = EpochRecord(
                epoch: epoch + 1, loss: trainLoss, accuracy: loss.usesLabels ? Float(correct) / Float(Swift.max(train.count, 1)) : nil,
                validationLoss: nil, validationAccuracy: nil, learningRate: optimizer.learningRate, seconds: 0)
            if let validation {
                let evaluation = evaluate(validation)
                record.validationLoss = evaluation.loss
                record.validationAccuracy = evaluation.accuracy
            }
            completedEpochs += 1
            record.seconds = started.duration(to: clock.now).seconds
            history.epochs.append(record)
            log?.write(["type": .string("epoch"), "epoch": .number(Double(record.epoch)), "loss": .number(Double(record.loss)),
                        "accuracy": record.accuracy.map { .number(Double($0)) } ?? .null,
                        "validation_loss": record.validationLoss.map { .number(Double($0)) } ?? .null,
                        "validation_accuracy": record.validationAccuracy.map { .number(Double($0)) } ?? .null,
                        "learning_rate": .number(Double(record.learningRate)), "seconds": .number(record.seconds)])
            progress.epoch(record)
            // Early-stopping bookkeeping first, so a checkpoint taken in onEpoch is complete.
            let stopEarly = options.earlyStopping.map { shouldStopEarly(record, $0) } ?? false
            if onEpoch?(record) == .stop {
                history.stoppedEarly = "stopped by onEpoch after epoch \(record.epoch)"
                break
            }
            if let early = options.earlyStopping, stopEarly {
                history.stoppedEarly = "no improvement for \(early.patience) epochs (early stopping after epoch \(record.epoch))"
                if early.restoresBestWeights, let best = bestWeights { try? model.loadStateDictionary(best) }
                break
            }
        }
        progress.finish()
        return history
    }

    private var lastPredictions: [Int]?
    private var stopRequested: String?

    /// One step: forward (observed by the monitor), backward, guard, clip, step.
    private func trainStep(_ batch: Batch, epoch: Int) throws -> StepRecord {
        let logits = monitor.observeForward { model(batch.features) }
        let value = loss(logits, batch)
        lastPredictions = loss.usesLabels ? withoutGradients { logits.argmax() } : nil
        value.backward()
        let step = completedSteps
        var record = StepRecord(
            epoch: epoch, step: step, loss: value.scalar, gradientNorm: 0, learningRate: optimizer.learningRate, skipped: false, clipped: false)
        switch try monitor.inspectGradients(loss: value.scalar) {
        case .skip:
            record.skipped = true
            record.gradientNorm = .nan
            optimizer.zeroGradients()
            completedSteps += 1
            return record
        case .stop(let parameter):
            record.skipped = true
            record.gradientNorm = .nan
            optimizer.zeroGradients()
            stopRequested = "non-finite gradient in '\(parameter)' at step \(step)"
            completedSteps += 1
            return record
        case .step:
            break
        }
        monitor.willStep()
        switch options.clipping {
        case .norm(let maxNorm)?:
            record.gradientNorm = optimizer.step(clippingGradientNorm: maxNorm)
            record.clipped = clipCoefficient(total: record.gradientNorm, maxNorm: maxNorm) < 1
        case .value(let value)?:
            record.gradientNorm = monitor.lastGradientNorm
            record.clipped = gradientNorm(optimizer.parameters, normType: .infinity) > value
            clipGradientValue(optimizer.parameters, clipValue: value)
            optimizer.step()
        case .perTensor(let maxNorm)?:
            record.gradientNorm = monitor.lastGradientNorm
            record.clipped = clipGradientNormPerTensor(optimizer.parameters, maxNorm: maxNorm) > 0
            optimizer.step()
        case .adaptive(let factor, let epsilon)?:
            record.gradientNorm = monitor.lastGradientNorm
            record.clipped = adaptiveClipGradients(optimizer.parameters, clipFactor: factor, epsilon: epsilon) > 0
            optimizer.step()
        case nil:
            record.gradientNorm = monitor.lastGradientNorm
            optimizer.step()
        }
        monitor.didStep()
        optimizer.zeroGradients()
        completedSteps += 1
        return record
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

    /// The state to resume from: model, optimizer, counters and the dropout
    /// generators. Take it between epochs: after ``fit(_:validation:)``
    /// returns, or in ``onEpoch``.
    public func checkpoint(configuration: [String: String] = [:]) -> Checkpoint {
        var random: [String: [UInt64]] = [:]
        for (path, dropout) in dropoutLayers() { random["dropout:\(path)"] = dropout.generatorState }
        var config = configuration
        config["trainer.bestLoss"] = "\(bestLoss)"
        config["trainer.epochsWithoutImprovement"] = "\(epochsWithoutImprovement)"
        return Checkpoint(
            model: model.stateDictionary(), optimizer: optimizer.exportState(), step: completedSteps, epoch: completedEpochs,
            randomState: random, configuration: config)
    }

    /// Restores a checkpoint made by ``checkpoint(configuration:)``; the next
    /// ``fit(_:validation:)`` continues from its epoch.
    /// - Throws: ``CheckpointError`` or ``OptimizerStateError``; nothing is changed then
    ///   (the model is put back when the optimizer state does not fit).
    public func restore(_ checkpoint: Checkpoint, file: String = "checkpoint") throws {
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
        bestLoss = checkpoint.configuration["trainer.bestLoss"].flatMap(Float.init) ?? .infinity
        // Bounded like the checkpoint's counts, so that counting on cannot overflow.
        epochsWithoutImprovement = checkpoint.configuration["trainer.epochsWithoutImprovement"].flatMap(Int.init)
            .map { Swift.min(Swift.max($0, 0), Checkpoint.countLimit - 1) } ?? 0
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

/// Appends JSON objects, one per line.
struct JSONLinesLog {
    private var file: UnsafeMutablePointer<FILE>?

    init(path: String) { file = fopen(path, "a") }

    mutating func write(_ object: [String: JSON]) {
        guard let file else { return }
        fputs(JSON.object(object).text + "\n", file)
    }

    mutating func close() {
        if let file { fclose(file) }
        file = nil
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
        line += ", lr \(scientific(record.learningRate)), \(fixed(Float(record.seconds)))s"
        print((live ? "\r" : "") + line + (live ? "                    " : ""))
        fflush(nil)
    }

    func finish() { fflush(nil) }
}

/// A fraction as a percentage with two decimals: 0.97214 → "97.21%".
package func percent(_ fraction: Float) -> String {
    guard fraction.isFinite else { return "\(fraction)" }
    let hundredths = Int((Double(fraction) * 10000).rounded())
    let decimals = hundredths % 100
    return "\(hundredths / 100).\(decimals < 10 ? "0" : "")\(decimals)%"
}

/// Four decimals at most, without exponent for moderate values.
package func fixed(_ value: Float) -> String {
    guard value.isFinite else { return "\(value)" }
    if value != 0 && (Swift.abs(value) < 1e-3 || Swift.abs(value) >= 1e6) { return scientific(value) }
    let scaled = (Double(value) * 10000).rounded() / 10000
    var text = "\(scaled)"
    if text.hasSuffix(".0") { text.removeLast(2) }
    return text
}


extension Duration {
    /// The duration in seconds.
    var seconds: Double { Double(components.seconds) + Double(components.attoseconds) * 1e-18 }
}
