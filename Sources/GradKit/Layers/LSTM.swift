// GradKit — the long short-term memory layer. SPDX-License-Identifier: MIT

/// A long short-term memory layer (Hochreiter & Schmidhuber, 1997), PyTorch's
/// single-layer `nn.LSTM` with `batch_first=True`:
/// ```
/// i = σ(x_t W_iiᵀ + b_ii + h_{t-1} W_hiᵀ + b_hi)
/// f = σ(x_t W_ifᵀ + b_if + h_{t-1} W_hfᵀ + b_hf)
/// g = tanh(x_t W_igᵀ + b_ig + h_{t-1} W_hgᵀ + b_hg)
/// o = σ(x_t W_ioᵀ + b_io + h_{t-1} W_hoᵀ + b_ho)
/// c_t = f ⊙ c_{t-1} + i ⊙ g
/// h_t = o ⊙ tanh(c_t)
/// ```
/// over inputs `[batch, time, inputSize]`, from `h_0 = c_0 = 0` or a given
/// ``State``. The cell state's additive update is what lets gradients cross
/// many steps without vanishing, where the Elman ``RNN``'s shrink by
/// `W_hhᵀ diag(1 - h²)` at every step.
///
/// Parameters have PyTorch's names, layout and initialization
/// (U(-1/√hidden, 1/√hidden)), so a PyTorch `state_dict` loads with
/// ``Layer/loadStateDictionary(_:strict:)``: `weight_ih_l0` `[4·hidden, input]`
/// and `weight_hh_l0` `[4·hidden, hidden]` hold the gates' rows in the order
/// i, f, g, o; `bias_ih_l0` and `bias_hh_l0` are `[4·hidden]`.
///
/// The whole sequence is one operation on the tape: the input projection of
/// every step is one GEMM, each step one recurrent GEMM and one fused kernel
/// for the gate arithmetic; `backward()` is back-propagation through time.
public final class LSTM: HookedLayer {
    /// The hidden and cell states, each `[batch, hiddenSize]`: PyTorch's `(h, c)`.
    public struct State {
        /// The hidden state h, the layer's output at a step.
        public var hidden: Tensor
        /// The cell state c.
        public var cell: Tensor

        /// A state from its two parts.
        ///
        /// - Parameters:
        ///   - hidden: h, `[batch, hiddenSize]`.
        ///   - cell: c, `[batch, hiddenSize]`.
        public init(hidden: Tensor, cell: Tensor) {
            self.hidden = hidden
            self.cell = cell
        }
    }

    /// The features of each step's input (the input's last axis).
    public let inputSize: Int
    /// The units of the hidden state and of the cell state.
    public let hiddenSize: Int
    /// `weight_ih_l0`, `[4·hiddenSize, inputSize]`, gate rows i, f, g, o.
    public let weightInputHidden: Parameter
    /// `weight_hh_l0`, `[4·hiddenSize, hiddenSize]`, gate rows i, f, g, o.
    public let weightHiddenHidden: Parameter
    /// `bias_ih_l0`, `[4·hiddenSize]`, or nil without bias.
    public let biasInputHidden: Parameter?
    /// `bias_hh_l0`, `[4·hiddenSize]`, or nil without bias.
    public let biasHiddenHidden: Parameter?
    /// Has no effect: the layer behaves the same in training and evaluation.
    public var isTraining = true

    /// What calling the layer returns: every step's hidden state
    /// `[batch, time, hiddenSize]` (true, the default, PyTorch's `output`), or
    /// only the last `[batch, hiddenSize]` (Keras' `return_sequences=False`),
    /// to feed a head such as `Linear` in a `Sequential`.
    public var returnsSequences = true

    let forwardHooks = ForwardHooks()

    /// An LSTM with PyTorch's initialization, or the given initializers for
    /// the input and recurrent weights (biases stay U(-1/√hidden, 1/√hidden)).
    /// - Precondition: both sizes are positive.
    public init(
        inputSize: Int, hiddenSize: Int, bias: Bool = true, initializer: Initializer? = nil,
        recurrentInitializer: Initializer? = nil
    ) {
        precondition(inputSize > 0 && hiddenSize > 0, "LSTM: sizes must be positive, got \(inputSize) and \(hiddenSize)")
        self.inputSize = inputSize
        self.hiddenSize = hiddenSize
        (weightInputHidden, weightHiddenHidden, biasInputHidden, biasHiddenHidden) = recurrentParameters(
            inputSize: inputSize, hiddenSize: hiddenSize, gateCount: RecurrentCell.lstm.gateCount, bias: bias,
            initializer: initializer, recurrentInitializer: recurrentInitializer)
    }

    /// The hidden state at every step, `[batch, time, hiddenSize]`, or the last
    /// one, `[batch, hiddenSize]` (see ``returnsSequences``), from zero states.
    public func callAsFunction(_ input: Tensor) -> Tensor {
        let outputs = recurrence(input, initialState: nil, appendingFinalCell: false)
        let steps = outputs.shape[1]
        let result = returnsSequences
            ? outputs : outputs.slicing((steps - 1)..<steps, alongAxis: 1).reshaped(to: [outputs.shape[0], hiddenSize])
        return forwardHooks.run(self, input, result)
    }

    /// The hidden states at every step (`[batch, time, hiddenSize]`) and the
    /// final hidden and cell states (PyTorch's `output, (h_n, c_n)`).
    /// - Precondition: input `[batch, time >= 1, inputSize]`; an initial
    ///   state, if given, has both parts `[batch, hiddenSize]`.
    public func run(_ input: Tensor, initialState: State? = nil) -> (outputs: Tensor, finalState: State) {
        let packed = recurrence(input, initialState: initialState, appendingFinalCell: true)
        let batch = packed.shape[0], steps = packed.shape[1] - 1
        let outputs = packed.slicing(0..<steps, alongAxis: 1)
        let hidden = packed.slicing((steps - 1)..<steps, alongAxis: 1).reshaped(to: [batch, hiddenSize])
        let cell = packed.slicing(steps..<(steps + 1), alongAxis: 1).reshaped(to: [batch, hiddenSize])
        return (outputs, State(hidden: hidden, cell: cell))
    }

    private func recurrence(_ input: Tensor, initialState: State?, appendingFinalCell: Bool) -> Tensor {
        checkShapes(input, initialState)
        return fusedRecurrence(
            .lstm, projected: linear(input, weight: weightInputHidden.value, bias: biasInputHidden?.value),
            recurrentWeight: weightHiddenHidden.value, initialHidden: initialState?.hidden,
            initialCell: initialState?.cell, recurrentBias: biasHiddenHidden?.value,
            appendingFinalCell: appendingFinalCell)
    }

    private func checkShapes(_ input: Tensor, _ initialState: State?) {
        precondition(
            input.rank == 3 && input.shape[2] == inputSize && input.shape[1] >= 1,
            "LSTM(inputSize: \(inputSize), hiddenSize: \(hiddenSize)): expected input [batch, time >= 1, \(inputSize)], got \(input.shape)")
        guard let initialState else { return }
        let expected = [input.shape[0], hiddenSize]
        precondition(
            initialState.hidden.shape == expected && initialState.cell.shape == expected,
            "LSTM: initial state hidden \(initialState.hidden.shape) and cell \(initialState.cell.shape), expected \(expected) each")
    }

    /// ``run(_:initialState:)`` composed of tensor operations step by step,
    /// each its own tape record: the unfused reference the fused recurrence is
    /// tested and benchmarked against.
    @_spi(Benchmarks)
    public func unfusedRun(_ input: Tensor, initialState: State? = nil) -> (outputs: Tensor, finalState: State) {
        checkShapes(input, initialState)
        let result = composedRecurrence(
            .lstm, projected: linear(input, weight: weightInputHidden.value, bias: biasInputHidden?.value),
            recurrentWeight: weightHiddenHidden.value, initialHidden: initialState?.hidden,
            initialCell: initialState?.cell, recurrentBias: biasHiddenHidden?.value)
        return (result.outputs, State(hidden: result.hidden, cell: result.cell!))
    }

    /// `W_ih`, `W_hh`, then the biases when present: PyTorch's order.
    public var parameters: [Parameter] {
        [weightInputHidden, weightHiddenHidden] + [biasInputHidden, biasHiddenHidden].compactMap { $0 }
    }
    /// ``inputSize``.
    public var inputWidth: Int? { inputSize }
}
