// GradKitLab — from trials to numbers and verdicts: learning rates chosen on validation data, seeds counted. SPDX-License-Identifier: MIT
import GradKit

/// A configuration's verdict: what its claim says in at least 80% of the
/// seeds, or "mixed" when neither it nor its negation does.
struct Verdict: Sendable, Equatable {
    /// "helps", "does not help", "mixed", or "reference" for a configuration without a claim.
    var label: String
    /// Seeds run.
    var seeds: Int
    /// Seeds where the claim held.
    var holding: Int
    /// Whether the claim holds in at least 80% of the seeds.
    var holds: Bool
    /// Whether it fails in at least 80% of the seeds.
    var fails: Bool
    /// The configuration claims nothing.
    var isReference: Bool

    /// The share of seeds a label needs.
    static let agreement = 0.8

    /// The verdict from the claim's outcome at each of `seeds` seeds (no outcomes without a claim).
    init(claim: Claim?, outcomes: [Bool], seeds: Int) {
        self.seeds = seeds
        holding = outcomes.filter { $0 }.count
        isReference = claim == nil
        guard let claim else {
            label = "reference"
            holds = false
            fails = false
            return
        }
        let needed = Int((Verdict.agreement * Double(seeds)).rounded(.up))
        holds = seeds > 0 && holding >= needed
        fails = seeds > 0 && seeds - holding >= needed
        label = holds ? claim.holds : fails ? claim.fails : "mixed"
    }

    /// Seeds that agree with the label: for "mixed", the larger side; for "reference", all.
    var agreeing: Int {
        if holds { return holding }
        if fails { return seeds - holding }
        return isReference ? seeds : Swift.max(holding, seeds - holding)
    }

    /// "helps in 5 of 5 seeds", "mixed: helps in 3 of 5 seeds", or "reference".
    func describe(_ claim: Claim?) -> String {
        guard let claim else { return label }
        if holds { return "\(label) in \(holding) of \(seeds) seeds" }
        if fails { return "\(label) in \(seeds - holding) of \(seeds) seeds" }
        return "mixed: \(claim.holds) in \(holding) of \(seeds) seeds"
    }
}

/// One configuration across the seeds.
struct ConfigurationSummary: Sendable {
    var configuration: Configuration
    /// The selected trial at each seed (the learning rate with the best validation score).
    var trials: [Trial]
    /// Whether the claim held at each seed (empty without a claim).
    var outcomes: [Bool]
    var verdict: Verdict

    var name: String { configuration.name }
    var role: Role { configuration.role }
    var claim: Claim? { configuration.claim }
    /// The score at each seed.
    var scores: [Double] { trials.map(\.score) }
    /// Median, minimum and maximum of the scores; a seed without a score counts as the worst.
    var scoreRange: Range3 { Range3(scores, missingIsHigh: !metric.higherIsBetter) }
    /// What the scores measure.
    var metric: Metric
    /// Seeds whose run hit a non-finite gradient.
    var divergedSeeds: Int { trials.filter(\.diverged).count }
}

/// A median with the smallest and largest value.
struct Range3: Sendable {
    var median: Double
    var min: Double
    var max: Double

    /// Over `values`. A NaN (a missing value) sorts above every number, or
    /// below with `missingIsHigh` false, so that it counts as the worst score
    /// in the median; the smallest and largest are over the numbers only.
    init(_ values: [Double], missingIsHigh: Bool = true) {
        let numbers = values.filter { !$0.isNaN }.sorted()
        let missing = [Double](repeating: .nan, count: values.count - numbers.count)
        let sorted = missingIsHigh ? numbers + missing : missing + numbers
        let n = sorted.count
        median = n == 0 ? .nan : n % 2 == 1 ? sorted[n / 2] : (sorted[n / 2 - 1] + sorted[n / 2]) / 2
        min = numbers.first ?? .nan
        max = numbers.last ?? .nan
    }
}

/// An experiment's trials turned into numbers and verdicts.
struct Analysis: Sendable {
    var experiment: Experiment
    var plan: Plan
    var summaries: [ConfigurationSummary]
    /// Every trial: configuration → seed → learning rate, in declaration order.
    var allTrials: [[[Trial]]]
    /// Every configuration's trials at each seed, by name.
    var seedTrials: [SeedTrials]

    var metric: Metric { experiment.metric }

    /// The summary of the configuration named `name`.
    subscript(_ name: String) -> ConfigurationSummary {
        guard let summary = summaries.first(where: { $0.name == name }) else {
            fatalError("lab: \(experiment.name) has no configuration named '\(name)'")
        }
        return summary
    }

    /// The configurations in `role`, in declaration order.
    func configurations(_ role: Role) -> [ConfigurationSummary] { summaries.filter { $0.role == role } }

    /// Selects each configuration's learning rate per seed on validation data
    /// and judges every claim at every seed.
    /// - Parameter trials: configuration → seed → learning rate, as declared.
    init(experiment: Experiment, plan: Plan, configurations: [Configuration], trials: [[[Trial]]]) {
        self.experiment = experiment
        self.plan = plan
        self.allTrials = trials
        let metric = experiment.metric
        let selected = trials.map { perSeed in perSeed.map { grid in Analysis.select(grid, metric) } }
        let seeds = plan.seeds.indices.map { s in
            SeedTrials(
                seed: RunSeed(value: plan.seeds[s]), metric: metric,
                grids: Dictionary(uniqueKeysWithValues: zip(configurations, trials).map { ($0.name, $1[s]) }),
                selected: Dictionary(uniqueKeysWithValues: zip(configurations, selected).map { ($0.name, $1[s]) }))
        }
        seedTrials = seeds
        summaries = zip(configurations, selected).map { configuration, trials in
            let outcomes = configuration.claim.map { claim in zip(trials, seeds).map { claim.test($0, $1) } } ?? []
            return ConfigurationSummary(
                configuration: configuration, trials: trials, outcomes: outcomes,
                verdict: Verdict(claim: configuration.claim, outcomes: outcomes, seeds: trials.count), metric: metric)
        }
    }

    /// The trial with the best validation score; the first (smallest rate, as
    /// grids are declared) among equals, and the first when none scored.
    static func select(_ grid: [Trial], _ metric: Metric) -> Trial {
        var best = 0
        for i in grid.indices.dropFirst() where metric.isBetter(grid[i].validationScore, than: grid[best].validationScore) { best = i }
        return grid[best]
    }

    /// At how many seeds `condition` holds for the configuration's selected trial.
    func seeds(_ summary: ConfigurationSummary, where condition: (Trial, SeedTrials) -> Bool) -> Int {
        zip(summary.trials, seedTrials).filter { condition($0, $1) }.count
    }

    /// Whether `count` seeds are at least 80% of them.
    func mostSeeds(_ count: Int) -> Bool { Double(count) >= Verdict.agreement * Double(plan.seeds.count) }

    /// The one with the best median score (the first of equals).
    func best(_ candidates: [ConfigurationSummary]) -> ConfigurationSummary? {
        candidates.reduce(nil) { best, s in best.map { metric.isBetter(s.scoreRange.median, than: $0.scoreRange.median) ? s : $0 } ?? s }
    }

    /// The headline's list of configurations whose verdict holds (or fails), by name.
    func names(where include: (ConfigurationSummary) -> Bool) -> [String] { summaries.filter(include).map(\.name) }
}
