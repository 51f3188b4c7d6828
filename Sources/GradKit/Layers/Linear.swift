// GradKit — the fully connected layer. SPDX-License-Identifier: MIT

/// A fully connected layer, PyTorch's `nn.Linear`: `y = x Wᵀ + b` with
/// `weight` of shape `[outputSize, inputSize]` (so PyTorch checkpoints load
/// as they are) and `bias` of shape `[outputSize]`.
///
/// By default both start as PyTorch's do: U(-1/√inputSize, 1/√inputSize);
/// see ``Initializer`` for the alternatives. Inputs of shape `[..., inputSize]`
/// are accepted; leading axes are batch axes.
public final class Linear: HookedLayer {
    /// The features per input (the input's last axis).
    public let inputSize: Int
    /// The features per output.
    public let outputSize: Int
    /// Shape `[outputSize, inputSize]`, named `"weight"`.
    public let weight: Parameter
    /// Shape `[outputSize]`, named `"bias"`; nil without a bias.
    public let bias: Parameter?
    /// Has no effect: a linear layer behaves the same in training and evaluation.
    public var isTraining = true
    let forwardHooks = ForwardHooks()

    /// A fully connected layer from `inputSize` to `outputSize` features.
    ///
    /// - Parameters:
    ///   - inputSize: the features per input.
    ///   - outputSize: the features per output.
    ///   - bias: whether to learn `bias` (default true).
    ///   - weightInitializer: how `weight` starts (default PyTorch's U(-1/√inputSize, 1/√inputSize)).
    ///   - biasInitializer: how `bias` starts (default the same uniform).
    /// - Precondition: positive sizes.
    public init(
        inputSize: Int, outputSize: Int, bias: Bool = true, weightInitializer: Initializer = .pytorchDefault,
        biasInitializer: Initializer = .pytorchDefault
    ) {
        precondition(
            inputSize > 0 && outputSize > 0,
            "Linear(inputSize:outputSize:): sizes must be positive, got \(inputSize) and \(outputSize)")
        self.inputSize = inputSize
        self.outputSize = outputSize
        let (w, b) = SharedRandom.with { generator in
            (weightInitializer.tensor(shape: [outputSize, inputSize], using: &generator),
             bias ? biasInitializer.tensor(shape: [outputSize], fanIn: inputSize, fanOut: outputSize, using: &generator) : nil)
        }
        self.weight = Parameter(w, name: "weight")
        self.bias = b.map { Parameter($0, name: "bias") }
    }

    /// `x Wᵀ + b` over the last axis of `input`; runs the forward hooks.
    /// - Precondition: the input's last dimension is ``inputSize``.
    public func callAsFunction(_ input: Tensor) -> Tensor {
        checkWidth(input)
        return forwardHooks.run(self, input, linear(input, weight: weight.value, bias: bias?.value))
    }

    /// `relu(self(input))` as one operation (``linearReLU(_:weight:bias:)``).
    /// When either layer has forward hooks, they see the pre-activations: this
    /// layer's output and `relu`'s input.
    func fusedWithReLU(_ input: Tensor, _ relu: ReLU) -> Tensor {
        checkWidth(input)
        if forwardHooks.isEmpty && relu.forwardHooks.isEmpty {
            return linearReLU(input, weight: weight.value, bias: bias?.value)
        }
        return linearReLU(input, weight: weight.value, bias: bias?.value) { z, y in
            _ = forwardHooks.run(self, input, z)
            _ = relu.forwardHooks.run(relu, z, y)
        }
    }

    private func checkWidth(_ input: Tensor) {
        precondition(
            input.rank >= 1 && input.shape[input.rank - 1] == inputSize,
            "Linear(inputSize: \(inputSize), outputSize: \(outputSize)): input of shape \(input.shape) does not have \(inputSize) features")
    }

    /// `weight`, then `bias` when present.
    public var parameters: [Parameter] { [weight] + (bias.map { [$0] } ?? []) }
    /// `weight`: the monitor judges the layer by it.
    public var monitoredWeights: [Parameter] { [weight] }
    /// ``inputSize``.
    public var inputWidth: Int? { inputSize }
}
