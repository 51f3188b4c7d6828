// GradKit — elementwise math and activations. SPDX-License-Identifier: MIT
//
// Every map here is one kernel call forward and one backward. The derivative
// of each map sits beside the map itself in the kernels (elementwise.c and its
// Swift twin), and one pullback below serves them all.

extension Tensor {
    /// `f(self)` elementwise, not recorded.
    @inline(__always)
    func mapped(_ op: UnaryOperation, _ a: Float = 0, _ b: Float = 0) -> Tensor {
        let y = Tensor(uninitializedShape: shape)
        withExtendedLifetime(self) {
            Kernels.unary(op, count: scalarCount, output: y.mutablePointer, input: pointer, a: a, b: b)
        }
        return y
    }

    /// `f(self)` elementwise, recorded with the shared pullback.
    @inline(__always)
    func unary(_ op: UnaryOperation, _ a: Float = 0, _ b: Float = 0) -> Tensor {
        let y = mapped(op, a, b)
        return Tensor.record(y, self, op: op.name, pullback: unaryPullback) { record in
            record.integer = op.rawValue
            record.scalar0 = a
            record.scalar1 = b
            record.save(op.pullbackNeedsInput ? self : nil, op.pullbackNeedsOutput ? y : nil)
        }
    }

    /// Elementwise e^x.
    public func exp() -> Tensor { unary(.exp) }
    /// Elementwise natural logarithm.
    public func log() -> Tensor { unary(.log) }
    /// Elementwise square root.
    public func sqrt() -> Tensor { unary(.sqrt) }
    /// Elementwise absolute value; its derivative at 0 is taken as 0.
    public func abs() -> Tensor { unary(.abs) }
    /// Elementwise x².
    public func squared() -> Tensor { unary(.square) }
    /// Elementwise x^exponent. The derivative is `exponent * x^(exponent - 1)` (0 when exponent is 0).
    public func pow(_ exponent: Float) -> Tensor { unary(.pow, exponent) }

    /// Elementwise clamp to `[lowerBound, upperBound]`; the gradient passes where
    /// `lowerBound <= x <= upperBound` (both ends included, as in PyTorch).
    /// - Precondition: `lowerBound <= upperBound`.
    public func clamped(min lowerBound: Float = -.infinity, max upperBound: Float = .infinity) -> Tensor {
        precondition(
            lowerBound <= upperBound, "clamped(min:max:): lower bound \(lowerBound) exceeds upper bound \(upperBound)")
        return unary(.clamp, lowerBound, upperBound)
    }

    /// The logistic sigmoid 1 / (1 + e^-x).
    public func sigmoid() -> Tensor { unary(.sigmoid) }
    /// The hyperbolic tangent.
    public func tanh() -> Tensor { unary(.tanh) }
    /// max(x, 0). The derivative at 0 is 0, as in PyTorch.
    public func relu() -> Tensor { unary(.relu) }

    /// x for x > 0, `negativeSlope * x` otherwise (PyTorch's default slope 0.01).
    public func leakyRelu(negativeSlope: Float = 0.01) -> Tensor { unary(.leakyRelu, negativeSlope) }

    /// x for x > 0, `alpha * (e^x - 1)` otherwise.
    public func elu(alpha: Float = 1) -> Tensor { unary(.elu, alpha) }

    /// How ``gelu(approximation:)`` computes the Gaussian CDF.
    public enum GELUApproximation: Sendable {
        /// The exact `x Φ(x)` with the error function (PyTorch's default).
        case none
        /// `0.5 x (1 + tanh(√(2/π) (x + 0.044715 x³)))` (PyTorch's `approximate="tanh"`).
        case tanh
    }

    /// The Gaussian error linear unit `x Φ(x)`.
    public func gelu(approximation: GELUApproximation = .none) -> Tensor {
        unary(approximation == .none ? .gelu : .geluTanh)
    }

    /// `log(1 + e^(beta x)) / beta`, and `x` where `beta x > threshold` (PyTorch's
    /// defaults: beta 1, threshold 20).
    /// - Precondition: `beta > 0`.
    public func softplus(beta: Float = 1, threshold: Float = 20) -> Tensor {
        precondition(beta > 0, "softplus(beta:threshold:): beta must be > 0, got \(beta)")
        return unary(.softplus, beta, threshold)
    }
}

/// The pullback of every unary map: `dx = dy * f'(x)` in one kernel call.
private let unaryPullback: Pullback = { record, gradient, sink in
    let op = UnaryOperation(rawValue: record.integer)!
    let dx = Tensor(uninitializedShape: gradient.shape)
    let x = record.saved0, y = record.saved1
    withExtendedLifetime((gradient, x, y)) {
        Kernels.unaryBackward(
            op, count: gradient.scalarCount, inputGradient: dx.mutablePointer, outputGradient: gradient.pointer,
            input: x?.pointer, output: y?.pointer, a: record.scalar0, b: record.scalar1)
    }
    sink.accumulate(0, dx)
}
