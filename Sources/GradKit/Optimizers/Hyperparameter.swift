// GradKit — hyperparameters, declared once: names, PyTorch keys, ranges, defaults. SPDX-License-Identifier: MIT

/// A hyperparameter of some GradKit optimizer: its Swift spelling, its key in
/// PyTorch's `param_groups`, and whether it is a flag.
///
/// Adam's `betas` pair is split into `beta1` and `beta2`, in Swift and in
/// exported state alike. Flags are stored and exported as 0 (false) or 1 (true).
public enum Hyperparameter: Int, CaseIterable, Sendable, CustomStringConvertible {
    case learningRate, weightDecay, momentum, dampening, nesterov, beta1, beta2, epsilon, amsgrad, alpha, centered
    case learningRateDecay, initialAccumulatorValue, maximize

    private var declaration: (name: String, key: String, isFlag: Bool) {
        switch self {
        case .learningRate: ("learningRate", "lr", false)
        case .weightDecay: ("weightDecay", "weight_decay", false)
        case .momentum: ("momentum", "momentum", false)
        case .dampening: ("dampening", "dampening", false)
        case .nesterov: ("nesterov", "nesterov", true)
        case .beta1: ("beta1", "beta1", false)
        case .beta2: ("beta2", "beta2", false)
        case .epsilon: ("epsilon", "eps", false)
        case .amsgrad: ("amsgrad", "amsgrad", true)
        case .alpha: ("alpha", "alpha", false)
        case .centered: ("centered", "centered", true)
        case .learningRateDecay: ("learningRateDecay", "lr_decay", false)
        case .initialAccumulatorValue: ("initialAccumulatorValue", "initial_accumulator_value", false)
        case .maximize: ("maximize", "maximize", true)
        }
    }

    /// The Swift spelling: the initializer argument and the property, e.g. "weightDecay".
    public var name: String { declaration.name }
    /// PyTorch's key, e.g. "weight_decay"; also the key in exported state.
    public var pytorchKey: String { declaration.key }
    /// Whether the value is a Bool (stored as 0 or 1).
    public var isFlag: Bool { declaration.isFlag }
    public var description: String { name }

    /// The hyperparameter with PyTorch key `key`, if any.
    init?(pytorchKey key: String) {
        guard let found = Self.allCases.first(where: { $0.pytorchKey == key }) else { return nil }
        self = found
    }

    /// PyTorch's words for it in error messages ("Invalid learning rate",
    /// "Invalid beta parameter at index 0", "Invalid alpha value").
    var wording: String {
        switch self {
        case .learningRate: "learning rate"
        case .beta1: "beta parameter at index 0:"
        case .beta2: "beta parameter at index 1:"
        case .epsilon: "epsilon value"
        default: "\(pytorchKey) value"
        }
    }
}

/// The finite values a hyperparameter accepts: from `lowerBound` (included) to
/// `upperBound` (included when `includesUpperBound`; none when nil). Infinity
/// and NaN are never accepted, whatever the bounds.
public struct HyperparameterRange: Sendable, Equatable, CustomStringConvertible {
    public let lowerBound: Float
    public let upperBound: Float?
    public let includesUpperBound: Bool

    /// Every finite value >= `lowerBound`.
    public static func atLeast(_ lowerBound: Float) -> Self {
        Self(lowerBound: lowerBound, upperBound: nil, includesUpperBound: false)
    }

    /// `[lowerBound, upperBound)`.
    public static func halfOpen(_ lowerBound: Float, _ upperBound: Float) -> Self {
        Self(lowerBound: lowerBound, upperBound: upperBound, includesUpperBound: false)
    }

    /// `[lowerBound, upperBound]`.
    public static func closed(_ lowerBound: Float, _ upperBound: Float) -> Self {
        Self(lowerBound: lowerBound, upperBound: upperBound, includesUpperBound: true)
    }

    /// Whether `value` is finite and within the bounds.
    public func contains(_ value: Float) -> Bool {
        guard value.isFinite, value >= lowerBound else { return false }
        guard let upperBound else { return true }
        return includesUpperBound ? value <= upperBound : value < upperBound
    }

    /// Interval notation: "[0, 1)", "[0, ∞)".
    public var description: String {
        let upper = upperBound.map { "\(shortNumber($0))\(includesUpperBound ? "]" : ")")" } ?? "∞)"
        return "[\(shortNumber(lowerBound)), \(upper)"
    }
}

/// One row of an optimizer's hyperparameter table (PyTorch's `defaults`
/// dictionary plus the checks its initializer makes): which hyperparameter,
/// its default, the values it accepts, and whether it may change between
/// steps. The table drives the initializer's checks, the checks when a group
/// is set, exported state, the checks of restored state, and every message
/// about a bad value. Read it through, e.g., ``Optimizer/hyperparameterSpecifications``.
public struct HyperparameterSpecification: Sendable {
    public let hyperparameter: Hyperparameter
    /// The initializer's default (flags: 0 or 1).
    public let defaultValue: Float
    /// The values accepted; flags accept 0 and 1 only.
    public let range: HyperparameterRange
    /// False when the optimizer's state is built around the value from the
    /// first step on (AMSGrad's maximum, the centered average, AdaGrad's
    /// initial accumulator): then only the initializer and a restore set it.
    public let isAdjustable: Bool

    /// A number in `range`.
    init(_ hyperparameter: Hyperparameter, default defaultValue: Float, range: HyperparameterRange, isAdjustable: Bool = true) {
        precondition(!hyperparameter.isFlag && range.contains(defaultValue), "\(hyperparameter): bad table entry")
        self.hyperparameter = hyperparameter
        self.defaultValue = defaultValue
        self.range = range
        self.isAdjustable = isAdjustable
    }

    /// A flag.
    init(_ hyperparameter: Hyperparameter, default defaultValue: Bool, isAdjustable: Bool = true) {
        precondition(hyperparameter.isFlag, "\(hyperparameter): bad table entry")
        self.hyperparameter = hyperparameter
        self.defaultValue = defaultValue ? 1 : 0
        self.range = .closed(0, 1)
        self.isAdjustable = isAdjustable
    }

    /// The Swift spelling, e.g. "beta1".
    public var name: String { hyperparameter.name }
    /// PyTorch's key, e.g. "eps".
    public var pytorchKey: String { hyperparameter.pytorchKey }
    /// Whether the value is a Bool (0 or 1).
    public var isFlag: Bool { hyperparameter.isFlag }

    /// The accepted values in words: "[0, 1)", or "false or true" for a flag.
    public var rangeDescription: String { isFlag ? "false or true" : range.description }

    /// Whether `value` is acceptable: in `range`, and 0 or 1 for a flag.
    public func accepts(_ value: Float) -> Bool {
        isFlag ? value == 0 || value == 1 : range.contains(value)
    }

    /// Why `value` is not acceptable, in PyTorch's words plus the range, or
    /// nil: "invalid beta parameter at index 0: 1.5 (beta1 must be a finite value in [0, 1))".
    func problem(with value: Float) -> String? {
        guard !accepts(value) else { return nil }
        let must = isFlag ? "must be 0 or 1 (false or true)" : "must be a finite value in \(range)"
        return "invalid \(hyperparameter.wording) \(value) (\(name) \(must))"
    }
}

/// A condition between hyperparameters of one group that ranges cannot
/// express (PyTorch's Nesterov check), with the hyperparameter a failed
/// restore names.
struct HyperparameterRule: Sendable {
    let reported: Hyperparameter
    let message: String
    let holds: @Sendable (ParameterGroup) -> Bool
}

/// Why a group's values are not acceptable to an optimizer; the initializer
/// and the setters trap with it, a restore throws the matching
/// ``OptimizerStateError``.
enum HyperparameterError: Error, CustomStringConvertible {
    case notOfOptimizer(Hyperparameter, kind: String)
    case invalid(HyperparameterSpecification, Float)
    case broken(HyperparameterRule)
    case notAdjustable(Hyperparameter)

    var description: String {
        switch self {
        case .notOfOptimizer(let hyperparameter, let kind): "\(hyperparameter) is not a hyperparameter of \(kind)"
        case .invalid(let specification, let value): specification.problem(with: value) ?? "invalid \(specification.name)"
        case .broken(let rule): rule.message
        case .notAdjustable(let hyperparameter):
            "\(hyperparameter) cannot change after the optimizer is made (its state is built around it from the first step)"
        }
    }
}

extension [HyperparameterSpecification] {
    /// `group` with every hyperparameter of the table set, unset ones taken
    /// from `defaults`, checked against the table and `rules`.
    func resolve(
        _ group: ParameterGroup, defaults: ParameterGroup, rules: [HyperparameterRule], kind: String
    ) throws(HyperparameterError) -> ParameterGroup {
        var resolved = group
        for hyperparameter in group.setHyperparameters where !contains(where: { $0.hyperparameter == hyperparameter }) {
            throw .notOfOptimizer(hyperparameter, kind: kind)
        }
        for specification in self {
            let value = group[specification.hyperparameter] ?? defaults[specification.hyperparameter]!
            guard specification.accepts(value) else { throw .invalid(specification, value) }
            resolved[specification.hyperparameter] = value
        }
        for rule in rules where !rule.holds(resolved) { throw .broken(rule) }
        return resolved
    }
}
