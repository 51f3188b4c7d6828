// GradKit — the Elman recurrent network. SPDX-License-Identifier: MIT

/// An Elman recurrent layer (Elman, 1990), PyTorch's single-layer `nn.RNN`
/// with `batch_first=True`:
/// ```
/// h_t = tanh(x_t W_ihᵀ + b_ih + h_{t-1} W_hhᵀ + b_hh)      (or relu)
/// ```
/// over inputs `[batch, time, inputSize]`, from `h_0 = 0` or a given state.
/// `backward()` is back-propagation through time — the classic setting of
/// exploding and vanishing gradients: the gradient reaching step t is
/// multiplied by `W_hhᵀ diag(1 - h²)` once per later step. The whole sequence
/// is one operation on the tape (a GEMM and two elementwise kernels per step,
/// each rounded as the step-by-step composition rounds it).
///
/// Parameters have PyTorch's names and initialization (U(-1/√hidden, 1/√hidden)):
/// `weight_ih_l0` `[hidden, input]`, `weight_hh_l0` `[hidden, hidden]`,
/// `bias_ih_l0`, `bias_hh_l0` `[hidden]`.
public final class RNN: HookedLayer {
    /// The recurrent nonlinearity.
    public enum Nonlinearity: Sendable {
        /// The hyperbolic tangent (PyTorch's default).
        case tanh
        /// `max(x, 0)`.
        case relu
    }

    /// The features per time step of the input (its last axis).
    public let inputSize: Int
    /// The size of the hidden state and of each step's output.
    public let hiddenSize: Int
    /// The recurrent nonlinearity.
    public let nonlinearity: Nonlinearity
    /// `W_ih`, shape `[hiddenSize, inputSize]`, named `"weight_ih_l0"`.
    public let weightInputHidden: Parameter
    /// `W_hh`, shape `[hiddenSize, hiddenSize]`, named `"weight_hh_l0"`: the matrix whose powers explode or vanish.
    public let weightHiddenHidden: Parameter
    /// `b_ih`, shape `[hiddenSize]`, named `"bias_ih_l0"` (nil without bias).
    public let biasInputHidden: Parameter?
    /// `b_hh`, shape `[hiddenSize]`, named `"bias_hh_l0"` (nil without bias).
    public let biasHiddenHidden: Parameter?
    /// Has no effect: the layer behaves the same in training and evaluation.
    public var isTraining = true

    /// An Elman layer with PyTorch's initialization unless initializers are given.
    ///
    /// - Parameters:
    ///   - inputSize: the features per time step.
    ///   - hiddenSize: the size of the hidden state.
    ///   - nonlinearity: tanh (default) or ReLU.
    ///   - bias: whether to learn `b_ih` and `b_hh` (default true).
    ///   - initializer: how `W_ih` starts (default: U(-1/√hiddenSize, 1/√hiddenSize), as PyTorch).
    ///   - recurrentInitializer: how `W_hh` starts (default: the same uniform; ``Initializer/orthogonal(gain:)`` is the usual cure for exploding gradients).
    /// - Precondition: both sizes are positive.
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
        checkShapes(input, initialState)
        let outputs = fusedRecurrence(
            cell, projected: linear(input, weight: weightInputHidden.value, bias: biasInputHidden?.value),
            recurrentWeight: weightHiddenHidden.value, initialHidden: initialState, initialCell: nil,
            recurrentBias: biasHiddenHidden?.value, appendingFinalCell: false)
        let batch = input.shape[0], steps = input.shape[1]
        let last = outputs.slicing((steps - 1)..<steps, alongAxis: 1).reshaped(to: [batch, hiddenSize])
        return (keepingOutputs ? outputs : nil, last)
    }

    private var cell: RecurrentCell { nonlinearity == .tanh ? .elmanTanh : .elmanReLU }

    private func checkShapes(_ input: Tensor, _ initialState: Tensor?) {
        checkRecurrentShapes("RNN", inputSize: inputSize, hiddenSize: hiddenSize, input, initialState)
    }

    /// ``run(_:initialState:)`` composed of tensor operations step by step,
    /// each its own tape record: the unfused reference the fused recurrence is
    /// tested and benchmarked against.
    @_spi(Benchmarks)
    public func unfusedRun(_ input: Tensor, initialState: Tensor? = nil) -> (outputs: Tensor, finalState: Tensor) {
        checkShapes(input, initialState)
        let result = composedRecurrence(
            cell, projected: linear(input, weight: weightInputHidden.value, bias: biasInputHidden?.value),
            recurrentWeight: weightHiddenHidden.value, initialHidden: initialState, initialCell: nil,
            recurrentBias: biasHiddenHidden?.value)
        return (result.outputs, result.hidden)
    }

    /// `W_ih`, `W_hh`, then the biases when present: PyTorch's order.
    public var parameters: [Parameter] {
        [weightInputHidden, weightHiddenHidden] + [biasInputHidden, biasHiddenHidden].compactMap { $0 }
    }
    /// ``inputSize``.
    public var inputWidth: Int? { inputSize }
}
