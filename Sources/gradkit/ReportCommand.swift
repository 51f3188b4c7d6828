// gradkit report — a run's gradient-health report from its JSON-lines log. SPDX-License-Identifier: MIT
import GradKit

/// Runs `gradkit report LOG --output DIR`.
func reportCommand(_ arguments: ParsedArguments) throws {
    let log = arguments.operands[0], output = arguments.text(.reportOutput) ?? "gradkit-report"
    var files = RunFiles()
    files.input("LOG", log)
    files.directory(Option.reportOutput.flagName, output, writes: ["report.md", "figures/"])
    try files.check()
    let history = try RunHistory(jsonLinesAt: log)
    guard history.stepCount > 0 || history.latestSample != nil else {
        throw CommandError("\(log.shownInMessage) holds no step or layers records: nothing to report (give the --log of a gradkit train "
            + "run, or a log written with the GradientMonitor's records)")
    }
    if let first = history.cutLines.first {
        let more = history.cutLines.count > 1 ? " and \(history.cutLines.count - 1) more" : ""
        printError("note: skipped line \(first)\(more) of \(log.shownInMessage): cut off before the end of its record")
    }
    if let first = history.restartLines.first {
        let more = history.restartLines.count > 1 ? " (and \(history.restartLines.count - 1) more restarts)" : ""
        printError("note: line \(first)\(more) of \(log.shownInMessage) starts a later run at an earlier step (a resume or a new run "
            + "in the same log); it replaces the records from that step on")
    }
    try history.writeReport(to: output)
    print("wrote \(output)/report.md and its figures in \(output)/figures/ (\(history.stepCount) steps, \(history.layers.count) layers)")
}
