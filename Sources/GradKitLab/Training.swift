// GradKitLab — one trial: a configuration trained at one seed and rate, and what the analysis reads from it. SPDX-License-Identifier: MIT
#if canImport(Glibc)
import Glibc
#endif
import GradKit

/// One configuration trained (or computed) at one seed and learning rate.
struct Trial: Sendable {
    /// The grid point it ran at (nil for a configuration without learning rates).
    var learningRate: Float?
    /// The metric on the test data at the selected epoch (NaN when no epoch finished).
    var score = Double.nan
    /// The metric on the validation data at the selected epoch: what selects
    /// the epoch, and across the grid the learning rate.
    var validationScore = Double.nan
    /// The epoch (1-based) with the best validation score.
    var selectedEpoch: Int?
    /// Per epoch: the mean training loss and the metric on the validation and test data.
    var trainingLoss: [Double] = []
    var validation: [Double] = []
    var test: [Double] = []
    /// Per epoch, the metric on the fitting data (when ``TrainingPlan/scoresFitData`` asked for it).
    var fitted: [Double] = []
    /// Every step's loss and global gradient norm before clipping.
    var stepLoss: [Double] = []
    var stepGradientNorm: [Double] = []
    /// Steps in which clipping changed the gradients.
    var clippedSteps = 0
    /// The step (0-based) whose gradient was NaN or infinite; training stopped there.
    var stoppedAtStep: Int?
    /// Per monitored layer (from the input), its gradient norm and its
    /// update-to-weight ratio ‖Δw‖/‖w‖ at each sampled step.
    var layerGradientNorms: [[Double]] = []
    var layerUpdateRatios: [[Double]] = []
    /// Experiment-specific numbers and curves, by name.
    var values: [String: Double] = [:]
    var curves: [String: [Double]] = [:]

    /// Training hit a non-finite gradient.
    var diverged: Bool { stoppedAtStep != nil }

    /// Picks the epoch with the best validation score (the first of equals)
    /// and takes its scores.
    mutating func selectEpoch(_ metric: Metric) {
        var best: Int?
        for (i, v) in validation.enumerated() where best.map({ metric.isBetter(v, than: validation[$0]) }) ?? v.isFinite {
            best = i
        }
        selectedEpoch = best.map { $0 + 1 }
        validationScore = best.map { validation[$0] } ?? .nan
        score = best.map { test[$0] } ?? .nan
    }

    /// The geometric mean over the run of layer `layer`'s gradient norm (1-based, from the input).
    func meanGradientNorm(layer: Int) -> Double { geometricMean(layerGradientNorms[layer - 1]) }

    /// The geometric mean over the run of layer `layer`'s update-to-weight ratio.
    func meanUpdateRatio(layer: Int) -> Double { geometricMean(layerUpdateRatios[layer - 1]) }

    /// First-layer over last-layer gradient norm, each averaged geometrically over the run.
    var firstToLastRatio: Double { meanGradientNorm(layer: 1) / meanGradientNorm(layer: layerGradientNorms.count) }
}

/// The data one trial sees: the model is fitted on `fit`, epochs and learning
/// rates are chosen on `validation`, and the score is read on `test`.
struct SplitData: Sendable {
    var fit: Dataset
    var validation: Dataset
    var test: Dataset
}

/// Everything ``train(_:)`` needs besides the model and optimizer.
struct TrainingPlan {
    var data: SplitData
    var metric: Metric
    var loss: LossFunction = .softmaxCrossEntropy
    var epochs: Int
    var batchSize = 32
    var clipping: GradientClipping? = nil
    var seed: RunSeed
    /// Per-layer statistics every this many steps (the non-finite guard runs every step).
    var sampleEvery = 1
    /// Also evaluate the fitting data after every epoch (``Trial/fitted``).
    var scoresFitData = false
    /// Scales the loss (``Trainer/lossScaler``); the monitor then skips a
    /// step with a non-finite gradient, which is the scaler's signal to back
    /// off, instead of stopping the run.
    var lossScaler: LossScaler? = nil
}

/// Trains `model`, evaluating on the validation and test data after every
/// epoch, with a monitor that stops at the first non-finite gradient; the
/// selected epoch is the one with the best validation score. `observe` sees
/// every step.
func train(
    _ model: any Layer, optimizer: Optimizer, _ plan: TrainingPlan, observe: ((Trainer, StepRecord) -> Void)? = nil
) -> Trial {
    var trial = Trial(learningRate: optimizer.learningRate)
    let monitor = GradientMonitor(model: model, policy: plan.lossScaler == nil ? .stop : .skip, sampleEvery: plan.sampleEvery)
    let trainer = Trainer(
        model: model, optimizer: optimizer, loss: plan.loss,
        options: TrainingOptions(
            epochs: plan.epochs, batchSize: plan.batchSize, seed: plan.seed.shuffling, dropsLastBatch: true, clipping: plan.clipping,
            progress: .silent),
        monitor: monitor)
    trainer.lossScaler = plan.lossScaler
    trainer.onStep = { record in
        trial.stepLoss.append(Double(record.loss))
        trial.stepGradientNorm.append(Double(record.gradientNorm))
        if record.clipped { trial.clippedSteps += 1 }
        if record.skipped, monitor.policy == .stop, trial.stoppedAtStep == nil { trial.stoppedAtStep = record.step }
        observe?(trainer, record)
    }
    trainer.onEpoch = { record in
        trial.trainingLoss.append(Double(record.loss))
        let validation = trainer.evaluate(plan.data.validation), test = trainer.evaluate(plan.data.test)
        trial.validation.append(plan.metric.measure(validation.loss, validation.accuracy))
        trial.test.append(plan.metric.measure(test.loss, test.accuracy))
        if plan.scoresFitData {
            let fitted = trainer.evaluate(plan.data.fit)
            trial.fitted.append(plan.metric.measure(fitted.loss, fitted.accuracy))
        }
        return .proceed
    }
    do {
        try trainer.fit(plan.data.fit)
    } catch {
        // The .stop policy never throws, and the lab's own data always fits its models.
        fatalError("lab: training failed: \(error)")
    }
    let samples = monitor.history.samples
    trial.layerGradientNorms = monitor.layerPaths.indices.map { layer in samples.map { Double($0.layers[layer].gradientNorm) } }
    trial.layerUpdateRatios = monitor.layerPaths.indices.map { layer in samples.map { Double($0.layers[layer].updateRatio ?? .nan) } }
    trial.selectEpoch(plan.metric)
    return trial
}

/// exp(mean(log x)) over the finite values; 0 when one of them is 0 (a
/// weight update too small to change a Float), NaN when there are none.
func geometricMean(_ values: [Double]) -> Double {
    let usable = values.filter { $0 >= 0 && $0.isFinite }
    guard !usable.isEmpty else { return .nan }
    if usable.contains(0) { return 0 }
    return exp(usable.reduce(0) { $0 + log($1) } / Double(usable.count))
}

/// The digits, split 80/20 into training and test parts and the training part
/// 80/20 again into fitting and validation parts (all stratified), then
/// standardized with the fitting part's statistics.
func digitsSplit(seed: RunSeed) -> SplitData {
    do {
        let parts = try Dataset.digits().split([0.8, 0.2], seed: seed.data, stratified: true)
        let training = try parts[0].split([0.8, 0.2], seed: seed.data &+ 1, stratified: true)
        let standardizer = Standardizer(fitting: training[0])
        // Fitted on the digits' own 0–16 pixels: no standardized value can overflow.
        return SplitData(
            fit: try standardizer.transform(training[0]), validation: try standardizer.transform(training[1]),
            test: try standardizer.transform(parts[1]))
    } catch {
        fatalError("lab: the embedded digits cannot be split: \(error)")
    }
}

/// "1,150 fitting, 288 validation and 359 test images": the digits split's sizes.
func sizes(_ plan: Plan) -> String {
    let split = digitsSplit(seed: RunSeed(value: plan.seeds[0]))
    return "\(grouped(split.fit.count)) fitting, \(grouped(split.validation.count)) validation and \(grouped(split.test.count)) test images"
}
