// gradkit — the optimizer and its hyperparameters, checked against the library's table. SPDX-License-Identifier: MIT
import GradKit

/// `--optimizer`: which hyperparameters apply, their ranges and defaults all
/// come from the optimizer's ``Optimizer/hyperparameterSpecifications``.
enum OptimizerKind: String, CaseIterable {
    case adam, adamw, sgd, rmsprop, adagrad

    var type: Optimizer.Type {
        switch self {
        case .adam: Adam.self
        case .adamw: AdamW.self
        case .sgd: SGD.self
        case .rmsprop: RMSprop.self
        case .adagrad: AdaGrad.self
        }
    }

    var specifications: [HyperparameterSpecification] { type.hyperparameterSpecifications }

    func specification(_ hyperparameter: Hyperparameter) -> HyperparameterSpecification? {
        specifications.first { $0.hyperparameter == hyperparameter }
    }

    /// The tool's default, where it differs from the library's: SGD's learning
    /// rate is 0.01 here (the tool's since its first version; the library and
    /// PyTorch use 1e-3).
    func defaultValue(_ hyperparameter: Hyperparameter) -> Float? {
        if self == .sgd, hyperparameter == .learningRate { return 0.01 }
        return specification(hyperparameter)?.defaultValue
    }

    /// The optimizer over one group holding every value.
    func make(_ group: ParameterGroup) -> Optimizer {
        switch self {
        case .adam: Adam([group])
        case .adamw: AdamW([group])
        case .sgd: SGD([group])
        case .rmsprop: RMSprop([group])
        case .adagrad: AdaGrad([group])
        }
    }

    /// The optimizers having `hyperparameter`, with its range and default in each, for help.
    static func helpText(for hyperparameter: Hyperparameter) -> String {
        let kinds = allCases.filter { $0.specification(hyperparameter) != nil }
        let ranges = Set(kinds.map { $0.specification(hyperparameter)!.rangeDescription })
        let defaults = kinds.map { $0.defaultValue(hyperparameter)! }
        var text = kinds.count == allCases.count ? "every optimizer" : "for " + kinds.map(\.rawValue).joined(separator: ", ")
        if !hyperparameter.isFlag, ranges.count == 1 { text += ", in \(ranges.first!)" }
        if Set(defaults).count == 1 {
            text += "; default \(hyperparameter.isFlag ? (defaults[0] != 0 ? "on" : "off") : shortNumber(defaults[0]))"
        } else {
            text += "; default " + zip(kinds, defaults).map { "\($0.rawValue) \(shortNumber($1))" }.joined(separator: ", ")
        }
        return text
    }
}

/// The optimizer options: the kind, and every hyperparameter given on the
/// command line checked against that optimizer's table (applies, in range,
/// the table's rules such as Nesterov's).
struct OptimizerOptions {
    var kind = OptimizerKind.adam
    /// Every hyperparameter of the kind's table but `maximize`: given or default.
    private(set) var values: [Hyperparameter: Float] = [:]

    /// The options standing for hyperparameters.
    static let hyperparameterOptions: [(Option, Hyperparameter)] = OptionTable.all.compactMap {
        if case .hyperparameter(let h) = $0.kind { ($0.option, h) } else { nil }
    }

    init(_ a: ParsedArguments) throws(UsageError) {
        kind = a.text(.optimizer).flatMap(OptimizerKind.init(rawValue:)) ?? .adam
        for specification in kind.specifications where specification.hyperparameter != .maximize {
            values[specification.hyperparameter] = kind.defaultValue(specification.hyperparameter)
        }
        for (option, hyperparameter) in OptimizerOptions.hyperparameterOptions where a.has(option) {
            guard let specification = kind.specification(hyperparameter) else {
                let others = OptimizerKind.allCases.filter { $0.specification(hyperparameter) != nil }.map(\.rawValue)
                throw UsageError("\(option.flagName) does not apply to --optimizer \(kind.rawValue) (only to \(others.joined(separator: ", ")))")
            }
            let number = hyperparameter.isFlag ? 1 : a.number(option)!
            let value = Float(number)
            // The number as written too: -1e-300 is below 0, though its Float, -0, is not.
            guard specification.accepts(value), hyperparameter.isFlag || ValueRange(specification.range).contains(number) else {
                throw UsageError("\(option.flagName) must be in \(specification.rangeDescription) for \(kind.rawValue), got \(shortNumber(number))")
            }
            values[hyperparameter] = value
        }
        if let problem = kind.type.problem(with: group([])) { throw UsageError("--optimizer \(kind.rawValue): \(problem)") }
    }

    /// One parameter group holding every value.
    private func group(_ parameters: [Parameter]) -> ParameterGroup {
        var group = ParameterGroup(parameters)
        for (hyperparameter, value) in values { group[hyperparameter] = value }
        return group
    }

    func makeOptimizer(_ parameters: [Parameter]) -> Optimizer { kind.make(group(parameters)) }

    /// Gives `optimizer` these values again after its state was restored with a checkpoint's:
    /// what `--accept-changed-options` promises for a changed `--lr`, `--momentum`, ...
    /// - Throws: ``CommandError`` for a change the restored state cannot follow (`--amsgrad`:
    ///   its buffers were kept with the checkpoint's value).
    func apply(to optimizer: Optimizer) throws(CommandError) {
        var groups = optimizer.parameterGroups
        for (option, hyperparameter) in Self.hyperparameterOptions {
            guard let value = values[hyperparameter], let specification = kind.specification(hyperparameter) else { continue }
            for g in groups.indices where groups[g][hyperparameter] != value {
                guard specification.isAdjustable else {
                    let recorded = groups[g][hyperparameter].map { hyperparameter.isFlag ? "\($0 != 0)" : shortNumber($0) } ?? "unset"
                    throw CommandError("\(option.flagName) cannot change when resuming: the checkpoint's optimizer state was kept with \(option.flagName) \(recorded)")
                }
                groups[g][hyperparameter] = value
            }
        }
        optimizer.parameterGroups = groups
    }

    /// Canonical values for checkpoints: the kind, then every hyperparameter by its option.
    var settings: [Setting] {
        [Setting(.optimizer, kind.rawValue)]
            + OptimizerOptions.hyperparameterOptions.compactMap { option, h in
                values[h].map { Setting(option, h.isFlag ? "\($0 != 0)" : shortNumber($0)) }
            }
    }
}
