// GradKit — Adam and AdamW. SPDX-License-Identifier: MIT
#if canImport(Glibc)
import Glibc
#endif

/// Adam (Kingma and Ba, 2015) with coupled L2 weight decay and AMSGrad
/// (Reddi et al., 2018): PyTorch's `torch.optim.Adam`.
///
/// At the parameter's step t (counted from 1):
/// ```
/// d = maximize ? -g : g
/// d = d + weightDecay * p                        (coupled L2, when weightDecay != 0)
/// m = m + (1 - beta1) * (d - m)                  (torch.lerp)
/// v = beta2 * v + (1 - beta2) * d * d
/// v_max = max(v_max, v)                          (amsgrad: v_max replaces v below)
/// p = p - learningRate / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 - beta2^t) + epsilon)
/// ```
/// beta1 and beta2 are the decay rates of the first and second moment
/// estimates (terms of art). epsilon is added outside the square root, and
/// AMSGrad keeps the maximum of the raw second moment, both as in PyTorch.
///
/// Defaults are PyTorch's: learningRate 1e-3, beta1 0.9, beta2 0.999,
/// epsilon 1e-8, weightDecay 0, amsgrad false, maximize false; the ranges are
/// in ``hyperparameterSpecifications``.
public class Adam: Optimizer {
    /// Adam's hyperparameters (PyTorch's `defaults`, `betas` split) with
    /// their ranges. AMSGrad is fixed at creation: its maximum is only the
    /// maximum when kept from the first step.
    public override class var hyperparameterSpecifications: [HyperparameterSpecification] { adamSpecifications }

    private static let adamSpecifications = specifications(weightDecay: 0)

    /// The table with a default weight decay (``AdamW``'s differs).
    static func specifications(weightDecay: Float) -> [HyperparameterSpecification] {
        [
            .init(.learningRate, default: 1e-3, range: .atLeast(0)),
            .init(.beta1, default: 0.9, range: .halfOpen(0, 1)),
            .init(.beta2, default: 0.999, range: .halfOpen(0, 1)),
            .init(.epsilon, default: 1e-8, range: .atLeast(0)),
            .init(.weightDecay, default: weightDecay, range: .atLeast(0)),
            .init(.amsgrad, default: false, isAdjustable: false),
            .init(.maximize, default: false),
        ]
    }

    // Reading one of these gives the first group's value; setting it sets it in every group.

    /// Decay rate of the first moment, in [0, 1).
    public var beta1: Float { get { value(.beta1) } set { setInEveryGroup(.beta1, newValue) } }
    /// Decay rate of the second moment, in [0, 1).
    public var beta2: Float { get { value(.beta2) } set { setInEveryGroup(.beta2, newValue) } }
    /// Added to the denominator (>= 0).
    public var epsilon: Float { get { value(.epsilon) } set { setInEveryGroup(.epsilon, newValue) } }
    /// Weight decay (>= 0): coupled L2 for Adam, decoupled for ``AdamW``.
    public var weightDecay: Float { get { value(.weightDecay) } set { setInEveryGroup(.weightDecay, newValue) } }
    /// Keep the maximum second moment (AMSGrad); fixed at creation.
    public var amsgrad: Bool { flag(.amsgrad) }
    /// Ascend instead of descend.
    public var maximize: Bool { get { flag(.maximize) } set { setInEveryGroup(.maximize, newValue) } }

    /// Whether weight decay is decoupled (AdamW) or added to the gradient (Adam).
    var decoupledWeightDecay: Bool { false }

    /// An Adam optimizer over `parameters`, with PyTorch's defaults.
    ///
    /// - Parameters:
    ///   - parameters: the parameters (one group), or ``ParameterGroup``s whose
    ///     unset values take the arguments below.
    ///   - learningRate: the step size (`lr`), >= 0.
    ///   - beta1: the decay rate of the first moment, in [0, 1).
    ///   - beta2: the decay rate of the second moment, in [0, 1).
    ///   - epsilon: added to the denominator outside the square root, >= 0.
    ///   - weightDecay: the coupled L2 penalty coefficient added to the gradient, >= 0.
    ///   - amsgrad: divide by the running maximum of the second moment (AMSGrad); fixed at creation.
    ///   - maximize: ascend the objective instead of descending it.
    /// - Precondition: every value in its range (``hyperparameterSpecifications``);
    ///   at least one group; each parameter in one group, once; every
    ///   group's values are this optimizer's and in range.
    public init<Element: ParameterOrGroup>(
        _ parameters: [Element], learningRate: Float = 1e-3, beta1: Float = 0.9, beta2: Float = 0.999,
        epsilon: Float = 1e-8, weightDecay: Float = 0, amsgrad: Bool = false, maximize: Bool = false
    ) {
        super.init(
            Element.parameterGroups(parameters),
            defaults: ParameterGroup(
                [], learningRate: learningRate, weightDecay: weightDecay, beta1: beta1, beta2: beta2, epsilon: epsilon,
                amsgrad: amsgrad, maximize: maximize))
    }

    override func stateSpecification(for group: ParameterGroup) -> [(name: String, initialValue: Float)] {
        [("exp_avg", 0), ("exp_avg_sq", 0)] + (group.amsgrad ? [("max_exp_avg_sq", 0)] : [])
    }

    override func update(_ range: Range<Int>, step: Int, gradientScale: Float, group: ParameterGroup) {
        let o = range.lowerBound
        let t = Double(step), lr = Double(group.learningRate)
        let b1 = Double(group.beta1), b2 = Double(group.beta2)
        let biasCorrection1 = 1 - pow(b1, t), biasCorrection2 = 1 - pow(b2, t)
        let scalars = AdamScalars(
            beta2: group.beta2, epsilon: group.epsilon, weightDecay: decoupledWeightDecay ? 0 : group.weightDecay,
            gradientScale: group.maximize ? -gradientScale : gradientScale,
            oneMinusBeta1: Float(1 - b1), oneMinusBeta2: Float(1 - b2),
            stepSize: Float(lr / biasCorrection1), biasCorrection2Sqrt: Float(biasCorrection2.squareRoot()),
            decayFactor: decoupledWeightDecay ? Float(1 - lr * Double(group.weightDecay)) : 1, amsgrad: group.amsgrad)
        Kernels.adamStep(
            count: range.count, parameters: values.base + o, expAvg: state("exp_avg").base + o,
            expAvgSq: state("exp_avg_sq").base + o, maxExpAvgSq: group.amsgrad ? state("max_exp_avg_sq").base + o : nil,
            gradients: gradients.base + o, scalars)
    }
}

/// Adam with decoupled weight decay (Loshchilov and Hutter, 2019): PyTorch's
/// `torch.optim.AdamW`.
///
/// The same update as ``Adam`` except that weight decay shrinks the parameter
/// directly instead of entering the gradient (and so the moments):
/// ```
/// p = p * (1 - learningRate * weightDecay)
/// ...then Adam's step with weightDecay = 0
/// ```
/// Defaults are PyTorch's: learningRate 1e-3, beta1 0.9, beta2 0.999,
/// epsilon 1e-8, weightDecay 1e-2, amsgrad false, maximize false.
public final class AdamW: Adam {
    /// As ``Adam``'s, with a default weight decay of 1e-2.
    public override class var hyperparameterSpecifications: [HyperparameterSpecification] { adamWSpecifications }

    private static let adamWSpecifications = specifications(weightDecay: 1e-2)

    override var decoupledWeightDecay: Bool { true }

    /// An AdamW optimizer over `parameters`, with PyTorch's defaults.
    ///
    /// - Parameters:
    ///   - parameters: the parameters (one group), or ``ParameterGroup``s whose
    ///     unset values take the arguments below.
    ///   - learningRate: the step size (`lr`), >= 0.
    ///   - beta1: the decay rate of the first moment, in [0, 1).
    ///   - beta2: the decay rate of the second moment, in [0, 1).
    ///   - epsilon: added to the denominator outside the square root, >= 0.
    ///   - weightDecay: the decoupled decay: each step first scales p by `1 - learningRate * weightDecay`; >= 0.
    ///   - amsgrad: divide by the running maximum of the second moment (AMSGrad); fixed at creation.
    ///   - maximize: ascend the objective instead of descending it.
    /// - Precondition: as ``Adam``.
    public override init<Element: ParameterOrGroup>(
        _ parameters: [Element], learningRate: Float = 1e-3, beta1: Float = 0.9, beta2: Float = 0.999,
        epsilon: Float = 1e-8, weightDecay: Float = 1e-2, amsgrad: Bool = false, maximize: Bool = false
    ) {
        super.init(
            parameters, learningRate: learningRate, beta1: beta1, beta2: beta2, epsilon: epsilon,
            weightDecay: weightDecay, amsgrad: amsgrad, maximize: maximize)
    }
}
