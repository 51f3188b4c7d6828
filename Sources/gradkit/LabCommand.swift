// gradkit lab — the gradient-pathology experiments and their report. SPDX-License-Identifier: MIT
import GradKit
import GradKitLab

let labUsage = """
    usage: gradkit lab [--quick] [--output DIR] [--seed N] [--only NAME] [--threads N]

    Runs experiments that show each gradient pathology and its cure on data GradKit ships, every
    configuration at several seeds, and writes DIR/report.md (tables, verdicts, linked SVG
    figures), DIR/results.json and DIR/figures/.

      --quick        3 seeds and fewer epochs instead of 5 seeds: the whole lab in well under a minute
      --output DIR   where to write (default ./gradkit-lab)
      --seed N       the seed the run seeds derive from (default 0: seeds 0, 1, 2, ...; N: 1000·N, 1000·N + 1, ...)
      --only NAME    run only experiments whose name contains NAME:
                     \(Lab.experimentNames.joined(separator: ", "))
      --threads N    trials trained at once, each on one kernel thread (default: all CPUs);
                     the numbers do not depend on it
    """

/// Runs `gradkit lab`.
func lab(_ commandLine: [String]) throws {
    var a = try Arguments(commandLine, flagNames: ["quick"])
    let quick = a.flag("quick")
    let output = a.string("output") ?? "gradkit-lab"
    let seed = UInt64(try a.int("seed", range: 0...Int.max) ?? 0)
    let only = a.string("only")
    let threads = try a.int("threads", range: 1...4096) ?? Kernels.threadCount
    try a.finish()
    if let only, !Lab.experimentNames.contains(where: { $0.contains(only) }) {
        throw UsageError("--only '\(only)' matches no experiment (\(Lab.experimentNames.joined(separator: ", ")))")
    }
    // Several trials at once, each with one kernel thread: the networks are small, so a trial gains
    // little from splitting its kernels, and trials on their own cores never wait for each other.
    if threads > 1 { Kernels.threadCount = 1 }
    let options = LabOptions(quick: quick, seed: seed, only: only, threads: threads)
    try Lab.prepareOutput(output)
    let clock = ContinuousClock()
    let started = clock.now
    let results = Lab.run(options) { print($0) }
    let elapsed = started.duration(to: clock.now)
    let total = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) * 1e-18
    try Lab.writeReport(results, options: options, totalSeconds: total, to: output)
    print("wrote \(output)/report.md, \(output)/results.json and \(results.reduce(0) { $0 + $1.figures.count }) figures in \(output)/figures/ (\(format(Float(total), digits: 1)) s)")
}
