// gradkit train — train an MLP from the command line. SPDX-License-Identifier: MIT
import GradKit

/// Runs `gradkit train`.
func trainCommand(_ arguments: ParsedArguments) throws {
    let clock = ContinuousClock()
    let started = clock.now
    var configuration = try TrainConfiguration(arguments)
    let distributedRun = configuration.plan.distributed ? try DistributedRun(joining: &configuration) : nil
    if let threads = configuration.outputs.threads { Kernels.threadCount = threads }
    try configuration.runFiles.check()
    // Held until the process ends: a second run writing the same checkpoint, or appending to the same log, is refused.
    let outputs = configuration.outputs
    let locks = try [(Option.checkpoint, outputs.checkpoint), (.log, outputs.log)].compactMap { option, path in
        try path.map { try lockOutput($0, option: option.flagName) }
    }
    defer { for lock in locks { lock.release() } }
    let run = try TrainingRun(configuration, data: try configuration.data.load(seed: configuration.plan.seed))
    if let path = configuration.outputs.resume { try run.restore(from: path) }
    try distributedRun?.attach(to: run.trainer)
    let fitStarted = clock.now
    let (history, result) = try configuration.plan.withKernelSettings {
        let history = try run.fitRemaining()
        return (history, run.result(history, trainingSeconds: fitStarted.duration(to: clock.now).seconds))
    }
    if !configuration.outputs.quiet { run.printSummary(result) }
    if configuration.outputs.json { print(result.json(totalSeconds: started.duration(to: clock.now).seconds).text) }
    if result.diverged {
        let reason = history?.stoppedEarly ?? "non-finite gradients"
        throw CommandError(reason.hasSuffix("diverged") ? reason : "training diverged: \(reason)")
    }
}

/// Takes the lock a run holds on an output for its whole life.
func lockOutput(_ path: String, option: String) throws(CommandError) -> OutputLock {
    do {
        return try OutputLock(path: path)
    } catch {
        throw CommandError("\(option) \(path.shownInMessage): \(error.message)")
    }
}

extension TrainConfiguration {
    /// The files the run reads and writes; `--resume X --checkpoint X`
    /// continues a run into its own checkpoint, which is replaced atomically after the next epoch.
    var runFiles: RunFiles {
        var files = RunFiles()
        for path in data.source.files { files.input(data.source.optionName, path) }
        for path in data.testSource?.files ?? [] { files.input(Option.test.flagName, path) }
        files.input(Option.resume.flagName, outputs.resume)
        files.file(Option.checkpoint.flagName, outputs.checkpoint)
        files.file(Option.log.flagName, outputs.log)
        files.directory(Option.report.flagName, outputs.report, writes: ["report.md", "figures/"])
        files.directory(Option.tensorboard.flagName, outputs.tensorboard, writes: [])
        files.allowSameFile(output: Option.checkpoint.flagName, input: Option.resume.flagName)
        return files
    }
}

/// Writes the checkpoint after every epoch (after early stopping and
/// `--stop-after`, so it holds the model the run reports), unless resuming
/// would refuse it: a diverged run's NaN or infinite weights never replace
/// the last checkpoint a resume accepts.
final class CheckpointWriter: TrainingCallback {
    let path: String
    let configuration: [String: String]
    private var lastWritten: Int?
    private var refused = false

    init(path: String, configuration: [String: String]) {
        self.path = path
        self.configuration = configuration
    }

    func epochDidEnd(_ trainer: Trainer, _ record: EpochRecord) throws {
        let checkpoint = trainer.checkpoint(configuration: configuration)
        do {
            try checkpoint.validate(file: path)
        } catch {
            // Once: NaN weights stay NaN, so every later epoch would say the same.
            if !refused {
                let kept = lastWritten.map { "the file keeps epoch \($0)" } ?? "the file is left as it was"
                printError("note: from epoch \(record.epoch) on, the checkpoint would not resume (\(error)); \(kept)")
            }
            refused = true
            return
        }
        try checkpoint.write(to: path)
        lastWritten = record.epoch
    }
}

/// The model, optimizer and trainer of one `gradkit train` run.
final class TrainingRun {
    let configuration: TrainConfiguration
    let data: LoadedData
    let widths: [Int]
    let trainer: Trainer
    private var resumedNothingToTrain: String?

    init(_ configuration: TrainConfiguration, data: LoadedData) throws {
        self.configuration = configuration
        self.data = data
        let plan = configuration.plan
        widths = try configuration.model.widths(for: data.train, source: configuration.data.source, batchSize: plan.batchSize)
        if configuration.model.batchNorm, data.train.count < 2 {
            throw CommandError("--batch-norm needs 2 or more training examples (BatchNorm normalizes over the batch), the training part has \(data.train.count)")
        }
        let model = configuration.model.makeModel(widths, seed: plan.seed)
        let optimizer = configuration.optimizer.makeOptimizer(model.parameters)
        let stepsPerEpoch = (data.train.count + plan.batchSize - 1) / plan.batchSize
        let schedule = try plan.schedule.make(
            epochs: plan.epochs, stepsPerEpoch: stepsPerEpoch, baseLearningRate: optimizer.learningRate,
            learningRate: configuration.optimizer.kind.specification(.learningRate)!)
        let options = TrainingOptions(
            epochs: plan.epochs, batchSize: plan.batchSize, seed: plan.seed,
            // A last batch of one example cannot be batch-normalized: drop it, as PyTorch's drop_last.
            dropsLastBatch: configuration.model.batchNorm && data.train.count % plan.batchSize == 1,
            clipping: plan.clipping, schedule: schedule, earlyStopping: plan.earlyStoppingPatience.map { EarlyStopping(patience: $0) },
            progress: configuration.outputs.quiet ? .silent : .automatic, logPath: configuration.outputs.log,
            maximumConsecutiveSkippedSteps: plan.maximumSkippedSteps, detectsAnomalies: plan.detectsAnomalies)
        trainer = Trainer(model: model, optimizer: optimizer, loss: configuration.loss, options: options)
        trainer.callbacks = callbacks()
        if let last = configuration.outputs.stopAfter { trainer.onEpoch = { $0.epoch >= last ? .stop : .proceed } }
    }

    private func callbacks() -> [any TrainingCallback] {
        let outputs = configuration.outputs
        var callbacks: [any TrainingCallback] = []
        if let path = outputs.checkpoint {
            let settings = configuration.settings(widths: widths, loaded: data)
            callbacks.append(CheckpointWriter(path: path, configuration: RecordedSettings.metadata(settings, configuration: configuration)))
        }
        if let directory = outputs.report { callbacks.append(ReportWriter(directory: directory)) }
        if let directory = outputs.tensorboard { callbacks.append(TensorBoardLogger(directory: directory)) }
        return callbacks
    }

    /// Restores a checkpoint after checking it: finite contents, the same
    /// options and no loss scaling (or `--accept-changed-options`), and whether anything is left to train.
    func restore(from path: String) throws {
        // Checkpoint.read validates what it reads (finite tensors, counters, hyperparameters).
        var checkpoint = try Checkpoint.read(from: path)
        let outputs = configuration.outputs
        try RecordedSettings.check(
            checkpoint.configuration, configuration.settings(widths: widths, loaded: data), file: path, accept: outputs.acceptsChangedOptions)
        checkpoint.configuration = try RecordedSettings.withoutLossScaling(checkpoint.configuration, file: path, accept: outputs.acceptsChangedOptions)
        try trainer.restore(checkpoint, file: path)
        // The restored state brought back the checkpoint's hyperparameters; accepted changes replace them.
        if outputs.acceptsChangedOptions { try configuration.optimizer.apply(to: trainer.optimizer) }
        if let recorded = checkpoint.configuration[RecordedSettings.epochsKey], recorded != "\(configuration.plan.epochs)",
            configuration.plan.schedule.spansEpochs
        {
            printError("note: --epochs was \(recorded) and is now \(configuration.plan.epochs): the \(configuration.plan.schedule.canonical) schedule spans --epochs, so its rates change")
        }
        if let finished = trainer.finished {
            resumedNothingToTrain = "the checkpoint's run had ended (\(finished)); nothing to train"
        } else if trainer.completedEpochs >= configuration.plan.epochs {
            resumedNothingToTrain = "the checkpoint is at epoch \(trainer.completedEpochs) and --epochs is \(configuration.plan.epochs); nothing to train"
        }
        if !outputs.quiet {
            print(resumedNothingToTrain ?? "resumed from \(path) after epoch \(trainer.completedEpochs) (step \(trainer.completedSteps))")
        }
    }

    /// Trains the epochs left; nil when the restored checkpoint left none.
    func fitRemaining() throws -> History? {
        if resumedNothingToTrain != nil { return nil }
        if !configuration.outputs.quiet {
            let counts = "\(data.validation?.count ?? 0) validation, " + (data.test.map { "\($0.count) test" } ?? "no test set")
            let precision = configuration.plan.matmulPrecision == .float32 ? "" : ", \(configuration.plan.matmulPrecision) matmuls"
            print("training \(widths.map(String.init).joined(separator: "-")) \(configuration.model.activation.rawValue) MLP on \(data.train.count) examples (\(counts)), \(configuration.optimizer.kind.rawValue)\(precision)")
        }
        return try trainer.fit(data.train, validation: data.validation)
    }
}
