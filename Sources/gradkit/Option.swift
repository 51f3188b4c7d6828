// gradkit — every option, declared once: its value, range, help, commands and resume rule. SPDX-License-Identifier: MIT
import GradKit
import GradKitLab

/// What an option's value is; parsing and range checks follow from it.
enum ValueKind: Equatable {
    case flag
    case integer(ClosedRange<Int>)
    case number(ValueRange)
    case choice([String])
    case text
    /// One character, or the word `tab`.
    case separator
    case inputFile
    /// One path, or `IMAGES,LABELS` for IDX data.
    case inputFiles
    case outputFile
    case outputDirectory
    /// Integers separated by commas: each in `each`, `count` of them.
    case integerList(each: ClosedRange<Int>, count: ClosedRange<Int>)
    case schedule
    /// A number or flag of the library's optimizer table; its range and the
    /// optimizers it applies to come from ``Optimizer/hyperparameterSpecifications``.
    case hyperparameter(Hyperparameter)

    /// Whether the option takes no value.
    var isFlag: Bool {
        switch self {
        case .flag: true
        case .hyperparameter(let h): h.isFlag
        default: false
        }
    }
}

/// The sections of a command's help.
enum HelpGroup: CaseIterable {
    case lrFind, data, model, optimization, output, lab, report

    var title: String {
        switch self {
        case .lrFind: "Learning-rate range test:"
        case .data: "Data (one of --dataset, --idx and --csv; default --dataset digits):"
        case .model: "Model (an MLP: Linear, [BatchNorm], activation, [Dropout], ..., Linear):"
        case .optimization: "Optimization:"
        case .output: "Output:"
        case .lab, .report: "Options:"
        }
    }
}

/// Whether `--resume` requires the checkpoint's value of an option.
enum ResumeRule {
    /// Defines the run: a different value is an error unless `--accept-changed-options`.
    case mustMatch
    /// Output, progress, threads, how far to train: may change between runs.
    case mayDiffer
}

/// One row of the option table.
struct OptionSpecification {
    let option: Option
    /// The name after `--`.
    let name: String
    let kind: ValueKind
    /// The value's name in help and messages: "N", "PATH".
    let placeholder: String
    let help: String
    let commands: Set<Command>
    let group: HelpGroup
    let onResume: ResumeRule

    /// An option of `train` and `lr-find` unless `commands` says otherwise.
    init(
        _ option: Option, _ name: String, _ kind: ValueKind, _ placeholder: String, _ help: String,
        commands: Set<Command> = [.train, .lrFind], group: HelpGroup, onResume: ResumeRule = .mustMatch
    ) {
        self.option = option
        self.name = name
        self.kind = kind
        self.placeholder = placeholder
        self.help = help
        self.commands = commands
        self.group = group
        self.onResume = onResume
    }

    /// The same option, for `command` too.
    func alsoFor(_ command: Command) -> OptionSpecification {
        OptionSpecification(option, name, kind, placeholder, help, commands: commands.union([command]), group: group, onResume: onResume)
    }

    /// A flag (no placeholder).
    init(
        _ option: Option, _ name: String, _ kind: ValueKind, _ help: String,
        commands: Set<Command> = [.train, .lrFind], group: HelpGroup, onResume: ResumeRule = .mustMatch
    ) {
        self.init(option, name, kind, "", help, commands: commands, group: group, onResume: onResume)
    }
}

/// Every option of every command; ``OptionTable`` holds their declarations.
enum Option: CaseIterable, Hashable {
    case dataset, idx, csv, separator, header, labelColumn, regression, test, testFraction, validationFraction, normalize, noStratify
    case layers, activation, initializer, batchNorm, dropout, residual
    case optimizer, learningRate, momentum, dampening, nesterov, weightDecay, beta1, beta2, epsilon, amsgrad, alpha, centered
    case learningRateDecay, initialAccumulatorValue
    case clipNorm, clipValue, adaptiveClipping, schedule, epochs, batchSize, seed, earlyStopping, maxSkippedSteps, detectAnomaly
    case distributed, matmulPrecision, flushSubnormals
    case checkpoint, resume, acceptChangedOptions, stopAfter, log, report, tensorboard, json, quiet, threads
    case start, end, steps, plotOutput
    case quick, labOutput, only
    case reportOutput

    var specification: OptionSpecification { OptionTable.byOption[self]! }
    /// `--name`.
    var flagName: String { "--" + specification.name }

    /// The option `name` of `command`.
    /// - Throws: ``UsageError`` for a name no command has, or one `command` does not have.
    static func named(_ name: String, for command: Command) throws(UsageError) -> Option {
        let matches = OptionTable.all.filter { $0.name == name }
        if let match = matches.first(where: { $0.commands.contains(command) }) { return match.option }
        guard !matches.isEmpty else { throw UsageError("unknown option \(("--" + name).shownInMessage)") }
        let others = Command.allCases.filter { c in matches.contains { $0.commands.contains(c) } }
        throw UsageError("--\(name) does not apply to \(command.rawValue) (only to \(others.map(\.rawValue).joined(separator: ", ")))")
    }
}

/// The table: help lists options in this order.
enum OptionTable {
    static let all = data + model + optimizer + training + output + lrFind + lab + report
    static let byOption = Dictionary(uniqueKeysWithValues: all.map { ($0.option, $0) })

    static let data: [OptionSpecification] = alsoForDiagnose([
        .init(.dataset, "dataset", .choice(BuiltInDataset.allCases.map(\.rawValue)), "NAME",
              "an embedded data set: digits (8x8 handwritten digits), xor, spirals, circles", group: .data),
        .init(.idx, "idx", .inputFiles, "IMAGES,LABELS", "a pair of IDX files (MNIST layout); pixels scaled by 1/255", group: .data),
        .init(.csv, "csv", .inputFile, "PATH", "numeric CSV, optional header", group: .data),
        .init(.separator, "separator", .separator, "C", "the CSV's field separator: one character, or 'tab' (default ,)", group: .data),
        .init(.header, "header", .flag, "the CSV's first row is a header, even with names that are numbers (default: when it has no number, or reads 0,1,2,... as pandas names unnamed columns)", group: .data),
        .init(.labelColumn, "label-column", .integer(-1_000_000...1_000_000), "N",
              "the CSV's label column from 0; negative counts from the end (default -1: the last)", group: .data),
        .init(.regression, "regression", .flag, "the CSV's label column is a float target (mean squared error)", group: .data),
        .init(.test, "test", .inputFiles, "PATH",
              "a separate test file in the same format (IMAGES,LABELS for --idx); then nothing is held out of the training file for testing",
              group: .data),
        .init(.testFraction, "test-fraction", .number(.halfOpen(0, 1)), "F",
              "held out for the final test (default 0.2; 0 without --test: no test set)", group: .data),
        .init(.validationFraction, "validation-fraction", .number(.halfOpen(0, 1)), "F",
              "held out for validation each epoch (default 0, as Keras)", group: .data),
        .init(.normalize, "normalize", .choice(Normalization.allCases.map(\.rawValue)), "HOW",
              "standard: per-feature (x - mean) / std (default); scale: divide by the largest |x|; none (the default for digits, whose pixels share one 0-16 scale). Statistics come from the training part only",
              group: .data),
        .init(.noStratify, "no-stratify", .flag, "split at random (default: every part keeps the class balance)", group: .data),
    ])

    static let model: [OptionSpecification] = alsoForDiagnose([
        .init(.layers, "layers", .integerList(each: 1...ModelOptions.maximumWidth, count: 2...ModelOptions.maximumWidthCount), "W,W,...",
              "widths from input to output, e.g. 64,128,10 (default per data set); each at most 1,000,000, 500 million parameters in all",
              group: .model),
        .init(.activation, "activation", .choice(ActivationChoice.allCases.map(\.rawValue)), "NAME", "the hidden layers' activation (default relu)",
              group: .model),
        .init(.initializer, "init", .choice(InitializerChoice.allCases.map(\.rawValue)), "NAME",
              "weight initialization (default: PyTorch's; Xavier and orthogonal use the activation's gain, as nn.init.calculate_gain)",
              group: .model),
        .init(.batchNorm, "batch-norm", .flag, "BatchNorm after each hidden Linear (needs --batch-size 2 or more)", group: .model),
        .init(.dropout, "dropout", .number(.halfOpen(0, 1)), "P", "dropout probability after each hidden activation (default 0)", group: .model),
        .init(.residual, "residual", .flag, "residual connections around hidden layers whose input and output widths agree", group: .model),
    ])

    /// `rows`, for `diagnose` too: it builds the model from the same data and model options as `train`.
    private static func alsoForDiagnose(_ rows: [OptionSpecification]) -> [OptionSpecification] { rows.map { $0.alsoFor(.diagnose) } }

    static let optimizer: [OptionSpecification] = [
        .init(.optimizer, "optimizer", .choice(OptimizerKind.allCases.map(\.rawValue)), "NAME", "the optimizer (default adam)", group: .optimization),
        .init(.learningRate, "lr", .hyperparameter(.learningRate), "X", "learning rate", group: .optimization),
        .init(.momentum, "momentum", .hyperparameter(.momentum), "X", "momentum factor", group: .optimization),
        .init(.dampening, "dampening", .hyperparameter(.dampening), "X", "dampening of the momentum", group: .optimization),
        .init(.nesterov, "nesterov", .hyperparameter(.nesterov), "Nesterov momentum (needs --momentum above 0)", group: .optimization),
        .init(.weightDecay, "weight-decay", .hyperparameter(.weightDecay), "X", "weight decay (decoupled for adamw)", group: .optimization),
        .init(.beta1, "beta1", .hyperparameter(.beta1), "X", "decay rate of the first moment", group: .optimization),
        .init(.beta2, "beta2", .hyperparameter(.beta2), "X", "decay rate of the second moment", group: .optimization),
        .init(.epsilon, "eps", .hyperparameter(.epsilon), "X", "added to the denominator", group: .optimization),
        .init(.amsgrad, "amsgrad", .hyperparameter(.amsgrad), "keep the largest second moment (AMSGrad)", group: .optimization),
        .init(.alpha, "alpha", .hyperparameter(.alpha), "X", "smoothing constant of the squared-gradient average", group: .optimization),
        .init(.centered, "centered", .hyperparameter(.centered), "divide by the estimated variance", group: .optimization),
        .init(.learningRateDecay, "lr-decay", .hyperparameter(.learningRateDecay), "X", "learning-rate decay per step", group: .optimization),
        .init(.initialAccumulatorValue, "initial-accumulator", .hyperparameter(.initialAccumulatorValue), "X",
              "the accumulators' starting value", group: .optimization),
    ]

    static let training: [OptionSpecification] = [
        .init(.clipNorm, "clip-norm", .number(.atLeast(0)), "X", "clip the global gradient norm to X", commands: [.train], group: .optimization),
        .init(.clipValue, "clip-value", .number(.atLeast(0)), "X", "clip each gradient element to [-X, X]", commands: [.train], group: .optimization),
        .init(.adaptiveClipping, "agc", .number(.above(0)), "FACTOR", "adaptive unit-wise gradient clipping (NFNets)", commands: [.train],
              group: .optimization),
        .init(.schedule, "schedule", .schedule, "SPEC", Schedule.help, commands: [.train], group: .optimization),
        .init(.epochs, "epochs", .integer(0...1_000_000), "N", "epochs in all (default 30); a resumed run continues up to this many",
              commands: [.train], group: .optimization, onResume: .mayDiffer),
        .init(.batchSize, "batch-size", .integer(1...1_000_000), "N", "examples per batch (default 32)", commands: [.train, .lrFind, .diagnose],
              group: .optimization),
        .init(.seed, "seed", .integer(0...Int.max), "N", "seed for data splits, initialization, shuffling and dropout (default 0); the lab's seeds are 1000·N, 1000·N + 1, ...",
              commands: [.train, .lrFind, .lab, .diagnose], group: .optimization),
        .init(.earlyStopping, "early-stopping", .integer(1...1_000_000), "PATIENCE",
              "stop when the validation (else training) loss has not improved for PATIENCE epochs; the best weights are kept",
              commands: [.train], group: .optimization),
        .init(.maxSkippedSteps, "max-skipped-steps", .integer(0...1_000_000_000), "N",
              "after N steps in a row with NaN or infinite gradients the run has diverged: stop, exit 1 (default 10; 0: never stop)",
              commands: [.train], group: .optimization, onResume: .mayDiffer),
        .init(.detectAnomaly, "detect-anomaly", .flag, "anomaly mode: the first NaN or infinity ends training, naming the operation (slow)",
              commands: [.train], group: .optimization, onResume: .mayDiffer),
        .init(.distributed, "distributed", .flag,
              "data-parallel on the processes mpirun starts (a build with the MPI trait; docs/distributed.md)",
              commands: [.train], group: .optimization, onResume: .mayDiffer),
        .init(.matmulPrecision, "matmul-precision", .choice(["float32", "fp32", "bfloat16", "bf16"]), "P",
              "how matrix products compute, as torch.set_float32_matmul_precision: float32 (or fp32, the default), or bfloat16 (or bf16): operands rounded to bfloat16, sums in FP32; tensors, optimizer state and losses stay FP32",
              commands: [.train, .lrFind, .lab], group: .optimization),
        .init(.flushSubnormals, "flush-subnormals", .flag,
              "flush subnormal numbers (below 1.2e-38) to zero, as torch.set_flush_denormal: hardware computes with them slowly, and a deep net's decaying optimizer moments and vanishing gradients pass through them",
              group: .optimization),
    ]

    static let output: [OptionSpecification] = [
        .init(.checkpoint, "checkpoint", .outputFile, "PATH", "write a safetensors checkpoint after every epoch (atomically; one run at a time)",
              commands: [.train], group: .output, onResume: .mayDiffer),
        .init(.resume, "resume", .inputFile, "PATH",
              "continue from a checkpoint up to --epochs in total; the options that define the run must be the checkpoint's",
              commands: [.train], group: .output, onResume: .mayDiffer),
        .init(.acceptChangedOptions, "accept-changed-options", .flag, "resume with options that differ from the checkpoint's, or without its loss scaling (each is reported)",
              commands: [.train], group: .output, onResume: .mayDiffer),
        .init(.stopAfter, "stop-after", .integer(1...1_000_000), "N", "end after epoch N of the --epochs planned (to resume later)",
              commands: [.train], group: .output, onResume: .mayDiffer),
        .init(.log, "log", .outputFile, "PATH", "append one JSON object per step, per sampled step's layers and per epoch (see gradkit report)",
              commands: [.train], group: .output, onResume: .mayDiffer),
        .init(.report, "report", .outputDirectory, "DIR", "write the gradient-health report (report.md, figures/) when training ends",
              commands: [.train], group: .output, onResume: .mayDiffer),
        .init(.tensorboard, "tensorboard", .outputDirectory, "DIR", "write TensorBoard event files while training",
              commands: [.train], group: .output, onResume: .mayDiffer),
        .init(.json, "json", .flag, "end with one JSON line of the results", commands: [.train, .lrFind, .diagnose], group: .output,
              onResume: .mayDiffer),
        .init(.quiet, "quiet", .flag, "no progress or report on standard output (errors and --json still print)", commands: [.train, .lrFind, .diagnose],
              group: .output, onResume: .mayDiffer),
        .init(.threads, "threads", .integer(1...4096), "N", "kernel threads (default: all CPUs); the lab trains N trials at once, each on one kernel thread, with the same numbers",
              commands: [.train, .lrFind, .lab, .diagnose],
              group: .output, onResume: .mayDiffer),
    ]

    static let lrFind: [OptionSpecification] = [
        .init(.start, "start", .number(LearningRateFinderOptions.rates), "X", "first learning rate (default 1e-6)", commands: [.lrFind], group: .lrFind),
        .init(.end, "end", .number(LearningRateFinderOptions.rates), "X", "last learning rate (default 10)", commands: [.lrFind], group: .lrFind),
        .init(.steps, "steps", .integer(3...1_000_000), "N", "steps (default 100)", commands: [.lrFind], group: .lrFind),
        .init(.plotOutput, "output", .outputFile, "FILE", "the loss-against-learning-rate plot (default lr-find.svg)", commands: [.lrFind],
              group: .lrFind),
    ]

    static let lab: [OptionSpecification] = [
        .init(.quick, "quick", .flag, "3 seeds per configuration instead of 5 and fewer epochs: the whole lab in under a minute", commands: [.lab], group: .lab),
        .init(.labOutput, "output", .outputDirectory, "DIR", "where to write (default ./gradkit-lab)", commands: [.lab], group: .lab),
        .init(.only, "only", .text, "NAME",
              "run only experiments whose name contains NAME: \(Lab.experimentNames.joined(separator: ", "))", commands: [.lab], group: .lab),
    ]

    static let report: [OptionSpecification] = [
        .init(.reportOutput, "output", .outputDirectory, "DIR", "where to write report.md and figures/ (default ./gradkit-report)",
              commands: [.report], group: .report)
    ]
}
