// GradKitLab — six optimizers on the digits, and AdaGrad's decaying step. SPDX-License-Identifier: MIT
import GradKit

extension Lab {
    /// The digits MLP (64-128-10, ReLU) trained by SGD, SGD with momentum,
    /// AdaGrad, RMSprop, Adam and AdamW with their customary learning rates.
    static func optimizers(_ options: LabOptions) -> ExperimentResult {
        let epochs = options.quick ? 8 : 20
        let (trainSet, testSet) = digitsSplit(seed: options.seed)
        let choices: [(name: String, make: ([Parameter]) -> Optimizer)] = [
            ("SGD (0.05)", { SGD($0, learningRate: 0.05) }),
            ("SGD + momentum 0.9 (0.01)", { SGD($0, learningRate: 0.01, momentum: 0.9) }),
            ("AdaGrad (0.01)", { AdaGrad($0, learningRate: 0.01) }),
            ("RMSprop (1e-3)", { RMSprop($0, learningRate: 1e-3) }),
            ("Adam (1e-3)", { Adam($0, learningRate: 1e-3) }),
            ("AdamW (1e-3, decay 0.01)", { AdamW($0, learningRate: 1e-3, weightDecay: 0.01) }),
        ]
        var runs: [Run] = []
        // AdaGrad's effective learning rate lr / (√sum + ε), its median over the weights, every 5 steps.
        var effective: [(x: Double, y: Double)] = []
        for choice in choices {
            let model = withManualSeed(options.seed) { MLP(sizes: [64, 128, 10]) }
            let optimizer = choice.make(model.parameters)
            let isAdaGrad = optimizer is AdaGrad
            runs.append(train(choice.name, model: model, optimizer: optimizer, train: trainSet, test: testSet, epochs: epochs, seed: options.seed) { trainer, record in
                guard isAdaGrad, record.step % 5 == 0 else { return }
                // The median over the weights that have had a gradient (pixels that are constant in the
                // data give their weights no gradient, an accumulator of 0 and an "infinite" rate).
                var rates: [Double] = []
                for entry in trainer.optimizer.exportState().parameters {
                    guard let sums = entry.buffers["sum"] else { continue }
                    for s in sums.scalars where s > 0 { rates.append(Double(optimizer.learningRate) / (Double(s).squareRoot() + 1e-10)) }
                }
                if !rates.isEmpty {
                    rates.sort()
                    effective.append((Double(record.step + 1), rates[rates.count / 2]))
                }
            })
        }
        var rows: [[String]] = [], metrics: [JSON] = []
        for run in runs {
            let toNinety = run.testAccuracy.firstIndex { $0 >= 0.9 }.map { "\($0 + 1)" } ?? "—"
            rows.append([run.name, sci(run.epochLoss.last ?? .nan), percent(run.finalAccuracy), percent(run.testAccuracy.max() ?? .nan), toNinety])
            metrics.append(.object([
                "optimizer": .string(run.name), "final_train_loss": .number(run.epochLoss.last ?? .nan),
                "final_test_accuracy": .number(run.finalAccuracy), "epochs_to_90_percent": run.testAccuracy.firstIndex { $0 >= 0.9 }.map { .number(Double($0 + 1)) } ?? .null,
            ]))
        }
        let best = runs.max { $0.finalAccuracy < $1.finalAccuracy }!
        let worst = runs.min { $0.finalAccuracy < $1.finalAccuracy }!
        let first = effective.first?.y ?? .nan, last = effective.last?.y ?? .nan
        // AdaGrad's effective rate over each weight starts near lr/|g| and only falls, as its sums only grow.
        let decay = first / last
        let demonstrated = runs.allSatisfy { $0.finalAccuracy >= 0.9 } && decay >= 3
        let verdict = "All six reach \(percent(worst.finalAccuracy))–\(percent(best.finalAccuracy)) test accuracy in \(epochs) epochs "
            + "(best: \(best.name)); AdaGrad's median effective learning rate falls \(times(decay)) from step 5 to the end, "
            + "because its sum of squared gradients only grows."
        let lossPlot = LinePlot(
            title: "Training loss per step (20-step moving average)", xLabel: "step", yLabel: "loss",
            series: runs.map { stepSeries($0.name, smoothed($0.stepLoss, window: 20)) }, logY: true)
        let accuracyPlot = LinePlot(
            title: "Test accuracy after each epoch", xLabel: "epoch", yLabel: "test accuracy",
            series: runs.map { Series($0.name, values: $0.testAccuracy) })
        let adagradPlot = LinePlot(
            title: "AdaGrad: median effective learning rate lr / (√Σg² + ε)", xLabel: "step", yLabel: "effective learning rate",
            series: [Series("AdaGrad, median over weights", points: effective)], logY: true, logX: true, reference: (0.01, "nominal lr 0.01"))
        return ExperimentResult(
            name: "optimizers", title: "Optimizers on the digits", verdict: verdict, demonstrated: demonstrated,
            blocks: [
                .text("""
                    The digits MLP (64-128-10, ReLU, PyTorch's default initialization, the same initial weights for every \
                    optimizer), batch 32, \(epochs) epochs, each optimizer at its customary learning rate (in parentheses) \
                    with PyTorch's other defaults.
                    """),
                .table(header: ["optimizer", "final train loss", "final test accuracy", "best test accuracy", "epochs to 90%"], rows: rows),
                .figure(Figure(fileName: "optimizers-loss.svg", caption: "Training loss of each optimizer.", svg: lossPlot.svg)),
                .figure(Figure(fileName: "optimizers-accuracy.svg", caption: "Test accuracy after each epoch.", svg: accuracyPlot.svg)),
                .figure(Figure(fileName: "optimizers-adagrad-rate.svg", caption: "AdaGrad's effective step size decays as it accumulates squared gradients (log–log).", svg: adagradPlot.svg)),
            ],
            metrics: ["optimizers": .array(metrics), "epochs": .number(Double(epochs)), "adagrad_effective_rate_decay": .number(decay)])
    }
}
