// GradKit — hostile input to the data loaders: limits, overflow, empty data, CSV dialects, labels, normalization. SPDX-License-Identifier: MIT
import Testing
#if canImport(Glibc)
import Glibc
#endif

@testable import GradKit

/// The `badField` error a CSV text must produce, or nil (recorded as an issue) when it parses or fails otherwise.
private func csvFailure(
    _ text: String, labelColumn: Int = -1, hasHeader: Bool? = nil, separator: Character = ",", regression: Bool = false,
    classCount: Int? = nil, sourceLocation: SourceLocation = #_sourceLocation
) -> (row: Int, column: Int, reason: String)? {
    do {
        _ = try Dataset.parseCSV(
            Array(text.utf8), file: "t.csv", labelColumn: labelColumn, hasHeader: hasHeader, separator: separator,
            regression: regression, classCount: classCount)
        Issue.record("no error for \(text.debugDescription)", sourceLocation: sourceLocation)
    } catch let DataError.badField(file, row, column, reason) {
        #expect(file == "t.csv", sourceLocation: sourceLocation)
        return (row, column, reason)
    } catch {
        Issue.record("\(text.debugDescription): unexpected \(error)", sourceLocation: sourceLocation)
    }
    return nil
}

/// Expects `text` to fail at `row` and `column` with a reason containing every one of `phrases`.
private func expectCSVFailure(
    _ text: String, row: Int, column: Int, _ phrases: String..., labelColumn: Int = -1, hasHeader: Bool? = nil,
    separator: Character = ",", regression: Bool = false, classCount: Int? = nil, sourceLocation: SourceLocation = #_sourceLocation
) {
    guard let failure = csvFailure(
        text, labelColumn: labelColumn, hasHeader: hasHeader, separator: separator, regression: regression,
        classCount: classCount, sourceLocation: sourceLocation)
    else { return }
    #expect(failure.row == row && failure.column == column, "\(text.debugDescription): row \(failure.row), column \(failure.column): \(failure.reason)", sourceLocation: sourceLocation)
    for phrase in phrases {
        #expect(failure.reason.contains(phrase), "\(text.debugDescription): '\(failure.reason)' lacks '\(phrase)'", sourceLocation: sourceLocation)
    }
}

private func csv(_ text: String, hasHeader: Bool? = nil, separator: Character = ",", regression: Bool = false) throws -> Dataset {
    try Dataset.parseCSV(Array(text.utf8), file: "t.csv", hasHeader: hasHeader, separator: separator, regression: regression)
}

private func bigEndian(_ value: UInt32) -> [UInt8] { [UInt8(value >> 24), UInt8(value >> 16 & 255), UInt8(value >> 8 & 255), UInt8(value & 255)] }

/// The reason of a `malformed` error, or nil (recorded) for anything else.
private func malformedReason(at offset: Int, sourceLocation: SourceLocation = #_sourceLocation, _ body: () throws -> Dataset) -> String? {
    do {
        _ = try body()
        Issue.record("no error", sourceLocation: sourceLocation)
    } catch let DataError.malformed(_, at, reason) {
        #expect(at == offset, "byte \(at), expected \(offset): \(reason)", sourceLocation: sourceLocation)
        return reason
    } catch {
        Issue.record("unexpected \(error)", sourceLocation: sourceLocation)
    }
    return nil
}

/// A pair of IDX files written to a temporary directory, loaded with `Dataset.idx`.
private func loadIDX(images: [UInt8], labels: [UInt8], classCount: Int? = nil) throws -> Dataset {
    let directory = try temporaryDirectory()
    try FileIO.writeAtomically(images, to: directory + "/images.idx").get()
    try FileIO.writeAtomically(labels, to: directory + "/labels.idx").get()
    return try Dataset.idx(images: directory + "/images.idx", labels: directory + "/labels.idx", classCount: classCount)
}

/// The standardized features computed independently in Double: two-pass mean and population variance per column.
private func referenceStandardized(_ columns: [[Double]], applyingTo other: [[Double]]? = nil) -> [Float] {
    let statistics = columns.map { column -> (Double, Double) in
        let mean = column.reduce(0, +) / Double(column.count)
        let variance = column.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(column.count)
        return (mean, variance > 0 ? variance.squareRoot() : 1)
    }
    let data = other ?? columns
    return (0..<data[0].count).flatMap { row in data.indices.map { c in Float((data[c][row] - statistics[c].0) / statistics[c].1) } }
}

@Suite("Hostile data input")
struct DataInputTests {
    // MARK: Sizes from input are bounded

    @Test("a label at or above Dataset.maximumClassCount is an error naming the row, column or byte")
    func classLimit() throws {
        let limit = Dataset.maximumClassCount
        expectCSVFailure("1,0\n2,\(100_000_000)\n", row: 2, column: 2, "100000000", "\(limit)", "maximumClassCount")
        // The largest allowed label makes exactly the limit of classes.
        #expect(try csv("1,0\n2,\(limit - 1)\n").classCount == limit)
        #expect(throws: DataError.tooManyClasses(row: 1, label: 100_000_000, limit: limit)) {
            try Dataset(features: Tensor(zeros: [2, 1]), labels: [0, 100_000_000])
        }
        // A 12-byte Int32 label file that would otherwise ask for 10^8 classes.
        let images = idxBytes(type: 8, shape: [1, 2], payload: [1, 2])
        let reason = malformedReason(at: 8) {
            try loadIDX(images: images, labels: idxBytes(type: 0x0C, shape: [1], payload: bigEndian(100_000_000)))
        }
        #expect(reason?.contains("maximumClassCount") == true, "\(reason ?? "")")
    }

    @Test("classCount arguments outside 1...maximumClassCount are rejected before anything is sized by them")
    func classCountArgument() {
        for classCount in [0, -1, Int.min, Dataset.maximumClassCount + 1, Int.max] {
            #expect(throws: DataError.self, "\(classCount)") { try Dataset(features: Tensor(zeros: [1, 1]), labels: [0], classCount: classCount) }
            #expect(throws: DataError.self, "\(classCount)") {
                try Dataset.parseCSV(Array("1,0\n".utf8), file: "t.csv", classCount: classCount)
            }
        }
    }

    @Test("IDX dimensions are bounded before allocation, and against the file's length")
    func idxDimensions() {
        let huge = [0, 0, 8, 2] + bigEndian(.max) + bigEndian(.max)
        #expect(throws: DataError.malformed(file: "huge", offset: 8, reason: "dimensions are too large")) { try IDX.parse(huge, file: "huge") }
        // 2^20 x 2^20 elements claimed by a 12-byte file.
        let claimed = [0, 0, 8, 2] + bigEndian(1 << 20) + bigEndian(1 << 20)
        #expect(throws: DataError.self) { try IDX.parse(claimed, file: "claimed") }
    }

    // MARK: No overflow trap

    @Test("extreme label columns throw instead of trapping")
    func labelColumnOverflow() {
        for column in [Int.max, Int.min, Int.min + 1, 2, -3] {
            #expect(throws: DataError.self, "\(column)") {
                try Dataset.parseCSV(Array("1,0\n2,1\n".utf8), file: "t.csv", labelColumn: column)
            }
        }
        // In range from either end.
        #expect(throws: Never.self) { try Dataset.parseCSV(Array("1,0\n2,1\n".utf8), file: "t.csv", labelColumn: -2) }
    }

    @Test("batches of any positive size cover the data once")
    func batchSizes() {
        let data = Dataset.xor(copies: 3)
        var none: SeededGenerator? = nil
        for size in [1, 5, 12, 13, Int.max] {
            #expect(data.batches(size: size, shuffledBy: &none).map(\.count).reduce(0, +) == 12, "\(size)")
        }
    }

    // MARK: No trap reachable from data

    @Test("IDX images with no examples or no pixels are errors, not data sets")
    func idxEmpty() {
        let labels = idxBytes(type: 8, shape: [2], payload: [0, 1])
        let zeroWidth = malformedReason(at: 8) { try loadIDX(images: idxBytes(type: 8, shape: [2, 0], payload: []), labels: labels) }
        #expect(zeroWidth?.contains("no pixels") == true, "\(zeroWidth ?? "")")
        _ = malformedReason(at: 12) { try loadIDX(images: idxBytes(type: 8, shape: [2, 3, 0], payload: []), labels: labels) }
        let noImages = malformedReason(at: 4) {
            try loadIDX(images: idxBytes(type: 8, shape: [0, 28, 28], payload: []), labels: idxBytes(type: 8, shape: [0], payload: []))
        }
        #expect(noImages?.contains("no images") == true, "\(noImages ?? "")")
    }

    @Test("data sets with no examples or zero-width examples are rejected")
    func emptyDatasets() {
        #expect(throws: DataError.self) { try Dataset(features: Tensor(zeros: [0, 3]), labels: []) }
        #expect(throws: DataError.self) { try Dataset(features: Tensor(zeros: [3, 0]), labels: [0, 1, 0]) }
        #expect(throws: DataError.self) { try Dataset(features: Tensor(zeros: [2, 4, 0]), labels: [0, 1]) }
        #expect(throws: DataError.self) { try Dataset(features: Tensor(zeros: [0, 2]), targets: Tensor(zeros: [0, 1])) }
        #expect(throws: DataError.self) { try Dataset(features: Tensor(zeros: [2, 2]), targets: Tensor(zeros: [2, 0])) }
        #expect(throws: DataError.self) { try Dataset(features: Tensor(zeros: [2]), labels: [0, 1]) }
    }

    @Test("empty, blank and header-only CSV files are errors")
    func emptyCSV() {
        expectCSVFailure("", row: 1, column: 1, "no rows")
        expectCSVFailure("\u{FEFF}", row: 1, column: 1, "no rows")
        expectCSVFailure(" \n\t\n\r\n", row: 1, column: 1, "no rows")
        expectCSVFailure("a,b\n", row: 1, column: 1, "no data rows")
        expectCSVFailure("\n\na,b\n\n", row: 3, column: 1, "no data rows")
    }

    // MARK: Standardization and scaling in Double

    @Test("standardization is computed in Double: large, near-overflow and offset columns come out right and finite")
    func standardizerPrecision() throws {
        let written: [[Double]] = [
            [1e20, 2e20, 3e20, 4e20],                        // variance 1.25e40 overflows Float
            [3e38, 3e38, -3e38, 3e38],                       // the Float sum overflows
            [1e8, 1e8 + 8, 1e8 + 16, 1e8 + 24],              // a Float mean is off by up to 4 = half a step
            [1e-40, 2e-40, 3e-40, 4e-40],                    // subnormal
            [7, 7, 7, 7],                                    // constant: only centered
        ]
        let columns = written.map { $0.map { Double(Float($0)) } }
        let data = try Dataset(
            features: Tensor(shape: [4, columns.count], scalars: (0..<4).flatMap { row in columns.map { Float($0[row]) } }),
            labels: [0, 1, 0, 1])
        let standardized = try Standardizer(fitting: data).transform(data).features.scalars
        #expect(standardized.allSatisfy { $0.isFinite }, "\(standardized)")
        // One rounding of a Double result; the reference rounds once too.
        expectClose(standardized, referenceStandardized(columns), relative: 1e-6, absolute: 1e-6)
    }

    @Test("random columns of any magnitude standardize to finite values matching a Double reference")
    func standardizerRandom() throws {
        var generator = SeededGenerator(seed: 11)
        for trial in 0..<50 {
            let rows = Int.random(in: 1...20, using: &generator)
            let columns: [[Double]] = (0..<3).map { _ in
                let exponent = Double.random(in: -45...38.5, using: &generator)
                let offset = Bool.random(using: &generator) ? Double.random(in: -3e38...3e38, using: &generator) : 0
                return (0..<rows).map { _ in
                    let value = offset + Double.random(in: -1...1, using: &generator) * pow(10, exponent)
                    return Double(Float(Swift.max(-3.4e38, Swift.min(3.4e38, value))))
                }
            }
            let data = try Dataset(
                features: Tensor(shape: [rows, 3], scalars: (0..<rows).flatMap { row in columns.map { Float($0[row]) } }),
                targets: Tensor(zeros: [rows, 1]))
            let standardized = try Standardizer(fitting: data).transform(data).features.scalars
            #expect(standardized.allSatisfy { $0.isFinite }, "trial \(trial)")
            expectClose(standardized, referenceStandardized(columns), relative: 1e-5, absolute: 1e-5, "trial \(trial)")
        }
    }

    @Test("transforming other data throws a clear error when a result would exceed Float's range")
    func transformOverflow() throws {
        let train = try Dataset(features: Tensor(shape: [2, 2], scalars: [1, 0, 1, 1e-30]), labels: [0, 1])
        let test = try Dataset(features: Tensor(shape: [2, 2], scalars: [1, 0, 2, 1e10]), labels: [0, 1])
        let standardizer = Standardizer(fitting: train)
        #expect(throws: DataError.self) { try standardizer.transform(test) }
        do {
            _ = try standardizer.transform(test)
        } catch let DataError.overflow(row, column, reason) {
            #expect(row == 1 && column == 1 && reason.contains("standard deviation"), "\(row) \(column) \(reason)")
        }
        #expect(throws: DataError.self) { try standardizer.transform(Dataset(features: Tensor(zeros: [1, 3]), labels: [0])) }
        // Multiplying a finite value by a finite factor can overflow too.
        #expect(throws: DataError.self) { try test.scaled(by: 1e30) }
        #expect(throws: DataError.self) { try test.scaled(by: .infinity) }
        #expect(throws: DataError.self) { try test.scaled(by: .nan) }
    }

    @Test("scaling by the largest magnitude divides in Double, so a subnormal largest value still works")
    func magnitudeScaler() throws {
        let tiny = Float.leastNormalMagnitude / 100  // subnormal, about 1.2e-40
        let train = try Dataset(features: Tensor(shape: [2, 2], scalars: [tiny, -2 * tiny, 0, tiny / 2]), labels: [0, 1])
        let scaler = MagnitudeScaler(fitting: train)
        #expect(scaler.largestMagnitude == 2 * tiny)
        #expect(!(1 / scaler.largestMagnitude).isFinite, "the test needs 1/largest to overflow in Float")
        let scaled = try scaler.transform(train).features.scalars
        let expected = train.features.scalars.map { Float(Double($0) / Double(scaler.largestMagnitude)) }
        #expect(scaled == expected && scaled.allSatisfy { Swift.abs($0) <= 1 }, "\(scaled)")
        #expect(throws: DataError.self) { try scaler.transform(Dataset(features: Tensor(shape: [1, 1], scalars: [1e10]), labels: [0])) }
        let zeros = try Dataset(features: Tensor(zeros: [2, 2]), labels: [0, 1])
        #expect(try MagnitudeScaler(fitting: zeros).transform(zeros).features == zeros.features)
    }

    // MARK: CSV dialects

    @Test("a UTF-8 byte-order mark is skipped, so the first row stays data")
    func byteOrderMark() throws {
        let data = try csv("\u{FEFF}1,0\n2,1\n")
        #expect(data.count == 2 && data.features.scalars == [1, 2] && data.labels == [0, 1])
        #expect(try csv("\u{FEFF}a,label\n1,0\n").count == 1)
        #expect(throws: DataError.self) { try Dataset.parseCSV([0xFF, 0xFE, 0x31, 0, 0x2C, 0, 0x30, 0], file: "utf16.csv") }
    }

    @Test("a first row of numbers and text is a data row with a bad field, not a header")
    func mixedFirstRow() throws {
        expectCSVFailure("1,abc,0\n2,3,1\n", row: 1, column: 2, "'abc' is not a number", "hasHeader: true")
        expectCSVFailure("year,2019,label\n1,2,0\n", row: 1, column: 1, "hasHeader: true")
        let declared = try csv("year,2019,label\n1,2,0\n", hasHeader: true)
        #expect(declared.count == 1 && declared.features.scalars == [1, 2])
        // A field holding another common separator gets a hint in the library's and the tool's words.
        expectCSVFailure("1;2,0\n3;4,1\n", row: 1, column: 1, #"is the file ';'-separated? (Swift: separator: ";"; gradkit: --separator ';')"#)
        expectCSVFailure("1\t2,0\n3\t4,1\n", row: 1, column: 1, #"(Swift: separator: "\t"; gradkit: --separator tab)"#)
        // A decimal comma in a ';'-separated file: the hint is about the comma, not another separator.
        expectCSVFailure("a;b;label\n1,5;2;1\n", row: 2, column: 1, "'1,5' has a decimal comma", "decimal='.'", separator: ";")
        expectCSVFailure("1;-,5e3;1\n", row: 1, column: 2, "'-,5e3' has a decimal comma", separator: ";")
        expectCSVFailure("1;1,5,2;1\n", row: 1, column: 2, "is the file ','-separated", separator: ";")
        // Blank lines before the first row do not change which row is the header.
        #expect(try csv("\n  \nx,y\n1,0\n").count == 1)
    }

    @Test("a first row 0,1,2,... of three or more fields is pandas' header for unnamed columns; hasHeader: false reads it as data")
    func indexHeader() throws {
        // pandas.DataFrame(x).to_csv(index=False) with the label as the last unnamed column.
        let pandas = try csv("0,1,2,3\n0.5,1,2,1\n4,5,6,0\n")
        #expect(pandas.count == 2 && pandas.labels == [1, 0] && pandas.classCount == 2)
        let asData = try csv("0,1,2,3\n0.5,1,2,1\n4,5,6,0\n", hasHeader: false)
        #expect(asData.count == 3 && asData.labels == [3, 1, 0])
        // Not the pattern: two fields, another order, other spellings, a gap.
        for text in ["0,1\n2,1\n", "1,2,3\n4,5,0\n", "0,2,1\n4,5,0\n", "0,1.0,2\n4,5,0\n", "00,1,2\n4,5,0\n"] {
            #expect(try csv(text).count == 2, "\(text.debugDescription)")
        }
        // Quotes and spaces around the names are the fields' own, as for any header.
        #expect(try csv("\"0\", 1 ,2\n4,5,0\n").count == 1)
    }

    @Test("NUL bytes are errors with their row and column")
    func nulBytes() {
        expectCSVFailure("1,0\n2\u{0},1\n", row: 2, column: 1, "NUL")
        expectCSVFailure("a,b\u{0}\n1,0\n", row: 1, column: 2, "NUL")
    }

    @Test("other separators: a hint when the file does not split, and the separator parameter")
    func separators() throws {
        expectCSVFailure("1;2;0\n3;4;1\n", row: 1, column: 1, "one field", "';'", "separator: \";\"")
        expectCSVFailure("a\tb\tlabel\n1\t2\t0\n", row: 1, column: 1, "separator: \"\\t\"")
        expectCSVFailure("1,5;2,0;1\n", row: 1, column: 2, "separator: \";\"")
        let semicolon = try csv("a;b;label\n1;2.5;0\n3; 4 ;1\n", separator: ";")
        #expect(semicolon.features.scalars == [1, 2.5, 3, 4] && semicolon.labels == [0, 1])
        let tab = try csv("1\t 2\t0\n3\t4\t1\n", separator: "\t")
        #expect(tab.features.scalars == [1, 2, 3, 4] && tab.labels == [0, 1])
        for bad: Character in ["\"", ".", "-", "+", "1", "e", " ", "\n", "\r\n", "é"] {
            #expect(throws: DataError.self, "\(bad.debugDescription)") { try csv("1,0\n", separator: bad) }
        }
    }

    @Test("RFC 4180 quotes around numbers and header names")
    func quotes() throws {
        let data = try csv("\"weight, kg\",\"say \"\"hi\"\"\",label\n\"1.5\", \"2\" ,\"0\"\n")
        #expect(data.features.scalars == [1.5, 2] && data.labels == [0])
        expectCSVFailure("\"1.5,0\n", row: 1, column: 1, "no closing quote")
        expectCSVFailure("1,0\n\"2\"x,1\n", row: 2, column: 1, "after the closing quote")
        expectCSVFailure("1,0\n\"\",1\n", row: 2, column: 1, "empty field")
    }

    @Test("messages quote at most 80 characters of a field, with control characters escaped")
    func messageQuoting() {
        let long = String(repeating: "x", count: 100_000)
        guard let failure = csvFailure("1,0\n\(long),1\n") else { return }
        #expect(failure.reason.count < 200 && failure.reason.contains("…") && failure.reason.contains("100000 bytes"), "\(failure.reason.prefix(300))")
        expectCSVFailure("1,0\na\u{1}b\u{7F},1\n", row: 2, column: 1, "'a\\u{1}b\\u{7F}'")
        expectCSVFailure("1,0\n\"a\tb\",1\n", row: 2, column: 1, "'a\\tb'")
        expectCSVFailure("1,0\n\u{FEFF}2,1\n", row: 2, column: 1, "'\\u{FEFF}2'")
    }

    @Test("line ends, blank lines, trailing separators, long lines and single columns")
    func layout() throws {
        for text in ["a,b\n1,0\n\n2,1\n", "a,b\r\n1,0\r\n\r\n2,1", "a,b\r1,0\r\r2,1\r", "a,b\n1,0\n   \n2,1\n\n\n"] {
            let data = try csv(text)
            #expect(data.features.scalars == [1, 2] && data.labels == [0, 1], "\(text.debugDescription)")
        }
        // Rows in messages count every line, blank ones included.
        expectCSVFailure("a,b\n1,0\n\n\r\n2,x\n", row: 5, column: 2)
        expectCSVFailure("1,2,0,\n", row: 1, column: 4, "ends with a separator")
        expectCSVFailure("1,0\n2,1,\n", row: 2, column: 3, "ends with a separator")
        expectCSVFailure("1\n2\n", row: 1, column: 1, "one field")
        let wide = (0..<20_000).map { String($0 % 7) }.joined(separator: ",") + ",1\n"
        let data = try csv(wide + wide)
        #expect(data.features.shape == [2, 20_000] && data.labels == [1, 1])
    }

    @Test("numbers: decimal forms parse; hexadecimal, NaN, infinity and overflow are errors")
    func numbers() throws {
        let data = try csv("+1.5,-0,.5,5.,1e-3,-2E+2,0\n", regression: false)
        #expect(data.features.scalars == [1.5, -0.0, 0.5, 5, 0.001, -200] && data.labels == [0])
        #expect(data.features.scalars[1].sign == .minus)
        expectCSVFailure("1,0\n1e39,1\n", row: 2, column: 1, "beyond Float's range")
        expectCSVFailure("1,0\n-1e39,1\n", row: 2, column: 1, "beyond Float's range")
        expectCSVFailure("1,0\n0x1p3,1\n", row: 2, column: 1, "hexadecimal")
        for word in ["nan", "NaN", "-inf", "Infinity"] {
            expectCSVFailure("1,0\n\(word),1\n", row: 2, column: 1, "not a finite number")
        }
        for bad in ["1.2.3", "1e", "e5", "--1", "1_000", "1,5x"] {
            _ = csvFailure("1,0\n\(bad),1\n")
        }
        let regression = try csv("x,y\n1,3e38\n2,-1e-3\n", regression: true)
        #expect(regression.targetValues?.scalars == [3e38, -0.001])
        expectCSVFailure("x,y\n1,1e39\n", row: 2, column: 2, "beyond Float's range", regression: true)
    }

    // MARK: Labels

    @Test("labels must be non-negative integers in range; they are parsed in Double")
    func labels() throws {
        expectCSVFailure("1,0\n2,0.5\n", row: 2, column: 2, "not a non-negative integer")
        expectCSVFailure("1,0\n2,-1\n", row: 2, column: 2, "not a non-negative integer")
        expectCSVFailure("1,0\n2,nan\n", row: 2, column: 2, "not a finite number")
        expectCSVFailure("1,0\n2,1e400\n", row: 2, column: 2, "not a non-negative integer")
        // Float would round this to 5 and accept it.
        expectCSVFailure("1,0\n2,5.00000001\n", row: 2, column: 2, "not a non-negative integer")
        expectCSVFailure("1,0\n2,7\n", row: 2, column: 2, "out of range 0..<5", classCount: 5)
        let data = try csv("1,3.0\n2,-0\n3,+2\n4,1e1\n")
        #expect(data.labels == [3, 0, 2, 10] && data.classCount == 11)
    }

    @Test("IDX labels: byte offsets account for the element size; non-integer labels are errors")
    func idxLabels() throws {
        let images = idxBytes(type: 8, shape: [3, 2], payload: [1, 2, 3, 4, 5, 6])
        let int32 = idxBytes(type: 0x0C, shape: [3], payload: bigEndian(0) + bigEndian(1) + bigEndian(UInt32(bitPattern: -1)))
        let negative = malformedReason(at: 8 + 2 * 4) { try loadIDX(images: images, labels: int32) }
        #expect(negative?.contains("-1") == true, "\(negative ?? "")")
        // 0.99999999 rounds to 1 in Float: read as Double, it is no integer.
        let nearlyOne = Double(0.99999999).bitPattern
        let nearlyOneBytes: [UInt8] = (0..<8).map { (i: Int) -> UInt8 in UInt8(truncatingIfNeeded: nearlyOne >> UInt64(56 - 8 * i)) }
        let float64 = idxBytes(type: 0x0E, shape: [3], payload: [UInt8](repeating: 0, count: 16) + nearlyOneBytes)
        _ = malformedReason(at: 8 + 2 * 8) { try loadIDX(images: images, labels: float64) }
        let data = try loadIDX(images: images, labels: idxBytes(type: 0x0B, shape: [3], payload: [0, 2, 0, 0, 0, 1]))
        #expect(data.labels == [2, 0, 1] && data.classCount == 3)
    }

    // MARK: Splits

    @Test("an empty split part is explained: which part, how many examples, what to change")
    func splitMessages() throws {
        let data = Dataset.xor(copies: 5)  // 20 examples, 10 per class
        func message(_ body: () throws -> [Dataset]) -> String {
            do { _ = try body() } catch let DataError.invalidArgument(text) { return text } catch { return "\(error)" }
            return "no error"
        }
        let names = ["training", "validation", "test"]
        let small = message { try data.split([0.9, 0.01, 0.09], seed: 1, partNames: names) }
        #expect(small.contains("the validation part") && small.contains("20 examples") && small.contains("0.01") && small.contains("at least 0.05"), "\(small)")
        let remainder = message { try data.split([0.5, 0.5, 0], partNames: names) }
        #expect(remainder.contains("the test part") && remainder.contains("lower the other fractions"), "\(remainder)")
        let zero = message { try data.split([0.5, 0, 0.5], partNames: names) }
        #expect(zero.contains("the validation part") && zero.contains("fraction 0"), "\(zero)")
        let unnamed = message { try data.split([0.99, 0.01]) }
        #expect(unnamed.contains("part 2 of 2") && unnamed.contains("20 examples"), "\(unnamed)")
        #expect(throws: DataError.self) { try data.split([0.5, 0.5], partNames: ["training"]) }
        #expect(throws: DataError.self) { try data.split([.nan]) }
        #expect(throws: DataError.self) { try data.split([.infinity, -.infinity]) }
    }

    @Test("a stratified split says which class has too few examples")
    func stratifiedRareClass() throws {
        let data = try Dataset(features: Tensor(zeros: [7, 1]), labels: [0, 0, 0, 1, 1, 1, 2])
        let text: String
        do {
            _ = try data.split([0.7, 0.3], seed: 0, stratified: true)
            text = "no error"
        } catch let DataError.invalidArgument(reason) {
            text = reason
        }
        #expect(text.contains("class 2 has 1 example") && text.contains("without stratification"), "\(text)")
        // Classes the count allows but the labels never use need no examples.
        let sparse = try Dataset(features: Tensor(zeros: [4, 1]), labels: [0, 0, 999_999, 999_999])
        #expect(try sparse.split([0.5, 0.5], seed: 0, stratified: true).map { $0.labels!.sorted() } == [[0, 999_999], [0, 999_999]])
    }

    // MARK: Random input

    @Test("structured random CSV never traps, and whatever parses is a valid data set")
    func randomCSV() {
        var generator = SeededGenerator(seed: 5)
        let pieces = ["0", "1", "2.5", "-3", "1e39", "nan", "0x1p3", "+4", "-0", ".", "e", "\"", "\"\"", "\"7\"", " ", "\t", ",", ";", "\n", "\r",
                      "\r\n", "\u{0}", "\u{FEFF}", "label", "é", "99999999", "999999", "1e-50", "5.0000001", ""]
        for _ in 0..<2000 {
            let text = (0..<Int.random(in: 0..<40, using: &generator)).map { _ in pieces.randomElement(using: &generator)! }.joined()
            let separator: Character = [",", ";", "\t"].randomElement(using: &generator)!
            let labelColumn = Int.random(in: -3...3, using: &generator)
            let hasHeader: Bool? = [nil, true, false].randomElement(using: &generator)!
            guard let data = try? Dataset.parseCSV(
                Array(text.utf8), file: "r.csv", labelColumn: labelColumn, hasHeader: hasHeader, separator: separator,
                regression: Bool.random(using: &generator))
            else { continue }
            #expect(data.count > 0 && data.featureCount > 0 && data.features.scalars.allSatisfy { $0.isFinite }, "\(text.debugDescription)")
            if let labels = data.labels, let classes = data.classCount {
                #expect(classes <= Dataset.maximumClassCount && labels.allSatisfy { $0 >= 0 && $0 < classes }, "\(text.debugDescription)")
            }
        }
    }
}
