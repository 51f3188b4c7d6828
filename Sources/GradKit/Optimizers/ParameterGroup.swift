// GradKit — parameter groups: PyTorch's param_groups. SPDX-License-Identifier: MIT

/// Parameters that share hyperparameters inside one optimizer (an entry of
/// PyTorch's `param_groups`): for example no weight decay on biases, or a
/// smaller learning rate for a pretrained body.
///
/// ```swift
/// let sgd = SGD([ParameterGroup(body.parameters, learningRate: 0.01), ParameterGroup(head.parameters)],
///               learningRate: 0.1, momentum: 0.9)
/// sgd.parameterGroups[1].learningRate *= 0.5      // between steps
/// ```
/// A value left nil takes the optimizer's (the initializer's argument, as
/// PyTorch's `defaults`). Setting a hyperparameter the optimizer does not have
/// (momentum for Adam) is a programmer error the optimizer traps on.
///
/// The properties are non-optional: once the group belongs to an optimizer
/// (read it back from ``Optimizer/parameterGroups``) every hyperparameter of
/// that optimizer is set. Reading one that is not set traps with its name.
public struct ParameterGroup {
    /// The group's parameters, in order; an optimizer's flat layout follows
    /// its groups' order, so they cannot change once the group belongs to one.
    public let parameters: [Parameter]

    /// Values by `Hyperparameter.rawValue`; nil is "not set". Flags are 0 or 1.
    private var values: [Float?]

    /// A group of `parameters` with the given values; nil means the optimizer's.
    public init(
        _ parameters: [Parameter], learningRate: Float? = nil, weightDecay: Float? = nil, momentum: Float? = nil,
        dampening: Float? = nil, nesterov: Bool? = nil, beta1: Float? = nil, beta2: Float? = nil, epsilon: Float? = nil,
        amsgrad: Bool? = nil, alpha: Float? = nil, centered: Bool? = nil, learningRateDecay: Float? = nil,
        initialAccumulatorValue: Float? = nil, maximize: Bool? = nil
    ) {
        self.parameters = parameters
        self.values = Array(repeating: nil, count: Hyperparameter.allCases.count)
        func flag(_ value: Bool?) -> Float? { value.map { $0 ? 1 : 0 } }
        self[.learningRate] = learningRate
        self[.weightDecay] = weightDecay
        self[.momentum] = momentum
        self[.dampening] = dampening
        self[.nesterov] = flag(nesterov)
        self[.beta1] = beta1
        self[.beta2] = beta2
        self[.epsilon] = epsilon
        self[.amsgrad] = flag(amsgrad)
        self[.alpha] = alpha
        self[.centered] = flag(centered)
        self[.learningRateDecay] = learningRateDecay
        self[.initialAccumulatorValue] = initialAccumulatorValue
        self[.maximize] = flag(maximize)
    }

    /// The value of `hyperparameter`, nil when not set; flags read as 0 or 1.
    public package(set) subscript(_ hyperparameter: Hyperparameter) -> Float? {
        get { values[hyperparameter.rawValue] }
        set { values[hyperparameter.rawValue] = newValue }
    }

    /// The hyperparameters that are set, in declaration order.
    var setHyperparameters: [Hyperparameter] { Hyperparameter.allCases.filter { self[$0] != nil } }

    private func value(_ hyperparameter: Hyperparameter) -> Float {
        guard let value = self[hyperparameter] else {
            fatalError(
                "ParameterGroup: \(hyperparameter) is not set (the group's optimizer has no \(hyperparameter), or the group does not belong to an optimizer yet: read it from optimizer.parameterGroups)"
            )
        }
        return value
    }

    private func flag(_ hyperparameter: Hyperparameter) -> Bool { value(hyperparameter) != 0 }

    /// The learning rate (every optimizer).
    public var learningRate: Float { get { value(.learningRate) } set { self[.learningRate] = newValue } }
    /// Weight decay: an L2 term in the gradient, or decoupled for ``AdamW``.
    public var weightDecay: Float { get { value(.weightDecay) } set { self[.weightDecay] = newValue } }
    /// Momentum factor (``SGD``, ``RMSprop``).
    public var momentum: Float { get { value(.momentum) } set { self[.momentum] = newValue } }
    /// Dampening of the momentum term (``SGD``).
    public var dampening: Float { get { value(.dampening) } set { self[.dampening] = newValue } }
    /// Nesterov momentum (``SGD``).
    public var nesterov: Bool { get { flag(.nesterov) } set { self[.nesterov] = newValue ? 1 : 0 } }
    /// Decay rate of the first moment (``Adam``, ``AdamW``).
    public var beta1: Float { get { value(.beta1) } set { self[.beta1] = newValue } }
    /// Decay rate of the second moment (``Adam``, ``AdamW``).
    public var beta2: Float { get { value(.beta2) } set { self[.beta2] = newValue } }
    /// Added to the denominator for numerical stability.
    public var epsilon: Float { get { value(.epsilon) } set { self[.epsilon] = newValue } }
    /// AMSGrad's maximum of the second moment (``Adam``, ``AdamW``).
    public var amsgrad: Bool { get { flag(.amsgrad) } set { self[.amsgrad] = newValue ? 1 : 0 } }
    /// Smoothing constant of the squared-gradient average (``RMSprop``).
    public var alpha: Float { get { value(.alpha) } set { self[.alpha] = newValue } }
    /// Normalize by the estimated variance (``RMSprop``).
    public var centered: Bool { get { flag(.centered) } set { self[.centered] = newValue ? 1 : 0 } }
    /// Decay of the learning rate per step (``AdaGrad``).
    public var learningRateDecay: Float { get { value(.learningRateDecay) } set { self[.learningRateDecay] = newValue } }
    /// The starting value of the accumulators (``AdaGrad``).
    public var initialAccumulatorValue: Float { get { value(.initialAccumulatorValue) } set { self[.initialAccumulatorValue] = newValue } }
    /// Ascend instead of descend (every optimizer).
    public var maximize: Bool { get { flag(.maximize) } set { self[.maximize] = newValue ? 1 : 0 } }
}

/// What an optimizer's initializer takes a list of: ``Parameter`` (the list
/// is one group) or ``ParameterGroup`` (PyTorch's `param_groups`).
public protocol ParameterOrGroup {
    /// The groups a list of these makes.
    static func parameterGroups(_ list: [Self]) -> [ParameterGroup]
}

extension Parameter: ParameterOrGroup {
    /// One group of all of them.
    public static func parameterGroups(_ list: [Parameter]) -> [ParameterGroup] { [ParameterGroup(list)] }
}

extension ParameterGroup: ParameterOrGroup {
    /// The list itself.
    public static func parameterGroups(_ list: [ParameterGroup]) -> [ParameterGroup] { list }
}
