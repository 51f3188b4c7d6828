// The training loop: accuracy on the embedded digits, early stopping (and its resume), events,
// schedules and their units, custom losses, divergence, callbacks and the log's failures.
import Dispatch
import Testing
#if canImport(Glibc)
import Glibc
#endif

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

    @Test("an empty training or validation set is refused before the first step, not trained on with a loss of NaN")
    func emptyData() throws {
        let data = Dataset.twoSpirals(countPerClass: 10, seed: 1)
        let model = withManualSeed(1) { MLP(sizes: [2, 8, 2]) }
        let trainer = Trainer(
            model: model, optimizer: SGD(model.parameters), loss: .softmaxCrossEntropy,
            options: TrainingOptions(epochs: 1, progress: .silent))
        #expect(throws: DataError.self) { try trainer.fit(data.subset([])) }
        #expect(throws: DataError.self) { try trainer.fit(data, validation: data.subset([])) }
        #expect(trainer.completedSteps == 0 && trainer.completedEpochs == 0)
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
            options: TrainingOptions(epochs: 5, batchSize: 16, schedule: .perEpoch(StepDecay(stepSize: 2, gamma: 0.5)), progress: .silent))
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
            options: TrainingOptions(epochs: 1, batchSize: 16, schedule: .perStep(StepDecay(stepSize: 1, gamma: 0.5)), progress: .silent))
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

    @Test("the JSON-lines log has one object per step, per sampled step's layers and per epoch")
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
        #expect(lines.count == 4 + 4 + 2, "every step is sampled by default")
        #expect(lines.filter { $0.objectValue?["type"]?.stringValue == "layers" }.count == 4)
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

    @Test("a custom loss closure trains; a loss's target kind is checked against the data")
    func customLoss() throws {
        let data = Dataset.xor(copies: 16, noise: 0.1)
        let model = withManualSeed(12) { MLP(sizes: [2, 8, 2]) }
        // Cross-entropy written by hand from logSoftmax: the same numbers as the built-in loss.
        let handWritten = LossFunction(name: "hand-written cross-entropy", targets: .labels) { output, batch in
            negativeLogLikelihood(logProbabilities: output.logSoftmax(alongAxis: -1), labels: batch.labels!)
        }
        let twin = withManualSeed(12) { MLP(sizes: [2, 8, 2]) }
        let options = TrainingOptions(epochs: 3, batchSize: 16, progress: .silent)
        let custom = try Trainer(model: model, optimizer: SGD(model.parameters, learningRate: 0.1), loss: handWritten, options: options).fit(data)
        let builtIn = try Trainer(model: twin, optimizer: SGD(twin.parameters, learningRate: 0.1), loss: .softmaxCrossEntropy, options: options).fit(data)
        expectClose(custom.steps.map(\.loss), builtIn.steps.map(\.loss), relative: 1e-5)
        #expect(custom.epochs.allSatisfy { $0.accuracy != nil })
        let regression = try Dataset(features: Tensor(zeros: [4, 2]), targets: Tensor(zeros: [4, 2]))
        let error = #expect(throws: TrainingError.self) {
            try Trainer(model: model, optimizer: SGD(model.parameters), loss: handWritten, options: options).fit(regression)
        }
        #expect(error?.description.contains("hand-written cross-entropy needs integer class labels") == true)
        // `.any`: an autoencoder's loss reads only the features.
        let autoencoder = withManualSeed(13) { MLP(sizes: [2, 4, 2]) }
        let reconstruction = LossFunction(name: "reconstruction", targets: .any) { output, batch in meanSquaredError(predicted: output, expected: batch.features) }
        let trained = try Trainer(model: autoencoder, optimizer: Adam(autoencoder.parameters, learningRate: 0.01), loss: reconstruction, options: options).fit(data)
        #expect(trained.epochs.last!.loss < trained.epochs.first!.loss && trained.epochs.last!.accuracy == nil)
    }

    @Test("accuracy counts the examples the epoch's batches held; every epoch reports its skipped steps")
    func accuracyAndSkips() throws {
        let data = Dataset.xor(copies: 10, noise: 0.1)  // 40 examples
        let model = withManualSeed(14) { MLP(sizes: [2, 8, 2]) }
        let trainer = Trainer(
            model: model, optimizer: SGD(model.parameters, learningRate: 0.1), loss: .softmaxCrossEntropy,
            options: TrainingOptions(epochs: 1, batchSize: 16, shuffle: false, dropsLastBatch: true, progress: .silent))
        var correct = 0
        var seen = 0
        trainer.onStep = { _ in }
        let before = withManualSeed(14) { MLP(sizes: [2, 8, 2]) }
        // The predictions of the two batches taken (32 examples), each made before its own step.
        let batches = { () -> [Batch] in var g: SeededGenerator? = nil; return Array(data.batches(size: 16, shuffledBy: &g).prefix(2)) }()
        let optimizer = SGD(before.parameters, learningRate: 0.1)
        for batch in batches {
            let logits = before(batch.features)
            correct += zip(withoutGradients { logits.argmax() }, batch.labels!).filter { $0 == $1 }.count
            seen += batch.count
            softmaxCrossEntropy(logits: logits, labels: batch.labels!).backward()
            optimizer.step()
            optimizer.zeroGradients()
        }
        let history = try trainer.fit(data)
        #expect(seen == 32)
        #expect(history.epochs[0].accuracy == Float(correct) / 32)
        #expect(history.epochs[0].skippedSteps == 0 && history.skippedSteps == 0)
    }

    @Test("a run whose steps stay non-finite stops after N skipped in a row, and says it diverged")
    func terminateOnNonFinite() throws {
        let input = randomTensor([64, 16], seed: 15)
        let data = try Dataset(features: input, labels: (0..<64).map { $0 % 4 })
        let model = withManualSeed(16) { Sequential([Linear(inputSize: 16, outputSize: 8), Poison(on: Set(3...1000)), Linear(inputSize: 8, outputSize: 4)]) }
        let trainer = Trainer(
            model: model, optimizer: SGD(model.parameters, learningRate: 0.1), loss: .softmaxCrossEntropy,
            options: TrainingOptions(epochs: 100, batchSize: 8, progress: .silent, maximumConsecutiveSkippedSteps: 5))
        let history = try trainer.fit(data)
        #expect(history.diverged)
        #expect(history.steps.count == 2 + 5, "two good steps, then five skipped")
        #expect(history.skippedSteps == 5 && history.epochs.isEmpty)
        #expect(history.stoppedEarly?.contains("5 steps in a row") == true, "\(history.stoppedEarly ?? "")")
        // A second fit starts afresh: the stop is not carried over.
        let calm = withManualSeed(16) { MLP(sizes: [16, 8, 4]) }
        let again = Trainer(
            model: calm, optimizer: SGD(calm.parameters, learningRate: 0.1), loss: .softmaxCrossEntropy,
            options: TrainingOptions(epochs: 1, batchSize: 8, progress: .silent))
        try again.fit(data)
        let second = try { () -> History in again.options.epochs = 2; return try again.fit(data) }()
        #expect(second.steps.count == 8 && !second.diverged)
    }

    @Test("a stop requested by the monitor's policy does not carry over to the next fit")
    func stopIsReset() throws {
        let input = randomTensor([32, 16], seed: 17)
        let data = try Dataset(features: input, labels: (0..<32).map { $0 % 4 })
        let model = withManualSeed(18) { Sequential([Linear(inputSize: 16, outputSize: 8), Poison(on: [2]), Linear(inputSize: 8, outputSize: 4)]) }
        let trainer = Trainer(
            model: model, optimizer: SGD(model.parameters, learningRate: 0.1), loss: .softmaxCrossEntropy,
            options: TrainingOptions(epochs: 1, batchSize: 8, progress: .silent), monitor: GradientMonitor(model: model, policy: .stop))
        let first = try trainer.fit(data)
        #expect(first.steps.count == 2 && first.diverged)
        let second = try trainer.fit(data)
        #expect(second.steps.count == 4 && !second.diverged, "the whole epoch 1 again, not one step")
    }

    @Test("early stopping resumed from a checkpoint ends where the straight run ends, with the best weights checkpointed")
    func earlyStoppingResume() throws {
        let data = Dataset.twoSpirals(countPerClass: 40, seed: 1)
        let validation = Dataset.twoSpirals(countPerClass: 40, noise: 0.4, seed: 2)
        func make(_ seed: UInt64) -> Trainer {
            let model = withManualSeed(seed) { MLP(sizes: [2, 32, 32, 2], dropout: 0.1) }
            return Trainer(
                model: model, optimizer: Adam(model.parameters, learningRate: 0.05), loss: .softmaxCrossEntropy,
                options: TrainingOptions(epochs: 200, batchSize: 8, earlyStopping: EarlyStopping(patience: 3), progress: .silent))
        }
        let directory = try temporaryDirectory()
        // Straight through, checkpointing every epoch as `gradkit train --checkpoint` does.
        let straight = make(1)
        straight.onEpoch = { _ in try? straight.checkpoint().write(to: directory + "/straight.safetensors"); return .proceed }
        let full = try straight.fit(data, validation: validation)
        #expect(full.stoppedEarly?.contains("early stopping") == true)
        let stoppedAt = full.epochs.count
        #expect(stoppedAt > 3, "the interruption after epoch 3 comes before the stop")
        // The final checkpoint holds the model the run reports: the best weights, restored.
        let final = try Checkpoint.read(from: directory + "/straight.safetensors")
        for (name, tensor) in straight.model.stateDictionary() { expectIdentical(final.model[name]!.scalars, tensor.scalars, name) }
        // Interrupted after 3 epochs, resumed from its checkpoint by a fresh trainer.
        let first = make(1)
        first.options.epochs = 3
        try first.fit(data, validation: validation)
        try first.checkpoint().write(to: directory + "/half.safetensors")
        let resumed = make(77)
        try resumed.restore(Checkpoint.read(from: directory + "/half.safetensors"))
        resumed.onEpoch = { _ in try? resumed.checkpoint().write(to: directory + "/resumed.safetensors"); return .proceed }
        let rest = try resumed.fit(data, validation: validation)
        #expect(resumed.completedEpochs == stoppedAt, "no extra epoch")
        #expect(rest.epochs.map(\.validationLoss) == Array(full.epochs.suffix(rest.epochs.count).map(\.validationLoss)))
        let again = try Checkpoint.read(from: directory + "/resumed.safetensors")
        for (name, tensor) in final.model { expectIdentical(again.model[name]!.scalars, tensor.scalars, name) }
        // Resuming the finished run trains nothing and says why.
        let finished = make(5)
        try finished.restore(again)
        let nothing = try finished.fit(data, validation: validation)
        #expect(nothing.steps.isEmpty && nothing.stoppedEarly?.contains("early stopping") == true)
    }

    @Test("a log that cannot be opened is an error before the first step")
    func logCannotOpen() throws {
        let directory = try temporaryDirectory()
        for path in [directory + "/missing/log.jsonl", directory, "", "/dev/null"] {
            let model = withManualSeed(19) { MLP(sizes: [2, 4, 2]) }
            let trainer = Trainer(
                model: model, optimizer: Adam(model.parameters), loss: .softmaxCrossEntropy,
                options: TrainingOptions(epochs: 1, batchSize: 2, progress: .silent, logPath: path))
            var steps = 0
            trainer.onStep = { _ in steps += 1 }
            #expect(throws: TrainingError.self, "\(path)") { try trainer.fit(Dataset.xor()) }
            #expect(steps == 0 && trainer.completedSteps == 0, "\(path)")
        }
    }

    @Test("a log write that fails (file size limit: EFBIG) ends training with an error, after the epoch's checkpoint, leaving whole lines")
    func logWriteFails() async {
        await #expect(processExitsWith: .success) {
            limitFileSize(2048)
            let directory = try! temporaryDirectory()
            let model = withManualSeed(20) { MLP(sizes: [2, 4, 2]) }
            let trainer = Trainer(
                model: model, optimizer: Adam(model.parameters), loss: .softmaxCrossEntropy,
                options: TrainingOptions(epochs: 50, batchSize: 2, progress: .silent, logPath: directory + "/log.jsonl"))
            var checkpointed = 0
            trainer.onEpoch = { _ in checkpointed += 1; return .proceed }
            do {
                try trainer.fit(Dataset.xor())
                exit(1)
            } catch TrainingError.cannotWrite(let path, let reason) {
                guard path.hasSuffix("log.jsonl"), reason.contains("too large"), checkpointed == trainer.completedEpochs, checkpointed < 50 else { exit(2) }
                // The write that failed part way was taken back: every line the log holds is whole.
                let log = try! FileIO.readAll(directory + "/log.jsonl").get()
                guard !log.isEmpty, log.last == UInt8(ascii: "\n"), (try? RunHistory(parsing: log)) != nil else { exit(4) }
                exit(0)
            } catch {
                exit(3)
            }
        }
    }

    @Test("a log that ends inside a line gets a line break before the new lines, which stay whole")
    func logAfterTornLine() throws {
        let path = try temporaryDirectory() + "/log.jsonl"
        let torn = Array(#"{"type":"step","ep"#.utf8)
        try FileIO.writeAtomically(torn, to: path).get()
        let model = withManualSeed(22) { MLP(sizes: [2, 4, 2]) }
        let trainer = Trainer(
            model: model, optimizer: Adam(model.parameters), loss: .softmaxCrossEntropy,
            options: TrainingOptions(epochs: 1, batchSize: 2, progress: .silent, logPath: path))
        try trainer.fit(Dataset.xor())
        let log = try FileIO.readAll(path).get()
        #expect(Array(log.prefix(torn.count + 1)) == torn + [UInt8(ascii: "\n")])
        #expect(throws: Never.self) { try RunHistory(parsing: Array(log.dropFirst(torn.count + 1))) }
    }

    @Test("anomaly mode ends training at the first NaN with the operation that made it")
    func anomalyMode() throws {
        let data = Dataset.xor(copies: 4)
        let model = withManualSeed(21) { Sequential([Linear(inputSize: 2, outputSize: 4), Poison(on: [2]), Linear(inputSize: 4, outputSize: 2)]) }
        let trainer = Trainer(
            model: model, optimizer: SGD(model.parameters, learningRate: 0.1), loss: .softmaxCrossEntropy,
            options: TrainingOptions(epochs: 1, batchSize: 4, progress: .silent, detectsAnomalies: true))
        let error = #expect(throws: AnomalyError.self) { try trainer.fit(data) }
        #expect(error?.operation == "*" && error?.direction == .forward, "\(String(describing: error))")
        #expect(trainer.completedSteps == 2)
    }

    @Test("the log carries per-layer records a report can be redrawn from; TensorBoard and report callbacks write their files")
    func diagnosticsLeaveTheProcess() throws {
        let directory = try temporaryDirectory()
        let data = Dataset.twoSpirals(countPerClass: 64, seed: 22)
        let model = withManualSeed(22) { MLP(sizes: [2, 16, 16, 2]) }
        let trainer = Trainer(
            model: model, optimizer: Adam(model.parameters, learningRate: 0.01), loss: .softmaxCrossEntropy,
            options: TrainingOptions(epochs: 3, batchSize: 32, progress: .silent, logPath: directory + "/log.jsonl"))
        let board = TensorBoardLogger(directory: directory + "/board")
        trainer.callbacks = [board, ReportWriter(directory: directory + "/report")]
        let history = try trainer.fit(data)
        let fromLog = try RunHistory(jsonLinesAt: directory + "/log.jsonl")
        #expect(fromLog.layers.map(\.path) == ["0", "2", "4"])
        #expect(fromLog.samples.count == history.steps.count, "every step sampled by default")
        #expect(fromLog.steps.map(\.learningRate) == history.steps.map(\.learningRate))
        #expect(fromLog.samples.allSatisfy { $0.layers.allSatisfy { $0.verdict != nil } })
        let report = String(decoding: try FileIO.readAll(directory + "/report/report.md").get(), as: UTF8.self)
        #expect(report.contains("| 1 |") || report.contains("layer"), "\(report.prefix(400))")
        let figures = directoryEntries(directory + "/report/figures").filter { $0.hasSuffix(".svg") }
        #expect(figures.count >= 4, "\(figures)")
        let events = directoryEntries(directory + "/board")
        #expect(events.count == 1 && events[0].hasPrefix("events.out.tfevents."), "\(events)")
        #expect(board.writer == nil, "closed at the end")
    }
}
