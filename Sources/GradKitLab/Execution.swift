// GradKitLab — running an experiment's trials, several at once, with results that do not depend on the schedule. SPDX-License-Identifier: MIT
import Dispatch
import GradKit
import Synchronization

extension Lab {
    /// Trains every configuration of `experiment` at every seed of `plan` and
    /// every learning rate of its grid, `threads` trials at a time, and
    /// analyzes the trials.
    ///
    /// Each trial builds its own data, model, optimizer and monitor from its
    /// seed, on the thread that runs it; what threads share is safe to share:
    /// the autograd tape, the ``withManualSeed(_:_:)`` scope and the tensor
    /// buffer pool are per thread; the C kernels' pool serves one caller at a
    /// time and runs a concurrent caller's kernel on that caller's own thread
    /// (an OpenMP build gives each calling thread its own team), and a
    /// kernel's result never depends on how its work was split. So the
    /// trials, collected by position, are the same for any number of threads
    /// and any schedule. Trials compute matrix products in the calling
    /// thread's precision (``Kernels/withMatmulPrecision(_:_:)``).
    static func execute(_ experiment: Experiment, _ plan: Plan, threads: Int) -> Analysis {
        let configurations = experiment.configurations(plan)
        struct Job: Sendable {
            var configuration: Int, seed: Int, rate: Int
        }
        var jobs: [Job] = []
        for c in configurations.indices {
            let rates = Swift.max(configurations[c].learningRates.count, 1)
            for s in plan.seeds.indices {
                for r in 0..<rates { jobs.append(Job(configuration: c, seed: s, rate: r)) }
            }
        }
        let precision = Kernels.activeMatmulPrecision
        let trials = parallelMap(jobs, threads: threads) { job in
            let configuration = configurations[job.configuration]
            let rate = configuration.learningRates.isEmpty ? 0 : configuration.learningRates[job.rate]
            return Kernels.withMatmulPrecision(precision) {
                configuration.run(TrialContext(seed: RunSeed(value: plan.seeds[job.seed]), learningRate: rate, plan: plan))
            }
        }
        // Back into configuration → seed → rate, by the jobs' own coordinates.
        var grid: [[[Trial]]] = configurations.map { c in plan.seeds.map { _ in [] } }
        for (job, trial) in zip(jobs, trials) { grid[job.configuration][job.seed].append(trial) }
        return Analysis(experiment: experiment, plan: plan, configurations: configurations, trials: grid)
    }
}

/// `body` applied to every element, on up to `threads` threads; the results
/// are in the elements' order whatever thread ran which.
func parallelMap<Element: Sendable, Result: Sendable>(
    _ elements: [Element], threads: Int, _ body: @escaping @Sendable (Element) -> Result
) -> [Result] {
    let workers = Swift.max(1, Swift.min(threads, elements.count))
    if workers == 1 { return elements.map(body) }
    let next = Atomic<Int>(0)
    let results = Mutex<[Result?]>(Array(repeating: nil, count: elements.count))
    DispatchQueue.concurrentPerform(iterations: workers) { _ in
        while true {
            let i = next.add(1, ordering: .relaxed).oldValue
            guard i < elements.count else { return }
            let result = body(elements[i])
            results.withLock { $0[i] = result }
        }
    }
    return results.withLock { $0.map { $0! } }
}
