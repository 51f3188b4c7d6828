// gradkit lab — the gradient-pathology experiments and their report. SPDX-License-Identifier: MIT
import GradKit
import GradKitLab

/// Runs `gradkit lab`.
func labCommand(_ arguments: ParsedArguments) throws {
    let output = arguments.text(.labOutput) ?? "gradkit-lab"
    let only = try labExperimentFilter(arguments)
    var files = RunFiles()
    files.directory(Option.labOutput.flagName, output, writes: ["report.md", "results.json", "figures/"])
    try files.check()
    // --threads trials at once, each with one kernel thread: the networks are small, so a trial gains
    // little from splitting its kernels, and trials on their own cores never wait for each other.
    let threads = arguments.integer(.threads) ?? Kernels.threadCount
    if threads > 1 { Kernels.threadCount = 1 }
    let options = LabOptions(
        quick: arguments.flag(.quick), seed: UInt64(arguments.integer(.seed) ?? 0), only: only, threads: threads,
        matmulPrecision: arguments.matmulPrecision())
    try Lab.prepareOutput(output)
    let clock = ContinuousClock()
    let started = clock.now
    let results = Lab.run(options) { print($0) }
    let total = started.duration(to: clock.now).seconds
    try Lab.writeReport(results, options: options, totalSeconds: total, to: output)
    print("wrote \(output)/report.md, \(output)/results.json and \(results.reduce(0) { $0 + $1.figures.count }) figures in \(output)/figures/ (\(fixed(Float(total))) s)")
}

/// `--only`, which must match an experiment's name.
func labExperimentFilter(_ arguments: ParsedArguments) throws(UsageError) -> String? {
    let only = arguments.text(.only)
    if let only, only.isEmpty || !Lab.experimentNames.contains(where: { $0.contains(only) }) {
        throw UsageError("--only \(only.quotedForMessage(limit: DisplayText.messageLimit)) matches no experiment (\(Lab.experimentNames.joined(separator: ", ")))")
    }
    return only
}
