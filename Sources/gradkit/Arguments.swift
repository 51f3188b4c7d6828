// gradkit — command-line argument parsing. SPDX-License-Identifier: MIT
import GradKit

/// A bad command line: printed as one line, exit code 2.
struct UsageError: Error, CustomStringConvertible {
    let description: String
    init(_ message: String) { description = message }
}

/// `--name value`, `--name=value` and `--flag` options. Every option must be
/// declared by the command reading it: ``finish()`` rejects leftovers, so a
/// typo is an error rather than silently ignored.
struct Arguments {
    private var values: [String: String] = [:]
    private var flags: Set<String> = []
    private var consumed: Set<String> = []
    private var order: [String] = []
    private var missingValue: Set<String> = []

    /// - Parameter flagNames: options that take no value.
    init(_ arguments: [String], flagNames: Set<String>) throws {
        var index = 0
        while index < arguments.count {
            let argument = arguments[index]
            guard argument.hasPrefix("--"), argument.count > 2 else {
                throw UsageError("unexpected argument '\(argument)' (options start with --)")
            }
            var name = String(argument.dropFirst(2))
            var value: String?
            if let equals = name.firstIndex(of: "=") {
                value = String(name[name.index(after: equals)...])
                name = String(name[..<equals])
            }
            guard !values.keys.contains(name), !flags.contains(name), !missingValue.contains(name) else { throw UsageError("--\(name) is given twice") }
            order.append(name)
            if flagNames.contains(name) {
                guard value == nil else { throw UsageError("--\(name) takes no value") }
                flags.insert(name)
            } else {
                if value == nil, index + 1 < arguments.count, !arguments[index + 1].hasPrefix("--") {
                    index += 1
                    value = arguments[index]
                }
                // A missing value is reported by finish(): as such for a known option, as unknown otherwise.
                if let value { values[name] = value } else { missingValue.insert(name) }
            }
            index += 1
        }
    }

    mutating func flag(_ name: String) -> Bool {
        consumed.insert(name)
        return flags.contains(name)
    }

    mutating func string(_ name: String) -> String? {
        consumed.insert(name)
        return values[name]
    }

    mutating func int(_ name: String, range: ClosedRange<Int> = Int.min...Int.max) throws -> Int? {
        guard let text = string(name) else { return nil }
        guard let value = Int(text), range.contains(value) else {
            throw UsageError("--\(name) must be an integer in \(range.lowerBound)...\(range.upperBound), got '\(text)'")
        }
        return value
    }

    mutating func float(_ name: String, atLeast minimum: Float = -.infinity, below maximum: Float = .infinity) throws -> Float? {
        guard let text = string(name) else { return nil }
        guard let value = Float(text), value.isFinite, value >= minimum, value < maximum else {
            let bounds = maximum.isFinite ? "in [\(minimum), \(maximum))" : "a number >= \(minimum)"
            throw UsageError("--\(name) must be \(bounds), got '\(text)'")
        }
        return value
    }

    mutating func choice(_ name: String, _ options: [String]) throws -> String? {
        guard let text = string(name) else { return nil }
        guard options.contains(text) else {
            throw UsageError("--\(name) must be one of \(options.joined(separator: ", ")), got '\(text)'")
        }
        return text
    }

    /// Throws for options nobody read, and for options given without their value.
    func finish() throws {
        if let unknown = order.first(where: { !consumed.contains($0) }) { throw UsageError("unknown option --\(unknown)") }
        if let name = order.first(where: { missingValue.contains($0) }) { throw UsageError("--\(name) needs a value") }
    }
}

/// A command that failed for a reason other than its arguments: one line, exit code 1.
struct CommandError: Error, CustomStringConvertible {
    let description: String
}

/// Writes a text file atomically.
func writeText(_ text: String, to path: String) throws {
    if case .failure(let error) = FileIO.writeAtomically(Array(text.utf8), to: path) {
        throw CommandError(description: "\(path): cannot write: \(error.message)")
    }
}
