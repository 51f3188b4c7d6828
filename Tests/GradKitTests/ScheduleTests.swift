// Learning-rate schedules against torch.optim.lr_scheduler over 130 steps.
import Testing

@testable import GradKit

private func schedule(named name: String) -> any LearningRateSchedule {
    switch name {
    case "step": StepDecay(stepSize: 7, gamma: 0.5)
    case "multistep": MultiStepDecay(milestones: [10, 25, 60], gamma: 0.3)
    case "exponential": ExponentialDecay(gamma: 0.97)
    case "inverse_time": InverseTimeDecay(decayRate: 0.5, decaySteps: 10)
    case "inverse_time_staircase": InverseTimeDecay(decayRate: 0.5, decaySteps: 10, staircase: true)
    case "cosine": CosineAnnealing(period: 50, minimum: 0.001)
    case "cosine_restarts": CosineAnnealingWarmRestarts(firstPeriod: 10, periodMultiplier: 2, minimum: 0.002)
    case "cosine_restarts_constant": CosineAnnealingWarmRestarts(firstPeriod: 15)
    case "linear_warmup": LinearWarmup(startFactor: 0.1, endFactor: 1, steps: 20)
    case "warmup_then_cosine":
        SequentialSchedule([LinearWarmup(startFactor: 0.1, steps: 10), CosineAnnealing(period: 110)], milestones: [10])
    case "one_cycle", "one_cycle_adam": OneCycle(maximum: 0.5, totalSteps: 130)
    case "one_cycle_linear_three_phase":
        OneCycle(maximum: 0.4, totalSteps: 130, warmupFraction: 0.25, annealing: .linear, threePhase: true)
    default: preconditionFailure("unknown schedule \(name)")
    }
}

@Suite("Learning-rate schedules")
struct ScheduleTests {
    @Test("values match PyTorch over 130 steps", arguments: OptimizerGoldens.schedules.map(\.name))
    func goldens(name: String) {
        let golden = OptimizerGoldens.schedules.first { $0.name == name }!
        let parameter = Parameter(Tensor(zeros: [1]))
        let optimizer: Optimizer = name == "one_cycle_adam"
            ? Adam([parameter], learningRate: 0.1) : SGD([parameter], learningRate: 0.1, momentum: 0.9)
        let scheduler = LearningRateScheduler(optimizer: optimizer, schedule: schedule(named: name))
        #expect(golden.rates.count == 130)
        for (step, expected) in golden.rates.enumerated() {
            // The base rate is Float(0.1) = 0.1 + 1.5e-9 here, exactly 0.1 in
            // PyTorch; closed forms here, PyTorch's recursive forms there.
            let rate = scheduler.learningRate
            #expect(Swift.abs(rate - expected) <= 1e-7 * Swift.max(Swift.abs(expected), 1e-6), "\(name) step \(step): \(rate) vs \(expected)")
            #expect(optimizer.learningRate == Float(rate))
            if !golden.momenta.isEmpty {
                let momentum = (optimizer as? SGD)?.momentum ?? (optimizer as! Adam).beta1
                #expect(Swift.abs(Double(momentum) - golden.momenta[step]) <= 1e-7, "\(name) momentum step \(step)")
            }
            scheduler.step()
        }
    }

    @Test("reduce on plateau matches PyTorch")
    func plateau() {
        let optimizer = SGD([Parameter(Tensor(zeros: [1]))], learningRate: 0.1)
        let plateau = ReduceLearningRateOnPlateau(optimizer: optimizer, factor: 0.5, patience: 5, cooldown: 2, minimum: 0.005)
        for (metric, expected) in zip(OptimizerGoldens.plateauMetrics, OptimizerGoldens.plateauRates) {
            plateau.step(metric: metric)
            // Float learning rates compound the factor in Float: 1e-6 relative.
            #expect(Swift.abs(Double(optimizer.learningRate) - expected) <= 1e-6 * expected, "\(optimizer.learningRate) vs \(expected)")
        }
        #expect(Set(OptimizerGoldens.plateauRates).count >= 3, "the fixture exercises several reductions")
    }

    @Test("resuming a scheduler continues the same sequence")
    func resume() {
        let a = SGD([Parameter(Tensor(zeros: [1]))], learningRate: 0.1)
        let b = SGD([Parameter(Tensor(zeros: [1]))], learningRate: 0.1)
        let straight = LearningRateScheduler(optimizer: a, schedule: CosineAnnealingWarmRestarts(firstPeriod: 7, periodMultiplier: 2))
        for _ in 0..<40 { straight.step() }
        let resumed = LearningRateScheduler(optimizer: b, schedule: CosineAnnealingWarmRestarts(firstPeriod: 7, periodMultiplier: 2))
        resumed.resume(atStep: 40)
        #expect(a.learningRate == b.learningRate)
    }
}
