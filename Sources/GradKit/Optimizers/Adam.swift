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
/// epsilon 1e-8, weightDecay 0, amsgrad false.
public class Adam: Optimizer {
    /// Decay rate of the first moment, in [0, 1).
    public var beta1: Float {
        didSet { precondition(0 <= beta1 && beta1 < 1, "\(kind): invalid beta parameter at index 0: \(beta1)") }
    }
    /// Decay rate of the second moment, in [0, 1).
    public var beta2: Float {
        didSet { precondition(0 <= beta2 && beta2 < 1, "\(kind): invalid beta parameter at index 1: \(beta2)") }
    }
    /// Added to the denominator (>= 0).
    public var epsilon: Float
    /// Weight decay (>= 0): coupled L2 for Adam, decoupled for ``AdamW``.
    public var weightDecay: Float
    /// Keep the maximum second moment (AMSGrad).
    public private(set) var amsgrad: Bool
    /// Ascend instead of descend.
    public private(set) var maximize: Bool

    /// Whether weight decay is decoupled (AdamW) or added to the gradient (Adam).
    var decoupledWeightDecay: Bool { false }

    /// - Precondition: learningRate, epsilon, weightDecay >= 0; 0 <= beta1, beta2 < 1 (PyTorch's checks).
    public init(
        _ parameters: [Parameter], learningRate: Float = 1e-3, beta1: Float = 0.9, beta2: Float = 0.999,
        epsilon: Float = 1e-8, weightDecay: Float = 0, amsgrad: Bool = false, maximize: Bool = false
    ) {
        let kind = "\(Self.self)"
        precondition(epsilon >= 0, "\(kind): invalid epsilon value \(epsilon)")
        precondition(0 <= beta1 && beta1 < 1, "\(kind): invalid beta parameter at index 0: \(beta1)")
        precondition(0 <= beta2 && beta2 < 1, "\(kind): invalid beta parameter at index 1: \(beta2)")
        precondition(weightDecay >= 0, "\(kind): invalid weight_decay value \(weightDecay)")
        self.beta1 = beta1
        self.beta2 = beta2
        self.epsilon = epsilon
        self.weightDecay = weightDecay
        self.amsgrad = amsgrad
        self.maximize = maximize
        super.init(parameters: parameters, learningRate: learningRate)
    }

    override var stateSpecification: [(name: String, initialValue: Float)] {
        [("exp_avg", 0), ("exp_avg_sq", 0)] + (amsgrad ? [("max_exp_avg_sq", 0)] : [])
    }

    override func update(_ range: Range<Int>, step: Int, gradientScale: Float) {
        let o = range.lowerBound
        let t = Double(step), lr = Double(learningRate)
        let b1 = Double(beta1), b2 = Double(beta2)
        let biasCorrection1 = 1 - pow(b1, t), biasCorrection2 = 1 - pow(b2, t)
        let scalars = AdamScalars(
            beta2: beta2, epsilon: epsilon, weightDecay: decoupledWeightDecay ? 0 : weightDecay,
            gradientScale: maximize ? -gradientScale : gradientScale,
            oneMinusBeta1: Float(1 - b1), oneMinusBeta2: Float(1 - b2),
            stepSize: Float(lr / biasCorrection1), biasCorrection2Sqrt: Float(biasCorrection2.squareRoot()),
            decayFactor: decoupledWeightDecay ? Float(1 - lr * Double(weightDecay)) : 1, amsgrad: amsgrad)
        Kernels.adamStep(
            count: range.count, parameters: values.base + o, expAvg: state("exp_avg").base + o,
            expAvgSq: state("exp_avg_sq").base + o, maxExpAvgSq: amsgrad ? state("max_exp_avg_sq").base + o : nil,
            gradients: gradients.base + o, scalars)
    }

    override var hyperparameters: [String: Double] {
        [
            "lr": Double(learningRate), "beta1": Double(beta1), "beta2": Double(beta2), "eps": Double(epsilon),
            "weight_decay": Double(weightDecay), "amsgrad": amsgrad ? 1 : 0, "maximize": maximize ? 1 : 0,
        ]
    }

    override func validateHyperparameters(_ values: [String: Double]) throws {
        try super.validateHyperparameters(values)
        try Optimizer.require(values, ["beta1", "beta2"]) { 0 <= $0 && $0 < 1 }
        try Optimizer.require(values, ["eps", "weight_decay"]) { $0 >= 0 }
    }

    override func restoreHyperparameters(_ values: [String: Double]) {
        super.restoreHyperparameters(values)
        if let v = values["beta1"] { beta1 = Float(v) }
        if let v = values["beta2"] { beta2 = Float(v) }
        if let v = values["eps"] { epsilon = Float(v) }
        if let v = values["weight_decay"] { weightDecay = Float(v) }
        if let v = values["amsgrad"] { amsgrad = v != 0 }
        if let v = values["maximize"] { maximize = v != 0 }
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
/// epsilon 1e-8, weightDecay 1e-2, amsgrad false.
public final class AdamW: Adam {
    override var decoupledWeightDecay: Bool { true }

    /// - Precondition: as ``Adam``.
    public override init(
        _ parameters: [Parameter], learningRate: Float = 1e-3, beta1: Float = 0.9, beta2: Float = 0.999,
        epsilon: Float = 1e-8, weightDecay: Float = 1e-2, amsgrad: Bool = false, maximize: Bool = false
    ) {
        super.init(
            parameters, learningRate: learningRate, beta1: beta1, beta2: beta2, epsilon: epsilon,
            weightDecay: weightDecay, amsgrad: amsgrad, maximize: maximize)
    }
}
