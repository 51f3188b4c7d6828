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

extension LearningRateSchedule {
    public func momentum(atStep step: Int) -> Double? { nil }
}

/// Decays by `gamma` every `stepSize` steps (PyTorch's `StepLR`):
/// `base * gamma^⌊step / stepSize⌋`.
public struct StepDecay: LearningRateSchedule {
    public var stepSize: Int
    public var gamma: Double

    /// - Precondition: `stepSize > 0`.
    public init(stepSize: Int, gamma: Double = 0.1) {
        precondition(stepSize > 0, "StepDecay: stepSize must be > 0, got \(stepSize)")
        self.stepSize = stepSize
        self.gamma = gamma
    }

    public func learningRate(atStep step: Int, base: Double) -> Double {
        base * pow(gamma, Double(step / stepSize))
    }
}

/// Decays by `gamma` at each milestone (PyTorch's `MultiStepLR`):
/// `base * gamma^(number of milestones <= step)`.
public struct MultiStepDecay: LearningRateSchedule {
    public var milestones: [Int]
    public var gamma: Double

    public init(milestones: [Int], gamma: Double = 0.1) {
        self.milestones = milestones.sorted()
        self.gamma = gamma
    }

    public func learningRate(atStep step: Int, base: Double) -> Double {
        base * pow(gamma, Double(milestones.filter { $0 <= step }.count))
    }
}

/// Decays by `gamma` every step (PyTorch's `ExponentialLR`): `base * gamma^step`.
public struct ExponentialDecay: LearningRateSchedule {
    public var gamma: Double

    public init(gamma: Double) { self.gamma = gamma }

    public func learningRate(atStep step: Int, base: Double) -> Double { base * pow(gamma, Double(step)) }
}

/// Inverse-time decay (Keras' `InverseTimeDecay`):
/// `base / (1 + decayRate * step / decaySteps)`, with `⌊step / decaySteps⌋`
/// when `staircase`.
public struct InverseTimeDecay: LearningRateSchedule {
    public var decayRate: Double
    public var decaySteps: Int
    public var staircase: Bool

    /// - Precondition: `decaySteps > 0`, `decayRate >= 0`.
    public init(decayRate: Double, decaySteps: Int = 1, staircase: Bool = false) {
        precondition(decaySteps > 0, "InverseTimeDecay: decaySteps must be > 0, got \(decaySteps)")
        precondition(decayRate >= 0, "InverseTimeDecay: decayRate must be >= 0, got \(decayRate)")
        self.decayRate = decayRate
        self.decaySteps = decaySteps
        self.staircase = staircase
    }

    public func learningRate(atStep step: Int, base: Double) -> Double {
        let progress = staircase ? Double(step / decaySteps) : Double(step) / Double(decaySteps)
        return base / (1 + decayRate * progress)
    }
}

/// Cosine annealing (PyTorch's `CosineAnnealingLR`):
/// `minimum + (base - minimum) (1 + cos(π step / period)) / 2`
/// (periodic beyond `period`, as PyTorch's).
public struct CosineAnnealing: LearningRateSchedule {
    public var period: Int
    public var minimum: Double

    /// - Precondition: `period > 0`.
    public init(period: Int, minimum: Double = 0) {
        precondition(period > 0, "CosineAnnealing: period must be > 0, got \(period)")
        self.period = period
        self.minimum = minimum
    }

    public func learningRate(atStep step: Int, base: Double) -> Double {
        minimum + (base - minimum) * (1 + cos(Double.pi * Double(step) / Double(period))) / 2
    }
}

/// Cosine annealing with warm restarts (SGDR, Loshchilov and Hutter, 2017;
/// PyTorch's `CosineAnnealingWarmRestarts`): the cosine of ``CosineAnnealing``
/// over periods `firstPeriod`, `firstPeriod * periodMultiplier`, ..., restarting
/// at `base` after each.
public struct CosineAnnealingWarmRestarts: LearningRateSchedule {
    public var firstPeriod: Int
    public var periodMultiplier: Int
    public var minimum: Double

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
    public var startFactor: Double
    public var endFactor: Double
    public var steps: Int

    /// - Precondition: `0 < startFactor <= 1`, `0 <= endFactor <= 1`, `steps > 0`.
    public init(startFactor: Double = 1.0 / 3, endFactor: Double = 1, steps: Int = 5) {
        precondition(startFactor > 0 && startFactor <= 1, "LinearWarmup: startFactor must be in (0, 1], got \(startFactor)")
        precondition(endFactor >= 0 && endFactor <= 1, "LinearWarmup: endFactor must be in [0, 1], got \(endFactor)")
        precondition(steps > 0, "LinearWarmup: steps must be > 0, got \(steps)")
        self.startFactor = startFactor
        self.endFactor = endFactor
        self.steps = steps
    }

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
    /// How each phase interpolates.
    public enum Annealing: Sendable { case cosine, linear }

    public var maximum: Double
    public var totalSteps: Int
    public var warmupFraction: Double
    public var annealing: Annealing
    public var initialDivisor: Double
    public var finalDivisor: Double
    public var threePhase: Bool
    public var cycleMomentum: Bool
    public var baseMomentum: Double
    public var maximumMomentum: Double

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

    public func learningRate(atStep step: Int, base: Double) -> Double {
        interpolate(step) { ($0.startRate, $0.endRate) }
    }

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
    public var schedules: [any LearningRateSchedule]
    public var milestones: [Int]

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

    public func learningRate(atStep step: Int, base: Double) -> Double {
        let (index, local) = segment(step)
        return schedules[index].learningRate(atStep: local, base: base)
    }

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
    public let optimizer: Optimizer
    public let schedule: any LearningRateSchedule
    /// Each group's learning rate when the scheduler was made.
    public let baseLearningRates: [Double]
    /// Scheduler steps taken.
    public private(set) var stepCount = 0
    /// What a momentum-cycling schedule sets: momentum, or Adam's beta1.
    private let cycled: Hyperparameter?

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
    public enum Mode: Sendable { case minimize, maximize }
    /// How `threshold` measures an improvement.
    public enum ThresholdMode: Sendable { case relative, absolute }

    public let optimizer: Optimizer
    public let mode: Mode
    public let factor: Double
    public let patience: Int
    public let threshold: Double
    public let thresholdMode: ThresholdMode
    public let cooldown: Int
    /// Per parameter group: the lowest rate it is reduced to (PyTorch's `min_lr`).
    public let minimums: [Double]
    public let epsilon: Double

    /// The best metric so far.
    public private(set) var best: Double
    /// Steps since the last improvement.
    public private(set) var badSteps = 0
    private var cooldownLeft = 0

    /// PyTorch's defaults: minimize, factor 0.1, patience 10, threshold 1e-4
    /// relative, cooldown 0, minimum 0, epsilon 1e-8.
    /// - Parameters:
    ///   - minimum: the lowest rate of every group, unless `minimums` is given.
    ///   - minimums: one lowest rate per parameter group.
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
