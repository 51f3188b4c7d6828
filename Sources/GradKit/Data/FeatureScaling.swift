// GradKit — feature scaling and standardization, computed in Double. SPDX-License-Identifier: MIT

extension Dataset {
    /// The same examples with every feature multiplied by `factor` (e.g. 1/255
    /// for pixels), computed in Double and rounded once to Float.
    /// - Throws: ``DataError/invalidArgument(_:)`` for a factor that is not
    ///   finite, ``DataError/overflow(row:column:reason:)`` for a product beyond
    ///   Float's range.
    public func scaled(by factor: Float) throws -> Dataset {
        guard factor.isFinite else { throw DataError.invalidArgument("scaled(by:): the factor must be finite, got \(factor)") }
        let multiplier = Double(factor)
        return try mappingFeatures { value, _ in value * multiplier } explain: { value, _, result in
            "\(value) × \(factor) = \(result) is beyond Float's range (±3.4e38)"
        }
    }

    /// The data set with each feature value `x` replaced by
    /// `transform(Double(x), feature)` rounded once to Float, where `feature` is
    /// the position on the last axis; targets unchanged. The one place
    /// normalizations turn values into features, so none can hand an infinity
    /// (or a NaN computed from one) to training.
    /// - Throws: ``DataError/overflow(row:column:reason:)`` at the first result
    ///   beyond Float's range, with `explain(x, feature, result)` as the reason.
    func mappingFeatures(
        _ transform: (Double, Int) -> Double, explain: (Float, Int, Double) -> String
    ) throws -> Dataset {
        guard count > 0 else { return self }
        let width = featureCount, exampleSize = features.scalarCount / count
        let output = Tensor(uninitializedShape: features.shape)
        try features.withUnsafeBufferPointer { x in
            let y = output.mutablePointer
            var feature = 0
            for i in x.indices {
                let result = transform(Double(x[i]), feature)
                let rounded = Float(result)
                guard rounded.isFinite else {
                    throw DataError.overflow(row: i / exampleSize, column: i % exampleSize, reason: explain(x[i], feature, result))
                }
                y[i] = rounded
                feature += 1
                if feature == width { feature = 0 }
            }
        }
        return Dataset(unchecked: output, targets: targets)
    }
}

/// Per-feature standardization, `(x − mean) / std`, fitted on training data
/// and applied unchanged to validation and test data. Features with zero
/// spread (a pixel that is always 0) are only centered.
///
/// Means and variances are accumulated in Double (two passes), and the
/// transform subtracts and divides in Double before rounding once to Float:
/// in Float, a feature of magnitude 1e20 has an overflowing variance and
/// would be zeroed, and one near ±3.4e38 overflows the sum and becomes NaN.
/// On the fitted data every result is finite (|z| ≤ √N).
public struct Standardizer: Sendable, Equatable {
    /// The mean of each feature, shape `[features]`, rounded to Float (the
    /// transform uses the Double value).
    public let mean: Tensor
    /// The population standard deviation of each feature (1 for a feature with
    /// zero spread), shape `[features]`, rounded to Float (the transform uses
    /// the Double value, which may be below Float's smallest value).
    public let standardDeviation: Tensor
    private let means: [Double]
    private let deviations: [Double]

    /// Fits the means and standard deviations of `dataset`'s features (over the
    /// examples, and over time steps for sequences).
    public init(fitting dataset: Dataset) {
        let width = dataset.featureCount
        var sums = [Double](repeating: 0, count: width), squares = [Double](repeating: 0, count: width)
        let rows = width == 0 ? 0 : dataset.features.scalarCount / width
        dataset.features.withUnsafeBufferPointer { x in
            for row in 0..<rows {
                for column in 0..<width { sums[column] += Double(x[row * width + column]) }
            }
            for column in 0..<width { sums[column] /= Double(Swift.max(rows, 1)) }
            for row in 0..<rows {
                for column in 0..<width {
                    let deviation = Double(x[row * width + column]) - sums[column]
                    squares[column] += deviation * deviation
                }
            }
        }
        means = sums
        deviations = squares.map { $0 > 0 ? ($0 / Double(rows)).squareRoot() : 1 }
        mean = Tensor(shape: [width], scalars: means.map { Float($0) })
        standardDeviation = Tensor(shape: [width], scalars: deviations.map { Float($0) })
    }

    /// The data set with its features standardized (targets unchanged).
    /// - Throws: ``DataError/invalidArgument(_:)`` when the data set's width
    ///   differs from the fitted one; ``DataError/overflow(row:column:reason:)``
    ///   when a value lies so many standard deviations from the mean that the
    ///   result exceeds Float's range (possible only for data other than the
    ///   fitted set).
    public func transform(_ dataset: Dataset) throws -> Dataset {
        guard dataset.featureCount == means.count else {
            throw DataError.invalidArgument("the standardizer was fitted on \(means.count) features, the data set has \(dataset.featureCount)")
        }
        return try dataset.mappingFeatures { value, feature in
            (value - means[feature]) / deviations[feature]
        } explain: { value, feature, result in
            "standardizing \(value) with feature \(feature)'s mean \(means[feature]) and standard deviation \(deviations[feature]) gives \(result), beyond Float's range (±3.4e38)"
        }
    }
}

/// Scaling by one number fitted on training data: every feature divided by
/// the largest magnitude |x| among the fitted features, so those lie in
/// [−1, 1] and keep their ratios (pixels 0–255 become 0–1). Unlike
/// scikit-learn's `MaxAbsScaler`, one divisor serves all features.
///
/// The division is done in Double: for a largest magnitude below 2.9e-39,
/// `1 / largest` is infinite in Float.
public struct MagnitudeScaler: Sendable, Equatable {
    /// The largest |x| of the fitted features; 0 when they are all zero, and
    /// then ``transform(_:)`` leaves data unchanged.
    public let largestMagnitude: Float

    /// Finds the largest magnitude among `dataset`'s features.
    public init(fitting dataset: Dataset) {
        largestMagnitude = dataset.features.withUnsafeBufferPointer { $0.reduce(0) { Swift.max($0, Swift.abs($1)) } }
    }

    /// The data set with every feature divided by ``largestMagnitude`` (targets unchanged).
    /// - Throws: ``DataError/overflow(row:column:reason:)`` when a value of data
    ///   other than the fitted set divided by a tiny largest magnitude exceeds
    ///   Float's range.
    public func transform(_ dataset: Dataset) throws -> Dataset {
        guard largestMagnitude > 0 else { return dataset }
        let divisor = Double(largestMagnitude)
        return try dataset.mappingFeatures { value, _ in value / divisor } explain: { value, _, result in
            "\(value) divided by the fitted largest magnitude \(largestMagnitude) is \(result), beyond Float's range (±3.4e38)"
        }
    }
}
