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
/// weightDecay 0, initialAccumulatorValue 0, epsilon 1e-10.
public final class AdaGrad: Optimizer {
    /// Decay of the learning rate per step (>= 0).
    public var learningRateDecay: Float
    /// L2 penalty coefficient, added to the gradient (>= 0).
    public var weightDecay: Float
    /// The starting value of every accumulator (>= 0).
    public private(set) var initialAccumulatorValue: Float
    /// Added to the denominator for numerical stability (>= 0).
    public var epsilon: Float
    /// Ascend instead of descend.
    public private(set) var maximize: Bool

    /// - Precondition: every argument >= 0 (PyTorch's checks).
    public init(
        _ parameters: [Parameter], learningRate: Float = 1e-2, learningRateDecay: Float = 0, weightDecay: Float = 0,
        initialAccumulatorValue: Float = 0, epsilon: Float = 1e-10, maximize: Bool = false
    ) {
        precondition(learningRateDecay >= 0, "AdaGrad: invalid lr_decay value \(learningRateDecay)")
        precondition(weightDecay >= 0, "AdaGrad: invalid weight_decay value \(weightDecay)")
        precondition(
            initialAccumulatorValue >= 0, "AdaGrad: invalid initial_accumulator_value value \(initialAccumulatorValue)")
        precondition(epsilon >= 0, "AdaGrad: invalid epsilon value \(epsilon)")
        self.learningRateDecay = learningRateDecay
        self.weightDecay = weightDecay
        self.initialAccumulatorValue = initialAccumulatorValue
        self.epsilon = epsilon
        self.maximize = maximize
        super.init(parameters: parameters, learningRate: learningRate)
        _ = state("sum") // PyTorch fills the accumulators at construction
    }

    override var stateSpecification: [(name: String, initialValue: Float)] { [("sum", initialAccumulatorValue)] }

    /// The effective learning rate at a parameter's step t: what makes
    /// AdaGrad's steps shrink over time (plotted by `gradkit lab`).
    public func effectiveLearningRate(atStep t: Int) -> Double {
        Double(learningRate) / (1 + Double(t - 1) * Double(learningRateDecay))
    }

    override func update(_ range: Range<Int>, step: Int, gradientScale: Float) {
        let o = range.lowerBound
        let scalars = AdaGradScalars(
            clr: Float(effectiveLearningRate(atStep: step)), epsilon: epsilon, weightDecay: weightDecay,
            gradientScale: maximize ? -gradientScale : gradientScale)
        Kernels.adagradStep(
            count: range.count, parameters: values.base + o, sum: state("sum").base + o, gradients: gradients.base + o,
            scalars)
    }

    override var hyperparameters: [String: Double] {
        [
            "lr": Double(learningRate), "lr_decay": Double(learningRateDecay), "weight_decay": Double(weightDecay),
            "initial_accumulator_value": Double(initialAccumulatorValue), "eps": Double(epsilon),
            "maximize": maximize ? 1 : 0,
        ]
    }

    override func validateHyperparameters(_ values: [String: Double]) throws {
        try super.validateHyperparameters(values)
        try Optimizer.require(values, ["lr_decay", "weight_decay", "eps", "initial_accumulator_value"]) { $0 >= 0 }
    }

    override func restoreHyperparameters(_ values: [String: Double]) {
        super.restoreHyperparameters(values)
        if let v = values["lr_decay"] { learningRateDecay = Float(v) }
        if let v = values["weight_decay"] { weightDecay = Float(v) }
        if let v = values["eps"] { epsilon = Float(v) }
        if let v = values["initial_accumulator_value"] { initialAccumulatorValue = Float(v) }
        if let v = values["maximize"] { maximize = v != 0 }
    }
}
