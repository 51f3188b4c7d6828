// GradKit — fuzz target: gradkit's command line, parsed and validated without running. SPDX-License-Identifier: MIT
import gradkit

/// Splits the input at NUL bytes into argument words (the one byte a word
/// of `argv` cannot hold), decodes each as `CommandLine.arguments` does
/// (invalid UTF-8 repaired), and parses and validates them as `gradkit`
/// does before a command runs: the option table, the typed values and
/// their ranges, the combinations each command refuses. Nothing trains,
/// reads or writes files.
enum ArgumentsTarget {
    static func run(_ bytes: [UInt8]) {
        do { try checkArguments(words(bytes)) } catch {
            require(!"\(error)".isEmpty, "a usage error without a message")
        }
    }

    /// The words of an input: none for an empty one, else the runs between NUL bytes (empty ones too).
    static func words(_ bytes: [UInt8]) -> [String] {
        bytes.isEmpty ? [] : bytes.split(separator: 0, omittingEmptySubsequences: false).map { String(decoding: $0, as: UTF8.self) }
    }
}
