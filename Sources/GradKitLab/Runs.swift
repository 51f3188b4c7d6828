// GradKitLab — training one configuration and recording what the report needs. SPDX-License-Identifier: MIT
#if canImport(Glibc)
import Glibc
#endif
import GradKit

/// One configuration, trained and measured.
struct Run {
    var name: String
    /// Mean training loss of each epoch (NaN for an epoch that diverged).
    var epochLoss: [Double] = []
    /// Test accuracy after each epoch (classification) — NaN for regression.
    var testAccuracy: [Double] = []
    /// Test loss after each epoch.
    var testLoss: [Double] = []
    /// Every step's loss and global gradient norm (before clipping).
    var stepLoss: [Double] = []
    var stepGradientNorm: [Double] = []
    /// Steps in which clipping changed the gradients.
    var clippedSteps = 0
    /// Each monitored layer's gradient norm at each step: layerNorms[layer][step].
    var layerNorms: [[Double]] = []
    var report: GradientMonitor.Report?
    /// The step at which a non-finite gradient stopped training.
    var stoppedAtStep: Int?
    var seconds = 0.0

    /// Training produced NaN/∞ or the loss ended above 10x where it started.
    var diverged: Bool {
        if stoppedAtStep != nil { return true }
        guard let first = stepLoss.first, let last = epochLoss.last else { return false }
        return !last.isFinite || last > 10 * first
    }

    var finalAccuracy: Double { testAccuracy.last ?? .nan }
    var finalTestLoss: Double { testLoss.last ?? .nan }

    /// Geometric mean of a layer's gradient norm over the run (positive, finite steps).
    func meanNorm(layer: Int) -> Double { geometricMean(layerNorms[layer]) }
}

/// exp(mean(log x)) over the positive finite values; NaN when there are none.
func geometricMean(_ values: [Double]) -> Double {
    let usable = values.filter { $0 > 0 && $0.isFinite }
    guard !usable.isEmpty else { return .nan }
    return exp(usable.reduce(0) { $0 + log($1) } / Double(usable.count))
}

/// Trains `model` on `train`, evaluating on `test` after every epoch, with a
/// monitor that samples every step and stops at the first non-finite gradient.
func train(
    _ name: String, model: any Layer, optimizer: Optimizer, loss: LossFunction = .softmaxCrossEntropy, train: Dataset, test: Dataset,
    epochs: Int, batchSize: Int = 32, clipping: GradientClipping? = nil, seed: UInt64,
    schedule: ScheduledLearningRate? = nil,
    observe: ((Trainer, StepRecord) -> Void)? = nil
) -> Run {
    var run = Run(name: name)
    let monitor = GradientMonitor(model: model, policy: .stop, sampleEvery: 1)
    let trainer = Trainer(
        model: model, optimizer: optimizer, loss: loss,
        options: TrainingOptions(
            epochs: epochs, batchSize: batchSize, seed: seed, dropsLastBatch: true, clipping: clipping, schedule: schedule,
            progress: .silent),
        monitor: monitor)
    trainer.onStep = { record in
        run.stepLoss.append(Double(record.loss))
        run.stepGradientNorm.append(Double(record.gradientNorm))
        if record.clipped { run.clippedSteps += 1 }
        if record.skipped, run.stoppedAtStep == nil { run.stoppedAtStep = record.step }
        observe?(trainer, record)
    }
    trainer.onEpoch = { record in
        run.epochLoss.append(Double(record.loss))
        let evaluation = trainer.evaluate(test)
        run.testLoss.append(Double(evaluation.loss))
        run.testAccuracy.append(evaluation.accuracy.map(Double.init) ?? .nan)
        return .proceed
    }
    let clock = ContinuousClock()
    let started = clock.now
    do {
        let history = try trainer.fit(train)
        if history.stoppedEarly != nil, run.stoppedAtStep != nil {
            // The epoch that hit NaN: its loss is not finite.
            run.epochLoss.append(.nan)
            run.testLoss.append(.nan)
            run.testAccuracy.append(.nan)
        }
    } catch {
        // .stop never throws; data errors cannot happen on the lab's own data.
        preconditionFailure("lab: \(name): \(error)")
    }
    run.seconds = seconds(started.duration(to: clock.now))
    run.layerNorms = monitor.gradientNormHistory.map { $0.map(Double.init) }
    run.report = monitor.report
    return run
}

/// The digits, standardized with the training part's statistics, split 80/20 (stratified).
func digitsSplit(seed: UInt64) -> (train: Dataset, test: Dataset) {
    let parts = try! Dataset.digits().split([0.8, 0.2], seed: seed, stratified: true)
    let standardizer = Standardizer(fitting: parts[0])
    // Fitted on the digits' own 0–16 pixels: no standardized value can overflow.
    return (try! standardizer.transform(parts[0]), try! standardizer.transform(parts[1]))
}

/// Steps on the x axis: 1, 2, ...
func stepSeries(_ name: String, _ values: [Double], dashed: Bool = false) -> Series { Series(name, values: values, dashed: dashed) }

/// A trailing moving average over `window` steps (single steps are noisy);
/// non-finite values pass through so divergence stays visible.
func smoothed(_ values: [Double], window: Int) -> [Double] {
    values.indices.map { i in
        guard values[i].isFinite else { return values[i] }
        let recent = values[Swift.max(0, i - window + 1)...i].filter(\.isFinite)
        return recent.reduce(0, +) / Double(recent.count)
    }
}

/// A trailing geometric moving average (for norms that span decades); values
/// that are not positive and finite pass through.
func smoothedLog(_ values: [Double], window: Int) -> [Double] {
    let logs = values.map { $0 > 0 && $0.isFinite ? log($0) : Double.nan }
    return zip(values, smoothed(logs, window: window)).map { v, l in v > 0 && v.isFinite ? exp(l) : v }
}
