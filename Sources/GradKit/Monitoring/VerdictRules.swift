// GradKit — the monitor's verdict rules, one function each. SPDX-License-Identifier: MIT
#if canImport(Glibc)
import Glibc
#endif

/// What the rules see of one layer: its recent figures and those of the
/// reference layer (the last one that is not frozen, nearest the loss).
struct LayerEvidence {
    /// 1-based position among the monitored layers.
    var index: Int
    /// The reference layer's 1-based position and gradient norm.
    var referenceIndex: Int
    var referenceNorm: Double
    /// Geometric mean of the gradient norm over the recent sampled steps (0 when every one was 0).
    var gradientNorm: Double
    /// Sampled steps with a gradient norm on record.
    var samples: Int
    var weightNorm: Float
    var weightsAreFinite: Bool
    /// ‖w‖ now over ‖w‖ when first measured (nil when that was 0 or unknown).
    var weightGrowth: Double?
    var updateRatio: Float?
    var sawNonFiniteGradient: Bool
    var activationName: String?
    var statistics: ActivationStatistics?
}

/// A verdict and the sentence that backs it.
struct Finding {
    var verdict: GradientMonitor.Verdict
    var evidence: String
}

/// The rules, in the order their evidence is listed. When several find
/// something, the verdict is the first of ``verdictPriority``.
enum VerdictRules {
    static let all: [@Sendable (LayerEvidence, GradientMonitor.Thresholds) -> [Finding]] = [
        nonFinite, relativeNorm, absoluteNorm, largeUpdates, weightGrowth, deadUnits, saturatedUnits, zeroGradient,
    ]

    /// Causes before symptoms: dead or saturated units are why gradients vanish.
    static let verdictPriority: [GradientMonitor.Verdict] = [.nonFinite, .exploding, .dead, .saturated, .vanishing]

    /// The verdict and the evidence of every rule that found something.
    static func judge(_ layer: LayerEvidence, _ thresholds: GradientMonitor.Thresholds) -> (GradientMonitor.Verdict, [String]) {
        let findings = all.flatMap { $0(layer, thresholds) }
        let verdict = verdictPriority.first { v in findings.contains { $0.verdict == v } } ?? .healthy
        return (verdict, findings.map(\.evidence))
    }

    /// NaN or ±∞ in the layer's gradients (a skipped step) or in its weights.
    static func nonFinite(_ l: LayerEvidence, _ t: GradientMonitor.Thresholds) -> [Finding] {
        var found: [Finding] = []
        if l.sawNonFiniteGradient {
            found.append(Finding(verdict: .nonFinite, evidence: "layer \(l.index)'s gradient held NaN or infinity (a step was skipped)"))
        }
        if !l.weightsAreFinite {
            found.append(Finding(verdict: .nonFinite, evidence: "layer \(l.index)'s weights hold NaN or infinity"))
        }
        return found
    }

    /// The gradient norm against the reference layer's: far larger is exploding, far smaller vanishing.
    static func relativeNorm(_ l: LayerEvidence, _ t: GradientMonitor.Thresholds) -> [Finding] {
        guard l.index < l.referenceIndex, l.referenceNorm > 0, l.gradientNorm > 0 else { return [] }
        let ratio = l.gradientNorm / l.referenceNorm
        let reference = "layer \(l.referenceIndex)'s (\(scientific(Float(l.referenceNorm))))"
        if ratio > Double(t.explodingRatio) {
            return [Finding(verdict: .exploding, evidence: "layer \(l.index)'s gradient norm is \(scientific(Float(l.gradientNorm))), \(powerOfTen(ratio)) times larger than \(reference)")]
        }
        if ratio < Double(t.vanishingRatio) {
            return [Finding(verdict: .vanishing, evidence: "layer \(l.index)'s gradient norm is \(scientific(Float(l.gradientNorm))), \(powerOfTen(1 / ratio)) times smaller than \(reference)")]
        }
        return []
    }

    /// A gradient norm far above the weights' own scale.
    static func absoluteNorm(_ l: LayerEvidence, _ t: GradientMonitor.Thresholds) -> [Finding] {
        guard l.gradientNorm > Double(t.explodingNorm) * Double(Swift.max(1, l.weightNorm)) else { return [] }
        return [Finding(verdict: .exploding, evidence: "layer \(l.index)'s gradient norm \(scientific(Float(l.gradientNorm))) exceeds \(scientific(t.explodingNorm)) x max(1, |w| = \(scientific(l.weightNorm)))")]
    }

    /// Steps that change the weights by a large fraction of their norm.
    static func largeUpdates(_ l: LayerEvidence, _ t: GradientMonitor.Thresholds) -> [Finding] {
        guard let update = l.updateRatio, update > t.largeUpdateRatio else { return [] }
        // An update can be any size, infinite included, once training diverges: no Int conversion.
        let size = update < 100 ? "\(Int((update * 100).rounded()))% of" : "\(scientific(update)) times"
        return [Finding(verdict: .exploding, evidence: "each step changes layer \(l.index)'s weights by \(size) their norm")]
    }

    /// Weights that grew by orders of magnitude since they were first measured.
    static func weightGrowth(_ l: LayerEvidence, _ t: GradientMonitor.Thresholds) -> [Finding] {
        guard let growth = l.weightGrowth, growth > Double(t.weightGrowth) else { return [] }
        return [Finding(verdict: .exploding, evidence: "layer \(l.index)'s weight norm grew \(powerOfTen(growth))-fold to \(scientific(l.weightNorm))")]
    }

    /// Most of the following ReLU's units output 0 for the whole batch.
    static func deadUnits(_ l: LayerEvidence, _ t: GradientMonitor.Thresholds) -> [Finding] {
        guard let dead = l.statistics?.deadFraction, dead >= Double(t.deadFraction) else { return [] }
        let mean = l.statistics.map { Float($0.preactivationMean) } ?? 0
        return [Finding(verdict: .dead, evidence: "\(Int(saturating: (dead * 100).rounded()))% of the ReLU units after layer \(l.index) output 0 for every example of the batch (pre-activation mean \(scientific(mean)))")]
    }

    /// Most of the following sigmoid's or tanh's outputs sit where its derivative is near 0.
    static func saturatedUnits(_ l: LayerEvidence, _ t: GradientMonitor.Thresholds) -> [Finding] {
        guard let saturated = l.statistics?.saturatedFraction, saturated >= Double(t.saturatedFraction) else { return [] }
        let spread = l.statistics.map { Float($0.preactivationStandardDeviation) } ?? 0
        return [Finding(verdict: .saturated, evidence: "\(Int(saturating: (saturated * 100).rounded()))% of the \(l.activationName ?? "activation") outputs after layer \(l.index) are saturated (pre-activation spread \(scientific(spread)))")]
    }

    /// A gradient that is exactly zero at every sampled step.
    static func zeroGradient(_ l: LayerEvidence, _ t: GradientMonitor.Thresholds) -> [Finding] {
        guard l.samples > 0, l.gradientNorm == 0 else { return [] }
        if l.index < l.referenceIndex, l.referenceNorm > 0 {
            return [Finding(verdict: .vanishing, evidence: "layer \(l.index)'s gradient is exactly zero while layer \(l.referenceIndex)'s norm is \(scientific(Float(l.referenceNorm)))")]
        }
        return [Finding(verdict: .vanishing, evidence: "layer \(l.index)'s gradient was exactly zero at every recent sampled step")]
    }
}

/// "10^5" for a ratio of about 1e5; "inf" for an infinite one (weights that overflowed).
func powerOfTen(_ ratio: Double) -> String {
    guard ratio.isFinite else { return "\(ratio)" }
    let exponent = log10(ratio)
    guard exponent.isFinite else { return "\(ratio)" }
    return exponent >= 1 ? "10^\(Int(saturating: exponent.rounded()))" : String(Int(saturating: ratio.rounded()))
}
