// GradKit — how layers print: their initializer's arguments, containers with their children indented. SPDX-License-Identifier: MIT

/// `Name(\n  (child): description\n  ...\n)`, PyTorch's module representation.
func containerDescription(_ name: String, _ children: [(name: String, layer: any Layer)]) -> String {
    let lines = children.map { child in
        "  (\(child.name)): " + String(describing: child.layer).split(separator: "\n", omittingEmptySubsequences: false).joined(separator: "\n  ")
    }
    return "\(name)(\n" + lines.joined(separator: "\n") + "\n)"
}

extension Linear: CustomStringConvertible {
    /// The initializer call that builds this layer, e.g. `Linear(inputSize: 64, outputSize: 10)`.
    public var description: String { "Linear(inputSize: \(inputSize), outputSize: \(outputSize)\(bias == nil ? ", bias: false" : ""))" }
}

extension ActivationLayer: CustomStringConvertible {
    /// The initializer call that builds this layer, e.g. `LeakyReLU(negativeSlope: 0.01)` or `ReLU()`.
    public var description: String {
        switch self {
        case let layer as LeakyReLU: "LeakyReLU(negativeSlope: \(layer.negativeSlope))"
        case let layer as ELU: "ELU(alpha: \(layer.alpha))"
        case let layer as GELU: "GELU(approximation: .\(layer.approximation))"
        case let layer as Softplus: "Softplus(beta: \(layer.beta), threshold: \(layer.threshold))"
        case let layer as Softmax: "Softmax(axis: \(layer.axis))"
        default: "\(type(of: self))()"
        }
    }
}

extension Dropout: CustomStringConvertible {
    /// The initializer call that builds this layer, e.g. `Dropout(probability: 0.5)`.
    public var description: String { "Dropout(probability: \(probability))" }
}

extension BatchNorm: CustomStringConvertible {
    /// The initializer call that builds this layer, e.g. `BatchNorm(featureCount: 128)`.
    public var description: String { "BatchNorm(featureCount: \(featureCount))" }
}

extension LayerNorm: CustomStringConvertible {
    /// The initializer call that builds this layer, e.g. `LayerNorm(normalizedShape: [128])`.
    public var description: String { "LayerNorm(normalizedShape: \(normalizedShape))" }
}

extension RNN: CustomStringConvertible {
    /// The initializer call that builds this layer, e.g. `RNN(inputSize: 8, hiddenSize: 32, nonlinearity: .tanh)`.
    public var description: String { "RNN(inputSize: \(inputSize), hiddenSize: \(hiddenSize), nonlinearity: .\(nonlinearity))" }
}

extension Perceptron: CustomStringConvertible {
    /// The initializer call that builds this layer, e.g. `Perceptron(inputSize: 2)`.
    public var description: String { "Perceptron(inputSize: \(inputSize))" }
}

extension Sequential: CustomStringConvertible {
    /// `Sequential(` then each child as `  (name): description`, indented, then `)`: PyTorch's module representation.
    public var description: String { containerDescription("Sequential", namedChildren) }
}

extension Residual: CustomStringConvertible {
    /// `Residual(` then `(body)` and `(projection)` indented, then `)`: PyTorch's module representation.
    public var description: String { containerDescription("Residual", namedChildren) }
}

extension MLP: CustomStringConvertible {
    /// `MLP(` then each layer as `  (name): description`, indented, then `)`: PyTorch's module representation.
    public var description: String { containerDescription("MLP", namedChildren) }
}

extension LSTM: CustomStringConvertible {
    /// The initializer call that builds this layer, e.g. `LSTM(inputSize: 8, hiddenSize: 32)`.
    public var description: String {
        "LSTM(inputSize: \(inputSize), hiddenSize: \(hiddenSize)\(biasInputHidden == nil ? ", bias: false" : ""))"
    }
}

extension GRU: CustomStringConvertible {
    /// The initializer call that builds this layer, e.g. `GRU(inputSize: 8, hiddenSize: 32)`.
    public var description: String {
        "GRU(inputSize: \(inputSize), hiddenSize: \(hiddenSize)\(biasInputHidden == nil ? ", bias: false" : ""))"
    }
}

extension StorageRounding: CustomStringConvertible {
    /// The initializer call that builds this layer, e.g. `StorageRounding(.float16)`.
    public var description: String { "StorageRounding(.\(format.rawValue))" }
}
