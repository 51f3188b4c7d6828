// gradkit train — train an MLP from the command line. SPDX-License-Identifier: MIT
#if canImport(Glibc)
import Glibc
#endif
import GradKit

let trainUsage = """
    usage: gradkit train [options]

    Data (one of; default --dataset digits):
      --dataset NAME          digits (embedded 8x8 handwritten digits), xor, spirals, circles
      --idx IMAGES,LABELS     a pair of IDX files (MNIST layout); pixels scaled by 1/255
      --csv PATH              numeric CSV, optional header; --label-column N (default -1: last)
      --regression            the CSV's label column is a float target (mean squared error)
      --test PATH             a separate test file in the same format (IMAGES,LABELS for --idx);
                              then nothing is held out of the training file for testing
      --test-fraction F       held out for the final test (default 0.2)
      --validation-fraction F held out for validation each epoch (default 0, as Keras)
      --normalize HOW         standard: per-feature (x - mean) / std (default); scale: divide by the
                              largest |x|; none (the default for digits, whose pixels share one
                              0-16 scale). Statistics come from the training part only.
      --no-stratify           split at random (default: every part keeps the class balance)

    Model (an MLP: Linear, [BatchNorm], activation, [Dropout], ..., Linear):
      --layers 64,128,10      widths from input to output (default per data set)
      --activation NAME       relu (default), sigmoid, tanh, gelu, leaky-relu, elu, softplus
      --init NAME             default (PyTorch's), xavier-uniform, xavier-normal, he-uniform,
                              he-normal, lecun-normal, orthogonal, zeros (Xavier and orthogonal
                              use the activation's gain, as nn.init.calculate_gain)
      --batch-norm  --dropout P  --residual

    Optimization:
      --optimizer NAME        adam (default), adamw, sgd, rmsprop, adagrad
      --lr X  --momentum X  --nesterov  --weight-decay X  --beta1 X  --beta2 X  --eps X  --alpha X
      --clip-norm X | --clip-value X | --agc FACTOR
      --schedule SPEC         constant (default), step:SIZE[:GAMMA], multistep:E1/E2/...[:GAMMA],
                              exponential:GAMMA, cosine[:MIN_LR], warmup:EPOCHS, onecycle[:MAX_LR]
      --epochs N (default 30)  --batch-size N (default 32)  --seed N (default 0)
      --early-stopping PATIENCE

    Output:
      --checkpoint PATH       write a safetensors checkpoint after every epoch (atomically)
      --resume PATH           continue from a checkpoint up to --epochs in total (keep --epochs
                              the same: cosine and onecycle schedules span all of them)
      --stop-after N          end after epoch N of the --epochs planned (to resume later)
      --log PATH              append one JSON object per step and per epoch
      --json                  end with one JSON line: test_accuracy, train_loss, epochs, seconds, ...
      --quiet                 no per-epoch progress
      --threads N             kernel threads (default: all CPUs)
      --distributed           data-parallel on the processes mpirun starts (docs/distributed.md)
    """

/// Everything `gradkit train` was asked to do, validated.
struct TrainConfiguration {
    var dataSource = "digits"
    var labelColumn = -1
    var regression = false
    var testFraction = 0.2
    var testSource: String?
    var validationFraction = 0.0
    var normalize = "standard"
    var stratify = true
    var layers: [Int]?
    var activation = Activation.relu
    var activationName = "relu"
    var initializer: Initializer?
    var batchNorm = false
    var dropout: Float = 0
    var residual = false
    var optimizer = "adam"
    var learningRate: Float?
    var momentum: Float = 0
    var nesterov = false
    var weightDecay: Float?
    var beta1: Float = 0.9
    var beta2: Float = 0.999
    var epsilon: Float?
    var alpha: Float = 0.99
    var clipping: GradientClipping?
    var schedule = "constant"
    var epochs = 30
    var batchSize = 32
    var seed: UInt64 = 0
    var earlyStoppingPatience: Int?
    var checkpoint: String?
    var resume: String?
    var stopAfter: Int?
    var log: String?
    var json = false
    var quiet = false
    var threads: Int?
    /// The command line, stored in checkpoints.
    var commandLine: [String] = []

    /// - Parameter extra: reads the options of a command that builds on these (lr-find).
    init(_ commandLine: [String], extraFlags: Set<String> = [], extra: (inout Arguments) throws -> Void = { _ in }) throws {
        self.commandLine = commandLine
        var a = try Arguments(
            commandLine, flagNames: extraFlags.union(["regression", "no-stratify", "batch-norm", "residual", "nesterov", "json", "quiet"]))
        let sources = [a.string("dataset").map { "dataset:\($0)" }, a.string("idx").map { "idx:\($0)" }, a.string("csv").map { "csv:\($0)" }].compactMap { $0 }
        guard sources.count <= 1 else { throw UsageError("give only one of --dataset, --idx and --csv") }
        if let source = sources.first {
            if source.hasPrefix("dataset:") {
                dataSource = String(source.dropFirst(8))
                guard ["digits", "xor", "spirals", "circles"].contains(dataSource) else {
                    throw UsageError("--dataset must be one of digits, xor, spirals, circles, got '\(dataSource)'")
                }
            } else {
                dataSource = source
            }
        }
        if source(is: "idx"), dataSource.split(separator: ",").count != 2 { throw UsageError("--idx needs IMAGES,LABELS (two paths separated by a comma)") }
        testSource = a.string("test")
        if testSource != nil && !(source(is: "idx") || source(is: "csv")) { throw UsageError("--test needs --idx or --csv training data") }
        if source(is: "idx"), let testSource, testSource.split(separator: ",").count != 2 { throw UsageError("--test needs IMAGES,LABELS with --idx") }
        labelColumn = try a.int("label-column") ?? -1
        regression = a.flag("regression")
        if regression && !source(is: "csv") { throw UsageError("--regression applies to --csv data only") }
        testFraction = Double(try a.float("test-fraction", atLeast: 0, below: 1) ?? (testSource == nil ? 0.2 : 0))
        if testSource != nil && testFraction > 0 { throw UsageError("give either --test or --test-fraction") }
        validationFraction = Double(try a.float("validation-fraction", atLeast: 0, below: 1) ?? 0)
        guard testFraction + validationFraction < 1 else { throw UsageError("--test-fraction plus --validation-fraction must be below 1") }
        normalize = try a.choice("normalize", ["standard", "scale", "none"]) ?? (dataSource == "digits" ? "none" : "standard")
        stratify = !a.flag("no-stratify") && !regression
        if let text = a.string("layers") {
            let widths = text.split(separator: ",", omittingEmptySubsequences: false).map { Int($0) }
            guard widths.count >= 2, widths.allSatisfy({ ($0 ?? 0) > 0 }) else {
                throw UsageError("--layers needs at least two positive widths separated by commas, got '\(text)'")
            }
            layers = widths.map { $0! }
        }
        if let name = try a.choice("activation", ["relu", "sigmoid", "tanh", "gelu", "leaky-relu", "elu", "softplus"]) {
            activationName = name
            activation = switch name {
            case "sigmoid": .sigmoid
            case "tanh": .tanh
            case "gelu": .gelu
            case "leaky-relu": .leakyRelu()
            case "elu": .elu()
            case "softplus": .softplus
            default: .relu
            }
        }
        if let name = try a.choice("init", ["default", "xavier-uniform", "xavier-normal", "he-uniform", "he-normal", "lecun-normal", "orthogonal", "zeros"]) {
            let gain = activation.nonlinearity.gain
            initializer = switch name {
            case "xavier-uniform": .xavierUniform(gain: gain)
            case "xavier-normal": .xavierNormal(gain: gain)
            case "he-uniform": .heUniform(nonlinearity: activation.nonlinearity)
            case "he-normal": .heNormal(nonlinearity: activation.nonlinearity)
            case "lecun-normal": .lecunNormal
            case "orthogonal": .orthogonal(gain: gain)
            case "zeros": .zeros
            default: nil
            }
        }
        batchNorm = a.flag("batch-norm")
        dropout = try a.float("dropout", atLeast: 0, below: 1) ?? 0
        residual = a.flag("residual")
        optimizer = try a.choice("optimizer", ["adam", "adamw", "sgd", "rmsprop", "adagrad"]) ?? "adam"
        learningRate = try a.float("lr", atLeast: 0)
        momentum = try a.float("momentum", atLeast: 0) ?? 0
        nesterov = a.flag("nesterov")
        if nesterov && (optimizer != "sgd" || momentum == 0) { throw UsageError("--nesterov needs --optimizer sgd and a --momentum above 0") }
        weightDecay = try a.float("weight-decay", atLeast: 0)
        beta1 = try a.float("beta1", atLeast: 0, below: 1) ?? 0.9
        beta2 = try a.float("beta2", atLeast: 0, below: 1) ?? 0.999
        epsilon = try a.float("eps", atLeast: 0)
        alpha = try a.float("alpha", atLeast: 0) ?? 0.99
        let clips: [GradientClipping] = [
            try a.float("clip-norm", atLeast: 0).map { .norm($0) }, try a.float("clip-value", atLeast: 0).map { .value($0) },
            try a.float("agc", atLeast: 0).map { .adaptive(clipFactor: $0) },
        ].compactMap { $0 }
        guard clips.count <= 1 else { throw UsageError("give only one of --clip-norm, --clip-value and --agc") }
        clipping = clips.first
        schedule = a.string("schedule") ?? "constant"
        epochs = try a.int("epochs", range: 0...1_000_000) ?? 30
        batchSize = try a.int("batch-size", range: 1...1_000_000) ?? 32
        seed = UInt64(try a.int("seed", range: 0...Int.max) ?? 0)
        earlyStoppingPatience = try a.int("early-stopping", range: 1...1_000_000)
        checkpoint = a.string("checkpoint")
        resume = a.string("resume")
        stopAfter = try a.int("stop-after", range: 1...1_000_000)
        log = a.string("log")
        json = a.flag("json")
        quiet = a.flag("quiet")
        threads = try a.int("threads", range: 1...4096)
        try extra(&a)
        try a.finish()
        _ = try makeSchedule(stepsPerEpoch: 1, baseLearningRate: 1e-3)
    }

    private func source(is kind: String) -> Bool { dataSource.hasPrefix(kind + ":") }

    /// Training, validation and test data, normalized with training statistics.
    func loadData() throws -> (train: Dataset, validation: Dataset?, test: Dataset) {
        var all: Dataset
        switch dataSource {
        case "digits": all = .digits()
        case "xor": all = .xor(copies: 100, noise: 0.15, seed: seed)
        case "spirals": all = .twoSpirals(countPerClass: 300, seed: seed)
        case "circles": all = .circles(count: 600, seed: seed)
        default: all = try load(dataSource)
        }
        let test = try testSource.map { try load(String(dataSource.prefix(4)) + $0) }
        if let test, let classes = test.classCount, let labels = all.labels, classes > all.classCount! {
            all = try Dataset(features: all.features, labels: labels, classCount: classes)
        }
        if let test, test.featureCount != all.featureCount {
            throw DataError.widthMismatch(dataset: test.featureCount, model: all.featureCount)
        }
        var fractions = [1 - testFraction - validationFraction, validationFraction, testFraction]
        let parts = try all.split(fractions.filter { $0 > 0 }, seed: seed, stratified: stratify)
        fractions.removeFirst()
        var validation = fractions[0] > 0 ? parts[1] : nil
        var testPart = test ?? parts[parts.count - 1]
        var train = parts[0]
        switch normalize {
        case "standard":
            let standardizer = Standardizer(fitting: train)
            train = try standardizer.transform(train)
            validation = try validation.map(standardizer.transform)
            testPart = try standardizer.transform(testPart)
        case "scale":
            let largest = train.features.scalars.reduce(Float(0)) { Swift.max($0, Swift.abs($1)) }
            if largest > 0 {
                train = try train.scaled(by: 1 / largest)
                validation = try validation.map { try $0.scaled(by: 1 / largest) }
                testPart = try testPart.scaled(by: 1 / largest)
            }
        default:
            break
        }
        return (train, validation, testPart)
    }

    /// A data file: `idx:IMAGES,LABELS` or `csv:PATH`.
    private func load(_ source: String) throws -> Dataset {
        let path = String(source.dropFirst(4))
        if source.hasPrefix("idx:") {
            let paths = path.split(separator: ",").map(String.init)
            return try .idx(images: paths[0], labels: paths[1])
        }
        return try .csv(path, labelColumn: labelColumn, regression: regression)
    }

    /// The default widths for a data set: one hidden layer (two for spirals, or with --residual).
    func widths(for data: Dataset) throws -> [Int] {
        let outputs = data.classCount ?? (data.targetValues?.shape.last ?? 1)
        guard let layers else {
            var hidden = switch dataSource {
            case "digits": [128]
            case "spirals": [64, 64]
            case "xor": [8]
            default: [32]
            }
            if residual, hidden.count == 1 { hidden.append(hidden[0]) }  // a block to wrap
            return [data.featureCount] + hidden + [outputs]
        }
        guard layers[0] == data.featureCount else {
            throw UsageError("--layers starts with \(layers[0]) inputs but the data has \(data.featureCount) features")
        }
        guard layers[layers.count - 1] == outputs else {
            throw UsageError("--layers ends with \(layers[layers.count - 1]) outputs but the data needs \(outputs)")
        }
        if residual, !(1..<(layers.count - 2)).contains(where: { layers[$0] == layers[$0 + 1] }) {
            throw UsageError("--residual wraps hidden layers whose input and output widths agree; give two equal hidden widths, e.g. --layers \(layers[0]),128,128,\(outputs)")
        }
        return layers
    }

    /// The MLP, initialized from --seed.
    func makeModel(_ widths: [Int]) -> MLP {
        manualSeed(seed)
        return MLP(sizes: widths, activation: activation, initializer: initializer, batchNorm: batchNorm, dropout: dropout, residual: residual)
    }

    func makeOptimizer(_ parameters: [Parameter]) -> Optimizer {
        switch optimizer {
        case "sgd":
            SGD(parameters, learningRate: learningRate ?? 0.01, momentum: momentum, weightDecay: weightDecay ?? 0, nesterov: nesterov)
        case "rmsprop":
            RMSprop(parameters, learningRate: learningRate ?? 1e-3, alpha: alpha, epsilon: epsilon ?? 1e-8, weightDecay: weightDecay ?? 0, momentum: momentum)
        case "adagrad":
            AdaGrad(parameters, learningRate: learningRate ?? 1e-2, weightDecay: weightDecay ?? 0, epsilon: epsilon ?? 1e-10)
        case "adamw":
            AdamW(parameters, learningRate: learningRate ?? 1e-3, beta1: beta1, beta2: beta2, epsilon: epsilon ?? 1e-8, weightDecay: weightDecay ?? 1e-2)
        default:
            Adam(parameters, learningRate: learningRate ?? 1e-3, beta1: beta1, beta2: beta2, epsilon: epsilon ?? 1e-8, weightDecay: weightDecay ?? 0)
        }
    }

    /// The schedule and whether it advances per step.
    func makeSchedule(stepsPerEpoch: Int, baseLearningRate: Float) throws -> (schedule: (any LearningRateSchedule)?, perStep: Bool) {
        let parts = schedule.split(separator: ":", omittingEmptySubsequences: false).map(String.init)
        func number(_ index: Int, _ fallback: Double? = nil) throws -> Double {
            guard index < parts.count else {
                if let fallback { return fallback }
                throw UsageError("--schedule \(parts[0]) needs a value, e.g. \(parts[0]):10")
            }
            guard let value = Double(parts[index]), value.isFinite, value >= 0 else {
                throw UsageError("--schedule: '\(parts[index])' is not a non-negative number")
            }
            return value
        }
        let maximumParts = ["constant": 1, "step": 3, "multistep": 3, "exponential": 2, "cosine": 2, "warmup": 2, "onecycle": 2]
        guard let allowed = maximumParts[parts[0]] else {
            throw UsageError("--schedule must be constant, step:SIZE[:GAMMA], multistep:E1/E2[:GAMMA], exponential:GAMMA, cosine[:MIN], warmup:EPOCHS or onecycle[:MAX_LR], got '\(schedule)'")
        }
        guard parts.count <= allowed else { throw UsageError("--schedule '\(schedule)' has too many fields") }
        switch parts[0] {
        case "step":
            let size = Int(try number(1))
            guard size > 0 else { throw UsageError("--schedule step needs a step size above 0") }
            return (StepDecay(stepSize: size, gamma: try number(2, 0.1)), false)
        case "multistep":
            guard parts.count > 1 else { throw UsageError("--schedule multistep needs milestones, e.g. multistep:10/20") }
            let milestones = parts[1].split(separator: "/").map { Int($0) }
            guard !milestones.isEmpty, milestones.allSatisfy({ ($0 ?? -1) >= 0 }) else { throw UsageError("--schedule multistep: milestones must be epochs separated by /, got '\(parts[1])'") }
            return (MultiStepDecay(milestones: milestones.map { $0! }, gamma: try number(2, 0.1)), false)
        case "exponential":
            return (ExponentialDecay(gamma: try number(1)), false)
        case "cosine":
            return (CosineAnnealing(period: Swift.max(epochs, 1), minimum: try number(1, 0)), false)
        case "warmup":
            let steps = Int(try number(1))
            guard steps > 0 else { throw UsageError("--schedule warmup needs a number of epochs above 0") }
            return (LinearWarmup(steps: steps), false)
        case "onecycle":
            let maximum = try number(1, Double(baseLearningRate) * 10)
            guard maximum > 0 else { throw UsageError("--schedule onecycle needs a maximum learning rate above 0") }
            return (OneCycle(maximum: maximum, totalSteps: Swift.max(epochs * stepsPerEpoch, 1)), true)
        default:
            return (nil, false)
        }
    }
}

/// Runs `gradkit train`.
func train(_ commandLine: [String]) throws {
    var distributed = false
    var configuration = try TrainConfiguration(commandLine, extraFlags: ["distributed"]) { distributed = $0.flag("distributed") }
    let distributedRun = distributed ? try DistributedRun(joining: &configuration) : nil
    if let threads = configuration.threads { Kernels.threadCount = threads }
    let clock = ContinuousClock()
    let started = clock.now
    let (trainSet, validationSet, testSet) = try configuration.loadData()
    let widths = try configuration.widths(for: trainSet)
    let model = configuration.makeModel(widths)
    let optimizer = configuration.makeOptimizer(model.parameters)
    let stepsPerEpoch = (trainSet.count + configuration.batchSize - 1) / configuration.batchSize
    let (schedule, perStep) = try configuration.makeSchedule(stepsPerEpoch: stepsPerEpoch, baseLearningRate: optimizer.learningRate)
    // A last batch of one example cannot be batch-normalized: drop it, as PyTorch's drop_last.
    let dropLast = configuration.batchNorm && trainSet.count % configuration.batchSize == 1
    let options = TrainingOptions(
        epochs: configuration.epochs, batchSize: configuration.batchSize, seed: configuration.seed, dropsLastBatch: dropLast,
        clipping: configuration.clipping, schedule: schedule.map { ScheduledLearningRate($0, unit: perStep ? .step : .epoch) },
        earlyStopping: configuration.earlyStoppingPatience.map { EarlyStopping(patience: $0) },
        progress: configuration.quiet ? .silent : .automatic, logPath: configuration.log)
    let trainer = Trainer(
        model: model, optimizer: optimizer, loss: configuration.regression ? .meanSquaredError : .softmaxCrossEntropy,
        options: options)
    try distributedRun?.attach(to: trainer)
    if let path = configuration.resume {
        try trainer.restore(try Checkpoint.read(from: path), file: path)
        if !configuration.quiet { print("resumed from \(path) after epoch \(trainer.completedEpochs) (step \(trainer.completedSteps))") }
    }
    let metadata = ["gradkit.command": (["gradkit", "train"] + configuration.commandLine).joined(separator: " ")]
    var checkpointError: Error?
    trainer.onEpoch = { record in
        if let path = configuration.checkpoint {
            do {
                try trainer.checkpoint(configuration: metadata).write(to: path)
            } catch {
                checkpointError = error
                return .stop
            }
        }
        if let last = configuration.stopAfter, record.epoch >= last { return .stop }
        return .proceed
    }
    if !configuration.quiet {
        print("training \(widths.map(String.init).joined(separator: "-")) \(configuration.activationName) MLP on \(trainSet.count) examples (\(validationSet?.count ?? 0) validation, \(testSet.count) test), \(configuration.optimizer)")
    }
    let fitStarted = clock.now
    let history = try trainer.fit(trainSet, validation: validationSet)
    let trainingSeconds = fitStarted.duration(to: clock.now)
    if let checkpointError { throw checkpointError }
    let test = trainer.evaluate(testSet)
    let trainLoss = history.epochs.last?.loss ?? trainer.evaluate(trainSet).loss
    let report = trainer.monitor.report
    let seconds = Double(trainingSeconds.components.seconds) + Double(trainingSeconds.components.attoseconds) * 1e-18
    let total = started.duration(to: clock.now)
    if !configuration.quiet {
        if let reason = history.stoppedEarly {
            print(configuration.stopAfter == trainer.completedEpochs ? "stopped after epoch \(trainer.completedEpochs) (--stop-after)" : reason)
        }
        let accuracy = test.accuracy.map { "accuracy \(format($0 * 100, digits: 2))%, " } ?? ""
        print("test: \(accuracy)loss \(format(test.loss, digits: 4)) on \(testSet.count) examples; \(history.epochs.count) epochs in \(format(Float(seconds), digits: 2)) s")
        print(report)
    }
    if configuration.json {
        var object: [(String, String)] = [
            ("test_accuracy", test.accuracy.map { jsonNumber(Double($0)) } ?? "null"),
            ("test_loss", jsonNumber(Double(test.loss))),
            ("train_loss", jsonNumber(Double(trainLoss))),
            ("validation_accuracy", history.epochs.last?.validationAccuracy.map { jsonNumber(Double($0)) } ?? "null"),
            ("epochs", "\(trainer.completedEpochs)"),
            ("epochs_this_run", "\(history.epochs.count)"),
            ("steps", "\(trainer.completedSteps)"),
            ("skipped_steps", "\(report.skippedSteps)"),
            ("seconds", jsonNumber(seconds)),
            ("total_seconds", jsonNumber(Double(total.components.seconds) + Double(total.components.attoseconds) * 1e-18)),
            ("healthy", report.isHealthy ? "true" : "false"),
        ]
        let verdicts = report.layers.map { "{\"layer\":\($0.index),\"path\":\"\($0.path)\",\"verdict\":\"\($0.verdict.rawValue)\"}" }
        object.append(("layers", "[" + verdicts.joined(separator: ",") + "]"))
        print("{" + object.map { "\"\($0.0)\":\($0.1)" }.joined(separator: ",") + "}")
    }
}

/// A JSON number (non-finite values become null).
func jsonNumber(_ value: Double) -> String { value.isFinite ? "\(value)" : "null" }

/// `digits` decimals.
func format(_ value: Float, digits: Int) -> String {
    guard value.isFinite else { return "\(value)" }
    var scale: Float = 1
    for _ in 0..<digits { scale *= 10 }
    let rounded = (Double(value) * Double(scale)).rounded() / Double(scale)
    return "\(rounded)"
}
