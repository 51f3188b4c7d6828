// GradKit — the gradient-health monitor's verdicts, thresholds and reports. SPDX-License-Identifier: MIT

extension GradientMonitor {
    /// What to do when a gradient (or the loss) is not finite.
    public enum NonFinitePolicy: Sendable {
        /// Skip the step: parameters and optimizer state stay as they were (the default).
        case skip
        /// End training: ``GradientMonitor/inspectGradients(loss:learningRate:)`` answers ``GradientDecision/stop(parameter:)``.
        case stop
        /// Throw a ``NonFiniteGradientError`` from ``GradientMonitor/inspectGradients(loss:learningRate:)``.
        case throwError
    }

    /// A layer's health.
    public enum Verdict: String, Sendable, CaseIterable {
        /// Gradients, weights and activations within every threshold.
        case healthy
        /// The gradient norm is below ``Thresholds/vanishingRatio`` of the output layer's.
        case vanishing
        /// The gradient norm, the update or the weights' growth is beyond its threshold
        /// (``Thresholds/explodingRatio``, ``Thresholds/explodingNorm``,
        /// ``Thresholds/largeUpdateRatio``, ``Thresholds/weightGrowth``).
        case exploding
        /// At least ``Thresholds/deadFraction`` of a ReLU's units output zero for the whole batch.
        case dead
        /// At least ``Thresholds/saturatedFraction`` of a sigmoid's or tanh's outputs are saturated.
        case saturated
        /// A gradient or weight of the layer held NaN or infinity (raw value `"non-finite"`).
        case nonFinite = "non-finite"
        /// Its weights do not require gradients (``Parameter/requiresGradient``): nothing to judge.
        case frozen
    }

    /// The limits behind the verdicts.
    public struct Thresholds: Sendable {
        /// A layer whose gradient norm is below this fraction of the output layer's is vanishing.
        public var vanishingRatio: Float = 1e-3
        /// A layer whose gradient norm is above this multiple of the output layer's is exploding.
        public var explodingRatio: Float = 1e3
        /// A gradient norm above this multiple of max(1, ‖w‖) is exploding.
        public var explodingNorm: Float = 1e4
        /// Updates changing the weights by more than this fraction of their norm per step are exploding.
        public var largeUpdateRatio: Float = 0.5
        /// At least this fraction of a ReLU's units dead (zero for the whole batch) is "dead".
        public var deadFraction: Float = 0.5
        /// At least this fraction of a sigmoid's or tanh's outputs saturated is "saturated".
        public var saturatedFraction: Float = 0.5
        /// Weights whose norm grew by more than this factor since the monitor
        /// first measured them are exploding.
        public var weightGrowth: Float = 1e3
        /// The default thresholds (the values above).
        public init() {}
    }

    /// What ``GradientMonitor/inspectGradients(loss:learningRate:)`` decided.
    public enum GradientDecision: Sendable, Equatable {
        /// All finite: apply the update.
        case step
        /// Not finite, named: skip this step (policy `.skip`).
        case skip(parameter: String)
        /// Not finite, named: end training (policy `.stop`).
        case stop(parameter: String)
    }

    /// Thrown by ``GradientMonitor/inspectGradients(loss:learningRate:)`` under `.throwError`.
    public struct NonFiniteGradientError: Error, Equatable, CustomStringConvertible {
        /// The name of the first parameter (in model order) whose gradient is not finite.
        public let parameter: String
        /// The monitor's step count (0-based) at which it was found.
        public let step: Int
        /// `step N: NaN or infinity in the gradient of 'NAME'`.
        public var description: String { "step \(step): NaN or infinity in the gradient of '\(parameter)'" }
    }

    /// One layer's statistics and verdict.
    public struct LayerHealth: Sendable {
        /// 1-based position among the monitored layers, from the input.
        public var index: Int
        /// The layer's path in the model (`"0"`, `"1.body.0"`).
        public var path: String
        /// The layer's type name (`"Linear"`, `"BatchNorm"`).
        public var kind: String
        /// The L2 norm of the layer's weight gradients, the geometric mean over the last ``GradientMonitor/window`` sampled steps.
        public var gradientNorm: Float
        /// The L2 norm of the layer's monitored weights.
        public var weightNorm: Float
        /// ‖Δw‖ / ‖w‖ per step, the geometric mean over the last ``GradientMonitor/window`` updates; nil before the first update.
        public var updateRatio: Float?
        /// The activation that follows the layer (`"relu"`, `"tanh"`), if the monitor found one.
        public var activation: String?
        /// The mean of the layer's outputs before the activation, if activations were measured.
        public var preactivationMean: Float?
        /// The standard deviation of the layer's outputs before the activation, if measured.
        public var preactivationStandardDeviation: Float?
        /// The fraction (0...1) of a sigmoid's or tanh's outputs that are saturated, if measured.
        public var saturatedFraction: Float?
        /// The fraction (0...1) of a ReLU's units that output zero for the whole batch, if measured.
        public var deadFraction: Float?
        /// The judgement drawn from these figures and the ``Thresholds``.
        public var verdict: Verdict
        /// Why, in words.
        public var evidence: [String]
    }

    /// The monitor's findings.
    public struct Report: Sendable, CustomStringConvertible {
        /// One entry per monitored layer, from the input to the output.
        public var layers: [LayerHealth]
        /// Steps the monitor inspected.
        public var stepsObserved: Int
        /// Steps skipped because a gradient (or the loss) was not finite.
        public var skippedSteps: Int
        /// Non-finite steps in a row up to the last inspected one.
        public var consecutiveSkips: Int
        /// The parameter named by the last non-finite step, if any.
        public var lastNonFinite: String?

        /// True when every layer is healthy (or frozen) and no step was skipped.
        public var isHealthy: Bool { skippedSteps == 0 && layers.allSatisfy { $0.verdict == .healthy || $0.verdict == .frozen } }

        /// A multi-line table: one line per layer with its verdict and norms, then its evidence.
        public var description: String {
            var lines = ["gradient health after \(stepsObserved) steps\(skippedSteps > 0 ? " (\(skippedSteps) skipped)" : ""):"]
            for layer in layers {
                var line = "  layer \(layer.index) (\(layer.path), \(layer.kind)): \(layer.verdict.rawValue); |g| \(scientific(layer.gradientNorm)), |w| \(scientific(layer.weightNorm))"
                if let r = layer.updateRatio { line += ", update/weight \(scientific(r))" }
                if let d = layer.deadFraction { line += ", dead \(Int(saturating: Double(d * 100).rounded()))%" }
                if let s = layer.saturatedFraction { line += ", saturated \(Int(saturating: Double(s * 100).rounded()))%" }
                lines.append(line)
                for e in layer.evidence { lines.append("    - \(e)") }
            }
            if let name = lastNonFinite { lines.append("  last non-finite gradient: \(name)") }
            return lines.joined(separator: "\n")
        }
    }
}
