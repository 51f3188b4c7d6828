// GradKit — tests of the gradkit command line: the option table, strictness, outputs and resuming. SPDX-License-Identifier: MIT
#if canImport(Glibc)
import Glibc
#endif
@testable import gradkit
import GradKit
import Testing

/// Runs `gradkit` in this process: the exit status and the error line.
private func runGradkit(_ arguments: String...) -> (status: Int32, error: String) {
    let (status, error) = execute(arguments)
    return (status, error ?? "")
}

/// `arguments` parsed as `gradkit train`'s.
private func trainConfiguration(_ arguments: [String], command: Command = .train) throws -> TrainConfiguration {
    try TrainConfiguration(ParsedArguments(arguments, for: command))
}

/// The usage error `arguments` make, or "" when they parse.
private func usageError(_ arguments: [String], command: Command = .train) -> String {
    do {
        _ = try trainConfiguration(arguments, command: command)
        return ""
    } catch {
        return "\(error)"
    }
}

/// A small CSV of two features and a binary label, linearly separable.
private func writeCSV(in directory: String, name: String = "data.csv", separator: String = ",", rows: Int = 40) throws -> String {
    var text = ""
    for i in 0..<rows { text += "\(i % 7)\(separator)\(Double(i) * 0.5)\(separator)\(i % 2)\n" }
    let path = directory + "/" + name
    try FileIO.writeAtomically(Array(text.utf8), to: path).get()
    return path
}

@Suite("Command line: the option table")
struct OptionTableTests {
    @Test("every option has exactly one row, and names are unique within each command")
    func rows() {
        #expect(OptionTable.all.count == Option.allCases.count)
        for option in Option.allCases { #expect(OptionTable.all.filter { $0.option == option }.count == 1, "\(option)") }
        for command in Command.allCases {
            let names = OptionTable.all.filter { $0.commands.contains(command) }.map(\.name)
            #expect(Set(names).count == names.count, "\(command): \(names)")
        }
    }

    @Test("every hyperparameter of the library's optimizer tables has an option, maximize aside")
    func hyperparameters() {
        let inTables = Set(OptimizerKind.allCases.flatMap { $0.specifications.map(\.hyperparameter) }).subtracting([.maximize])
        #expect(Set(OptimizerOptions.hyperparameterOptions.map(\.1)) == inTables)
    }

    @Test("each hyperparameter option accepts exactly what the chosen optimizer's table accepts")
    func hyperparameterRanges() {
        for kind in OptimizerKind.allCases {
            for specification in kind.specifications where !specification.isFlag {
                let (option, _) = OptimizerOptions.hyperparameterOptions.first { $0.1 == specification.hyperparameter }!
                let range = specification.range
                var probes: [Float] = [range.lowerBound, range.lowerBound - 1e-3, range.lowerBound + 0.5, 1e30]
                if let upper = range.upperBound { probes += [upper, upper.nextDown, upper + 1e-3] }
                for value in probes {
                    let error = usageError(["--optimizer", kind.rawValue, option.flagName, "\(value)"])
                    #expect(error.isEmpty == specification.accepts(value), "\(kind) \(option.flagName) \(value): '\(error)'")
                }
            }
        }
    }

    @Test("help for every command lists each of its options, and --help and -h work for each")
    func helpText() {
        for command in Command.allCases {
            let text = help(for: command)
            for specification in OptionTable.all where specification.commands.contains(command) {
                #expect(text.contains("--\(specification.name)"), "\(command) lacks --\(specification.name)")
            }
            #expect(runGradkit(command.rawValue, "--help").status == 0)
            #expect(runGradkit(command.rawValue, "--bogus", "-h").status == 0)
        }
        #expect(runGradkit("help", "inspect").status == 0)
        #expect(runGradkit().status == 0)
    }

    @Test("the schedule's canonical spelling parses back to the same schedule")
    func scheduleSpelling() throws {
        for text in ["constant", "step:3", "step:3:0.5", "multistep:10/20:0.2", "exponential:0.9", "cosine", "cosine:1e-05", "warmup:2", "onecycle", "onecycle:0.1"] {
            let schedule = try Schedule(parsing: text)
            #expect(try Schedule(parsing: schedule.canonical) == schedule, "\(text) → \(schedule.canonical)")
        }
    }
}

@Suite("Command line: strictness")
struct CommandLineStrictnessTests {
    @Test("an option that does not apply is a usage error saying where it applies", arguments: [
        (["train", "--optimizer", "adam", "--momentum", "0.9"], "--momentum does not apply to --optimizer adam (only to sgd, rmsprop)"),
        (["train", "--optimizer", "sgd", "--beta1", "0.9"], "--beta1 does not apply to --optimizer sgd (only to adam, adamw)"),
        (["train", "--optimizer", "adam", "--alpha", "0.9"], "--alpha does not apply to --optimizer adam (only to rmsprop)"),
        (["lr-find", "--checkpoint", "x"], "--checkpoint does not apply to lr-find (only to train)"),
        (["info", "--bogus"], "unknown option --bogus"),
        (["inspect", "--json", "x"], "--json does not apply to inspect (only to train, diagnose, lr-find)"),
        (["train", "--separator", ";"], "--separator applies to --csv data only"),
        (["frobnicate"], "unknown command 'frobnicate'"),
        (["train", "stray"], "unexpected argument 'stray'"),
        (["inspect"], "missing FILE"),
    ])
    func doesNotApply(arguments: [String], message: String) {
        let (status, error) = execute(arguments)
        #expect(status == 2)
        #expect(error?.hasPrefix(message) == true, "\(error ?? "no error")")
    }

    @Test("integers are whole numbers in range: no rounding, no overflow trap", arguments: [
        (["--schedule", "step:2.7"], "--schedule step's SIZE must be a whole number in 1...1000000, got '2.7'"),
        (["--epochs", "2.5"], "--epochs must be a whole number in 0...1000000, got '2.5'"),
        (["--label-column", "9223372036854775807"], "--label-column must be an integer in -1000000...1000000"),
        (["--layers", "64,9223372036854775807,10"], "each value of --layers must be an integer in 1...1000000"),
        (["--schedule", "step:1e300"], "--schedule step's SIZE must be an integer in 1...1000000"),
        (["--schedule", "warmup:1e19"], "--schedule warmup's EPOCHS must be an integer in 1...1000000"),
        (["--schedule", "multistep:3/99999999999999999999"], "--schedule multistep's milestones must be an integer"),
        (["--batch-size", "1e3"], "--batch-size must be an integer in 1...1000000"),
        (["--seed", "-1"], "--seed must be an integer in 0..."),
        (["--schedule", "exponential:2"], "--schedule exponential's GAMMA must be a number in [0, 1]"),
        (["--lr", "1e39"], "--lr must be a number"),
        (["--agc", "0"], "--agc must be a number in (0, ∞)"),
        (["--optimizer", "rmsprop", "--alpha", "2"], "--alpha must be in [0, 1) for rmsprop, got 2"),
        (["--optimizer", "sgd", "--nesterov"], "--optimizer sgd: Nesterov momentum requires a momentum and zero dampening"),
        (["--batch-norm", "--batch-size", "1"], "--batch-norm needs --batch-size 2 or more"),
        (["--layers", "2,8,2", "--residual"], "--residual wraps hidden layers whose input and output widths agree"),
    ])
    func strictValues(arguments: [String], message: String) {
        let error = usageError(arguments)
        #expect(error.hasPrefix(message), "\(arguments): '\(error)'")
    }

    @Test("sizes are bounded before anything is allocated")
    func sizes() {
        #expect(throws: UsageError.self) { try ModelOptions.checkSizes([2_000_000, 10], batchNorm: false, batchSize: 1) }
        #expect(throws: UsageError.self) { try ModelOptions.checkSizes([1000, 1_000_000, 10], batchNorm: false, batchSize: 1) }
        #expect(throws: UsageError.self) { try ModelOptions.checkSizes([10, 100_000, 10], batchNorm: false, batchSize: 10_000) }
        #expect(throws: Never.self) { try ModelOptions.checkSizes([784, 100_000, 10], batchNorm: true, batchSize: 32) }
        let widths = Array(repeating: "1", count: ModelOptions.maximumWidthCount + 1).joined(separator: ",")
        #expect(usageError(["--layers", widths]).hasPrefix("--layers needs 2 to 1001 integers"))
    }

    @Test("errors are one line: line breaks in a message are escaped")
    func oneLine() {
        let (status, error) = runGradkit("train", "--csv", "a\nb.csv", "--epochs", "0", "--quiet")
        #expect(status == 1)
        #expect(error.contains("a\\nb.csv"))  // a path in a message has its control characters escaped
        #expect("a\nb\r\nc".escapingControlCharacters == "a\\nb\\r\\nc")
        // Invisible characters are shown too: a byte-order mark, a zero-width space, a right-to-left override.
        #expect("\u{FEFF}x\u{200B}\u{202E}é".escapingControlCharacters == "\\u{FEFF}x\\u{200B}\\u{202E}é")
    }

    @Test("zero-width IDX images and a bad log are failures with one line, not traps")
    func badFiles() throws {
        let directory = try temporaryDirectory()
        let images: [UInt8] = [0, 0, 8, 3, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 3]
        let labels: [UInt8] = [0, 0, 8, 1, 0, 0, 0, 2, 0, 1]
        try FileIO.writeAtomically(images, to: directory + "/i.idx").get()
        try FileIO.writeAtomically(labels, to: directory + "/l.idx").get()
        let idx = runGradkit("train", "--idx", "\(directory)/i.idx,\(directory)/l.idx", "--quiet")
        #expect(idx.status == 1 && idx.error.contains("have no pixels"), "\(idx)")
        try FileIO.writeAtomically(Array("{\"type\":\"step\"}\n{\"type\":\"step\",\"epoch\":0".utf8), to: directory + "/bad.jsonl").get()
        let report = runGradkit("report", directory + "/bad.jsonl", "--output", directory + "/report")
        #expect(report.status == 1 && report.error.contains("line 1"), "\(report)")
        // A log with no step records (empty, or epochs only) is refused before anything is written.
        try FileIO.writeAtomically(Array("\n{\"type\":\"epoch\",\"epoch\":1}\n".utf8), to: directory + "/empty.jsonl").get()
        let empty = runGradkit("report", directory + "/empty.jsonl", "--output", directory + "/empty-report")
        #expect(empty.status == 1 && empty.error.contains("holds no step or layers records"), "\(empty)")
        #expect(FileIO.identity(of: directory + "/empty-report") == nil)
    }
}

@Suite("Command line: training runs")
struct CommandLineRunTests {
    @Test("--test-fraction 0 without --test has no test set: nothing is reported as test accuracy")
    func noTestSet() throws {
        let configuration = try trainConfiguration(["--dataset", "xor", "--test-fraction", "0", "--epochs", "1", "--quiet"])
        let run = try TrainingRun(configuration, data: try configuration.data.load(seed: 0))
        #expect(run.data.test == nil)
        let json = run.result(try run.fitRemaining(), trainingSeconds: 0).json(totalSeconds: 0)
        #expect(json["test_accuracy"] == .null && json["test_loss"] == .null)
        #expect(json["train_loss"]?.numberValue != nil)
        #expect(try JSON.parse(json.text) == json)
    }

    @Test("--separator reaches the CSV loader and --normalize scale divides by the training part's largest magnitude")
    func separatorAndScale() throws {
        let directory = try temporaryDirectory()
        let path = try writeCSV(in: directory, separator: ";")
        let arguments = ["--csv", path, "--separator", ";", "--normalize", "scale", "--test-fraction", "0.25"]
        let data = try trainConfiguration(arguments).data.load(seed: 0)
        let raw = try Dataset.csv(path, separator: ";").split([0.75, 0.25], seed: 0, stratified: true)
        let largest = raw[0].features.scalars.map(abs).max()!
        #expect(data.train.features.scalars == raw[0].features.scalars.map { Float(Double($0) / Double(largest)) })
        #expect(data.test?.features.scalars == raw[1].features.scalars.map { Float(Double($0) / Double(largest)) })
        let comma = runGradkit("train", "--csv", path, "--epochs", "1", "--quiet")
        #expect(comma.status == 1 && comma.error.contains("row 1"), "\(comma)")
    }

    @Test("--header declares a first row whose names are numbers a header; without it the row is data, and the error says how")
    func declaredHeader() throws {
        let path = try temporaryDirectory() + "/years.csv"
        _ = FileIO.writeAtomically(Array("2019,2020,label\n1,2,0\n3,4,1\n5,6,0\n7,8,1\n".utf8), to: path)
        let data = try trainConfiguration(["--csv", path, "--header", "--test-fraction", "0"]).data.load(seed: 0)
        #expect(data.train.count == 4)
        let undeclared = runGradkit("train", "--csv", path, "--epochs", "1", "--quiet")
        #expect(undeclared.status == 1 && undeclared.error.contains("row 1") && undeclared.error.contains("gradkit: --header"), "\(undeclared)")
        #expect(runGradkit("train", "--dataset", "xor", "--header", "--quiet").error.contains("--header applies to --csv data only"))
    }

    @Test("a run that diverges exits 1 with one line; --max-skipped-steps 0 lets it run on")
    func divergence() {
        let diverged = runGradkit("train", "--dataset", "xor", "--optimizer", "sgd", "--lr", "1e30", "--epochs", "5", "--quiet")
        #expect(diverged.status == 1 && diverged.error.contains("diverged"), "\(diverged)")
        #expect(runGradkit("train", "--dataset", "xor", "--optimizer", "sgd", "--lr", "1e30", "--epochs", "2", "--max-skipped-steps", "0", "--quiet").status == 0)
        let anomaly = runGradkit("train", "--dataset", "xor", "--optimizer", "sgd", "--lr", "1e30", "--epochs", "2", "--detect-anomaly", "--quiet")
        #expect(anomaly.status == 1 && (anomaly.error.contains("in the output of") || anomaly.error.contains("in the backward of")), "\(anomaly)")
    }

    @Test("outputs are checked before the first epoch", arguments: [
        ("--checkpoint", "INPUT", "is the same file as the input"),
        ("--log", "INPUT", "is the same file as the input"),
        ("--checkpoint", "DIR/fifo", "not a regular file"),  // as /dev/null, without risking it when the check fails
        ("--checkpoint", "DIR", "is a directory"),
        ("--log", "DIR/missing/run.jsonl", "cannot be used"),
        ("--report", "INPUT", "is not a directory"),
        ("--tensorboard", "INPUT", "is not a directory"),
    ])
    func outputs(option: String, path: String, message: String) throws {
        let directory = try temporaryDirectory()
        let input = try writeCSV(in: directory)
        #expect(mkfifo(directory + "/fifo", 0o600) == 0)
        let target = path.replacing("INPUT", with: input).replacing("DIR", with: directory)
        let before = try FileIO.readAll(input).get()
        let (status, error) = runGradkit("train", "--csv", input, option, target, "--epochs", "1", "--quiet")
        #expect(status == 1 && error.hasPrefix("\(option) \(target)") && error.contains(message), "\(error)")
        #expect(try FileIO.readAll(input).get() == before)
    }

    @Test("two outputs naming one file are refused; the checkpoint is locked while a run holds it")
    func outputConflicts() throws {
        let directory = try temporaryDirectory()
        let clash = runGradkit("train", "--checkpoint", directory + "/run", "--log", directory + "/./run", "--epochs", "1", "--quiet")
        #expect(clash.status == 1 && clash.error.contains("--checkpoint and --log both write"), "\(clash)")
        let lock = try OutputLock(path: directory + "/held.safetensors")
        let locked = runGradkit("train", "--dataset", "xor", "--checkpoint", directory + "/held.safetensors", "--epochs", "1", "--quiet")
        #expect(locked.status == 1 && locked.error.contains("another process"), "\(locked)")
        lock.release()
        #expect(runGradkit("train", "--dataset", "xor", "--checkpoint", directory + "/held.safetensors", "--epochs", "1", "--quiet").status == 0)
        #expect(runGradkit("lab", "--output", "").status == 2)
        // An empty --only would match every experiment's name.
        #expect(runGradkit("lab", "--only", "").status == 2 && runGradkit("lab", "--only", "no-such-experiment").status == 2)
    }
}

@Suite("Command line: resuming")
struct CommandLineResumeTests {
    private static let common = ["--dataset", "spirals", "--batch-norm", "--dropout", "0.2", "--optimizer", "sgd", "--momentum", "0.9", "--quiet"]

    private func train(_ arguments: [String]) -> (status: Int32, error: String) {
        let (status, error) = execute(["train"] + CommandLineResumeTests.common + arguments)
        return (status, error ?? "")
    }

    @Test("--matmul-precision bf16 trains with bfloat16 products on this thread only; a resume in another precision is refused")
    func matmulPrecision() throws {
        let directory = try temporaryDirectory()
        #expect(train(["--epochs", "2", "--matmul-precision", "bf16", "--checkpoint", directory + "/bf16"]).status == 0)
        #expect(train(["--epochs", "2", "--matmul-precision", "fp32", "--checkpoint", directory + "/fp32"]).status == 0)
        #expect(Kernels.matmulPrecision == .float32 && Kernels.activeMatmulPrecision == .float32)
        let bf16 = try Checkpoint.read(from: directory + "/bf16"), fp32 = try Checkpoint.read(from: directory + "/fp32")
        #expect(bf16.model["0.weight"]!.scalars != fp32.model["0.weight"]!.scalars, "the bf16 run computed in FP32")
        #expect(bf16.configuration["gradkit.option.matmul-precision"] == "bfloat16")
        let refused = train(["--epochs", "3", "--resume", directory + "/bf16"])
        #expect(refused.status == 1 && refused.error.contains("--matmul-precision bfloat16 (now float32)"), "\(refused)")
        #expect(train(["--epochs", "3", "--resume", directory + "/bf16", "--matmul-precision", "bfloat16"]).status == 0)
        // A checkpoint from before the option ran in float32: it resumes as such, and only as such.
        var older = fp32
        older.configuration["gradkit.option.matmul-precision"] = nil
        try older.write(to: directory + "/older")
        #expect(train(["--epochs", "3", "--resume", directory + "/older"]).status == 0)
        let olderInBF16 = train(["--epochs", "3", "--resume", directory + "/older", "--matmul-precision", "bf16"])
        #expect(olderInBF16.status == 1 && olderInBF16.error.contains("--matmul-precision float32 (not recorded: every run before the option had it; now bfloat16)"), "\(olderInBF16)")
    }

    @Test("--flush-subnormals holds on the run's thread only; a resume that changes it is refused")
    func flushSubnormals() throws {
        let directory = try temporaryDirectory()
        #expect(train(["--epochs", "2", "--flush-subnormals", "--checkpoint", directory + "/flushed"]).status == 0)
        #expect(!Kernels.flushesSubnormals)
        #expect(train(["--epochs", "2", "--checkpoint", directory + "/plain"]).status == 0)
        // Nothing in this run comes near 1e-38: flushing changes no bit of it.
        let flushed = try Checkpoint.read(from: directory + "/flushed"), plain = try Checkpoint.read(from: directory + "/plain")
        #expect(flushed.model == plain.model)
        #expect(flushed.configuration["gradkit.option.flush-subnormals"] == "on")
        let refused = train(["--epochs", "3", "--resume", directory + "/plain", "--flush-subnormals"])
        #expect(refused.status == 1 && refused.error.contains("--flush-subnormals off (now on)"), "\(refused)")
        #expect(train(["--epochs", "3", "--resume", directory + "/flushed", "--flush-subnormals"]).status == 0)
        #expect(train(["--epochs", "3", "--resume", directory + "/plain", "--flush-subnormals", "--accept-changed-options"]).status == 0)
        // A checkpoint from before the option ran without flushing.
        var older = plain
        older.configuration["gradkit.option.flush-subnormals"] = nil
        try older.write(to: directory + "/older")
        #expect(train(["--epochs", "3", "--resume", directory + "/older"]).status == 0)
    }

    @Test("2 epochs, then --resume X --checkpoint X up to 4, equal 4 straight, bit for bit")
    func resumeEqualsStraight() throws {
        let directory = try temporaryDirectory()
        #expect(train(["--epochs", "4", "--checkpoint", directory + "/straight"]).status == 0)
        #expect(train(["--epochs", "2", "--checkpoint", directory + "/half"]).status == 0)
        #expect(train(["--epochs", "4", "--resume", directory + "/half", "--checkpoint", directory + "/half"]).status == 0)
        let straight = try Checkpoint.read(from: directory + "/straight"), resumed = try Checkpoint.read(from: directory + "/half")
        #expect(resumed.epoch == 4 && resumed.step == straight.step)
        #expect(resumed.model.keys.sorted() == straight.model.keys.sorted())
        for (name, tensor) in straight.model { #expect(resumed.model[name]?.scalars == tensor.scalars, "\(name)") }
        #expect(resumed.optimizer == straight.optimizer)
        #expect(resumed.randomState == straight.randomState)
    }

    @Test("a changed seed or activation is refused, naming each difference; a changed --epochs is not")
    func changedOptions() throws {
        let directory = try temporaryDirectory(), half = directory + "/half"
        #expect(train(["--epochs", "2", "--checkpoint", half]).status == 0)
        let seed = train(["--epochs", "4", "--resume", half, "--seed", "1"])
        #expect(seed.status == 1 && seed.error.contains("--seed 0 (now 1)"), "\(seed)")
        let both = train(["--epochs", "4", "--resume", half, "--seed", "1", "--activation", "tanh"])
        #expect(both.error.contains("--activation relu (now tanh)") && both.error.contains("--seed 0 (now 1)"), "\(both)")
        let optimizer = train(["--epochs", "4", "--resume", half, "--lr", "0.5"])
        #expect(optimizer.status == 1 && optimizer.error.contains("--lr 0.01 (now 0.5)"), "\(optimizer)")
        #expect(train(["--epochs", "3", "--resume", half]).status == 0)
        #expect(train(["--epochs", "4", "--resume", half, "--seed", "1", "--accept-changed-options"]).status == 0)
        #expect(try Checkpoint.read(from: half).epoch == 2)  // resuming without --checkpoint writes nothing
    }

    @Test("an accepted change of a hyperparameter is what the resumed run uses; one the optimizer state cannot follow is refused")
    func acceptedHyperparameters() throws {
        let directory = try temporaryDirectory(), half = directory + "/half", resumed = directory + "/resumed"
        #expect(train(["--epochs", "2", "--checkpoint", half]).status == 0)
        #expect(train(["--epochs", "3", "--resume", half, "--lr", "0.5", "--accept-changed-options", "--checkpoint", resumed]).status == 0)
        let groups = try #require(try Checkpoint.read(from: resumed).optimizer?.groups)
        #expect(groups.allSatisfy { $0.hyperparameters["lr"] == Double(Float(0.5)) }, "\(groups)")
        // Switching AMSGrad on needs buffers the checkpoint's run never kept.
        let adam = ["train", "--dataset", "xor", "--quiet", "--optimizer", "adam"], plain = directory + "/adam"
        #expect(execute(adam + ["--epochs", "1", "--checkpoint", plain]).status == 0)
        let (status, error) = execute(adam + ["--epochs", "2", "--resume", plain, "--amsgrad", "--accept-changed-options"])
        #expect(status == 1 && (error ?? "").contains("--amsgrad cannot change when resuming"), "\(status): \(error ?? "")")
    }

    @Test("every option that defines a run changes what the checkpoint records")
    func recordedSettings() throws {
        let loaded = LoadedData(train: try Dataset(features: Tensor(zeros: [2, 2]), labels: [0, 1], classCount: 2), validation: nil, test: nil)
        let changes: [Option: (base: [String], change: [String])] = [
            .dataset: ([], ["--dataset", "xor"]), .idx: ([], ["--idx", "a,b"]), .csv: ([], ["--csv", "a.csv"]),
            .separator: (["--csv", "a.csv"], ["--separator", ";"]), .header: (["--csv", "a.csv"], ["--header"]),
            .labelColumn: (["--csv", "a.csv"], ["--label-column", "0"]),
            .regression: (["--csv", "a.csv"], ["--regression"]), .test: (["--csv", "a.csv"], ["--test", "b.csv"]),
            .testFraction: ([], ["--test-fraction", "0.3"]), .validationFraction: ([], ["--validation-fraction", "0.1"]),
            .normalize: ([], ["--normalize", "scale"]), .noStratify: ([], ["--no-stratify"]),
            .activation: ([], ["--activation", "tanh"]), .initializer: ([], ["--init", "zeros"]), .batchNorm: ([], ["--batch-norm"]),
            .dropout: ([], ["--dropout", "0.5"]), .residual: ([], ["--residual"]), .optimizer: ([], ["--optimizer", "sgd"]),
            .learningRate: ([], ["--lr", "0.5"]), .momentum: (["--optimizer", "sgd"], ["--momentum", "0.5"]),
            .dampening: (["--optimizer", "sgd"], ["--dampening", "0.5"]),
            .nesterov: (["--optimizer", "sgd", "--momentum", "0.5"], ["--nesterov"]), .weightDecay: ([], ["--weight-decay", "0.5"]),
            .beta1: ([], ["--beta1", "0.5"]), .beta2: ([], ["--beta2", "0.5"]), .epsilon: ([], ["--eps", "0.5"]), .amsgrad: ([], ["--amsgrad"]),
            .alpha: (["--optimizer", "rmsprop"], ["--alpha", "0.5"]), .centered: (["--optimizer", "rmsprop"], ["--centered"]),
            .learningRateDecay: (["--optimizer", "adagrad"], ["--lr-decay", "0.5"]),
            .initialAccumulatorValue: (["--optimizer", "adagrad"], ["--initial-accumulator", "0.5"]),
            .clipNorm: ([], ["--clip-norm", "1"]), .clipValue: ([], ["--clip-value", "1"]), .adaptiveClipping: ([], ["--agc", "0.1"]),
            .schedule: ([], ["--schedule", "cosine"]), .batchSize: ([], ["--batch-size", "8"]), .seed: ([], ["--seed", "3"]),
            .earlyStopping: ([], ["--early-stopping", "3"]), .matmulPrecision: ([], ["--matmul-precision", "bf16"]),
            .flushSubnormals: ([], ["--flush-subnormals"]),
        ]
        for specification in OptionTable.all where specification.commands.contains(.train) && specification.onResume == .mustMatch {
            guard specification.option != .layers else { continue }  // recorded from the widths built, checked below
            guard let (base, change) = changes[specification.option] else {
                Issue.record("\(specification.name): no change to test")
                continue
            }
            let before = try trainConfiguration(base).settings(widths: [2, 2], loaded: loaded)
            let after = try trainConfiguration(base + change).settings(widths: [2, 2], loaded: loaded)
            #expect(before != after, "--\(specification.name)")
        }
        #expect(try trainConfiguration([]).settings(widths: [2, 2], loaded: loaded) != trainConfiguration([]).settings(widths: [2, 3, 2], loaded: loaded))
        for specification in OptionTable.all where specification.onResume == .mayDiffer {
            #expect(changes[specification.option] == nil, "--\(specification.name) may differ yet is listed")
        }
    }

    @Test("a checkpoint that records no options is refused unless --accept-changed-options; one with a NaN weight is refused")
    func checkpointContents() throws {
        let directory = try temporaryDirectory(), half = directory + "/half"
        #expect(train(["--epochs", "2", "--checkpoint", half]).status == 0)
        var checkpoint = try Checkpoint.read(from: half)
        checkpoint.configuration = checkpoint.configuration.filter { !$0.key.hasPrefix(RecordedSettings.prefix) }
        try checkpoint.write(to: directory + "/bare")
        let bare = train(["--epochs", "3", "--resume", directory + "/bare"])
        #expect(bare.status == 1 && bare.error.contains("records no gradkit train options"), "\(bare)")
        #expect(train(["--epochs", "3", "--resume", directory + "/bare", "--accept-changed-options"]).status == 0)
        checkpoint = try Checkpoint.read(from: half)
        checkpoint.configuration["gradkit.option.matmul-precision"] = nil
        try checkpoint.write(to: directory + "/older")
        let older = try fileBytes(directory + "/older")
        let bf16 = train(["--epochs", "3", "--resume", directory + "/older", "--checkpoint", directory + "/older", "--matmul-precision", "bf16"])
        #expect(bf16.status == 1 && bf16.error.contains("--matmul-precision float32 (not recorded: every run before the option had it; now bfloat16)"), "\(bf16)")
        #expect(try fileBytes(directory + "/older") == older)
        #expect(train(["--epochs", "3", "--resume", directory + "/older"]).status == 0)
        checkpoint = try Checkpoint.read(from: half)
        var weight = checkpoint.model["0.weight"]!.scalars
        weight[1] = .nan
        checkpoint.model["0.weight"] = Tensor(shape: checkpoint.model["0.weight"]!.shape, scalars: weight)
        try checkpoint.write(to: directory + "/nan")
        let nan = train(["--epochs", "3", "--resume", directory + "/nan"])
        #expect(nan.status == 1 && nan.error.contains("0.weight"), "\(nan)")
    }

    @Test("a checkpoint whose run scaled its loss is refused, naming the scale, unless --accept-changed-options, which resumes as without the scaler's state")
    func lossScaledCheckpoint() throws {
        let directory = try temporaryDirectory(), half = directory + "/half", scaled = directory + "/scaled"
        #expect(train(["--epochs", "2", "--checkpoint", half]).status == 0)
        var checkpoint = try Checkpoint.read(from: half)
        checkpoint.configuration["lossScaler.scale"] = "32768.0"
        checkpoint.configuration["lossScaler.growthTracker"] = "417"
        try checkpoint.write(to: scaled)
        let refused = train(["--epochs", "3", "--resume", scaled])
        #expect(refused.status == 1, "\(refused)")
        #expect(refused.error.contains("the checkpoint's run scaled its loss ('lossScaler.scale' is '32768.0')"), "\(refused)")
        #expect(refused.error.contains("give --accept-changed-options to resume it without loss scaling"), "\(refused)")
        // Accepted, it trains on as the same checkpoint without the scaler's entries does, and records none.
        #expect(train(["--epochs", "3", "--resume", scaled, "--accept-changed-options", "--checkpoint", directory + "/accepted"]).status == 0)
        #expect(train(["--epochs", "3", "--resume", half, "--checkpoint", directory + "/reference"]).status == 0)
        let accepted = try Checkpoint.read(from: directory + "/accepted"), reference = try Checkpoint.read(from: directory + "/reference")
        #expect(accepted.epoch == 3 && accepted.step == reference.step)
        #expect(accepted.model.keys.sorted() == reference.model.keys.sorted())
        for (name, tensor) in reference.model { #expect(accepted.model[name]?.scalars == tensor.scalars, "\(name)") }
        #expect(accepted.configuration["lossScaler.scale"] == nil && accepted.configuration["lossScaler.growthTracker"] == nil)
    }

    @Test("a checkpoint at --epochs trains nothing and exits 0")
    func finished() throws {
        let directory = try temporaryDirectory(), done = directory + "/done"
        #expect(train(["--epochs", "2", "--checkpoint", done]).status == 0)
        let configuration = try trainConfiguration(CommandLineResumeTests.common + ["--epochs", "2", "--resume", done])
        let run = try TrainingRun(configuration, data: try configuration.data.load(seed: 0))
        try run.restore(from: done)
        #expect(try run.fitRemaining() == nil)
        #expect(train(["--epochs", "1", "--resume", done]).status == 0)
    }
}
