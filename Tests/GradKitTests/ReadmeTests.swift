// GradKit — the README's tour, compiled and run, so the README stays true. SPDX-License-Identifier: MIT
//
// Each test below holds one ```swift block of README.md, line for line, with the
// names the README leaves to the reader (batch, labels, path, ...) defined first
// and assertions added between the lines. "every line of the README's Swift
// blocks is here" checks the correspondence, so an edit to either side that
// breaks it fails.
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
        let dw = w.gradient!.scalars
        #expect(dw.count == 6)
        w.gradient = nil
        #expect(w.gradient == nil)

        let logits = input.matmul(w.value)
        let ce = softmaxCrossEntropy(logits: logits, labels: [0, 1, 1, 0])
        #expect(ce.shape == [] && ce.scalar > 0)

        let prediction = withoutGradients { input.matmul(w.value).softmax() }
        #expect(!prediction.requiresGradient)

        let report = gradientCheck(at: [Tensor(randomNormal: [3, 4], using: &rng)]) { $0[0].gelu().squared() }
        #expect(report.passed && report.checkedCount == 144)
        #expect(report.description.hasPrefix("gradient check passed: 144 entries, 0 non-smooth"))

        let twin = Kernels.withBackend(.swift) { input.matmul(w.value) }
        #expect(Kernels.withBackend(.swift) { Kernels.activeBackend } == .swift)
        expectClose(twin.scalars, logits.scalars, relative: 1e-6)
        let threads = Kernels.threadCount
        #expect(threads >= 1)
        let fast = Kernels.withSubnormalsFlushed { input.matmul(w.value) }
        #expect(fast.scalars == input.matmul(w.value).scalars && !Kernels.flushesSubnormals)
    }

    @Test("the layers tour builds what it says")
    func layersTour() throws {
        let batch = randomTensor([16, 64], seed: 1)
        let labels = (0..<16).map { $0 % 10 }
        manualSeed(42)
        let model = Sequential([
            Linear(inputSize: 64, outputSize: 128, weightInitializer: .heNormal()), ReLU(),
            BatchNorm(featureCount: 128), Dropout(probability: 0.1),
            Linear(inputSize: 128, outputSize: 10),
        ])
        let names = model.parameters.map(\.name)
        #expect(names == ["0.weight", "0.bias", "2.weight", "2.bias", "4.weight", "4.bias"])
        let logits = model(batch)
        let loss = softmaxCrossEntropy(logits: logits, labels: labels)
        #expect(loss.scalar.isFinite)
        let weightsFromPyTorch = model.stateDictionary()
        model.isTraining = false
        try model.loadStateDictionary(weightsFromPyTorch)
        let deep = MLP(sizes: [64, 32, 32, 32, 10], activation: .tanh, initializer: .xavierUniform(gain: 5.0 / 3),
                       batchNorm: true, dropout: 0.1, residual: true)
        #expect(deep(batch).shape == [16, 10])
    }

    @Test("the optimizer tour trains and resumes")
    func optimizerTour() throws {
        let w = Parameter(Tensor(shape: [3, 2], scalars: [0.1, -0.2, 0.3, 0.4, -0.5, 0.6]), name: "w")
        let input = Tensor(shape: [4, 3], scalars: (0..<12).map { Float($0) / 10 })
        let first = withoutGradients { softmaxCrossEntropy(logits: input.matmul(w.value), labels: [0, 1, 1, 0]).scalar }
        let parameters = [w]
        let adam = Adam(parameters, learningRate: 1e-3)
        let scheduler = LearningRateScheduler(
            optimizer: adam,
            schedule: SequentialSchedule([LinearWarmup(startFactor: 0.1, steps: 100), CosineAnnealing(period: 900)],
                                         milestones: [100]))
        for _ in 0..<1000 {
            adam.zeroGradients()
            let loss = softmaxCrossEntropy(logits: input.matmul(w.value), labels: [0, 1, 1, 0])
            loss.backward()
            let norm = clipGradientNorm(parameters, maxNorm: 1)
            #expect(norm.isFinite)
            adam.step()
            scheduler.step()
        }
        let last = withoutGradients { softmaxCrossEntropy(logits: input.matmul(w.value), labels: [0, 1, 1, 0]).scalar }
        #expect(last < first, "the loss decreases: \(first) -> \(last)")
        let saved = adam.exportState()
        #expect(saved.stepCount == 1000 && saved.parameters[0].buffers["exp_avg"] != nil)
    }

    @Test("the training tour trains, reports and checkpoints")
    func trainingTour() throws {
        let path = try temporaryDirectory() + "/run.safetensors"
        let digits = Dataset.digits()
        let parts = try digits.split([0.7, 0.1, 0.2], seed: 0, stratified: true)
        let standardizer = Standardizer(fitting: parts[0])
        let (train, validation, test) = (try standardizer.transform(parts[0]), try standardizer.transform(parts[1]),
                                         try standardizer.transform(parts[2]))
        manualSeed(0)
        let mlp = MLP(sizes: [64, 128, 10])
        let trainer = Trainer(model: mlp, optimizer: Adam(mlp.parameters), loss: .softmaxCrossEntropy,
                              options: TrainingOptions(epochs: 30, batchSize: 32, clipping: .norm(5),
                                                       earlyStopping: EarlyStopping(patience: 5)))
        trainer.options.progress = .silent
        trainer.onEpoch = { record in record.loss.isFinite ? .proceed : .stop }
        let history = try trainer.fit(train, validation: validation)
        #expect(history.epochs.count >= 6 && history.epochs.allSatisfy { $0.loss.isFinite })
        let (testLoss, testAccuracy) = trainer.evaluate(test)
        #expect(testLoss.isFinite && testAccuracy! > 0.94)
        let health = trainer.monitor.report
        #expect(health.layers.count == 2)
        try trainer.checkpoint().write(to: path)
        try trainer.restore(Checkpoint.read(from: path))
    }

    @Test("the own-model tour freezes, groups, hooks, detects anomalies, summarizes and attaches callbacks")
    func ownModelTour() throws {
        let model = withManualSeed(3) {
            Sequential([Linear(inputSize: 2, outputSize: 8), Tanh(), Linear(inputSize: 8, outputSize: 8), ReLU(), Linear(inputSize: 8, outputSize: 2)])
        }
        let w = model.layers[4].parameters[0]
        var activations: [Tensor] = []
        let data = Dataset.xor(copies: 4)
        let trainer = Trainer(model: model, optimizer: SGD(model.parameters, learningRate: 0.1), loss: .softmaxCrossEntropy)
        func step() throws { softmaxCrossEntropy(logits: model(data.features), labels: data.labels!).backward() }
        model.layers[0].freeze()
        #expect(model.layers[0].parameters.allSatisfy { !$0.requiresGradient })
        let sgd = SGD([ParameterGroup(model.layers[2].parameters, learningRate: 0.01), ParameterGroup(model.layers[4].parameters)],
                      learningRate: 0.1, momentum: 0.9)
        sgd.parameterGroups[0].learningRate *= 0.5
        #expect(sgd.parameterGroups.map(\.learningRate) == [0.005, 0.1])
        let hook = model.layers[1].registerForwardHook { layer, input, output in activations.append(output) }
        w.registerGradientHook { gradient in gradient * 0.5 }
        try withAnomalyDetection { try step() }
        #expect(activations.count == 1 && activations[0].shape == [16, 8])
        #expect(w.gradient != nil && model.layers[0].parameters.allSatisfy { $0.gradient == nil })
        hook.remove()
        let table = model.summary()
        #expect(table.frozenParameters == 24 && table.rows.count == 5)
        trainer.callbacks = [TensorBoardLogger(directory: "tb"), ReportWriter(directory: "report")]
        #expect(trainer.callbacks.count == 2)
        trainer.lossScaler = LossScaler()                   // dynamic loss scaling: PyTorch's GradScaler, its defaults
        #expect(trainer.lossScaler?.scale == 65536)
    }

    @Test("every line of the README's Swift blocks is here")
    func readmeLinesAreTested() throws {
        var root = #filePath.split(separator: "/", omittingEmptySubsequences: false)
        root.removeLast(3)  // Tests/GradKitTests/ReadmeTests.swift
        let readme = try ReadmeTests.text(root.joined(separator: "/") + "/README.md")
        let tested = Set(try ReadmeTests.text(#filePath).split(separator: "\n").map(ReadmeTests.code))
        let blocks = ReadmeTests.swiftBlocks(readme)
        #expect(blocks.count == 5, "the README's ```swift blocks, one per test above")
        let missing = blocks.joined().filter { !$0.1.isEmpty && !tested.contains($0.1) }
        #expect(missing.isEmpty, "not in ReadmeTests.swift: \(missing.map { "README.md:\($0.0): \($0.1)" })")
    }

    /// A file's contents as UTF-8 text.
    static func text(_ path: String) throws -> String {
        String(decoding: try FileIO.readAll(path).get(), as: UTF8.self)
    }

    /// A line's code: without its `//` comment and surrounding spaces.
    static func code(_ line: Substring) -> String {
        var text = line
        if let comment = text.firstRange(of: "//") { text = text[..<comment.lowerBound] }
        let characters = text.drop { $0 == " " }
        return String(characters.reversed().drop { $0 == " " }.reversed())
    }

    /// The code lines of each ```swift block, with their 1-based line numbers in the file.
    static func swiftBlocks(_ markdown: String) -> [[(Int, String)]] {
        var blocks: [[(Int, String)]] = []
        var current: [(Int, String)]?
        for (index, line) in markdown.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            if current == nil {
                if line == "```swift" { current = [] }
            } else if line == "```" {
                blocks.append(current!)
                current = nil
            } else {
                current!.append((index + 1, code(line)))
            }
        }
        return blocks
    }
}
