// GradKit — splitting a data set into training, validation and test parts. SPDX-License-Identifier: MIT

extension Dataset {
    /// Splits into parts of the given fractions (the last takes the
    /// remainder), after a seeded shuffle when `seed` is given: e.g.
    /// `split([0.7, 0.15, 0.15], seed: 0, partNames: ["training", "validation", "test"])`.
    ///
    /// With `stratified` (classification sets only, like scikit-learn's
    /// `train_test_split(stratify: y)`), every class is split in the same
    /// proportions, so each part keeps the class balance. As scikit-learn
    /// does, it refuses a class with fewer examples than there are parts:
    /// that class cannot be in every part.
    /// - Parameters:
    ///   - fractions: the share of each part, each in `0...1`, summing to at most 1.
    ///   - seed: shuffles the examples first when given; otherwise parts are consecutive.
    ///   - stratified: split every class separately, in the same proportions.
    ///   - partNames: one name per part, used in error messages ("the test part
    ///     would be empty"); parts are numbered when nil.
    /// - Throws: ``DataError/invalidArgument(_:)`` for fractions that are
    ///   negative, not finite or sum above 1, names that do not match the
    ///   fractions, a stratified split of a regression set or with a class too
    ///   small for every part, or a part that would be empty. The message names
    ///   the part and says what to change.
    public func split(_ fractions: [Double], seed: UInt64? = nil, stratified: Bool = false, partNames: [String]? = nil) throws -> [Dataset] {
        guard !fractions.isEmpty, fractions.allSatisfy({ $0 >= 0 && $0.isFinite }), fractions.reduce(0, +) <= 1 + 1e-9 else {
            throw DataError.invalidArgument("split fractions must be >= 0 and sum to at most 1, got \(fractions)")
        }
        if let partNames, partNames.count != fractions.count {
            throw DataError.invalidArgument("split: \(partNames.count) part names \(partNames) for \(fractions.count) fractions \(fractions)")
        }
        var generator = seed.map { SeededGenerator(seed: $0) }
        var order = Array(0..<count)
        if generator != nil { order.shuffle(using: &generator!) }
        var groups = [order]
        if stratified {
            guard let labels else { throw DataError.invalidArgument("a stratified split needs a data set with labels") }
            // Only the classes present, in class order: no array per possible class.
            groups = Dictionary(grouping: order) { labels[$0] }.sorted { $0.key < $1.key }.map(\.value)
            if fractions.count > 1, let small = groups.first(where: { $0.count < fractions.count }) {
                throw DataError.invalidArgument(
                    "class \(labels[small[0]]) has \(small.count) example\(small.count == 1 ? "" : "s"), too few for a stratified split into \(fractions.count) parts (each part needs an example of every class): merge or drop the rare class, or split without stratification")
            }
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
        if let empty = parts.firstIndex(where: \.isEmpty) {
            throw DataError.invalidArgument(emptyPartMessage(empty, fractions: fractions, names: partNames, largestGroup: groups.map(\.count).max() ?? 0, stratified: stratified))
        }
        return parts.map { indices in
            var indices = indices
            if stratified, generator != nil { indices.shuffle(using: &generator!) }
            return subset(indices)
        }
    }

    /// Why part `index` of a split came out empty, and what would fill it.
    private func emptyPartMessage(_ index: Int, fractions: [Double], names: [String]?, largestGroup: Int, stratified: Bool) -> String {
        if count == 0 { return "split: the data set has no examples" }
        let part = names.map { "the \($0[index]) part" } ?? "part \(index + 1) of \(fractions.count)"
        let examples = "\(count) example\(count == 1 ? "" : "s")"
        if index == fractions.count - 1, fractions.count > 1 {
            let others = fractions.dropLast().reduce(0, +)
            return "split: \(part) (fraction \(fractions[index])) gets what is left of the \(examples) after the other parts (fractions summing to \(others)) take their rounded shares, which is none; lower the other fractions"
        }
        if fractions[index] == 0 { return "split: \(part) has fraction 0 and would be empty; give it a fraction above 0 or leave it out" }
        let scope = stratified ? " in every class (a stratified split rounds each class separately; the largest has \(largestGroup))" : ""
        return "split: \(part) would be empty: a fraction of \(fractions[index]) of the \(examples) rounds to 0 examples\(scope); raise it to at least \(1 / Double(Swift.max(largestGroup, 1))) or use more data"
    }
}
