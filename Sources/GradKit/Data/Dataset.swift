// GradKit — data sets, batches and splits. SPDX-License-Identifier: MIT

/// Examples for training: features `[N, ...]` with integer class labels or
/// float targets `[N, ...]`. Values, validated on creation: at least one
/// example, no empty dimension, counts agree, labels are in range, every
/// feature is finite.
public struct Dataset: Sendable {
    /// The targets of a data set.
    public enum Targets: Sendable, Equatable {
        /// Class indices in `0..<classCount`.
        case labels([Int], classCount: Int)
        /// Regression targets, one row per example.
        case values(Tensor)
    }

    /// The largest number of classes a data set may have: 1,000,000.
    ///
    /// The class count sizes the model's output layer and one array per class
    /// (a stratified split, class counts), and when it is derived from the data
    /// (largest label + 1) a single stray label would otherwise decide it. At
    /// the limit a 128-wide output layer already holds 128 million weights; the
    /// largest common benchmarks have 21,841 classes (ImageNet-21k).
    public static let maximumClassCount = 1_000_000

    /// `[N, features]`, or `[N, time, features]` for sequences.
    public let features: Tensor
    /// Class labels or regression targets, one per example.
    public let targets: Targets

    /// A classification set; `classCount` defaults to the largest label + 1.
    /// - Throws: ``DataError`` when there are no examples or features, counts
    ///   differ, `classCount` is outside `1...maximumClassCount`, a label is out
    ///   of range (``DataError/tooManyClasses(row:label:limit:)`` when the
    ///   derived class count would exceed ``maximumClassCount``), or a feature
    ///   is not finite.
    public init(features: Tensor, labels: [Int], classCount: Int? = nil) throws {
        try Dataset.checkShape(features, role: "features")
        guard labels.count == features.shape[0] else {
            throw DataError.countMismatch(features: features.shape[0], targets: labels.count)
        }
        try Dataset.checkClassCount(classCount)
        let classes: Int
        if let classCount {
            classes = classCount
        } else {
            if let row = labels.firstIndex(where: { $0 >= Dataset.maximumClassCount }) {
                throw DataError.tooManyClasses(row: row, label: labels[row], limit: Dataset.maximumClassCount)
            }
            classes = (labels.max() ?? -1) + 1
        }
        for (row, label) in labels.enumerated() where label < 0 || label >= classes {
            throw DataError.labelOutOfRange(row: row, label: label, classCount: classes)
        }
        try Dataset.checkFinite(features)
        self.features = features
        self.targets = .labels(labels, classCount: classes)
    }

    /// A regression set.
    /// - Throws: ``DataError`` when there are no examples, features or targets,
    ///   counts differ, or a value is not finite.
    public init(features: Tensor, targets: Tensor) throws {
        try Dataset.checkShape(features, role: "features")
        try Dataset.checkShape(targets, role: "targets", minimumRank: 1)
        guard targets.shape[0] == features.shape[0] else {
            throw DataError.countMismatch(features: features.shape[0], targets: targets.shape[0])
        }
        try Dataset.checkFinite(features)
        try Dataset.checkFinite(targets)
        self.features = features
        self.targets = .values(targets)
    }

    /// Without validation, for data GradKit produced or validated itself.
    init(unchecked features: Tensor, targets: Targets) {
        self.features = features
        self.targets = targets
    }

    /// Throws unless `tensor` is `[N, ...]` with at least `minimumRank` axes, `N > 0`
    /// and no empty axis: zero examples or zero-width examples reach a model
    /// as shapes no layer accepts.
    private static func checkShape(_ tensor: Tensor, role: String, minimumRank: Int = 2) throws {
        guard tensor.rank >= minimumRank else {
            throw DataError.invalidArgument("\(role) need shape [N, \(minimumRank == 2 ? "features" : "...")], got \(tensor.shape)")
        }
        guard tensor.shape[0] > 0 else { throw DataError.invalidArgument("a data set needs at least one example; the \(role) have shape \(tensor.shape)") }
        guard !tensor.shape.contains(0) else {
            throw DataError.invalidArgument("each example needs at least one value; the \(role) have shape \(tensor.shape)")
        }
    }

    /// Throws unless a class count given by the caller is in `1...maximumClassCount`.
    static func checkClassCount(_ classCount: Int?) throws {
        guard let classCount else { return }
        guard classCount >= 1, classCount <= maximumClassCount else {
            throw DataError.invalidArgument("classCount must be in 1...\(maximumClassCount) (Dataset.maximumClassCount), got \(classCount)")
        }
    }

    /// Throws ``DataError/nonFinite(row:column:)`` at the first NaN or infinity.
    private static func checkFinite(_ tensor: Tensor) throws {
        try tensor.withUnsafeBufferPointer { values in
            guard let base = values.baseAddress, !Kernels.allFinite(count: values.count, base) else { return }
            let exampleSize = values.count / tensor.shape[0]
            for index in values.indices where !values[index].isFinite {
                throw DataError.nonFinite(row: index / exampleSize, column: index % exampleSize)
            }
        }
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

    /// The examples at `indices`, in that order (an empty list gives an empty set).
    /// - Precondition: every index is in `0..<count`.
    public func subset(_ indices: [Int]) -> Dataset {
        let rows = withoutGradients { features.rows(at: indices) }
        switch targets {
        case .labels(let labels, let classes):
            return Dataset(unchecked: rows, targets: .labels(indices.map { labels[$0] }, classCount: classes))
        case .values(let values):
            return Dataset(unchecked: rows, targets: .values(withoutGradients { values.rows(at: indices) }))
        }
    }

    /// A seeded permutation of the examples.
    public func shuffled<G: RandomNumberGenerator>(using generator: inout G) -> Dataset {
        subset(Array(0..<count).shuffled(using: &generator))
    }

    /// Consecutive batches of `size` (the last may be smaller), in a seeded
    /// random order when `generator` is given.
    /// - Precondition: `size > 0` (``Trainer`` checks its batch size first).
    public func batches(size: Int, shuffledBy generator: inout SeededGenerator?) -> [Batch] {
        precondition(size > 0, "Dataset.batches(size:): size must be > 0, got \(size)")
        var order = Array(0..<count)
        if generator != nil { order.shuffle(using: &generator!) }
        // `count - start` rather than `start + size`: no overflow for any size.
        return stride(from: 0, to: count, by: size).map { start in
            Batch(subset(Array(order[start..<(start + Swift.min(size, count - start))])))
        }
    }
}

/// One mini-batch: features and the matching labels or targets.
public struct Batch: Sendable {
    /// `[count, ...]`, a slice of the data set's features.
    public let features: Tensor
    /// The class labels of a classification set, else nil.
    public let labels: [Int]?
    /// The targets of a regression set, else nil.
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

    /// The number of examples in the batch.
    public var count: Int { features.shape[0] }
}
