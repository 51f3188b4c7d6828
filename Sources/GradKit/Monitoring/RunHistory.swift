// GradKit — what a monitored run leaves behind: per-step and per-layer series, bounded. SPDX-License-Identifier: MIT

/// The diagnostics of one training run, as ``GradientMonitor/history`` keeps
/// them or as ``init(jsonLinesAt:maximumLength:)`` rebuilds them from a log:
/// the monitored layers, one record per step (loss, global gradient norm,
/// learning rate, skipped), and one sample per sampled step with each layer's
/// statistics.
///
/// Both series are bounded: each keeps every entry until it holds
/// `maximumLength` of them, then drops every other one and from then on keeps
/// only every second (fourth, ...) entry offered. ``stepStride`` and
/// ``sampleStride`` say how many steps (sampled steps) one kept entry stands for.
public struct RunHistory: Sendable {
    /// One monitored layer.
    public struct Layer: Sendable, Equatable {
        /// 1-based position among the monitored layers, from the input.
        public var index: Int
        /// The layer's path in the model (`"0"`, `"1.body.0"`).
        public var path: String
        /// The layer's type name (`"Linear"`).
        public var kind: String
        /// The activation that follows it (`"ReLU"`), if any.
        public var activation: String?

        /// A layer description.
        public init(index: Int, path: String, kind: String, activation: String?) {
            self.index = index
            self.path = path
            self.kind = kind
            self.activation = activation
        }
    }

    /// One training step.
    public struct Step: Sendable, Equatable {
        /// The step number (0-based).
        public var step: Int
        /// The loss (NaN when it was not finite or not recorded).
        public var loss: Float
        /// The global gradient norm before clipping (NaN or +∞ on a non-finite step).
        public var gradientNorm: Float
        /// The learning rate of the step, when known.
        public var learningRate: Float?
        /// The non-finite guard skipped the step.
        public var skipped: Bool

        /// A step record.
        public init(step: Int, loss: Float, gradientNorm: Float, learningRate: Float?, skipped: Bool) {
            self.step = step
            self.loss = loss
            self.gradientNorm = gradientNorm
            self.learningRate = learningRate
            self.skipped = skipped
        }
    }

    /// One layer's statistics at one sampled step; nil where not applicable or not measured.
    public struct LayerSample: Sendable, Equatable {
        /// The Euclidean norm of the layer's weight gradients (before clipping).
        public var gradientNorm: Float
        /// The norm of its weights after the step (nil until the monitor's `didStep` measured it).
        public var weightNorm: Float?
        /// ‖Δw‖/‖w‖ of the step.
        public var updateRatio: Float?
        /// The fraction of the following ReLU's units that output 0 for the whole batch.
        public var deadFraction: Float?
        /// The fraction of the following sigmoid's or tanh's outputs that are saturated.
        public var saturatedFraction: Float?
        /// The mean of the following activation's input.
        public var preactivationMean: Float?
        /// The standard deviation of the following activation's input.
        public var preactivationStandardDeviation: Float?
        /// The verdict at this step, when it was judged (a log records it at
        /// every sampled step; the monitor judges when asked).
        public var verdict: GradientMonitor.Verdict?
        /// The sentences behind the verdict (empty when healthy or not judged).
        public var evidence: [String]

        /// A layer sample.
        public init(
            gradientNorm: Float, weightNorm: Float? = nil, updateRatio: Float? = nil, deadFraction: Float? = nil,
            saturatedFraction: Float? = nil, preactivationMean: Float? = nil, preactivationStandardDeviation: Float? = nil,
            verdict: GradientMonitor.Verdict? = nil, evidence: [String] = []
        ) {
            self.gradientNorm = gradientNorm
            self.weightNorm = weightNorm
            self.updateRatio = updateRatio
            self.deadFraction = deadFraction
            self.saturatedFraction = saturatedFraction
            self.preactivationMean = preactivationMean
            self.preactivationStandardDeviation = preactivationStandardDeviation
            self.verdict = verdict
            self.evidence = evidence
        }
    }

    /// Every monitored layer's statistics at one sampled step.
    public struct Sample: Sendable, Equatable {
        /// The step number.
        public var step: Int
        /// One entry per monitored layer, in ``RunHistory/layers`` order.
        public var layers: [LayerSample]

        /// A sample.
        public init(step: Int, layers: [LayerSample]) {
            self.step = step
            self.layers = layers
        }
    }

    /// The monitored layers, from the input.
    public var layers: [Layer]
    /// Step records, decimated to at most the history's maximum length.
    public var steps: [Step] { stepSeries.elements }
    /// Samples of the sampled steps, decimated likewise.
    public var samples: [Sample] { sampleSeries.elements }
    /// Steps per kept entry of ``steps`` (1 until the series first filled).
    public var stepStride: Int { stepSeries.stride }
    /// Sampled steps per kept entry of ``samples``.
    public var sampleStride: Int { sampleSeries.stride }
    /// The most entries each series keeps.
    public var maximumLength: Int { stepSeries.capacity }
    /// The newest sample, whether ``samples`` kept it or not.
    public private(set) var latestSample: Sample?
    private var latestSampleIsKept = false
    /// Steps recorded, kept or not.
    public private(set) var stepCount = 0
    /// Steps recorded as skipped, kept or not.
    public private(set) var skippedStepCount = 0
    /// The 1-based numbers of the log lines ``init(parsing:maximumLength:)``
    /// skipped because they ended before their record did (empty for a
    /// history recorded in memory).
    public internal(set) var cutLines: [Int] = []
    /// The 1-based numbers of the log lines where ``init(parsing:maximumLength:)``
    /// found a restart: a record whose step is not above the step before it
    /// (a run resumed from an earlier checkpoint, or a new run appended to the
    /// same log). The records from that step on that came before it were
    /// dropped: the later run replaces them, as TensorBoard's `purge_step` does.
    public internal(set) var restartLines: [Int] = []

    var stepSeries: DecimatedSeries<Step>
    var sampleSeries: DecimatedSeries<Sample>

    /// An empty history of `layers`.
    /// - Precondition: `maximumLength` >= 2.
    public init(layers: [Layer], maximumLength: Int = 10_000) {
        precondition(maximumLength >= 2, "RunHistory: maximumLength must be >= 2, got \(maximumLength)")
        self.layers = layers
        stepSeries = DecimatedSeries(capacity: maximumLength)
        sampleSeries = DecimatedSeries(capacity: maximumLength)
    }

    /// Records a step (kept or dropped by the decimation).
    public mutating func append(_ step: Step) {
        stepCount += 1
        if step.skipped { skippedStepCount += 1 }
        stepSeries.offer(step)
    }

    /// Records a sampled step; it becomes ``latestSample``.
    /// - Returns: whether the sample is kept (it is then the last of ``samples``).
    /// - Precondition: it has one entry per layer.
    @discardableResult
    public mutating func append(_ sample: Sample) -> Bool {
        precondition(sample.layers.count == layers.count, "RunHistory: a sample has \(sample.layers.count) layers, the history \(layers.count)")
        latestSample = sample
        latestSampleIsKept = sampleSeries.offer(sample)
        return latestSampleIsKept
    }

    /// Drops the steps and samples from `step` on, leaving `stepCount` steps
    /// recorded (`skippedStepCount` of them skipped): a log's restart.
    mutating func dropRecords(fromStep step: Int, stepCount: Int, skippedStepCount: Int) {
        stepSeries.removeTrailing { $0.step >= step }
        sampleSeries.removeTrailing { $0.step >= step }
        if let latest = latestSample, latest.step >= step {
            latestSample = sampleSeries.elements.last
            latestSampleIsKept = latestSample != nil
        }
        self.stepCount = stepCount
        self.skippedStepCount = skippedStepCount
    }

    /// Replaces ``latestSample`` (and its kept copy): the monitor completes a
    /// sample after the optimizer step and when it judges it.
    mutating func updateLatestSample(_ sample: Sample) {
        latestSample = sample
        if latestSampleIsKept { sampleSeries.replaceLast(with: sample) }
    }

    /// One layer's values over the kept samples (NaN where a value is nil).
    public func series(layer: Int, _ value: KeyPath<LayerSample, Float?>) -> [Float] {
        samples.map { $0.layers[layer][keyPath: value] ?? .nan }
    }

    /// One layer's gradient norm over the kept samples.
    public func gradientNorms(layer: Int) -> [Float] { samples.map { $0.layers[layer].gradientNorm } }
}

/// A series that keeps at most `capacity` entries of an unbounded stream:
/// every entry until it is full, then every other one is dropped and only
/// every `stride`-th entry offered is kept, `stride` doubling each time it fills.
struct DecimatedSeries<Element: Sendable>: Sendable {
    private(set) var elements: [Element] = []
    /// Offers per kept entry.
    private(set) var stride = 1
    let capacity: Int
    private var offersSinceKept = 0

    init(capacity: Int) { self.capacity = capacity }

    /// Offers the next entry.
    /// - Returns: whether it was kept (it is then the last element).
    @discardableResult
    mutating func offer(_ element: Element) -> Bool {
        offersSinceKept += 1
        guard offersSinceKept >= stride else { return false }
        offersSinceKept = 0
        elements.append(element)
        guard elements.count >= capacity else { return true }
        // Keep the odd positions: the newest entry survives when the count is even. When it
        // does not, the newest kept one is `stride` offers old, and the next is due in `stride`.
        let survives = elements.count % 2 == 0
        elements = elements.indices.filter { $0 % 2 == 1 }.map { elements[$0] }
        offersSinceKept = survives ? 0 : stride
        stride *= 2
        return survives
    }

    /// Removes the kept entries at the end that `isDropped` holds for; the
    /// next entry offered is kept.
    mutating func removeTrailing(where isDropped: (Element) -> Bool) {
        while let last = elements.last, isDropped(last) { elements.removeLast() }
        offersSinceKept = stride - 1
    }

    mutating func replaceLast(with element: Element) {
        guard !elements.isEmpty else { return }
        elements[elements.count - 1] = element
    }
}
