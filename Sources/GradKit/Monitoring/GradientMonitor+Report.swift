// GradKit — the gradient-health monitor's verdicts, thresholds and reports. SPDX-License-Identifier: MIT

extension GradientMonitor {
    /// What to do when a gradient (or the loss) is not finite.
    public enum NonFinitePolicy: Sendable { case skip, stop, throwError }

    /// A layer's health.
    public enum Verdict: String, Sendable, CaseIterable {
        case healthy, vanishing, exploding, dead, saturated
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

        /// True when every layer is healthy (or frozen) and no step was skipped.
        public var isHealthy: Bool { skippedSteps == 0 && layers.allSatisfy { $0.verdict == .healthy || $0.verdict == .frozen } }

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
