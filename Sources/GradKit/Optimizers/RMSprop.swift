// GradKit — RMSprop. SPDX-License-Identifier: MIT

/// RMSprop (Hinton, 2012), with Graves' centered variant and momentum:
/// PyTorch's `torch.optim.RMSprop`.
///
/// ```
/// d = maximize ? -g : g
/// d = d + weightDecay * p                        (when weightDecay != 0)
/// v = alpha * v + (1 - alpha) * d * d
/// centered:  a = a + (1 - alpha) * (d - a);   r = sqrt(v - a * a) + epsilon
/// otherwise: r = sqrt(v) + epsilon
/// momentum > 0:  b = momentum * b + d / r;    p = p - learningRate * b
/// otherwise:     p = p - learningRate * d / r
/// ```
/// alpha is the smoothing constant of the squared-gradient average (a term of
/// art); epsilon is added outside the square root, and with momentum the
/// buffer accumulates d / r, both as in PyTorch.
///
/// Defaults are PyTorch's: learningRate 1e-2, alpha 0.99, epsilon 1e-8,
/// weightDecay 0, momentum 0, centered false, maximize false; the ranges are
/// in ``hyperparameterSpecifications``.
public final class RMSprop: Optimizer {
    /// RMSprop's hyperparameters (PyTorch's `defaults`) with their ranges.
    /// PyTorch checks alpha >= 0 and momentum >= 0; alpha = 1 never updates
    /// the average (every step divides by epsilon) and above 1 it diverges,
    /// as momentum above 1 does. Centering is fixed at creation: the average
    /// gradient is only that when kept from the first step.
    public override class var hyperparameterSpecifications: [HyperparameterSpecification] { specifications }

    private static let specifications: [HyperparameterSpecification] = [
        .init(.learningRate, default: 1e-2, range: .atLeast(0)),
        .init(.alpha, default: 0.99, range: .halfOpen(0, 1)),
        .init(.epsilon, default: 1e-8, range: .atLeast(0)),
        .init(.weightDecay, default: 0, range: .atLeast(0)),
        .init(.momentum, default: 0, range: .closed(0, 1)),
        .init(.centered, default: false, isAdjustable: false),
        .init(.maximize, default: false),
    ]

    // Reading one of these gives the first group's value; setting it sets it in every group.

    /// Smoothing constant, in [0, 1).
    public var alpha: Float { get { value(.alpha) } set { setInEveryGroup(.alpha, newValue) } }
    /// Added to the denominator (>= 0).
    public var epsilon: Float { get { value(.epsilon) } set { setInEveryGroup(.epsilon, newValue) } }
    /// L2 penalty coefficient (>= 0).
    public var weightDecay: Float { get { value(.weightDecay) } set { setInEveryGroup(.weightDecay, newValue) } }
    /// Momentum factor, in [0, 1]; the buffer starts at zero when first needed.
    public var momentum: Float { get { value(.momentum) } set { setInEveryGroup(.momentum, newValue) } }
    /// Normalize by the estimated variance instead of the second moment; fixed at creation.
    public var centered: Bool { flag(.centered) }
    /// Ascend instead of descend.
    public var maximize: Bool { get { flag(.maximize) } set { setInEveryGroup(.maximize, newValue) } }

    /// An RMSprop optimizer over `parameters`, with PyTorch's defaults.
    ///
    /// - Parameters:
    ///   - parameters: the parameters (one group), or ``ParameterGroup``s whose
    ///     unset values take the arguments below.
    ///   - learningRate: the step size (`lr`), >= 0.
    ///   - alpha: the smoothing constant of the squared-gradient average, in [0, 1).
    ///   - epsilon: added to the denominator outside the square root, >= 0.
    ///   - weightDecay: the L2 penalty coefficient added to the gradient, >= 0.
    ///   - momentum: the momentum factor, in [0, 1]; 0 turns momentum off.
    ///   - centered: divide by an estimate of the gradient's standard deviation (Graves); fixed at creation.
    ///   - maximize: ascend the objective instead of descending it.
    /// - Precondition: every value in its range (``hyperparameterSpecifications``);
    ///   at least one group; each parameter in one group, once; every
    ///   group's values are this optimizer's and in range.
    public init<Element: ParameterOrGroup>(
        _ parameters: [Element], learningRate: Float = 1e-2, alpha: Float = 0.99, epsilon: Float = 1e-8,
        weightDecay: Float = 0, momentum: Float = 0, centered: Bool = false, maximize: Bool = false
    ) {
        super.init(
            Element.parameterGroups(parameters),
            defaults: ParameterGroup(
                [], learningRate: learningRate, weightDecay: weightDecay, momentum: momentum, epsilon: epsilon,
                alpha: alpha, centered: centered, maximize: maximize))
    }

    override func stateSpecification(for group: ParameterGroup) -> [(name: String, initialValue: Float)] {
        [("square_avg", 0)] + (group.centered ? [("grad_avg", 0)] : []) + (group.momentum > 0 ? [("momentum_buffer", 0)] : [])
    }

    override func update(_ range: Range<Int>, step: Int, gradientScale: Float, group: ParameterGroup) {
        let o = range.lowerBound
        let scalars = RMSpropScalars(
            learningRate: group.learningRate, alpha: group.alpha, epsilon: group.epsilon, weightDecay: group.weightDecay,
            momentum: group.momentum, gradientScale: group.maximize ? -gradientScale : gradientScale,
            oneMinusAlpha: Float(1 - Double(group.alpha)), centered: group.centered)
        Kernels.rmspropStep(
            count: range.count, parameters: values.base + o, squareAverage: state("square_avg").base + o,
            gradientAverage: group.centered ? state("grad_avg").base + o : nil,
            momentumBuffer: group.momentum > 0 ? state("momentum_buffer").base + o : nil, gradients: gradients.base + o,
            scalars)
    }
}
