// gradkit — the commands and the dispatch from the command line to them. SPDX-License-Identifier: MIT
#if canImport(Glibc)
import Glibc
#endif
import GradKit

/// A `gradkit` command: its name, operands, help and body.
enum Command: String, CaseIterable, Hashable {
    case info, train, inspect, lab
    case lrFind = "lr-find"
    case report

    /// One line for the tool's help.
    var summary: String {
        switch self {
        case .info: "print the kernel configuration (CPU, threads, instruction set, build)"
        case .train: "train an MLP on an embedded data set or IDX/CSV files"
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
        case .inspect:
            """
            Prints each tensor's name, shape and L2 norm, then the metadata. Names and values are printed with
            control characters escaped (\\n, \\u{1B}), so a file cannot steer the terminal.
            """
        case .lab:
            """
            Runs experiments that show each gradient pathology and its cure on data GradKit ships, and writes
            DIR/report.md (tables, verdicts, linked SVG figures), DIR/results.json and DIR/figures/.
            """
        case .lrFind:
            """
            The learning-rate range test (Smith, 2017): trains for --steps steps while the learning rate grows
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
        case .report: "gradkit train --log run.jsonl && gradkit report run.jsonl --output run-report"
        default: nil
        }
    }

    /// Parses `arguments` against the option table and runs the command.
    func run(_ arguments: [String]) throws {
        let parsed = try ParsedArguments(arguments, for: self)
        switch self {
        case .info:
            print("gradkit \(gradKitVersion)")
            print(Kernels.summary)
        case .train: try trainCommand(parsed)
        case .inspect: try inspectCommand(parsed)
        case .lab: try labCommand(parsed)
        case .lrFind: try lrFindCommand(parsed)
        case .report: try reportCommand(parsed)
        }
    }
}

/// Runs `gradkit` with `arguments` (without the program name), prints an
/// error as one line on standard error, and returns the exit status.
func runTool(_ arguments: [String]) -> Int32 {
    let (status, error) = execute(arguments)
    if let error {
        abortDistributedRun(error, status: status)  // in an MPI job: ends every rank, now
        printError(error)
    }
    return status
}

/// Runs `gradkit` with `arguments`: the exit status (0, 2 for a usage
/// error, 1 for a failure) and the error's line.
func execute(_ arguments: [String]) -> (status: Int32, error: String?) {
    let rest = Array(arguments.dropFirst())
    do {
        switch arguments.first {
        case nil, "--help", "-h":
            print(toolHelp)
        case "--version", "version":
            print("gradkit \(gradKitVersion)")
        case "help":
            print(try rest.first.map { help(for: try command(named: $0)) } ?? toolHelp)
        case let name?:
            let command = try command(named: name)
            if rest.contains("--help") || rest.contains("-h") { print(help(for: command)) } else { try command.run(rest) }
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

/// Writes `gradkit: message` to standard error as one line, after what the command printed.
func printError(_ message: String) {
    let line = "gradkit: " + escapedLine(message) + "\n"
    fflush(nil)
    _ = line.withCString { write(2, $0, strlen($0)) }
}

/// `message` on one line: line breaks inside it (a path may hold one) written as `\n` and `\r`.
func escapedLine(_ message: String) -> String {
    var line = ""
    for scalar in message.unicodeScalars {
        switch scalar {
        case "\n": line += "\\n"
        case "\r": line += "\\r"
        default: line.unicodeScalars.append(scalar)
        }
    }
    return line
}
