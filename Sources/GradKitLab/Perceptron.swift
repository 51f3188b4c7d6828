// GradKitLab — Rosenblatt's perceptron against a back-propagation network. SPDX-License-Identifier: MIT
import GradKit

extension Lab {
    /// The perceptron rule on a linearly separable set (it converges, within
    /// Novikoff's bound) and on XOR (it cannot), against an MLP with one hidden
    /// layer trained by back-propagation, which learns both.
    static func perceptronVersusBackPropagation(_ options: LabOptions) -> ExperimentResult {
        let epochs = options.quick ? 50 : 100
        // Separable: two Gaussian clouds, keeping only points on their own side of x + y = 0, at least 0.2 from it.
        var generator = SeededGenerator(seed: options.seed &+ 17)
        var points: [Float] = [], labels: [Int] = []
        while labels.count < 200 {
            let label = labels.count % 2
            let center: Float = label == 1 ? 0.7 : -0.7
            let noise = Tensor(randomNormal: [2], standardDeviation: 1, using: &generator).scalars
            let x = center + noise[0], y = center + noise[1]
            // On its own side of the line, at least 0.2 away.
            guard (label == 1 ? 1 : -1) * (x + y) / Float(2).squareRoot() >= 0.2 else { continue }
            points += [x, y]
            labels.append(label)
        }
        let separable = try! Dataset(features: Tensor(shape: [200, 2], scalars: points), labels: labels)
        let xor = Dataset.xor(copies: 50, noise: 0.1, seed: options.seed)
        // Novikoff: at most (R/γ)² mistakes, R = max ‖(x, 1)‖, γ >= 0.2 for the unit vector (1, 1, 0)/√2.
        var radius: Float = 0
        for i in 0..<200 { radius = Swift.max(radius, (points[2 * i] * points[2 * i] + points[2 * i + 1] * points[2 * i + 1] + 1).squareRoot()) }
        let bound = Int(((radius / 0.2) * (radius / 0.2)).rounded(.up))

        func perceptron(_ data: Dataset) -> (training: Perceptron.Training, accuracy: Double) {
            let unit = Perceptron(inputSize: 2)
            let training = unit.learn(features: data.features, labels: data.labels!, maximumEpochs: epochs)
            let predictions = unit(data.features).scalars
            let correct = zip(predictions, data.labels!).filter { Int($0) == $1 }.count
            return (training, Double(correct) / Double(data.count))
        }
        func network(_ data: Dataset) -> Run {
            let model = withManualSeed(options.seed) { MLP(sizes: [2, 8, 2], activation: .tanh) }
            return train("MLP 2-8-2 (tanh, Adam)", model: model, optimizer: Adam(model.parameters, learningRate: 0.05), train: data, test: data,
                         epochs: epochs, batchSize: 20, seed: options.seed)
        }
        let onSeparable = perceptron(separable), onXOR = perceptron(xor)
        let mlpSeparable = network(separable), mlpXOR = network(xor)
        let demonstrated = onSeparable.training.converged && onSeparable.training.totalMistakes <= bound
            && !onXOR.training.converged && mlpXOR.finalAccuracy == 1
        let convergedAt = onSeparable.training.mistakesPerEpoch.count
        let verdict = "The perceptron " + (onSeparable.training.converged
            ? "separates the separable set after \(onSeparable.training.totalMistakes) mistakes in \(convergedAt) epochs (Novikoff's bound: \(bound))"
            : "does not converge on the separable set (not shown)")
            + " but still makes \(onXOR.training.mistakesPerEpoch.last ?? 0) mistakes in its \(epochs)th epoch on XOR (\(percent(onXOR.accuracy)) accuracy); "
            + "the back-propagation network with one hidden layer reaches \(percent(mlpXOR.finalAccuracy)) on XOR."
        let mistakesPlot = LinePlot(
            title: "Perceptron rule: mistakes per epoch", xLabel: "epoch", yLabel: "mistakes",
            series: [
                Series("separable set", values: onSeparable.training.mistakesPerEpoch.map(Double.init)),
                Series("XOR (noisy, 200 points)", values: onXOR.training.mistakesPerEpoch.map(Double.init)),
            ])
        let accuracyPlot = LinePlot(
            title: "Accuracy on XOR after each epoch", xLabel: "epoch", yLabel: "accuracy",
            series: [
                Series("MLP 2-8-2 (back-propagation)", values: mlpXOR.testAccuracy),
                Series("perceptron (final)", points: [(1, onXOR.accuracy), (Double(epochs), onXOR.accuracy)], dashed: true),
            ], reference: (0.5, "chance"))
        let rows = [
            ["linearly separable (200 points)", onSeparable.training.converged ? "yes, epoch \(convergedAt)" : "no", "\(onSeparable.training.totalMistakes) (bound \(bound))", percent(onSeparable.accuracy), percent(mlpSeparable.finalAccuracy)],
            ["XOR (200 noisy points)", onXOR.training.converged ? "yes" : "no, \(epochs) epochs", "\(onXOR.training.totalMistakes)", percent(onXOR.accuracy), percent(mlpXOR.finalAccuracy)],
        ]
        return ExperimentResult(
            name: "perceptron-vs-bp", title: "Perceptron vs a back-propagation network", verdict: verdict, demonstrated: demonstrated,
            blocks: [
                .text("""
                    Rosenblatt's perceptron rule (w += t·x on each mistake) against an MLP with one hidden layer of 8 tanh \
                    units trained by back-propagation (Adam, learning rate 0.05, batch 20, \(epochs) epochs). The separable set \
                    is two Gaussian clouds (centers ±(0.7, 0.7), unit variance) with each point kept on its own side of the line \
                    x + y = 0 and at least 0.2 from it, so Novikoff's theorem bounds the \
                    perceptron's mistakes by (R/γ)² = \(bound). XOR is the four corners of the unit square, 50 noisy copies each: \
                    no line separates it (Minsky and Papert, 1969).
                    """),
                .table(header: ["data", "perceptron converged", "perceptron mistakes", "perceptron accuracy", "MLP accuracy"], rows: rows),
                .figure(Figure(fileName: "perceptron-mistakes.svg", caption: "Mistakes per epoch of the perceptron rule: zero from some epoch on for separable data, never for XOR.", svg: mistakesPlot.svg)),
                .figure(Figure(fileName: "perceptron-xor-accuracy.svg", caption: "On XOR the hidden layer makes the difference.", svg: accuracyPlot.svg)),
            ],
            metrics: [
                "separable_converged": .bool(onSeparable.training.converged), "separable_mistakes": .number(Double(onSeparable.training.totalMistakes)),
                "novikoff_bound": .number(Double(bound)), "xor_perceptron_accuracy": .number(onXOR.accuracy),
                "xor_perceptron_last_epoch_mistakes": .number(Double(onXOR.training.mistakesPerEpoch.last ?? 0)),
                "xor_mlp_accuracy": .number(mlpXOR.finalAccuracy), "separable_mlp_accuracy": .number(mlpSeparable.finalAccuracy),
            ])
    }
}
