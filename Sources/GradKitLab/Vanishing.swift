// GradKitLab — vanishing gradients in a deep sigmoid MLP, and what cures them. SPDX-License-Identifier: MIT
import GradKit

/// One configuration of the vanishing-gradient experiment.
private struct DeepConfiguration {
    var name: String
    var activation: Activation = .sigmoid
    var initializer: Initializer? = nil
    var batchNorm = false
    var residual = false
    var dropout: Float = 0
    var learningRate: Float = 0.01
    var weightDecay: Float = 0
    /// The baseline, a cure from the textbooks, or a remedy that is often suggested.
    var role: Role

    enum Role { case baseline, cure, suggestion }
}

extension Lab {
    /// A 20-layer MLP (19 hidden layers of 32 units) on the digits, trained
    /// with SGD and momentum: sigmoid and tanh with PyTorch's default
    /// initialization, against ReLU with He initialization, tanh with Xavier
    /// initialization, BatchNorm, residual connections, and three remedies that
    /// are often suggested (a 10x learning rate, dropout, weight decay).
    static func vanishingGradients(_ options: LabOptions) -> ExperimentResult {
        let depth = 20, width = 32
        let epochs = options.quick ? 4 : 20
        let (trainSet, testSet) = digitsSplit(seed: options.seed)
        let configurations: [DeepConfiguration] = [
            .init(name: "sigmoid", role: .baseline),
            .init(name: "tanh", activation: .tanh, role: .baseline),
            .init(name: "ReLU + He init", activation: .relu, initializer: .heNormal(), role: .cure),
            .init(name: "tanh + Xavier init", activation: .tanh, initializer: .xavierNormal(gain: 5.0 / 3), role: .cure),
            .init(name: "sigmoid + BatchNorm", batchNorm: true, role: .cure),
            .init(name: "sigmoid + residual", residual: true, role: .cure),
            .init(name: "sigmoid with 10x learning rate", learningRate: 0.1, role: .suggestion),
            .init(name: "sigmoid + dropout 0.1", dropout: 0.1, role: .suggestion),
            .init(name: "sigmoid + weight decay 1e-3", weightDecay: 1e-3, role: .suggestion),
        ]
        var runs: [Run] = []
        for c in configurations {
            let model = withManualSeed(options.seed) {
                MLP(sizes: [64] + Array(repeating: width, count: depth - 1) + [10], activation: c.activation, initializer: c.initializer,
                    batchNorm: c.batchNorm, dropout: c.dropout, residual: c.residual)
            }
            let optimizer = SGD(model.parameters, learningRate: c.learningRate, momentum: 0.9, weightDecay: c.weightDecay)
            runs.append(train(c.name, model: model, optimizer: optimizer, train: trainSet, test: testSet, epochs: epochs, seed: options.seed))
        }
        let baseline = runs[0]
        let baselineFirst = baseline.meanNorm(layer: 0)
        let baselineFlagged = baseline.report?.layers.first?.verdict == .vanishing

        // The table: per configuration, first- and last-layer gradient norms, their ratio, accuracy.
        var rows: [[String]] = []
        var helps: [String] = [], doesNot: [String] = []
        var gains: [String: Double] = [:]
        var metrics: [JSON] = []
        for (c, run) in zip(configurations, runs) {
            let first = run.meanNorm(layer: 0), last = run.meanNorm(layer: depth - 1)
            let gain = first / baselineFirst
            let accuracyGain = run.finalAccuracy - baseline.finalAccuracy
            // A remedy helps when the first layer gets at least 10x more gradient and the net learns
            // (test accuracy at least 20 points above the baseline's).
            let verdict: String
            if c.role == .baseline {
                verdict = run.report?.layers.first?.verdict.rawValue ?? "—"
            } else if gain >= 10 && accuracyGain >= 0.2 {
                verdict = "helps"
                helps.append(c.name)
            } else if accuracyGain >= 0.2 {
                verdict = "helps (accuracy only)"
                helps.append(c.name)
            } else {
                verdict = "does not help"
                doesNot.append(c.name)
            }
            gains[c.name] = gain
            rows.append([
                c.name, sci(first), sci(last), sci(first / last), c.role == .baseline ? "—" : times(gain),
                percent(run.finalAccuracy), verdict,
            ])
            metrics.append(.object([
                "configuration": .string(c.name), "first_layer_gradient_norm": .number(first), "last_layer_gradient_norm": .number(last),
                "first_to_last_ratio": .number(first / last), "first_layer_gain_over_baseline": .number(gain),
                "test_accuracy": .number(run.finalAccuracy), "verdict": .string(verdict),
                "monitor_verdict_layer_1": .string(run.report?.layers.first?.verdict.rawValue ?? ""),
            ]))
        }
        let bestGain = runs.dropFirst(2).map { $0.meanNorm(layer: 0) / baselineFirst }.max() ?? 0
        let demonstrated = baselineFlagged && bestGain >= 100

        let ratio = baseline.meanNorm(layer: 0) / baseline.meanNorm(layer: depth - 1)
        let best = zip(configurations, runs).filter { $0.0.role == .cure }.max { $0.1.finalAccuracy < $1.1.finalAccuracy }!
        var verdict = "The \(depth)-layer sigmoid MLP's first layer gets \(times(1 / ratio)) less gradient than its last "
            + "(the monitor says \(baseline.report?.layers.first?.verdict.rawValue ?? "?")) and it ends at \(percent(baseline.finalAccuracy)) test accuracy. "
        verdict += "Helps: " + (helps.isEmpty ? "nothing tried" : helps.joined(separator: ", ")) + "; "
        verdict += "does not help: " + (doesNot.isEmpty ? "nothing" : doesNot.joined(separator: ", ")) + ". "
        verdict += "Best: \(best.0.name), first-layer gradient \(times(gains[best.0.name] ?? .nan)), \(percent(best.1.finalAccuracy))."

        // Figures.
        let depthPlot = LinePlot(
            title: "Gradient norm by depth (geometric mean over training)", xLabel: "layer (1 = input side)",
            yLabel: "‖∂loss/∂W‖", series: runs.map { run in
                Series(run.name, points: (0..<depth).map { (Double($0 + 1), run.meanNorm(layer: $0)) },
                       dashed: configurations.first { $0.name == run.name }?.role == .suggestion)
            }, logY: true)
        let accuracyPlot = LinePlot(
            title: "Test accuracy after each epoch", xLabel: "epoch", yLabel: "test accuracy",
            series: runs.map { Series($0.name, values: $0.testAccuracy) }, reference: (0.1, "chance"))
        let ratioPlot = LinePlot(
            title: "First-layer / last-layer gradient norm during training", xLabel: "step", yLabel: "ratio",
            series: runs.filter { r in configurations.first { $0.name == r.name }?.role != .suggestion }.map { run in
                stepSeries(run.name, smoothed(zip(run.layerNorms[0], run.layerNorms[depth - 1]).map { $0 / $1 }, window: 10))
            }, logY: true, reference: (1, "equal"))
        func heat(_ run: Run, _ file: String) -> Figure {
            Figure(
                fileName: file, caption: "Gradient norm of each layer at each step: \(run.name)",
                svg: HeatMap(
                    title: "‖∂loss/∂W‖ per layer and step — \(run.name)", xLabel: "step", yLabel: "layer",
                    rowLabels: (1...depth).map { "\($0)" }, values: run.layerNorms,
                    xRange: 1...Double(Swift.max(run.layerNorms.first?.count ?? 1, 2)), colorLabel: "‖g‖").svg)
        }
        return ExperimentResult(
            name: "vanishing-gradients", title: "Vanishing gradients in a deep sigmoid network", verdict: verdict,
            demonstrated: demonstrated,
            blocks: [
                .text("""
                    A \(depth)-layer MLP (64 inputs, \(depth - 1) hidden layers of \(width) units, 10 outputs) on the digits \
                    (\(trainSet.count) training and \(testSet.count) test images, standardized), SGD with momentum 0.9, \
                    learning rate 0.01 unless stated, batch 32, \(epochs) epochs, seed \(options.seed). Each sigmoid multiplies \
                    the gradient flowing back by at most 1/4, so the layers near the input learn slowest; the remedies either \
                    keep the gain per layer near 1 (ReLU with He initialization, tanh with Xavier initialization, BatchNorm) \
                    or give the gradient a path around the layers (residual connections). "Helps" means the first layer gets \
                    at least 10x the baseline's gradient and test accuracy rises by at least 20 points.
                    """),
                .table(header: ["configuration", "‖g‖ layer 1", "‖g‖ layer \(depth)", "ratio 1/\(depth)", "layer-1 gain", "test accuracy", "verdict"], rows: rows),
                .figure(Figure(fileName: "vanishing-depth.svg", caption: "Gradient norm by layer: the sigmoid and tanh networks' norms fall by decades toward the input; the cures keep them level.", svg: depthPlot.svg)),
                .figure(heat(baseline, "vanishing-heatmap-sigmoid.svg")),
                .figure(heat(runs[2], "vanishing-heatmap-relu.svg")),
                .figure(Figure(fileName: "vanishing-ratio.svg", caption: "Ratio of the first layer's gradient norm to the last's over training (10-step moving average).", svg: ratioPlot.svg)),
                .figure(Figure(fileName: "vanishing-accuracy.svg", caption: "Test accuracy per epoch.", svg: accuracyPlot.svg)),
            ],
            metrics: ["configurations": .array(metrics), "depth": .number(Double(depth)), "epochs": .number(Double(epochs)),
                      "baseline_flagged_vanishing": .bool(baselineFlagged), "best_first_layer_gain": .number(bestGain)])
    }
}
