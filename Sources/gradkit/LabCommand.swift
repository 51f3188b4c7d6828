// gradkit lab — the gradient-pathology experiments and their report. SPDX-License-Identifier: MIT
import GradKit
import GradKitLab

let labUsage = """
    usage: gradkit lab [--quick] [--output DIR] [--seed N] [--only NAME] [--threads N]

    Runs experiments that show each gradient pathology and its cure on data GradKit ships, and
    writes DIR/report.md (tables, verdicts, linked SVG figures), DIR/results.json and DIR/figures/.

      --quick        fewer epochs: the whole lab in well under a minute
      --output DIR   where to write (default ./gradkit-lab)
      --seed N       seed for data splits, initialization and shuffling (default 0)
      --only NAME    run only experiments whose name contains NAME:
                     \(Lab.experimentNames.joined(separator: ", "))
      --threads N    kernel threads (default: all CPUs)
    """

/// Runs `gradkit lab`.
func lab(_ commandLine: [String]) throws {
    var a = try Arguments(commandLine, flagNames: ["quick"])
    let quick = a.flag("quick")
    let output = a.string("output") ?? "gradkit-lab"
    let seed = UInt64(try a.int("seed", range: 0...Int.max) ?? 0)
    let only = a.string("only")
    let threads = try a.int("threads", range: 1...4096)
    try a.finish()
    if let only, !Lab.experimentNames.contains(where: { $0.contains(only) }) {
        throw UsageError("--only '\(only)' matches no experiment (\(Lab.experimentNames.joined(separator: ", ")))")
    }
    if let threads { Kernels.threadCount = threads }
    let options = LabOptions(quick: quick, seed: seed, only: only)
    try Lab.prepareOutput(output)
    let clock = ContinuousClock()
    let started = clock.now
    let results = Lab.run(options) { print($0) }
    let elapsed = started.duration(to: clock.now)
    let total = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) * 1e-18
    try Lab.writeReport(
        results, options: options, command: (["gradkit", "lab"] + commandLine).joined(separator: " "), totalSeconds: total, to: output)
    print("wrote \(output)/report.md, \(output)/results.json and \(results.reduce(0) { $0 + $1.figures.count }) figures in \(output)/figures/ (\(format(Float(total), digits: 1)) s)")
}
