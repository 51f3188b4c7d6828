// GradKitLab — six optimizers on the digits, each at its own tuned rate, and AdaGrad's decaying step. SPDX-License-Identifier: MIT
#if canImport(Glibc)
import Glibc
#endif
import GradKit

/// The digits MLP (64-128-10, ReLU) trained by SGD, SGD with momentum,
/// AdaGrad, RMSprop, Adam and AdamW, each at the rate of its grid that scores
/// best on validation data, against plain SGD.
enum Optimizers {
    static let experiment = Experiment(
        name: "optimizers", title: "Optimizers on the digits", metric: .testAccuracy, configurations: configurations, conclude: conclude)

    enum Name {
        static let sgd = "SGD"
        static let momentum = "SGD + momentum 0.9"
        static let adagrad = "AdaGrad"
        static let rmsprop = "RMSprop"
        static let adam = "Adam"
        static let adamw = "AdamW (decay 0.01)"
    }

    /// How much better than SGD an optimizer must score to count as better: 2 points, about 7 test images.
    static let margin = 0.02
    /// The curve of AdaGrad's median effective rate in ``Trial/curves``.
    static let effectiveRate = "effective rate"
    static func epochs(_ plan: Plan) -> Int { plan.epochs(full: 20, quick: 8) }

    // MARK: Running

    static func configurations(_ plan: Plan) -> [Configuration] {
        typealias Make = @Sendable ([Parameter], Float) -> Optimizer
        func choice(_ name: String, _ role: Role, _ rates: [Float], claim: Claim, _ make: @escaping Make) -> Configuration {
            Configuration(name, role: role, learningRates: rates, claim: claim) { trial(make, $0) }
        }
        let better = betterThanSGD()
        return [
            choice(Name.sgd, .control, [0.1, 0.3, 1], claim: learns()) { SGD($0, learningRate: $1) },
            choice(Name.momentum, .alternative, [0.01, 0.03, 0.1], claim: better) { SGD($0, learningRate: $1, momentum: 0.9) },
            choice(Name.adagrad, .alternative, [0.01, 0.03, 0.1], claim: better) { AdaGrad($0, learningRate: $1) },
            choice(Name.rmsprop, .alternative, [3e-4, 1e-3, 3e-3], claim: better) { RMSprop($0, learningRate: $1) },
            choice(Name.adam, .alternative, [1e-3, 3e-3, 1e-2], claim: better) { Adam($0, learningRate: $1) },
            choice(Name.adamw, .alternative, [1e-3, 3e-3, 1e-2], claim: better) { AdamW($0, learningRate: $1, weightDecay: 0.01) },
            .majorityClass(digitsSplit),
            .linearClassifier(learningRates: [0.01, 0.03, 0.1], epochs: epochs, digitsSplit),
        ]
    }

    static func trial(_ make: @Sendable ([Parameter], Float) -> Optimizer, _ context: TrialContext) -> Trial {
        let model = withManualSeed(context.seed.initialization) { MLP(sizes: [64, 128, 10]) }
        let optimizer = make(model.parameters, context.learningRate)
        var rates: [Double] = []
        let recordsRate = optimizer is AdaGrad
        var trial = train(model, optimizer: optimizer, TrainingPlan(
            data: digitsSplit(seed: context.seed), metric: .testAccuracy, epochs: epochs(context.plan), seed: context.seed, sampleEvery: 10)
        ) { trainer, record in
            if recordsRate, isSampled(step: record.step + 1) { rates.append(medianEffectiveRate(trainer.optimizer)) }
        }
        trial.curves[effectiveRate] = rates
        return trial
    }

    /// Steps 1–10, then ten per decade (the steps round(10^(k/10))): enough for a log–log plot.
    static func isSampled(step: Int) -> Bool {
        step <= 10 || step == Int(pow(10, (10 * log10(Double(step))).rounded() / 10).rounded())
    }

    /// The sampled steps up to `count`.
    static func sampledSteps(upTo count: Int) -> [Int] { (1...Swift.max(count, 1)).filter { isSampled(step: $0) } }

    /// AdaGrad's lr / (√Σg² + ε), the factor its step multiplies a gradient by, median over the
    /// weights that have had a gradient (pixels constant in the data give theirs an accumulator of 0).
    static func medianEffectiveRate(_ optimizer: Optimizer) -> Double {
        var rates: [Double] = []
        for entry in optimizer.exportState().parameters {
            guard let sums = entry.buffers["sum"] else { continue }
            for s in sums.scalars where s > 0 { rates.append(Double(optimizer.learningRate) / (Double(s).squareRoot() + 1e-10)) }
        }
        return Range3(rates).median
    }

    // MARK: Analysis

    static func learns() -> Claim {
        Claim(holds: "learns", fails: "does not learn", rule: Yardstick.words(.testAccuracy).learns) { trial, seed in
            Yardstick(seed).learns(trial.score)
        }
    }

    static func betterThanSGD() -> Claim {
        Claim(holds: "better than SGD", fails: "not better than SGD",
              rule: "its test accuracy exceeds plain SGD's by at least \(fixed(margin * 100, decimals: 0)) points (about \(fixed(margin * 359, decimals: 0)) test images)") { trial, seed in
            trial.score - seed[Name.sgd].score >= margin
        }
    }

    /// How many seeds each optimizer scored best at (ties to each).
    static func winners(_ a: Analysis) -> [(name: String, seeds: Int)] {
        let optimizers = self.optimizers(a)
        var wins: [String: Int] = [:]
        for s in a.plan.seeds.indices {
            let best = optimizers.map { $0.trials[s].score }.filter(\.isFinite).max() ?? .nan
            for o in optimizers where o.trials[s].score == best { wins[o.name, default: 0] += 1 }
        }
        return optimizers.compactMap { o in wins[o.name].map { (o.name, $0) } }
    }

    /// AdaGrad's median effective rate at its first sampled step over that at its last, per seed.
    static func adagradDecay(_ a: Analysis) -> [Double] {
        a[Name.adagrad].trials.map { t in
            let rates = t.curves[effectiveRate] ?? []
            return (rates.first ?? .nan) / (rates.last ?? .nan)
        }
    }

    // MARK: Rendering

    static func conclude(_ a: Analysis) -> Conclusion {
        let everyOneLearns = optimizers(a).allSatisfy { s in a.mostSeeds(a.seeds(s) { trial, seed in Yardstick(seed).learns(trial.score) }) }
        let decay = Range3(adagradDecay(a))
        let blocks: [ReportBlock] = [.text(setup(a)), a.table(), .text(a.rulesText), .text(winnersText(a))] + figures(a)
        return Conclusion(
            headline: headline(a), demonstrated: everyOneLearns && decay.min >= 3, blocks: blocks,
            metrics: ["epochs": .number(Double(epochs(a.plan))), "adagrad_effective_rate_decay": .number(decay.median)])
    }

    /// The six optimizers: SGD and the alternatives (not the majority class and linear model).
    static func optimizers(_ a: Analysis) -> [ConfigurationSummary] { a.summaries.filter { $0.role == .alternative || $0.name == Name.sgd } }

    static func setup(_ a: Analysis) -> String {
        """
        The digits MLP (64-128-10, ReLU, PyTorch's default initialization; at each seed the same initial weights for \
        every optimizer) on the digits (\(sizes(a.plan))), batch 32, \(epochs(a.plan)) epochs, at seeds \
        \(a.plan.seeds.map(String.init).joined(separator: ", ")); each optimizer with PyTorch's other defaults and the \
        learning rate of its grid that scores best on validation data.
        """
    }

    static func headline(_ a: Analysis) -> String {
        let tuned = optimizers(a)
        let medians = tuned.map(\.scoreRange.median)
        var text = "With rates tuned on validation data the six optimizers' median test accuracies lie between "
            + "\(percent(medians.min() ?? .nan)) and \(percent(medians.max() ?? .nan)) (linear model \(percent(a[ControlName.linear].scoreRange.median)))"
        let better = a.names { $0.role == .alternative && $0.verdict.holds }, notBetter = a.names { $0.role == .alternative && $0.verdict.fails }
        text += "; better than plain SGD in at least 80% of the seeds: \(list(better)); not better: \(list(notBetter))."
        let decay = Range3(adagradDecay(a))
        if decay.min >= 3 {
            text += " AdaGrad's median effective rate falls \(times(decay.min))–\(times(decay.max)) from its first step to its last in every seed."
        }
        return text
    }

    static func winnersText(_ a: Analysis) -> String {
        let wins = winners(a)
        let mixed = a.names { $0.verdict.label == "mixed" }
        return "The highest test accuracy at each seed: " + wins.map { "\($0.name) at \($0.seeds)" }.joined(separator: ", ")
            + " of \(a.plan.seeds.count) seeds (ties count for each)"
            + (wins.count > 1 ? ": which optimizer is best depends on the seed." : ".")
            + (mixed.isEmpty ? "" : " Mixed across seeds: \(list(mixed)).")
    }

    static func figures(_ a: Analysis) -> [ReportBlock] {
        let tuned = optimizers(a)
        let lossPlot = LinePlot(
            title: "Training loss per step (20-step moving average)", xLabel: "step", yLabel: "loss",
            series: tuned.map { s in medianSeries(s.name, s.trials.map { smoothed($0.stepLoss, window: 20) }, pastEnd: .nan) }, logY: true)
        let accuracyPlot = LinePlot(
            title: "Test accuracy after each epoch", xLabel: "epoch", yLabel: "test accuracy",
            series: tuned.map { s in medianSeries(s.name, s.trials.map(\.test), pastEnd: .nan) })
        let adagrad = a[Name.adagrad], sgdRate = Range3(a[Name.sgd].trials.compactMap { $0.learningRate.map(Double.init) }).median
        let steps = sampledSteps(upTo: adagrad.trials.map { $0.stepLoss.count }.max() ?? 1)
        let ratePlot = LinePlot(
            title: "AdaGrad: median effective rate lr / (√Σg² + ε)", xLabel: "step", yLabel: "factor multiplying the gradient",
            series: [medianSeries("AdaGrad, median over weights", adagrad.trials.map { $0.curves[effectiveRate] ?? [] }, x: { Double(steps[$0]) }, pastEnd: .nan)],
            logY: true, logX: true, reference: (sgdRate, "plain SGD's tuned rate \(rate(Float(sgdRate)))"))
        let first = Range3(adagrad.trials.map { $0.curves[effectiveRate]?.first ?? .nan }).median
        let last = Range3(adagrad.trials.map { $0.curves[effectiveRate]?.last ?? .nan }).median
        return [
            .figure(Figure(fileName: "optimizers-loss.svg", caption: "Training loss of each optimizer (median over the seeds, band: range).", svg: lossPlot.svg)),
            .figure(Figure(fileName: "optimizers-accuracy.svg", caption: "Test accuracy after each epoch (median over the seeds, band: range).", svg: accuracyPlot.svg)),
            .figure(Figure(
                fileName: "optimizers-adagrad-rate.svg",
                caption: "AdaGrad's effective rate, the factor its step multiplies each gradient by (median over the weights, then over the "
                    + "seeds; log–log), falls from \(sci(first)) after step 1 to \(sci(last)) at the last step: its sum of squared gradients only "
                    + "grows. Plain SGD multiplies the gradient by its learning rate, the same units.",
                svg: ratePlot.svg)),
        ]
    }
}
