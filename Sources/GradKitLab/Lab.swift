// GradKitLab — experiments that show each gradient pathology and its cure, over several seeds, and their report. SPDX-License-Identifier: MIT
import GradKit

/// How the lab runs.
public struct LabOptions: Sendable {
    /// Fewer seeds and epochs: the whole lab in well under a minute.
    public var quick: Bool
    /// The seed the run seeds are derived from (``Lab/seeds(for:)``).
    public var seed: UInt64
    /// Run only the experiments whose name contains this.
    public var only: String?
    /// Trials trained at once, each on its own thread. Results do not depend
    /// on it. For speed, give each trial one kernel thread
    /// (`Kernels.threadCount = 1`) when this is above 1: `gradkit lab` does.
    public var threads: Int
    /// How every trial's matrix products compute (`--matmul-precision`):
    /// ``Lab/run(_:progress:)`` runs the trials in it, whatever the calling
    /// thread's precision, and the report records it.
    public var matmulPrecision: MatmulPrecision

    /// - Parameter threads: trials at once; values below 1 count as 1.
    public init(quick: Bool = false, seed: UInt64 = 0, only: String? = nil, threads: Int = 1, matmulPrecision: MatmulPrecision = .float32) {
        self.quick = quick
        self.seed = seed
        self.only = only
        self.threads = Swift.max(1, threads)
        self.matmulPrecision = matmulPrecision
    }
}

/// The lab: runs the experiments and writes `report.md`, `results.json` and
/// `figures/*.svg`.
public enum Lab {
    /// Every experiment, in report order.
    static let experiments: [Experiment] = [
        Vanishing.experiment, ExplodingDeepNet.experiment, ExplodingRNN.experiment, Optimizers.experiment, PerceptronExperiment.experiment,
        LongMemory.experiment, SignalPropagationExperiment.experiment, LossScaling.experiment,
    ]

    /// The experiments' names, in report order.
    public static var experimentNames: [String] { experiments.map(\.name) }

    /// Seeds per configuration: at least 5 in a full run, 3 with `--quick`.
    static func seedCount(quick: Bool) -> Int { quick ? 3 : 5 }

    /// The seeds every configuration runs at: `1000·seed`, `1000·seed + 1`, ...,
    /// so that the default run's seeds read 0, 1, 2, ... and two base seeds
    /// never share a run seed.
    public static func seeds(for options: LabOptions) -> [UInt64] {
        (0..<seedCount(quick: options.quick)).map { options.seed &* 1000 &+ UInt64($0) }
    }

    /// Runs the selected experiments in the options' matmul precision,
    /// calling `progress` with a line as each starts and ends.
    public static func run(_ options: LabOptions, progress: (String) -> Void = { _ in }) -> [ExperimentResult] {
        run(options, epochLimit: nil, progress: progress)
    }

    /// ``run(_:progress:)`` with every experiment's epochs capped at `epochLimit` (``Plan/epochLimit``).
    static func run(_ options: LabOptions, epochLimit: Int?, progress: (String) -> Void = { _ in }) -> [ExperimentResult] {
        // The trials' threads take the precision from this one (execute).
        Kernels.withMatmulPrecision(options.matmulPrecision) { runSelected(options, epochLimit: epochLimit, progress: progress) }
    }

    private static func runSelected(_ options: LabOptions, epochLimit: Int?, progress: (String) -> Void) -> [ExperimentResult] {
        let plan = Plan(quick: options.quick, seeds: seeds(for: options), epochLimit: epochLimit)
        let clock = ContinuousClock()
        var results: [ExperimentResult] = []
        for experiment in experiments where options.only.map({ experiment.name.contains($0) }) ?? true {
            progress("running \(experiment.name)\(options.quick ? " (quick)" : "") at \(plan.seeds.count) seeds ...")
            let started = clock.now
            var result = run(experiment, plan, threads: options.threads)
            result.seconds = started.duration(to: clock.now).seconds
            progress("  \(result.demonstrated ? "shown" : "NOT shown"): \(result.verdict) (\(fixed(result.seconds, decimals: 1)) s)")
            results.append(result)
        }
        return results
    }

    /// One experiment: its trials, their analysis and its conclusion.
    static func run(_ experiment: Experiment, _ plan: Plan, threads: Int) -> ExperimentResult {
        let analysis = execute(experiment, plan, threads: threads)
        let conclusion = experiment.conclude(analysis)
        return ExperimentResult(
            name: experiment.name, title: experiment.title, verdict: conclusion.headline, demonstrated: conclusion.demonstrated,
            blocks: conclusion.blocks, metricName: experiment.metric.name, configurations: analysis.summaries, metrics: conclusion.metrics)
    }
}
