// GradKit — how layers print: their initializer's arguments, containers with their children indented. SPDX-License-Identifier: MIT

/// `Name(\n  (child): description\n  ...\n)`, PyTorch's module representation.
func containerDescription(_ name: String, _ children: [(name: String, layer: any Layer)]) -> String {
    let lines = children.map { child in
        "  (\(child.name)): " + String(describing: child.layer).split(separator: "\n", omittingEmptySubsequences: false).joined(separator: "\n  ")
    }
    return "\(name)(\n" + lines.joined(separator: "\n") + "\n)"
}

extension Linear: CustomStringConvertible {
    public var description: String { "Linear(inputSize: \(inputSize), outputSize: \(outputSize)\(bias == nil ? ", bias: false" : ""))" }
}

extension ActivationLayer: CustomStringConvertible {
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
    public var description: String { "Dropout(probability: \(probability))" }
}

extension BatchNorm: CustomStringConvertible {
    public var description: String { "BatchNorm(featureCount: \(featureCount))" }
}

extension LayerNorm: CustomStringConvertible {
    public var description: String { "LayerNorm(normalizedShape: \(normalizedShape))" }
}

extension RNN: CustomStringConvertible {
    public var description: String { "RNN(inputSize: \(inputSize), hiddenSize: \(hiddenSize), nonlinearity: .\(nonlinearity))" }
}

extension Perceptron: CustomStringConvertible {
    public var description: String { "Perceptron(inputSize: \(inputSize))" }
}

extension Sequential: CustomStringConvertible {
    public var description: String { containerDescription("Sequential", namedChildren) }
}

extension Residual: CustomStringConvertible {
    public var description: String { containerDescription("Residual", namedChildren) }
}

extension MLP: CustomStringConvertible {
    public var description: String { containerDescription("MLP", namedChildren) }
}

extension LSTM: CustomStringConvertible {
    public var description: String {
        "LSTM(inputSize: \(inputSize), hiddenSize: \(hiddenSize)\(biasInputHidden == nil ? ", bias: false" : ""))"
    }
}

extension GRU: CustomStringConvertible {
    public var description: String {
        "GRU(inputSize: \(inputSize), hiddenSize: \(hiddenSize)\(biasInputHidden == nil ? ", bias: false" : ""))"
    }
}
