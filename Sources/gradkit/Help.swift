// gradkit — help text, generated from the option table. SPDX-License-Identifier: MIT
import GradKit

/// `gradkit --help`.
var toolHelp: String {
    var lines = ["usage: gradkit <command> [options]", "", "Commands:"]
    for command in Command.allCases { lines.append(column("  " + command.rawValue, command.summary, width: 15)) }
    lines += ["", "Options:", column("  --help, -h", "show this help (gradkit <command> --help: the command's)", width: 15)]
    lines.append(column("  --version", "print the version", width: 15))
    return lines.joined(separator: "\n")
}

/// `gradkit <command> --help`: usage, introduction, then the command's
/// options in the table's order, grouped under headings.
func help(for command: Command) -> String {
    var lines = [command.usage, "", command.introduction]
    let options = OptionTable.all.filter { $0.commands.contains(command) }
    // The options train shares with lr-find are grouped as train's; other commands list theirs in one group.
    let grouped = options.contains { $0.group == .data }
    for group in HelpGroup.allCases {
        let members = grouped ? options.filter { $0.group == group } : (group == .lab ? options : [])
        guard !members.isEmpty else { continue }
        lines += ["", group.title]
        for specification in members { lines += helpLines(specification) }
    }
    if let example = command.example { lines += ["", "Example: " + example] }
    return lines.joined(separator: "\n")
}

/// An option's help: name and placeholder, then its text with what the
/// table knows (choices, range, the optimizers of a hyperparameter), wrapped.
private func helpLines(_ specification: OptionSpecification) -> [String] {
    let head = "  --\(specification.name)" + (specification.placeholder.isEmpty ? "" : " " + specification.placeholder)
    var text = specification.help
    switch specification.kind {
    case .choice(let choices) where !choices.allSatisfy({ text.contains($0) }): text += ": " + choices.joined(separator: ", ")
    case .integer(let range) where range.upperBound < Int.max: text += " [\(range.lowerBound)...\(range.upperBound)]"
    case .number(let range): text += " \(range)"
    case .hyperparameter(let h): text += "; " + OptimizerKind.helpText(for: h)
    default: break
    }
    return wrap(head, text, width: 26)
}

/// `head` padded to `width`, then `text`.
private func column(_ head: String, _ text: String, width: Int) -> String {
    head + String(repeating: " ", count: Swift.max(1, width - head.count)) + text
}

/// `head` and `text` in two columns, `text` wrapped at 100 characters.
private func wrap(_ head: String, _ text: String, width: Int) -> [String] {
    var lines: [String] = [], line = ""
    let limit = 100 - width
    for word in text.split(separator: " ") {
        if !line.isEmpty, line.count + 1 + word.count > limit {
            lines.append(line)
            line = ""
        }
        line += (line.isEmpty ? "" : " ") + word
    }
    lines.append(line)
    let first = head.count < width ? [column(head, lines[0], width: width)] : [head, String(repeating: " ", count: width) + lines[0]]
    return first + lines.dropFirst().map { String(repeating: " ", count: width) + $0 }
}
