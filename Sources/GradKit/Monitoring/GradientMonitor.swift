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
/// switch try monitor.inspectGradients(loss: loss.scalar) {
/// case .step:
///     monitor.willStep(); optimizer.step(); monitor.didStep()
/// case .skip, .stop:
///     optimizer.zeroGradients()        // parameters and optimizer state untouched
/// }
/// print(monitor.report)
/// ```
/// (``Trainer`` does this for you.)
///
/// **Per layer** (each `Linear` or `RNN`, numbered from the input): the norm
/// of its weight gradients, the norm of its weights, the update-to-weight
/// ratio ‖Δw‖/‖w‖ of the last step, and for the activation that follows it the
/// pre-activation mean and spread, the fraction of saturated sigmoid/tanh
/// outputs and the fraction of dead ReLU units (silent for the whole batch).
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
/// - *non-finite*: NaN or ±∞ appeared in its gradients;
/// - otherwise *healthy*.
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
    /// What to do when a gradient (or the loss) is not finite.
    public enum NonFinitePolicy: Sendable { case skip, stop, throwError }

    /// A layer's health.
    public enum Verdict: String, Sendable, CaseIterable {
        case healthy, vanishing, exploding, dead, saturated
        case nonFinite = "non-finite"
    }

    /// The limits behind the verdicts.
    public struct Thresholds: Sendable {
        public var vanishingRatio: Float = 1e-3
        public var explodingRatio: Float = 1e3
        public var explodingNorm: Float = 1e4
        public var largeUpdateRatio: Float = 0.5
        public var deadFraction: Float = 0.5
        public var saturatedFraction: Float = 0.5
        public init() {}
    }

    /// What ``inspectGradients(loss:)`` decided.
    public enum GradientDecision: Sendable, Equatable {
        /// All finite: apply the update.
        case step
        /// Not finite, named: skip this step (policy `.skip`).
        case skip(parameter: String)
        /// Not finite, named: end training (policy `.stop`).
        case stop(parameter: String)
    }

    /// Thrown by ``inspectGradients(loss:)`` under `.throwError`.
    public struct NonFiniteGradientError: Error, Equatable, CustomStringConvertible {
        public let parameter: String
        public let step: Int
        public var description: String { "step \(step): NaN or infinity in the gradient of '\(parameter)'" }
    }

    /// One layer's statistics and verdict.
    public struct LayerHealth: Sendable {
        /// 1-based position among the monitored layers, from the input.
        public var index: Int
        /// The layer's path in the model (`"0"`, `"1.body.0"`).
        public var path: String
        public var kind: String
        public var gradientNorm: Float
        public var weightNorm: Float
        public var updateRatio: Float?
        public var activation: String?
        public var preactivationMean: Float?
        public var preactivationStandardDeviation: Float?
        public var saturatedFraction: Float?
        public var deadFraction: Float?
        public var verdict: Verdict
        /// Why, in words.
        public var evidence: [String]
    }

    /// The monitor's findings.
    public struct Report: Sendable, CustomStringConvertible {
        public var layers: [LayerHealth]
        public var stepsObserved: Int
        public var skippedSteps: Int
        public var consecutiveSkips: Int
        /// The parameter named by the last non-finite step, if any.
        public var lastNonFinite: String?

        /// True when every layer is healthy and no step was skipped.
        public var isHealthy: Bool { skippedSteps == 0 && layers.allSatisfy { $0.verdict == .healthy } }

        public var description: String {
            var lines = ["gradient health after \(stepsObserved) steps\(skippedSteps > 0 ? " (\(skippedSteps) skipped)" : ""):"]
            for layer in layers {
                var line = "  layer \(layer.index) (\(layer.path), \(layer.kind)): \(layer.verdict.rawValue); |g| \(scientific(layer.gradientNorm)), |w| \(scientific(layer.weightNorm))"
                if let r = layer.updateRatio { line += ", update/weight \(scientific(r))" }
                if let d = layer.deadFraction { line += ", dead \(Int((d * 100).rounded()))%" }
                if let s = layer.saturatedFraction { line += ", saturated \(Int((s * 100).rounded()))%" }
                lines.append(line)
                for e in layer.evidence { lines.append("    - \(e)") }
            }
            if let name = lastNonFinite { lines.append("  last non-finite gradient: \(name)") }
            return lines.joined(separator: "\n")
        }
    }

    public let model: any Layer
    public let policy: NonFinitePolicy
    public var thresholds: Thresholds
    /// Statistics are collected on every `sampleEvery`-th step (the guard runs every step).
    public let sampleEvery: Int
    /// Steps that verdicts average over.
    public let window: Int

    /// Gradient norms per monitored layer, one entry per sampled step (for plots).
    public private(set) var gradientNormHistory: [[Float]]
    public private(set) var stepsObserved = 0
    public private(set) var skippedSteps = 0
    public private(set) var consecutiveSkips = 0
    public private(set) var lastNonFinite: String?

    private struct Unit {
        var path: String
        var kind: String
        /// Indices of its weights in `parameters`.
        var weights: [Int]
        /// Where its weights start in `snapshot`.
        var snapshotOffset = 0
        var activation: ObjectIdentifier?
        var activationName: String?
        var updateHistory: [Float] = []
        var weightNorm: Float = 0
        var sample: ActivationSample?
        var sawNonFinite = false
    }

    /// The model's parameters, in order.
    private let parameters: [Parameter]
    private var units: [Unit]
    private var sampling: Bool { stepsObserved % sampleEvery == 0 }
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

    public init(
        model: any Layer, policy: NonFinitePolicy = .skip, thresholds: Thresholds = Thresholds(), sampleEvery: Int = 1,
        window: Int = 20
    ) {
        precondition(sampleEvery >= 1 && window >= 1, "GradientMonitor: sampleEvery and window must be >= 1")
        self.model = model
        self.policy = policy
        self.thresholds = thresholds
        self.sampleEvery = sampleEvery
        self.window = window
        let parameters = model.parameters
        self.parameters = parameters
        var found: [Unit] = []
        func visit(_ layer: any Layer, _ path: String) {
            let children = layer.namedChildren
            if children.isEmpty {
                if layer is Linear || layer is RNN || layer is Perceptron {
                    var owned = layer.parameters.filter { $0.name.hasSuffix("weight") || $0.name.contains("weight_") }
                    if owned.isEmpty { owned = layer.parameters }
                    let indices = owned.compactMap { p in parameters.firstIndex { $0 === p } }
                    found.append(Unit(path: path, kind: "\(type(of: layer))", weights: indices))
                } else if let kind = GradientMonitor.activationKind(layer), !found.isEmpty, found[found.count - 1].activation == nil {
                    found[found.count - 1].activation = ObjectIdentifier(layer)
                    found[found.count - 1].activationName = kind.name
                }
                return
            }
            for (name, child) in children { visit(child, path.isEmpty ? name : "\(path).\(name)") }
        }
        visit(model, "")
        var offset = 0
        for i in found.indices {
            found[i].snapshotOffset = offset
            offset += found[i].weights.reduce(0) { $0 + parameters[$1].value.scalarCount }
        }
        units = found
        monitoredWeights = found.flatMap(\.weights)
        snapshot = .allocate(capacity: Swift.max(offset, 1))
        gradientNormHistory = Array(repeating: [], count: found.count)
    }

    deinit { snapshot.deallocate() }

    private static func activationKind(_ layer: any Layer) -> ActivationKind? {
        switch layer {
        case is Sigmoid: .sigmoid
        case is Tanh: .tanh
        case is ReLU: .relu
        case is LeakyReLU: .leakyRelu
        case is ELU, is GELU, is Softplus: .other
        default: nil
        }
    }

    /// Runs a forward pass, collecting activation statistics on sampled steps.
    public func observeForward<Result>(_ forward: () throws -> Result) rethrows -> Result {
        guard sampling else { return try forward() }
        let probe = ActivationProbe.local.current
        probe.begin()
        defer {
            probe.end()
            for i in units.indices {
                if let id = units[i].activation, let sample = probe.samples[id] { units[i].sample = sample }
            }
        }
        return try forward()
    }

    /// The non-finite guard and the gradient statistics: call after
    /// `backward()`, before clipping and the optimizer step. One pass over
    /// the gradients gives each parameter's sum of squares (in double, so it is
    /// finite exactly when every element is): the guard, the per-layer norms
    /// and ``lastGradientNorm``.
    /// - Throws: ``NonFiniteGradientError`` under ``NonFinitePolicy/throwError``.
    public func inspectGradients(loss: Float) throws -> GradientDecision {
        defer { stepsObserved += 1 }
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
            for i in units.indices {
                let total = units[i].weights.reduce(0.0) { $0 + squares[$1] }
                gradientNormHistory[i].append(Float(total.squareRoot()))
            }
        }
        return .step
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
            units[i].updateHistory.append(norm > 0 ? Float((change / norm).squareRoot()) : 0)
            if units[i].updateHistory.count >= 2 * window { units[i].updateHistory.removeFirst(window) }
        }
        snapshotIsCurrent = keepCurrent
        if keepCurrent { snapshotVersions = monitoredWeights.map { parameters[$0].valueVersion } }
    }

    /// The current statistics and verdicts.
    public var report: Report {
        var layers: [LayerHealth] = []
        let recent = gradientNormHistory.map { geometricMean(Array($0.suffix(window))) }
        let outputNorm = recent.last ?? 0
        for (i, unit) in units.enumerated() {
            let g = recent[i]
            let weightNorm = unit.weightNorm > 0 ? unit.weightNorm : weightNorms(unit.weights.map { parameters[$0] })
            let update = unit.updateHistory.isEmpty ? nil : Float(geometricMean(Array(unit.updateHistory.suffix(window))))
            var health = LayerHealth(
                index: i + 1, path: unit.path.isEmpty ? "model" : unit.path, kind: unit.kind, gradientNorm: Float(g),
                weightNorm: weightNorm, updateRatio: update, activation: unit.activationName,
                preactivationMean: unit.sample.map { Float($0.preactivationMean) },
                preactivationStandardDeviation: unit.sample.map { Float($0.preactivationStandardDeviation) },
                saturatedFraction: unit.sample?.saturatedFraction.map(Float.init), deadFraction: unit.sample?.deadFraction.map(Float.init),
                verdict: .healthy, evidence: [])
            var verdicts: [Verdict] = []
            let last = units.count
            if unit.sawNonFinite {
                verdicts.append(.nonFinite)
                health.evidence.append("layer \(i + 1)'s gradient held NaN or infinity (a step was skipped)")
            }
            if i + 1 < last, outputNorm > 0, g > 0 {
                let ratio = g / outputNorm
                if ratio > Double(thresholds.explodingRatio) {
                    verdicts.append(.exploding)
                    health.evidence.append("layer \(i + 1)'s gradient norm is \(scientific(Float(g))), \(powerOfTen(ratio)) times larger than layer \(last)'s (\(scientific(Float(outputNorm))))")
                } else if ratio < Double(thresholds.vanishingRatio) {
                    verdicts.append(.vanishing)
                    health.evidence.append("layer \(i + 1)'s gradient norm is \(scientific(Float(g))), \(powerOfTen(1 / ratio)) times smaller than layer \(last)'s (\(scientific(Float(outputNorm))))")
                }
            } else if i + 1 < last, g == 0, outputNorm > 0 {
                verdicts.append(.vanishing)
                health.evidence.append("layer \(i + 1)'s gradient is exactly zero while layer \(last)'s norm is \(scientific(Float(outputNorm)))")
            }
            if g > Double(thresholds.explodingNorm) * Double(Swift.max(1, weightNorm)), !verdicts.contains(.exploding) {
                verdicts.append(.exploding)
                health.evidence.append("layer \(i + 1)'s gradient norm \(scientific(Float(g))) exceeds \(scientific(thresholds.explodingNorm)) x max(1, |w| = \(scientific(weightNorm)))")
            }
            if let update, update > thresholds.largeUpdateRatio {
                if !verdicts.contains(.exploding) { verdicts.append(.exploding) }
                health.evidence.append("each step changes layer \(i + 1)'s weights by \(Int((update * 100).rounded()))% of their norm")
            }
            if let dead = health.deadFraction, dead >= thresholds.deadFraction {
                verdicts.append(.dead)
                health.evidence.append("\(Int((dead * 100).rounded()))% of the ReLU units after layer \(i + 1) output 0 for every example of the batch (pre-activation mean \(scientific(health.preactivationMean ?? 0)))")
            }
            if let saturated = health.saturatedFraction, saturated >= thresholds.saturatedFraction {
                verdicts.append(.saturated)
                health.evidence.append("\(Int((saturated * 100).rounded()))% of the \(unit.activationName ?? "activation") outputs after layer \(i + 1) are saturated (pre-activation spread \(scientific(health.preactivationStandardDeviation ?? 0)))")
            }
            // Causes before symptoms: dead or saturated units are why gradients vanish.
            let priority: [Verdict] = [.nonFinite, .exploding, .dead, .saturated, .vanishing]
            health.verdict = priority.first { verdicts.contains($0) } ?? .healthy
            layers.append(health)
        }
        return Report(layers: layers, stepsObserved: stepsObserved, skippedSteps: skippedSteps, consecutiveSkips: consecutiveSkips, lastNonFinite: lastNonFinite)
    }

    private func weightNorms(_ parameters: [Parameter]) -> Float {
        var total = 0.0
        for p in parameters {
            let (_, squares) = p.value.withUnsafeBufferPointer { Kernels.moments(count: $0.count, $0.baseAddress ?? UnsafePointer(bitPattern: 8)!) }
            total += squares
        }
        return Float(total.squareRoot())
    }
}

/// exp(mean(log x)) of the positive values (0 when there are none).
private func geometricMean(_ values: [Float]) -> Double {
    let positive = values.filter { $0 > 0 && $0.isFinite }
    guard !positive.isEmpty else { return values.isEmpty ? 0 : 0 }
    return exp(positive.reduce(0.0) { $0 + log(Double($1)) } / Double(positive.count))
}

/// "10^5" for a ratio of about 1e5.
private func powerOfTen(_ ratio: Double) -> String {
    let exponent = log10(ratio)
    return exponent >= 1 ? "10^\(Int(exponent.rounded()))" : String(Int(ratio.rounded()))
}

/// Three significant digits in scientific notation, e.g. 3.1e-08.
package func scientific(_ value: Float) -> String {
    if value == 0 { return "0" }
    if !value.isFinite { return "\(value)" }
    var exponent = Int(log10(Double(Swift.abs(value))).rounded(.down))
    var rounded = (Double(value) / pow(10, Double(exponent)) * 10).rounded() / 10
    if Swift.abs(rounded) >= 10 {  // 9.96 rounds to 10.0: write 1.0 and the next exponent
        rounded /= 10
        exponent += 1
    }
    let sign = exponent < 0 ? "-" : "+"
    let magnitude = Swift.abs(exponent)
    return "\(rounded)e\(sign)\(magnitude < 10 ? "0" : "")\(magnitude)"
}
