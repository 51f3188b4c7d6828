// GradKit — activation functions as layers and as functions. SPDX-License-Identifier: MIT

/// A layer that applies an elementwise (or softmax) function: the common
/// base of ``Sigmoid``, ``Tanh``, ``ReLU``, ``LeakyReLU``, ``ELU``, ``GELU``,
/// ``Softplus`` and ``Softmax``. It has no parameters; its forward hooks see
/// the pre-activations as input.
public class ActivationLayer: HookedLayer {
    public var isTraining = true
    /// The function applied, for the gradient monitor's statistics (nil for softmax).
    public let activationFunction: Activation?
    let forwardHooks = ForwardHooks()
    private let function: (Tensor) -> Tensor

    init(_ activation: Activation?, _ function: @escaping (Tensor) -> Tensor) {
        self.activationFunction = activation
        self.function = function
    }

    public final func callAsFunction(_ input: Tensor) -> Tensor { forwardHooks.run(self, input, function(input)) }
    public final var parameters: [Parameter] { [] }
}

/// The logistic sigmoid `1 / (1 + e^-x)`; saturates (gradient → 0) for large |x|.
public final class Sigmoid: ActivationLayer {
    public init() { super.init(.sigmoid) { $0.sigmoid() } }
}

/// The hyperbolic tangent; saturates for large |x|.
public final class Tanh: ActivationLayer {
    public init() { super.init(.tanh) { $0.tanh() } }
}

/// `max(x, 0)`; its derivative at 0 is 0. Units whose input stays negative are "dead".
public final class ReLU: ActivationLayer {
    public init() { super.init(.relu) { $0.relu() } }
}

/// `x` for x > 0, `negativeSlope · x` otherwise (PyTorch's default slope 0.01).
public final class LeakyReLU: ActivationLayer {
    public let negativeSlope: Float
    public init(negativeSlope: Float = 0.01) {
        self.negativeSlope = negativeSlope
        super.init(.leakyRelu(negativeSlope: negativeSlope)) { $0.leakyRelu(negativeSlope: negativeSlope) }
    }
}

/// `x` for x > 0, `alpha · (e^x - 1)` otherwise.
public final class ELU: ActivationLayer {
    public let alpha: Float
    public init(alpha: Float = 1) {
        self.alpha = alpha
        super.init(.elu(alpha: alpha)) { $0.elu(alpha: alpha) }
    }
}

/// `x Φ(x)`, exact (PyTorch's default) or with the tanh approximation.
public final class GELU: ActivationLayer {
    public let approximation: Tensor.GELUApproximation
    public init(approximation: Tensor.GELUApproximation = .none) {
        self.approximation = approximation
        super.init(.gelu) { $0.gelu(approximation: approximation) }
    }
}

/// `log(1 + e^(βx)) / β`, linear above the threshold (PyTorch's defaults β 1, threshold 20).
public final class Softplus: ActivationLayer {
    public let beta: Float
    public let threshold: Float
    public init(beta: Float = 1, threshold: Float = 20) {
        self.beta = beta
        self.threshold = threshold
        super.init(.softplus) { $0.softplus(beta: beta, threshold: threshold) }
    }
}

/// Softmax along `axis` (default: the last).
public final class Softmax: ActivationLayer {
    public let axis: Int
    public init(axis: Int = -1) {
        self.axis = axis
        super.init(nil) { $0.softmax(alongAxis: axis) }
    }
}

/// The logistic sigmoid of every element.
public func sigmoid(_ x: Tensor) -> Tensor { x.sigmoid() }
/// The hyperbolic tangent of every element.
public func tanh(_ x: Tensor) -> Tensor { x.tanh() }
/// `max(x, 0)` of every element.
public func relu(_ x: Tensor) -> Tensor { x.relu() }
/// Leaky ReLU of every element.
public func leakyRelu(_ x: Tensor, negativeSlope: Float = 0.01) -> Tensor { x.leakyRelu(negativeSlope: negativeSlope) }
/// ELU of every element.
public func elu(_ x: Tensor, alpha: Float = 1) -> Tensor { x.elu(alpha: alpha) }
/// GELU of every element.
public func gelu(_ x: Tensor, approximation: Tensor.GELUApproximation = .none) -> Tensor { x.gelu(approximation: approximation) }
/// Softplus of every element.
public func softplus(_ x: Tensor, beta: Float = 1, threshold: Float = 20) -> Tensor { x.softplus(beta: beta, threshold: threshold) }
/// Softmax along `axis`.
public func softmax(_ x: Tensor, alongAxis axis: Int = -1) -> Tensor { x.softmax(alongAxis: axis) }
/// Log-softmax along `axis`.
public func logSoftmax(_ x: Tensor, alongAxis axis: Int = -1) -> Tensor { x.logSoftmax(alongAxis: axis) }
