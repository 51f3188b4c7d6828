// GradKitLab — the reference points every comparison needs: the majority class, the best linear model, the mean. SPDX-License-Identifier: MIT
import GradKit

/// Names of the control configurations, shared by the experiments that use them.
enum ControlName {
    static let majorityClass = "majority class"
    static let linear = "best linear model"
    static let mean = "predict the mean"
}

extension Configuration {
    /// Always answers the most common class of the fitting data.
    static func majorityClass(_ data: @escaping @Sendable (RunSeed) -> SplitData) -> Configuration {
        Configuration(ControlName.majorityClass, role: .control) { context in
            let split = data(context.seed)
            let labels = split.fit.labels!
            let counts = Dictionary(grouping: labels, by: { $0 }).mapValues(\.count)
            // The smallest label among equally common ones: the same answer on every machine.
            let majority = counts.max { a, b in a.value < b.value || (a.value == b.value && a.key > b.key) }!.key
            func accuracy(_ part: Dataset) -> Double { Double(part.labels!.filter { $0 == majority }.count) / Double(part.count) }
            var trial = Trial(learningRate: nil)
            trial.validation = [accuracy(split.validation)]
            trial.test = [accuracy(split.test)]
            trial.selectEpoch(.testAccuracy)
            return trial
        }
    }

    /// Multinomial logistic regression (one `Linear` layer, softmax
    /// cross-entropy) trained by SGD with momentum 0.9, its learning rate from
    /// `learningRates` and its epoch chosen on validation data.
    static func linearClassifier(
        learningRates: [Float], epochs: @escaping @Sendable (Plan) -> Int, _ data: @escaping @Sendable (RunSeed) -> SplitData
    ) -> Configuration {
        Configuration(ControlName.linear, role: .control, learningRates: learningRates) { context in
            let split = data(context.seed)
            let model = withManualSeed(context.seed.initialization) {
                Linear(inputSize: split.fit.featureCount, outputSize: split.fit.classCount!)
            }
            let optimizer = SGD(model.parameters, learningRate: context.learningRate, momentum: 0.9)
            return train(model, optimizer: optimizer, TrainingPlan(
                data: split, metric: .testAccuracy, epochs: epochs(context.plan), seed: context.seed, sampleEvery: 10))
        }
    }

    /// Always answers the fitting data's mean target.
    static func meanPredictor(_ data: @escaping @Sendable (RunSeed) -> SplitData) -> Configuration {
        Configuration(ControlName.mean, role: .control) { context in
            let split = data(context.seed)
            let targets = split.fit.targetValues!.scalars.map(Double.init)
            let mean = targets.reduce(0, +) / Double(targets.count)
            func error(_ part: Dataset) -> Double {
                let values = part.targetValues!.scalars
                return values.reduce(0) { $0 + (Double($1) - mean) * (Double($1) - mean) } / Double(values.count)
            }
            var trial = Trial(learningRate: nil)
            trial.validation = [error(split.validation)]
            trial.test = [error(split.test)]
            trial.selectEpoch(.testMeanSquaredError)
            return trial
        }
    }

    /// Ordinary least squares on every input value at once (a sequence
    /// flattened into one vector) plus a constant, solved exactly in Double.
    static func linearRegression(_ data: @escaping @Sendable (RunSeed) -> SplitData) -> Configuration {
        Configuration(ControlName.linear, role: .control) { context in
            let split = data(context.seed)
            let coefficients = leastSquares(split.fit)
            func error(_ part: Dataset) -> Double {
                let x = part.features.scalars, y = part.targetValues!.scalars
                let width = coefficients.count - 1
                var total = 0.0
                for i in 0..<part.count {
                    var prediction = coefficients[width]
                    for j in 0..<width { prediction += coefficients[j] * Double(x[i * width + j]) }
                    total += (prediction - Double(y[i])) * (prediction - Double(y[i]))
                }
                return total / Double(part.count)
            }
            var trial = Trial(learningRate: nil)
            trial.validation = [error(split.validation)]
            trial.test = [error(split.test)]
            trial.selectEpoch(.testMeanSquaredError)
            return trial
        }
    }
}

/// The least-squares coefficients of `data`'s single target on its flattened
/// features and a constant (the last coefficient), from the normal equations
/// (XᵀX + 1e-9·I) β = Xᵀy solved by Cholesky; the tiny ridge only guards
/// against a feature that never varies.
func leastSquares(_ data: Dataset) -> [Double] {
    let count = data.count, width = data.features.scalarCount / count, n = width + 1
    let x = data.features.scalars, y = data.targetValues!.scalars
    var gram = [Double](repeating: 0, count: n * n), moment = [Double](repeating: 0, count: n)
    var row = [Double](repeating: 1, count: n)
    for i in 0..<count {
        for j in 0..<width { row[j] = Double(x[i * width + j]) }
        for a in 0..<n {
            moment[a] += row[a] * Double(y[i])
            for b in 0...a { gram[a * n + b] += row[a] * row[b] }
        }
    }
    for a in 0..<n { gram[a * n + a] += 1e-9 * Swift.max(gram[a * n + a], 1) }
    // Cholesky: gram = L Lᵀ, L stored in the lower triangle.
    for j in 0..<n {
        var d = gram[j * n + j]
        for k in 0..<j { d -= gram[j * n + k] * gram[j * n + k] }
        let pivot = d.squareRoot()
        gram[j * n + j] = pivot
        for i in (j + 1)..<Swift.max(j + 1, n) {
            var s = gram[i * n + j]
            for k in 0..<j { s -= gram[i * n + k] * gram[j * n + k] }
            gram[i * n + j] = s / pivot
        }
    }
    // Forward (L z = moment) and back (Lᵀ β = z) substitution.
    var z = moment
    for i in 0..<n {
        for k in 0..<i { z[i] -= gram[i * n + k] * z[k] }
        z[i] /= gram[i * n + i]
    }
    for i in stride(from: n - 1, through: 0, by: -1) {
        for k in (i + 1)..<Swift.max(i + 1, n) { z[i] -= gram[k * n + i] * z[k] }
        z[i] /= gram[i * n + i]
    }
    return z
}
