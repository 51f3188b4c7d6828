// GradKitLab — exploding gradients in a badly scaled deep ReLU net, what rescues it, and the correctly scaled control. SPDX-License-Identifier: MIT
#if canImport(Glibc)
import Glibc
#endif
import GradKit

/// A 12-layer ReLU MLP on the digits whose weights start 1.3 times too large
/// (Xavier with gain 1.3·√2 where He's √2 keeps activations level), trained by
/// plain SGD at learning rate 0.05: the gradients grow about 1.3-fold per layer
/// toward the input and the first steps blow the weights up. Remedies at the
/// same rate (clipping three ways), at their own tuned rates (a smaller rate,
/// Adam), and the same network correctly scaled at the same rate.
enum ExplodingDeepNet {
    static let depth = 12, width = 64
    /// The rate the pathology is shown at, and the clipping remedies and the control run at.
    static let explodingRate: Float = 0.05
    static let normLimit: Float = 5, valueLimit: Float = 0.1, agcFactor: Float = 0.05

    static let experiment = Experiment(
        name: "exploding-gradients", title: "Exploding gradients in a badly scaled deep network", metric: .testAccuracy,
        configurations: configurations, conclude: conclude)

    enum Name {
        static let noRemedy = "no remedy"
        static let he = "He init (correctly scaled)"
        static let norm = "global-norm clipping (5)"
        static let value = "value clipping (0.1)"
        static let agc = "AGC (0.05)"
        static let smallerRate = "smaller learning rate"
        static let adam = "Adam"
    }

    static func epochs(_ plan: Plan) -> Int { plan.epochs(full: 10, quick: 5) }

    // MARK: Running

    /// What differs between the configurations.
    struct Setting: Sendable {
        var initializer: Initializer = .xavierNormal(gain: 1.3 * Float(2).squareRoot())
        var clipping: GradientClipping? = nil
        var adam = false
    }

    static func configurations(_ plan: Plan) -> [Configuration] {
        func net(_ name: String, _ role: Role, _ setting: Setting, rates: [Float] = [explodingRate], claim: Claim) -> Configuration {
            Configuration(name, role: role, learningRates: rates, claim: claim) { trial(setting, $0) }
        }
        let helps = self.helps()
        return [
            net(Name.noRemedy, .pathology, Setting(), claim: diverges()),
            net(Name.he, .control, Setting(initializer: .heNormal()), claim: helps),
            net(Name.norm, .remedy, Setting(clipping: .norm(normLimit)), claim: helps),
            net(Name.value, .remedy, Setting(clipping: .value(valueLimit)), claim: helps),
            net(Name.agc, .remedy, Setting(clipping: .adaptive(clipFactor: agcFactor)), claim: helps),
            net(Name.smallerRate, .remedy, Setting(), rates: [0.003, 0.01, 0.02, 0.03], claim: helps),
            net(Name.adam, .remedy, Setting(adam: true), rates: [1e-3, 3e-3, 1e-2, 3e-2], claim: helps),
            .majorityClass(digitsSplit),
            .linearClassifier(learningRates: [0.01, 0.03, 0.1], epochs: epochs, digitsSplit),
        ]
    }

    static func trial(_ setting: Setting, _ context: TrialContext) -> Trial {
        let model = withManualSeed(context.seed.initialization) {
            MLP(sizes: [64] + Array(repeating: width, count: depth - 1) + [10], activation: .relu, initializer: setting.initializer)
        }
        let optimizer: Optimizer = setting.adam
            ? Adam(model.parameters, learningRate: context.learningRate)
            : SGD(model.parameters, learningRate: context.learningRate)
        return train(model, optimizer: optimizer, TrainingPlan(
            data: digitsSplit(seed: context.seed), metric: .testAccuracy, epochs: epochs(context.plan), clipping: setting.clipping,
            seed: context.seed, sampleEvery: 10))
    }

    // MARK: Analysis

    static func diverges() -> Claim {
        Claim(holds: "non-finite", fails: "finite", rule: "a gradient becomes NaN or infinite during training") { trial, _ in trial.diverged }
    }

    static func helps() -> Claim {
        let words = Yardstick.words(.testAccuracy)
        return Claim(holds: "helps", fails: "does not help", rule: """
            no gradient becomes NaN or infinite, \(words.learns), and it beats the network without a remedy (which \
            counts as the majority class when it stopped before its first epoch) by at least \(words.beats)
            """) { trial, seed in
            let yardstick = Yardstick(seed)
            return !trial.diverged && yardstick.learns(trial.score) && yardstick.clearlyBeats(trial.score, seed[Name.noRemedy].score)
        }
    }

    /// At how many seeds the correctly scaled network scores above every remedy.
    static func controlBeatsRemedies(_ a: Analysis) -> Int {
        let remedies = a.configurations(.remedy)
        return a.plan.seeds.indices.filter { s in
            remedies.allSatisfy { a.metric.isBetter(a[Name.he].trials[s].score, than: $0.trials[s].score) }
        }.count
    }

    // MARK: Rendering

    static func conclude(_ a: Analysis) -> Conclusion {
        let baseline = a[Name.noRemedy]
        let demonstrated = baseline.verdict.holds && a.configurations(.remedy).contains { $0.verdict.holds }
        let blocks: [ReportBlock] = [.text(setup(a)), a.table(columns), .text(a.rulesText), .text(controlText(a))] + figures(a)
        return Conclusion(
            headline: headline(a), demonstrated: demonstrated, blocks: blocks,
            metrics: ["depth": .number(Double(depth)), "epochs": .number(Double(epochs(a.plan))),
                      "control_beats_every_remedy_seeds": .number(Double(controlBeatsRemedies(a)))])
    }

    static let columns = Column.gradientHealth + [
        Column(header: "non-finite (seeds)") { s in s.trials.first?.stepLoss.isEmpty ?? true ? "—" : "\(s.divergedSeeds) of \(s.trials.count)" },
        Column(header: "largest ‖g‖ (median)") { s in sci(Range3(s.trials.map { $0.stepGradientNorm.filter(\.isFinite).max() ?? .nan }).median) },
        Column(header: "steps clipped (median)", value: clippingCell),
    ]

    /// The share of steps clipping changed and, for norm clipping, by what factor the norm exceeded the limit.
    static func clippingCell(_ s: ConfigurationSummary) -> String {
        guard s.name == Name.norm || s.name == Name.value || s.name == Name.agc else { return "—" }
        let share = Range3(s.trials.map { Double($0.clippedSteps) / Double(Swift.max($0.stepGradientNorm.count, 1)) }).median
        guard s.name == Name.norm else { return percent(share) }
        let over = Range3(s.trials.map { t in Range3(t.stepGradientNorm.filter { $0 > Double(normLimit) }.map { $0 / Double(normLimit) }).median }).median
        return "\(percent(share)), by \(times(over)) (median)"
    }

    static func setup(_ a: Analysis) -> String {
        """
        A \(depth)-layer ReLU MLP (\(depth - 1) hidden layers of \(width)) on the digits (\(sizes(a.plan))), weights drawn \
        1.3 times too large (Xavier normal with gain 1.3·√2; He's √2 keeps the signal level, and 1.3^\(depth - 1) ≈ \
        \(fixed(pow(1.3, Double(depth - 1)), decimals: 0))), plain SGD, batch 32, \(epochs(a.plan)) epochs, at seeds \
        \(a.plan.seeds.map(String.init).joined(separator: ", ")). The pathology is shown at learning rate \
        \(rate(explodingRate)), and the three clipping methods and the correctly scaled control run at that same rate: \
        the question is whether they make it usable. A smaller rate and Adam get their own grids. AGC clips every \
        layer here, the output layer included, with one factor; Brock et al. (2021) leave the final layer unclipped \
        and choose the factor by batch size (smaller factors for larger batches). The monitor stops a run at the \
        first NaN or infinity in a gradient.
        """
    }

    static func headline(_ a: Analysis) -> String {
        let baseline = a[Name.noRemedy]
        var text = "The badly scaled \(depth)-layer ReLU net at learning rate \(rate(explodingRate)) "
        if baseline.verdict.holds {
            let steps = Range3(baseline.trials.compactMap(\.stoppedAtStep).map { Double($0 + 1) }).median
            text += "hits a non-finite gradient in \(baseline.verdict.holding) of \(baseline.verdict.seeds) seeds (median step \(fixed(steps, decimals: 0)))."
        } else {
            text += "does not diverge consistently: \(baseline.verdict.describe(baseline.claim))."
        }
        text += " Helps in at least 80% of the seeds: \(list(a.names { $0.role == .remedy && $0.verdict.holds })). "
        text += "Does not help in at least 80%: \(list(a.names { $0.role == .remedy && $0.verdict.fails }))."
        let control = a[Name.he], beats = controlBeatsRemedies(a)
        if control.verdict.holds && Double(beats) >= Verdict.agreement * Double(a.plan.seeds.count) {
            text += " The same network correctly scaled (He) at the same rate trains to \(percent(control.scoreRange.median)) and beats every remedy in \(beats) of \(a.plan.seeds.count) seeds."
        }
        return text
    }

    static func controlText(_ a: Analysis) -> String {
        let control = a[Name.he], beats = controlBeatsRemedies(a)
        return """
            **Control.** Initialized at He's scale, the same network at the same rate \(rate(explodingRate)) \
            \(control.verdict.describe(control.claim)) (median test accuracy \(percent(control.scoreRange.median))) and scores above every \
            remedy in \(beats) of \(a.plan.seeds.count) seeds: here the gradients explode because the weights start too large, and \
            clipping treats the symptom.
            """
    }

    static func figures(_ a: Analysis) -> [ReportBlock] {
        let trained = a.summaries.filter { !($0.trials.first?.stepLoss.isEmpty ?? true) && $0.name != ControlName.linear }
        let lossPlot = LinePlot(
            title: "Training loss per step (20-step moving average), badly scaled deep net", xLabel: "step", yLabel: "loss",
            series: trained.map { s in medianSeries(s.name, s.trials.map { smoothed($0.stepLoss, window: 20) }, pastEnd: .infinity) },
            logY: true, yLimits: 0.01...1e4)
        let normPlot = LinePlot(
            title: "Gradient norm before clipping (20-step geometric mean)", xLabel: "step", yLabel: "‖g‖ (global)",
            series: trained.map { s in medianSeries(s.name, s.trials.map { smoothedLog($0.stepGradientNorm, window: 20) }, pastEnd: .infinity) },
            logY: true, reference: (Double(normLimit), "norm clipping limit"), yLimits: 0.1...1e8)
        let baseline = a[Name.noRemedy]
        return [
            .figure(Figure(
                fileName: "exploding-deep-loss.svg",
                caption: "Training loss (median over the seeds, band: range; drawn at the top edge above 1e4); a cross marks where the "
                    + "median run stopped at a NaN or infinity — without a remedy in \(baseline.divergedSeeds) of \(baseline.trials.count) seeds.",
                svg: lossPlot.svg)),
            .figure(Figure(
                fileName: "exploding-deep-gradient-norm.svg",
                caption: "Global gradient norm before clipping (median over the seeds of a 20-step geometric mean, band: range).",
                svg: normPlot.svg)),
        ]
    }
}

/// A trailing moving average over `window` steps (single steps are noisy);
/// non-finite values pass through so divergence stays visible.
func smoothed(_ values: [Double], window: Int) -> [Double] {
    values.indices.map { i in
        guard values[i].isFinite else { return values[i] }
        let recent = values[Swift.max(0, i - window + 1)...i].filter(\.isFinite)
        return recent.reduce(0, +) / Double(recent.count)
    }
}
