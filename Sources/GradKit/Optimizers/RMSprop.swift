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
/// weightDecay 0, momentum 0, centered false.
public final class RMSprop: Optimizer {
    /// Smoothing constant (>= 0).
    public var alpha: Float
    /// Added to the denominator (>= 0).
    public var epsilon: Float
    /// L2 penalty coefficient (>= 0).
    public var weightDecay: Float
    /// Momentum factor (>= 0; the buffer exists when created with momentum > 0).
    public var momentum: Float {
        didSet { precondition(momentum >= 0, "RMSprop: invalid momentum value \(momentum)") }
    }
    /// Normalize by the estimated variance instead of the second moment.
    public private(set) var centered: Bool
    /// Ascend instead of descend.
    public private(set) var maximize: Bool

    /// - Precondition: learningRate, alpha, epsilon, weightDecay, momentum >= 0 (PyTorch's checks).
    public init(
        _ parameters: [Parameter], learningRate: Float = 1e-2, alpha: Float = 0.99, epsilon: Float = 1e-8,
        weightDecay: Float = 0, momentum: Float = 0, centered: Bool = false, maximize: Bool = false
    ) {
        precondition(alpha >= 0, "RMSprop: invalid alpha value \(alpha)")
        precondition(epsilon >= 0, "RMSprop: invalid epsilon value \(epsilon)")
        precondition(weightDecay >= 0, "RMSprop: invalid weight_decay value \(weightDecay)")
        precondition(momentum >= 0, "RMSprop: invalid momentum value \(momentum)")
        self.alpha = alpha
        self.epsilon = epsilon
        self.weightDecay = weightDecay
        self.momentum = momentum
        self.centered = centered
        self.maximize = maximize
        super.init(parameters: parameters, learningRate: learningRate)
    }

    override var stateSpecification: [(name: String, initialValue: Float)] {
        [("square_avg", 0), ("grad_avg", 0), ("momentum_buffer", 0)]
    }

    override var requiredBuffers: [String] {
        ["square_avg"] + (centered ? ["grad_avg"] : []) + (momentum > 0 ? ["momentum_buffer"] : [])
    }

    override func update(_ range: Range<Int>, step: Int, gradientScale: Float) {
        let o = range.lowerBound
        let scalars = RMSpropScalars(
            learningRate: learningRate, alpha: alpha, epsilon: epsilon, weightDecay: weightDecay, momentum: momentum,
            gradientScale: maximize ? -gradientScale : gradientScale, oneMinusAlpha: Float(1 - Double(alpha)),
            centered: centered)
        Kernels.rmspropStep(
            count: range.count, parameters: values.base + o, squareAverage: state("square_avg").base + o,
            gradientAverage: centered ? state("grad_avg").base + o : nil,
            momentumBuffer: momentum > 0 ? state("momentum_buffer").base + o : nil, gradients: gradients.base + o,
            scalars)
    }

    override var hyperparameters: [String: Double] {
        [
            "lr": Double(learningRate), "alpha": Double(alpha), "eps": Double(epsilon),
            "weight_decay": Double(weightDecay), "momentum": Double(momentum), "centered": centered ? 1 : 0,
            "maximize": maximize ? 1 : 0,
        ]
    }

    override func validateHyperparameters(_ values: [String: Double]) throws {
        try super.validateHyperparameters(values)
        try Optimizer.require(values, ["alpha", "eps", "weight_decay", "momentum"]) { $0 >= 0 }
    }

    override func restoreHyperparameters(_ values: [String: Double]) {
        super.restoreHyperparameters(values)
        if let v = values["alpha"] { alpha = Float(v) }
        if let v = values["eps"] { epsilon = Float(v) }
        if let v = values["weight_decay"] { weightDecay = Float(v) }
        if let v = values["momentum"] { momentum = Float(v) }
        if let v = values["centered"] { centered = v != 0 }
        if let v = values["maximize"] { maximize = v != 0 }
    }
}
