// GradKit — loading data sets from IDX and CSV files. SPDX-License-Identifier: MIT

/// The whole file at `path`.
/// - Throws: ``DataError/unreadable(file:reason:)``.
func readDataFile(_ path: String) throws -> [UInt8] {
    switch FileIO.readAll(path) {
    case .success(let bytes): return bytes
    case .failure(let error): throw DataError.unreadable(file: path, reason: error.message)
    }
}

/// The text file at `path`, read in 1 MiB chunks up to and including its
/// first NUL byte: a text file holds none, and the CSV reader reports the
/// first at its row and column, so a text file followed by gigabytes of
/// zeros (a sparse or binary file) costs a chunk, not gigabytes.
/// - Throws: ``DataError/unreadable(file:reason:)``.
func readTextFile(_ path: String) throws -> [UInt8] {
    do throws(FileIOError) {
        let file = try ReadableFile(path: path)
        let chunkSize = 1 << 20
        var bytes: [UInt8] = []
        var offset = 0
        let budget = MemoryBudget.current
        while offset < file.size {
            let count = Swift.min(chunkSize, file.size - offset)
            guard offset + count <= budget.bytes else {
                throw FileIOError(message: "the file's \(file.size) bytes are \(budget.exceededDescription)")
            }
            let start = bytes.count
            bytes.append(contentsOf: repeatElement(0, count: count))
            var failure: FileIOError?
            bytes.withUnsafeMutableBytes { buffer in
                do throws(FileIOError) { try file.read(into: UnsafeMutableRawBufferPointer(rebasing: buffer[start...]), at: offset) } catch { failure = error }
            }
            if let failure { throw failure }
            if let nul = bytes[start...].firstIndex(of: 0) {
                bytes.removeSubrange((nul + 1)...)
                break
            }
            offset += count
        }
        return bytes
    } catch {
        throw DataError.unreadable(file: path, reason: error.message)
    }
}

extension Dataset {
    /// An image data set from a pair of IDX files (MNIST's layout): images
    /// `[N, ...]` flattened to `[N, features]` and scaled by `scale` (1/255
    /// for bytes), labels `[N]`.
    /// - Throws: ``DataError`` for malformed files, an images file of one
    ///   dimension (a label file), files with no images or images with no pixels, counts that differ, labels that are not
    ///   non-negative integers, out of range (when `classCount` is given) or not
    ///   below ``maximumClassCount``, and scaled values beyond Float's range.
    public static func idx(images: String, labels: String, scale: Float = 1.0 / 255, classCount: Int? = nil) throws -> Dataset {
        try parseIDX(
            images: IDX.readFile(images), imagesFile: images, labels: IDX.readFile(labels), labelsFile: labels,
            scale: scale, classCount: classCount)
    }

    /// ``idx(images:labels:scale:classCount:)`` on the files' bytes, visible to
    /// the package's fuzzers.
    package static func parseIDX(
        images imageBytes: [UInt8], imagesFile: String, labels labelBytes: [UInt8], labelsFile: String,
        scale: Float = 1.0 / 255, classCount: Int? = nil
    ) throws -> Dataset {
        try checkClassCount(classCount)
        let x = try IDX.parse(imageBytes, file: imagesFile)
        guard x.shape.count >= 2 else {
            throw DataError.malformed(
                file: imagesFile, offset: 3, reason: "images need two or more dimensions (the count, then each image's), found one: is this a label file?")
        }
        guard x.shape[0] > 0 else { throw DataError.malformed(file: imagesFile, offset: 4, reason: "the file holds no images (its first dimension is 0)") }
        if let axis = x.shape.firstIndex(of: 0) {
            throw DataError.malformed(file: imagesFile, offset: 4 + 4 * axis, reason: "dimension \(axis) is 0: images of shape \(Array(x.shape.dropFirst())) have no pixels")
        }
        let y = try IDX.Layout(labelBytes, file: labelsFile)
        guard y.shape.count == 1 else { throw DataError.malformed(file: labelsFile, offset: 3, reason: "labels must have one dimension, found \(y.shape.count)") }
        guard x.shape[0] == y.count else { throw DataError.countMismatch(features: x.shape[0], targets: y.count) }
        var labels: [Int] = []
        labels.reserveCapacity(y.count)
        for i in 0..<y.count {
            let value = y.value(at: i, in: labelBytes)
            let text = value == value.rounded() && Swift.abs(value) < 1e15 ? String(Int(value)) : "\(value)"
            if let problem = labelProblem(value, text: text, classCount: classCount) {
                throw DataError.malformed(file: labelsFile, offset: y.offset(of: i), reason: problem)
            }
            labels.append(Int(value))
        }
        let features = x.reshaped(to: [x.shape[0], x.scalarCount / x.shape[0]])
        return try Dataset(features: features, labels: labels, classCount: classCount).scaled(by: scale)
    }

    /// Why `value` (written `text` in the file) cannot be a class label, or nil.
    /// Labels are integers in `0..<classCount`, or below ``maximumClassCount``
    /// when the class count is derived from them.
    static func labelProblem(_ value: Double, text: String, classCount: Int?) -> String? {
        guard value.isFinite, value >= 0, value == value.rounded() else { return "label \(text) is not a non-negative integer" }
        if let classCount, value >= Double(classCount) {
            return "label \(text) is out of range 0..<\(classCount) (the class count given)"
        }
        if value >= Double(maximumClassCount) {
            return "label \(text) is not below \(maximumClassCount), the limit on classes (Dataset.maximumClassCount)"
        }
        return nil
    }

    /// A data set from a numeric CSV file.
    ///
    /// One example per line, fields separated by `separator`; the label (or,
    /// with `regression`, the float target) in column `labelColumn` (0-based;
    /// negative counts from the end; default last), the features in the others.
    /// The format, as GradKit reads it:
    /// - UTF-8 (a byte-order mark is skipped) or ASCII; line ends `\n`, `\r\n`
    ///   or `\r`; blank lines are skipped; row numbers in errors count every line.
    /// - A header is detected when every field of the first row is text, or when
    ///   the first row of three or more fields reads exactly `0,1,2,...` (the
    ///   names pandas' `to_csv` gives unnamed columns); a first row of numbers and
    ///   text is an error (declare a header with `hasHeader: true`). `hasHeader:
    ///   false` reads the first row as data whatever it holds.
    /// - Numbers are decimal: `1`, `+1.5`, `-.5`, `2e-3`; spaces around them and
    ///   RFC 4180 double quotes (`"1.5"`) are allowed. NaN, infinity,
    ///   hexadecimal numbers, empty fields (missing values) and values beyond
    ///   Float's range (±3.4e38) are errors.
    /// - Labels are non-negative integers (`3`, `3.0`) below `classCount`, or
    ///   below ``maximumClassCount`` when the count is derived from them.
    /// - Throws: ``DataError/badField(file:row:column:reason:)`` naming the row
    ///   and column of the first field that breaks these rules or a row of the
    ///   wrong width; ``DataError/invalidArgument(_:)`` for a separator,
    ///   `labelColumn` or `classCount` that cannot work; ``DataError/malformed(file:offset:reason:)``
    ///   for a UTF-16 file.
    public static func csv(
        _ path: String, labelColumn: Int = -1, hasHeader: Bool? = nil, separator: Character = ",", regression: Bool = false,
        classCount: Int? = nil
    ) throws -> Dataset {
        try parseCSV(
            readTextFile(path), file: path, labelColumn: labelColumn, hasHeader: hasHeader, separator: separator,
            regression: regression, classCount: classCount)
    }
}
