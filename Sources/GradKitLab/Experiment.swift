// GradKitLab — what an experiment declares: its configurations, its metric and its verdict rules. SPDX-License-Identifier: MIT
import GradKit

/// One experiment of the lab, declared rather than programmed: the lab trains
/// every configuration at every seed and learning rate (``Lab/execute(_:_:)``),
/// keeps per seed the rate that scores best on validation data, counts the
/// seeds where each configuration's claim holds (``Analysis``), and hands the
/// analysis to ``conclude`` for the experiment's own numbers, headline and
/// figures.
///
/// A new experiment is a new file with a static `experiment` of this type and
/// a line in ``Lab/experiments``.
struct Experiment: Sendable {
    /// A stable identifier ("vanishing-gradients"), also the report's anchor.
    var name: String
    var title: String
    /// The number configurations are scored by.
    var metric: Metric
    /// The configurations to run, in report order.
    var configurations: @Sendable (Plan) -> [Configuration]
    /// Numbers, headline, figures and text from the analysis.
    var conclude: @Sendable (Analysis) -> Conclusion
}

/// What the lab runs for one experiment: how many seeds, which, and how long.
struct Plan: Sendable {
    var quick: Bool
    /// The seeds every configuration runs at (``Lab/seeds(for:)``).
    var seeds: [UInt64]
    /// At most this many epochs, whatever an experiment asks for: the tests
    /// run every experiment end to end at 1 epoch. Nil in the lab itself.
    var epochLimit: Int? = nil

    /// Epochs to train: `full` in a full run, `quick` with `--quick`, within ``epochLimit``.
    func epochs(full: Int, quick: Int) -> Int { Swift.min(self.quick ? quick : full, epochLimit ?? .max) }
}

/// The part of an experiment's result that the experiment itself writes.
struct Conclusion: Sendable {
    /// One to three sentences, each true in at least 80% of the seeds.
    var headline: String
    /// Whether the experiment showed what it set out to show (the pathology in
    /// at least 80% of the seeds and a remedy that helps in at least 80%).
    var demonstrated: Bool
    var blocks: [ReportBlock]
    /// Experiment-specific numbers for results.json, beside the configurations.
    var metrics: [String: JSON] = [:]
}

/// The number an experiment ranks its configurations by, and how it is printed.
struct Metric: Sendable {
    /// As the report and results.json name it: "test accuracy".
    var name: String
    var higherIsBetter: Bool
    /// The metric from an evaluation's mean loss and accuracy.
    var measure: @Sendable (_ loss: Float, _ accuracy: Float?) -> Double
    var format: @Sendable (Double) -> String

    /// Accuracy on the test images (in the report: "97.2%").
    static let testAccuracy = Metric(
        name: "test accuracy", higherIsBetter: true, measure: { _, accuracy in accuracy.map(Double.init) ?? .nan }, format: percent)
    /// Mean squared error on the test sequences (in the report: "1.2e-2").
    static let testMeanSquaredError = Metric(
        name: "test MSE", higherIsBetter: false, measure: { loss, _ in Double(loss) }, format: sci)

    /// Whether `a` is better than `b`; a value that is not finite is worse than any that is.
    func isBetter(_ a: Double, than b: Double) -> Bool {
        guard a.isFinite else { return false }
        guard b.isFinite else { return true }
        return higherIsBetter ? a > b : a < b
    }

    /// How much better `a` is than `b` (positive when better), in the metric's units.
    func improvement(of a: Double, over b: Double) -> Double { higherIsBetter ? a - b : b - a }
}

/// What a configuration is in its experiment.
enum Role: String, Sendable {
    /// Shows the problem the experiment is about.
    case pathology
    /// A cure from the literature.
    case remedy
    /// Often suggested, not a textbook cure.
    case suggestion
    /// A reference point: majority class, best linear model, a correctly scaled network.
    case control
    /// Another way of doing the same job, compared with a control.
    case alternative
}

/// One way of training (or computing) a model in an experiment.
struct Configuration: Sendable {
    var name: String
    var role: Role
    /// The learning rates tried at every seed; the one with the best
    /// validation score is kept. Empty for a configuration without one.
    var learningRates: [Float]
    /// What the verdict counts; nil for a reference point that claims nothing.
    var claim: Claim?
    /// Trains the configuration at one seed and learning rate.
    var run: @Sendable (TrialContext) -> Trial

    init(_ name: String, role: Role, learningRates: [Float] = [], claim: Claim? = nil, run: @escaping @Sendable (TrialContext) -> Trial) {
        self.name = name
        self.role = role
        self.learningRates = learningRates
        self.claim = claim
        self.run = run
    }
}

/// Where and how one trial runs.
struct TrialContext: Sendable {
    var seed: RunSeed
    /// The grid point (0 for a configuration without learning rates).
    var learningRate: Float
    var plan: Plan
}

/// The seeds one run draws from, derived from its seed so that the data
/// split, the initial weights and the batch order are independent streams;
/// configurations at the same seed share all three (paired comparisons).
struct RunSeed: Sendable, Hashable {
    /// The seed as the report lists it.
    var value: UInt64

    /// Splits and synthetic data.
    var data: UInt64 { mix(1) }
    /// Initial weights (``withManualSeed(_:_:)``).
    var initialization: UInt64 { mix(2) }
    /// The order of the batches.
    var shuffling: UInt64 { mix(3) }

    /// SplitMix64's finalizer of the seed and a stream number.
    private func mix(_ stream: UInt64) -> UInt64 {
        var z = value &+ stream &* 0x9E37_79B9_7F4A_7C15
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// A statement tested at every seed against that seed's trials; a
/// configuration's verdict counts the seeds where it holds (``Verdict``).
struct Claim: Sendable {
    /// The verdict's words when the claim holds ("helps") and when it fails ("does not help").
    var holds: String
    var fails: String
    /// The rule in words, for the report.
    var rule: String
    var test: @Sendable (_ trial: Trial, _ seed: SeedTrials) -> Bool
}

/// Every configuration's trials at one seed, found by name: the selected
/// one (the learning rate with the best validation score) and the whole grid.
struct SeedTrials: Sendable {
    var seed: RunSeed
    var metric: Metric
    var grids: [String: [Trial]]
    var selected: [String: Trial]

    /// The selected trial of the configuration named `name`.
    subscript(_ name: String) -> Trial {
        guard let trial = selected[name] else { fatalError("lab: no configuration named '\(name)' (have \(selected.keys.sorted()))") }
        return trial
    }

    /// The trials at every learning rate of the configuration named `name`.
    func grid(_ name: String) -> [Trial] {
        guard let grid = grids[name] else { fatalError("lab: no configuration named '\(name)' (have \(grids.keys.sorted()))") }
        return grid
    }
}

/// The yardstick a trained model is measured against at one seed, from its
/// controls: a classifier learns when its accuracy is at least halfway from
/// the majority class to the best linear model, a regression when its error is
/// at most half the best linear model's; one result clearly beats another by a
/// quarter of that distance.
struct Yardstick {
    var metric: Metric
    /// The score a model must reach to count as having learned.
    var learned: Double
    /// How much better than another a score must be to count as clearly better.
    var margin: Double
    /// What a run without a score (stopped before its first epoch) counts as.
    var nothingLearned: Double

    init(_ seed: SeedTrials) {
        metric = seed.metric
        let linear = seed[ControlName.linear].score
        if metric.higherIsBetter {
            let floor = seed[ControlName.majorityClass].score
            learned = floor + (linear - floor) / 2
            margin = (linear - floor) / 4
            nothingLearned = floor
        } else {
            learned = linear / 2
            margin = linear / 4
            nothingLearned = seed[ControlName.mean].score
        }
    }

    /// Whether `score` counts as having learned.
    func learns(_ score: Double) -> Bool { score.isFinite && !metric.isBetter(learned, than: score) }

    /// Whether `score` is better than `other` by at least the margin (a missing `other` counts as nothing learned).
    func clearlyBeats(_ score: Double, _ other: Double) -> Bool {
        score.isFinite && metric.improvement(of: score, over: other.isFinite ? other : nothingLearned) >= margin
    }

    /// The rule in words, for the report.
    static func words(_ metric: Metric) -> (learns: String, beats: String) {
        metric.higherIsBetter
            ? ("its test accuracy is at least halfway from the majority class to the best linear model", "a quarter of that distance")
            : ("its test error is at most half the best linear model's", "a quarter of the linear model's error")
    }
}
