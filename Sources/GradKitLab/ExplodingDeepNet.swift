// GradKitLab — exploding gradients in a badly scaled deep net and an Elman RNN, and what cures them. SPDX-License-Identifier: MIT
import GradKit

/// One configuration of the exploding-gradient experiment.
private struct ExplodingConfiguration {
    var name: String
    var clipping: GradientClipping? = nil
    var learningRate: Float
    var adam = false
}

extension Lab {
    static func explodingGradients(_ options: LabOptions) -> ExperimentResult {
        let deep = explodingDeepNet(options)
        let rnn = explodingRNN(options)
        let demonstrated = deep.demonstrated && rnn.demonstrated
        return ExperimentResult(
            name: "exploding-gradients", title: "Exploding gradients: a badly scaled deep net and an Elman RNN",
            verdict: deep.verdict + " " + rnn.verdict, demonstrated: demonstrated,
            blocks: deep.blocks + rnn.blocks,
            metrics: ["deep_net": .object(deep.metrics), "rnn": .object(rnn.metrics)])
    }

    /// Rows of the clipping table and the per-run numbers for results.json.
    private static func summarize(_ configurations: [ExplodingConfiguration], _ runs: [Run], accuracy: Bool)
        -> (rows: [[String]], metrics: [JSON])
    {
        var rows: [[String]] = [], metrics: [JSON] = []
        for (c, run) in zip(configurations, runs) {
            let steps = run.stepGradientNorm.count
            let clipped = run.clippedSteps
            let outcome = run.stoppedAtStep.map { "non-finite at step \($0 + 1)" } ?? (run.diverged ? "diverged" : "trains")
            let finalLoss = run.epochLoss.last ?? .nan
            var row = [c.name, outcome, sci(run.stepGradientNorm.filter(\.isFinite).max() ?? .nan), sci(finalLoss)]
            row.append(accuracy ? percent(run.finalAccuracy) : sci(run.finalTestLoss))
            if c.clipping != nil {
                let share = Double(clipped) / Double(Swift.max(steps, 1))
                var how = "\(percent(share)) of steps"
                if case .norm(let maxNorm)? = c.clipping {
                    let over = run.stepGradientNorm.filter { $0.isFinite && $0 > Double(maxNorm) }.map { $0 / Double(maxNorm) }.sorted()
                    if !over.isEmpty { how += ", by \(times(over[over.count / 2])) (median), up to \(times(over.last!))" }
                }
                row.append(how)
            } else {
                row.append("—")
            }
            rows.append(row)
            metrics.append(.object([
                "configuration": .string(c.name), "outcome": .string(outcome), "steps": .number(Double(steps)),
                "clipped_steps": .number(Double(clipped)), "final_train_loss": .number(finalLoss),
                "final_test_accuracy": .number(run.finalAccuracy), "final_test_loss": .number(run.finalTestLoss),
                "largest_gradient_norm": .number(run.stepGradientNorm.filter(\.isFinite).max() ?? .nan),
                "stopped_at_step": run.stoppedAtStep.map { .number(Double($0)) } ?? .null,
            ]))
        }
        return (rows, metrics)
    }

    /// A 12-layer ReLU MLP on the digits whose weights start 1.3x too large
    /// (Xavier with gain 1.3·√2 where He's gain √2 keeps activations level)
    /// and plain SGD at learning rate 0.05: the gradients grow about 1.3x per
    /// layer toward the input, and the first steps blow the weights up.
    private static func explodingDeepNet(_ options: LabOptions) -> (verdict: String, demonstrated: Bool, blocks: [ReportBlock], metrics: [String: JSON]) {
        let depth = 12, width = 64
        let epochs = options.quick ? 5 : 10
        let (trainSet, testSet) = digitsSplit(seed: options.seed)
        let configurations: [ExplodingConfiguration] = [
            .init(name: "no remedy", learningRate: 0.05),
            .init(name: "global-norm clipping (5)", clipping: .norm(5), learningRate: 0.05),
            .init(name: "value clipping (0.1)", clipping: .value(0.1), learningRate: 0.05),
            .init(name: "AGC (0.05)", clipping: .adaptive(clipFactor: 0.05), learningRate: 0.05),
            .init(name: "learning rate / 100", learningRate: 0.0005),
            .init(name: "Adam (1e-3)", learningRate: 1e-3, adam: true),
        ]
        var runs: [Run] = []
        for c in configurations {
            let model = withManualSeed(options.seed) {
                MLP(sizes: [64] + Array(repeating: width, count: depth - 1) + [10], activation: .relu,
                    initializer: .xavierNormal(gain: 1.3 * Float(2).squareRoot()))
            }
            let optimizer: Optimizer = c.adam
                ? Adam(model.parameters, learningRate: c.learningRate)
                : SGD(model.parameters, learningRate: c.learningRate)
            runs.append(train(c.name, model: model, optimizer: optimizer, train: trainSet, test: testSet, epochs: epochs, clipping: c.clipping, seed: options.seed))
        }
        let (rows, metrics) = summarize(configurations, runs, accuracy: true)
        let baseline = runs[0]
        let cured = zip(configurations, runs).dropFirst().filter { !$0.1.diverged && $0.1.finalAccuracy > 0.5 }.map(\.0.name)
        let failed = zip(configurations, runs).dropFirst().filter { $0.1.diverged || !($0.1.finalAccuracy > 0.5) }.map(\.0.name)
        let clippedRun = runs[1]
        let demonstrated = baseline.diverged && !clippedRun.diverged && clippedRun.finalAccuracy > 0.5
        var verdict = "The badly scaled \(depth)-layer ReLU net "
        verdict += baseline.stoppedAtStep.map { "produces a non-finite gradient at step \($0 + 1) without a remedy" } ?? (baseline.diverged ? "diverges without a remedy" : "does not diverge without a remedy (not shown)")
        verdict += "; with global-norm clipping it trains to \(percent(clippedRun.finalAccuracy)) test accuracy. "
        verdict += "Trains: " + (cured.isEmpty ? "none" : cured.joined(separator: ", ")) + "; fails: " + (failed.isEmpty ? "none" : failed.joined(separator: ", ")) + "."
        let lossPlot = LinePlot(
            title: "Training loss per step (20-step moving average), badly scaled deep net", xLabel: "step", yLabel: "loss",
            series: runs.map { stepSeries($0.name, smoothed($0.stepLoss + ($0.stoppedAtStep != nil ? [.nan] : []), window: 20)) }, logY: true)
        let normPlot = LinePlot(
            title: "Gradient norm before clipping (20-step geometric mean), deep net", xLabel: "step", yLabel: "‖g‖ (global)",
            series: runs.map { stepSeries($0.name, smoothedLog($0.stepGradientNorm, window: 20)) }, logY: true, reference: (5, "norm clipping limit"))
        let blocks: [ReportBlock] = [
            .text("""
                **Deep net.** A \(depth)-layer ReLU MLP (\(depth - 1) hidden layers of \(width)) on the digits, weights drawn \
                1.3x too large (Xavier normal with gain 1.3·√2; He's √2 would keep the signal level, and 1.3^11 ≈ 18), \
                plain SGD with learning rate 0.05 unless stated, batch 32, \(epochs) epochs. The monitor stops a run at the first NaN or infinity \
                in a gradient. Clipping statistics: the share of steps where clipping changed the gradients and, for \
                global-norm clipping, by what factor the norm exceeded the limit.
                """),
            .table(header: ["configuration", "outcome", "largest ‖g‖", "final train loss", "test accuracy", "clipped"], rows: rows),
            .figure(Figure(fileName: "exploding-deep-loss.svg", caption: "Training loss; a cross marks where a run hit NaN or infinity.", svg: lossPlot.svg)),
            .figure(Figure(fileName: "exploding-deep-gradient-norm.svg", caption: "Global gradient norm before clipping (geometric mean over 20 steps).", svg: normPlot.svg)),
        ]
        return (verdict, demonstrated, blocks, ["configurations": .array(metrics), "depth": .number(Double(depth)), "epochs": .number(Double(epochs))])
    }

    /// An Elman RNN with ReLU and recurrent weights a little too large
    /// (orthogonal, gain 1.2) on the adding problem over 30 steps:
    /// back-propagation through time multiplies the gradient by W_hhᵀ once per
    /// step, 1.2^30 ≈ 240.
    private static func explodingRNN(_ options: LabOptions) -> (verdict: String, demonstrated: Bool, blocks: [ReportBlock], metrics: [String: JSON]) {
        let length = 30, hidden = 32
        let epochs = 20  // cheap enough for --quick too, and fewer do not learn the task
        let trainSet = Dataset.addingProblem(count: 2000, length: length, seed: options.seed)
        let testSet = Dataset.addingProblem(count: 500, length: length, seed: options.seed &+ 1)
        let configurations: [ExplodingConfiguration] = [
            .init(name: "no remedy", learningRate: 0.01),
            .init(name: "global-norm clipping (1)", clipping: .norm(1), learningRate: 0.01),
            .init(name: "value clipping (0.01)", clipping: .value(0.01), learningRate: 0.01),
            .init(name: "AGC (0.01)", clipping: .adaptive(clipFactor: 0.01), learningRate: 0.01),
            .init(name: "learning rate / 100", learningRate: 0.0001),
            .init(name: "Adam (1e-3)", learningRate: 1e-3, adam: true),
        ]
        var runs: [Run] = []
        for c in configurations {
            let model = withManualSeed(options.seed) {
                let rnn = RNN(inputSize: 2, hiddenSize: hidden, nonlinearity: .relu, recurrentInitializer: .orthogonal(gain: 1.2))
                rnn.returnsSequences = false
                return Sequential([rnn, Linear(inputSize: hidden, outputSize: 1)])
            }
            let optimizer: Optimizer = c.adam
                ? Adam(model.parameters, learningRate: c.learningRate)
                : SGD(model.parameters, learningRate: c.learningRate, momentum: 0.9)
            runs.append(train(
                c.name, model: model, optimizer: optimizer, loss: .meanSquaredError, train: trainSet, test: testSet, epochs: epochs,
                clipping: c.clipping, seed: options.seed))
        }
        let (rows, metrics) = summarize(configurations, runs, accuracy: false)
        // Predicting 1 (the mean target) gives a mean squared error of 1/6: the bar to beat.
        let bar = 1.0 / 6
        let baseline = runs[0], clippedRun = runs[1]
        let learned = zip(configurations, runs).dropFirst().filter { !$0.1.diverged && $0.1.finalTestLoss < bar / 2 }.map(\.0.name)
        let demonstrated = baseline.diverged && !clippedRun.diverged && clippedRun.finalTestLoss < bar / 2
        var verdict = "The Elman RNN over \(length) steps "
        verdict += baseline.stoppedAtStep.map { "hits a non-finite gradient at step \($0 + 1) without a remedy" } ?? (baseline.diverged ? "diverges without a remedy" : "does not diverge without a remedy (not shown)")
        verdict += "; with global-norm clipping its test error is \(sci(clippedRun.finalTestLoss)) (predicting the mean gives \(sci(bar))). "
        verdict += "Below half of that: " + (learned.isEmpty ? "none" : learned.joined(separator: ", ")) + "."
        let lossPlot = LinePlot(
            title: "Test mean squared error after each epoch, RNN on the adding problem", xLabel: "epoch", yLabel: "test MSE",
            series: runs.map { Series($0.name, values: $0.testLoss) }, logY: true, reference: (bar, "predict the mean"))
        let normPlot = LinePlot(
            title: "Gradient norm before clipping (20-step geometric mean), RNN", xLabel: "step", yLabel: "‖g‖ (global)",
            series: runs.map { stepSeries($0.name, smoothedLog($0.stepGradientNorm, window: 20)) }, logY: true, reference: (1, "norm clipping limit"))
        let blocks: [ReportBlock] = [
            .text("""
                **Elman RNN.** The adding problem (Hochreiter and Schmidhuber, 1997): sequences of \(length) steps, the target \
                is the sum of the two marked values; \(trainSet.count) training and \(testSet.count) test sequences. A ReLU \
                RNN with \(hidden) units and orthogonal recurrent weights of gain 1.2, then a linear read-out of the last \
                state; SGD with momentum 0.9 and learning rate 0.01 unless stated, batch 32, \(epochs) epochs. \
                Predicting the mean (1) scores a mean squared error of 1/6.
                """),
            .table(header: ["configuration", "outcome", "largest ‖g‖", "final train loss", "test MSE", "clipped"], rows: rows),
            .figure(Figure(fileName: "exploding-rnn-test-error.svg", caption: "Test error per epoch; the dashed line is the error of predicting the mean.", svg: lossPlot.svg)),
            .figure(Figure(fileName: "exploding-rnn-gradient-norm.svg", caption: "Global gradient norm before clipping (geometric mean over 20 steps).", svg: normPlot.svg)),
        ]
        return (verdict, demonstrated, blocks, ["configurations": .array(metrics), "sequence_length": .number(Double(length)), "epochs": .number(Double(epochs))])
    }
}

