// gradkit — the command-line tool. SPDX-License-Identifier: MIT
#if canImport(Glibc)
import Glibc
#endif
import GradKit

let usage = """
    usage: gradkit <command> [options]

    Commands:
      info         print the kernel configuration (CPU, threads, instruction set, build)
      lab          run the gradient-pathology experiments (not yet available)
      train        train a model from the command line (not yet available)
      inspect      print a checkpoint's tensors (not yet available)
      lr-find      run the learning-rate range test (not yet available)

    Options:
      --help, -h   show this help
      --version    print the version
    """

func fail(_ message: String) -> Never {
    let line = "gradkit: \(message)\n"
    _ = line.withCString { write(2, $0, strlen($0)) }
    exit(2)
}

let arguments = Array(CommandLine.arguments.dropFirst())
switch arguments.first {
case nil, "--help", "-h", "help":
    print(usage)
case "--version", "version":
    print("gradkit \(gradKitVersion)")
case "info":
    print("gradkit \(gradKitVersion)")
    print(Kernels.summary)
case let command? where ["lab", "train", "inspect", "lr-find"].contains(command):
    fail("'\(command)' is not available yet in this version")
case let other?:
    fail("unknown command '\(other)'; see 'gradkit --help'")
}
