// gradkit — the learning-rate schedule as --schedule spells it. SPDX-License-Identifier: MIT
import GradKit

/// A learning-rate schedule from `--schedule`, every field checked when
/// parsed: counts are whole numbers of epochs in 1...1,000,000 (milestones
/// from 0, strictly increasing), decay factors are in [0, 1] (a factor above 1 would grow the rate
/// past what a Float holds), learning rates are finite.
enum Schedule: Equatable {
    case constant
    case step(size: Int, gamma: Double)
    case multistep(milestones: [Int], gamma: Double)
    case exponential(gamma: Double)
    case cosine(minimum: Double)
    case warmup(epochs: Int)
    /// The maximum rate; nil: 10 × the optimizer's.
    case onecycle(maximum: Double?)

    static let help = """
        constant (default), step:SIZE[:GAMMA], multistep:E1/E2/...[:GAMMA], exponential:GAMMA, cosine[:MIN_LR], \
        warmup:EPOCHS, onecycle[:MAX_LR]; GAMMA in [0, 1] (default 0.1), epochs in 1...1000000; cosine spans --epochs, \
        onecycle advances per step over all of them
        """

    /// The fields each schedule takes, its name included.
    private static let fieldCounts: [String: ClosedRange<Int>] = [
        "constant": 1...1, "step": 2...3, "multistep": 2...3, "exponential": 2...2, "cosine": 1...2, "warmup": 2...2, "onecycle": 1...2,
    ]
    private static let epochRange = 1...1_000_000
    private static let gammaRange = ValueRange.closed(0, 1)
    private static let rateRange = ValueRange.atLeast(0)

    init(parsing text: String) throws(UsageError) {
        let fields = text.split(separator: ":", omittingEmptySubsequences: false).map(String.init)
        let name = fields[0]
        guard let counts = Schedule.fieldCounts[name] else {
            throw UsageError("--schedule must be constant, step:SIZE[:GAMMA], multistep:E1/E2[:GAMMA], exponential:GAMMA, cosine[:MIN_LR], warmup:EPOCHS or onecycle[:MAX_LR], got \(text.quotedForMessage(limit: DisplayText.messageLimit))")
        }
        guard counts.contains(fields.count) else {
            throw UsageError("--schedule \(name) takes \(counts.upperBound - 1 == 0 ? "no values" : "\(counts.lowerBound - 1) to \(counts.upperBound - 1) values"), got \(text.quotedForMessage(limit: DisplayText.messageLimit))")
        }
        let value = fields.count > 1 ? fields[1] : nil, gamma = fields.count > 2 ? fields[2] : nil
        func number(_ text: String?, _ range: ValueRange, _ what: String) throws(UsageError) -> Double? {
            try text.map { (text) throws(UsageError) in try parseNumber(text, range: range, what: "--schedule \(name)'s \(what)") }
        }
        switch name {
        case "step":
            let size = try parseInteger(value!, range: Schedule.epochRange, what: "--schedule step's SIZE")
            self = .step(size: size, gamma: try number(gamma, Schedule.gammaRange, "GAMMA") ?? 0.1)
        case "multistep":
            var milestones: [Int] = []
            for part in value!.split(separator: "/", omittingEmptySubsequences: false) {
                let milestone = try parseInteger(String(part), range: 0...Schedule.epochRange.upperBound, what: "--schedule multistep's milestones")
                // PyTorch's MultiStepLR asks for increasing milestones and counts a repeated one twice: refuse the typo instead.
                if let last = milestones.last, milestone <= last {
                    throw UsageError("--schedule multistep's milestones must strictly increase, got \(milestone) after \(last)")
                }
                milestones.append(milestone)
            }
            self = .multistep(milestones: milestones, gamma: try number(gamma, Schedule.gammaRange, "GAMMA") ?? 0.1)
        case "exponential": self = .exponential(gamma: try number(value, Schedule.gammaRange, "GAMMA")!)
        case "cosine": self = .cosine(minimum: try number(value, Schedule.rateRange, "MIN_LR") ?? 0)
        case "warmup": self = .warmup(epochs: try parseInteger(value!, range: Schedule.epochRange, what: "--schedule warmup's EPOCHS"))
        case "onecycle": self = .onecycle(maximum: try number(value, .above(0), "MAX_LR"))
        default: self = .constant
        }
    }

    /// The spelling a checkpoint stores: defaults written out.
    var canonical: String {
        switch self {
        case .constant: "constant"
        case .step(let size, let gamma): "step:\(size):\(shortNumber(gamma))"
        case .multistep(let milestones, let gamma): "multistep:\(milestones.map(String.init).joined(separator: "/")):\(shortNumber(gamma))"
        case .exponential(let gamma): "exponential:\(shortNumber(gamma))"
        case .cosine(let minimum): "cosine:\(shortNumber(minimum))"
        case .warmup(let epochs): "warmup:\(epochs)"
        case .onecycle(let maximum): maximum.map { "onecycle:\(shortNumber($0))" } ?? "onecycle"
        }
    }

    /// Whether the schedule's rates depend on `--epochs` (cosine spans them, onecycle their steps).
    var spansEpochs: Bool {
        switch self {
        case .cosine, .onecycle: true
        default: false
        }
    }

    /// The library's schedule for a run of `epochs` epochs of `stepsPerEpoch` steps.
    /// - Parameter learningRate: the optimizer's table entry, which the rates the schedule sets must satisfy.
    /// - Throws: ``UsageError`` when a rate the schedule would set is not a valid learning rate.
    func make(epochs: Int, stepsPerEpoch: Int, baseLearningRate: Float, learningRate: HyperparameterSpecification) throws(UsageError)
        -> ScheduledLearningRate?
    {
        func checked(_ rate: Double, _ what: String) throws(UsageError) -> Double {
            guard learningRate.accepts(Float(rate)) else {
                throw UsageError("--schedule \(canonical): \(what) \(rate) is not a learning rate in \(learningRate.rangeDescription)")
            }
            return rate
        }
        switch self {
        case .constant: return nil
        case .step(let size, let gamma): return .perEpoch(StepDecay(stepSize: size, gamma: gamma))
        case .multistep(let milestones, let gamma): return .perEpoch(MultiStepDecay(milestones: milestones, gamma: gamma))
        case .exponential(let gamma): return .perEpoch(ExponentialDecay(gamma: gamma))
        case .cosine(let minimum):
            return .perEpoch(CosineAnnealing(period: Swift.max(epochs, 1), minimum: try checked(minimum, "the minimum rate")))
        case .warmup(let epochs): return .perEpoch(LinearWarmup(steps: epochs))
        case .onecycle(let maximum):
            let peak = try checked(maximum ?? Double(baseLearningRate) * 10, maximum == nil ? "10 × --lr =" : "the maximum rate")
            // epochs ≤ 10^6 and steps per epoch ≤ the examples held in memory: the product fits an Int.
            return .perStep(OneCycle(maximum: peak, totalSteps: Swift.max(epochs * stepsPerEpoch, 1)))
        }
    }
}
