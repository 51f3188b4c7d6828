// GradKit — stochastic gradient descent. SPDX-License-Identifier: MIT

/// Stochastic gradient descent with momentum, Nesterov momentum and coupled
/// weight decay: PyTorch's `torch.optim.SGD`, step for step.
///
/// With gradient g, parameter p and the options below, each step computes
/// ```
/// d = maximize ? -g : g
/// d = d + weightDecay * p                        (when weightDecay != 0)
/// momentum == 0:  p = p - learningRate * d
/// otherwise:      b = first step ? d : momentum * b + (1 - dampening) * d
///                 u = nesterov ? d + momentum * b : b
///                 p = p - learningRate * u
/// ```
/// The momentum buffer b starts as the parameter's first gradient, without
/// dampening (as PyTorch does).
///
/// Defaults are PyTorch's: learningRate 1e-3, momentum 0, dampening 0,
/// weightDecay 0, nesterov false, maximize false; the ranges are in
/// ``hyperparameterSpecifications``.
public final class SGD: Optimizer {
    /// SGD's hyperparameters (PyTorch's `defaults`) with their ranges.
    /// PyTorch checks momentum >= 0 and not dampening; above 1 either makes
    /// the momentum buffer grow without bound or turn the gradient's sign.
    public override class var hyperparameterSpecifications: [HyperparameterSpecification] { specifications }

    private static let specifications: [HyperparameterSpecification] = [
        .init(.learningRate, default: 1e-3, range: .atLeast(0)),
        .init(.momentum, default: 0, range: .closed(0, 1)),
        .init(.dampening, default: 0, range: .closed(0, 1)),
        .init(.weightDecay, default: 0, range: .atLeast(0)),
        .init(.nesterov, default: false),
        .init(.maximize, default: false),
    ]

    override class var hyperparameterRules: [HyperparameterRule] { rules }

    private static let rules = [
        HyperparameterRule(reported: .nesterov, message: "Nesterov momentum requires a momentum and zero dampening") {
            !$0.nesterov || ($0.momentum > 0 && $0.dampening == 0)
        }
    ]

    // Reading one of these gives the first group's value; setting it sets it in every group.

    /// Momentum factor, in [0, 1].
    public var momentum: Float { get { value(.momentum) } set { setInEveryGroup(.momentum, newValue) } }
    /// Dampening of the momentum term, in [0, 1].
    public var dampening: Float { get { value(.dampening) } set { setInEveryGroup(.dampening, newValue) } }
    /// L2 penalty coefficient, added to the gradient (>= 0).
    public var weightDecay: Float { get { value(.weightDecay) } set { setInEveryGroup(.weightDecay, newValue) } }
    /// Nesterov momentum (needs momentum > 0 and dampening 0).
    public var nesterov: Bool { get { flag(.nesterov) } set { setInEveryGroup(.nesterov, newValue) } }
    /// Ascend instead of descend.
    public var maximize: Bool { get { flag(.maximize) } set { setInEveryGroup(.maximize, newValue) } }

    private lazy var momentumStarted = Array(repeating: false, count: parameters.count)

    /// An SGD optimizer over `parameters`, with PyTorch's defaults.
    ///
    /// - Parameters:
    ///   - parameters: the parameters (one group), or ``ParameterGroup``s whose
    ///     unset values take the arguments below.
    ///   - learningRate: the step size (`lr`), >= 0.
    ///   - momentum: the momentum factor, in [0, 1]; 0 turns momentum off.
    ///   - dampening: the fraction of the gradient held back from the momentum buffer, in [0, 1].
    ///   - weightDecay: the L2 penalty coefficient added to the gradient, >= 0.
    ///   - nesterov: use Nesterov momentum.
    ///   - maximize: ascend the objective instead of descending it.
    /// - Precondition: every value in its range (``hyperparameterSpecifications``);
    ///   Nesterov momentum requires momentum > 0 and dampening 0 (PyTorch's check);
    ///   at least one group; each parameter in one group, once; every
    ///   group's values are this optimizer's and in range.
    public init<Element: ParameterOrGroup>(
        _ parameters: [Element], learningRate: Float = 1e-3, momentum: Float = 0, dampening: Float = 0,
        weightDecay: Float = 0, nesterov: Bool = false, maximize: Bool = false
    ) {
        super.init(
            Element.parameterGroups(parameters),
            defaults: ParameterGroup(
                [], learningRate: learningRate, weightDecay: weightDecay, momentum: momentum, dampening: dampening,
                nesterov: nesterov, maximize: maximize))
    }

    override func stateSpecification(for group: ParameterGroup) -> [(name: String, initialValue: Float)] {
        group.momentum != 0 ? [("momentum_buffer", 0)] : []
    }

    override func runKey(_ index: Int) -> Int { momentumStarted[index] ? 1 : 0 }

    override func didUpdate(_ index: Int, group: ParameterGroup) {
        if group.momentum != 0 { momentumStarted[index] = true }
    }

    override func restoredParameter(_ index: Int, hasState: Bool) {
        momentumStarted[index] = hasState && groups[groupOfParameter[index]].momentum != 0
    }

    override func update(_ range: Range<Int>, step: Int, gradientScale: Float, group: ParameterGroup) {
        let o = range.lowerBound
        let scalars = SGDScalars(
            learningRate: group.learningRate, momentum: group.momentum, weightDecay: group.weightDecay,
            gradientScale: group.maximize ? -gradientScale : gradientScale,
            oneMinusDampening: Float(1 - Double(group.dampening)), nesterov: group.nesterov,
            first: !momentumStarted[parameterIndex(at: o)])
        Kernels.sgdStep(
            count: range.count, parameters: values.base + o,
            momentumBuffer: group.momentum != 0 ? state("momentum_buffer").base + o : nil, gradients: gradients.base + o,
            scalars)
    }
}

extension Optimizer {
    /// The parameter whose values start at flat offset `offset`.
    func parameterIndex(at offset: Int) -> Int {
        var low = 0, high = layout.offsets.count - 1
        while low < high {
            let mid = (low + high + 1) / 2
            if layout.offsets[mid] <= offset { low = mid } else { high = mid - 1 }
        }
        return low
    }
}
