// gradkit — the command line read against the option table. SPDX-License-Identifier: MIT
import GradKit

/// A command line that is wrong in itself (syntax, an unknown or inapplicable
/// option, a value out of range, options that conflict): one line, exit status 2.
struct UsageError: Error, CustomStringConvertible, Equatable {
    let description: String
    init(_ message: String) { description = message }
}

/// A command that failed for a reason found in files or while running: one line, exit status 1.
struct CommandError: Error, CustomStringConvertible {
    let description: String
    init(_ message: String) { description = message }
}

/// A value read from the command line, typed by its option's ``ValueKind``.
enum OptionValue: Equatable {
    case flag
    case integer(Int)
    case number(Double)
    case text(String)
    case integers([Int])
    case schedule(Schedule)
}

/// A command's options and operands, each value parsed and range-checked by
/// the option table: `--name value`, `--name=value`, `--flag`, and `--` to end
/// the options. An option of another command, an unknown one, one given twice
/// or without its value is a ``UsageError`` naming it.
struct ParsedArguments {
    let command: Command
    /// The arguments as given.
    let arguments: [String]
    private(set) var values: [Option: OptionValue] = [:]
    private(set) var operands: [String] = []

    init(_ arguments: [String], for command: Command) throws(UsageError) {
        self.command = command
        self.arguments = arguments
        var index = 0, optionsEnded = false
        while index < arguments.count {
            let argument = arguments[index]
            index += 1
            if optionsEnded || !argument.hasPrefix("-") || argument == "-" || Double(argument) != nil {
                operands.append(argument)
            } else if argument == "--" {
                optionsEnded = true
            } else {
                try readOption(argument, from: arguments, at: &index)
            }
        }
        try checkOperands()
    }

    private mutating func readOption(_ argument: String, from arguments: [String], at index: inout Int) throws(UsageError) {
        guard argument.hasPrefix("--"), argument.count > 2 else {
            throw UsageError("unknown option \(argument.quotedForMessage(limit: DisplayText.messageLimit)) (options start with --)")
        }
        var name = String(argument.dropFirst(2)), inline: String?
        if let equals = name.firstIndex(of: "=") {
            inline = String(name[name.index(after: equals)...])
            name = String(name[..<equals])
        }
        let option = try Option.named(name, for: command)
        guard values[option] == nil else { throw UsageError("--\(name) is given twice") }
        let specification = option.specification
        if specification.kind.isFlag {
            guard inline == nil else { throw UsageError("--\(name) takes no value") }
            values[option] = .flag
        } else {
            var text = inline
            if text == nil, index < arguments.count, !arguments[index].hasPrefix("--") {
                text = arguments[index]
                index += 1
            }
            guard let text else { throw UsageError("--\(name) needs a value (\(specification.placeholder))") }
            values[option] = try specification.kind.parse(text, option: "--\(name)")
        }
    }

    private func checkOperands() throws(UsageError) {
        let expected = command.operands
        if operands.count > expected.count {
            let extra = operands[expected.count]
            throw UsageError(expected.isEmpty ? "unexpected argument \(extra.quotedForMessage(limit: DisplayText.messageLimit)) (options start with --)" : "unexpected argument \(extra.quotedForMessage(limit: DisplayText.messageLimit)) after \(expected.joined(separator: " "))")
        }
        if operands.count < expected.count { throw UsageError("missing \(expected[operands.count]) (\(command.usage))") }
    }

    func has(_ option: Option) -> Bool { values[option] != nil }

    func flag(_ option: Option) -> Bool { values[option] == .flag }

    func integer(_ option: Option) -> Int? {
        guard let value = values[option] else { return nil }
        guard case .integer(let n) = value else { fatalError("\(option) is not an integer option") }
        return n
    }

    func number(_ option: Option) -> Double? {
        guard let value = values[option] else { return nil }
        guard case .number(let x) = value else { fatalError("\(option) is not a number option") }
        return x
    }

    func text(_ option: Option) -> String? {
        guard let value = values[option] else { return nil }
        guard case .text(let s) = value else { fatalError("\(option) is not a text option") }
        return s
    }

    func integers(_ option: Option) -> [Int]? {
        guard let value = values[option] else { return nil }
        guard case .integers(let list) = value else { fatalError("\(option) is not a list option") }
        return list
    }

    func schedule(_ option: Option) -> Schedule? {
        guard let value = values[option] else { return nil }
        guard case .schedule(let s) = value else { fatalError("\(option) is not a schedule option") }
        return s
    }

    /// The one option of `options` given, if any.
    /// - Throws: ``UsageError`` when more than one is given.
    func oneOf(_ options: [Option]) throws(UsageError) -> Option? {
        let present = options.filter(has)
        guard present.count <= 1 else {
            throw UsageError("give only one of \(options.map(\.flagName).joined(separator: ", "))")
        }
        return present.first
    }
}

/// The finite numbers an option accepts, in interval notation.
struct ValueRange: Equatable, CustomStringConvertible {
    var lower: Double
    var includesLower: Bool
    var upper: Double?
    var includesUpper: Bool

    static func atLeast(_ lower: Double) -> ValueRange { ValueRange(lower: lower, includesLower: true, upper: nil, includesUpper: false) }
    static func above(_ lower: Double) -> ValueRange { ValueRange(lower: lower, includesLower: false, upper: nil, includesUpper: false) }
    static func halfOpen(_ lower: Double, _ upper: Double) -> ValueRange {
        ValueRange(lower: lower, includesLower: true, upper: upper, includesUpper: false)
    }
    static func closed(_ lower: Double, _ upper: Double) -> ValueRange {
        ValueRange(lower: lower, includesLower: true, upper: upper, includesUpper: true)
    }

    /// The library's range of a hyperparameter.
    init(_ range: HyperparameterRange) {
        self.init(lower: Double(range.lowerBound), includesLower: true, upper: range.upperBound.map(Double.init), includesUpper: range.includesUpperBound)
    }

    init(lower: Double, includesLower: Bool, upper: Double?, includesUpper: Bool) {
        self.lower = lower
        self.includesLower = includesLower
        self.upper = upper
        self.includesUpper = includesUpper
    }

    func contains(_ value: Double) -> Bool {
        guard value.isFinite, includesLower ? value >= lower : value > lower else { return false }
        guard let upper else { return true }
        return includesUpper ? value <= upper : value < upper
    }

    var description: String {
        let upperText = upper.map { "\(shortNumber($0))\(includesUpper ? "]" : ")")" } ?? "∞)"
        return "\(includesLower ? "[" : "(")\(shortNumber(lower)), \(upperText)"
    }
}

extension ValueKind {
    /// `text` as this kind's value.
    /// - Throws: ``UsageError`` naming `option` when the text is not such a value.
    func parse(_ text: String, option: String) throws(UsageError) -> OptionValue {
        switch self {
        case .flag: return .flag
        case .integer(let range): return .integer(try parseInteger(text, range: range, what: option))
        case .number(let range): return .number(try parseNumber(text, range: range, what: option))
        // Its range is the chosen optimizer's, checked once the optimizer is known.
        case .hyperparameter: return .number(try parseNumber(text, range: nil, what: option))
        case .choice(let choices):
            guard choices.contains(text) else { throw UsageError("\(option) must be one of \(choices.joined(separator: ", ")), got \(text.quotedForMessage(limit: DisplayText.messageLimit))") }
            return .text(text)
        case .text, .separator: return .text(text)
        case .inputFile, .inputFiles, .outputFile, .outputDirectory:
            guard !text.isEmpty else { throw UsageError("\(option) needs a path, got an empty one") }
            return .text(text)
        case .integerList(let each, let count):
            let parts = text.split(separator: ",", omittingEmptySubsequences: false)
            guard count.contains(parts.count) else {
                throw UsageError("\(option) needs \(count.lowerBound) to \(count.upperBound) integers separated by commas, got \(parts.count) in \(text.quotedForMessage(limit: DisplayText.messageLimit))")
            }
            var list: [Int] = []
            for part in parts { list.append(try parseInteger(String(part), range: each, what: "each value of \(option)")) }
            return .integers(list)
        case .schedule: return .schedule(try Schedule(parsing: text))
        }
    }
}

/// A whole number in `range`; "2.5", "1e3" and values beyond `Int` are errors, never rounded or trapped on.
func parseInteger(_ text: String, range: ClosedRange<Int>, what: String) throws(UsageError) -> Int {
    guard let value = Int(text), range.contains(value) else {
        let fractional = Double(text).map { $0.isFinite && $0 != $0.rounded() } ?? false
        let kind = fractional ? " whole number" : "n integer"
        throw UsageError("\(what) must be a\(kind) in \(range.lowerBound)...\(range.upperBound), got \(text.quotedForMessage(limit: DisplayText.messageLimit))")
    }
    return value
}

/// A finite decimal number in `range` (any, when nil) that a Float can hold: every
/// number ends up a Float or is compared with one.
func parseNumber(_ text: String, range: ValueRange?, what: String) throws(UsageError) -> Double {
    // Decimal only, as in the data files: Swift would also read "0x10" (16) and "0x1p-3".
    let decimal = text.allSatisfy { "0123456789+-.eE".contains($0) }
    guard decimal, let value = Double(text), value.isFinite, Float(value).isFinite, range?.contains(value) ?? true else {
        throw UsageError("\(what) must be a number\(range.map { " in \($0)" } ?? " a Float can hold"), got \(text.quotedForMessage(limit: DisplayText.messageLimit))")
    }
    // A number above 0 must not become 0 where 0 is allowed (--lr 1e-300 asked for a
    // step, its Float takes none); where 0 is not, the range check below says so.
    if value > 0, Float(value) == 0, range?.contains(0) ?? true {
        throw UsageError("\(what) got \(text.quotedForMessage(limit: DisplayText.messageLimit)), which a Float holds as 0 (the smallest Float above 0 is \(Float.leastNonzeroMagnitude))")
    }
    // The Float it becomes must be in range too.
    if let range, !range.contains(Double(Float(value))) {
        throw UsageError("\(what) must be a number in \(range) as a Float, got \(text.quotedForMessage(limit: DisplayText.messageLimit)), which a Float holds as \(Float(value))")
    }
    return value
}
