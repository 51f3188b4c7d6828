// GradKitLab — mean-field theory against measurement: χ₁ and the per-layer gradient ratio of deep random networks, and trainability. SPDX-License-Identifier: MIT
#if canImport(Glibc)
import Glibc
#endif
import GradKit

/// Deep tanh and ReLU networks (50 Linear layers of 64 units on the digits)
/// with weights drawn at variance `σ_w² / fanIn` and zero biases (`σ_b = 0`):
/// the per-layer gradient-norm ratio mean-field theory predicts
/// (``SignalPropagation``, Poole et al. 2016, Schoenholz et al. 2017) against
/// the one a forward and backward pass measures, and how far networks of several depths train in a short run at each `σ_w`.
enum SignalPropagationExperiment {
    static let depth = 50, width = 64
    /// The depths of the trainability map: three in a full run, the shallowest and deepest with `--quick`.
    static func mapDepths(_ plan: Plan) -> [Int] { plan.quick ? [10, 50] : [10, 30, 50] }
    /// The examples in the measured batch.
    static let batch = 128
    /// The claim's tolerance: the measured per-layer ratio within 0.02 decades
    /// (about 5%) of the prediction, a factor of about 10 over the 48 layer pairs.
    static let tolerance = 0.02
    static let tanhScales: [Double] = [0.5, 0.75, 1, 1.25, 1.5, 2, 2.5, 3]
    static let reluScales: [Double] = [1, 1.2, 2.0.squareRoot(), 1.7, 2]
    /// SGD with momentum 0.9 at one rate: a short run, the same for every network.
    static let learningRate: Float = 0.01
    static func epochs(_ plan: Plan) -> Int { plan.epochs(full: 4, quick: 1) }

    static let metric = Metric(
        name: "theory error (decades per layer)", higherIsBetter: false, measure: { _, _ in .nan }, format: { sci($0) })

    static let experiment = Experiment(
        name: "signal-propagation", title: "Signal propagation: mean-field theory against measurement", metric: metric,
        configurations: configurations, conclude: conclude)

    /// "tanh, σ_w = 1.5".
    static func name(_ activation: Activation, _ scale: Double) -> String {
        "\(activation == .relu ? "ReLU" : "tanh"), σ_w = \(fixed(scale, decimals: scale == 2.0.squareRoot() ? 3 : 2))"
    }

    // MARK: Running

    static func configurations(_ plan: Plan) -> [Configuration] {
        let claim = follows()
        return [(Activation.tanh, tanhScales), (.relu, reluScales)].flatMap { activation, scales in
            scales.map { scale in
                let chi1 = chi1s[name(activation, scale)]!
                let role: Role = abs(log10(chi1)) < 0.05 ? .control : .pathology
                return Configuration(name(activation, scale), role: role, claim: claim) { trial(activation, scale, $0) }
            }
        }
    }

    /// A `depth`-layer MLP of width 64 on the digits' 64 pixels, weights
    /// normal with standard deviation `σ_w/√64` (Xavier's normal rule with gain
    /// σ_w on the square layers; the readout keeps that rule), biases zero.
    static func network(_ activation: Activation, _ scale: Double, depth: Int, seed: UInt64) -> MLP {
        withManualSeed(seed) {
            let model = MLP(sizes: [64] + Array(repeating: width, count: depth - 1) + [10], activation: activation,
                            initializer: .xavierNormal(gain: Float(scale)))
            for parameter in model.parameters where parameter.value.rank == 1 { parameter.value = Tensor(zeros: parameter.value.shape) }
            return model
        }
    }

    static func trial(_ activation: Activation, _ scale: Double, _ context: TrialContext) -> Trial {
        let split = digitsSplit(seed: context.seed)
        let model = network(activation, scale, depth: depth, seed: context.seed.initialization)
        var trial = Trial(learningRate: nil)
        trial.values["scale"] = scale
        let measured = preActivationGradients(model, split.fit, seed: context.seed.shuffling).dropLast()
        let inputVariance = meanSquare(split.fit.features)
        let predicted = SignalPropagation(activation: activation, weightScale: scale).gradientRatios(depth: depth - 1, inputVariance: inputVariance)
        trial.curves["measured"] = Array(measured)
        trial.values["measured"] = perLayer(Array(measured))
        // gradientRatios[l] is ‖δ_{l+1}‖ / ‖δ_{l+2}‖; the last is the readout's, left out like the measured readout.
        trial.values["predicted"] = pow(predicted.dropLast().reduce(1, *), 1 / Double(depth - 2))
        let error = abs(log10(trial.values["measured"]!) - log10(trial.values["predicted"]!))
        trial.validation = [error]
        trial.test = [error.isNaN ? .infinity : error]
        trial.selectEpoch(metric)
        for depth in mapDepths(context.plan) {
            let network = self.network(activation, scale, depth: depth, seed: context.seed.initialization)
            let run = train(network, optimizer: SGD(network.parameters, learningRate: learningRate, momentum: 0.9), TrainingPlan(
                data: split, metric: .testAccuracy, epochs: epochs(context.plan), seed: context.seed, sampleEvery: 1000))
            trial.values["accuracy \(depth)"] = run.score.isFinite ? run.score : 0.1
        }
        return trial
    }

    /// The geometric mean ratio of consecutive layers' gradient norms, input
    /// side over output side: (first / last)^(1 / (n − 1)) of the norms from the input.
    static func perLayer(_ norms: [Double]) -> Double {
        guard let first = norms.first, let last = norms.last, norms.count > 1 else { return .nan }
        return pow(first / last, 1 / Double(norms.count - 1))
    }

    /// The mean of the squared features: the input variance the theory starts from.
    static func meanSquare(_ features: Tensor) -> Double {
        features.scalars.reduce(0.0) { $0 + Double($1) * Double($1) } / Double(features.scalarCount)
    }

    /// ‖∂L/∂h_l‖ for every Linear layer's output h_l, from the input, for the
    /// softmax cross-entropy of one shuffled batch of ``batch`` examples. The
    /// layers run one by one (no fused Linear + ReLU), each Linear output with
    /// a gradient hook; the parameters' gradients are left as they were.
    static func preActivationGradients(_ model: MLP, _ data: Dataset, seed: UInt64) -> [Double] {
        let parameters = model.parameters, saved = parameters.map(\.gradient)
        defer { for (p, g) in zip(parameters, saved) { p.gradient = g } }
        var generator: SeededGenerator? = SeededGenerator(seed: seed)
        let sample = data.batches(size: Swift.min(batch, data.count), shuffledBy: &generator)[0]
        let layers = model.network.layers
        nonisolated(unsafe) var norms = [Double](repeating: .nan, count: layers.count)
        var x = sample.features
        for (i, layer) in layers.enumerated() {
            x = layer(x)
            if layer is Linear {
                x.registerGradientHook { gradient in
                    norms[i] = gradient.scalars.reduce(0.0) { $0 + Double($1) * Double($1) }.squareRoot()
                    return nil
                }
            }
        }
        LossFunction.softmaxCrossEntropy(x, sample).backward()
        return layers.indices.filter { layers[$0] is Linear }.map { norms[$0] }
    }

    // MARK: Analysis

    static func follows() -> Claim {
        Claim(holds: "follows theory", fails: "departs from theory", rule: """
            the measured per-layer ratio of consecutive hidden layers' pre-activation gradient norms ‖∂L/∂h_l‖ (geometric \
            mean over the \(depth - 1) hidden layers) is within \(fixed(tolerance, decimals: 2)) decades of the finite-depth mean-field prediction
            """) { trial, _ in trial.score <= tolerance }
    }

    // MARK: Rendering

    static func conclude(_ a: Analysis) -> Conclusion {
        let errors = a.summaries.flatMap(\.scores)
        let error = Range3(errors)
        let following = a.summaries.filter { $0.verdict.holds }.count
        let demonstrated = Double(following) >= Verdict.agreement * Double(a.summaries.count)
        let headline = """
            Over \(a.summaries.count) networks of \(depth) layers (tanh and ReLU, σ_w from \(fixed(tanhScales[0], decimals: 1)) to \
            \(fixed(tanhScales.last!, decimals: 0)), σ_b = 0) the measured per-layer gradient ratio is within \(fixed(tolerance, decimals: 2)) \
            decades of mean-field theory in at least 80% of the seeds for \(following) of \(a.summaries.count); median error \
            \(sci(error.median)) decades per layer (largest \(sci(error.max))). \(trainabilityHeadline(a))
            """
        let blocks: [ReportBlock] = [.text(setup(a)), a.table(columns), .text(a.rulesText), trainabilityTable(a)] + figures(a)
        return Conclusion(
            headline: headline, demonstrated: demonstrated, blocks: blocks,
            metrics: ["depth": .number(Double(depth)), "width": .number(Double(width)), "bias_scale": .number(0),
                      "median_error_decades_per_layer": .number(error.median), "largest_error_decades_per_layer": .number(error.max),
                      "configurations_following_theory": .number(Double(following)),
                      "critical_weight_scale_tanh": .number(critical(.tanh)), "critical_weight_scale_relu": .number(critical(.relu))])
    }

    /// σ_w at the edge of chaos for σ_b = 0.
    /// For tanh in closed form: without biases q* = 0 up to σ_w = 1, so χ₁ = σ_w² tanh′(0)² = σ_w²
    /// (the API's bisection agrees to 1%, LabTests; near 1 its fixed point converges only algebraically, slowly).
    static func critical(_ activation: Activation) -> Double { activation == .relu ? criticalReLU : 1 }
    static let criticalReLU = (SignalPropagation.criticalWeightVariance(activation: .relu) ?? .nan).squareRoot()

    /// χ₁ of every configured network, computed once.
    static let chi1s: [String: Double] = Dictionary(uniqueKeysWithValues: [(Activation.tanh, tanhScales), (.relu, reluScales)].flatMap { activation, scales in
        scales.map { (name(activation, $0), SignalPropagation(activation: activation, weightScale: $0).chi1) }
    })

    static func activation(of s: ConfigurationSummary) -> Activation { s.name.hasPrefix("ReLU") ? .relu : .tanh }
    static func scale(of s: ConfigurationSummary) -> Double { s.trials[0].values["scale"]! }

    static let columns = [
        Column(header: "χ₁ (theory)") { s in sci(chi1s[s.name]!) },
        Column(header: "√χ₁") { s in fixed(chi1s[s.name]!.squareRoot(), decimals: 3) },
        Column(header: "predicted per-layer ratio (median)") { s in fixed(Range3(s.trials.map { $0.values["predicted"]! }).median, decimals: 3) },
        Column(header: "measured per-layer ratio (median)") { s in fixed(Range3(s.trials.map { $0.values["measured"]! }).median, decimals: 3) },
    ]

    static func medianAccuracy(_ s: ConfigurationSummary, depth: Int) -> Double { Range3(s.trials.map { $0.values["accuracy \(depth)"]! }).median }

    static func trainabilityTable(_ a: Analysis) -> ReportBlock {
        .table(header: ["network"] + mapDepths(a.plan).map { "test accuracy, depth \($0) (median)" }, rows: a.summaries.map { s in
            [s.name] + mapDepths(a.plan).map { percent(medianAccuracy(s, depth: $0)) }
        })
    }

    /// The σ_w with the best median accuracy at `depth` among `activation`'s networks.
    static func best(_ a: Analysis, _ activation: Activation, depth: Int) -> ConfigurationSummary? {
        let summaries = a.summaries.filter { self.activation(of: $0) == activation }
        return summaries.reduce(nil) { best, s in
            best.map { medianAccuracy(s, depth: depth) > medianAccuracy($0, depth: depth) ? s : $0 } ?? s
        }
    }

    static func trainabilityHeadline(_ a: Analysis) -> String {
        let parts = [Activation.tanh, .relu].map { activation -> String in
            let label = activation == .relu ? "ReLU" : "tanh"
            return "\(label) " + mapDepths(a.plan).compactMap { depth in
                best(a, activation, depth: depth).map {
                    "at depth \(depth) σ_w = \(fixed(scale(of: $0), decimals: 2)) (\(percent(medianAccuracy($0, depth: depth))))"
                }
            }.joined(separator: ", ")
        }
        return "After \(epochs(a.plan)) epoch\(epochs(a.plan) == 1 ? "" : "s") of SGD the best median test accuracy is for \(parts.joined(separator: "; ")) "
            + "(edge of chaos: σ_w = \(fixed(critical(.tanh), decimals: 1)) for tanh, \(fixed(critical(.relu), decimals: 3)) for ReLU)."
    }

    static func setup(_ a: Analysis) -> String {
        """
        Each network has \(depth) Linear layers of \(width) units (\(depth - 1) hidden, each followed by the activation, and a \
        readout to the 10 digits); weights are normal with variance σ_w²/\(width), biases zero (σ_b = 0). Mean-field theory \
        (Poole et al. 2016; Schoenholz et al. 2017) predicts that back-propagation multiplies the squared gradient by \
        χ₁ = σ_w² E[φ′(h)²] per layer once the pre-activations' variance has reached its fixed point q*, so the gradient \
        norm by √χ₁: χ₁ < 1 vanishes (the ordered phase), χ₁ > 1 explodes (chaos), χ₁ = 1 is the edge of chaos — σ_w = \
        \(fixed(critical(.tanh), decimals: 1)) for tanh and σ_w² = 2 (He) for ReLU. The finite-depth prediction follows the \
        variance layer by layer from the fitting images' mean square (``SignalPropagation/gradientRatios(depth:inputVariance:)``); \
        the measurement is one batch of \(batch) fitting images, softmax cross-entropy, one backward pass, the norm of the \
        gradient with respect to each Linear layer's output h_l read by a tensor gradient hook; the per-layer ratio is the \
        geometric mean over the hidden layers, (‖∂L/∂h_1‖ / ‖∂L/∂h_\(depth - 1)‖)^(1/\(depth - 2)). The trainability map trains fresh networks of depth \(mapDepths(a.plan).map(String.init).joined(separator: ", ")) \
        at each σ_w for \(epochs(a.plan)) epochs of SGD (rate \(rate(learningRate)), momentum 0.9, batch 32); a run that \
        diverges counts as chance (10%).
        """
    }

    /// √χ₁ at 25 log-spaced σ_w across the configured scales, computed once (each point is a fixed point of quadratures).
    static let tanhTheoryCurve = theoryCurve(.tanh, tanhScales), reluTheoryCurve = theoryCurve(.relu, reluScales)

    private static func theoryCurve(_ activation: Activation, _ scales: [Double]) -> [(x: Double, y: Double)] {
        let grid = stride(from: log(scales.first!), through: log(scales.last!) + 1e-9, by: (log(scales.last!) - log(scales.first!)) / 24).map(exp)
        return grid.map { ($0, SignalPropagation(activation: activation, weightScale: $0).chi1.squareRoot()) }
    }

    static func figures(_ a: Analysis) -> [ReportBlock] {
        var blocks: [ReportBlock] = []
        for (activation, label, curve) in [(Activation.tanh, "tanh", tanhTheoryCurve), (.relu, "ReLU", reluTheoryCurve)] {
            let summaries = a.summaries.filter { self.activation(of: $0) == activation }
            let theory = Series("√χ₁ (theory)", points: curve)
            func measured(_ key: String, _ name: String, dashed: Bool) -> Series {
                var points: [(x: Double, y: Double)] = [], band: [(x: Double, low: Double, high: Double)] = []
                for s in summaries {
                    let values = s.trials.map { $0.values[key]! }, range = Range3(values)
                    points.append((scale(of: s), range.median))
                    band.append((scale(of: s), range.min, range.max))
                }
                return Series(name, points: points, dashed: dashed, band: key == "measured" ? band : [])
            }
            let plot = LinePlot(
                title: "Per-layer gradient-norm ratio at initialization, \(label), depth \(depth)", xLabel: "σ_w", yLabel: "ratio per layer",
                series: [theory, measured("predicted", "finite-depth prediction", dashed: true), measured("measured", "measured", dashed: false)],
                logY: true, reference: (1, "edge of chaos: χ₁ = 1"))
            let errors = Range3(summaries.flatMap(\.scores))
            blocks.append(.figure(Figure(
                fileName: "signal-propagation-\(label.lowercased())-ratio.svg",
                caption: "\(label): √χ₁ from mean-field theory (line), the finite-depth prediction and the measured per-layer ratio "
                    + "(median over the seeds, band: range) against σ_w; the median error is \(sci(errors.median)) decades per layer "
                    + "(largest \(sci(errors.max))), and the curve crosses 1 at σ_w = \(fixed(critical(activation), decimals: activation == .relu ? 3 : 1)).",
                svg: plot.svg)))
            let map = LinePlot(
                title: "Test accuracy after \(epochs(a.plan)) epochs, \(label), by depth", xLabel: "σ_w", yLabel: "test accuracy",
                series: mapDepths(a.plan).map { depth in
                    Series("depth \(depth)", points: summaries.map { (scale(of: $0), medianAccuracy($0, depth: depth)) })
                }, reference: (0.1, "chance"), yLimits: 0...1)
            let best = summaries.max { medianAccuracy($0, depth: mapDepths(a.plan).last!) < medianAccuracy($1, depth: mapDepths(a.plan).last!) }
            blocks.append(.figure(Figure(
                fileName: "signal-propagation-\(label.lowercased())-trainability.svg",
                caption: "\(label): median test accuracy after \(epochs(a.plan)) epochs against σ_w, one line per depth"
                    + (best.map { "; at depth \(mapDepths(a.plan).last!) the best is \(percent(medianAccuracy($0, depth: mapDepths(a.plan).last!))) at σ_w = \(fixed(scale(of: $0), decimals: 2))" } ?? "")
                    + ".",
                svg: map.svg)))
        }
        return blocks
    }
}
