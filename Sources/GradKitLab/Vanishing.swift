// GradKitLab — vanishing gradients in a deep sigmoid MLP: the pathology, its decomposition, and what cures it. SPDX-License-Identifier: MIT
#if canImport(Glibc)
import Glibc
#endif
import GradKit

/// A 20-layer MLP (19 hidden layers of 32 units) on the digits, trained with
/// SGD and momentum: sigmoid with PyTorch's default initialization, against
/// the same network properly initialized, tanh, the textbook cures (ReLU with
/// He initialization, tanh with Xavier initialization, BatchNorm, residual
/// connections) and three often-suggested remedies (larger learning rates,
/// dropout, weight decay), with the majority class and a linear model as the
/// floor and the bar.
enum Vanishing {
    static let depth = 20, width = 32

    static let experiment = Experiment(
        name: "vanishing-gradients", title: "Vanishing gradients in a deep sigmoid network", metric: .testAccuracy,
        configurations: configurations, conclude: conclude)

    enum Name {
        static let sigmoid = "sigmoid"
        static let sigmoidXavier = "sigmoid + Xavier init"
        static let tanh = "tanh"
        static let relu = "ReLU + He init"
        static let tanhXavier = "tanh + Xavier init"
        static let batchNorm = "sigmoid + BatchNorm"
        static let residual = "sigmoid + residual"
        static let largerRates = "sigmoid with large rates"
        static let dropout = "sigmoid + dropout 0.1"
        static let weightDecay = "sigmoid + weight decay 1e-3"
    }

    /// The learning rates every deep network is tried at (SGD, momentum 0.9).
    static let rates: [Float] = [0.001, 0.003, 0.01, 0.03, 0.1]
    static func epochs(_ plan: Plan) -> Int { plan.epochs(full: 20, quick: 3) }

    // MARK: Running

    /// What differs between the deep networks.
    struct Network: Sendable {
        var activation: Activation = .sigmoid
        var initializer: Initializer? = nil
        var batchNorm = false
        var residual = false
        var dropout: Float = 0
        var weightDecay: Float = 0
    }

    static func configurations(_ plan: Plan) -> [Configuration] {
        func deep(_ name: String, _ role: Role, _ network: Network, rates: [Float] = rates, claim: Claim) -> Configuration {
            Configuration(name, role: role, learningRates: rates, claim: claim) { trial(network, $0) }
        }
        let helps = self.helps(), vanishes = self.vanishes()
        return [
            deep(Name.sigmoid, .pathology, Network(), claim: vanishes),
            deep(Name.sigmoidXavier, .control, Network(initializer: .xavierNormal()), claim: vanishes),
            deep(Name.tanh, .pathology, Network(activation: .tanh), claim: vanishes),
            deep(Name.relu, .remedy, Network(activation: .relu, initializer: .heNormal()), claim: helps),
            deep(Name.tanhXavier, .remedy, Network(activation: .tanh, initializer: .xavierNormal(gain: 5.0 / 3)), claim: helps),
            deep(Name.batchNorm, .remedy, Network(batchNorm: true), claim: helps),
            deep(Name.residual, .remedy, Network(residual: true), claim: helps),
            deep(Name.largerRates, .suggestion, Network(), rates: [0.3, 1, 3], claim: helps),
            deep(Name.dropout, .suggestion, Network(dropout: 0.1), claim: helps),
            deep(Name.weightDecay, .suggestion, Network(weightDecay: 1e-3), claim: helps),
            .majorityClass(digitsSplit),
            .linearClassifier(learningRates: [0.01, 0.03, 0.1], epochs: epochs, digitsSplit),
        ]
    }

    static func trial(_ network: Network, _ context: TrialContext) -> Trial {
        let model = withManualSeed(context.seed.initialization) {
            MLP(sizes: [64] + Array(repeating: width, count: depth - 1) + [10], activation: network.activation,
                initializer: network.initializer, batchNorm: network.batchNorm, dropout: network.dropout, residual: network.residual)
        }
        let optimizer = SGD(model.parameters, learningRate: context.learningRate, momentum: 0.9, weightDecay: network.weightDecay)
        return train(model, optimizer: optimizer, TrainingPlan(
            data: digitsSplit(seed: context.seed), metric: .testAccuracy, epochs: epochs(context.plan), seed: context.seed))
    }

    // MARK: Analysis

    /// The monitor's threshold for a vanishing gradient: first layer over last.
    static let vanishingRatio = Double(GradientMonitor.Thresholds().vanishingRatio)
    /// A first layer whose weights move by less than this fraction of their norm per step is not learning.
    static let stillUpdateRatio = 1e-5

    static func vanishes() -> Claim {
        Claim(holds: "vanishing", fails: "not vanishing",
              rule: "the first layer's gradient norm is below \(sci(vanishingRatio)) of the last layer's (the monitor's vanishing threshold), both averaged geometrically over training") { trial, _ in
            trial.firstToLastRatio < vanishingRatio
        }
    }

    static func helps() -> Claim {
        Claim(holds: "helps", fails: "does not help", rule: """
            \(Yardstick.words(.testAccuracy).learns), it beats the sigmoid network by at least \
            \(Yardstick.words(.testAccuracy).beats), and its first layer trains: its gradient is at least \
            \(sci(vanishingRatio)) of the last layer's and each step moves its weights by at least \
            \(sci(stillUpdateRatio)) of their norm (geometric means over training)
            """) { trial, seed in
            let yardstick = Yardstick(seed)
            return yardstick.learns(trial.score) && yardstick.clearlyBeats(trial.score, seed[Name.sigmoid].score)
                && trial.firstToLastRatio >= vanishingRatio && trial.meanUpdateRatio(layer: 1) >= stillUpdateRatio
        }
    }

    /// The gradient ratio mean-field theory predicts at initialization.
    struct Theory {
        /// ‖x‖ of a standardized training image (median over the seeds' splits).
        var inputNorm: Double
        /// ‖h₁₉‖ of the last hidden layer: sigmoid outputs stay near ½.
        var hiddenNorm: Double { Double(width).squareRoot() * 0.5 }
        /// Per layer, √(fan_in·σ²) × the sigmoid's slope ¼: default σ² = 1/(3·fan_in), Xavier σ² = 2/(fan_in + fan_out).
        var defaultFactor: Double { (1.0 / 3).squareRoot() / 4 }
        var xavierFactor: Double { (Double(width) * 2 / Double(2 * width)).squareRoot() / 4 }
        func ratio(_ factor: Double) -> Double { pow(factor, Double(depth - 1)) * inputNorm / hiddenNorm }
    }

    static func theory(_ plan: Plan) -> Theory {
        let norms = plan.seeds.map { seed -> Double in
            let x = digitsSplit(seed: RunSeed(value: seed)).fit
            let values = x.features.scalars, n = x.count
            return (0..<n).map { i in (values[(i * 64)..<(i * 64 + 64)].reduce(0) { $0 + Double($1 * $1) }).squareRoot() }.reduce(0, +) / Double(n)
        }
        return Theory(inputNorm: Range3(norms).median)
    }

    /// First-to-last gradient ratio at the first step (initialization), median over the seeds.
    static func initialRatio(_ summary: ConfigurationSummary) -> Double {
        Range3(summary.trials.map { t in
            guard let first = t.layerGradientNorms.first?.first, let last = t.layerGradientNorms.last?.first else { return .nan }
            return first / last
        }).median
    }

    static func medianRatio(_ summary: ConfigurationSummary) -> Range3 { Range3(summary.trials.map(\.firstToLastRatio)) }

    // MARK: Rendering

    static func conclude(_ a: Analysis) -> Conclusion {
        let theory = self.theory(a.plan)
        let baseline = a[Name.sigmoid]
        let cures = a.summaries.filter { $0.role == .remedy || $0.role == .suggestion }
        let demonstrated = baseline.verdict.holds && cures.contains { $0.verdict.holds }
        var blocks: [ReportBlock] = [.text(setup(a)), a.table(columns), .text(a.rulesText), .text(theoryText(a, theory))]
        blocks += figures(a)
        return Conclusion(
            headline: headline(a, theory), demonstrated: demonstrated, blocks: blocks,
            metrics: ["depth": .number(Double(depth)), "epochs": .number(Double(epochs(a.plan))),
                      "predicted_first_to_last_ratio": .number(theory.ratio(theory.defaultFactor)),
                      "measured_initial_first_to_last_ratio": .number(initialRatio(baseline))])
    }

    static let columns = [
        Column(header: "‖g₁‖ / ‖g₂₀‖ (range)") { s in isDeep(s) ? describe(medianRatio(s), sci) : "—" },
        Column(header: "layer-1 update / weight") { s in
            isDeep(s) ? sci(Range3(s.trials.map { $0.meanUpdateRatio(layer: 1) }).median) : "—"
        },
    ]

    /// Whether the configuration is one of the deep networks (not a control without layers to compare).
    static func isDeep(_ s: ConfigurationSummary) -> Bool { s.trials.first?.layerGradientNorms.count == depth }

    static func setup(_ a: Analysis) -> String {
        """
        A \(depth)-layer MLP (64 inputs, \(depth - 1) hidden layers of \(width) units, 10 outputs) on the digits \
        (standardized; per seed a stratified split into \(sizes(a.plan))), SGD with \
        momentum 0.9, batch 32, \(epochs(a.plan)) epochs, at seeds \(a.plan.seeds.map(String.init).joined(separator: ", ")). \
        Each sigmoid multiplies the gradient flowing back by at most ¼, so the layers near the input learn slowest; \
        the cures either keep the gain per layer near 1 (ReLU with He initialization, tanh with Xavier \
        initialization, BatchNorm) or give the gradient a path around the layers (residual connections). "sigmoid + \
        Xavier init" separates the activation from the initialization, and the majority class and a linear model \
        (softmax regression) are the floor and the bar a deep network is measured against. An update-to-weight ratio \
        of 0 means that each step changed the first layer's weights by less than a Float can resolve (about 6e-8 of \
        a weight).
        """
    }

    static func headline(_ a: Analysis, _ theory: Theory) -> String {
        let baseline = a[Name.sigmoid]
        var text: String
        if baseline.verdict.holds {
            text = "The \(depth)-layer sigmoid network's first layer gets \(times(1 / medianRatio(baseline).median)) less gradient than its last "
                + "(median over \(baseline.verdict.seeds) seeds; theory at initialization \(times(1 / theory.ratio(theory.defaultFactor)))), "
                + "below the monitor's vanishing threshold in \(baseline.verdict.holding) of \(baseline.verdict.seeds) seeds; "
                + "its median test accuracy is \(percent(baseline.scoreRange.median)) (majority class \(percent(a[ControlName.majorityClass].scoreRange.median)), "
                + "linear model \(percent(a[ControlName.linear].scoreRange.median)))."
        } else {
            text = "The \(depth)-layer sigmoid network's gradient does not vanish consistently: \(baseline.verdict.describe(baseline.claim))."
        }
        let helping = a.names { $0.claim?.holds == "helps" && $0.verdict.holds }
        let notHelping = a.names { $0.claim?.holds == "helps" && $0.verdict.fails }
        text += " Helps in at least 80% of the seeds: \(list(helping)). Does not help in at least 80%: \(list(notHelping))."
        return text
    }

    static func theoryText(_ a: Analysis, _ theory: Theory) -> String {
        let measured = initialRatio(a[Name.sigmoid]), measuredXavier = initialRatio(a[Name.sigmoidXavier])
        let predicted = theory.ratio(theory.defaultFactor), predictedXavier = theory.ratio(theory.xavierFactor)
        return """
            **Theory.** Back-propagation multiplies the gradient by Wᵀ and by the activation's slope once per layer. \
            With fan-in n = \(width) and PyTorch's default weights U(±1/√n), of variance σ² = 1/(3n), each layer scales \
            the gradient's norm by about √(n·σ²) × ¼ = √(1/3) × ¼ = \(fixed(theory.defaultFactor, decimals: 3)) (¼ is the \
            sigmoid's slope at 0, where its small pre-activations sit). Between layer 20 and layer 1 lie \(depth - 1) \
            such layers: \(fixed(theory.defaultFactor, decimals: 3))^\(depth - 1) = \(sci(pow(theory.defaultFactor, Double(depth - 1)))). \
            A weight gradient is the back-propagated signal times the layer's input, so the ratio of the first to the \
            last layer's gradient norm is that product times ‖x‖ / ‖h₁₉‖ = \(fixed(theory.inputNorm, decimals: 2)) / \
            \(fixed(theory.hiddenNorm, decimals: 2)) (a standardized image; \(width) sigmoid outputs near ½): predicted \
            \(sci(predicted)), measured at the first step \(sci(measured)) (median over the seeds). With Xavier's σ² = \
            2/(n + n) = 1/n each layer keeps √(n·σ²) = 1 and only the slope remains: predicted \(sci(predictedXavier)), \
            measured \(sci(measuredXavier)). So of the \(fixed(-log10(predicted), decimals: 1)) decades the sigmoid network loses, \
            the initialization accounts for \(fixed(log10(predictedXavier / predicted), decimals: 1)) (measured \
            \(fixed(log10(measuredXavier / measured), decimals: 1))) and the sigmoid's slope for the rest.
            """
    }

    static func figures(_ a: Analysis) -> [ReportBlock] {
        let deep = a.summaries.filter(isDeep)
        let depthPlot = LinePlot(
            title: "Gradient norm by depth (geometric mean over training)", xLabel: "layer (1 = input side)", yLabel: "‖∂loss/∂W‖",
            series: deep.map { s in
                medianSeries(s.name, s.trials.map { t in (1...depth).map { t.meanGradientNorm(layer: $0) } }, pastEnd: .nan,
                             dashed: s.role == .suggestion)
            }, logY: true)
        let baseline = a[Name.sigmoid], relu = a[Name.relu]
        let decades = { (s: ConfigurationSummary) -> String in
            let change = -log10(medianRatio(s).median)
            return change >= 0.5 ? "\(fixed(change, decimals: 1)) decades smaller" : "within \(fixed(Swift.max(Swift.abs(change), 0.1), decimals: 1)) decades"
        }
        var blocks: [ReportBlock] = [
            .figure(Figure(
                fileName: "vanishing-depth.svg",
                caption: "Each layer's gradient norm (median over \(a.plan.seeds.count) seeds, band: range): the sigmoid network's is "
                    + "\(decades(baseline)) at layer 1 than at layer \(depth); ReLU + He init's is \(decades(relu)) of it.",
                svg: depthPlot.svg)),
            .figure(heatMap(baseline, "vanishing-heatmap-sigmoid.svg")),
            .figure(heatMap(relu, "vanishing-heatmap-relu.svg")),
        ]
        blocks += ratioAndAccuracyFigures(a)
        return blocks
    }

    static func ratioAndAccuracyFigures(_ a: Analysis) -> [ReportBlock] {
        let shown = a.summaries.filter { $0.role == .pathology || $0.role == .remedy }
        let ratioPlot = LinePlot(
            title: "First-layer / last-layer gradient norm during training", xLabel: "step", yLabel: "ratio",
            series: shown.map { s in
                medianSeries(s.name, s.trials.map { t in smoothedLog(zip(t.layerGradientNorms[0], t.layerGradientNorms[depth - 1]).map { $0 / $1 }, window: 10) },
                             pastEnd: .nan)
            }, logY: true, reference: (vanishingRatio, "monitor's vanishing threshold"))
        let floor = a[ControlName.majorityClass].scoreRange.median
        let trained = a.summaries.filter { !$0.trials[0].test.isEmpty && $0.trials[0].test.count > 1 }
        let accuracyPlot = LinePlot(
            title: "Test accuracy after each epoch", xLabel: "epoch", yLabel: "test accuracy",
            series: trained.map { s in medianSeries(s.name, s.trials.map(\.test), pastEnd: .nan, dashed: s.role != .pathology && s.role != .remedy) },
            reference: (floor, "majority class"))
        let best = a.best(a.configurations(.remedy))!
        return [
            .figure(Figure(
                fileName: "vanishing-ratio.svg",
                caption: "First-to-last gradient ratio over training (10-step geometric moving average; median over the seeds, band: range); "
                    + "the dashed line is the monitor's vanishing threshold \(sci(vanishingRatio)).",
                svg: ratioPlot.svg)),
            .figure(Figure(
                fileName: "vanishing-accuracy.svg",
                caption: "Test accuracy after each epoch (median over the seeds at each configuration's chosen rate, band: range); the best "
                    + "remedy, \(best.name), reaches \(percent(best.scoreRange.median)) at its validation-selected epoch, the linear model "
                    + "\(percent(a[ControlName.linear].scoreRange.median)).",
                svg: accuracyPlot.svg)),
        ]
    }

    /// Each layer's gradient norm at each step, for the seed with the median score.
    static func heatMap(_ s: ConfigurationSummary, _ file: String) -> Figure {
        let seed = medianSeedIndex(s)
        let norms = s.trials[seed].layerGradientNorms
        return Figure(
            fileName: file,
            caption: "Gradient norm of each layer at each step: \(s.name), the seed with the median test accuracy "
                + "(\(percent(s.trials[seed].score)) at learning rate \(s.trials[seed].learningRate.map(rate) ?? "—")).",
            svg: HeatMap(
                title: "‖∂loss/∂W‖ per layer and step — \(s.name)", xLabel: "step", yLabel: "layer",
                rowLabels: (1...depth).map { "\($0)" }, values: norms,
                xRange: 1...Double(Swift.max(norms.first?.count ?? 1, 2)), colorLabel: "‖g‖").svg)
    }
}

/// A trailing geometric moving average (for norms that span decades); values
/// that are not positive and finite pass through.
func smoothedLog(_ values: [Double], window: Int) -> [Double] {
    let logs = values.map { $0 > 0 && $0.isFinite ? log($0) : Double.nan }
    return values.indices.map { i in
        guard values[i] > 0, values[i].isFinite else { return values[i] }
        let recent = logs[Swift.max(0, i - window + 1)...i].filter(\.isFinite)
        return exp(recent.reduce(0, +) / Double(recent.count))
    }
}
