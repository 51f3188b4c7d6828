// GradKit — the gated recurrent unit layer. SPDX-License-Identifier: MIT

/// A gated recurrent unit layer (Cho et al., 2014), PyTorch's single-layer
/// `nn.GRU` with `batch_first=True`:
/// ```
/// r = σ(x_t W_irᵀ + b_ir + h_{t-1} W_hrᵀ + b_hr)
/// z = σ(x_t W_izᵀ + b_iz + h_{t-1} W_hzᵀ + b_hz)
/// n = tanh(x_t W_inᵀ + b_in + r ⊙ (h_{t-1} W_hnᵀ + b_hn))
/// h_t = (1 - z) ⊙ n + z ⊙ h_{t-1}
/// ```
/// over inputs `[batch, time, inputSize]`, from `h_0 = 0` or a given state.
/// As in PyTorch (and cuDNN, and Keras' `reset_after=True`), the reset gate
/// scales the recurrent product after the matrix multiplication, not h_{t-1}
/// before it. Where z is near 1, h_{t-1} passes through almost unchanged, and
/// so does the gradient flowing back through it.
///
/// Parameters have PyTorch's names, layout and initialization
/// (U(-1/√hidden, 1/√hidden)), so a PyTorch `state_dict` loads with
/// ``Layer/loadStateDictionary(_:strict:)``: `weight_ih_l0` `[3·hidden, input]`
/// and `weight_hh_l0` `[3·hidden, hidden]` hold the gates' rows in the order
/// r, z, n; `bias_ih_l0` and `bias_hh_l0` are `[3·hidden]`.
///
/// The whole sequence is one operation on the tape: the input projection of
/// every step is one GEMM, each step one recurrent GEMM and one fused kernel
/// for the gate arithmetic; `backward()` is back-propagation through time.
public final class GRU: HookedLayer {
    /// The features of each step's input (the input's last axis).
    public let inputSize: Int
    /// The units of the hidden state.
    public let hiddenSize: Int
    /// `weight_ih_l0`, `[3·hiddenSize, inputSize]`, gate rows r, z, n.
    public let weightInputHidden: Parameter
    /// `weight_hh_l0`, `[3·hiddenSize, hiddenSize]`, gate rows r, z, n.
    public let weightHiddenHidden: Parameter
    /// `bias_ih_l0`, `[3·hiddenSize]`, or nil without bias.
    public let biasInputHidden: Parameter?
    /// `bias_hh_l0`, `[3·hiddenSize]`, or nil without bias.
    public let biasHiddenHidden: Parameter?
    /// Has no effect: the layer behaves the same in training and evaluation.
    public var isTraining = true

    /// What calling the layer returns: every step's hidden state
    /// `[batch, time, hiddenSize]` (true, the default, PyTorch's `output`), or
    /// only the last `[batch, hiddenSize]` (Keras' `return_sequences=False`),
    /// to feed a head such as `Linear` in a `Sequential`.
    public var returnsSequences = true

    let forwardHooks = ForwardHooks()

    /// A GRU with PyTorch's initialization, or the given initializers for the
    /// input and recurrent weights (biases stay U(-1/√hidden, 1/√hidden)).
    /// - Precondition: both sizes are positive.
    public init(
        inputSize: Int, hiddenSize: Int, bias: Bool = true, initializer: Initializer? = nil,
        recurrentInitializer: Initializer? = nil
    ) {
        precondition(inputSize > 0 && hiddenSize > 0, "GRU: sizes must be positive, got \(inputSize) and \(hiddenSize)")
        self.inputSize = inputSize
        self.hiddenSize = hiddenSize
        (weightInputHidden, weightHiddenHidden, biasInputHidden, biasHiddenHidden) = recurrentParameters(
            inputSize: inputSize, hiddenSize: hiddenSize, gateCount: RecurrentCell.gru.gateCount, bias: bias,
            initializer: initializer, recurrentInitializer: recurrentInitializer)
    }

    /// The hidden state at every step, `[batch, time, hiddenSize]`, or the last
    /// one, `[batch, hiddenSize]` (see ``returnsSequences``), from a zero state.
    public func callAsFunction(_ input: Tensor) -> Tensor {
        let outputs = recurrence(input, initialState: nil)
        return forwardHooks.run(self, input, returnsSequences ? outputs : lastStep(of: outputs))
    }

    /// The hidden states at every step (`[batch, time, hiddenSize]`) and the
    /// last one (`[batch, hiddenSize]`; PyTorch's `output, h_n`).
    /// - Precondition: input `[batch, time >= 1, inputSize]`; an initial state,
    ///   if given, `[batch, hiddenSize]`.
    public func run(_ input: Tensor, initialState: Tensor? = nil) -> (outputs: Tensor, finalState: Tensor) {
        let outputs = recurrence(input, initialState: initialState)
        return (outputs, lastStep(of: outputs))
    }

    private func lastStep(of outputs: Tensor) -> Tensor {
        let steps = outputs.shape[1]
        return outputs.slicing((steps - 1)..<steps, alongAxis: 1).reshaped(to: [outputs.shape[0], hiddenSize])
    }

    private func recurrence(_ input: Tensor, initialState: Tensor?) -> Tensor {
        checkShapes(input, initialState)
        return fusedRecurrence(
            .gru, projected: linear(input, weight: weightInputHidden.value, bias: biasInputHidden?.value),
            recurrentWeight: weightHiddenHidden.value, initialHidden: initialState, initialCell: nil,
            recurrentBias: biasHiddenHidden?.value, appendingFinalCell: false)
    }

    private func checkShapes(_ input: Tensor, _ initialState: Tensor?) {
        checkRecurrentShapes("GRU", inputSize: inputSize, hiddenSize: hiddenSize, input, initialState)
    }

    /// ``run(_:initialState:)`` composed of tensor operations step by step,
    /// each its own tape record: the unfused reference the fused recurrence is
    /// tested and benchmarked against.
    @_spi(Benchmarks)
    public func unfusedRun(_ input: Tensor, initialState: Tensor? = nil) -> (outputs: Tensor, finalState: Tensor) {
        checkShapes(input, initialState)
        let result = composedRecurrence(
            .gru, projected: linear(input, weight: weightInputHidden.value, bias: biasInputHidden?.value),
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
