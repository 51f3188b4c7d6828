// GradKit — the numeric CSV reader. SPDX-License-Identifier: MIT

extension Dataset {
    /// ``csv(_:labelColumn:hasHeader:separator:regression:classCount:)`` on the
    /// file's bytes, visible to the package's fuzzers.
    package static func parseCSV(
        _ bytes: [UInt8], file: String, labelColumn: Int = -1, hasHeader: Bool? = nil, separator: Character = ",",
        regression: Bool = false, classCount: Int? = nil
    ) throws -> Dataset {
        try checkClassCount(classCount)
        var reader = try CSVReader(bytes, file: file, separator: separator)
        guard let first = reader.nextLine() else { throw DataError.badField(file: file, row: 1, column: 1, reason: "the file has no rows") }
        var fields: [CSVReader.Field] = []
        try reader.split(first.range, row: first.row, into: &fields)
        let width = fields.count
        guard width >= 2 else {
            throw DataError.badField(
                file: file, row: first.row, column: 1,
                reason: "row \(first.row) has one field, but a data set needs feature columns and a label column\(reader.separatorHint(first.range))")
        }
        guard labelColumn >= -width, labelColumn < width else {
            throw DataError.invalidArgument(
                "\(file.shownInMessage): label column \(labelColumn) is outside its \(width) columns (0..<\(width), or -\(width)...-1 counting from the end)")
        }
        let label = labelColumn < 0 ? width + labelColumn : labelColumn
        let header = hasHeader ?? (!fields.contains { reader.looksNumeric($0) } || reader.namesColumnsByIndex(fields))
        // Only a first row that was taken for data without being declared can
        // be a header with a numeric name: say so when it fails.
        let headerHint = hasHeader == nil ? "; if row \(first.row) is a header, declare it (Swift: hasHeader: true; gradkit: --header)" : ""

        var features: [Float] = [], labels: [Int] = [], targets: [Float] = []
        var line: (row: Int, range: Range<Int>)? = first
        if header { line = reader.nextLine() }
        while let (row, range) = line {
            if row != first.row { try reader.split(range, row: row, into: &fields) }
            guard fields.count == width else {
                var reason = "expected \(width) fields as in row \(first.row), found \(fields.count)"
                if fields.count == width + 1, fields[width].content.isEmpty { reason += " (the line ends with a separator)" }
                throw DataError.badField(file: file, row: row, column: Swift.min(fields.count, width) + 1, reason: reason)
            }
            let hint = row == first.row ? headerHint : ""
            for (index, field) in fields.enumerated() {
                if index == label, !regression {
                    labels.append(try reader.label(field, row: row, column: index + 1, classCount: classCount, hint: hint))
                } else {
                    let value = try reader.number(field, row: row, column: index + 1, hint: hint)
                    if index == label { targets.append(value) } else { features.append(value) }
                }
            }
            line = reader.nextLine()
        }
        let count = regression ? targets.count : labels.count
        guard count > 0 else {
            throw DataError.badField(file: file, row: first.row, column: 1, reason: "the file has a header (row \(first.row)) but no data rows")
        }
        let x = Tensor(shape: [count, width - 1], scalars: features)
        if regression { return try Dataset(features: x, targets: Tensor(shape: [count, 1], scalars: targets)) }
        return try Dataset(features: x, labels: labels, classCount: classCount)
    }
}

extension Dataset {
    /// Why `separator` cannot separate a numeric CSV file's fields, or nil
    /// when it can: it must be one ASCII punctuation character or a tab, and
    /// not `"`, `.`, `+` or `-` (a quote or part of a number).
    package static func csvSeparatorProblem(_ separator: Character) -> String? {
        guard let ascii = separator.asciiValue, ascii == 9 || (33...126).contains(ascii),
              !separator.isLetter, !separator.isNumber, !"\".+-".contains(separator)
        else {
            return "must be one ASCII punctuation character or a tab, other than '\"', '.', '+' and '-'; got \(String(separator).quotedForMessage())"
        }
        return nil
    }
}

/// Lines and fields of a numeric CSV file, read from its bytes. Every error
/// names the file, row and column, and quotes the field (at most 80
/// characters, control characters escaped).
struct CSVReader {
    /// One field of a line: its raw bytes and, inside them, the content
    /// without surrounding blanks and quotes.
    struct Field {
        let raw: Range<Int>
        let content: Range<Int>
    }

    let bytes: [UInt8]
    let file: String
    let separator: UInt8
    /// The start of the next line.
    private var position: Int
    /// The number of the next line (1-based).
    private var nextRow = 1

    private static let quote = UInt8(ascii: "\"")
    private static let space = UInt8(ascii: " ")
    private static let tab = UInt8(ascii: "\t")
    /// Separators other files use, for the hint when the chosen one does not fit.
    private static let commonSeparators: [UInt8] = [",", ";", "\t", "|"].map { UInt8(ascii: $0) }

    /// - Throws: ``DataError/invalidArgument(_:)`` for a separator that is not
    ///   one ASCII punctuation character or a tab, or is `"`, `.`, `+` or `-`;
    ///   ``DataError/malformed(file:offset:reason:)`` for UTF-16 or UTF-32 text.
    init(_ bytes: [UInt8], file: String, separator: Character) throws {
        if let problem = Dataset.csvSeparatorProblem(separator) { throw DataError.invalidArgument("the CSV separator \(problem)") }
        let ascii = separator.asciiValue!
        if bytes.count >= 2, (bytes[0] == 0xFF && bytes[1] == 0xFE) || (bytes[0] == 0xFE && bytes[1] == 0xFF) {
            throw DataError.malformed(file: file, offset: 0, reason: "the file is UTF-16 or UTF-32 text (it starts with a byte-order mark); save it as UTF-8")
        }
        self.bytes = bytes
        self.file = file
        self.separator = ascii
        // A UTF-8 byte-order mark would otherwise glue itself to the first field.
        position = bytes.starts(with: [0xEF, 0xBB, 0xBF]) ? 3 : 0
    }

    /// The next line that is not blank (empty, or only spaces and tabs): its
    /// row number and its bytes without the line end; nil after the last line.
    mutating func nextLine() -> (row: Int, range: Range<Int>)? {
        while position < bytes.count {
            let start = position, row = nextRow
            var end = start
            while end < bytes.count, bytes[end] != UInt8(ascii: "\n"), bytes[end] != UInt8(ascii: "\r") { end += 1 }
            position = end
            if position < bytes.count {
                if bytes[position] == UInt8(ascii: "\r"), position + 1 < bytes.count, bytes[position + 1] == UInt8(ascii: "\n") { position += 1 }
                position += 1
            }
            nextRow += 1
            if !bytes[start..<end].allSatisfy({ $0 == CSVReader.space || $0 == CSVReader.tab }) { return (row, start..<end) }
        }
        return nil
    }

    /// Splits a line into `fields` (reusing its storage). A field may be
    /// enclosed in double quotes (RFC 4180), which may contain separators and
    /// doubled quotes but not line breaks.
    /// - Throws: ``DataError/badField(file:row:column:reason:)`` for a NUL byte,
    ///   an unclosed quote or text after a closing quote.
    func split(_ line: Range<Int>, row: Int, into fields: inout [Field]) throws {
        fields.removeAll(keepingCapacity: true)
        var i = line.lowerBound
        let end = line.upperBound
        while true {
            let column = fields.count + 1, start = i
            while i < end, isBlank(bytes[i]) { i += 1 }
            var content: Range<Int>
            if i < end, bytes[i] == CSVReader.quote {
                let open = i
                i += 1
                while i < end, !(bytes[i] == CSVReader.quote && !(i + 1 < end && bytes[i + 1] == CSVReader.quote)) {
                    i += bytes[i] == CSVReader.quote ? 2 : 1
                }
                guard i < end else {
                    throw DataError.badField(
                        file: file, row: row, column: column,
                        reason: "the quoted field \(quoted(open..<end)) has no closing quote on its line (line breaks inside quotes are not supported)")
                }
                content = trimmed(open + 1..<i)
                i += 1
                while i < end, isBlank(bytes[i]) { i += 1 }
                guard i == end || bytes[i] == separator else {
                    throw DataError.badField(file: file, row: row, column: column, reason: "text after the closing quote in \(quoted(start..<end))")
                }
            } else {
                let contentStart = i
                while i < end, bytes[i] != separator { i += 1 }
                content = trimmed(contentStart..<i)
            }
            if let nul = bytes[start..<i].firstIndex(of: 0) {
                throw DataError.badField(
                    file: file, row: row, column: column, reason: "a NUL byte (file offset \(nul)): is this a binary file or UTF-16 text?")
            }
            fields.append(Field(raw: start..<i, content: content))
            if i == end { return }
            i += 1
        }
    }

    /// Whether a field reads as a number to Swift's `Float` parser (decimal,
    /// hexadecimal, `nan`, `inf`): a first row with such a field is not a header.
    func looksNumeric(_ field: Field) -> Bool {
        Float(text(field.content)) != nil
    }

    /// Whether three or more fields read exactly `0`, `1`, `2`, ... in order: the
    /// names pandas' `to_csv` writes for a frame's unnamed columns.
    func namesColumnsByIndex(_ fields: [Field]) -> Bool {
        fields.count >= 3 && fields.indices.allSatisfy { text(fields[$0].content) == String($0) }
    }

    /// The value of a numeric field.
    /// - Throws: ``DataError/badField(file:row:column:reason:)`` when the field
    ///   is not a decimal number within Float's range; `hint` is added when it is text.
    func number(_ field: Field, row: Int, column: Int, hint: String) throws -> Float {
        guard isDecimal(field.content), let value = Float(text(field.content)) else {
            throw DataError.badField(file: file, row: row, column: column, reason: problem(field, hint: hint))
        }
        guard value.isFinite else {
            throw DataError.badField(file: file, row: row, column: column, reason: "\(quoted(field.content)) is beyond Float's range (±3.4e38)")
        }
        return value
    }

    /// The value of a label field.
    /// - Throws: ``DataError/badField(file:row:column:reason:)`` when the field
    ///   is not a non-negative integer below `classCount` (or below
    ///   ``Dataset/maximumClassCount``); `hint` is added when it is text.
    func label(_ field: Field, row: Int, column: Int, classCount: Int?, hint: String) throws -> Int {
        // Parsed as Double: Float would round 16777217 to 16777216.
        guard isDecimal(field.content), let value = Double(text(field.content)) else {
            throw DataError.badField(file: file, row: row, column: column, reason: problem(field, hint: hint))
        }
        if let problem = Dataset.labelProblem(value, text: quoted(field.content), classCount: classCount) {
            throw DataError.badField(file: file, row: row, column: column, reason: problem)
        }
        return Int(value)
    }

    /// Why a field is not a number, with a hint at the likely cause; `hint`
    /// is added when the field is text.
    private func problem(_ field: Field, hint: String) -> String {
        let content = field.content
        if content.isEmpty {
            let last = isLineEnd(field.raw.upperBound) && field.raw.lowerBound > 0 && bytes[field.raw.lowerBound - 1] == separator
            return "empty field: missing values are not supported" + (last ? " (the line ends with a separator)" : "")
        }
        let field = text(content)
        let word = field.lowercased().drop { $0 == "+" || $0 == "-" }
        if ["nan", "inf", "infinity"].contains(word) { return "\(quoted(content)) is not a finite number: NaN and infinity are not accepted" }
        if word.hasPrefix("0x") { return "\(quoted(content)) is hexadecimal: only decimal numbers are accepted" }
        // `1,5` in a file separated by something else: a decimal comma, which no separator fixes.
        let pointed = String(field.map { $0 == "," ? "." : $0 })
        if separator != UInt8(ascii: ","), bytes[content].filter({ $0 == UInt8(ascii: ",") }).count == 1,
           pointed.allSatisfy({ "0123456789+-.eE".contains($0) }), Float(pointed) != nil {
            return "\(quoted(content)) has a decimal comma: write decimal points (pandas: to_csv(..., decimal='.'))" + hint
        }
        return "\(quoted(content)) is not a number" + separatorHint(content) + hint
    }

    /// A hint when `range` contains a common separator other than the chosen one.
    func separatorHint(_ range: Range<Int>) -> String {
        guard let other = CSVReader.commonSeparators.first(where: { $0 != separator && bytes[range].contains($0) }) else { return "" }
        let shown = other == CSVReader.tab ? "\\t" : String(UnicodeScalar(other))
        let flag = other == CSVReader.tab ? "tab" : "'\(shown)'"
        return "; it contains '\(shown)': is the file '\(shown)'-separated? (Swift: separator: \"\(shown)\"; gradkit: --separator \(flag))"
    }

    /// `[+-]? (digits [. digits?] | . digits) ([eE] [+-]? digits)?`: what
    /// Swift's parser accepts minus `nan`, `inf` and hexadecimal numbers.
    private func isDecimal(_ range: Range<Int>) -> Bool {
        var i = range.lowerBound
        func isDigit(_ i: Int) -> Bool { i < range.upperBound && bytes[i] >= UInt8(ascii: "0") && bytes[i] <= UInt8(ascii: "9") }
        func skipDigits() -> Int {
            let start = i
            while isDigit(i) { i += 1 }
            return i - start
        }
        if i < range.upperBound, bytes[i] == UInt8(ascii: "+") || bytes[i] == UInt8(ascii: "-") { i += 1 }
        var digits = skipDigits()
        if i < range.upperBound, bytes[i] == UInt8(ascii: ".") {
            i += 1
            digits += skipDigits()
        }
        guard digits > 0 else { return false }
        if i < range.upperBound, bytes[i] == UInt8(ascii: "e") || bytes[i] == UInt8(ascii: "E") {
            i += 1
            if i < range.upperBound, bytes[i] == UInt8(ascii: "+") || bytes[i] == UInt8(ascii: "-") { i += 1 }
            guard skipDigits() > 0 else { return false }
        }
        return i == range.upperBound
    }

    private func isBlank(_ byte: UInt8) -> Bool {
        byte == CSVReader.space || (byte == CSVReader.tab && separator != CSVReader.tab)
    }

    private func isLineEnd(_ offset: Int) -> Bool {
        offset == bytes.count || bytes[offset] == UInt8(ascii: "\n") || bytes[offset] == UInt8(ascii: "\r")
    }

    private func trimmed(_ range: Range<Int>) -> Range<Int> {
        var lower = range.lowerBound, upper = range.upperBound
        while lower < upper, isBlank(bytes[lower]) { lower += 1 }
        while upper > lower, isBlank(bytes[upper - 1]) { upper -= 1 }
        return lower..<upper
    }

    private func text(_ range: Range<Int>) -> String { String(decoding: bytes[range], as: UTF8.self) }

    /// The bytes in quotes for a message, as ``Swift/String/quotedForMessage(limit:)``
    /// shows text (at most 80 characters, control and invisible characters
    /// escaped), invalid UTF-8 as U+FFFD.
    func quoted(_ range: Range<Int>) -> String {
        let limit = 80
        // Four bytes per character at most: never decode more of a huge field.
        let head = String(decoding: bytes[range.prefix(4 * limit + 4)], as: UTF8.self)
        return DisplayText.cut(head, limit: limit, quote: "'", totalBytes: range.count)
    }
}
