// Layers: PyTorch's numbers by parameter name, gradient checks, modes, names, traps.
import Testing

@testable import GradKit

private func stateDictionary(_ goldens: [String: (shape: [Int], values: [Float])]) -> [String: Tensor] {
    goldens.mapValues { Tensor(shape: $0.shape, scalars: $0.values) }
}

/// PyTorch agreement for layers: 1e-4 relative (the bound GradKit promises for layers), with an
/// absolute floor of 1e-6 for values near zero.
private func expectTorchClose(_ actual: [Float], _ expected: [Float], _ context: String) {
    expectClose(actual, expected, relative: 1e-4, absolute: 1e-6, context)
}

/// A network of every layer kind, built the way its PyTorch twin was.
private func mixedNetwork() -> Sequential {
    Sequential([
        Linear(inputSize: 5, outputSize: 7), Tanh(), Linear(inputSize: 7, outputSize: 6), Sigmoid(),
        BatchNorm(featureCount: 6), Linear(inputSize: 6, outputSize: 4), ReLU(), Linear(inputSize: 4, outputSize: 3),
    ])
}

@Suite("Layers")
struct LayerTests {
    @Test("a network loaded with PyTorch weights by name reproduces PyTorch", arguments: KernelBackend.allCases)
    func pytorchNetwork(backend: KernelBackend) throws {
        try Kernels.withBackend(backend) {
            let model = mixedNetwork()
            let names = model.parameters.map(\.name) + model.buffers.map(\.name)
            #expect(Set(names) == Set(LayerGoldens.networkState.keys), "PyTorch's nn.Sequential names")
            #expect(model.parameters.map(\.name) == ["0.weight", "0.bias", "2.weight", "2.bias", "4.weight", "4.bias", "5.weight", "5.bias", "7.weight", "7.bias"])
            try model.loadStateDictionary(stateDictionary(LayerGoldens.networkState))
            let x = Tensor(shape: [8, 5], scalars: LayerGoldens.networkInput)
            let logits = model(x)
            expectTorchClose(logits.scalars, LayerGoldens.networkLogits, "train-mode logits \(backend)")
            let loss = softmaxCrossEntropy(logits: logits, labels: LayerGoldens.networkLabels)
            expectTorchClose([loss.scalar], [LayerGoldens.networkLoss], "loss \(backend)")
            loss.backward()
            for p in model.parameters {
                expectTorchClose(p.gradient!.scalars, LayerGoldens.networkGradients[p.name]!.values, "gradient of \(p.name) \(backend)")
            }
            for b in model.buffers {
                expectTorchClose(b.value.scalars, LayerGoldens.networkStateAfter[b.name]!.values, "\(b.name) after one batch \(backend)")
            }
            model.isTraining = false
            let evaluation = withoutGradients { model(x) }
            expectTorchClose(evaluation.scalars, LayerGoldens.networkEvalLogits, "eval-mode logits \(backend)")
        }
    }

    @Test("the Elman RNN matches PyTorch's nn.RNN over 4 steps, outputs and gradients", arguments: KernelBackend.allCases)
    func rnnAgainstPyTorch(backend: KernelBackend) throws {
        try Kernels.withBackend(backend) {
            let rnn = RNN(inputSize: 3, hiddenSize: 5)
            try rnn.loadStateDictionary(stateDictionary(LayerGoldens.rnnState))
            let x = Tensor(shape: [2, 4, 3], scalars: LayerGoldens.rnnInput)
            let h0 = Tensor(shape: [2, 5], scalars: LayerGoldens.rnnInitialState)
            let (outputs, final) = rnn.run(x, initialState: h0)
            expectTorchClose(outputs.scalars, LayerGoldens.rnnOutputs, "outputs \(backend)")
            (outputs.squared().sum() + final.sum()).backward()
            for p in rnn.parameters {
                expectTorchClose(p.gradient!.scalars, LayerGoldens.rnnGradients[p.name]!.values, "gradient of \(p.name) \(backend)")
            }
        }
    }

    @Test("LayerNorm matches PyTorch", arguments: KernelBackend.allCases)
    func layerNormAgainstPyTorch(backend: KernelBackend) throws {
        try Kernels.withBackend(backend) {
            let norm = LayerNorm(featureCount: 6)
            try norm.loadStateDictionary(stateDictionary(LayerGoldens.layerNormState))
            let y = norm(Tensor(shape: [4, 6], scalars: LayerGoldens.layerNormInput))
            expectTorchClose(y.scalars, LayerGoldens.layerNormOutput, "output \(backend)")
            (y * Tensor(shape: [4, 6], scalars: (0..<24).map(Float.init))).sum().backward()
            for p in norm.parameters {
                expectTorchClose(p.gradient!.scalars, LayerGoldens.layerNormGradients[p.name]!.values, "\(p.name) \(backend)")
            }
        }
    }

    @Test("losses match PyTorch for every reduction, values and gradients", arguments: KernelBackend.allCases)
    func lossesAgainstPyTorch(backend: KernelBackend) {
        Kernels.withBackend(backend) {
            let target = Tensor(shape: [6, 4], scalars: LayerGoldens.lossTarget)
            let probabilityTarget = Tensor(shape: [6, 4], scalars: LayerGoldens.lossProbabilityTarget)
            let labels = LayerGoldens.lossLabels
            let cases: [(String, (Tensor, Reduction) -> Tensor)] = [
                ("mse", { meanSquaredError(predicted: $0, expected: target, reduction: $1) }),
                ("huber", { huber(predicted: $0 * 2, expected: target, reduction: $1) }),
                ("bce_logits", { binaryCrossEntropy(logits: $0 * 3, labels: probabilityTarget, reduction: $1) }),
                ("bce_probabilities", { binaryCrossEntropy(probabilities: $0.sigmoid(), labels: probabilityTarget, reduction: $1) }),
                ("nll", { negativeLogLikelihood(logProbabilities: $0.logSoftmax(alongAxis: 1), labels: labels, reduction: $1) }),
                ("cross_entropy", { softmaxCrossEntropy(logits: $0, labels: labels, reduction: $1) }),
            ]
            let weights = (0..<24).map { -1 + 2 * Float($0) / 23 }
            for (name, loss) in cases {
                for (reduction, suffix) in [(Reduction.mean, "mean"), (.sum, "sum"), (.none, "none")] {
                    let golden = LayerGoldens.losses["\(name)_\(suffix)"]!
                    let input = Parameter(Tensor(shape: [6, 4], scalars: LayerGoldens.lossInput))
                    let value = loss(input.value, reduction)
                    expectTorchClose(value.scalars, golden.value, "\(name) \(suffix) value \(backend)")
                    (value * Tensor(shape: value.shape, scalars: Array(weights.prefix(value.scalarCount)))).sum().backward()
                    expectTorchClose(input.gradient!.scalars, golden.gradient, "\(name) \(suffix) gradient \(backend)")
                }
            }
        }
    }

    @Test("gradient checks for every layer, both backends", arguments: KernelBackend.allCases)
    func gradientChecks(backend: KernelBackend) {
        Kernels.withBackend(backend) {
            let x = withManualSeed(11) { randomTensor([5, 4], seed: 1, in: -2...2) }
            let sequence = randomTensor([2, 3, 4], seed: 2, in: -1...1)
            let channels = randomTensor([3, 4, 2], seed: 3, in: -2...2)
            // Seeded: with the shared generator, whatever tests ran before would pick the weights, and
            // now and then put an entry within a finite-difference step of a ReLU's kink.
            let cases: [(String, any Layer, Tensor)] = withManualSeed(12) { [
                ("Linear", Linear(inputSize: 4, outputSize: 3), x),
                ("Linear without bias", Linear(inputSize: 4, outputSize: 3, bias: false), x),
                ("Linear on rank 3", Linear(inputSize: 4, outputSize: 2), sequence),
                ("Sigmoid", Sigmoid(), x), ("Tanh", Tanh(), x), ("ReLU", ReLU(), x), ("LeakyReLU", LeakyReLU(negativeSlope: 0.2), x),
                ("ELU", ELU(), x), ("GELU", GELU(), x), ("Softplus", Softplus(beta: 2), x), ("Softmax", Softmax(), x),
                ("BatchNorm training", BatchNorm(featureCount: 4), x),
                ("BatchNorm training, rank 3", BatchNorm(featureCount: 4), channels),
                ("BatchNorm without affine", BatchNorm(featureCount: 4, affine: false), x),
                ("LayerNorm", LayerNorm(featureCount: 4), x),
                ("Residual", Residual(Sequential([Linear(inputSize: 4, outputSize: 4), Tanh()])), x),
                ("Residual with projection", Residual(Sequential([Linear(inputSize: 4, outputSize: 6), Tanh()]), projection: Linear(inputSize: 4, outputSize: 6)), x),
                ("RNN over 3 steps", RNN(inputSize: 4, hiddenSize: 3), sequence),
                ("RNN relu", RNN(inputSize: 4, hiddenSize: 3, nonlinearity: .relu), sequence),
                ("MLP", MLP(sizes: [4, 5, 5, 3], activation: .tanh, batchNorm: true, residual: true), x),
                ("Linear then ReLU (fused)", Sequential([Linear(inputSize: 4, outputSize: 6), ReLU(), Linear(inputSize: 6, outputSize: 3), ReLU()]), x),
            ] }
            for (name, layer, input) in cases {
                let inputParameter = Parameter(input, name: "input")
                let result = gradientCheck(layer.parameters + [inputParameter]) { layer(inputParameter.value) }
                #expect(result.passed, "\(name) \(backend): \(result)")
            }
            // One tensor as both input and weight: its two gradient products
            // accumulate into one buffer, so they cannot run as a pair.
            let square = Parameter(withManualSeed(13) { randomTensor([4, 4], seed: 4, in: -1...1) }, name: "square")
            let both = gradientCheck([square]) { linear(square.value, weight: square.value) }
            #expect(both.passed, "linear(x, weight: x) \(backend): \(both)")
            // Dropout in training mode, its mask fixed by restoring the generator
            // before each evaluation.
            let dropout = Dropout(probability: 0.4, seed: 12)
            let state = dropout.generatorState
            let dropped = gradientCheck(at: [x]) { inputs in
                dropout.generatorState = state
                return dropout(inputs[0])
            }
            #expect(dropped.passed, "Dropout \(backend): \(dropped)")
            let evaluationNorm = BatchNorm(featureCount: 4)
            evaluationNorm.runningMean.value = Tensor([0.1, -0.2, 0.3, 0])
            evaluationNorm.runningVariance.value = Tensor([0.5, 2, 1, 1.5])
            evaluationNorm.isTraining = false
            let result = gradientCheck(evaluationNorm.parameters + [Parameter(x)]) { evaluationNorm(x) }
            #expect(result.passed, "BatchNorm eval \(backend): \(result)")
        }
    }

    @Test("gradient checks for every loss, both backends", arguments: KernelBackend.allCases)
    func lossGradientChecks(backend: KernelBackend) {
        Kernels.withBackend(backend) {
            let p = randomTensor([4, 3], seed: 5, in: -2...2)
            let e = randomTensor([4, 3], seed: 6, in: -2...2)
            let t = randomTensor([4, 3], seed: 7, in: 0...1)
            let labels = [2, 0, 1, 2]
            for reduction in [Reduction.mean, .sum, .none] {
                let cases: [(String, ([Tensor]) -> Tensor)] = [
                    ("mse", { meanSquaredError(predicted: $0[0], expected: $0[1], reduction: reduction) }),
                    ("huber", { huber(predicted: $0[0], expected: $0[1], delta: 0.7, reduction: reduction) }),
                    ("bce logits", { binaryCrossEntropy(logits: $0[0], labels: $0[2], reduction: reduction) }),
                    ("bce probabilities", { binaryCrossEntropy(probabilities: $0[0].sigmoid(), labels: $0[2], reduction: reduction) }),
                    ("nll", { negativeLogLikelihood(logProbabilities: $0[0].logSoftmax(), labels: labels, reduction: reduction) }),
                    ("cross entropy", { softmaxCrossEntropy(logits: $0[0], labels: labels, reduction: reduction) }),
                ]
                for (name, f) in cases {
                    let result = gradientCheck(at: [p, e, t]) { f($0) }
                    #expect(result.passed, "\(name) \(reduction) \(backend): \(result)")
                }
            }
            // BCE with logits at exactly 0: the derivative is σ(0) − y, not a kink.
            let zero = Parameter(Tensor(zeros: [3]))
            binaryCrossEntropy(logits: zero.value, labels: Tensor([0, 0.5, 1]), reduction: .sum).backward()
            #expect(zero.gradient!.scalars == [0.5, 0, -0.5])
        }
    }

    @Test("dropout: inverted scaling in training, identity in evaluation, reproducible")
    func dropout() {
        let x = Tensor(shape: [200, 50], repeating: 1)
        let layer = Dropout(probability: 0.3, seed: 9)
        let y = layer(x).scalars
        let kept = y.filter { $0 != 0 }
        #expect(kept.allSatisfy { Swift.abs($0 - 1 / 0.7) < 1e-6 })
        let fraction = Double(kept.count) / Double(y.count)
        #expect(Swift.abs(fraction - 0.7) < 0.02, "kept \(fraction), expected 0.7 ± 0.02 (3σ of 10 000 draws is 0.014)")
        let again = Dropout(probability: 0.3, seed: 9)
        #expect(again(x).scalars == y)
        layer.isTraining = false
        #expect(layer(x) == x)
        // The gradient is the mask: d/dx (x * m / (1 - p)) = m / (1 - p).
        let w = Parameter(randomTensor([10, 10], seed: 1, in: 1...2))
        let out = Dropout(probability: 0.5, seed: 3)(w.value)
        out.sum().backward()
        expectClose(w.gradient!.scalars, zip(out.scalars, w.value.scalars).map { $0 / $1 }, relative: 1e-6)
        #expect(Dropout(probability: 1)(x).scalars.allSatisfy { $0 == 0 })
    }

    @Test("BatchNorm: momentum nil averages cumulatively; eval uses running statistics")
    func batchNormStatistics() {
        let norm = BatchNorm(featureCount: 2, momentum: nil)
        let batches = [Tensor([[1, 10], [3, 14]]), Tensor([[5, 6], [7, 2]])]
        for b in batches { _ = norm(b) }
        // Cumulative average of the batch means (2, 12) and (6, 4), and of the
        // unbiased variances (2, 8) and (2, 8).
        expectClose(norm.runningMean.value.scalars, [4, 8], relative: 1e-6)
        expectClose(norm.runningVariance.value.scalars, [2, 8], relative: 1e-6)
        #expect(norm.batchesTracked.value.scalar == 2)
        norm.isTraining = false
        let y = norm(Tensor([[4, 8]]))
        expectClose(y.scalars, [0, 0], absolute: 1e-6)
    }

    @Test("training mode propagates; names are dotted paths; parameter counts")
    func structure() throws {
        let model = Sequential {
            Linear(inputSize: 3, outputSize: 4)
            Residual(Sequential([Linear(inputSize: 4, outputSize: 4), BatchNorm(featureCount: 4), ReLU()]))
            Dropout(probability: 0.2)
            Linear(inputSize: 4, outputSize: 2)
        }
        #expect(model.parameters.map(\.name) == [
            "0.weight", "0.bias", "1.body.0.weight", "1.body.0.bias", "1.body.1.weight", "1.body.1.bias", "3.weight", "3.bias",
        ])
        #expect(model.buffers.map(\.name) == ["1.body.1.running_mean", "1.body.1.running_var", "1.body.1.num_batches_tracked"])
        #expect(model.parameterCount == 3 * 4 + 4 + 16 + 4 + 4 + 4 + 8 + 2)
        model.isTraining = false
        func allLayers(_ layer: any Layer) -> [any Layer] { [layer] + layer.children.flatMap(allLayers) }
        #expect(allLayers(model).allSatisfy { !$0.isTraining })
        let mlp = MLP(sizes: [8, 16, 16, 4], activation: .relu, batchNorm: true, dropout: 0.1, residual: true)
        #expect(mlp.parameters.map(\.name) == [
            "0.weight", "0.bias", "1.weight", "1.bias", "4.body.0.weight", "4.body.0.bias", "4.body.1.weight", "4.body.1.bias",
            "5.weight", "5.bias",
        ])
        // Round trip through a state dictionary.
        let copy = Sequential {
            Linear(inputSize: 3, outputSize: 4)
            Residual(Sequential([Linear(inputSize: 4, outputSize: 4), BatchNorm(featureCount: 4), ReLU()]))
            Dropout(probability: 0.2)
            Linear(inputSize: 4, outputSize: 2)
        }
        try copy.loadStateDictionary(model.stateDictionary())
        copy.isTraining = false
        let x = randomTensor([5, 3], seed: 4)
        #expect(copy(x) == model(x))
    }

    @Test("loading a bad state dictionary throws and changes nothing")
    func stateErrors() {
        let model = mixedNetwork()
        let before = model.stateDictionary()
        var missing = before
        missing["4.running_var"] = nil
        #expect(throws: LayerStateError.missing(["4.running_var"])) { try model.loadStateDictionary(missing) }
        var extra = before
        extra["9.weight"] = Tensor(zeros: [1])
        #expect(throws: LayerStateError.unexpected(["9.weight"])) { try model.loadStateDictionary(extra) }
        var wrong = before
        wrong["2.weight"] = Tensor(zeros: [7, 6])
        wrong["0.bias"] = Tensor(zeros: [7])
        #expect(throws: LayerStateError.shapeMismatch(name: "2.weight", expected: [6, 7], found: [7, 6])) { try model.loadStateDictionary(wrong) }
        #expect(model.stateDictionary() == before)
        #expect(throws: Never.self) { try model.loadStateDictionary(["0.bias": Tensor(zeros: [7])], strict: false) }
        #expect(model.parameters[1].value == Tensor(zeros: [7]))
    }

    @Test("initializers follow their formulas")
    func initializers() {
        var g = SeededGenerator(seed: 21)
        func stats(_ t: Tensor) -> (mean: Double, std: Double, max: Float) {
            let v = t.scalars.map(Double.init), n = Double(v.count)
            let mean = v.reduce(0, +) / n
            return (mean, (v.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / n).squareRoot(), t.scalars.map(Swift.abs).max()!)
        }
        let shape = [300, 500] // fanIn 500, fanOut 300
        let cases: [(Initializer, expectedStd: Double, bound: Float?)] = [
            (.xavierUniform(gain: 2), 2 * (6.0 / 800).squareRoot() / 3.0.squareRoot(), 2 * Float(6.0 / 800).squareRoot()),
            (.xavierNormal(), (2.0 / 800).squareRoot(), nil),
            (.heUniform(), (2.0 / 500).squareRoot(), Float(3 * 2.0 / 500).squareRoot()),
            (.heNormal(mode: .fanOut, nonlinearity: .tanh), 5.0 / 3 / 300.0.squareRoot(), nil),
            (.heNormal(nonlinearity: .leakyRelu(negativeSlope: 0.2)), (2 / 1.04 / 500).squareRoot(), nil),
            (.lecunNormal, (1.0 / 500).squareRoot(), nil),
            (.pytorchDefault, 1 / 500.0.squareRoot() / 3.0.squareRoot(), 1 / Float(500).squareRoot()),
        ]
        for (initializer, expectedStd, bound) in cases {
            let s = stats(initializer.tensor(shape: shape, using: &g))
            // 150 000 draws: the sample std is within 1% with overwhelming probability.
            #expect(Swift.abs(s.mean) < 0.01 * expectedStd * 10, "\(initializer) mean \(s.mean)")
            #expect(Swift.abs(s.std / expectedStd - 1) < 0.01, "\(initializer) std \(s.std) vs \(expectedStd)")
            if let bound { #expect(s.max <= bound, "\(initializer) max \(s.max) > \(bound)") }
        }
        #expect(Nonlinearity.tanh.gain == 5.0 / 3 && Nonlinearity.relu.gain == Float(2).squareRoot() && Nonlinearity.selu.gain == 0.75)
        #expect(Initializer.constant(0.5).tensor(shape: [2, 2], using: &g).scalars == [0.5, 0.5, 0.5, 0.5])
        for shape in [[6, 4], [4, 6], [5, 5], [3, 2, 2]] {
            let w = Initializer.orthogonal(gain: 1.5).tensor(shape: shape, using: &g)
            let rows = shape[0], columns = w.scalarCount / rows
            let m = w.reshaped(to: [rows, columns])
            let gram = rows <= columns ? m.matmul(m.transposed()) : m.transposed().matmul(m)
            let size = Swift.min(rows, columns)
            var identity = [Float](repeating: 0, count: size * size)
            for i in 0..<size { identity[i * size + i] = 2.25 }
            expectClose(gram.scalars, identity, absolute: 1e-5, "orthogonal \(shape)")
        }
    }

    @Test("the perceptron converges within Novikoff's bound on separable data and fails on XOR; an MLP learns XOR")
    func perceptronAndXOR() {
        // Points separated by the unit normal (w*, b*) with margin at least 0.2.
        var g = SeededGenerator(seed: 8)
        let normal: [Float] = [0.6, -0.48, 0.64] // (w1, w2, b), |.| = 1
        var points: [Float] = [], labels: [Int] = []
        var radius: Float = 0
        while labels.count < 200 {
            let x1 = Float.random(in: -3...3, using: &g), x2 = Float.random(in: -3...3, using: &g)
            let score = normal[0] * x1 + normal[1] * x2 + normal[2]
            guard Swift.abs(score) >= 0.2 else { continue }
            points += [x1, x2]
            labels.append(score > 0 ? 1 : 0)
            radius = Swift.max(radius, (x1 * x1 + x2 * x2 + 1).squareRoot())
        }
        let perceptron = Perceptron(inputSize: 2)
        let training = perceptron.learn(features: Tensor(shape: [200, 2], scalars: points), labels: labels, maximumEpochs: 1000)
        let bound = Int((radius / 0.2) * (radius / 0.2))
        #expect(training.converged)
        #expect(training.totalMistakes <= bound, "\(training.totalMistakes) mistakes, Novikoff's bound \(bound)")
        #expect(perceptron(Tensor(shape: [200, 2], scalars: points)).scalars == labels.map(Float.init))

        let xor = Tensor([[0, 0], [0, 1], [1, 0], [1, 1]]), xorLabels = [0, 1, 1, 0]
        let failing = Perceptron(inputSize: 2).learn(features: xor, labels: xorLabels, maximumEpochs: 100)
        #expect(!failing.converged)
        #expect(failing.mistakesPerEpoch.allSatisfy { $0 > 0 }, "every epoch errs on XOR")

        let mlp = withManualSeed(3) { MLP(sizes: [2, 8, 2], activation: .tanh) }
        let adam = Adam(mlp.parameters, learningRate: 0.05)
        for _ in 0..<300 {
            adam.zeroGradients()
            softmaxCrossEntropy(logits: mlp(xor), labels: xorLabels).backward()
            adam.step()
        }
        #expect(withoutGradients { mlp(xor) }.argmax() == xorLabels)
    }
}

@Suite("Layer shape errors")
struct LayerTrapTests {
    @Test("wrong input width")
    func width() async {
        let result = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            let layer = Linear(inputSize: 64, outputSize: 128)
            _ = layer(Tensor(zeros: [8, 32]))
        }
        #expect(standardError(result).contains("Linear(inputSize: 64, outputSize: 128): input of shape [8, 32] does not have 64 features"))
    }

    @Test("wrong label count")
    func labels() async {
        let result = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            let logits = Tensor(zeros: [4, 3])
            _ = negativeLogLikelihood(logProbabilities: logits, labels: [0, 1])
        }
        #expect(standardError(result).contains("2 labels for 4 rows of [4, 3]"))
    }

    @Test("BatchNorm feature count and single-example batches")
    func batchNorm() async {
        let features = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            _ = BatchNorm(featureCount: 4)(Tensor(zeros: [8, 5]))
        }
        #expect(standardError(features).contains("BatchNorm(featureCount: 4): expected input [batch, 4]"))
        let single = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            _ = BatchNorm(featureCount: 4)(Tensor(zeros: [1, 4]))
        }
        #expect(standardError(single).contains("expected more than 1 value per feature when training"))
    }

    @Test("RNN input shape")
    func rnn() async {
        let result = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            _ = RNN(inputSize: 3, hiddenSize: 4)(Tensor(zeros: [2, 5]))
        }
        #expect(standardError(result).contains("RNN(inputSize: 3, hiddenSize: 4): expected input [batch, time >= 1, 3], got [2, 5]"))
    }
}

@Suite("Fused layers")
struct FusedLayerTests {
    @Test("Sequential's fused Linear + ReLU gives the unfused values and gradients bit for bit", arguments: KernelBackend.allCases)
    func fusedMatchesUnfused(backend: KernelBackend) {
        Kernels.withBackend(backend) {
            for (sizes, batch) in [([64, 128, 64, 10], 32), ([7, 33, 5], 3), ([64, 64, 64, 64], 64)] {
                let model = withManualSeed(5) {
                    var layers: [any Layer] = []
                    for i in 0..<(sizes.count - 1) {
                        layers.append(Linear(inputSize: sizes[i], outputSize: sizes[i + 1]))
                        layers.append(ReLU())
                    }
                    return Sequential(layers)
                }
                let x = randomTensor([batch, sizes[0]], seed: 6, in: -2...2)
                func run(_ forward: (Tensor) -> Tensor) -> (output: [Float], gradients: [[Float]]) {
                    for p in model.parameters { p.gradient = nil }
                    let input = Parameter(x, name: "input")
                    let y = forward(input.value)
                    (y * randomTensor(y.shape, seed: 7)).sum().backward()
                    return (y.scalars, (model.parameters + [input]).map { $0.gradient!.scalars })
                }
                let fused = run { model($0) }
                let unfused = run { model.unfused($0) }
                // Small products on one thread (and the backward pair in sequence): same bits.
                let unsplit = withExclusiveThreadCount { () -> (output: [Float], gradients: [[Float]]) in
                    Kernels.threadCount = 2
                    Kernels.splitsSmallProducts = false
                    defer { Kernels.splitsSmallProducts = true }
                    return run { model($0) }
                }
                expectIdentical(unsplit.output, fused.output, "unsplit output \(sizes) \(backend)")
                for (i, (a, b)) in zip(unsplit.gradients, fused.gradients).enumerated() {
                    expectIdentical(a, b, "unsplit gradient \(i) \(sizes) \(backend)")
                }
                expectIdentical(fused.output, unfused.output, "output \(sizes) \(backend)")
                for (i, (f, u)) in zip(fused.gradients, unfused.gradients).enumerated() {
                    expectIdentical(f, u, "gradient \(i) \(sizes) \(backend)")
                }
            }
        }
    }
}
