// gradkit — the command-line tool. SPDX-License-Identifier: MIT
#if canImport(Glibc)
import Glibc
#endif
import GradKit

let usage = """
    usage: gradkit <command> [options]

    Commands:
      info         print the kernel configuration (CPU, threads, instruction set, build)
      train        train an MLP on an embedded data set or IDX/CSV files (gradkit train --help)
      inspect      print a safetensors checkpoint's tensors and metadata (gradkit inspect FILE)
      lab          run the gradient-pathology experiments and write a report (gradkit lab --help)
      lr-find      the learning-rate range test: loss against a growing learning rate (gradkit lr-find --help)

    Options:
      --help, -h   show this help
      --version    print the version
    """

/// Prints one line to standard error and exits with status 2 (bad usage) or 1 (failure).
func fail(_ message: String, status: Int32 = 2) -> Never {
    abortDistributedRun(message, status: status)
    let line = "gradkit: \(message)\n"
    _ = line.withCString { write(2, $0, strlen($0)) }
    exit(status)
}

let arguments = Array(CommandLine.arguments.dropFirst())
let rest = Array(arguments.dropFirst())
do {
    switch arguments.first {
    case nil, "--help", "-h", "help":
        print(usage)
    case "--version", "version":
        print("gradkit \(gradKitVersion)")
    case "info":
        print("gradkit \(gradKitVersion)")
        print(Kernels.summary)
    case "train":
        if rest.contains("--help") || rest.contains("-h") { print(trainUsage) } else { try train(rest) }
    case "inspect":
        try inspect(rest)
    case "lab":
        if rest.contains("--help") || rest.contains("-h") { print(labUsage) } else { try lab(rest) }
    case "lr-find":
        if rest.contains("--help") || rest.contains("-h") { print(lrFindUsage) } else { try lrFind(rest) }
    case let other?:
        fail("unknown command '\(other)'; see 'gradkit --help'")
    }
} catch let error as UsageError {
    fail("\(error.description); see 'gradkit \(arguments.first ?? "") --help'")
} catch {
    fail("\(error)", status: 1)
}
