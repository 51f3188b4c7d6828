// GradKit — fuzz target: numeric CSV files and the data sets they make. SPDX-License-Identifier: MIT
import GradKit

/// Parses the input after its first five bytes as a CSV file, with the
/// reader's options drawn from those bytes, then runs what the command line
/// does with a data set: standardization, scaling, a split and batches.
enum CSVTarget {
    /// Separators, valid and not (a letter, a quote, a non-ASCII character, the decimal point).
    static let separators: [Character] = [",", ";", "\t", "|", ":", " ", "\"", "a", "é", ".", "-", "\0"]
    static let headers: [Bool?] = [nil, true, false]
    static let labelColumns = [-1, 0, 1, 2, -2, 3, -3, 255, -256, Int.max, Int.min, 1_000_000]
    static let classCounts: [Int?] = [nil, 2, 3, 10, 1, 0, -1, 1_000_000, 1_000_001, Int.max, Int.min]
    static let fractions: [[Double]] = [[0.8, 0.2], [0.7, 0.15, 0.15], [1], [0.5, 0.6], [0, 1], [0.999, 0.001]]

    static func run(_ bytes: [UInt8]) {
        var choices = ByteChoices(bytes[...])
        let separator = choices.pick(separators), hasHeader = choices.pick(headers)
        let labelColumn = choices.pick(labelColumns), classCount = choices.pick(classCounts)
        let flags = choices.byte()
        let regression = flags & 1 != 0, stratified = flags & 2 != 0, batchSize = 1 + Int(flags >> 2 & 7)
        guard let dataset = try? Dataset.parseCSV(
            Array(choices.remaining), file: "input", labelColumn: labelColumn, hasHeader: hasHeader, separator: separator,
            regression: regression, classCount: classCount)
        else { return }
        require(dataset.count > 0 && dataset.featureCount > 0, "a CSV data set with no examples or no features")
        require(regression == (dataset.labels == nil), "a data set of the wrong kind")
        transform(dataset)
        guard let parts = try? dataset.split(choices.pick(fractions), seed: UInt64(flags), stratified: stratified) else { return }
        require(parts.map(\.count).reduce(0, +) == dataset.count, "a split lost or duplicated examples")
        for part in parts {
            var generator: SeededGenerator? = SeededGenerator(seed: 7)
            let batches = part.batches(size: batchSize, shuffledBy: &generator)
            require(batches.map(\.count).reduce(0, +) == part.count, "batches lost or duplicated examples")
        }
    }

    /// Fitting a standardizer or a magnitude scaler and applying it to the
    /// data it was fitted on never overflows (the types promise it); scaling
    /// by a large factor may, and then throws.
    private static func transform(_ dataset: Dataset) {
        do {
            let standardized = try Standardizer(fitting: dataset).transform(dataset)
            require(standardized.features.scalars.allSatisfy(\.isFinite), "a standardized value is not finite")
            let scaled = try MagnitudeScaler(fitting: dataset).transform(dataset)
            require(scaled.features.scalars.allSatisfy { Swift.abs($0) <= 1 }, "a scaled value is beyond ±1")
        } catch {
            require(false, "a transform of the fitted data threw: \(error)")
        }
        _ = try? dataset.scaled(by: 1e30)
    }
}
