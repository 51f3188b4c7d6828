// GradKit — IDX and CSV loaders. SPDX-License-Identifier: MIT

/// The IDX format of the MNIST files: two zero bytes, a type code, the number
/// of dimensions, each dimension as a big-endian UInt32, then the data,
/// big-endian. Type codes: 0x08 UInt8, 0x09 Int8, 0x0B Int16, 0x0C Int32,
/// 0x0D Float32, 0x0E Float64.
public enum IDX {
    /// Reads an IDX file into a Float tensor of its dimensions.
    /// - Throws: ``DataError`` naming the file and byte offset of anything
    ///   malformed: a bad magic number, an unknown type, a size that does not
    ///   match the file's length, or a non-finite float.
    public static func read(_ path: String) throws -> Tensor {
        let bytes: [UInt8]
        switch FileIO.readAll(path) {
        case .success(let b): bytes = b
        case .failure(let e): throw DataError.unreadable(file: path, reason: e.message)
        }
        return try parse(bytes, file: path)
    }

    static func parse(_ bytes: [UInt8], file: String) throws -> Tensor {
        guard bytes.count >= 4 else { throw DataError.malformed(file: file, offset: bytes.count, reason: "file ends inside the 4-byte magic number") }
        guard bytes[0] == 0, bytes[1] == 0 else { throw DataError.malformed(file: file, offset: 0, reason: "magic number does not start with two zero bytes") }
        let size: Int
        switch bytes[2] {
        case 0x08, 0x09: size = 1
        case 0x0B: size = 2
        case 0x0C, 0x0D: size = 4
        case 0x0E: size = 8
        default: throw DataError.malformed(file: file, offset: 2, reason: "unknown data type 0x\(String(bytes[2], radix: 16))")
        }
        let rank = Int(bytes[3])
        guard rank >= 1 else { throw DataError.malformed(file: file, offset: 3, reason: "zero dimensions") }
        guard bytes.count >= 4 + 4 * rank else {
            throw DataError.malformed(file: file, offset: bytes.count, reason: "file ends inside the \(rank) dimension sizes")
        }
        var shape: [Int] = []
        var total = 1
        for d in 0..<rank {
            let o = 4 + 4 * d
            let dim = Int(bytes[o]) << 24 | Int(bytes[o + 1]) << 16 | Int(bytes[o + 2]) << 8 | Int(bytes[o + 3])
            let (product, overflow) = total.multipliedReportingOverflow(by: dim)
            guard !overflow, product <= (1 << 40) else { throw DataError.malformed(file: file, offset: o, reason: "dimensions are too large") }
            total = product
            shape.append(dim)
        }
        let start = 4 + 4 * rank
        let expected = total * size
        guard bytes.count - start == expected else {
            throw DataError.malformed(
                file: file, offset: Swift.min(bytes.count, start + expected),
                reason: "dimensions \(shape) need \(expected) data bytes, the file has \(bytes.count - start)")
        }
        var values = [Float](repeating: 0, count: total)
        for i in 0..<total {
            let o = start + i * size
            switch bytes[2] {
            case 0x08: values[i] = Float(bytes[o])
            case 0x09: values[i] = Float(Int8(bitPattern: bytes[o]))
            case 0x0B: values[i] = Float(Int16(bitPattern: UInt16(bytes[o]) << 8 | UInt16(bytes[o + 1])))
            case 0x0C: values[i] = Float(Int32(bitPattern: bigEndian32(bytes, o)))
            case 0x0D: values[i] = Float(bitPattern: bigEndian32(bytes, o))
            default:
                var raw: UInt64 = 0
                for k in 0..<8 { raw = raw << 8 | UInt64(bytes[o + k]) }
                values[i] = Float(Double(bitPattern: raw))
            }
            if !values[i].isFinite {
                throw DataError.malformed(file: file, offset: o, reason: "value \(values[i]) is not finite")
            }
        }
        return Tensor(shape: shape, scalars: values)
    }

    private static func bigEndian32(_ b: [UInt8], _ o: Int) -> UInt32 {
        UInt32(b[o]) << 24 | UInt32(b[o + 1]) << 16 | UInt32(b[o + 2]) << 8 | UInt32(b[o + 3])
    }
}

extension Dataset {
    /// An image data set from a pair of IDX files (MNIST's layout): images
    /// `[N, ...]` flattened to `[N, features]` and scaled by `scale` (1/255
    /// for bytes), labels `[N]`.
    /// - Throws: ``DataError`` for malformed files, counts that differ, labels
    ///   out of range (when `classCount` is given) or that are not integers.
    public static func idx(images: String, labels: String, scale: Float = 1.0 / 255, classCount: Int? = nil) throws -> Dataset {
        let x = try IDX.read(images)
        let y = try IDX.read(labels)
        guard y.rank == 1 else { throw DataError.malformed(file: labels, offset: 3, reason: "labels must have one dimension, found \(y.rank)") }
        guard x.shape[0] == y.shape[0] else { throw DataError.countMismatch(features: x.shape[0], targets: y.shape[0]) }
        var intLabels: [Int] = []
        intLabels.reserveCapacity(y.scalarCount)
        for (i, v) in y.scalars.enumerated() {
            guard v >= 0, v == v.rounded(), v < 1e9 else {
                throw DataError.malformed(file: labels, offset: 8 + i, reason: "label \(v) is not a non-negative integer")
            }
            intLabels.append(Int(v))
        }
        let width = x.shape[0] == 0 ? 0 : x.scalarCount / x.shape[0]
        let features = withoutGradients { x.reshaped(to: [x.shape[0], width]) * scale }
        return try Dataset(features: features, labels: intLabels, classCount: classCount)
    }

    /// A data set from a numeric CSV file: comma-separated numbers, one
    /// example per line, an optional header (detected when the first line is
    /// not all numbers, or set by `hasHeader`), the label in column
    /// `labelColumn` (0-based; negative counts from the end; default last).
    /// With `regression`, the label column is a float target instead.
    /// - Throws: ``DataError/badField(file:row:column:reason:)`` naming the row
    ///   and column of a field that is not a number, a row of the wrong width,
    ///   or a label that is not a non-negative integer.
    public static func csv(
        _ path: String, labelColumn: Int = -1, hasHeader: Bool? = nil, regression: Bool = false, classCount: Int? = nil
    ) throws -> Dataset {
        let bytes: [UInt8]
        switch FileIO.readAll(path) {
        case .success(let b): bytes = b
        case .failure(let e): throw DataError.unreadable(file: path, reason: e.message)
        }
        return try parseCSV(bytes, file: path, labelColumn: labelColumn, hasHeader: hasHeader, regression: regression, classCount: classCount)
    }

    static func parseCSV(
        _ bytes: [UInt8], file: String, labelColumn: Int, hasHeader: Bool?, regression: Bool, classCount: Int?
    ) throws -> Dataset {
        guard let text = String(validating: bytes, as: UTF8.self) else {
            throw DataError.malformed(file: file, offset: 0, reason: "not UTF-8 text")
        }
        // "\r\n" is one Character in Swift, so both line ends are matched explicitly.
        var lines = text.split(omittingEmptySubsequences: false) { $0 == "\n" || $0 == "\r\n" }
        while let last = lines.last, last.allSatisfy({ $0 == " " }) { lines.removeLast() }
        guard !lines.isEmpty else { throw DataError.badField(file: file, row: 1, column: 1, reason: "the file has no rows") }
        func fields(_ line: Substring) -> [Substring] { line.split(separator: ",", omittingEmptySubsequences: false) }
        let firstFields = fields(lines[0])
        let header = hasHeader ?? firstFields.contains { Double($0.trimmingSpaces) == nil }
        let width = firstFields.count
        let label = labelColumn < 0 ? width + labelColumn : labelColumn
        guard width >= 2, label >= 0, label < width else {
            throw DataError.badField(file: file, row: 1, column: labelColumn + 1, reason: "label column \(labelColumn) is outside the \(width) columns")
        }
        var features: [Float] = []
        var labels: [Int] = [], targets: [Float] = []
        for (index, line) in lines.enumerated() where !(header && index == 0) {
            let row = index + 1
            let values = fields(line)
            guard values.count == width else {
                throw DataError.badField(file: file, row: row, column: Swift.min(values.count, width) + 1, reason: "expected \(width) fields, found \(values.count)")
            }
            for (c, field) in values.enumerated() {
                guard let value = Float(field.trimmingSpaces), value.isFinite else {
                    throw DataError.badField(file: file, row: row, column: c + 1, reason: "'\(field)' is not a finite number")
                }
                if c == label {
                    if regression {
                        targets.append(value)
                    } else {
                        guard value >= 0, value == value.rounded(), value < 1e9 else {
                            throw DataError.badField(file: file, row: row, column: c + 1, reason: "label '\(field)' is not a non-negative integer")
                        }
                        labels.append(Int(value))
                    }
                } else {
                    features.append(value)
                }
            }
        }
        let count = regression ? targets.count : labels.count
        guard count > 0 else { throw DataError.badField(file: file, row: lines.count, column: 1, reason: "the file has no data rows") }
        let x = Tensor(shape: [count, width - 1], scalars: features)
        if regression { return try Dataset(features: x, targets: Tensor(shape: [count, 1], scalars: targets)) }
        do {
            return try Dataset(features: x, labels: labels, classCount: classCount)
        } catch DataError.labelOutOfRange(let r, let l, let c) {
            throw DataError.badField(file: file, row: r + (header ? 2 : 1), column: label + 1, reason: "label \(l) is out of range 0..<\(c)")
        }
    }
}

extension Substring {
    fileprivate var trimmingSpaces: Substring {
        var s = self
        while s.first == " " || s.first == "\t" { s.removeFirst() }
        while s.last == " " || s.last == "\t" { s.removeLast() }
        return s
    }
}
