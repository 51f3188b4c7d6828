// GradKitLab — Rosenblatt's perceptron against a back-propagation network, and the best line. SPDX-License-Identifier: MIT
#if canImport(Glibc)
import Glibc
#endif
import GradKit

/// The perceptron rule, its examples shuffled every epoch, on a linearly
/// separable set (it converges within Novikoff's bound) and on XOR (it
/// cannot), against an MLP with one hidden layer trained by back-propagation,
/// and the best single line found by exhaustive search.
enum PerceptronExperiment {
    static let experiment = Experiment(
        name: "perceptron-vs-bp", title: "Perceptron vs a back-propagation network", metric: .testAccuracy,
        configurations: configurations, conclude: conclude)

    enum Name {
        static let separable = "perceptron, separable data"
        static let separableMLP = "MLP, separable data"
        static let xor = "perceptron, XOR"
        static let xorMLP = "MLP, XOR"
        static let xorLine = "best line, XOR"
        static let xorMajority = "majority class, XOR"
    }

    /// Keys of ``Trial/values`` and ``Trial/curves``.
    enum Key {
        static let mistakes = "mistakes", converged = "converged", bound = "Novikoff bound", trainingAccuracy = "training accuracy"
    }

    /// Points in each of the fitting, validation and test sets.
    static let count = 200
    /// The smallest distance a separable point keeps from the line x + y = 0.
    static let margin: Float = 0.2
    /// How much better than the best line the MLP must score on XOR.
    static let lineMargin = 0.1
    static func epochs(_ plan: Plan) -> Int { plan.epochs(full: 100, quick: 50) }

    // MARK: Running

    static func configurations(_ plan: Plan) -> [Configuration] {
        [
            Configuration(Name.separable, role: .control, claim: convergesWithinBound()) { perceptron(separable($0.seed), $0) },
            Configuration(Name.separableMLP, role: .control, learningRates: [0.01, 0.05]) { network(separable($0.seed), $0) },
            Configuration(Name.xor, role: .pathology, claim: neverConverges()) { perceptron(xor($0.seed), $0) },
            Configuration(Name.xorMLP, role: .remedy, learningRates: [0.01, 0.05], claim: beatsTheLine()) { network(xor($0.seed), $0) },
            Configuration(Name.xorLine, role: .control) { bestLine(xor($0.seed)) },
            Configuration(Name.xorMajority, role: .control) { majority(xor($0.seed)) },
        ]
    }

    /// Two Gaussian clouds (centers ±(0.7, 0.7), unit variance), each point
    /// kept only on its own side of x + y = 0 and at least ``margin`` from it.
    static func separable(_ seed: RunSeed) -> SplitData {
        var generator = SeededGenerator(seed: seed.data)
        func draw() -> Dataset {
            var points: [Float] = [], labels: [Int] = []
            while labels.count < count {
                let label = labels.count % 2
                let center: Float = label == 1 ? 0.7 : -0.7
                let noise = Tensor(randomNormal: [2], standardDeviation: 1, using: &generator).scalars
                let x = center + noise[0], y = center + noise[1]
                guard (label == 1 ? 1 : -1) * (x + y) / Float(2).squareRoot() >= margin else { continue }
                points += [x, y]
                labels.append(label)
            }
            do {
                return try Dataset(features: Tensor(shape: [count, 2], scalars: points), labels: labels)
            } catch {
                fatalError("lab: the separable set is malformed: \(error)")
            }
        }
        return SplitData(fit: draw(), validation: draw(), test: draw())
    }

    /// The four corners of the unit square labeled x1 XOR x2, 50 noisy copies (σ = 0.1) each, three independent draws.
    static func xor(_ seed: RunSeed) -> SplitData {
        SplitData(
            fit: .xor(copies: count / 4, noise: 0.1, seed: seed.data), validation: .xor(copies: count / 4, noise: 0.1, seed: seed.data &+ 1),
            test: .xor(copies: count / 4, noise: 0.1, seed: seed.data &+ 2))
    }

    /// The perceptron rule (w += t·x on each mistake), one epoch at a time over a fresh shuffle, until an epoch makes no mistake.
    static func perceptron(_ data: SplitData, _ context: TrialContext) -> Trial {
        let unit = Perceptron(inputSize: 2)
        var generator = SeededGenerator(seed: context.seed.shuffling)
        var mistakes: [Double] = [], converged = false
        for _ in 0..<epochs(context.plan) where !converged {
            let shuffled = data.fit.shuffled(using: &generator)
            let epoch = unit.learn(features: shuffled.features, labels: shuffled.labels!, maximumEpochs: 1)
            mistakes.append(Double(epoch.totalMistakes))
            converged = epoch.converged
        }
        func accuracy(_ part: Dataset) -> Double {
            Double(zip(unit(part.features).scalars, part.labels!).filter { Int($0) == $1 }.count) / Double(part.count)
        }
        var trial = Trial(learningRate: nil)
        trial.validation = [accuracy(data.validation)]
        trial.test = [accuracy(data.test)]
        trial.selectEpoch(.testAccuracy)
        trial.curves[Key.mistakes] = mistakes
        trial.values = [Key.converged: converged ? 1 : 0, Key.bound: novikoffBound(data.fit), Key.trainingAccuracy: accuracy(data.fit)]
        return trial
    }

    /// (R/γ)²: R the largest ‖(x, y, 1)‖, γ the smallest distance to x + y = 0
    /// (the unit vector (1, 1, 0)/√2 separates the set with that margin).
    static func novikoffBound(_ data: Dataset) -> Double {
        let x = data.features.scalars, labels = data.labels!
        var radius = 0.0, gamma = Double.infinity
        for i in 0..<data.count {
            let a = Double(x[2 * i]), b = Double(x[2 * i + 1])
            radius = Swift.max(radius, (a * a + b * b + 1).squareRoot())
            gamma = Swift.min(gamma, (labels[i] == 1 ? 1 : -1) * (a + b) / Double(2).squareRoot())
        }
        return gamma > 0 ? ((radius / gamma) * (radius / gamma)).rounded(.up) : .nan
    }

    /// An MLP with one hidden layer of 8 tanh units trained by Adam, batch 20.
    static func network(_ data: SplitData, _ context: TrialContext) -> Trial {
        let model = withManualSeed(context.seed.initialization) { MLP(sizes: [2, 8, 2], activation: .tanh) }
        var plan = TrainingPlan(data: data, metric: .testAccuracy, epochs: epochs(context.plan), batchSize: 20, seed: context.seed, sampleEvery: 10)
        plan.scoresFitData = true
        var trial = train(model, optimizer: Adam(model.parameters, learningRate: context.learningRate), plan)
        trial.values[Key.trainingAccuracy] = trial.selectedEpoch.map { trial.fitted[$0 - 1] } ?? .nan
        return trial
    }

    /// The line with the best training accuracy, over 720 directions and every threshold between projections.
    static func bestLine(_ data: SplitData) -> Trial {
        let x = data.fit.features.scalars, labels = data.fit.labels!, n = data.fit.count
        var best = (accuracy: -1.0, angle: 0.0, threshold: 0.0)
        for k in 0..<720 {
            let angle = Double(k) * Double.pi / 360
            let (c, s) = (cos(angle), sin(angle))
            let projected = (0..<n).map { (i: Int) -> (Double, Int) in (Double(x[2 * i]) * c + Double(x[2 * i + 1]) * s, labels[i]) }.sorted { $0.0 < $1.0 }
            // Class 1 above the threshold: sweep it past one point at a time.
            var correct = labels.filter { $0 == 1 }.count
            for i in 0..<n {
                correct += projected[i].1 == 0 ? 1 : -1
                let accuracy = Double(correct) / Double(n)
                if accuracy > best.accuracy {
                    best = (accuracy, angle, i + 1 < n ? (projected[i].0 + projected[i + 1].0) / 2 : projected[i].0 + 1)
                }
            }
        }
        let direction = (cos(best.angle), sin(best.angle))
        func accuracy(_ part: Dataset) -> Double {
            let p = part.features.scalars, labels = part.labels!
            let correct = (0..<part.count).filter { i in
                let projection = Double(p[2 * i]) * direction.0 + Double(p[2 * i + 1]) * direction.1
                return (projection > best.threshold ? 1 : 0) == labels[i]
            }.count
            return Double(correct) / Double(part.count)
        }
        var trial = Trial(learningRate: nil)
        trial.validation = [accuracy(data.validation)]
        trial.test = [accuracy(data.test)]
        trial.selectEpoch(.testAccuracy)
        trial.values[Key.trainingAccuracy] = best.accuracy
        return trial
    }

    /// Always the most common class of the fitting data.
    static func majority(_ data: SplitData) -> Trial {
        let ones = data.fit.labels!.filter { $0 == 1 }.count, answer = ones * 2 > data.fit.count ? 1 : 0
        func accuracy(_ part: Dataset) -> Double { Double(part.labels!.filter { $0 == answer }.count) / Double(part.count) }
        var trial = Trial(learningRate: nil)
        trial.validation = [accuracy(data.validation)]
        trial.test = [accuracy(data.test)]
        trial.selectEpoch(.testAccuracy)
        trial.values[Key.trainingAccuracy] = accuracy(data.fit)
        return trial
    }

    // MARK: Analysis

    static func convergesWithinBound() -> Claim {
        Claim(holds: "converges within the bound", fails: "does not converge within the bound",
              rule: "an epoch makes no mistake and the mistakes made until then are at most Novikoff's bound (R/γ)²") { trial, _ in
            trial.values[Key.converged] == 1 && (trial.curves[Key.mistakes] ?? []).reduce(0, +) <= trial.values[Key.bound] ?? .nan
        }
    }

    static func neverConverges() -> Claim {
        Claim(holds: "never converges", fails: "converges", rule: "every epoch makes a mistake") { trial, _ in trial.values[Key.converged] == 0 }
    }

    static func beatsTheLine() -> Claim {
        Claim(holds: "beats the best line", fails: "does not beat the best line",
              rule: "its test accuracy exceeds the best line's by at least \(fixed(lineMargin * 100, decimals: 0)) points") { trial, seed in
            trial.score - seed[Name.xorLine].score >= lineMargin
        }
    }

    /// The perceptron's mistakes per epoch over its last ten epochs, median over those epochs.
    static func lateMistakes(_ trial: Trial) -> Double { Range3(Array((trial.curves[Key.mistakes] ?? []).suffix(10))).median }

    // MARK: Rendering

    static func conclude(_ a: Analysis) -> Conclusion {
        let demonstrated = a[Name.separable].verdict.holds && a[Name.xor].verdict.holds && a[Name.xorMLP].verdict.holds
        let blocks: [ReportBlock] = [.text(setup(a)), a.table(columns), .text(a.rulesText)] + figures(a)
        return Conclusion(
            headline: headline(a), demonstrated: demonstrated, blocks: blocks,
            metrics: ["epochs": .number(Double(epochs(a.plan))),
                      "xor_perceptron_late_mistakes_per_epoch": .number(Range3(a[Name.xor].trials.map(lateMistakes)).median)])
    }

    static let columns = [
        Column(header: "training accuracy (median)") { s in percent(Range3(s.trials.map { $0.values[Key.trainingAccuracy] ?? .nan }).median) },
        Column(header: "perceptron: epochs, mistakes (median)") { s in
            guard s.trials.first?.curves[Key.mistakes] != nil else { return "—" }
            let epochs = Range3(s.trials.map { Double($0.curves[Key.mistakes]!.count) }).median
            let total = Range3(s.trials.map { $0.curves[Key.mistakes]!.reduce(0, +) }).median
            let bound = Range3(s.trials.map { $0.values[Key.bound] ?? .nan }).median
            let converged = s.trials.allSatisfy { $0.values[Key.converged] == 1 }
            return "\(fixed(epochs, decimals: 0)) epochs, \(fixed(total, decimals: 0)) mistakes" + (bound.isFinite ? " (bound \(fixed(bound, decimals: 0)))" : "")
                + (converged ? "" : ", \(fixed(Range3(s.trials.map(lateMistakes)).median, decimals: 0)) per epoch in the last 10")
        },
    ]

    static func setup(_ a: Analysis) -> String {
        """
        Rosenblatt's perceptron rule (w += t·x on each mistake), its \(count) fitting points shuffled every epoch, for up to \
        \(epochs(a.plan)) epochs, against an MLP with one hidden layer of 8 tanh units trained by back-propagation (Adam, \
        batch 20, \(epochs(a.plan)) epochs, rate and epoch chosen on validation data). Every data set has separate fitting, \
        validation and test draws of \(count) points each; the table's metric is accuracy on the test draw, and the \
        training accuracy is on the fitting draw. The separable set is two Gaussian clouds (centers ±(0.7, 0.7), unit \
        variance) with each point kept on its own side of the line x + y = 0 and at least \(fixed(Double(margin), decimals: 1)) from \
        it, so Novikoff's theorem bounds the perceptron's mistakes by (R/γ)². XOR is the four corners of the unit square, \
        \(count / 4) copies each with Gaussian noise σ = 0.1: no line separates it (Minsky and Papert, 1969) — the best line \
        gets three corners of four, 75% — and the perceptron's weights keep cycling.
        """
    }

    static func headline(_ a: Analysis) -> String {
        var sentences: [String] = []
        let separable = a[Name.separable], xor = a[Name.xor], mlp = a[Name.xorMLP], line = a[Name.xorLine]
        if separable.verdict.holds {
            let mistakes = Range3(separable.trials.map { ($0.curves[Key.mistakes] ?? []).reduce(0, +) }).median
            sentences.append("With its examples shuffled every epoch, the perceptron separates the separable set within Novikoff's bound in "
                + "\(separable.verdict.holding) of \(separable.verdict.seeds) seeds (median \(fixed(mistakes, decimals: 0)) mistakes).")
        }
        if xor.verdict.holds {
            sentences.append("On XOR it never converges (\(xor.verdict.holding) of \(xor.verdict.seeds) seeds), still making a median "
                + "\(fixed(Range3(xor.trials.map(lateMistakes)).median, decimals: 0)) mistakes per epoch at the end, and ends at "
                + "\(percent(xor.scoreRange.median)) test accuracy against the best line's \(percent(line.scoreRange.median)).")
        }
        if mlp.verdict.holds {
            sentences.append("The back-propagation network with one hidden layer beats the best line in \(mlp.verdict.holding) of "
                + "\(mlp.verdict.seeds) seeds: \(percent(mlp.scoreRange.median)) test accuracy (median).")
        }
        return sentences.isEmpty ? "No claim holds in at least 80% of the seeds; see the table." : sentences.joined(separator: " ")
    }

    static func figures(_ a: Analysis) -> [ReportBlock] {
        let separable = a[Name.separable], xor = a[Name.xor], mlp = a[Name.xorMLP]
        let mistakesPlot = LinePlot(
            title: "Perceptron rule: mistakes per epoch (examples shuffled every epoch)", xLabel: "epoch", yLabel: "mistakes",
            series: [
                medianSeries("separable set", separable.trials.map { $0.curves[Key.mistakes] ?? [] }, pastEnd: 0),
                medianSeries("XOR (noisy, \(count) points)", xor.trials.map { $0.curves[Key.mistakes] ?? [] }, pastEnd: .nan),
            ])
        let accuracyPlot = LinePlot(
            title: "MLP on XOR: accuracy after each epoch", xLabel: "epoch", yLabel: "accuracy",
            series: [
                medianSeries("MLP, training accuracy", mlp.trials.map(\.fitted), pastEnd: .nan, dashed: true),
                medianSeries("MLP, test accuracy", mlp.trials.map(\.test), pastEnd: .nan),
            ], reference: (a[Name.xorLine].scoreRange.median, "best line (test)"))
        return [
            .figure(Figure(
                fileName: "perceptron-mistakes.svg",
                caption: "Mistakes per epoch (median over the seeds, band: range): zero from epoch "
                    + "\(fixed(Range3(separable.trials.map { Double($0.curves[Key.mistakes]?.count ?? 0) }).median, decimals: 0)) on for the separable set "
                    + "(median), about \(fixed(Range3(xor.trials.map(lateMistakes)).median, decimals: 0)) per epoch to the end on XOR.",
                svg: mistakesPlot.svg)),
            .figure(Figure(
                fileName: "perceptron-xor-accuracy.svg",
                caption: "The MLP on XOR (median over the seeds, band: range): training accuracy dashed, test accuracy solid; "
                    + "the dotted line is the best line's test accuracy, \(percent(a[Name.xorLine].scoreRange.median)).",
                svg: accuracyPlot.svg)),
        ]
    }
}
