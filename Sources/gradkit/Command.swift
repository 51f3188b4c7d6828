// gradkit — the commands and the dispatch from the command line to them. SPDX-License-Identifier: MIT
#if canImport(Glibc)
import Glibc
#endif
import GradKit

/// A `gradkit` command: its name, operands, help and body.
enum Command: String, CaseIterable, Hashable {
    case info, train, diagnose, inspect, lab
    case lrFind = "lr-find"
    case report

    /// One line for the tool's help.
    var summary: String {
        switch self {
        case .info: "print the kernel configuration (CPU, threads, instruction set, build)"
        case .train: "train an MLP on an embedded data set or IDX/CSV files"
        case .diagnose: "predict and measure each layer's gradients before training; verdict and cure"
        case .inspect: "print a safetensors checkpoint's tensors and metadata"
        case .lab: "run the gradient-pathology experiments and write a report"
        case .lrFind: "the learning-rate range test: loss against a growing learning rate"
        case .report: "draw the gradient-health report of a run from its --log file"
        }
    }

    /// The positional arguments, by name.
    var operands: [String] {
        switch self {
        case .inspect: ["FILE"]
        case .report: ["LOG"]
        default: []
        }
    }

    var usage: String {
        let options = OptionTable.all.contains { $0.commands.contains(self) } ? " [options]" : ""
        return (["usage: gradkit", rawValue] + operands).joined(separator: " ") + options
    }

    /// The paragraph under the usage line of the command's help.
    var introduction: String {
        switch self {
        case .info: "Prints the version, the CPU, the kernel threads, the instruction set and the build."
        case .train:
            """
            Trains an MLP and ends with the gradient-health report. A run that diverges (see --max-skipped-steps)
            exits with status 1. Bad arguments exit with status 2, failures found in files or while running with 1.
            """
        case .diagnose:
            """
            Diagnoses the MLP gradkit train would build, before its first step: each Linear layer's gradient
            norm as mean-field theory predicts it (from the layers' actual weights, biases, activations,
            BatchNorm and residual connections) and as one forward and backward pass on a batch measures it,
            the verdict (vanishing, exploding, healthy), and the cure the theory predicts to work, with its
            predicted effect. Takes the data and model options of gradkit train; nothing is trained.
            """
        case .inspect:
            """
            Prints each tensor's name, shape and L2 norm, then the metadata. Names and values are printed with
            control characters escaped (\\n, \\u{1B}), so a file cannot steer the terminal.
            """
        case .lab:
            """
            Runs experiments that show each gradient pathology and its cure on data GradKit ships, every configuration
            at several seeds, and writes DIR/report.md (tables, verdicts, linked SVG figures), DIR/results.json and
            DIR/figures/.
            """
        case .lrFind:
            """
            The learning-rate range test in fastai's form (an exponential sweep reading the loss; Smith's 2017
            original sweeps linearly and reads the accuracy): trains for --steps steps while the learning rate grows
            exponentially from --start to --end, stops when the smoothed loss passes 4x its minimum, prints the
            curve and suggests the rate where the loss falls fastest. The model and optimizer are put back
            afterwards. Takes the data, model and optimizer options of gradkit train.
            """
        case .report:
            """
            Reads the JSON-lines log of a run (gradkit train --log) and writes DIR/report.md with the verdict table
            and DIR/figures/*.svg, as gradkit train --report does at the end of a run.
            """
        }
    }

    var example: String? {
        switch self {
        case .train: "gradkit train --dataset digits --layers 64,128,10 --epochs 30 --checkpoint run.safetensors"
        case .lrFind: "gradkit lr-find --dataset digits --optimizer sgd --momentum 0.9"
        case .diagnose: "gradkit diagnose --dataset digits --normalize standard --layers 64,\(Array(repeating: "32", count: 19).joined(separator: ",")),10 --activation sigmoid"
        case .report: "gradkit train --log run.jsonl && gradkit report run.jsonl --output run-report"
        default: nil
        }
    }

    /// Runs the command with its parsed arguments.
    func run(_ parsed: ParsedArguments) throws {
        switch self {
        case .info:
            print("gradkit \(gradKitVersion)")
            print(Kernels.summary)
            print("bfloat16 hardware: AVX512_BF16 \(Kernels.cpuHasAVX512BF16 ? "yes" : "no"), AMX-BF16 \(Kernels.cpuHasAMXBF16 ? "yes" : "no") "
                + "(bfloat16 matmul pairs: \(Kernels.detectedBFloat16DotProduct)\(vdpbf16psNote()); AMX unused)")
        case .train: try trainCommand(parsed)
        case .diagnose: try diagnoseCommand(parsed)
        case .inspect: try inspectCommand(parsed)
        case .lab: try labCommand(parsed)
        case .lrFind: try lrFindCommand(parsed)
        case .report: try reportCommand(parsed)
        }
    }

    /// The checks of `parsed` a run makes before it reads or writes a file
    /// (ranges, combinations, names), each by the code the run itself calls.
    func validate(_ parsed: ParsedArguments) throws(UsageError) {
        switch self {
        case .train, .diagnose: _ = try TrainConfiguration(parsed)
        case .lrFind:
            let configuration = try TrainConfiguration(parsed)
            _ = try LearningRateFinderOptions(parsed, learningRate: configuration.optimizer.kind.specification(.learningRate)!)
        case .lab: _ = try labExperimentFilter(parsed)
        case .info, .inspect, .report: break
        }
    }
}

/// What a command line asks for: text to print (help, the version) or a command to run.
enum Invocation {
    case print(String)
    case run(Command, ParsedArguments)

    /// Reads `arguments` (without the program name): the command and its options, parsed.
    init(_ arguments: [String]) throws(UsageError) {
        let rest = Array(arguments.dropFirst())
        switch arguments.first {
        case nil, "--help", "-h": self = .print(toolHelp)
        case "--version", "version": self = .print("gradkit \(gradKitVersion)")
        case "help": self = .print(try rest.first.map { (name) throws(UsageError) in help(for: try command(named: name)) } ?? toolHelp)
        case let name?:
            let command = try command(named: name)
            self = rest.contains("--help") || rest.contains("-h") ? .print(help(for: command)) : .run(command, try ParsedArguments(rest, for: command))
        }
    }
}

/// Parses and validates `arguments` as ``execute(_:)`` does, runs nothing and
/// touches no file (the fuzz harness feeds it arbitrary command lines).
/// - Throws: The usage error `execute` would report with exit status 2.
package func checkArguments(_ arguments: [String]) throws {
    if case .run(let command, let parsed) = try Invocation(arguments) { try command.validate(parsed) }
}

/// Runs `gradkit` with `arguments` (without the program name), prints an
/// error as one line on standard error, and returns the exit status.
package func runTool(_ arguments: [String]) -> Int32 {
    // Past a file-size limit (ulimit -f) a write then fails with EFBIG, which the writers report
    // and clean up after, instead of the kernel killing the process mid-write; a closed pipe
    // (`| head`) fails standard output (EPIPE) while the run goes on to write its files.
    signal(SIGXFSZ, SIG_IGN)
    signal(SIGPIPE, SIG_IGN)
    var (status, error) = execute(arguments)
    // What the command printed is part of its result: standard output on a full disk is a failure.
    if let failure = standardOutputFailure(), status == 0 { (status, error) = (1, "cannot write to standard output: \(failure)") }
    if let error {
        abortDistributedRun(error, status: status)  // in an MPI job: ends every rank, now
        printError(error)
    }
    return status
}

/// `gradkit`'s entry point: ``runTool(_:)`` on the process's arguments, every one of which must
/// be UTF-8. Swift would decode another byte as U+FFFD, and a path so changed names another
/// file, one the run could then replace.
package func runTool(argc: Int32, argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>) -> Int32 {
    var arguments: [String] = []
    for index in 1..<Int(Swift.max(argc, 1)) {
        guard let word = argv[index], let text = String(validatingCString: word) else {
            printError("argument \(index) is not valid UTF-8 text: gradkit takes paths and values in UTF-8")
            return 2
        }
        arguments.append(text)
    }
    return runTool(arguments)
}

/// Runs `gradkit` with `arguments`: the exit status (0, 2 for a usage
/// error, 1 for a failure) and the error's line.
func execute(_ arguments: [String]) -> (status: Int32, error: String?) {
    do {
        switch try Invocation(arguments) {
        case .print(let text): print(text)
        case .run(let command, let parsed): try command.run(parsed)
        }
        return (0, nil)
    } catch let error as UsageError {
        let command = arguments.first.flatMap(Command.init(rawValue:))
        return (2, "\(error.description)\(command.map { "; see 'gradkit \($0.rawValue) --help'" } ?? "")")
    } catch {
        return (1, "\(error)")
    }
}

private func command(named name: String) throws(UsageError) -> Command {
    guard let command = Command(rawValue: name) else { throw UsageError("unknown command \(name.quotedForMessage(limit: DisplayText.messageLimit)); see 'gradkit --help'") }
    return command
}

/// Writes `gradkit: message` to standard error as one line (its control characters, line breaks
/// included, escaped), after what the command printed.
func printError(_ message: String) {
    let line = "gradkit: " + message.escapingControlCharacters + "\n"
    fflush(nil)
    _ = line.withCString { write(2, $0, strlen($0)) }
}

/// Why `gradkit info`'s bfloat16 pairs are not `vdpbf16ps` on a CPU that has
/// AVX512_BF16 on the AVX-512 path: its bits disagreed, or its measured rate
/// does not pay. Empty otherwise.
private func vdpbf16psNote() -> String {
    guard Kernels.cpuHasAVX512BF16, Kernels.detectedInstructionSet == .avx512 else { return "" }
    if !Kernels.vdpbf16psChecked { return ", as this CPU's vdpbf16ps disagreed with the contract's bits" }
    let rate = fixed(Kernels.vdpbf16psRate, decimals: 2)
    if Kernels.detectedBFloat16DotProduct == .vdpbf16ps { return ", at \(rate)x the FMA's multiply-add rate" }
    return "; vdpbf16ps agrees with the contract but runs at \(rate)x the FMA's multiply-add rate here, "
        + "below the \(Kernels.vdpbf16psMinimumRate)x it needs to pay"
}
