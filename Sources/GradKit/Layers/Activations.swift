// GradKit — activation functions as layers and as functions. SPDX-License-Identifier: MIT

/// A layer that applies an elementwise (or softmax) function: the common
/// base of ``Sigmoid``, ``Tanh``, ``ReLU``, ``LeakyReLU``, ``ELU``, ``GELU``,
/// ``Softplus`` and ``Softmax``. It has no parameters; its forward hooks see
/// the pre-activations as input.
public class ActivationLayer: HookedLayer {
    /// Has no effect: an activation behaves the same in training and evaluation.
    public var isTraining = true
    /// The function applied, for the gradient monitor's statistics (nil for softmax).
    public let activationFunction: Activation?
    let forwardHooks = ForwardHooks()
    private let function: (Tensor) -> Tensor

    init(_ activation: Activation?, _ function: @escaping (Tensor) -> Tensor) {
        self.activationFunction = activation
        self.function = function
    }

    /// Applies the function to `input` and runs the forward hooks.
    public final func callAsFunction(_ input: Tensor) -> Tensor { forwardHooks.run(self, input, function(input)) }
    /// None: an activation has no parameters.
    public final var parameters: [Parameter] { [] }
}

/// The logistic sigmoid `1 / (1 + e^-x)`; saturates (gradient → 0) for large |x|.
public final class Sigmoid: ActivationLayer {
    /// A sigmoid layer.
    public init() { super.init(.sigmoid) { $0.sigmoid() } }
}

/// The hyperbolic tangent; saturates for large |x|.
public final class Tanh: ActivationLayer {
    /// A tanh layer.
    public init() { super.init(.tanh) { $0.tanh() } }
}

/// `max(x, 0)`; its derivative at 0 is 0. Units whose input stays negative are "dead".
public final class ReLU: ActivationLayer {
    /// A ReLU layer.
    public init() { super.init(.relu) { $0.relu() } }
}

/// `x` for x > 0, `negativeSlope · x` otherwise (PyTorch's default slope 0.01).
public final class LeakyReLU: ActivationLayer {
    /// The slope for x ≤ 0.
    public let negativeSlope: Float
    /// A leaky ReLU with slope `negativeSlope` for x ≤ 0.
    ///
    /// - Parameter negativeSlope: the slope for x ≤ 0 (PyTorch's default 0.01).
    public init(negativeSlope: Float = 0.01) {
        self.negativeSlope = negativeSlope
        super.init(.leakyRelu(negativeSlope: negativeSlope)) { $0.leakyRelu(negativeSlope: negativeSlope) }
    }
}

/// `x` for x > 0, `alpha · (e^x - 1)` otherwise.
public final class ELU: ActivationLayer {
    /// The scale of the negative branch, `alpha · (e^x - 1)`.
    public let alpha: Float
    /// An ELU with scale `alpha` on the negative branch.
    ///
    /// - Parameter alpha: the negative branch's scale; its limit as x → -∞ is `-alpha` (default 1).
    public init(alpha: Float = 1) {
        self.alpha = alpha
        super.init(.elu(alpha: alpha)) { $0.elu(alpha: alpha) }
    }
}

/// `x Φ(x)`, exact (PyTorch's default) or with the tanh approximation.
public final class GELU: ActivationLayer {
    /// Exact (`.none`) or the tanh approximation.
    public let approximation: Tensor.GELUApproximation
    /// A GELU.
    ///
    /// - Parameter approximation: `.none` for `x Φ(x)` with the exact normal CDF (PyTorch's default), `.tanh` for the tanh approximation.
    public init(approximation: Tensor.GELUApproximation = .none) {
        self.approximation = approximation
        super.init(.gelu) { $0.gelu(approximation: approximation) }
    }
}

/// `log(1 + e^(βx)) / β`, linear above the threshold (PyTorch's defaults β 1, threshold 20).
public final class Softplus: ActivationLayer {
    /// The sharpness β: larger values bring softplus closer to ReLU.
    public let beta: Float
    /// Above `βx > threshold` the output is `x` itself, for numerical stability.
    public let threshold: Float
    /// A softplus layer.
    ///
    /// - Parameters:
    ///   - beta: the sharpness β (default 1).
    ///   - threshold: above `βx > threshold` the output is `x` (default 20).
    public init(beta: Float = 1, threshold: Float = 20) {
        self.beta = beta
        self.threshold = threshold
        super.init(.softplus) { $0.softplus(beta: beta, threshold: threshold) }
    }
}

/// Softmax along `axis` (default: the last).
public final class Softmax: ActivationLayer {
    /// The axis normalized over; negative values count from the last.
    public let axis: Int
    /// A softmax layer over `axis`.
    ///
    /// - Parameter axis: the axis whose entries sum to 1 (default -1, the last).
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
