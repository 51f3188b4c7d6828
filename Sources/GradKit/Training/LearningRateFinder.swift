// GradKit — the learning-rate range test (fastai's exponential form of Smith, 2017). SPDX-License-Identifier: MIT
#if canImport(Glibc)
import Glibc
#endif

/// The learning-rate range test (L. N. Smith, "Cyclical Learning Rates for
/// Training Neural Networks", 2017; the form popularized by fastai): train
/// for a few steps while the learning rate grows exponentially from `start`
/// to `end`, record the loss, stop once it diverges, and suggest the rate
/// where the loss falls fastest.
///
/// ```
/// lr_i   = start · (end / start)^(i / (steps − 1))
/// avg_i  = β · avg_{i−1} + (1 − β) · loss_i,   run_i = avg_i / (1 − β^(i+1))   (β = 0.98 by default)
/// stop when run_i > divergenceFactor · min_j run_j, or a loss is not finite
/// smooth = the losses under a centered moving average over ±max(1, n/20) steps (no lag)
/// suggestion = the lr_i with the most negative slope d smooth / d ln lr (central differences),
///              between a tenth of the way in and the minimum of smooth
/// ```
/// The model's parameters and buffers and the optimizer's state are put back
/// afterwards, so the test leaves nothing behind.
public struct LearningRateFinder {
    /// What the test measured.
    public struct Result: Sendable {
        /// The rate of each step taken, rising exponentially from ``LearningRateFinder/start``.
        public var learningRates: [Float]
        /// The raw loss of each step taken.
        public var losses: [Float]
        /// The losses under a centered moving average (over ±5% of the steps):
        /// what the suggestion is read from.
        public var smoothedLosses: [Float]
        /// The rate where the smoothed loss falls fastest; nil when the loss never fell.
        public var suggestion: Float?
        /// The rate at the smoothed loss's minimum.
        public var minimumLossRate: Float
        /// Why the test ended before `steps` steps, if it did.
        public var stoppedEarly: String?
    }

    /// The first learning rate (default 1e-6).
    public var start: Float
    /// The last learning rate, reached at the final step (default 10).
    public var end: Float
    /// Steps from `start` to `end` at most (default 100).
    public var steps: Int
    /// β of the bias-corrected exponential average that detects divergence (default 0.98).
    public var smoothing: Float
    /// The test stops once the running loss exceeds this multiple of its minimum (default 4).
    public var divergenceFactor: Float
    /// Examples per training batch (default 32).
    public var batchSize: Int
    /// Seeds the shuffling of the batches (default 0).
    public var seed: UInt64

    /// A range test with fastai's defaults: 100 steps from 1e-6 to 10, β 0.98, stop at 4 times the minimum.
    ///
    /// - Parameters:
    ///   - start: the first learning rate.
    ///   - end: the last learning rate.
    ///   - steps: steps from `start` to `end` at most.
    ///   - smoothing: β of the running loss that detects divergence.
    ///   - divergenceFactor: the multiple of the minimum running loss that stops the test.
    ///   - batchSize: examples per batch.
    ///   - seed: seeds the shuffling of the batches.
    /// - Precondition: `0 < start < end`, `steps >= 3`, `0 <= smoothing < 1`, `divergenceFactor > 1`, `batchSize > 0`.
    public init(start: Float = 1e-6, end: Float = 10, steps: Int = 100, smoothing: Float = 0.98, divergenceFactor: Float = 4,
                batchSize: Int = 32, seed: UInt64 = 0) {
        precondition(start > 0 && end > start, "LearningRateFinder: need 0 < start < end, got \(start) and \(end)")
        precondition(steps >= 3, "LearningRateFinder: steps must be >= 3, got \(steps)")
        precondition(smoothing >= 0 && smoothing < 1, "LearningRateFinder: smoothing must be in [0, 1), got \(smoothing)")
        precondition(divergenceFactor > 1, "LearningRateFinder: divergenceFactor must be > 1, got \(divergenceFactor)")
        precondition(batchSize > 0, "LearningRateFinder: batchSize must be > 0, got \(batchSize)")
        self.start = start
        self.end = end
        self.steps = steps
        self.smoothing = smoothing
        self.divergenceFactor = divergenceFactor
        self.batchSize = batchSize
        self.seed = seed
    }

    /// Runs the test on `data` and restores `model` and `optimizer`.
    /// - Throws: ``DataError`` or ``TrainingError`` when the data does not fit the model or the loss.
    public func run(model: any Layer, optimizer: Optimizer, loss: LossFunction, data: Dataset) throws -> Result {
        if let width = model.inputWidth, width != data.featureCount { throw DataError.widthMismatch(dataset: data.featureCount, model: width) }
        if loss.usesLabels != (data.labels != nil) { throw TrainingError.missingTargets("the loss and the data set's targets do not match") }
        let savedModel = model.stateDictionary(), savedOptimizer = optimizer.exportState()
        let wasTraining = model.isTraining
        defer {
            try? model.loadStateDictionary(savedModel)
            try? optimizer.restoreState(savedOptimizer) // every group's values too
            model.isTraining = wasTraining
        }
        model.isTraining = true
        var generator: SeededGenerator? = SeededGenerator(seed: seed)
        var batches: [Batch] = []
        var result = Result(learningRates: [], losses: [], smoothedLosses: [], suggestion: nil, minimumLossRate: start, stoppedEarly: nil)
        var average = 0.0, best = Double.infinity
        let ratio = Double(end) / Double(start)
        for i in 0..<steps {
            if batches.isEmpty { batches = data.batches(size: batchSize, shuffledBy: &generator).reversed() }
            let batch = batches.removeLast()
            let rate = Float(Double(start) * pow(ratio, Double(i) / Double(steps - 1)))
            optimizer.learningRate = rate
            optimizer.zeroGradients()
            let value = loss(model(batch.features), batch)
            let scalar = Double(value.scalar)
            guard scalar.isFinite else {
                result.stoppedEarly = "the loss became \(value.scalar) at learning rate \(scientific(rate))"
                break
            }
            value.backward()
            guard nonFiniteGradients(optimizer.parameters).isEmpty else {
                result.stoppedEarly = "a gradient became non-finite at learning rate \(scientific(rate))"
                optimizer.zeroGradients()
                break
            }
            optimizer.step()
            average = Double(smoothing) * average + (1 - Double(smoothing)) * scalar
            let smooth = average / (1 - pow(Double(smoothing), Double(i + 1)))
            result.learningRates.append(rate)
            result.losses.append(Float(scalar))
            best = Swift.min(best, smooth)
            if i > 0, smooth > Double(divergenceFactor) * best {
                result.stoppedEarly = "the smoothed loss passed \(fixed(divergenceFactor))x its minimum at learning rate \(scientific(rate))"
                break
            }
        }
        optimizer.zeroGradients()
        result.smoothedLosses = LearningRateFinder.centeredAverage(result.losses).map(Float.init)
        if let minimum = result.smoothedLosses.indices.min(by: { result.smoothedLosses[$0] < result.smoothedLosses[$1] }) {
            result.minimumLossRate = result.learningRates[minimum]
        }
        result.suggestion = LearningRateFinder.steepestDescent(result)
        return result
    }

    /// A centered moving average over ±max(1, n/20) points (no lag).
    static func centeredAverage(_ losses: [Float]) -> [Double] {
        let n = losses.count, half = Swift.max(1, n / 20)
        return (0..<n).map { i in
            let window = losses[Swift.max(0, i - half)...Swift.min(n - 1, i + half)]
            return window.reduce(0.0) { $0 + Double($1) } / Double(window.count)
        }
    }

    /// The rate of the most negative slope of the smoothed loss against
    /// ln(rate) (central differences), searched from a tenth of the way in
    /// (the first steps are mostly noise) up to the smoothed minimum.
    static func steepestDescent(_ result: Result) -> Float? {
        let n = result.smoothedLosses.count
        guard n >= 5, let minimum = result.smoothedLosses.indices.min(by: { result.smoothedLosses[$0] < result.smoothedLosses[$1] }) else {
            return nil
        }
        let first = Swift.max(1, n / 10)
        guard minimum > first else { return nil }
        var best: (slope: Double, index: Int)?
        for i in first..<minimum {
            let dy = Double(result.smoothedLosses[i + 1]) - Double(result.smoothedLosses[i - 1])
            let dx = log(Double(result.learningRates[i + 1])) - log(Double(result.learningRates[i - 1]))
            let slope = dy / dx
            if slope < 0, best.map({ slope < $0.slope }) ?? true { best = (slope, i) }
        }
        return best.map { result.learningRates[$0.index] }
    }
}
