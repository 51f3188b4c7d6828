// GradKit — a small JSON reader and writer (RFC 8259), without Foundation. SPDX-License-Identifier: MIT

/// A JSON value. Objects keep their keys sorted when written, so output is
/// deterministic.
package enum JSON: Equatable, Sendable {
    case null
    case bool(Bool)
    case number(Double)
    case string(String)
    case array([JSON])
    case object([String: JSON])

    package subscript(key: String) -> JSON? {
        if case .object(let members) = self { return members[key] }
        return nil
    }

    package var stringValue: String? { if case .string(let s) = self { return s } else { return nil } }
    package var numberValue: Double? { if case .number(let n) = self { return n } else { return nil } }
    package var arrayValue: [JSON]? { if case .array(let a) = self { return a } else { return nil } }
    package var objectValue: [String: JSON]? { if case .object(let o) = self { return o } else { return nil } }

    /// An exact non-negative integer (at most 2^53, where Doubles stop being
    /// exact), or nil for anything else (-1, 1.5, 1e300, 2^63); -0 is 0.
    /// Never traps.
    package var integerValue: Int? {
        guard case .number(let n) = self, n >= 0, n <= 9_007_199_254_740_992, n == n.rounded() else { return nil }
        return Int(n)
    }

    /// Compact text; non-finite numbers become `null` (JSON has no NaN).
    package var text: String {
        var out = ""
        write(to: &out)
        return out
    }

    private func write(to out: inout String) {
        switch self {
        case .null: out += "null"
        case .bool(let b): out += b ? "true" : "false"
        case .number(let n):
            if !n.isFinite {
                out += "null"
            } else if n == n.rounded(), Swift.abs(n) < 1e15 {
                out += String(Int64(n))
            } else {
                out += "\(n)"
            }
        case .string(let s): JSON.writeString(s, to: &out)
        case .array(let items):
            out += "["
            for (i, item) in items.enumerated() {
                if i > 0 { out += "," }
                item.write(to: &out)
            }
            out += "]"
        case .object(let members):
            out += "{"
            for (i, key) in members.keys.sorted().enumerated() {
                if i > 0 { out += "," }
                JSON.writeString(key, to: &out)
                out += ":"
                members[key]!.write(to: &out)
            }
            out += "}"
        }
    }

    private static func writeString(_ s: String, to out: inout String) {
        out += "\""
        for scalar in s.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case _ where scalar.value < 0x20:
                let hex = String(scalar.value, radix: 16)
                out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            default: out.unicodeScalars.append(scalar)
            }
        }
        out += "\""
    }

    /// Parses `bytes` (UTF-8). Throws ``JSONError`` with the byte offset of
    /// the first problem. No input traps or overflows the stack: nesting
    /// deeper than 64 levels, a key repeated within an object, numbers beyond
    /// Double's range, invalid UTF-8, unpaired surrogates and raw control
    /// characters in strings are all errors.
    /// - Parameter maximumValues: The most values (numbers, strings, arrays,
    ///   objects ...) the text may hold: parsing stops with an error at the
    ///   next one, which bounds the time and memory a hostile text costs.
    package static func parse(_ bytes: ArraySlice<UInt8>, maximumValues: Int = .max) throws(JSONError) -> JSON {
        var parser = Parser(bytes: bytes, maximumValues: maximumValues)
        let value = try parser.value(depth: 0)
        parser.skipSpace()
        guard parser.position == bytes.endIndex else { throw parser.error("unexpected text after the value") }
        return value
    }

    package static func parse(_ text: String) throws(JSONError) -> JSON { try parse(ArraySlice(Array(text.utf8))) }

    private struct Parser {
        let bytes: ArraySlice<UInt8>
        var position: Int

        let maximumValues: Int
        var remainingValues: Int

        init(bytes: ArraySlice<UInt8>, maximumValues: Int) {
            self.bytes = bytes
            self.maximumValues = maximumValues
            remainingValues = maximumValues
            position = bytes.startIndex
        }

        func error(_ reason: String) -> JSONError { JSONError(offset: position - bytes.startIndex, reason: reason) }

        mutating func skipSpace() {
            while position < bytes.endIndex, [0x20, 0x09, 0x0A, 0x0D].contains(bytes[position]) { position += 1 }
        }

        mutating func expect(_ literal: String) throws(JSONError) {
            for byte in literal.utf8 {
                guard position < bytes.endIndex, bytes[position] == byte else { throw error("expected '\(literal)'") }
                position += 1
            }
        }

        mutating func value(depth: Int) throws(JSONError) -> JSON {
            guard depth < 64 else { throw error("nesting deeper than 64 levels") }
            guard remainingValues > 0 else { throw error("more than \(maximumValues) values") }
            remainingValues -= 1
            skipSpace()
            guard position < bytes.endIndex else { throw error("unexpected end of input") }
            switch bytes[position] {
            case UInt8(ascii: "n"): try expect("null"); return .null
            case UInt8(ascii: "t"): try expect("true"); return .bool(true)
            case UInt8(ascii: "f"): try expect("false"); return .bool(false)
            case UInt8(ascii: "\""): return .string(try string())
            case UInt8(ascii: "["):
                position += 1
                var items: [JSON] = []
                skipSpace()
                if position < bytes.endIndex, bytes[position] == UInt8(ascii: "]") {
                    position += 1
                    return .array(items)
                }
                while true {
                    items.append(try value(depth: depth + 1))
                    skipSpace()
                    guard position < bytes.endIndex else { throw error("unterminated array") }
                    if bytes[position] == UInt8(ascii: "]") { position += 1; return .array(items) }
                    guard bytes[position] == UInt8(ascii: ",") else { throw error("expected ',' or ']'") }
                    position += 1
                }
            case UInt8(ascii: "{"):
                position += 1
                var members: [String: JSON] = [:]
                skipSpace()
                if position < bytes.endIndex, bytes[position] == UInt8(ascii: "}") {
                    position += 1
                    return .object(members)
                }
                while true {
                    skipSpace()
                    guard position < bytes.endIndex, bytes[position] == UInt8(ascii: "\"") else { throw error("expected a key string") }
                    let keyStart = position
                    let key = try string()
                    skipSpace()
                    guard position < bytes.endIndex, bytes[position] == UInt8(ascii: ":") else { throw error("expected ':'") }
                    position += 1
                    let member = try value(depth: depth + 1)
                    guard members.updateValue(member, forKey: key) == nil else {
                        position = keyStart
                        throw error("duplicate key \(key.quotedForMessage())")
                    }
                    skipSpace()
                    guard position < bytes.endIndex else { throw error("unterminated object") }
                    if bytes[position] == UInt8(ascii: "}") { position += 1; return .object(members) }
                    guard bytes[position] == UInt8(ascii: ",") else { throw error("expected ',' or '}'") }
                    position += 1
                }
            default:
                return .number(try number())
            }
        }

        /// RFC 8259's grammar: -? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?
        mutating func number() throws(JSONError) -> Double {
            let start = position
            func isDigit(_ at: Int) -> Bool { at < bytes.endIndex && bytes[at] >= 0x30 && bytes[at] <= 0x39 }
            func digits() throws(JSONError) {
                guard isDigit(position) else { throw error(position == start ? "invalid value" : "expected a digit") }
                while isDigit(position) { position += 1 }
            }
            let negative = position < bytes.endIndex && bytes[position] == UInt8(ascii: "-")
            if negative { position += 1 }
            let integerStart = position
            if position < bytes.endIndex, bytes[position] == UInt8(ascii: "0") {
                position += 1
            } else {
                try digits()
            }
            // Integers of up to 15 digits (offsets, shapes: most of a header) are
            // exact as Doubles and need no text conversion.
            if position - integerStart <= 15, !(position < bytes.endIndex && (bytes[position] == UInt8(ascii: ".") || bytes[position] | 0x20 == UInt8(ascii: "e"))) {
                var value = 0
                for i in integerStart..<position { value = value * 10 + Int(bytes[i] - 0x30) }
                return negative ? -Double(value) : Double(value)
            }
            if position < bytes.endIndex, bytes[position] == UInt8(ascii: ".") {
                position += 1
                try digits()
            }
            if position < bytes.endIndex, bytes[position] | 0x20 == UInt8(ascii: "e") {
                position += 1
                if position < bytes.endIndex, bytes[position] == UInt8(ascii: "+") || bytes[position] == UInt8(ascii: "-") { position += 1 }
                try digits()
            }
            guard let text = String(validating: bytes[start..<position], as: UTF8.self), let value = Double(text), value.isFinite else {
                position = start
                throw error("number out of range")
            }
            return value
        }

        mutating func hex4() throws(JSONError) -> UInt32 {
            guard position + 4 <= bytes.endIndex else {
                position = bytes.endIndex  // the input ends inside the escape: an error at its end
                throw error("truncated \\u escape")
            }
            var value: UInt32 = 0
            for _ in 0..<4 {
                let byte = bytes[position]
                let digit: UInt32
                switch byte {
                case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = UInt32(byte - UInt8(ascii: "0"))
                case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = UInt32(byte - UInt8(ascii: "a") + 10)
                case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = UInt32(byte - UInt8(ascii: "A") + 10)
                default: throw error("bad \\u escape")
                }
                value = value << 4 | digit
                position += 1
            }
            return value
        }

        mutating func string() throws(JSONError) -> String {
            let quote = UInt8(ascii: "\""), backslash = UInt8(ascii: "\\")
            let opening = position
            position += 1
            // The text is gathered as UTF-8 bytes, runs of plain bytes copied
            // whole, and validated once at the end: escapes add only complete
            // sequences, so an invalid run stays invalid in the whole.
            var utf8: [UInt8] = []
            func append(_ scalar: Unicode.Scalar) {
                if scalar.isASCII { utf8.append(UInt8(scalar.value)) } else { UTF8.encode(scalar) { utf8.append($0) } }
            }
            while true {
                let runStart = position
                while position < bytes.endIndex, bytes[position] != quote, bytes[position] != backslash, bytes[position] >= 0x20 { position += 1 }
                guard position < bytes.endIndex else { throw error("unterminated string") }
                guard bytes[position] >= 0x20 else { throw error("control character in a string") }
                if position > runStart { utf8.append(contentsOf: bytes[runStart..<position]) }
                if bytes[position] == quote {
                    position += 1
                    break
                }
                let escapeStart = position
                position += 1
                guard position < bytes.endIndex else { throw error("unterminated escape") }
                let escape = bytes[position]
                position += 1
                switch escape {
                case UInt8(ascii: "\""): append("\"")
                case UInt8(ascii: "\\"): append("\\")
                case UInt8(ascii: "/"): append("/")
                case UInt8(ascii: "b"): append("\u{08}")
                case UInt8(ascii: "f"): append("\u{0C}")
                case UInt8(ascii: "n"): append("\n")
                case UInt8(ascii: "r"): append("\r")
                case UInt8(ascii: "t"): append("\t")
                case UInt8(ascii: "u"):
                    var code = try hex4()
                    if (0xD800...0xDBFF).contains(code) {
                        guard position + 1 < bytes.endIndex, bytes[position] == backslash, bytes[position + 1] == UInt8(ascii: "u") else {
                            // The input ending where the low half's "\u" would be is cut: an error at its end.
                            let cut = position == bytes.endIndex || (position + 1 == bytes.endIndex && bytes[position] == backslash)
                            position = cut ? bytes.endIndex : escapeStart
                            throw error(cut ? "unterminated surrogate pair" : "unpaired surrogate")
                        }
                        position += 2
                        let low = try hex4()
                        guard (0xDC00...0xDFFF).contains(low) else {
                            position = escapeStart
                            throw error("unpaired surrogate")
                        }
                        code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00)
                    }
                    guard let scalar = UnicodeScalar(code) else {
                        position = escapeStart
                        throw error("invalid code point")
                    }
                    append(scalar)
                default:
                    position = escapeStart
                    throw error("unknown escape")
                }
            }
            guard let text = String(validating: utf8, as: UTF8.self) else {
                position = opening
                throw error("invalid UTF-8 in the string")
            }
            return text
        }
    }
}

/// A JSON syntax error at a byte offset.
package struct JSONError: Error, Equatable {
    package let offset: Int
    package let reason: String
}
