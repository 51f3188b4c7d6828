// gradkit lab end to end: every experiment runs, is analyzed and rendered without trapping (at one
// epoch); the quick perceptron experiment shows each of its claims at every seed and writes complete
// report files, with the same numbers for any number of threads; the sigmoid network's gradient ratio
// at initialization matches the theory the report prints; the presentation fixes hold (the
// perceptron's epochs are shuffled, AdaGrad's rate is sampled from step 1, 1e-4 prints as 1e-4), and
// the monitor's report survives a diverged run. Also the plots and the learning-rate range test.
import Testing
#if canImport(Glibc)
import Glibc
#endif

@testable import GradKit
@testable import GradKitLab

/// Checks that every tag opened in an SVG document is closed, in order, and
/// that attribute quotes balance: a small well-formedness test without an XML parser.
func wellFormedXML(_ text: String) -> Bool {
    var stack: [Substring] = []
    var rest = Substring(text)
    while let open = rest.firstIndex(of: "<") {
        guard let close = rest[open...].firstIndex(of: ">") else { return false }
        let tag = rest[rest.index(after: open)..<close]
        rest = rest[rest.index(after: close)...]
        if tag.filter({ $0 == "\"" }).count % 2 != 0 { return false }
        if tag.hasPrefix("/") {
            guard let top = stack.popLast(), top == tag.dropFirst() else { return false }
        } else if !tag.hasSuffix("/") {
            stack.append(tag.prefix { $0 != " " })
        }
    }
    return stack.isEmpty
}

/// The experiment named `name`.
private func experiment(_ name: String) throws -> Experiment { try #require(Lab.experiments.first { $0.name == name }) }

private func read(_ path: String) throws -> String { String(decoding: try FileIO.readAll(path).get(), as: UTF8.self) }

@Suite("Lab")
struct LabTests {
    @Test("every experiment runs, analyzes and renders at one epoch and one seed, and reports every configuration")
    func everyExperimentEndToEnd() throws {
        for experiment in Lab.experiments {
            let plan = Plan(quick: true, seeds: [11], epochLimit: 1)
            let result = Lab.run(experiment, plan, threads: 2)
            let declared = experiment.configurations(plan).map(\.name)
            #expect(result.configurations.map(\.name) == declared, "\(experiment.name)")
            for c in result.configurations {
                #expect(c.verdict.seeds == 1 && c.trials.count == 1, "\(experiment.name): \(c.name)")
                let labels = c.claim.map { [$0.holds, $0.fails, "mixed"] } ?? ["reference"]
                #expect(labels.contains(c.verdict.label), "\(experiment.name): \(c.name): \(c.verdict.label)")
            }
            #expect(!result.verdict.isEmpty && result.blocks.contains { if case .table = $0 { true } else { false } })
            for figure in result.figures { #expect(wellFormedXML(figure.svg), "\(figure.fileName)") }
        }
    }

    @Test("the quick perceptron experiment shows its claims at every seed and writes a complete report")
    func quickPerceptron() throws {
        let options = LabOptions(quick: true, seed: 0, only: "perceptron", threads: 2)
        let results = Lab.run(options)
        let result = try #require(results.first { $0.name == "perceptron-vs-bp" })
        #expect(result.demonstrated, "\(result.verdict)")
        for name in [PerceptronExperiment.Name.separable, PerceptronExperiment.Name.xor, PerceptronExperiment.Name.xorMLP] {
            let c = try #require(result.configuration(name))
            #expect(c.verdict.holds && c.verdict.holding == 3, "\(name): \(c.verdict)")
        }
        // The best line on XOR gets three corners of four.
        let line = try #require(result.configuration(PerceptronExperiment.Name.xorLine))
        #expect(line.scores.allSatisfy { $0 > 0.7 && $0 < 0.8 }, "\(line.scores)")

        let directory = try temporaryDirectory() + "/lab"
        try Lab.writeReport(results, options: options, totalSeconds: 1, to: directory)
        let report = try read(directory + "/report.md")
        #expect(report.contains("**Verdict:** \(result.verdict)"))
        #expect(report.split(separator: "\n").filter { $0.hasPrefix("Time: ") }.count == 1)
        let json = try JSON.parse(try read(directory + "/results.json"))
        let top = try #require(json.objectValue)
        #expect(Set(top.keys).isSuperset(of: ["command", "quick", "seed", "seconds", "experiments", "matmul_precision"]))
        #expect(top["command"] == .string("gradkit lab --quick --only perceptron"))
        #expect(top["matmul_precision"] == .string("float32"))
        #expect(report.contains("`gradkit lab --quick --only perceptron` — quick run, matrix products in float32: every configuration at 3 seeds"))
        let entry = try #require(top["experiments"]?.arrayValue?.first?.objectValue)
        #expect(entry["metric"] == .string("test accuracy") && entry["name"] == .string("perceptron-vs-bp"))
        let configurations = try #require(entry["configurations"]?.arrayValue)
        #expect(configurations.count == result.configurations.count)
        for c in configurations {
            let object = try #require(c.objectValue)
            for key in ["name", "verdict", "seeds", "agreeing", "median", "min", "max"] { #expect(object[key] != nil, "\(key)") }
            #expect(object["seeds"]?.numberValue == 3)
        }
        #expect(result.figures.count >= 2)
        for figure in result.figures {
            let svg = try read(directory + "/figures/" + figure.fileName)
            #expect(svg.hasPrefix("<svg xmlns=\"http://www.w3.org/2000/svg\"") && wellFormedXML(svg), "\(figure.fileName)")
            #expect(report.contains("](figures/\(figure.fileName))"))
        }
    }

    @Test("a bfloat16 run computes in bfloat16 whatever the caller's precision, and its report says so in JSON, header and command")
    func matmulPrecisionRecorded() throws {
        // The loss-scaling experiment is quick and its numbers move with bfloat16 products (the perceptron's do not).
        let float32 = LabOptions(quick: true, only: "loss-scaling", threads: 2)
        var bfloat16 = float32
        bfloat16.matmulPrecision = .bfloat16
        /// The results' numbers as results.json writes them, without the run times (as text: NaN equals nothing).
        func numbers(_ results: [ExperimentResult]) -> [String] { results.map { var result = $0; result.seconds = 0; return prettyJSON(result.json) } }
        // One epoch is enough for bfloat16 products to move the numbers.
        let plain = Lab.run(float32, epochLimit: 1)
        let rounded = Kernels.withMatmulPrecision(.float32) { Lab.run(bfloat16, epochLimit: 1) }
        // The options decide, not the calling thread: float32 options in a bfloat16 thread still compute in float32.
        #expect(numbers(Kernels.withMatmulPrecision(.bfloat16) { Lab.run(float32, epochLimit: 1) }) == numbers(plain))
        #expect(numbers(plain) != numbers(rounded), "bfloat16 products changed no number: the precision was not applied")

        let directory = try temporaryDirectory() + "/lab"
        try Lab.writeReport(rounded, options: bfloat16, totalSeconds: 1, to: directory)
        let top = try #require(try JSON.parse(try read(directory + "/results.json")).objectValue)
        #expect(top["matmul_precision"] == .string("bfloat16"))
        #expect(top["command"] == .string("gradkit lab --quick --only loss-scaling --matmul-precision bfloat16"))
        // The spelling is MatmulPrecision's, which checkpoints record and --matmul-precision reads back.
        #expect(top["matmul_precision"]?.stringValue.flatMap(MatmulPrecision.init(name:)) == .bfloat16)
        let report = try read(directory + "/report.md")
        #expect(report.contains("`gradkit lab --quick --only loss-scaling --matmul-precision bfloat16` — quick run, matrix products in bfloat16:"))
    }

    @Test("the numbers do not depend on how many trials run at once, and the same seed gives the same numbers")
    func threadsDoNotChangeNumbers() throws {
        let perceptron = try experiment("perceptron-vs-bp"), rnn = try experiment("exploding-rnn")
        for (experiment, plan) in [(perceptron, Plan(quick: true, seeds: [3, 4])), (rnn, Plan(quick: true, seeds: [5], epochLimit: 1))] {
            var one = Lab.run(experiment, plan, threads: 1), three = Lab.run(experiment, plan, threads: 3)
            let again = Lab.run(experiment, plan, threads: 3)
            one.seconds = 0
            three.seconds = 0
            #expect(prettyJSON(one.json) == prettyJSON(three.json), "\(experiment.name)")
            #expect(prettyJSON(JSON.object(three.metrics)) == prettyJSON(JSON.object(again.metrics)))
        }
    }

    @Test("the sigmoid network's first-to-last gradient ratio at initialization is what the report's theory predicts")
    func vanishingTheory() throws {
        let plan = Plan(quick: true, seeds: [0])
        let theory = Vanishing.theory(plan)
        #expect(Swift.abs(theory.defaultFactor - 0.25 / 3.0.squareRoot()) < 1e-12 && theory.xavierFactor == 0.25)
        let seed = RunSeed(value: 0), data = digitsSplit(seed: seed)
        let batch = data.fit.subset(Array(0..<32))
        for (initializer, predicted) in [(nil, theory.ratio(theory.defaultFactor)), (Initializer.xavierNormal(), theory.ratio(theory.xavierFactor))] {
            let model = withManualSeed(seed.initialization) {
                MLP(sizes: [64] + Array(repeating: 32, count: 19) + [10], activation: .sigmoid, initializer: initializer)
            }
            softmaxCrossEntropy(logits: model(batch.features), labels: batch.labels!).backward()
            let weights = model.parameters.filter { $0.shape.count == 2 }
            let norm = { (p: Parameter) in Double(p.gradient!.scalars.reduce(0) { $0 + $1 * $1 }).squareRoot() }
            let measured = norm(weights.first!) / norm(weights.last!)
            // Mean-field theory for one batch: within a factor of 5 over 15 decades.
            #expect(measured > predicted / 5 && measured < predicted * 5, "measured \(measured), predicted \(predicted)")
        }
    }

    @Test("the perceptron sees its examples in a new order every epoch: on XOR about half of them are mistakes")
    func perceptronShuffles() {
        let plan = Plan(quick: true, seeds: [0])
        for value in [UInt64(0), 1, 2] {
            let seed = RunSeed(value: value)
            let trial = PerceptronExperiment.perceptron(PerceptronExperiment.xor(seed), TrialContext(seed: seed, learningRate: 0, plan: plan))
            // In a fixed order the rule cycles through the same weights and errs on 189 of 200 points per epoch.
            let late = PerceptronExperiment.lateMistakes(trial)
            #expect(late > 70 && late < 130, "seed \(value): \(late)")
            #expect(trial.values[PerceptronExperiment.Key.converged] == 0)
        }
    }

    @Test("AdaGrad's effective rate is sampled from the first step on, about ten times a decade")
    func adagradSampling() {
        let steps = Optimizers.sampledSteps(upTo: 1000)
        #expect(Array(steps.prefix(10)) == Array(1...10))
        #expect(zip(steps, steps.dropFirst()).allSatisfy { $0 < $1 })
        let perDecade = steps.filter { $0 > 100 && $0 <= 1000 }.count
        #expect(perDecade >= 8 && perDecade <= 12, "\(steps)")
        // After one step the accumulator is g²: the rate is lr/|g| (median over the weights with a gradient).
        let p = Parameter(Tensor(shape: [3], scalars: [1, 1, 1]), name: "p")
        let adagrad = AdaGrad([p], learningRate: 0.1)
        p.gradient = Tensor(shape: [3], scalars: [2, -4, 0])
        adagrad.step()
        #expect(Swift.abs(Optimizers.medianEffectiveRate(adagrad) - (0.1 / 2 + 0.1 / 4) / 2) < 1e-9)
    }

    @Test("numbers that round up to a power of ten print as that power: 1e-4, not 10e-5")
    func scientificRounding() {
        #expect(shortScientific(Double(Float(1e-4))) == "1e-4" && shortScientific(9.96e-5) == "1e-4")
        #expect(shortScientific(-9.97e2) == "-1e3" && shortScientific(1.23e-4) == "1.2e-4" && shortScientific(3e5) == "3e5")
        #expect(rate(1e-4) == "1e-4" && rate(3e-4) == "3e-4" && rate(0.003) == "0.003")
    }

    @Test("fixed decimals keep their trailing zeros and need no exponent; grouped digits take commas every three")
    func fixedAndGrouped() {
        #expect(fixed(0.5, decimals: 2) == "0.50" && fixed(2.675, decimals: 0) == "3" && fixed(-1.25, decimals: 1) == "-1.3")
        #expect(fixed(97.214, decimals: 1) == "97.2" && fixed(.nan, decimals: 1) == "NaN" && fixed(-.infinity, decimals: 1) == "-∞")
        #expect(grouped(1151) == "1,151" && grouped(-1_234_567) == "-1,234,567" && grouped(999) == "999" && grouped(0) == "0")
        #expect(times(1234) == "1,234×" && times(12.3) == "12×" && times(2.34) == "2.3×")
    }

    @Test("the monitor's report of a diverged run does not trap on an infinite update or weight growth")
    func monitorReportOnDivergedRun() async {
        await #expect(processExitsWith: .success) {
            var evidence = LayerEvidence(
                index: 1, referenceIndex: 2, referenceNorm: 1, gradientNorm: 1, samples: 1, weightNorm: 1, weightsAreFinite: true,
                weightGrowth: .infinity, updateRatio: .infinity, sawNonFiniteGradient: false, activationName: nil, statistics: nil)
            let findings = VerdictRules.largeUpdates(evidence, GradientMonitor.Thresholds()) + VerdictRules.weightGrowth(evidence, GradientMonitor.Thresholds())
            evidence.updateRatio = 1e30
            let huge = VerdictRules.largeUpdates(evidence, GradientMonitor.Thresholds())
            guard findings.count == 2, huge.first?.evidence.contains("1.0e+30 times") == true else { exit(1) }
        }
    }

    @Test("a series' band is drawn behind it and widens the axis; pretty JSON parses back to the same value")
    func bandsAndJSON() throws {
        let plot = LinePlot(title: "t", xLabel: "x", yLabel: "y", series: [
            Series("s", points: [(1, 1), (2, 2)], band: [(1, 0.5, 3), (2, 1, 40)]),
        ], logY: true)
        let svg = plot.svg
        #expect(wellFormedXML(svg) && svg.contains("<polygon") && svg.contains("fill-opacity=\"0.15\""))
        #expect(svg.contains(">100</text>"), "the axis reaches the band's top, 40")
        let value = JSON.object(["b": .array([.number(1), .number(2.5)]), "a": .object(["x": .null, "y": .array([.object(["z": .bool(true)])])])])
        #expect(try JSON.parse(prettyJSON(value)) == value)
    }

    @Test("plots: nice ticks, log decades, breaks at NaN, a cross where a series diverged")
    func plots() {
        let linear = Scale(values: [0.3, 9.2], log: false, length: 100, padFraction: 0, nice: true)
        #expect(linear.low == 0 && linear.high == 10 && linear.ticks.map(\.value) == [0, 2, 4, 6, 8, 10])
        #expect(linear.ticks.map(\.label) == ["0", "2", "4", "6", "8", "10"])
        let log = Scale(values: [3e-7, 0.02], log: true, length: 100, padFraction: 0, nice: true)
        #expect(log.low == -7 && log.high == -1)
        #expect(log.ticks.filter(\.major).map(\.label) == ["1e-7", "1e-6", "1e-5", "1e-4", "0.001", "0.01", "0.1"])
        #expect(Scale.label(0.25, step: 0.05) == "0.25" && Scale.label(1500, step: 500) == "1500" && Scale.niceStep(0.7) == 1)
        let plot = LinePlot(title: "t <&>", xLabel: "x", yLabel: "y", series: [
            Series("a", values: [1, 2, .nan, 4, 5]), Series("b", values: [1, 10, 100, .infinity]),
        ], logY: true)
        let svg = plot.svg
        #expect(wellFormedXML(svg) && svg.contains("t &lt;&amp;&gt;"))
        #expect(svg.split(separator: "<polyline", omittingEmptySubsequences: false).count - 1 == 3)  // a: two pieces; b: one
        #expect(svg.contains("b (diverged)") && !svg.contains("a (diverged)"))
        let heat = HeatMap(title: "h", xLabel: "step", yLabel: "layer", rowLabels: ["1", "2"], values: [[1, 10, 100], [0, .nan, 1e-3]],
                           xRange: 1...3, colorLabel: "‖g‖").svg
        #expect(wellFormedXML(heat) && heat.contains("#bbbbbb"))  // the zero and NaN cells are grey
        #expect(Palette.viridis(0) == "rgb(68,1,84)" && Palette.viridis(1) == "rgb(253,231,37)")
    }

    @Test("the learning-rate range test finds a workable rate and restores the model and optimizer")
    func learningRateFinder() throws {
        // y = x·w with w = (2, -3): plain SGD on the mean squared error converges for lr up to about 1/λ_max.
        var generator = SeededGenerator(seed: 1)
        let x = Tensor(randomNormal: [256, 2], using: &generator)
        let y = withoutGradients { x.matmul(Tensor(shape: [2, 1], scalars: [2, -3])) }
        let data = try Dataset(features: x, targets: y)
        let model = withManualSeed(2) { Linear(inputSize: 2, outputSize: 1) }
        let optimizer = SGD(model.parameters, learningRate: 0.123, momentum: 0.9)
        let before = model.stateDictionary(), state = optimizer.exportState()
        let result = try LearningRateFinder(start: 1e-4, end: 100, steps: 80, seed: 3).run(model: model, optimizer: optimizer, loss: .meanSquaredError, data: data)
        #expect(result.stoppedEarly != nil, "the loss must blow up before lr = 100")
        let suggestion = try #require(result.suggestion)
        #expect(suggestion > 1e-3 && suggestion < 1, "\(suggestion)")
        #expect(result.learningRates.first == 1e-4 && result.learningRates.count == result.losses.count)
        // Restored: weights, optimizer state and learning rate.
        for (name, tensor) in model.stateDictionary() { expectIdentical(tensor.scalars, before[name]!.scalars, name) }
        #expect(optimizer.exportState() == state && optimizer.learningRate == 0.123)
        // And the suggested rate trains the same optimizer: 50 steps bring the loss down 100-fold.
        let plain = SGD(model.parameters, learningRate: suggestion, momentum: 0.9)
        let first = meanSquaredError(predicted: model(x), expected: y).scalar
        for _ in 0..<50 {
            plain.zeroGradients()
            meanSquaredError(predicted: model(x), expected: y).backward()
            plain.step()
        }
        #expect(meanSquaredError(predicted: model(x), expected: y).scalar < first / 100, "suggestion \(suggestion)")
    }
}
