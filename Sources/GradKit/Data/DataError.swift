// GradKit — errors from data files and data sets. SPDX-License-Identifier: MIT

/// What was wrong with a data file or data set, and where.
///
/// Rows and columns of a text file are 1-based, as an editor shows them;
/// examples and features of a data set in memory are 0-based indices.
public enum DataError: Error, Equatable, CustomStringConvertible {
    /// The file could not be opened or read.
    case unreadable(file: String, reason: String)
    /// A binary file's content is wrong at a byte offset.
    case malformed(file: String, offset: Int, reason: String)
    /// A text file's content is wrong at a row (1-based, counting the header and
    /// blank lines) and column (1-based).
    case badField(file: String, row: Int, column: Int, reason: String)
    /// Features and labels (or targets) disagree in count.
    case countMismatch(features: Int, targets: Int)
    /// The label of example `row` (0-based) is outside `0..<classCount`.
    case labelOutOfRange(row: Int, label: Int, classCount: Int)
    /// The label of example `row` (0-based) would make more classes than `limit`
    /// (``Dataset/maximumClassCount``).
    case tooManyClasses(row: Int, label: Int, limit: Int)
    /// A NaN or infinite value at example `row`, flat position `column` within
    /// the example (both 0-based).
    case nonFinite(row: Int, column: Int)
    /// A normalization or scaling would turn the value at example `row`, flat
    /// position `column` within the example (both 0-based), into a value
    /// beyond Float's range.
    case overflow(row: Int, column: Int, reason: String)
    /// The data's width differs from what the model takes.
    case widthMismatch(dataset: Int, model: Int)
    /// An argument that cannot work (an empty split, a batch size of 0, ...).
    case invalidArgument(String)

    /// One line saying where (file, byte offset, row and column, or example) and what was wrong.
    public var description: String {
        switch self {
        case .unreadable(let file, let reason): "\(file.shownInMessage): cannot read: \(reason)"
        case .malformed(let file, let offset, let reason): "\(file.shownInMessage): byte \(offset): \(reason)"
        case .badField(let file, let row, let column, let reason): "\(file.shownInMessage): row \(row), column \(column): \(reason)"
        case .countMismatch(let features, let targets): "\(features) examples but \(targets) labels or targets"
        case .labelOutOfRange(let row, let label, let classCount): "example \(row): label \(label) is out of range 0..<\(classCount)"
        case .tooManyClasses(let row, let label, let limit):
            "example \(row): label \(label) would make more than \(limit) classes, the limit (Dataset.maximumClassCount)"
        case .nonFinite(let row, let column): "example \(row), value \(column): NaN or infinite"
        case .overflow(let row, let column, let reason): "example \(row), value \(column): \(reason)"
        case .widthMismatch(let dataset, let model): "the data has \(dataset) features per example, the model takes \(model)"
        case .invalidArgument(let reason): reason
        }
    }
}
