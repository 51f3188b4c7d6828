// GradKit — the gradient-health monitor. SPDX-License-Identifier: MIT
#if canImport(Glibc)
import Glibc
#endif

/// Watches every layer's gradients and activations during training and says,
/// with evidence, whether they are healthy, vanishing, exploding, dead or
/// saturated — and keeps a NaN or infinity from ever reaching the weights.
///
/// Use it around each training step:
/// ```swift
/// let monitor = GradientMonitor(model: model)
/// let loss = monitor.observeForward { softmaxCrossEntropy(logits: model(x), labels: y) }
/// loss.backward()
/// switch try monitor.inspectGradients(loss: loss.scalar, learningRate: optimizer.learningRate) {
/// case .step:
///     monitor.willStep(); optimizer.step(); monitor.didStep()
/// case .skip, .stop:
///     optimizer.zeroGradients()        // parameters and optimizer state untouched
/// }
/// print(monitor.report)
/// try monitor.writeReport(to: "report")   // report.md and figures/*.svg
/// ```
/// (``Trainer`` does this for you.)
///
/// **History**: ``history`` keeps every step's loss, global gradient norm and
/// learning rate, and every sampled step's per-layer statistics, each series
/// bounded by ``maximumHistoryLength``; ``writeReport(to:)`` draws it,
/// ``layersLogLine(step:)`` writes a sampled step to a JSON-lines log, and
/// ``TensorBoardWriter/addSampledStep(of:step:loss:accuracy:learningRate:)`` to TensorBoard.
///
/// **Per layer** (each layer with ``Layer/monitoredWeights`` — `Linear`, `RNN`,
/// a layer of your own with weight matrices — numbered from the input): the norm
/// of its weight gradients, the norm of its weights, the update-to-weight
/// ratio ‖Δw‖/‖w‖ of the last step, and for the activation that follows it the
/// pre-activation mean and spread, the fraction of saturated sigmoid/tanh
/// outputs and the fraction of dead ReLU units (silent for the whole batch),
/// collected through forward hooks on the activation layers
/// (``Layer/activationFunction``) during ``observeForward(_:)``.
///
/// **Verdicts**, on geometric means over the recent steps, comparing each
/// layer's gradient norm g_i with the output layer's g_L (gradients flow from
/// the output back to the input, so a problem shows as a trend toward layer 1):
/// - *exploding*: g_i / g_L > ``Thresholds/explodingRatio``, or g_i above
///   ``Thresholds/explodingNorm`` times max(1, ‖w_i‖), or updates larger than
///   ``Thresholds/largeUpdateRatio`` of the weights per step;
/// - *vanishing*: g_i / g_L < ``Thresholds/vanishingRatio``;
/// - *dead*: at least ``Thresholds/deadFraction`` of the following ReLU's units are dead;
/// - *saturated*: at least ``Thresholds/saturatedFraction`` of the following sigmoid/tanh
///   outputs are saturated;
/// - *non-finite*: NaN or ±∞ appeared in its gradients or its weights;
/// - *frozen*: its weights do not require gradients (no other verdict applies);
/// - otherwise *healthy*.
///
/// A layer whose gradient is exactly zero at every recent sample is vanishing,
/// and one whose weight norm grew by ``Thresholds/weightGrowth`` since it was
/// first measured is exploding, whatever the other layers do.
///
/// When several apply, the verdict is the first of non-finite, exploding,
/// dead, saturated, vanishing (a cause before its symptom: dead ReLUs make the
/// gradients below them vanish); the evidence lists them all.
///
/// **Non-finite guard**: ``inspectGradients(loss:)`` names the first parameter
/// (in model order) whose gradient holds NaN or ±∞ and, by policy, asks to
/// skip the step (parameters and optimizer state stay exactly as they were),
/// to stop, or throws. Consecutive skips are counted.
public final class GradientMonitor {
    /// The model observed.
    public let model: any Layer
    /// What ``inspectGradients(loss:)`` does about a non-finite gradient.
    public let policy: NonFinitePolicy
    /// The limits behind the verdicts; may be changed at any time.
    public var thresholds: Thresholds
    /// Statistics are collected on every `sampleEvery`-th step (the guard runs every step).
    public let sampleEvery: Int
    /// Steps that verdicts average over.
    public let window: Int

    /// Gradient norms per monitored layer, one entry per kept sample of
    /// ``history`` (for plots): every sampled step, until ``maximumHistoryLength``
    /// samples; then every other sample is dropped and only every
    /// ``historyStride``-th sampled step is recorded, so memory stays bounded on long runs.
    public var gradientNormHistory: [[Float]] { units.indices.map { recorded.gradientNorms(layer: $0) } }
    /// Sampled steps per entry of ``gradientNormHistory`` (1 until it first fills).
    public var historyStride: Int { recorded.sampleStride }
    /// The most entries each series of ``history`` keeps.
    public let maximumHistoryLength: Int
    /// Steps inspected so far.
    public private(set) var stepsObserved = 0
    /// Steps whose gradients were not finite.
    public private(set) var skippedSteps = 0
    /// Non-finite steps in a row up to the last inspected one.
    public private(set) var consecutiveSkips = 0
    /// The parameter named by the last non-finite step, if any.
    public private(set) var lastNonFinite: String?

    /// One monitored layer.
    private struct Unit {
        var path: String
        var kind: String
        /// Indices of its weights in `parameters`.
        var weights: [Int]
        /// Where its weights start in `snapshot`.
        var snapshotOffset = 0
        /// The activation layer that follows it, and its function.
        var activation: (layer: any Layer, function: Activation)?
        var updateHistory: [Float] = []
        var weightNorm: Float = 0
        var initialWeightNorm: Float?
        var weightsAreFinite = true
        var statistics: ActivationStatistics?
        var sawNonFinite = false
        /// Recent gradient norms (the verdict window), kept apart from the decimated history.
        var recentNorms: [Float] = []
    }

    /// The model's parameters, in order.
    private let parameters: [Parameter]
    /// The hooks on activation layers, and whether they record now.
    private var activationHooks: [HookHandle] = []
    private var isCollecting = false
    private var units: [Unit]
    private var sampling: Bool { stepsObserved % sampleEvery == 0 }
    /// The series behind ``history``; its latest sample is completed by
    /// didStep (weights) and by judging it (verdicts).
    private var recorded: RunHistory
    /// Whether the step just inspected was sampled with finite gradients.
    private var lastStepWasSampled = false
    /// Per layer, the histogram of its weight gradients at the latest sampled
    /// step, when ``capturesGradientHistograms`` is set.
    public private(set) var gradientHistograms: [TensorBoardHistogram?]
    /// Build ``gradientHistograms`` on sampled steps (one pass over the
    /// monitored weights' gradients, before clipping), for
    /// ``TensorBoardWriter/addSampledStep(of:step:loss:accuracy:learningRate:)``.
    public var capturesGradientHistograms = false
    /// Scratch for the guard pass: gradient segments, their parameters, sums of squares.
    private var segments: [ConstFloatPointer] = []
    private var lengths: [Int] = []
    private var owners: [Int] = []
    private var partials: [Double] = []
    /// Each parameter's sum of squared gradients at the last inspection (0 without a gradient).
    private var squares: [Double] = []
    /// The monitored weights before the step, for the update ratio.
    private let snapshot: UnsafeMutableBufferPointer<Float>
    private var snapshotTaken = false
    /// The snapshot holds the weights as of `snapshotVersions` (see Parameter.valueVersion).
    private var snapshotIsCurrent = false
    private var snapshotVersions: [UInt64] = []
    /// Indices in `parameters` of every monitored weight, in snapshot order.
    private let monitoredWeights: [Int]

    /// The global Euclidean norm of the gradients at the last
    /// ``inspectGradients(loss:)`` (NaN or +∞ when they were not finite).
    public private(set) var lastGradientNorm: Float = .nan

    /// Watches `model`: its layers with ``Layer/monitoredWeights`` are judged,
    /// each with the activation layer that follows it.
    /// - Parameters:
    ///   - policy: what a non-finite gradient does (default: skip the step).
    ///   - sampleEvery: statistics every this many steps (the guard runs every step).
    ///   - window: sampled steps the verdicts average over.
    ///   - maximumHistoryLength: entries of ``gradientNormHistory`` kept per layer (at least 2).
    /// - Precondition: `sampleEvery`, `window` >= 1; `maximumHistoryLength` >= 2.
    public init(
        model: any Layer, policy: NonFinitePolicy = .skip, thresholds: Thresholds = Thresholds(), sampleEvery: Int = 1,
        window: Int = 20, maximumHistoryLength: Int = 10_000
    ) {
        precondition(sampleEvery >= 1 && window >= 1, "GradientMonitor: sampleEvery and window must be >= 1")
        precondition(maximumHistoryLength >= 2, "GradientMonitor: maximumHistoryLength must be >= 2")
        self.model = model
        self.policy = policy
        self.thresholds = thresholds
        self.sampleEvery = sampleEvery
        self.window = window
        self.maximumHistoryLength = maximumHistoryLength
        let parameters = model.parameters
        self.parameters = parameters
        var index: [ObjectIdentifier: Int] = [:]
        for (i, p) in parameters.enumerated() { index[ObjectIdentifier(p)] = i }
        var found: [Unit] = []
        func visit(_ layer: any Layer, _ path: String) {
            let weights = layer.monitoredWeights.compactMap { index[ObjectIdentifier($0)] }
            if !weights.isEmpty {
                found.append(Unit(path: path, kind: "\(type(of: layer))", weights: weights))
                return
            }
            if let function = layer.activationFunction {
                if !found.isEmpty, found[found.count - 1].activation == nil { found[found.count - 1].activation = (layer, function) }
                return
            }
            for (name, child) in layer.namedChildren { visit(child, path.isEmpty ? name : "\(path).\(name)") }
        }
        visit(model, "")
        var offset = 0
        for i in found.indices {
            found[i].snapshotOffset = offset
            offset += found[i].weights.reduce(0) { $0 + parameters[$1].scalarCount }
        }
        units = found
        monitoredWeights = found.flatMap(\.weights)
        snapshot = .allocate(capacity: Swift.max(offset, 1))
        recorded = RunHistory(
            layers: found.enumerated().map { i, unit in
                RunHistory.Layer(index: i + 1, path: unit.path.isEmpty ? "model" : unit.path, kind: unit.kind, activation: unit.activation?.function.reportName)
            },
            maximumLength: maximumHistoryLength)
        gradientHistograms = Array(repeating: nil, count: found.count)
    }

    deinit {
        snapshot.deallocate()
        removeActivationHooks()
    }

    /// The monitored layers' paths in the model (`"0"`, `"1.body.0"`), from the input.
    public var layerPaths: [String] { units.map { $0.path.isEmpty ? "model" : $0.path } }

    /// Runs a forward pass, collecting activation statistics on sampled steps
    /// through forward hooks on the activation layers.
    ///
    /// The hooks stay registered while consecutive steps are sampled (every
    /// step by default) and are removed for steps that are not, so those run
    /// exactly as without a monitor (a hooked Linear + ReLU writes its
    /// pre-activations apart).
    public func observeForward<Result>(_ forward: () throws -> Result) rethrows -> Result {
        guard sampling else {
            if !activationHooks.isEmpty { removeActivationHooks() }
            return try forward()
        }
        if activationHooks.isEmpty { registerActivationHooks() }
        isCollecting = true
        defer { isCollecting = false }
        return try forward()
    }

    private func removeActivationHooks() {
        for handle in activationHooks { handle.remove() }
        activationHooks.removeAll()
    }

    /// One forward hook per activation that follows a unit; it records
    /// statistics only while ``observeForward(_:)`` runs a sampled step.
    private func registerActivationHooks() {
        for i in units.indices {
            guard let (layer, function) = units[i].activation else { continue }
            activationHooks.append(layer.registerForwardHook { [unowned self] _, input, output in
                guard self.isCollecting else { return }
                self.units[i].statistics = ActivationStatistics(function, input: input, output: output)
            })
        }
    }

    /// The non-finite guard and the gradient statistics: call after
    /// `backward()`, before clipping and the optimizer step. One pass over
    /// the gradients gives each parameter's sum of squares (in double, so it is
    /// finite exactly when every element is): the guard, the per-layer norms
    /// and ``lastGradientNorm``. The step is recorded in ``history``.
    /// - Parameters:
    ///   - loss: the step's loss.
    ///   - learningRate: the step's learning rate, for ``history`` (nil: not recorded).
    /// - Throws: ``NonFiniteGradientError`` under ``NonFinitePolicy/throwError``.
    public func inspectGradients(loss: Float, learningRate: Float? = nil) throws -> GradientDecision {
        defer { stepsObserved += 1 }
        lastStepWasSampled = false
        // Scratch arrays kept between steps: this runs every step.
        segments.removeAll(keepingCapacity: true)
        lengths.removeAll(keepingCapacity: true)
        owners.removeAll(keepingCapacity: true)
        for (index, parameter) in parameters.enumerated() where parameter.hasGradient {
            guard let storage = parameter.gradientStorage else { continue }
            segments.append(UnsafePointer(storage.base))
            lengths.append(storage.count)
            owners.append(index)
        }
        if squares.count < parameters.count { squares = Array(repeating: 0, count: parameters.count) }
        for i in squares.indices { squares[i] = 0 }
        let total = withExtendedLifetime(parameters) {
            partials.removeAll(keepingCapacity: true)
            partials.append(contentsOf: repeatElement(0, count: segments.count))
            return partials.withUnsafeMutableBufferPointer { buffer in
                Kernels.normSegments(.squares, segments: segments, lengths: lengths, p: 2, partials: buffer.baseAddress ?? UnsafeMutablePointer(bitPattern: 8)!)
            }
        }
        for (segment, owner) in owners.enumerated() { squares[owner] = partials[segment] }
        lastGradientNorm = Float(total.squareRoot())
        var culprit = owners.indices.first { !partials[$0].isFinite }.map { parameters[owners[$0]].name }
        if culprit == nil && !loss.isFinite { culprit = "loss" }
        recorded.append(RunHistory.Step(step: stepsObserved, loss: loss, gradientNorm: lastGradientNorm, learningRate: learningRate, skipped: culprit != nil))
        if let culprit {
            skippedSteps += 1
            consecutiveSkips += 1
            lastNonFinite = culprit
            for i in units.indices where units[i].weights.contains(where: { parameters[$0].name == culprit }) { units[i].sawNonFinite = true }
            switch policy {
            case .skip: return .skip(parameter: culprit)
            case .stop: return .stop(parameter: culprit)
            case .throwError: throw NonFiniteGradientError(parameter: culprit, step: stepsObserved)
            }
        }
        consecutiveSkips = 0
        if sampling {
            recordSample()
            if capturesGradientHistograms { captureGradientHistograms() }
        }
        return .step
    }

    /// Appends this step's per-layer gradient norms to the recent window, and
    /// its sample (norms and activation statistics; weights follow in
    /// didStep) to the history.
    private func recordSample() {
        var layers: [RunHistory.LayerSample] = []
        layers.reserveCapacity(units.count)
        for i in units.indices {
            let norm = Float(units[i].weights.reduce(0.0) { $0 + squares[$1] }.squareRoot())
            units[i].recentNorms.append(norm)
            if units[i].recentNorms.count >= 2 * window { units[i].recentNorms.removeFirst(window) }
            let statistics = units[i].statistics
            layers.append(RunHistory.LayerSample(
                gradientNorm: norm, deadFraction: statistics?.deadFraction.map(Float.init),
                saturatedFraction: statistics?.saturatedFraction.map(Float.init),
                preactivationMean: statistics.map { Float($0.preactivationMean) },
                preactivationStandardDeviation: statistics.map { Float($0.preactivationStandardDeviation) }))
        }
        recorded.append(RunHistory.Sample(step: stepsObserved, layers: layers))
        lastStepWasSampled = true
    }

    /// The histogram of each layer's weight gradients (finite here: the guard passed).
    private func captureGradientHistograms() {
        for i in units.indices {
            var values: [Float] = []
            for index in units[i].weights {
                guard let gradient = parameters[index].gradient else { continue }
                gradient.withUnsafeBufferPointer { values.append(contentsOf: $0) }
            }
            gradientHistograms[i] = TensorBoardHistogram(values)
        }
    }

    /// Call right before the optimizer step (records the weights for the update ratio).
    public func willStep() {
        guard (stepsObserved - 1) % sampleEvery == 0 else { return }
        snapshotTaken = true
        // The copy made by the last didStep is still current when no weight was written since.
        if snapshotIsCurrent, zip(monitoredWeights, snapshotVersions).allSatisfy({ parameters[$0].valueVersion == $1 }) { return }
        for unit in units {
            var offset = unit.snapshotOffset
            for index in unit.weights {
                parameters[index].value.withUnsafeBufferPointer { values in
                    guard let base = values.baseAddress else { return }
                    (snapshot.baseAddress! + offset).update(from: base, count: values.count)
                    offset += values.count
                }
            }
        }
    }

    /// Call right after the optimizer step.
    public func didStep() {
        guard snapshotTaken else { return }
        snapshotTaken = false
        // When every step is sampled, the pass that measures the update also
        // copies the new weights: the next willStep then has nothing to copy.
        let keepCurrent = sampleEvery == 1
        var sample = lastStepWasSampled ? recorded.latestSample : nil
        for i in units.indices {
            var offset = units[i].snapshotOffset
            var change = 0.0, norm = 0.0
            for index in units[i].weights {
                parameters[index].value.withUnsafeBufferPointer { values in
                    guard let base = values.baseAddress else { return }
                    let before = snapshot.baseAddress! + offset
                    let (d, q) = keepCurrent
                        ? Kernels.changeMomentsUpdating(count: values.count, after: base, before: before)
                        : Kernels.changeMoments(count: values.count, after: base, before: before)
                    change += d
                    norm += q
                    offset += values.count
                }
            }
            units[i].weightNorm = Float(norm.squareRoot())
            units[i].weightsAreFinite = norm.isFinite && change.isFinite
            if units[i].initialWeightNorm == nil { units[i].initialWeightNorm = units[i].weightNorm }
            let update: Float = norm > 0 ? Float((change / norm).squareRoot()) : 0
            units[i].updateHistory.append(update)
            if units[i].updateHistory.count >= 2 * window { units[i].updateHistory.removeFirst(window) }
            if sample != nil {
                sample!.layers[i].weightNorm = units[i].weightNorm
                sample!.layers[i].updateRatio = update
                // The weights moved: a verdict given before the step is stale.
                sample!.layers[i].verdict = nil
                sample!.layers[i].evidence = []
            }
        }
        if let sample { recorded.updateLatestSample(sample) }
        snapshotIsCurrent = keepCurrent
        if keepCurrent { snapshotVersions = monitoredWeights.map { parameters[$0].valueVersion } }
    }

    /// The current statistics and verdicts.
    public var report: Report {
        let recent = units.map { geometricMean($0.recentNorms.suffix(window)) }
        let reference = units.indices.last { !isFrozen(units[$0]) }
        var layers: [LayerHealth] = []
        for (i, unit) in units.enumerated() {
            let weightNorm = unit.weightNorm > 0 ? unit.weightNorm : weightNorms(unit.weights.map { parameters[$0] })
            let update = unit.updateHistory.isEmpty ? nil : Float(geometricMean(unit.updateHistory.suffix(window)))
            var health = LayerHealth(
                index: i + 1, path: unit.path.isEmpty ? "model" : unit.path, kind: unit.kind, gradientNorm: Float(recent[i]),
                weightNorm: weightNorm, updateRatio: update, activation: unit.activation?.function.reportName,
                preactivationMean: unit.statistics.map { Float($0.preactivationMean) },
                preactivationStandardDeviation: unit.statistics.map { Float($0.preactivationStandardDeviation) },
                saturatedFraction: unit.statistics?.saturatedFraction.map(Float.init), deadFraction: unit.statistics?.deadFraction.map(Float.init),
                verdict: .healthy, evidence: [])
            if isFrozen(unit) {
                health.verdict = .frozen
                health.evidence = ["layer \(i + 1)'s weights are frozen (requiresGradient is false): no gradient, no update"]
            } else {
                let evidence = LayerEvidence(
                    index: i + 1, referenceIndex: (reference ?? i) + 1, referenceNorm: reference.map { recent[$0] } ?? 0,
                    gradientNorm: recent[i], samples: unit.recentNorms.count, weightNorm: weightNorm,
                    weightsAreFinite: unit.weightsAreFinite && weightNorm.isFinite,
                    weightGrowth: unit.initialWeightNorm.flatMap { $0 > 0 ? Double(weightNorm) / Double($0) : nil },
                    updateRatio: update, sawNonFiniteGradient: unit.sawNonFinite, activationName: health.activation,
                    statistics: unit.statistics)
                (health.verdict, health.evidence) = VerdictRules.judge(evidence, thresholds)
            }
            layers.append(health)
        }
        return Report(layers: layers, stepsObserved: stepsObserved, skippedSteps: skippedSteps, consecutiveSkips: consecutiveSkips, lastNonFinite: lastNonFinite)
    }

    /// What the monitor recorded: the steps, the sampled steps' per-layer
    /// statistics, and the layers (see ``RunHistory``). The latest sample
    /// carries the verdicts as ``report`` gives them now.
    public var history: RunHistory {
        judgeLatestSample()
        return recorded
    }

    /// The `layers` record of the step last inspected, for a JSON-lines log:
    /// every monitored layer's statistics and verdict (see ``RunHistory/init(parsing:maximumLength:)``
    /// for the format). Call it after ``didStep()``.
    /// - Parameter step: the step number to write (default: the monitor's own count,
    ///   which is the trainer's unless the run was resumed from a checkpoint).
    /// - Returns: nil when that step was not sampled or its gradients were not finite.
    public func layersLogLine(step: Int? = nil) -> String? {
        layersRecord(step: step).map { JSON.object($0).text }
    }

    /// ``layersLogLine(step:)`` as a JSON object, for a log that writes objects.
    package func layersRecord(step: Int? = nil) -> [String: JSON]? {
        guard lastStepWasSampled else { return nil }
        judgeLatestSample()
        guard var sample = recorded.latestSample else { return nil }
        if let step { sample.step = step }
        return RunHistory.layersRecord(sample, layers: recorded.layers)
    }

    /// Stores the verdicts of ``report`` in the latest sample, unless it holds them already.
    private func judgeLatestSample() {
        guard var sample = recorded.latestSample, sample.layers.contains(where: { $0.verdict == nil }) else { return }
        for (i, health) in report.layers.enumerated() where i < sample.layers.count {
            sample.layers[i].verdict = health.verdict
            sample.layers[i].evidence = health.evidence
        }
        recorded.updateLatestSample(sample)
    }

    /// Writes the report of the run so far: `directory/report.md` and
    /// `directory/figures/*.svg` (the verdict table, the depth profile, a
    /// per-layer heat map over steps, the first/last-layer ratio, loss and
    /// learning rate), as ``RunHistory/writeReport(to:)`` does for ``history``.
    /// - Throws: ``ReportError`` when the path is empty or a file cannot be written.
    public func writeReport(to directory: String) throws {
        try history.writeReport(to: directory)
    }

    /// The latest sampled step's number and per-layer statistics, when the step last inspected was sampled.
    var sampleOfLastStep: RunHistory.Sample? { lastStepWasSampled ? recorded.latestSample : nil }

    private func isFrozen(_ unit: Unit) -> Bool { unit.weights.allSatisfy { !parameters[$0].requiresGradient } }

    private func weightNorms(_ parameters: [Parameter]) -> Float {
        var total = 0.0
        for p in parameters {
            let (_, squares) = p.value.withUnsafeBufferPointer { Kernels.moments(count: $0.count, $0.baseAddress ?? UnsafePointer(bitPattern: 8)!) }
            total += squares
        }
        return Float(total.squareRoot())
    }
}

/// exp(mean(log x)) of the positive finite values (0 when there are none).
func geometricMean(_ values: some Collection<Float>) -> Double {
    let positive = values.filter { $0 > 0 && $0.isFinite }
    guard !positive.isEmpty else { return 0 }
    return exp(positive.reduce(0.0) { $0 + log(Double($1)) } / Double(positive.count))
}
