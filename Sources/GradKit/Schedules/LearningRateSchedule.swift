// GradKit — learning-rate schedules. SPDX-License-Identifier: MIT
#if canImport(Glibc)
import Glibc
#endif

/// A learning rate as a function of the scheduler's step count, like
/// `torch.optim.lr_scheduler` (closed forms; `step` counts scheduler steps,
/// 0 being the rate before the first one).
///
/// Drive one with ``LearningRateScheduler``; compose with ``SequentialSchedule``.
public protocol LearningRateSchedule: Sendable {
    /// The learning rate after `step` scheduler steps, for an optimizer whose
    /// initial learning rate is `base`.
    func learningRate(atStep step: Int, base: Double) -> Double

    /// The momentum (SGD, RMSprop) or beta1 (Adam) to use at `step`, for
    /// schedules that cycle it (``OneCycle``); nil otherwise.
    func momentum(atStep step: Int) -> Double?
}

/// Schedules that leave momentum alone.
extension LearningRateSchedule {
    /// Returns nil: the optimizer's momentum (or beta1) is not touched.
    public func momentum(atStep step: Int) -> Double? { nil }
}

/// Decays by `gamma` every `stepSize` steps (PyTorch's `StepLR`):
/// `base * gamma^⌊step / stepSize⌋`.
public struct StepDecay: LearningRateSchedule {
    /// Scheduler steps between two decays (PyTorch's `step_size`); greater than 0.
    public var stepSize: Int
    /// The factor applied at each decay (PyTorch's `gamma`), usually in (0, 1).
    public var gamma: Double

    /// A schedule that multiplies the rate by `gamma` every `stepSize` steps.
    ///
    /// - Precondition: `stepSize > 0`.
    /// - Parameters:
    ///   - stepSize: scheduler steps between two decays.
    ///   - gamma: the factor applied at each decay (PyTorch's default 0.1).
    public init(stepSize: Int, gamma: Double = 0.1) {
        precondition(stepSize > 0, "StepDecay: stepSize must be > 0, got \(stepSize)")
        self.stepSize = stepSize
        self.gamma = gamma
    }

    /// `base * gamma^⌊step / stepSize⌋`.
    public func learningRate(atStep step: Int, base: Double) -> Double {
        base * pow(gamma, Double(step / stepSize))
    }
}

/// Decays by `gamma` at each milestone (PyTorch's `MultiStepLR`):
/// `base * gamma^(number of milestones <= step)`.
public struct MultiStepDecay: LearningRateSchedule {
    /// The steps at which the rate is multiplied by `gamma`, sorted ascending.
    public var milestones: [Int]
    /// The factor applied at each milestone (PyTorch's `gamma`).
    public var gamma: Double

    /// A schedule that multiplies the rate by `gamma` at each of `milestones`.
    ///
    /// - Parameters:
    ///   - milestones: scheduler steps at which to decay; stored sorted, a repeated step decays twice.
    ///   - gamma: the factor applied at each milestone (PyTorch's default 0.1).
    public init(milestones: [Int], gamma: Double = 0.1) {
        self.milestones = milestones.sorted()
        self.gamma = gamma
    }

    /// `base * gamma^(number of milestones <= step)`.
    public func learningRate(atStep step: Int, base: Double) -> Double {
        base * pow(gamma, Double(milestones.filter { $0 <= step }.count))
    }
}

/// Decays by `gamma` every step (PyTorch's `ExponentialLR`): `base * gamma^step`.
public struct ExponentialDecay: LearningRateSchedule {
    /// The factor applied every step (PyTorch's `gamma`).
    public var gamma: Double

    /// A schedule that multiplies the rate by `gamma` every step.
    ///
    /// - Parameter gamma: the per-step factor; below 1 decays, 1 keeps the rate.
    public init(gamma: Double) { self.gamma = gamma }

    /// `base * gamma^step`.
    public func learningRate(atStep step: Int, base: Double) -> Double { base * pow(gamma, Double(step)) }
}

/// Inverse-time decay (Keras' `InverseTimeDecay`):
/// `base / (1 + decayRate * step / decaySteps)`, with `⌊step / decaySteps⌋`
/// when `staircase`.
public struct InverseTimeDecay: LearningRateSchedule {
    /// How fast the rate falls: at `step == decaySteps` it is `base / (1 + decayRate)`; at least 0.
    public var decayRate: Double
    /// The steps over which `decayRate` applies once (Keras' `decay_steps`); greater than 0.
    public var decaySteps: Int
    /// Whether the progress `step / decaySteps` is rounded down, so the rate falls in stairs.
    public var staircase: Bool

    /// A schedule `base / (1 + decayRate * step / decaySteps)`.
    ///
    /// - Parameters:
    ///   - decayRate: the rate's fall per `decaySteps` steps.
    ///   - decaySteps: the steps over which `decayRate` applies once.
    ///   - staircase: round the progress down (Keras' `staircase`).
    /// - Precondition: `decaySteps > 0`, `decayRate >= 0`.
    public init(decayRate: Double, decaySteps: Int = 1, staircase: Bool = false) {
        precondition(decaySteps > 0, "InverseTimeDecay: decaySteps must be > 0, got \(decaySteps)")
        precondition(decayRate >= 0, "InverseTimeDecay: decayRate must be >= 0, got \(decayRate)")
        self.decayRate = decayRate
        self.decaySteps = decaySteps
        self.staircase = staircase
    }

    /// `base / (1 + decayRate * progress)`, progress being `step / decaySteps`, rounded down when `staircase`.
    public func learningRate(atStep step: Int, base: Double) -> Double {
        let progress = staircase ? Double(step / decaySteps) : Double(step) / Double(decaySteps)
        return base / (1 + decayRate * progress)
    }
}

/// Cosine annealing (PyTorch's `CosineAnnealingLR`):
/// `minimum + (base - minimum) (1 + cos(π step / period)) / 2`
/// (periodic beyond `period`, as PyTorch's).
public struct CosineAnnealing: LearningRateSchedule {
    /// Scheduler steps from `base` down to `minimum` (PyTorch's `T_max`); greater than 0.
    public var period: Int
    /// The lowest rate, reached at `step == period` (PyTorch's `eta_min`).
    public var minimum: Double

    /// A schedule that follows half a cosine from `base` down to `minimum` over `period` steps.
    ///
    /// - Parameters:
    ///   - period: the steps from `base` to `minimum` (PyTorch's `T_max`).
    ///   - minimum: the lowest rate (PyTorch's `eta_min`).
    /// - Precondition: `period > 0`.
    public init(period: Int, minimum: Double = 0) {
        precondition(period > 0, "CosineAnnealing: period must be > 0, got \(period)")
        self.period = period
        self.minimum = minimum
    }

    /// `minimum + (base - minimum) (1 + cos(π step / period)) / 2`.
    public func learningRate(atStep step: Int, base: Double) -> Double {
        minimum + (base - minimum) * (1 + cos(Double.pi * Double(step) / Double(period))) / 2
    }
}

/// Cosine annealing with warm restarts (SGDR, Loshchilov and Hutter, 2017;
/// PyTorch's `CosineAnnealingWarmRestarts`): the cosine of ``CosineAnnealing``
/// over periods `firstPeriod`, `firstPeriod * periodMultiplier`, ..., restarting
/// at `base` after each.
public struct CosineAnnealingWarmRestarts: LearningRateSchedule {
    /// Scheduler steps of the first cycle (PyTorch's `T_0`); greater than 0.
    public var firstPeriod: Int
    /// The factor by which each cycle is longer than the one before (PyTorch's `T_mult`); at least 1.
    public var periodMultiplier: Int
    /// The lowest rate, approached at the end of each cycle (PyTorch's `eta_min`).
    public var minimum: Double

    /// A schedule of cosine cycles that restart at `base`.
    ///
    /// - Parameters:
    ///   - firstPeriod: steps of the first cycle (PyTorch's `T_0`).
    ///   - periodMultiplier: each cycle's length over the previous one's (PyTorch's `T_mult`).
    ///   - minimum: the lowest rate (PyTorch's `eta_min`).
    /// - Precondition: `firstPeriod > 0`, `periodMultiplier >= 1`.
    public init(firstPeriod: Int, periodMultiplier: Int = 1, minimum: Double = 0) {
        precondition(firstPeriod > 0, "CosineAnnealingWarmRestarts: firstPeriod must be > 0, got \(firstPeriod)")
        precondition(periodMultiplier >= 1, "CosineAnnealingWarmRestarts: periodMultiplier must be >= 1")
        self.firstPeriod = firstPeriod
        self.periodMultiplier = periodMultiplier
        self.minimum = minimum
    }

    /// Steps since the last restart, and the current period.
    func position(_ step: Int) -> (current: Int, period: Int) {
        var current = step, period = firstPeriod
        while current >= period {
            current -= period
            period *= periodMultiplier
        }
        return (current, period)
    }

    /// `minimum + (base - minimum) (1 + cos(π t / T)) / 2`, `t` being the steps since the last restart and `T` the current cycle's length.
    public func learningRate(atStep step: Int, base: Double) -> Double {
        let (current, period) = position(step)
        return minimum + (base - minimum) * (1 + cos(Double.pi * Double(current) / Double(period))) / 2
    }
}

/// Linear warmup (PyTorch's `LinearLR`): the factor moves linearly from
/// `startFactor` to `endFactor` over `steps` steps, then stays:
/// `base * (startFactor + (endFactor - startFactor) * min(step, steps) / steps)`.
/// PyTorch's defaults: 1/3, 1, 5 steps.
public struct LinearWarmup: LearningRateSchedule {
    /// The factor of `base` at step 0 (PyTorch's `start_factor`), in (0, 1].
    public var startFactor: Double
    /// The factor of `base` from step `steps` on (PyTorch's `end_factor`), in [0, 1].
    public var endFactor: Double
    /// Scheduler steps from `startFactor` to `endFactor` (PyTorch's `total_iters`); greater than 0.
    public var steps: Int

    /// A schedule that scales the rate linearly from `startFactor * base` to `endFactor * base`.
    ///
    /// - Parameters:
    ///   - startFactor: the factor at step 0.
    ///   - endFactor: the factor from step `steps` on.
    ///   - steps: the steps of the ramp.
    /// - Precondition: `0 < startFactor <= 1`, `0 <= endFactor <= 1`, `steps > 0`.
    public init(startFactor: Double = 1.0 / 3, endFactor: Double = 1, steps: Int = 5) {
        precondition(startFactor > 0 && startFactor <= 1, "LinearWarmup: startFactor must be in (0, 1], got \(startFactor)")
        precondition(endFactor >= 0 && endFactor <= 1, "LinearWarmup: endFactor must be in [0, 1], got \(endFactor)")
        precondition(steps > 0, "LinearWarmup: steps must be > 0, got \(steps)")
        self.startFactor = startFactor
        self.endFactor = endFactor
        self.steps = steps
    }

    /// `base * (startFactor + (endFactor - startFactor) * min(step, steps) / steps)`.
    public func learningRate(atStep step: Int, base: Double) -> Double {
        base * (startFactor + (endFactor - startFactor) * Double(Swift.min(steps, step)) / Double(steps))
    }
}

/// The one-cycle policy (Smith and Topin, 2017; PyTorch's `OneCycleLR`): from
/// `maximum / initialDivisor` up to `maximum` over the first
/// `warmupFraction` of `totalSteps`, then down to
/// `maximum / initialDivisor / finalDivisor`; with `threePhase`, back to the
/// initial rate first, then down. Momentum (or Adam's beta1) is cycled
/// inversely between `maximumMomentum` and `baseMomentum` unless
/// `cycleMomentum` is false. The optimizer's own rate is ignored. After
/// `totalSteps` steps the final values hold (PyTorch raises an error).
public struct OneCycle: LearningRateSchedule {
    /// How each phase interpolates between its end points.
    public enum Annealing: Sendable {
        /// Half a cosine, flat at both ends (PyTorch's `anneal_strategy="cos"`, the default).
        case cosine
        /// A straight line (PyTorch's `anneal_strategy="linear"`).
        case linear
    }

    /// The peak learning rate (PyTorch's `max_lr`); the optimizer's own rate is ignored.
    public var maximum: Double
    /// Scheduler steps in the whole cycle (PyTorch's `total_steps`); greater than 0.
    public var totalSteps: Int
    /// The fraction of `totalSteps` spent rising to `maximum` (PyTorch's `pct_start`), in [0, 1].
    public var warmupFraction: Double
    /// How each phase interpolates between its end points.
    public var annealing: Annealing
    /// The initial rate is `maximum / initialDivisor` (PyTorch's `div_factor`).
    public var initialDivisor: Double
    /// The final rate is `maximum / initialDivisor / finalDivisor` (PyTorch's `final_div_factor`).
    public var finalDivisor: Double
    /// Whether the rate returns to the initial rate before falling to the final one (PyTorch's `three_phase`).
    public var threePhase: Bool
    /// Whether momentum (or Adam's beta1) is cycled inversely to the rate (PyTorch's `cycle_momentum`).
    public var cycleMomentum: Bool
    /// The momentum at the peak learning rate (PyTorch's `base_momentum`).
    public var baseMomentum: Double
    /// The momentum at the initial and final learning rates (PyTorch's `max_momentum`).
    public var maximumMomentum: Double

    /// A one-cycle schedule with PyTorch's `OneCycleLR` defaults.
    ///
    /// - Parameters:
    ///   - maximum: the peak rate (`max_lr`).
    ///   - totalSteps: scheduler steps in the cycle (`total_steps`).
    ///   - warmupFraction: the fraction of the cycle spent rising (`pct_start`, default 0.3).
    ///   - annealing: cosine (default) or linear interpolation (`anneal_strategy`).
    ///   - initialDivisor: the initial rate is `maximum / initialDivisor` (`div_factor`, default 25).
    ///   - finalDivisor: the final rate is the initial one over `finalDivisor` (`final_div_factor`, default 1e4).
    ///   - threePhase: rise, fall back to the initial rate, then fall to the final one (`three_phase`).
    ///   - cycleMomentum: cycle momentum or beta1 inversely to the rate (`cycle_momentum`, default true).
    ///   - baseMomentum: the momentum at the peak rate (`base_momentum`, default 0.85).
    ///   - maximumMomentum: the momentum at the initial and final rates (`max_momentum`, default 0.95).
    /// - Precondition: `totalSteps > 0`, `0 <= warmupFraction <= 1`.
    public init(
        maximum: Double, totalSteps: Int, warmupFraction: Double = 0.3, annealing: Annealing = .cosine,
        initialDivisor: Double = 25, finalDivisor: Double = 1e4, threePhase: Bool = false,
        cycleMomentum: Bool = true, baseMomentum: Double = 0.85, maximumMomentum: Double = 0.95
    ) {
        precondition(totalSteps > 0, "OneCycle: totalSteps must be > 0, got \(totalSteps)")
        precondition(warmupFraction >= 0 && warmupFraction <= 1, "OneCycle: warmupFraction must be in [0, 1]")
        self.maximum = maximum
        self.totalSteps = totalSteps
        self.warmupFraction = warmupFraction
        self.annealing = annealing
        self.initialDivisor = initialDivisor
        self.finalDivisor = finalDivisor
        self.threePhase = threePhase
        self.cycleMomentum = cycleMomentum
        self.baseMomentum = baseMomentum
        self.maximumMomentum = maximumMomentum
    }

    private struct Phase {
        var end: Double, startRate: Double, endRate: Double, startMomentum: Double, endMomentum: Double
    }

    private var phases: [Phase] {
        let initial = maximum / initialDivisor, final = initial / finalDivisor
        let warm = warmupFraction * Double(totalSteps)
        if threePhase {
            return [
                Phase(end: warm - 1, startRate: initial, endRate: maximum, startMomentum: maximumMomentum, endMomentum: baseMomentum),
                Phase(end: 2 * warm - 2, startRate: maximum, endRate: initial, startMomentum: baseMomentum, endMomentum: maximumMomentum),
                Phase(end: Double(totalSteps - 1), startRate: initial, endRate: final, startMomentum: maximumMomentum, endMomentum: maximumMomentum),
            ]
        }
        return [
            Phase(end: warm - 1, startRate: initial, endRate: maximum, startMomentum: maximumMomentum, endMomentum: baseMomentum),
            Phase(end: Double(totalSteps - 1), startRate: maximum, endRate: final, startMomentum: baseMomentum, endMomentum: maximumMomentum),
        ]
    }

    private func anneal(_ start: Double, _ end: Double, _ fraction: Double) -> Double {
        switch annealing {
        case .cosine: end + (start - end) / 2 * (cos(Double.pi * fraction) + 1)
        case .linear: (end - start) * fraction + start
        }
    }

    private func interpolate(_ step: Int, _ value: (Phase) -> (Double, Double)) -> Double {
        // Past the cycle the final values hold (PyTorch raises instead).
        let step = Swift.min(step, totalSteps - 1)
        var start = 0.0
        let all = phases
        for (i, phase) in all.enumerated() {
            if Double(step) <= phase.end || i == all.count - 1 {
                let (from, to) = value(phase)
                return anneal(from, to, (Double(step) - start) / (phase.end - start))
            }
            start = phase.end
        }
        return 0
    }

    /// The rate of the phase `step` falls in, interpolated between the phase's end points; `base` is ignored.
    public func learningRate(atStep step: Int, base: Double) -> Double {
        interpolate(step) { ($0.startRate, $0.endRate) }
    }

    /// The momentum interpolated like the rate but inversely, or nil when `cycleMomentum` is false.
    public func momentum(atStep step: Int) -> Double? {
        cycleMomentum ? interpolate(step) { ($0.startMomentum, $0.endMomentum) } : nil
    }
}

/// Runs `schedules` one after another, switching at `milestones` (PyTorch's
/// `SequentialLR`): before `milestones[0]` the first schedule at `step`; then
/// the second at `step - milestones[0]`, and so on. The usual "linear warmup,
/// then cosine" is
/// `SequentialSchedule([LinearWarmup(steps: w), CosineAnnealing(period: n - w)], milestones: [w])`.
public struct SequentialSchedule: LearningRateSchedule {
    /// The schedules, in the order they run.
    public var schedules: [any LearningRateSchedule]
    /// The steps at which the next schedule takes over; one fewer than `schedules`, increasing.
    public var milestones: [Int]

    /// A schedule that runs `schedules` one after another.
    ///
    /// - Parameters:
    ///   - schedules: the schedules in the order they run; at least one.
    ///   - milestones: the steps at which the next schedule takes over, with its step count restarting at 0.
    /// - Precondition: one milestone fewer than schedules, increasing.
    public init(_ schedules: [any LearningRateSchedule], milestones: [Int]) {
        precondition(!schedules.isEmpty, "SequentialSchedule: needs at least one schedule")
        precondition(
            milestones.count == schedules.count - 1,
            "SequentialSchedule: \(schedules.count) schedules need \(schedules.count - 1) milestones, got \(milestones.count)")
        precondition(milestones == milestones.sorted(), "SequentialSchedule: milestones must increase")
        self.schedules = schedules
        self.milestones = milestones
    }

    private func segment(_ step: Int) -> (Int, Int) {
        let index = milestones.filter { $0 <= step }.count
        return (index, index == 0 ? step : step - milestones[index - 1])
    }

    /// The rate of the schedule in force at `step`, asked at the steps since its milestone.
    public func learningRate(atStep step: Int, base: Double) -> Double {
        let (index, local) = segment(step)
        return schedules[index].learningRate(atStep: local, base: base)
    }

    /// The momentum of the schedule in force at `step`, asked at the steps since its milestone.
    public func momentum(atStep step: Int) -> Double? {
        let (index, local) = segment(step)
        return schedules[index].momentum(atStep: local)
    }
}

/// Applies a schedule to an optimizer: sets the step-0 rate on creation and
/// the next one on each ``step()`` (call it after `optimizer.step()`, per
/// epoch or per batch as the schedule intends, like PyTorch's `scheduler.step()`).
///
/// Each parameter group follows the schedule from its own rate at creation
/// (PyTorch's `initial_lr`); a schedule that cycles momentum sets it in every
/// group.
public final class LearningRateScheduler {
    /// The optimizer whose parameter groups' learning rates (and momentum, if the schedule cycles it) are set.
    public let optimizer: Optimizer
    /// The schedule that gives the rate at each step.
    public let schedule: any LearningRateSchedule
    /// Each group's learning rate when the scheduler was made.
    public let baseLearningRates: [Double]
    /// Scheduler steps taken.
    public private(set) var stepCount = 0
    /// What a momentum-cycling schedule sets: momentum, or Adam's beta1.
    private let cycled: Hyperparameter?

    /// A scheduler that sets the optimizer's rates to the schedule's step-0 values at once.
    ///
    /// - Parameters:
    ///   - optimizer: the optimizer whose groups' rates it sets.
    ///   - schedule: the rate (and optionally momentum) per step.
    /// - Precondition: a schedule that cycles momentum needs an optimizer with
    ///   momentum or beta1 (SGD, RMSprop, Adam, AdamW).
    public init(optimizer: Optimizer, schedule: any LearningRateSchedule) {
        self.optimizer = optimizer
        self.schedule = schedule
        self.baseLearningRates = optimizer.parameterGroups.map { Double($0.learningRate) }
        if schedule.momentum(atStep: 0) != nil {
            let own = type(of: optimizer).hyperparameterSpecifications.map(\.hyperparameter)
            guard let cycled = [Hyperparameter.momentum, .beta1].first(where: own.contains) else {
                fatalError("LearningRateScheduler: \(optimizer.kind) has no momentum or beta1 to cycle")
            }
            self.cycled = cycled
        } else {
            self.cycled = nil
        }
        apply()
    }

    /// The first group's learning rate when the scheduler was made.
    public var baseLearningRate: Double { baseLearningRates[0] }

    /// The rate the first group uses now.
    public var learningRate: Double { learningRates[0] }

    /// The rate each group uses now.
    public var learningRates: [Double] { baseLearningRates.map { schedule.learningRate(atStep: stepCount, base: $0) } }

    /// Advances one step and updates the optimizer.
    public func step() {
        stepCount += 1
        apply()
    }

    /// Jumps to `step` (for resuming from a checkpoint).
    /// - Parameter step: the scheduler steps already taken; at least 0.
    public func resume(atStep step: Int) {
        precondition(step >= 0, "LearningRateScheduler.resume(atStep:): step must be >= 0")
        stepCount = step
        apply()
    }

    private func apply() {
        var groups = optimizer.parameterGroups
        for (g, rate) in learningRates.enumerated() { groups[g].learningRate = Float(rate) }
        if let cycled, let momentum = schedule.momentum(atStep: stepCount) {
            for g in groups.indices { groups[g][cycled] = Float(momentum) }
        }
        optimizer.parameterGroups = groups
    }
}

/// Lowers the learning rate when a metric stops improving (PyTorch's
/// `ReduceLROnPlateau`): after more than `patience` steps without an
/// improvement larger than `threshold` (relative or absolute), the rate is
/// multiplied by `factor` in every parameter group (not below the group's
/// minimum; changes smaller than `epsilon` are ignored), then `cooldown` steps
/// pass before counting again.
public final class ReduceLearningRateOnPlateau {
    /// Whether lower or higher metrics are better.
    public enum Mode: Sendable {
        /// Lower is better: a loss (PyTorch's `mode="min"`, the default).
        case minimize
        /// Higher is better: an accuracy (PyTorch's `mode="max"`).
        case maximize
    }
    /// How `threshold` measures an improvement.
    public enum ThresholdMode: Sendable {
        /// Better than `best * (1 - threshold)` when minimizing, `best * (1 + threshold)` when maximizing (PyTorch's `"rel"`).
        case relative
        /// Better than `best - threshold` when minimizing, `best + threshold` when maximizing (PyTorch's `"abs"`).
        case absolute
    }

    /// The optimizer whose groups' learning rates are lowered.
    public let optimizer: Optimizer
    /// Whether lower or higher metrics are better.
    public let mode: Mode
    /// The factor that multiplies a plateaued rate (PyTorch's `factor`); below 1.
    public let factor: Double
    /// Steps without an improvement that are tolerated; the rate falls on the next one.
    public let patience: Int
    /// The smallest change that counts as an improvement, measured as `thresholdMode` says.
    public let threshold: Double
    /// Relative or absolute `threshold`.
    public let thresholdMode: ThresholdMode
    /// Steps after a reduction during which plateaus are not counted.
    public let cooldown: Int
    /// Per parameter group: the lowest rate it is reduced to (PyTorch's `min_lr`).
    public let minimums: [Double]
    /// The smallest reduction that is applied (PyTorch's `eps`): a smaller one is skipped.
    public let epsilon: Double

    /// The best metric so far.
    public private(set) var best: Double
    /// Steps since the last improvement.
    public private(set) var badSteps = 0
    private var cooldownLeft = 0

    /// A plateau watcher with PyTorch's defaults: minimize, factor 0.1, patience 10, threshold 1e-4
    /// relative, cooldown 0, minimum 0, epsilon 1e-8.
    /// - Parameters:
    ///   - optimizer: the optimizer whose groups' learning rates are lowered.
    ///   - mode: minimize (a loss) or maximize (an accuracy).
    ///   - factor: the multiplier applied to a plateaued rate.
    ///   - patience: steps without an improvement that are tolerated.
    ///   - threshold: the smallest change that counts as an improvement.
    ///   - thresholdMode: relative or absolute `threshold`.
    ///   - cooldown: steps after a reduction during which plateaus are not counted.
    ///   - minimum: the lowest rate of every group, unless `minimums` is given.
    ///   - minimums: one lowest rate per parameter group.
    ///   - epsilon: the smallest reduction that is applied.
    /// - Precondition: `factor < 1`; `minimums`, when given, has one value per group.
    public init(
        optimizer: Optimizer, mode: Mode = .minimize, factor: Double = 0.1, patience: Int = 10, threshold: Double = 1e-4,
        thresholdMode: ThresholdMode = .relative, cooldown: Int = 0, minimum: Double = 0, minimums: [Double]? = nil,
        epsilon: Double = 1e-8
    ) {
        precondition(factor < 1, "ReduceLearningRateOnPlateau: factor should be < 1.0, got \(factor)")
        let groupCount = optimizer.parameterGroups.count
        if let minimums, minimums.count != groupCount {
            fatalError("ReduceLearningRateOnPlateau: \(minimums.count) minimums for \(groupCount) parameter groups")
        }
        self.optimizer = optimizer
        self.mode = mode
        self.factor = factor
        self.patience = patience
        self.threshold = threshold
        self.thresholdMode = thresholdMode
        self.cooldown = cooldown
        self.minimums = minimums ?? Array(repeating: minimum, count: groupCount)
        self.epsilon = epsilon
        self.best = mode == .minimize ? .infinity : -.infinity
    }

    /// The first group's minimum.
    public var minimum: Double { minimums[0] }

    private func isBetter(_ value: Double) -> Bool {
        switch (mode, thresholdMode) {
        case (.minimize, .relative): value < best * (1 - threshold)
        case (.minimize, .absolute): value < best - threshold
        case (.maximize, .relative): value > best * (threshold + 1)
        case (.maximize, .absolute): value > best + threshold
        }
    }

    /// Records the metric of one epoch and lowers the rate if it plateaued.
    /// - Parameter metric: the epoch's value of the watched metric (a validation loss, for example).
    public func step(metric: Double) {
        if isBetter(metric) {
            best = metric
            badSteps = 0
        } else {
            badSteps += 1
        }
        if cooldownLeft > 0 {
            cooldownLeft -= 1
            badSteps = 0
        }
        if badSteps > patience {
            var groups = optimizer.parameterGroups
            for g in groups.indices {
                let old = Double(groups[g].learningRate)
                let new = Swift.max(old * factor, minimums[g])
                if old - new > epsilon { groups[g].learningRate = Float(new) }
            }
            optimizer.parameterGroups = groups
            cooldownLeft = cooldown
            badSteps = 0
        }
    }
}
