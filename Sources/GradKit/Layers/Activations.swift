// GradKit — activation functions as layers and as functions. SPDX-License-Identifier: MIT

/// The logistic sigmoid `1 / (1 + e^-x)`; saturates (gradient → 0) for large |x|.
public final class Sigmoid: Layer {
    public var isTraining = true
    public init() {}
    public func callAsFunction(_ input: Tensor) -> Tensor {
        let output = input.sigmoid()
        ActivationProbe.report(self, kind: .sigmoid, input: input, output: output)
        return output
    }
    public var parameters: [Parameter] { [] }
}

/// The hyperbolic tangent; saturates for large |x|.
public final class Tanh: Layer {
    public var isTraining = true
    public init() {}
    public func callAsFunction(_ input: Tensor) -> Tensor {
        let output = input.tanh()
        ActivationProbe.report(self, kind: .tanh, input: input, output: output)
        return output
    }
    public var parameters: [Parameter] { [] }
}

/// `max(x, 0)`; its derivative at 0 is 0. Units whose input stays negative are "dead".
public final class ReLU: Layer {
    public var isTraining = true
    public init() {}
    public func callAsFunction(_ input: Tensor) -> Tensor {
        let output = input.relu()
        ActivationProbe.report(self, kind: .relu, input: input, output: output)
        return output
    }
    public var parameters: [Parameter] { [] }
}

/// `x` for x > 0, `negativeSlope · x` otherwise (PyTorch's default slope 0.01).
public final class LeakyReLU: Layer {
    public let negativeSlope: Float
    public var isTraining = true
    public init(negativeSlope: Float = 0.01) { self.negativeSlope = negativeSlope }
    public func callAsFunction(_ input: Tensor) -> Tensor {
        let output = input.leakyRelu(negativeSlope: negativeSlope)
        ActivationProbe.report(self, kind: .leakyRelu, input: input, output: output)
        return output
    }
    public var parameters: [Parameter] { [] }
}

/// `x` for x > 0, `alpha · (e^x - 1)` otherwise.
public final class ELU: Layer {
    public let alpha: Float
    public var isTraining = true
    public init(alpha: Float = 1) { self.alpha = alpha }
    public func callAsFunction(_ input: Tensor) -> Tensor {
        let output = input.elu(alpha: alpha)
        ActivationProbe.report(self, kind: .other, input: input, output: output)
        return output
    }
    public var parameters: [Parameter] { [] }
}

/// `x Φ(x)`, exact (PyTorch's default) or with the tanh approximation.
public final class GELU: Layer {
    public let approximation: Tensor.GELUApproximation
    public var isTraining = true
    public init(approximation: Tensor.GELUApproximation = .none) { self.approximation = approximation }
    public func callAsFunction(_ input: Tensor) -> Tensor {
        let output = input.gelu(approximation: approximation)
        ActivationProbe.report(self, kind: .other, input: input, output: output)
        return output
    }
    public var parameters: [Parameter] { [] }
}

/// `log(1 + e^(βx)) / β`, linear above the threshold (PyTorch's defaults β 1, threshold 20).
public final class Softplus: Layer {
    public let beta: Float
    public let threshold: Float
    public var isTraining = true
    public init(beta: Float = 1, threshold: Float = 20) {
        self.beta = beta
        self.threshold = threshold
    }
    public func callAsFunction(_ input: Tensor) -> Tensor {
        let output = input.softplus(beta: beta, threshold: threshold)
        ActivationProbe.report(self, kind: .other, input: input, output: output)
        return output
    }
    public var parameters: [Parameter] { [] }
}

/// Softmax along `axis` (default: the last).
public final class Softmax: Layer {
    public let axis: Int
    public var isTraining = true
    public init(axis: Int = -1) { self.axis = axis }
    public func callAsFunction(_ input: Tensor) -> Tensor { input.softmax(alongAxis: axis) }
    public var parameters: [Parameter] { [] }
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
