// GradKit — the Elman recurrent network. SPDX-License-Identifier: MIT

/// An Elman recurrent layer (Elman, 1990), PyTorch's single-layer `nn.RNN`
/// with `batch_first=True`:
/// ```
/// h_t = tanh(x_t W_ihᵀ + b_ih + h_{t-1} W_hhᵀ + b_hh)      (or relu)
/// ```
/// over inputs `[batch, time, inputSize]`, from `h_0 = 0` or a given state.
/// Unrolled on the tape, so `backward()` is back-propagation through time —
/// the classic setting of exploding and vanishing gradients: the gradient
/// reaching step t is multiplied by `W_hhᵀ diag(1 - h²)` once per later step.
///
/// Parameters have PyTorch's names and initialization (U(-1/√hidden, 1/√hidden)):
/// `weight_ih_l0` `[hidden, input]`, `weight_hh_l0` `[hidden, hidden]`,
/// `bias_ih_l0`, `bias_hh_l0` `[hidden]`.
public final class RNN: HookedLayer {
    /// The recurrent nonlinearity.
    public enum Nonlinearity: Sendable { case tanh, relu }

    public let inputSize: Int
    public let hiddenSize: Int
    public let nonlinearity: Nonlinearity
    public let weightInputHidden: Parameter
    public let weightHiddenHidden: Parameter
    public let biasInputHidden: Parameter?
    public let biasHiddenHidden: Parameter?
    public var isTraining = true

    public init(
        inputSize: Int, hiddenSize: Int, nonlinearity: Nonlinearity = .tanh, bias: Bool = true,
        initializer: Initializer? = nil, recurrentInitializer: Initializer? = nil
    ) {
        precondition(inputSize > 0 && hiddenSize > 0, "RNN: sizes must be positive, got \(inputSize) and \(hiddenSize)")
        self.inputSize = inputSize
        self.hiddenSize = hiddenSize
        self.nonlinearity = nonlinearity
        let bound = 1 / Float(hiddenSize).squareRoot()
        func draw(_ shape: [Int], _ chosen: Initializer?, _ generator: inout SeededGenerator) -> Tensor {
            if let chosen { return chosen.tensor(shape: shape, using: &generator) }
            return Tensor(randomUniform: shape, lowerBound: -bound, upperBound: bound, using: &generator)
        }
        let (wih, whh, bih, bhh) = SharedRandom.with { g in
            (draw([hiddenSize, inputSize], initializer, &g), draw([hiddenSize, hiddenSize], recurrentInitializer, &g),
             bias ? draw([hiddenSize], nil, &g) : nil, bias ? draw([hiddenSize], nil, &g) : nil)
        }
        weightInputHidden = Parameter(wih, name: "weight_ih_l0")
        weightHiddenHidden = Parameter(whh, name: "weight_hh_l0")
        biasInputHidden = bih.map { Parameter($0, name: "bias_ih_l0") }
        biasHiddenHidden = bhh.map { Parameter($0, name: "bias_hh_l0") }
    }

    /// What calling the layer returns: every step's hidden state
    /// `[batch, time, hiddenSize]` (true, the default, PyTorch's `output`), or
    /// only the last `[batch, hiddenSize]` (Keras' `return_sequences=False`),
    /// to feed a head such as `Linear` in a `Sequential`.
    public var returnsSequences = true

    let forwardHooks = ForwardHooks()

    /// The hidden state at every step, `[batch, time, hiddenSize]`, or the last
    /// one, `[batch, hiddenSize]` (see ``returnsSequences``).
    public func callAsFunction(_ input: Tensor) -> Tensor { forwardHooks.run(self, input, forward(input)) }

    private func forward(_ input: Tensor) -> Tensor {
        let result = unroll(input, initialState: nil, keepingOutputs: returnsSequences)
        return returnsSequences ? result.outputs! : result.finalState
    }

    /// The hidden states at every step and the last one (`[batch, hiddenSize]`).
    /// - Precondition: input `[batch, time, inputSize]` with time >= 1; an
    ///   initial state, if given, `[batch, hiddenSize]`.
    public func run(_ input: Tensor, initialState: Tensor? = nil) -> (outputs: Tensor, finalState: Tensor) {
        let result = unroll(input, initialState: initialState, keepingOutputs: true)
        return (result.outputs!, result.finalState)
    }

    private func unroll(_ input: Tensor, initialState: Tensor?, keepingOutputs: Bool) -> (outputs: Tensor?, finalState: Tensor) {
        precondition(
            input.rank == 3 && input.shape[2] == inputSize && input.shape[1] >= 1,
            "RNN(inputSize: \(inputSize), hiddenSize: \(hiddenSize)): expected input [batch, time >= 1, \(inputSize)], got \(input.shape)")
        let batch = input.shape[0], steps = input.shape[1]
        if let initialState {
            precondition(
                initialState.shape == [batch, hiddenSize],
                "RNN: initial state \(initialState.shape), expected [\(batch), \(hiddenSize)]")
        }
        // The input projection of every step at once: one [batch * time, input] GEMM.
        let projected = linear(input, weight: weightInputHidden.value, bias: biasInputHidden?.value)
        let recurrent = weightHiddenHidden.value, recurrentBias = biasHiddenHidden?.value
        var state = initialState ?? Tensor(zeros: [batch, hiddenSize])
        var outputs: [Tensor] = []
        if keepingOutputs { outputs.reserveCapacity(steps) }
        for t in 0..<steps {
            let preactivation = projected.slicing(t..<(t + 1), alongAxis: 1).reshaped(to: [batch, hiddenSize])
                + linear(state, weight: recurrent, bias: recurrentBias)
            state = nonlinearity == .tanh ? preactivation.tanh() : preactivation.relu()
            if keepingOutputs { outputs.append(state) }
        }
        return (keepingOutputs ? Tensor(stacking: outputs, alongAxis: 1) : nil, state)
    }

    public var parameters: [Parameter] {
        [weightInputHidden, weightHiddenHidden] + [biasInputHidden, biasHiddenHidden].compactMap { $0 }
    }
    public var inputWidth: Int? { inputSize }
}
