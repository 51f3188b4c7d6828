// gradkit — everything gradkit train (and lr-find) was asked to do, typed and checked. SPDX-License-Identifier: MIT
import GradKit

/// How training proceeds: clipping, schedule, epochs, batches, seed, stops.
struct TrainingPlan {
    var clipping: GradientClipping?
    var schedule = Schedule.constant
    var epochs = 30
    var batchSize = 32
    var seed: UInt64 = 0
    var earlyStoppingPatience: Int?
    /// Nil: never stop for skipped steps (`--max-skipped-steps 0`).
    var maximumSkippedSteps: Int? = 10
    var detectsAnomalies = false
    /// Data-parallel across the processes of an MPI job (`--distributed`).
    var distributed = false
    /// How the run's matrix products compute (`--matmul-precision`).
    var matmulPrecision = MatmulPrecision.float32
    /// Subnormal numbers flushed to zero on the run's thread (`--flush-subnormals`).
    var flushesSubnormals = false

    init(_ a: ParsedArguments) throws(UsageError) {
        switch try a.oneOf([.clipNorm, .clipValue, .adaptiveClipping]) {
        case .clipNorm?: clipping = .norm(Float(a.number(.clipNorm)!))
        case .clipValue?: clipping = .value(Float(a.number(.clipValue)!))
        case .adaptiveClipping?: clipping = .adaptive(clipFactor: Float(a.number(.adaptiveClipping)!))
        default: clipping = nil
        }
        schedule = a.schedule(.schedule) ?? .constant
        epochs = a.integer(.epochs) ?? 30
        batchSize = a.integer(.batchSize) ?? 32
        seed = UInt64(a.integer(.seed) ?? 0)
        earlyStoppingPatience = a.integer(.earlyStopping)
        if let limit = a.integer(.maxSkippedSteps) { maximumSkippedSteps = limit == 0 ? nil : limit }
        detectsAnomalies = a.flag(.detectAnomaly)
        distributed = a.flag(.distributed)
        matmulPrecision = a.matmulPrecision()
        flushesSubnormals = a.flag(.flushSubnormals)
    }

    /// Runs `body` with the run's kernel settings (matrix-product precision,
    /// subnormal flushing) on this thread, which runs every step and the
    /// evaluation; the process-wide settings stay as they were.
    func withKernelSettings<Result>(_ body: () throws -> Result) rethrows -> Result {
        try Kernels.withMatmulPrecision(matmulPrecision) { try Kernels.withSubnormalsFlushed(flushesSubnormals, body) }
    }

    /// Canonical values for checkpoints.
    var settings: [Setting] {
        let clip = switch clipping {
        case .norm(let x)?: "norm \(shortNumber(x))"
        case .value(let x)?: "value \(shortNumber(x))"
        case .adaptive(let factor, _)?: "adaptive \(shortNumber(factor))"
        case .perTensor(let x)?: "per-tensor \(shortNumber(x))"
        case nil: "none"
        }
        return [
            Setting("clipping", clip), Setting(.schedule, schedule.canonical), Setting(.batchSize, "\(batchSize)"),
            Setting(.seed, "\(seed)"), Setting(.earlyStopping, earlyStoppingPatience.map(String.init) ?? "none"),
            Setting(.matmulPrecision, matmulPrecision.rawValue), Setting(.flushSubnormals, flushesSubnormals ? "on" : "off"),
        ]
    }
}

/// Where a training run writes, and how it talks.
struct RunOutputs {
    var checkpoint: String?
    var resume: String?
    var acceptsChangedOptions = false
    var stopAfter: Int?
    var log: String?
    var report: String?
    var tensorboard: String?
    var json = false
    var quiet = false
    var threads: Int?

    init(_ a: ParsedArguments) throws(UsageError) {
        checkpoint = a.text(.checkpoint)
        resume = a.text(.resume)
        acceptsChangedOptions = a.flag(.acceptChangedOptions)
        if acceptsChangedOptions, resume == nil { throw UsageError("--accept-changed-options applies with --resume only") }
        stopAfter = a.integer(.stopAfter)
        log = a.text(.log)
        report = a.text(.report)
        tensorboard = a.text(.tensorboard)
        json = a.flag(.json)
        quiet = a.flag(.quiet)
        threads = a.integer(.threads)
    }
}

/// `gradkit train`'s configuration (and `lr-find`'s, which reads a subset:
/// the table keeps the rest off its command line).
struct TrainConfiguration {
    var data: DataOptions
    var model: ModelOptions
    var optimizer: OptimizerOptions
    var plan: TrainingPlan
    var outputs: RunOutputs
    /// The arguments, stored in checkpoints as given.
    var arguments: [String]

    init(_ a: ParsedArguments) throws(UsageError) {
        data = try DataOptions(a)
        model = try ModelOptions(a)
        optimizer = try OptimizerOptions(a)
        plan = try TrainingPlan(a)
        outputs = try RunOutputs(a)
        arguments = a.arguments
    }

    /// The loss for the data's targets.
    var loss: LossFunction { data.regression ? .meanSquaredError : .softmaxCrossEntropy }

    /// Every option that defines the run, by the option a user would change,
    /// with its value as used (defaults included), and the fingerprint of
    /// the examples `loaded`: what a resumed run must share.
    func settings(widths: [Int], loaded: LoadedData) -> [Setting] {
        let data: [Setting] = [
            Setting("data", self.data.source.canonical), Setting("data-fingerprint", loaded.fingerprint), Setting(.test, self.data.testSource.map { $0.files.map(absolutePath).joined(separator: ",") } ?? "none"),
            Setting(.separator, self.data.separator == "\t" ? "tab" : String(self.data.separator)), Setting(.header, "\(self.data.header)"),
            Setting(.labelColumn, "\(self.data.labelColumn)"), Setting(.regression, "\(self.data.regression)"),
            Setting(.testFraction, shortNumber(self.data.testFraction)), Setting(.validationFraction, shortNumber(self.data.validationFraction)),
            Setting(.normalize, self.data.normalization.rawValue), Setting(.noStratify, "\(!self.data.stratify)"),
        ]
        return data + model.settings(widths: widths) + optimizer.settings + plan.settings
    }
}

/// One value that defines a run, stored in checkpoints under `gradkit.option.<key>`.
struct Setting: Equatable {
    /// The option's name, or a name for options that set one thing together ("data", "clipping").
    let key: String
    let value: String

    init(_ key: String, _ value: String) {
        self.key = key
        self.value = value
    }

    init(_ option: Option, _ value: String) { self.init(option.specification.name, value) }
}

extension ParsedArguments {
    /// `--matmul-precision` (the table checked the name), float32 without it.
    func matmulPrecision() -> MatmulPrecision {
        text(.matmulPrecision).flatMap(MatmulPrecision.init(name:)) ?? .float32
    }
}
