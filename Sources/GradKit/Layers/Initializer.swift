// GradKit — weight initializers with PyTorch's formulas and gain table. SPDX-License-Identifier: MIT

/// The nonlinearity a layer feeds, for the gain of an initializer
/// (PyTorch's `nn.init.calculate_gain`).
public enum Nonlinearity: Sendable, Equatable {
    /// No nonlinearity (gain 1): a layer whose output is used as it is.
    case linear
    /// The logistic sigmoid (gain 1).
    case sigmoid
    /// The hyperbolic tangent (gain 5/3).
    case tanh
    /// ReLU (gain √2).
    case relu
    /// Leaky ReLU with the given slope for x ≤ 0 (gain √(2 / (1 + slope²))).
    case leakyRelu(negativeSlope: Float = 0.01)
    /// SELU (gain 3/4, PyTorch's value for self-normalizing networks).
    case selu

    /// PyTorch's gain: linear and sigmoid 1, tanh 5/3, ReLU √2,
    /// leaky ReLU √(2 / (1 + slope²)), SELU 3/4.
    public var gain: Float {
        switch self {
        case .linear, .sigmoid: 1
        case .tanh: 5.0 / 3
        case .relu: Float(2).squareRoot()
        case .leakyRelu(let slope): (2 / (1 + slope * slope)).squareRoot()
        case .selu: 0.75
        }
    }
}

/// Whether a He/Kaiming initializer preserves the variance of the forward pass
/// (fan-in) or of the backward pass (fan-out).
public enum FanMode: Sendable {
    /// Scale by the inputs per output unit: the forward pass keeps its variance (PyTorch's `mode="fan_in"`, the default).
    case fanIn
    /// Scale by the outputs per input unit: the backward pass keeps its variance (PyTorch's `mode="fan_out"`).
    case fanOut
}

/// How a weight (or bias) tensor starts. For a weight of shape `[out, in, ...]`,
/// fan-in = in · receptive field and fan-out = out · receptive field, as PyTorch.
public enum Initializer: Sendable, Equatable {
    /// Glorot and Bengio (2010): U(-a, a) with a = gain · √(6 / (fanIn + fanOut)).
    case xavierUniform(gain: Float = 1)
    /// Glorot and Bengio (2010): N(0, σ²) with σ = gain · √(2 / (fanIn + fanOut)).
    case xavierNormal(gain: Float = 1)
    /// He et al. (2015): U(-b, b) with b = √3 · gain / √fan.
    case heUniform(mode: FanMode = .fanIn, nonlinearity: Nonlinearity = .relu)
    /// He et al. (2015): N(0, σ²) with σ = gain / √fan.
    case heNormal(mode: FanMode = .fanIn, nonlinearity: Nonlinearity = .relu)
    /// LeCun (1998): N(0, σ²) with σ = 1 / √fanIn.
    case lecunNormal
    /// Saxe et al. (2014): a (semi-)orthogonal matrix (QR of a Gaussian, signs
    /// fixed so the result is uniform over orthogonal matrices), times `gain`;
    /// the weight is flattened to `[out, everything else]`.
    case orthogonal(gain: Float = 1)
    /// Every element `value`.
    case constant(Float)
    /// Zeros.
    case zeros
    /// PyTorch's `nn.Linear` default: weights He-uniform with a = √5 (that is,
    /// U(-1/√fanIn, 1/√fanIn)), biases U(-1/√fanIn, 1/√fanIn).
    case pytorchDefault

    /// A tensor of `shape` drawn from `generator`; `fanIn`/`fanOut` override the
    /// fans computed from the shape (a bias uses its layer's fan-in).
    public func tensor<G: RandomNumberGenerator>(
        shape: [Int], fanIn: Int? = nil, fanOut: Int? = nil, using generator: inout G
    ) -> Tensor {
        let receptive = shape.count > 2 ? shape[2...].reduce(1, *) : 1
        let fanIn = Float(fanIn ?? (shape.count >= 2 ? shape[1] * receptive : shape.first ?? 1))
        let fanOut = Float(fanOut ?? (shape.first ?? 1) * receptive)
        func fan(_ mode: FanMode) -> Float { Swift.max(mode == .fanIn ? fanIn : fanOut, 1) }
        switch self {
        case .xavierUniform(let gain):
            let a = gain * (6 / Swift.max(fanIn + fanOut, 1)).squareRoot()
            return Tensor(randomUniform: shape, lowerBound: -a, upperBound: a, using: &generator)
        case .xavierNormal(let gain):
            let std = gain * (2 / Swift.max(fanIn + fanOut, 1)).squareRoot()
            return Tensor(randomNormal: shape, standardDeviation: std, using: &generator)
        case .heUniform(let mode, let nonlinearity):
            let bound = Float(3).squareRoot() * nonlinearity.gain / fan(mode).squareRoot()
            return Tensor(randomUniform: shape, lowerBound: -bound, upperBound: bound, using: &generator)
        case .heNormal(let mode, let nonlinearity):
            return Tensor(randomNormal: shape, standardDeviation: nonlinearity.gain / fan(mode).squareRoot(), using: &generator)
        case .lecunNormal:
            return Tensor(randomNormal: shape, standardDeviation: 1 / fan(.fanIn).squareRoot(), using: &generator)
        case .orthogonal(let gain):
            return Initializer.orthogonalTensor(shape: shape, gain: gain, using: &generator)
        case .constant(let value):
            return Tensor(shape: shape, repeating: value)
        case .zeros:
            return Tensor(zeros: shape)
        case .pytorchDefault:
            let bound = 1 / fan(.fanIn).squareRoot()
            return Tensor(randomUniform: shape, lowerBound: -bound, upperBound: bound, using: &generator)
        }
    }

    /// Householder QR of a Gaussian matrix, in Double.
    private static func orthogonalTensor<G: RandomNumberGenerator>(
        shape: [Int], gain: Float, using generator: inout G
    ) -> Tensor {
        precondition(shape.count >= 2, "Initializer.orthogonal: needs a shape of rank >= 2, got \(shape)")
        let rows = shape[0], columns = shape.dropFirst().reduce(1, *)
        // QR of the taller orientation; transpose back if rows < columns.
        let m = Swift.max(rows, columns), n = Swift.min(rows, columns)
        var a = Tensor(randomNormal: [m, n], using: &generator).scalars.map(Double.init) // row-major m x n
        var q = [Double](repeating: 0, count: m * n)
        for i in 0..<n { q[i * n + i] = 1 }
        var signs = [Double](repeating: 1, count: n)
        var householders: [[Double]] = []
        for k in 0..<n {
            var norm = 0.0
            for i in k..<m { norm += a[i * n + k] * a[i * n + k] }
            norm = norm.squareRoot()
            let alpha = a[k * n + k] > 0 ? -norm : norm
            var v = [Double](repeating: 0, count: m)
            for i in k..<m { v[i] = a[i * n + k] }
            v[k] -= alpha
            let vv = v[k...].reduce(0) { $0 + $1 * $1 }
            if vv > 0 {
                for j in k..<n {
                    var dot = 0.0
                    for i in k..<m { dot += v[i] * a[i * n + j] }
                    let f = 2 * dot / vv
                    for i in k..<m { a[i * n + j] -= f * v[i] }
                }
            }
            householders.append(vv > 0 ? v.map { $0 / vv.squareRoot() } : v)
            signs[k] = a[k * n + k] < 0 ? -1 : 1 // d = sign(diag(R)), as PyTorch
        }
        // Q = H_0 H_1 ... H_{n-1} applied to the first n columns of the identity.
        var full = [Double](repeating: 0, count: m * n)
        for i in 0..<n { full[i * n + i] = 1 }
        for k in stride(from: n - 1, through: 0, by: -1) {
            let v = householders[k]
            for j in 0..<n {
                var dot = 0.0
                for i in k..<m { dot += v[i] * full[i * n + j] }
                for i in k..<m { full[i * n + j] -= 2 * dot * v[i] }
            }
        }
        q = full
        for i in 0..<m { for j in 0..<n { q[i * n + j] *= signs[j] * Double(gain) } }
        var values = [Float](repeating: 0, count: rows * columns)
        if rows >= columns {
            for i in 0..<m { for j in 0..<n { values[i * columns + j] = Float(q[i * n + j]) } }
        } else {
            for i in 0..<m { for j in 0..<n { values[j * columns + i] = Float(q[i * n + j]) } }
        }
        return Tensor(shape: shape, scalars: values)
    }
}
