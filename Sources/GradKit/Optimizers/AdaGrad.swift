// GradKit — AdaGrad. SPDX-License-Identifier: MIT
#if canImport(Glibc)
import Glibc
#endif

/// AdaGrad (Duchi, Hazan and Singer, 2011): PyTorch's `torch.optim.Adagrad`.
///
/// Each parameter's learning rate shrinks with its accumulated squared
/// gradients. At the parameter's step t (counted from 1):
/// ```
/// d   = maximize ? -g : g
/// d   = d + weightDecay * p                      (when weightDecay != 0)
/// clr = learningRate / (1 + (t - 1) * learningRateDecay)
/// sum = sum + d * d                               (sum starts at initialAccumulatorValue)
/// p   = p - clr * d / (sqrt(sum) + epsilon)
/// ```
/// epsilon is added outside the square root, as in PyTorch.
///
/// Defaults are PyTorch's: learningRate 1e-2, learningRateDecay 0,
/// weightDecay 0, initialAccumulatorValue 0, epsilon 1e-10, maximize false;
/// the ranges are in ``hyperparameterSpecifications``.
public final class AdaGrad: Optimizer {
    /// AdaGrad's hyperparameters (PyTorch's `defaults`) with their ranges
    /// (all PyTorch's: >= 0). The initial accumulator value is fixed at
    /// creation, when the accumulators are filled (as PyTorch does).
    public override class var hyperparameterSpecifications: [HyperparameterSpecification] { specifications }

    private static let specifications: [HyperparameterSpecification] = [
        .init(.learningRate, default: 1e-2, range: .atLeast(0)),
        .init(.learningRateDecay, default: 0, range: .atLeast(0)),
        .init(.weightDecay, default: 0, range: .atLeast(0)),
        .init(.initialAccumulatorValue, default: 0, range: .atLeast(0), isAdjustable: false),
        .init(.epsilon, default: 1e-10, range: .atLeast(0)),
        .init(.maximize, default: false),
    ]

    // Reading one of these gives the first group's value; setting it sets it in every group.

    /// Decay of the learning rate per step (>= 0).
    public var learningRateDecay: Float {
        get { value(.learningRateDecay) }
        set { setInEveryGroup(.learningRateDecay, newValue) }
    }
    /// L2 penalty coefficient, added to the gradient (>= 0).
    public var weightDecay: Float { get { value(.weightDecay) } set { setInEveryGroup(.weightDecay, newValue) } }
    /// The starting value of every accumulator (>= 0); fixed at creation.
    public var initialAccumulatorValue: Float { value(.initialAccumulatorValue) }
    /// Added to the denominator for numerical stability (>= 0).
    public var epsilon: Float { get { value(.epsilon) } set { setInEveryGroup(.epsilon, newValue) } }
    /// Ascend instead of descend.
    public var maximize: Bool { get { flag(.maximize) } set { setInEveryGroup(.maximize, newValue) } }

    /// An AdaGrad optimizer over `parameters`, with PyTorch's defaults.
    ///
    /// - Parameters:
    ///   - parameters: the parameters (one group), or ``ParameterGroup``s whose
    ///     unset values take the arguments below.
    ///   - learningRate: the step size (`lr`), >= 0.
    ///   - learningRateDecay: the decay of the step size per step (`lr_decay`), >= 0.
    ///   - weightDecay: the L2 penalty coefficient added to the gradient, >= 0.
    ///   - initialAccumulatorValue: the squared-gradient sum's starting value, >= 0; fixed at creation.
    ///   - epsilon: added to the denominator outside the square root, >= 0.
    ///   - maximize: ascend the objective instead of descending it.
    /// - Precondition: every value in its range (``hyperparameterSpecifications``);
    ///   at least one group; each parameter in one group, once; every
    ///   group's values are this optimizer's and in range.
    public init<Element: ParameterOrGroup>(
        _ parameters: [Element], learningRate: Float = 1e-2, learningRateDecay: Float = 0, weightDecay: Float = 0,
        initialAccumulatorValue: Float = 0, epsilon: Float = 1e-10, maximize: Bool = false
    ) {
        super.init(
            Element.parameterGroups(parameters),
            defaults: ParameterGroup(
                [], learningRate: learningRate, weightDecay: weightDecay, epsilon: epsilon,
                learningRateDecay: learningRateDecay, initialAccumulatorValue: initialAccumulatorValue,
                maximize: maximize))
        _ = state("sum") // PyTorch fills the accumulators at construction
    }

    override func stateSpecification(for group: ParameterGroup) -> [(name: String, initialValue: Float)] {
        [("sum", group.initialAccumulatorValue)]
    }

    /// The effective learning rate of `group` (the first by default) at a
    /// parameter's step t: what makes AdaGrad's steps shrink over time
    /// (plotted by `gradkit lab`).
    public func effectiveLearningRate(atStep t: Int, group: Int = 0) -> Double {
        Self.effectiveLearningRate(atStep: t, groups[group])
    }

    private static func effectiveLearningRate(atStep t: Int, _ group: ParameterGroup) -> Double {
        Double(group.learningRate) / (1 + Double(t - 1) * Double(group.learningRateDecay))
    }

    override func update(_ range: Range<Int>, step: Int, gradientScale: Float, group: ParameterGroup) {
        let o = range.lowerBound
        let scalars = AdaGradScalars(
            clr: Float(Self.effectiveLearningRate(atStep: step, group)), epsilon: group.epsilon,
            weightDecay: group.weightDecay, gradientScale: group.maximize ? -gradientScale : gradientScale)
        Kernels.adagradStep(
            count: range.count, parameters: values.base + o, sum: state("sum").base + o, gradients: gradients.base + o,
            scalars)
    }
}
