// GradKitLab — exploding gradients in an Elman RNN on the adding problem, what rescues it, and the identity-initialized control. SPDX-License-Identifier: MIT
#if canImport(Glibc)
import Glibc
#endif
import GradKit

/// An Elman RNN with ReLU whose recurrent weights are orthogonal with gain 3
/// (a ReLU passes about half the units, so √2 would keep a state's norm) on Le et al.'s (2015) adding problem:
/// back-propagation through time multiplies the gradient by W_hhᵀ once per
/// step. The pathology is shown at SGD's rate 0.03 on sequences of 10 steps
/// (where the remedies are compared) and of 100 steps. Remedies: clipping
/// three ways and a smaller rate at SGD's grid, Adam; control: the same
/// network with identity recurrent weights (IRNN, Le et al. 2015).
enum ExplodingRNN {
    static let length = 10, longLength = 100, hidden = 32, gain: Float = 3
    /// The rate the pathology is shown at: the one global-norm clipping chooses at every seed.
    static let explodingRate: Float = 0.03
    static let normLimit: Float = 1, valueLimit: Float = 0.01, agcFactor: Float = 0.01
    /// The rates SGD with momentum 0.9 is tried at, with and without clipping.
    static let rates: [Float] = [0.01, 0.03]

    static let experiment = Experiment(
        name: "exploding-rnn", title: "Exploding gradients in an Elman RNN", metric: .testMeanSquaredError,
        configurations: configurations, conclude: conclude)

    enum Name {
        static let noRemedy = "no remedy"
        static let noRemedyLong = "no remedy, \(longLength) steps"
        static let irnn = "IRNN (identity init)"
        static let norm = "global-norm clipping (1)"
        static let value = "value clipping (0.01)"
        static let agc = "AGC (0.01)"
        static let smallerRate = "smaller learning rate"
        static let adam = "Adam"
    }

    /// Clipped, the network needs about 20 epochs to learn the task at every seed (at 12 it had not at
    /// one seed in three), so a quick run differs only in its seeds.
    static func epochs(_ plan: Plan) -> Int { plan.epochs(full: 20, quick: 20) }

    // MARK: Running

    /// What differs between the configurations.
    struct Setting: Sendable {
        var length = ExplodingRNN.length
        var identity = false
        var clipping: GradientClipping? = nil
        var adam = false
    }

    static func configurations(_ plan: Plan) -> [Configuration] {
        func rnn(_ name: String, _ role: Role, _ setting: Setting, rates: [Float] = rates, claim: Claim) -> Configuration {
            Configuration(name, role: role, learningRates: rates, claim: claim) { trial(setting, $0) }
        }
        let helps = self.helps()
        return [
            rnn(Name.noRemedy, .pathology, Setting(), rates: [explodingRate], claim: diverges()),
            rnn(Name.noRemedyLong, .pathology, Setting(length: longLength), rates: [explodingRate], claim: diverges()),
            rnn(Name.irnn, .control, Setting(identity: true), rates: [0.003, 0.01, 0.03], claim: helps),
            rnn(Name.norm, .remedy, Setting(clipping: .norm(normLimit)), claim: helps),
            rnn(Name.value, .remedy, Setting(clipping: .value(valueLimit)), claim: helps),
            rnn(Name.agc, .remedy, Setting(clipping: .adaptive(clipFactor: agcFactor)), claim: helps),
            rnn(Name.smallerRate, .remedy, Setting(), rates: [1e-4, 3e-4, 1e-3], claim: helps),
            rnn(Name.adam, .remedy, Setting(adam: true), rates: [3e-3, 1e-2, 3e-2], claim: helps),
            .meanPredictor(data),
            .linearRegression(data),
        ]
    }

    /// 2,000 training sequences (1,600 to fit, 400 to validate) and 500 test sequences.
    static func data(_ seed: RunSeed) -> SplitData { data(seed, length: length) }

    static func data(_ seed: RunSeed, length: Int) -> SplitData {
        do {
            let training = try Dataset.addingProblem(count: 2000, length: length, seed: seed.data).split([0.8, 0.2])
            return SplitData(fit: training[0], validation: training[1], test: Dataset.addingProblem(count: 500, length: length, seed: seed.data &+ 1))
        } catch {
            fatalError("lab: the adding problem cannot be split: \(error)")
        }
    }

    static func trial(_ setting: Setting, _ context: TrialContext) -> Trial {
        let model = withManualSeed(context.seed.initialization) { () -> Sequential in
            let rnn = RNN(inputSize: 2, hiddenSize: hidden, nonlinearity: .relu,
                          recurrentInitializer: setting.identity ? nil : .orthogonal(gain: gain))
            if setting.identity { identityInitialize(rnn) }
            rnn.returnsSequences = false
            return Sequential([rnn, Linear(inputSize: hidden, outputSize: 1)])
        }
        let optimizer: Optimizer = setting.adam
            ? Adam(model.parameters, learningRate: context.learningRate)
            : SGD(model.parameters, learningRate: context.learningRate, momentum: 0.9)
        return train(model, optimizer: optimizer, TrainingPlan(
            data: data(context.seed, length: setting.length), metric: .testMeanSquaredError, loss: .meanSquaredError, epochs: epochs(context.plan),
            clipping: setting.clipping, seed: context.seed, sampleEvery: 10))
    }

    /// Le et al.'s IRNN: recurrent weights the identity, biases zero (the input weights keep their default).
    static func identityInitialize(_ rnn: RNN) {
        var identity = [Float](repeating: 0, count: hidden * hidden)
        for i in 0..<hidden { identity[i * hidden + i] = 1 }
        rnn.weightHiddenHidden.value = Tensor(shape: [hidden, hidden], scalars: identity)
        for bias in [rnn.biasInputHidden, rnn.biasHiddenHidden].compactMap({ $0 }) { bias.value = Tensor(zeros: [hidden]) }
    }

    // MARK: Analysis

    static func diverges() -> Claim {
        Claim(holds: "non-finite", fails: "finite", rule: "a gradient becomes NaN or infinite at learning rate \(rate(explodingRate))") { trial, _ in
            trial.diverged
        }
    }

    static func helps() -> Claim {
        let words = Yardstick.words(.testMeanSquaredError)
        return Claim(holds: "helps", fails: "does not help", rule: """
            no gradient becomes NaN or infinite at the chosen rate, \(words.learns), and it beats the network without \
            a remedy (which counts as predicting the mean when it stopped before its first epoch) by at least \(words.beats)
            """) { trial, seed in
            let yardstick = Yardstick(seed)
            return !trial.diverged && yardstick.learns(trial.score) && yardstick.clearlyBeats(trial.score, seed[Name.noRemedy].score)
        }
    }

    // MARK: Rendering

    static func conclude(_ a: Analysis) -> Conclusion {
        let baseline = a[Name.noRemedy]
        let demonstrated = baseline.verdict.holds && a[Name.noRemedyLong].verdict.holds && a.configurations(.remedy).contains { $0.verdict.holds }
        let blocks: [ReportBlock] = [.text(setup(a)), a.table(columns), .text(a.rulesText)] + figures(a)
        return Conclusion(
            headline: headline(a), demonstrated: demonstrated, blocks: blocks,
            metrics: ["sequence_length": .number(Double(length)), "recurrent_gain": .number(Double(gain)),
                      "long_sequence_length": .number(Double(longLength)), "epochs": .number(Double(epochs(a.plan))),
                      "no_remedy_non_finite_seeds": .number(Double(baseline.divergedSeeds)),
                      "no_remedy_long_non_finite_seeds": .number(Double(a[Name.noRemedyLong].divergedSeeds))])
    }

    static let columns = Column.gradientHealth + [
        Column(header: "non-finite (seeds)") { s in s.trials.first?.stepLoss.isEmpty ?? true ? "—" : "\(s.divergedSeeds) of \(s.trials.count)" },
        Column(header: "largest ‖g‖ (median)") { s in sci(Range3(s.trials.map { $0.stepGradientNorm.filter(\.isFinite).max() ?? .nan }).median) },
        Column(header: "steps clipped (median)") { s in
            guard s.name == Name.norm || s.name == Name.value || s.name == Name.agc else { return "—" }
            return percent(Range3(s.trials.map { Double($0.clippedSteps) / Double(Swift.max($0.stepGradientNorm.count, 1)) }).median)
        },
    ]

    static func setup(_ a: Analysis) -> String {
        let mean = a[ControlName.mean].scoreRange.median, linear = a[ControlName.linear].scoreRange.median
        return """
            The adding problem as Le, Jaitly and Hinton (2015) set it: sequences of \(length) steps of a value in [0, 1) and \
            a marker, one marked step in each half, the target the sum of the two marked values (Hochreiter and \
            Schmidhuber's 1997 original differs in its value range, marker placement and target scaling). Per seed 1,600 \
            sequences to fit, 400 to validate and 500 to test. A ReLU Elman RNN with \(hidden) units, orthogonal recurrent \
            weights of gain \(fixed(Double(gain), decimals: 0)) and a linear read-out of the last state; SGD with momentum 0.9, batch \
            32, \(epochs(a.plan)) epochs. Predicting the mean scores a test MSE of \(sci(mean)) (in theory 1/6) and the best \
            linear model \(sci(linear)): the task needs the product of value and marker, which no linear model has. \
            Global-norm clipping is Pascanu, Mikolov and Bengio's (2013) remedy. The explosion comes from the recurrent \
            gain: \(fixed(Double(gain), decimals: 0))/√2 per step for a ReLU (which passes about half the units), \
            \(fixed(growth(length), decimals: 0))-fold over \(length) steps and \(sci(growth(longLength)))-fold over \(longLength)\(overflow(a)). \
            The pathology is shown at both lengths at SGD's rate \(rate(explodingRate)), the rate at which global-norm \
            clipping learns; the remedies are compared on the \(length)-step sequences, where they can learn within the \
            lab's budget (at \(longLength) steps none of them beat predicting the mean within it when the lab was designed; docs/decisions.md).
            """
    }

    /// What the 100-step network's first step shows, when it is the same at every seed.
    static func overflow(_ a: Analysis) -> String {
        let long = a[Name.noRemedyLong]
        guard long.trials.allSatisfy({ $0.stoppedAtStep == 0 }) else { return "" }
        return " — squared by the loss, beyond a Float's 3.4e38: at every seed the \(longLength)-step network's very first gradient is non-finite"
    }

    /// How much a state's norm grows over `steps` steps: (gain/√2) per step.
    static func growth(_ steps: Int) -> Double { pow(Double(gain) / Double(2).squareRoot(), Double(steps)) }

    static func headline(_ a: Analysis) -> String {
        var text = "The Elman RNN with recurrent gain \(fixed(Double(gain), decimals: 0)) at SGD's rate \(rate(explodingRate)) "
        text += [(Name.noRemedy, length), (Name.noRemedyLong, longLength)].map { name, steps in
            let s = a[name]
            guard s.verdict.holds else { return "does not diverge consistently over \(steps) steps (\(s.verdict.describe(s.claim)))" }
            let at = Range3(s.trials.compactMap(\.stoppedAtStep).map { Double($0 + 1) }).median
            return "hits a non-finite gradient over \(steps) steps in \(s.verdict.holding) of \(s.verdict.seeds) seeds (median step \(fixed(at, decimals: 0)))"
        }.joined(separator: " and ") + "."
        text += " Helps in at least 80% of the seeds (\(length) steps): \(list(a.names { $0.role == .remedy && $0.verdict.holds })). "
        text += "Does not help in at least 80%: \(list(a.names { $0.role == .remedy && $0.verdict.fails }))."
        let irnn = a[Name.irnn]
        if irnn.verdict.holds { text += " Identity recurrent weights (IRNN) train without clipping in \(irnn.verdict.holding) of \(irnn.verdict.seeds) seeds." }
        return text
    }

    static func figures(_ a: Analysis) -> [ReportBlock] {
        // The 100-step network stops within its first steps: it has no epochs to draw.
        let trained = a.summaries.filter { !($0.trials.first?.stepLoss.isEmpty ?? true) && $0.name != Name.noRemedyLong }
        let errorPlot = LinePlot(
            title: "Test mean squared error after each epoch, RNN on the adding problem", xLabel: "epoch", yLabel: "test MSE",
            series: trained.map { s in medianSeries(s.name, s.trials.map(\.test), pastEnd: .infinity) },
            logY: true, reference: (a[ControlName.mean].scoreRange.median, "predict the mean"), yLimits: 1e-4...10)
        let normPlot = LinePlot(
            title: "Gradient norm before clipping (20-step geometric mean), RNN", xLabel: "step", yLabel: "‖g‖ (global)",
            series: trained.map { s in medianSeries(s.name, s.trials.map { smoothedLog($0.stepGradientNorm, window: 20) }, pastEnd: .infinity) },
            logY: true, reference: (Double(normLimit), "norm clipping limit"), yLimits: 0.1...1e10)
        let best = a.best(a.configurations(.remedy))
        return [
            .figure(Figure(
                fileName: "exploding-rnn-test-error.svg",
                caption: "Test error per epoch (median over the seeds at each configuration's chosen rate, band: range; drawn at the top edge "
                    + "above 10); the dashed line is "
                    + "the error of predicting the mean\(best.map { "; the best remedy, \($0.name), reaches \(sci($0.scoreRange.median)) at its validation-selected epoch" } ?? "").",
                svg: errorPlot.svg)),
            .figure(Figure(
                fileName: "exploding-rnn-gradient-norm.svg",
                caption: "Global gradient norm before clipping (median over the seeds of a 20-step geometric mean, band: range).",
                svg: normPlot.svg)),
        ]
    }
}
