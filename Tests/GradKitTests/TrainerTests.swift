// The training loop: accuracy on the embedded digits, early stopping, events, schedules, logs.
import Dispatch
import Testing

@testable import GradKit

@Suite("Trainer")
struct TrainerTests {
    /// `gradkit train`'s default recipe, in code.
    @Test("the digits MLP (64-128-10, Adam, 30 epochs) reaches high test accuracy")
    func digits() throws {
        let parts = try Dataset.digits().split([0.8, 0.2], seed: 0, stratified: true)
        let model = withManualSeed(0) { MLP(sizes: [64, 128, 10]) }
        let trainer = Trainer(
            model: model, optimizer: Adam(model.parameters), loss: .softmaxCrossEntropy,
            options: TrainingOptions(epochs: 30, batchSize: 32, progress: .silent))
        let history = try trainer.fit(parts[0])
        let test = trainer.evaluate(parts[1])
        // `gradkit train` reaches 97.2% with this recipe on AVX-512 (the CI checks >= 97% there);
        // the bar here is lower because other instruction-set paths round differently, and
        // one test image is 0.28%.
        #expect(test.accuracy! >= 0.96, "test accuracy \(test.accuracy!)")
        #expect(history.epochs.count == 30 && history.steps.count == 30 * 45)
        #expect(history.epochs.last!.loss < 0.02 && history.epochs.last!.accuracy! > 0.99)
        #expect(trainer.monitor.report.isHealthy, "\(trainer.monitor.report)")
    }

    @Test("early stopping waits `patience` epochs and restores the best weights")
    func earlyStopping() throws {
        let data = Dataset.twoSpirals(countPerClass: 40, seed: 1)
        let validation = Dataset.twoSpirals(countPerClass: 40, noise: 0.4, seed: 2)
        let model = withManualSeed(1) { MLP(sizes: [2, 64, 64, 2]) }
        let trainer = Trainer(
            model: model, optimizer: Adam(model.parameters, learningRate: 0.05), loss: .softmaxCrossEntropy,
            options: TrainingOptions(epochs: 300, batchSize: 8, earlyStopping: EarlyStopping(patience: 3), progress: .silent))
        var best: (loss: Float, weights: [String: Tensor])?
        trainer.onEpoch = { record in
            if record.validationLoss! < (best?.loss ?? .infinity) { best = (record.validationLoss!, model.stateDictionary()) }
            return .proceed
        }
        let history = try trainer.fit(data, validation: validation)
        #expect(history.stoppedEarly != nil && history.epochs.count < 300)
        let losses = history.epochs.map { $0.validationLoss! }
        let bestIndex = losses.firstIndex(of: losses.min()!)!
        #expect(history.epochs.count == bestIndex + 1 + 3, "\(losses)")
        for (name, tensor) in model.stateDictionary() { expectIdentical(tensor.scalars, best!.weights[name]!.scalars, name) }
    }

    @Test("onEpoch can stop; schedules set the learning rate per epoch or per step")
    func eventsAndSchedules() throws {
        let data = Dataset.xor(copies: 16, noise: 0.1)
        let model = withManualSeed(2) { MLP(sizes: [2, 8, 2]) }
        let trainer = Trainer(
            model: model, optimizer: SGD(model.parameters, learningRate: 0.1), loss: .softmaxCrossEntropy,
            options: TrainingOptions(epochs: 5, batchSize: 16, schedule: StepDecay(stepSize: 2, gamma: 0.5), progress: .silent))
        var seen: [Int] = []
        trainer.onEpoch = { record in
            seen.append(record.epoch)
            return record.epoch == 4 ? .stop : .proceed
        }
        let history = try trainer.fit(data)
        #expect(seen == [1, 2, 3, 4] && history.stoppedEarly?.contains("onEpoch") == true)
        #expect(history.epochs.map(\.learningRate) == [0.1, 0.1, 0.05, 0.05])
        #expect(history.steps.map(\.learningRate) == [Float](repeating: 0.1, count: 8) + [Float](repeating: 0.05, count: 8))

        let stepped = withManualSeed(2) { MLP(sizes: [2, 8, 2]) }
        let perStep = Trainer(
            model: stepped, optimizer: SGD(stepped.parameters, learningRate: 0.1), loss: .softmaxCrossEntropy,
            options: TrainingOptions(epochs: 1, batchSize: 16, schedule: StepDecay(stepSize: 1, gamma: 0.5), schedulePerStep: true, progress: .silent))
        #expect(try perStep.fit(data).steps.map(\.learningRate) == [0.1, 0.05, 0.025, 0.0125])
    }

    @Test("each clipping mode bounds the update; the recorded norm is the one before clipping")
    func clipping() throws {
        let data = Dataset.circles(count: 64, seed: 3)
        for clipping in [GradientClipping.norm(1e-3), .value(1e-4), .perTensor(1e-3), .adaptive(clipFactor: 1e-4)] {
            let model = withManualSeed(3) { MLP(sizes: [2, 16, 2]) }
            let before = model.stateDictionary()
            let trainer = Trainer(
                model: model, optimizer: SGD(model.parameters, learningRate: 1), loss: .softmaxCrossEntropy,
                options: TrainingOptions(epochs: 1, batchSize: 64, shuffle: false, clipping: clipping, progress: .silent))
            // The unclipped gradient norm of the same batch, computed independently.
            let twin = withManualSeed(3) { MLP(sizes: [2, 16, 2]) }
            softmaxCrossEntropy(logits: twin(data.features), labels: data.labels!).backward()
            let norm = gradientNorm(twin.parameters)
            let history = try trainer.fit(data)
            #expect(Swift.abs(history.steps[0].gradientNorm - norm) <= 1e-6 * norm, "\(clipping)")
            var change: Float = 0
            for (name, tensor) in model.stateDictionary() {
                change = Swift.max(change, zip(tensor.scalars, before[name]!.scalars).map { Swift.abs($0 - $1) }.max() ?? 0)
            }
            #expect(change > 0 && change <= 1.1e-3, "\(clipping): largest change \(change) with lr 1")
        }
    }

    @Test("the JSON-lines log has one object per step and per epoch")
    func log() throws {
        let directory = try temporaryDirectory()
        let path = directory + "/log.jsonl"
        let model = withManualSeed(4) { MLP(sizes: [2, 4, 2]) }
        let trainer = Trainer(
            model: model, optimizer: Adam(model.parameters), loss: .softmaxCrossEntropy,
            options: TrainingOptions(epochs: 2, batchSize: 2, progress: .silent, logPath: path))
        let history = try trainer.fit(Dataset.xor())
        let text = String(decoding: try FileIO.readAll(path).get(), as: UTF8.self)
        let lines = try text.split(separator: "\n").map { try JSON.parse(String($0)) }
        #expect(lines.count == 4 + 2)
        let steps = lines.filter { $0.objectValue?["type"]?.stringValue == "step" }
        #expect(steps.map { Float($0.objectValue!["loss"]!.numberValue!) } == history.steps.map(\.loss))
        let epochs = lines.filter { $0.objectValue?["type"]?.stringValue == "epoch" }
        #expect(epochs.map { $0.objectValue!["epoch"]!.integerValue! } == [1, 2])
    }

    @Test("withManualSeed gives the same model whatever other threads draw, and leaves the shared generator alone")
    func scopedSeed() {
        let reference = withManualSeed(11) { MLP(sizes: [8, 16, 4], dropout: 0.5) }.stateDictionary()
        manualSeed(99)
        let sharedBefore = SharedRandom.state
        // Eight threads build models at once, each in its own scope, while others draw from the shared generator.
        nonisolated(unsafe) var built: [[String: Tensor]] = Array(repeating: [:], count: 8)
        DispatchQueue.concurrentPerform(iterations: 16) { i in
            if i % 2 == 0 {
                built[i / 2] = withManualSeed(11) { MLP(sizes: [8, 16, 4], dropout: 0.5) }.stateDictionary()
            }
        }
        for model in built {
            for (name, tensor) in reference { expectIdentical(model[name]!.scalars, tensor.scalars, name) }
        }
        #expect(SharedRandom.state == sharedBefore)
        // Nested scopes: the inner one wins, the outer one resumes where it was.
        let (outer1, inner, outer2) = withManualSeed(1) {
            (Linear(inputSize: 2, outputSize: 2).weight.value.scalars, withManualSeed(2) { Linear(inputSize: 2, outputSize: 2).weight.value.scalars },
             Linear(inputSize: 2, outputSize: 2).weight.value.scalars)
        }
        let (plain1, plain2) = withManualSeed(1) { (Linear(inputSize: 2, outputSize: 2).weight.value.scalars, Linear(inputSize: 2, outputSize: 2).weight.value.scalars) }
        #expect(outer1 == plain1 && outer2 == plain2 && inner == withManualSeed(2) { Linear(inputSize: 2, outputSize: 2).weight.value.scalars })
    }
}
