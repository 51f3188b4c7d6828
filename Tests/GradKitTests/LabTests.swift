// gradkit lab: the experiments' verdicts against their numbers, the report files, the SVG writer,
// and the learning-rate range test.
import Testing

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

@Suite("Lab")
struct LabTests {
    @Test("the quick lab shows every pathology and cure, and its report files are complete")
    func quickLab() throws {
        let results = Lab.run(LabOptions(quick: true, seed: 0))
        #expect(results.map(\.name) == Lab.experimentNames)
        for r in results { #expect(r.demonstrated, "\(r.name): \(r.verdict)") }

        // Vanishing: the sigmoid baseline's first layer is flagged and gets far less gradient than its last;
        // some cure raises the first-layer gradient norm at least 100-fold.
        let vanishing = results[0].metrics["configurations"]!.arrayValue!.map { $0.objectValue! }
        #expect(vanishing[0]["monitor_verdict_layer_1"]?.stringValue == "vanishing")
        #expect(vanishing[0]["first_to_last_ratio"]!.numberValue! < 1e-3)
        #expect(vanishing.dropFirst(2).contains { $0["first_layer_gain_over_baseline"]!.numberValue! >= 100 })
        // Exploding: without a remedy a non-finite gradient stops the deep net; with norm clipping it trains.
        let deep = results[1].metrics["deep_net"]!.objectValue!["configurations"]!.arrayValue!.map { $0.objectValue! }
        #expect(deep[0]["stopped_at_step"]?.numberValue != nil)
        #expect(deep[1]["stopped_at_step"] == .null && deep[1]["final_test_accuracy"]!.numberValue! > 0.5)
        let rnn = results[1].metrics["rnn"]!.objectValue!["configurations"]!.arrayValue!.map { $0.objectValue! }
        #expect(rnn[0]["stopped_at_step"]?.numberValue != nil && rnn[1]["final_test_loss"]!.numberValue! < 1.0 / 12)
        // Optimizers: AdaGrad's effective rate decays.
        #expect(results[2].metrics["adagrad_effective_rate_decay"]!.numberValue! >= 3)
        // Perceptron: converges on separable data within Novikoff's bound, not on XOR; the MLP solves XOR.
        let p = results[3].metrics
        #expect(p["separable_converged"] == .bool(true) && p["separable_mistakes"]!.numberValue! <= p["novikoff_bound"]!.numberValue!)
        #expect(p["xor_perceptron_accuracy"]!.numberValue! < 1 && p["xor_mlp_accuracy"]!.numberValue! == 1)

        let directory = try temporaryDirectory() + "/lab"
        try Lab.writeReport(results, options: LabOptions(quick: true), command: "gradkit lab --quick", totalSeconds: 1, to: directory)
        let report = String(decoding: try FileIO.readAll(directory + "/report.md").get(), as: UTF8.self)
        for r in results { #expect(report.contains("**Verdict:** \(r.verdict)")) }
        let json = try JSON.parse(String(decoding: try FileIO.readAll(directory + "/results.json").get(), as: UTF8.self))
        let experiments = json.objectValue!["experiments"]!.arrayValue!
        #expect(experiments.map { $0.objectValue!["name"]!.stringValue! } == Lab.experimentNames)
        #expect(experiments.allSatisfy { !($0.objectValue!["verdict"]!.stringValue!.isEmpty) })
        let figures = results.flatMap(\.figures)
        #expect(figures.count >= 3)
        for figure in figures {
            let svg = String(decoding: try FileIO.readAll(directory + "/figures/" + figure.fileName).get(), as: UTF8.self)
            #expect(svg.hasPrefix("<svg xmlns=\"http://www.w3.org/2000/svg\"") && wellFormedXML(svg), "\(figure.fileName)")
            #expect(report.contains("](figures/\(figure.fileName))"))
        }
    }

    @Test("the same seed gives the same numbers")
    func deterministic() {
        let options = LabOptions(quick: true, seed: 3, only: "perceptron")
        #expect(Lab.run(options)[0].metrics == Lab.run(options)[0].metrics)
        let optimizers = LabOptions(quick: true, seed: 3, only: "optimizers")
        #expect(JSON.object(Lab.run(optimizers)[0].metrics).text == JSON.object(Lab.run(optimizers)[0].metrics).text)
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
