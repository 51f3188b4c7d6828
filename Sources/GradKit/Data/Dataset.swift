// GradKit — data sets, batches, splits, standardization. SPDX-License-Identifier: MIT

/// Examples for training: features `[N, ...]` with integer class labels or
/// float targets `[N, ...]`. Values, validated on creation: counts agree,
/// labels are in range, every feature is finite.
public struct Dataset: Sendable {
    /// The targets of a data set.
    public enum Targets: Sendable, Equatable {
        /// Class indices in `0..<classCount`.
        case labels([Int], classCount: Int)
        /// Regression targets, one row per example.
        case values(Tensor)
    }

    /// `[N, features]`, or `[N, time, features]` for sequences.
    public let features: Tensor
    public let targets: Targets

    /// A classification set; `classCount` defaults to the largest label + 1.
    /// - Throws: ``DataError`` when counts differ, a label is out of range, or a feature is not finite.
    public init(features: Tensor, labels: [Int], classCount: Int? = nil) throws {
        guard features.rank >= 2 else { throw DataError.invalidArgument("features need shape [N, ...], got \(features.shape)") }
        guard labels.count == features.shape[0] else {
            throw DataError.countMismatch(features: features.shape[0], targets: labels.count)
        }
        let classes = classCount ?? ((labels.max() ?? -1) + 1)
        for (row, label) in labels.enumerated() where label < 0 || label >= classes {
            throw DataError.labelOutOfRange(row: row, label: label, classCount: classes)
        }
        try Dataset.checkFinite(features)
        self.features = features
        self.targets = .labels(labels, classCount: classes)
    }

    /// A regression set.
    /// - Throws: ``DataError`` when counts differ or a value is not finite.
    public init(features: Tensor, targets: Tensor) throws {
        guard features.rank >= 2, targets.rank >= 1 else {
            throw DataError.invalidArgument("features need shape [N, ...] and targets [N, ...], got \(features.shape) and \(targets.shape)")
        }
        guard targets.shape[0] == features.shape[0] else {
            throw DataError.countMismatch(features: features.shape[0], targets: targets.shape[0])
        }
        try Dataset.checkFinite(features)
        try Dataset.checkFinite(targets)
        self.features = features
        self.targets = .values(targets)
    }

    /// Without validation, for data GradKit produced itself.
    init(unchecked features: Tensor, targets: Targets) {
        self.features = features
        self.targets = targets
    }

    private static func checkFinite(_ tensor: Tensor) throws {
        let width = tensor.shape[0] == 0 ? 0 : tensor.scalarCount / tensor.shape[0]
        let ok = tensor.withUnsafeBufferPointer { Kernels.allFinite(count: $0.count, $0.baseAddress ?? UnsafePointer(bitPattern: 8)!) }
        if ok { return }
        let values = tensor.scalars
        let index = values.firstIndex { !$0.isFinite }!
        throw DataError.nonFinite(row: index / Swift.max(width, 1), column: index % Swift.max(width, 1))
    }

    /// The number of examples.
    public var count: Int { features.shape[0] }
    /// The size of one example's last axis (the input width of a model).
    public var featureCount: Int { features.shape[features.rank - 1] }
    /// The labels of a classification set.
    public var labels: [Int]? {
        if case .labels(let labels, _) = targets { return labels }
        return nil
    }
    /// The targets of a regression set.
    public var targetValues: Tensor? {
        if case .values(let values) = targets { return values }
        return nil
    }
    /// The number of classes of a classification set.
    public var classCount: Int? {
        if case .labels(_, let classes) = targets { return classes }
        return nil
    }

    /// The examples at `indices`, in that order.
    public func subset(_ indices: [Int]) -> Dataset {
        let rows = withoutGradients { features.rows(at: indices) }
        switch targets {
        case .labels(let labels, let classes):
            return Dataset(unchecked: rows, targets: .labels(indices.map { labels[$0] }, classCount: classes))
        case .values(let values):
            return Dataset(unchecked: rows, targets: .values(withoutGradients { values.rows(at: indices) }))
        }
    }

    /// The same examples with every feature multiplied by `factor` (e.g. 1/255 for pixels).
    public func scaled(by factor: Float) -> Dataset {
        Dataset(unchecked: withoutGradients { features * factor }, targets: targets)
    }

    /// A seeded permutation of the examples.
    public func shuffled<G: RandomNumberGenerator>(using generator: inout G) -> Dataset {
        subset(Array(0..<count).shuffled(using: &generator))
    }

    /// Consecutive batches of `size` (the last may be smaller), in a seeded
    /// random order when `generator` is given.
    /// - Precondition: `size > 0`.
    public func batches(size: Int, shuffledBy generator: inout SeededGenerator?) -> [Batch] {
        precondition(size > 0, "Dataset.batches(size:): size must be > 0, got \(size)")
        var order = Array(0..<count)
        if generator != nil { order.shuffle(using: &generator!) }
        return stride(from: 0, to: count, by: size).map { start in
            Batch(subset(Array(order[start..<Swift.min(start + size, count)])))
        }
    }

    /// Splits into parts of the given fractions (the last takes the
    /// remainder), after a seeded shuffle when `seed` is given: e.g.
    /// `split([0.7, 0.15, 0.15], seed: 0)` for train, validation and test.
    /// With `stratified` (classification sets only, like scikit-learn's
    /// `train_test_split(stratify: y)`), every class is split in the same
    /// proportions, so each part keeps the class balance.
    /// - Throws: ``DataError/invalidArgument(_:)`` for fractions that are
    ///   negative or sum above 1, or a part that would be empty.
    public func split(_ fractions: [Double], seed: UInt64? = nil, stratified: Bool = false) throws -> [Dataset] {
        guard !fractions.isEmpty, fractions.allSatisfy({ $0 >= 0 }), fractions.reduce(0, +) <= 1 + 1e-9 else {
            throw DataError.invalidArgument("split fractions must be >= 0 and sum to at most 1, got \(fractions)")
        }
        var generator = seed.map { SeededGenerator(seed: $0) }
        var order = Array(0..<count)
        if generator != nil { order.shuffle(using: &generator!) }
        var groups = [order]
        if stratified {
            guard let labels, let classCount else { throw DataError.invalidArgument("a stratified split needs a data set with labels") }
            groups = Array(repeating: [], count: classCount)
            for index in order { groups[labels[index]].append(index) }
        }
        var parts = Array(repeating: [Int](), count: fractions.count)
        for group in groups {
            var start = 0
            for (i, fraction) in fractions.enumerated() {
                let end = i == fractions.count - 1 ? group.count : Swift.min(group.count, start + Int((Double(group.count) * fraction).rounded()))
                parts[i] += group[start..<end]
                start = end
            }
        }
        return try parts.enumerated().map { i, indices in
            guard !indices.isEmpty else { throw DataError.invalidArgument("split part \(i) of \(count) examples would be empty") }
            var indices = indices
            if stratified, generator != nil { indices.shuffle(using: &generator!) }
            return subset(indices)
        }
    }
}

/// One mini-batch: features and the matching labels or targets.
public struct Batch: Sendable {
    public let features: Tensor
    public let labels: [Int]?
    public let targets: Tensor?

    init(_ dataset: Dataset) {
        features = dataset.features
        switch dataset.targets {
        case .labels(let labels, _):
            self.labels = labels
            targets = nil
        case .values(let values):
            labels = nil
            targets = values
        }
    }

    public var count: Int { features.shape[0] }
}

/// Per-feature standardization, `(x − mean) / std`, fitted on training data
/// and applied unchanged to validation and test data. Features with zero
/// spread (a pixel that is always 0) are only centered.
public struct Standardizer: Sendable, Equatable {
    /// Means and standard deviations (population) of each feature, shape `[features]`.
    public let mean: Tensor
    public let standardDeviation: Tensor

    public init(fitting dataset: Dataset) {
        let x = dataset.features.reshaped(to: [-1, dataset.featureCount])
        let mean = withoutGradients { x.mean(alongAxes: 0) }
        let variance = withoutGradients { (x - mean).squared().mean(alongAxes: 0) }
        self.mean = mean.reshaped(to: [dataset.featureCount])
        self.standardDeviation = Tensor(
            shape: [dataset.featureCount], scalars: variance.scalars.map { $0 > 0 ? $0.squareRoot() : 1 })
    }

    /// The data set with its features standardized (targets unchanged).
    public func transform(_ dataset: Dataset) -> Dataset {
        let x = withoutGradients { (dataset.features - mean) / standardDeviation }
        return Dataset(unchecked: x, targets: dataset.targets)
    }
}
