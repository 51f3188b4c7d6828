// The README's tour, compiled and run, so the README stays true.
import Testing

import GradKit

@Suite("README")
struct ReadmeTests {
    @Test("the tour runs and does what it says")
    func tour() {
        let x = Tensor(shape: [2, 3], scalars: [1, 2, 3, 4, 5, 6])
        var rng = SeededGenerator(seed: 42)
        let noise = Tensor(randomNormal: [2, 3], mean: 0, standardDeviation: 1, using: &rng)
        let y = (x * 2 + noise).sum(alongAxes: 1)
        #expect(y.shape == [2, 1])

        let w = Parameter(Tensor(shape: [3, 2], scalars: [0.1, -0.2, 0.3, 0.4, -0.5, 0.6]), name: "w")
        let input = Tensor(shape: [4, 3], scalars: (0..<12).map { Float($0) / 10 })
        let loss = input.matmul(w.value).tanh().sum()
        loss.backward()
        #expect(w.gradient != nil)
        w.gradient = nil

        let logits = input.matmul(w.value)
        let ce = softmaxCrossEntropy(logits: logits, labels: [0, 1, 1, 0])
        #expect(ce.shape == [] && ce.scalar > 0)

        let prediction = withoutGradients { input.matmul(w.value).softmax() }
        #expect(!prediction.requiresGradient)

        let report = gradientCheck(at: [Tensor(randomNormal: [3, 4], using: &rng)]) { $0[0].gelu().squared() }
        #expect(report.passed && report.checkedCount == 144)
        #expect(report.description.hasPrefix("gradient check passed: 144 entries, 0 non-smooth"))

        Kernels.withBackend(.swift) { #expect(Kernels.activeBackend == .swift) }
        #expect(Kernels.threadCount >= 1)
    }

    @Test("the layers tour builds what it says")
    func layersTour() throws {
        manualSeed(42)
        let model = Sequential([
            Linear(inputSize: 64, outputSize: 128, weightInitializer: .heNormal()), ReLU(),
            BatchNorm(featureCount: 128), Dropout(probability: 0.1),
            Linear(inputSize: 128, outputSize: 10),
        ])
        #expect(model.parameters.map(\.name) == ["0.weight", "0.bias", "2.weight", "2.bias", "4.weight", "4.bias"])
        let batch = randomTensor([16, 64], seed: 1)
        let labels = (0..<16).map { $0 % 10 }
        let logits = model(batch)
        let loss = softmaxCrossEntropy(logits: logits, labels: labels)
        #expect(loss.scalar.isFinite)
        model.isTraining = false
        let weightsFromPyTorch = model.stateDictionary()
        try model.loadStateDictionary(weightsFromPyTorch)
        let deep = MLP(sizes: [64, 32, 32, 32, 10], activation: .tanh, initializer: .xavierUniform(gain: 5.0 / 3),
                       batchNorm: true, dropout: 0.1, residual: true)
        #expect(deep(batch).shape == [16, 10])
    }

    @Test("the optimizer tour trains and resumes")
    func optimizerTour() throws {
        let w = Parameter(Tensor(shape: [3, 2], scalars: [0.1, -0.2, 0.3, 0.4, -0.5, 0.6]), name: "w")
        let input = Tensor(shape: [4, 3], scalars: (0..<12).map { Float($0) / 10 })
        let parameters = [w]
        let adam = Adam(parameters, learningRate: 1e-3)
        let scheduler = LearningRateScheduler(
            optimizer: adam,
            schedule: SequentialSchedule([LinearWarmup(startFactor: 0.1, steps: 100), CosineAnnealing(period: 900)],
                                         milestones: [100]))
        var first: Float = 0, last: Float = 0
        for step in 0..<300 {
            adam.zeroGradients()
            let loss = softmaxCrossEntropy(logits: input.matmul(w.value), labels: [0, 1, 1, 0])
            if step == 0 { first = loss.scalar }
            last = loss.scalar
            loss.backward()
            let norm = clipGradientNorm(parameters, maxNorm: 1)
            #expect(norm.isFinite)
            adam.step()
            scheduler.step()
        }
        #expect(last < first, "the loss decreases: \(first) -> \(last)")
        let saved = adam.exportState()
        #expect(saved.stepCount == 300 && saved.parameters[0].buffers["exp_avg"] != nil)
    }

    @Test("the training tour trains, reports and checkpoints")
    func trainingTour() throws {
        let digits = Dataset.digits()
        let parts = try digits.split([0.7, 0.1, 0.2], seed: 0, stratified: true)
        let standardizer = Standardizer(fitting: parts[0])
        let (train, validation, test) = (try standardizer.transform(parts[0]), try standardizer.transform(parts[1]),
                                         try standardizer.transform(parts[2]))
        manualSeed(0)
        let mlp = MLP(sizes: [64, 128, 10])
        let trainer = Trainer(model: mlp, optimizer: Adam(mlp.parameters), loss: .softmaxCrossEntropy,
                              options: TrainingOptions(epochs: 30, batchSize: 32, clipping: .norm(5),
                                                       earlyStopping: EarlyStopping(patience: 5), progress: .silent))
        var epochs = 0
        trainer.onEpoch = { _ in epochs += 1; return .proceed }
        let history = try trainer.fit(train, validation: validation)
        #expect(epochs == history.epochs.count && history.epochs.count >= 6)
        #expect(trainer.evaluate(test).accuracy! > 0.94)
        #expect(trainer.monitor.report.layers.count == 2)
        let path = try temporaryDirectory() + "/run.safetensors"
        try trainer.checkpoint().write(to: path)
        try trainer.restore(Checkpoint.read(from: path))
    }
}
