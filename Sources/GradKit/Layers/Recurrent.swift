// GradKit — the recurrences behind RNN, LSTM and GRU: one recorded operation over every step. SPDX-License-Identifier: MIT

/// The cells ``fusedRecurrence(_:projected:recurrentWeight:initialHidden:initialCell:recurrentBias:appendingFinalCell:)`` runs
/// (public to `gradkit-bench` only).
@_spi(Benchmarks)
public enum RecurrentCell: Int, Sendable {
    /// Hochreiter & Schmidhuber's long short-term memory, PyTorch's gate order i, f, g, o.
    case lstm
    /// Cho et al.'s gated recurrent unit, PyTorch's gate order r, z, n.
    case gru
    /// Elman's cell with tanh: h_t = tanh(x_t + h_{t-1} W_hhᵀ + b_hh).
    case elmanTanh
    /// Elman's cell with ReLU: h_t = relu(x_t + h_{t-1} W_hhᵀ + b_hh).
    case elmanReLU

    /// Blocks of `hidden` preactivations per step: 4 (LSTM), 3 (GRU) or 1.
    var gateCount: Int {
        switch self {
        case .lstm: 4
        case .gru: 3
        case .elmanTanh, .elmanReLU: 1
        }
    }

    /// Values per unit a forward step saves for its backward step: i, f, g, o,
    /// tanh c (LSTM) or r, z, n, h_n (GRU), see `ck_recurrent.h`; none for an
    /// Elman cell, whose backward reads h_t from the states.
    var savedCount: Int {
        switch self {
        case .lstm: 5
        case .gru: 4
        case .elmanTanh, .elmanReLU: 0
        }
    }

    /// States carried from step to step: h and c, or h.
    var stateCount: Int { self == .lstm ? 2 : 1 }

    /// Whether this is one of the gated cells (LSTM, GRU).
    var isGated: Bool { self == .lstm || self == .gru }

    /// The Elman cell's nonlinearity (nil for the gated cells).
    var elmanActivation: UnaryOperation? {
        switch self {
        case .elmanTanh: .tanh
        case .elmanReLU: .relu
        case .lstm, .gru: nil
        }
    }

    var name: String {
        switch self {
        case .lstm: "LSTM"
        case .gru: "GRU"
        case .elmanTanh, .elmanReLU: "RNN"
        }
    }
}

/// PyTorch's parameters of a single-layer recurrent layer with `gateCount`
/// gate blocks: `weight_ih_l0` `[gates·hidden, input]`, `weight_hh_l0`
/// `[gates·hidden, hidden]`, `bias_ih_l0` and `bias_hh_l0` `[gates·hidden]`,
/// all U(-1/√hidden, 1/√hidden) and drawn in that order (PyTorch's), unless an
/// initializer is given for a weight.
func recurrentParameters(
    inputSize: Int, hiddenSize: Int, gateCount: Int, bias: Bool, initializer: Initializer?,
    recurrentInitializer: Initializer?
) -> (inputWeight: Parameter, hiddenWeight: Parameter, inputBias: Parameter?, hiddenBias: Parameter?) {
    let bound = 1 / Float(hiddenSize).squareRoot()
    let rows = gateCount * hiddenSize
    func draw(_ shape: [Int], _ chosen: Initializer?, _ generator: inout SeededGenerator) -> Tensor {
        if let chosen { return chosen.tensor(shape: shape, using: &generator) }
        return Tensor(randomUniform: shape, lowerBound: -bound, upperBound: bound, using: &generator)
    }
    let (wih, whh, bih, bhh) = SharedRandom.with { g in
        (draw([rows, inputSize], initializer, &g), draw([rows, hiddenSize], recurrentInitializer, &g),
         bias ? draw([rows], nil, &g) : nil, bias ? draw([rows], nil, &g) : nil)
    }
    return (
        Parameter(wih, name: "weight_ih_l0"), Parameter(whh, name: "weight_hh_l0"),
        bih.map { Parameter($0, name: "bias_ih_l0") }, bhh.map { Parameter($0, name: "bias_hh_l0") }
    )
}

/// Traps unless `input` is `[batch, time >= 1, inputSize]` and `initialState`,
/// if given, `[batch, hiddenSize]`: the shape check of the layers with one
/// state (RNN, GRU), its messages naming `layer`.
func checkRecurrentShapes(_ layer: String, inputSize: Int, hiddenSize: Int, _ input: Tensor, _ initialState: Tensor?) {
    precondition(
        input.rank == 3 && input.shape[2] == inputSize && input.shape[1] >= 1,
        "\(layer)(inputSize: \(inputSize), hiddenSize: \(hiddenSize)): expected input [batch, time >= 1, \(inputSize)], got \(input.shape)")
    if let initialState {
        precondition(
            initialState.shape == [input.shape[0], hiddenSize],
            "\(layer): initial state \(initialState.shape), expected [\(input.shape[0]), \(hiddenSize)]")
    }
}

/// Runs `cell` over every step of a sequence as one operation on the tape:
/// ```
/// for t in 0 ..< time:
///     gates_t = projected[:, t] + h_{t-1} W_hhᵀ + b_hh        (one GEMM per step)
///     h_t (and c_t) = cell(gates_t, h_{t-1} (and c_{t-1}))    (one fused kernel per step)
/// ```
/// (An Elman cell adds the two products, then applies its nonlinearity: two
/// elementwise kernels, rounding each operation as the composed layer does.)
/// `projected` is the input projection of every step at once, `x W_ihᵀ + b_ih`
/// `[batch, time, gates·hidden]`; the initial states default to zeros.
///
/// Returns the hidden states `[batch, time, hidden]`; with `appendingFinalCell`
/// (LSTM only) `[batch, time + 1, hidden]`, whose extra last step is c_T.
///
/// Backward is back-propagation through time in one pullback: the fused
/// backward kernel per step, walking back, with one GEMM per step for the
/// gradient reaching h_{t-1}; then W_hh's gradient as one GEMM over all steps
/// and b_hh's as one column sum. A tape record has three inputs, so the small
/// ones (initial states, b_hh) travel as one: the tensor itself when there is
/// one, else their flattened concatenation (whose pullback splits the gradient).
/// - Precondition: shapes as above (the layers check them).
func fusedRecurrence(
    _ cell: RecurrentCell, projected: Tensor, recurrentWeight: Tensor, initialHidden: Tensor?, initialCell: Tensor?,
    recurrentBias: Tensor?, appendingFinalCell: Bool
) -> Tensor {
    let batch = projected.shape[0], steps = projected.shape[1], gates = projected.shape[2]
    let hidden = recurrentWeight.shape[1]
    let plane = batch * hidden
    let extras = [initialHidden, initialCell, recurrentBias].compactMap { $0 }
    let packed: Tensor?
    let recording = ([projected, recurrentWeight] + extras).contains { Tape.recording($0, nil, nil) != nil }
    if recording, extras.count > 1 {
        packed = Tensor(concatenating: extras.map { $0.reshaped(to: [$0.scalarCount]) })
    } else {
        packed = extras.first
    }
    // Time-major history: h_0 ... h_T, then (LSTM) c_0 ... c_T, each [batch, hidden],
    // so the states feeding steps 0 ..< T are one [T·batch, hidden] matrix for W_hh's gradient.
    let history = Tensor(uninitializedShape: [cell.stateCount, steps + 1, batch, hidden])
    // Saved values of every step when recording, else one step's, reused.
    let activations = Tensor(uninitializedShape: [recording ? steps : 1, batch, cell.savedCount * hidden])
    let hiddenGates = Tensor(uninitializedShape: [batch, gates])
    let outputSteps = steps + (appendingFinalCell ? 1 : 0)
    let y = Tensor(uninitializedShape: [batch, outputSteps, hidden])
    defer { withExtendedLifetime(projected) {} }
    withExtendedLifetime((recurrentWeight, initialHidden, initialCell, recurrentBias, hiddenGates)) {
        let states = history.mutablePointer, cells = states + (steps + 1) * plane
        for (initial, destination) in [(initialHidden, states), (initialCell, cells)].prefix(cell.stateCount) {
            if let initial { destination.update(from: initial.pointer, count: plane) } else {
                Kernels.fill(count: plane, output: destination, value: 0)
            }
        }
        // x_t (a row of the projection every `steps · gates`) + the recurrent product, for an Elman cell.
        let elmanLayout = cell.elmanActivation.map { _ in
            StridedLayout(shape: [batch, hidden], strides: [[steps * gates, 1], [gates, 1]])
        }
        for t in 0..<steps {
            let previous = states + t * plane
            Kernels.gemm(
                transposeA: false, transposeB: true, m: batch, n: gates, k: hidden, alpha: 1, a: previous, lda: hidden,
                b: recurrentWeight.pointer, ldb: hidden, beta: 0, c: hiddenGates.mutablePointer, ldc: gates,
                bias: recurrentBias?.pointer)
            let saved = activations.mutablePointer + (recording ? t : 0) * batch * cell.savedCount * hidden
            switch cell {
            case .lstm:
                Kernels.lstmCellForward(
                    batch: batch, hidden: hidden, hiddenOutput: previous + plane, cellOutput: cells + (t + 1) * plane,
                    saved: saved, inputGates: projected.pointer + t * gates, inputStride: steps * gates,
                    hiddenGates: hiddenGates.pointer, previousCell: cells + t * plane)
            case .gru:
                Kernels.gruCellForward(
                    batch: batch, hidden: hidden, hiddenOutput: previous + plane, saved: saved,
                    inputGates: projected.pointer + t * gates, inputStride: steps * gates,
                    hiddenGates: hiddenGates.pointer, previousHidden: previous)
            case .elmanTanh, .elmanReLU:
                Kernels.binary(
                    .add, layout: elmanLayout!, output: previous + plane, lhs: projected.pointer + t * gates,
                    rhs: hiddenGates.pointer)
                Kernels.unary(cell.elmanActivation!, count: plane, output: previous + plane, input: previous + plane)
            }
        }
        for b in 0..<batch {
            let row = y.mutablePointer + b * outputSteps * hidden
            for t in 0..<steps { (row + t * hidden).update(from: states + (t + 1) * plane + b * hidden, count: hidden) }
            if appendingFinalCell {
                (row + steps * hidden).update(from: cells + steps * plane + b * hidden, count: hidden)
            }
        }
    }
    let configure: (inout TapeRecord) -> Void = { record in
        record.save(history, activations, recurrentWeight)
        record.integer = cell.rawValue
        record.indices = [initialHidden, initialCell, recurrentBias].map { $0 == nil ? 0 : 1 } + [appendingFinalCell ? 1 : 0]
    }
    if let packed {
        return Tensor.record(y, projected, recurrentWeight, packed, op: cell.name, pullback: fusedRecurrencePullback, configure: configure)
    }
    return Tensor.record(y, projected, recurrentWeight, op: cell.name, pullback: fusedRecurrencePullback, configure: configure)
}

/// Back-propagation through time for ``fusedRecurrence(_:projected:recurrentWeight:initialHidden:initialCell:recurrentBias:appendingFinalCell:)``.
private let fusedRecurrencePullback: Pullback = { record, gradient, sink in
    let cell = RecurrentCell(rawValue: record.integer)!
    let history = record.saved0!, activations = record.saved1!, weight = record.saved2!
    let hasHidden = record.indices[0] == 1, hasCell = record.indices[1] == 1, hasBias = record.indices[2] == 1
    let appended = record.indices[3] == 1
    let steps = activations.shape[0], batch = activations.shape[1]
    let gates = weight.shape[0], hidden = weight.shape[1], plane = batch * hidden
    let outputSteps = gradient.shape[1]
    let savedStride = batch * cell.savedCount * hidden
    let needsInitialState = sink.isNeeded(2) && (hasHidden || hasCell)
    let projectedGradient = Tensor(uninitializedShape: [batch, steps, gates])
    // The gates' gradients as the recurrent product saw them, time-major [T, batch, gates].
    let hiddenGatesGradient = Tensor(uninitializedShape: [steps, batch, gates])
    let hiddenGradient = Tensor(zeros: [batch, hidden]) // of h_t from steps after t
    let cellGradient = Tensor(zeros: [batch, hidden]) // of c_t from steps after t (LSTM)
    withExtendedLifetime((history, activations, weight, gradient, hiddenGradient, cellGradient)) {
        if appended {
            for b in 0..<batch {
                (cellGradient.mutablePointer + b * hidden).update(
                    from: gradient.pointer + (b * outputSteps + steps) * hidden, count: hidden)
            }
        }
        let states = history.pointer, cells = states + (steps + 1) * plane
        // The output's gradient at step t (a row every `outputSteps · hidden`) + the one from step t+1, for an Elman cell.
        let elmanLayout = cell.elmanActivation.map { _ in
            StridedLayout(shape: [batch, hidden], strides: [[outputSteps * hidden, 1], [hidden, 1]])
        }
        for t in (0..<steps).reversed() {
            let gatesGradient = hiddenGatesGradient.mutablePointer + t * batch * gates
            let saved = activations.pointer + t * savedStride
            switch cell {
            case .lstm:
                Kernels.lstmCellBackward(
                    batch: batch, hidden: hidden, inputGatesGradient: projectedGradient.mutablePointer + t * gates,
                    inputGradientStride: steps * gates, hiddenGatesGradient: gatesGradient,
                    cellGradient: cellGradient.mutablePointer, outputGradient: gradient.pointer + t * hidden,
                    outputGradientStride: outputSteps * hidden, hiddenGradient: hiddenGradient.pointer, saved: saved,
                    previousCell: cells + t * plane)
            case .gru:
                Kernels.gruCellBackward(
                    batch: batch, hidden: hidden, inputGatesGradient: projectedGradient.mutablePointer + t * gates,
                    inputGradientStride: steps * gates, hiddenGatesGradient: gatesGradient,
                    hiddenGradient: hiddenGradient.mutablePointer, outputGradient: gradient.pointer + t * hidden,
                    outputGradientStride: outputSteps * hidden, saved: saved, previousHidden: states + t * plane)
            case .elmanTanh, .elmanReLU:
                // da_t = act′(dy) with dy = (gradient of h_t from the output) + (from step t+1), read from h_t.
                Kernels.binary(
                    .add, layout: elmanLayout!, output: gatesGradient, lhs: gradient.pointer + t * hidden,
                    rhs: hiddenGradient.pointer)
                Kernels.unaryBackward(
                    cell.elmanActivation!, count: plane, inputGradient: gatesGradient, outputGradient: gatesGradient,
                    input: nil, output: states + (t + 1) * plane)
                for b in 0..<batch {
                    (projectedGradient.mutablePointer + (b * steps + t) * gates).update(
                        from: gatesGradient + b * gates, count: gates)
                }
            }
            guard t > 0 || needsInitialState else { continue }
            // dh_{t-1} = dgates_t W_hh (added to the GRU's direct path through its update gate).
            Kernels.gemm(
                transposeA: false, transposeB: false, m: batch, n: hidden, k: gates, alpha: 1, a: gatesGradient,
                lda: gates, b: weight.pointer, ldb: hidden, beta: cell == .gru ? 1 : 0,
                c: hiddenGradient.mutablePointer, ldc: hidden)
        }
        sink.accumulate(0, projectedGradient)
        // dW_hh = Σ_t dgates_tᵀ h_{t-1}: one [gates, T·batch] x [T·batch, hidden] product.
        sink.accumulate(1, shape: weight.shape) { destination, beta in
            Kernels.gemm(
                transposeA: true, transposeB: false, m: gates, n: hidden, k: steps * batch, alpha: 1,
                a: hiddenGatesGradient.pointer, lda: gates, b: states, ldb: hidden, beta: beta, c: destination,
                ldc: hidden)
        }
        guard sink.isNeeded(2) else { return }
        var pieces: [Tensor] = []
        if hasHidden { pieces.append(hiddenGradient) }
        if hasCell { pieces.append(cellGradient) }
        if hasBias {
            let biasGradient = Tensor(uninitializedShape: [gates])
            Kernels.reduce(
                .sum, outer: 1, extent: steps * batch, inner: gates, output: biasGradient.mutablePointer,
                input: hiddenGatesGradient.pointer)
            pieces.append(biasGradient)
        }
        if pieces.count == 1 {
            sink.accumulate(2, pieces[0])
        } else {
            sink.accumulate(2, Tensor(concatenating: pieces.map { $0.reshaped(to: [$0.scalarCount]) }))
        }
    }
}

// ------------------------------------------------------------------ the unfused composition

/// One LSTM step's gate arithmetic written with tensor operations, each its
/// own tape record: what the fused kernels replace, kept as the reference the
/// tests and the benchmark compare them with. `gates` is `[batch, 4·hidden]`.
func composedLSTMCell(gates: Tensor, previousCell: Tensor, hiddenSize h: Int) -> (hidden: Tensor, cell: Tensor) {
    let i = gates.slicing(0..<h, alongAxis: 1).sigmoid()
    let f = gates.slicing(h..<(2 * h), alongAxis: 1).sigmoid()
    let g = gates.slicing((2 * h)..<(3 * h), alongAxis: 1).tanh()
    let o = gates.slicing((3 * h)..<(4 * h), alongAxis: 1).sigmoid()
    let cell = f * previousCell + i * g
    return (o * cell.tanh(), cell)
}

/// One GRU step's gate arithmetic with tensor operations (see
/// ``composedLSTMCell(gates:previousCell:hiddenSize:)``): `inputGates` and
/// `hiddenGates` are `[batch, 3·hidden]`, the input and recurrent projections.
func composedGRUCell(inputGates x: Tensor, hiddenGates r: Tensor, previousHidden: Tensor, hiddenSize h: Int) -> Tensor {
    func block(_ t: Tensor, _ k: Int) -> Tensor { t.slicing((k * h)..<((k + 1) * h), alongAxis: 1) }
    let reset = (block(x, 0) + block(r, 0)).sigmoid()
    let update = (block(x, 1) + block(r, 1)).sigmoid()
    let candidate = (block(x, 2) + reset * block(r, 2)).tanh()
    return (previousHidden - candidate) * update + candidate
}

/// The same recurrence as ``fusedRecurrence(_:projected:recurrentWeight:initialHidden:initialCell:recurrentBias:appendingFinalCell:)``
/// composed of tensor operations step by step: the per-step recurrent
/// `linear`, slices, and ``composedLSTMCell(gates:previousCell:hiddenSize:)``,
/// ``composedGRUCell(inputGates:hiddenGates:previousHidden:hiddenSize:)`` or
/// the Elman cell's add and nonlinearity.
/// Returns every step's hidden state `[batch, time, hidden]` and the final
/// states.
func composedRecurrence(
    _ cell: RecurrentCell, projected: Tensor, recurrentWeight: Tensor, initialHidden: Tensor?, initialCell: Tensor?,
    recurrentBias: Tensor?
) -> (outputs: Tensor, hidden: Tensor, cell: Tensor?) {
    let batch = projected.shape[0], steps = projected.shape[1], gates = projected.shape[2]
    let hiddenSize = recurrentWeight.shape[1]
    var h = initialHidden ?? Tensor(zeros: [batch, hiddenSize])
    var c = cell == .lstm ? initialCell ?? Tensor(zeros: [batch, hiddenSize]) : nil
    var outputs: [Tensor] = []
    for t in 0..<steps {
        let x = projected.slicing(t..<(t + 1), alongAxis: 1).reshaped(to: [batch, gates])
        let r = linear(h, weight: recurrentWeight, bias: recurrentBias)
        switch cell {
        case .lstm: (h, c) = composedLSTMCell(gates: x + r, previousCell: c!, hiddenSize: hiddenSize)
        case .gru: h = composedGRUCell(inputGates: x, hiddenGates: r, previousHidden: h, hiddenSize: hiddenSize)
        case .elmanTanh: h = (x + r).tanh()
        case .elmanReLU: h = (x + r).relu()
        }
        outputs.append(h)
    }
    return (Tensor(stacking: outputs, alongAxis: 1), h, c)
}

// ------------------------------------------------------------------ benchmark support

/// One time step of a gated cell's elementwise arithmetic, forward and
/// backward, two ways: the fused kernels on preallocated buffers (what
/// ``LSTM`` and ``GRU`` run between their GEMMs), and the same arithmetic as
/// tensor operations recorded on the tape and back-propagated (the unfused
/// composition). For `gradkit-bench`; not part of the public API.
@_spi(Benchmarks)
public final class GatedStepBenchmark {
    private let cell: RecurrentCell
    private let batch: Int, hidden: Int
    private let inputGates: Tensor, hiddenGates: Tensor, previous: Tensor
    private let outputGradient: Tensor, cellGradientIn: Tensor
    private let hiddenOutput: Tensor, cellOutput: Tensor, saved: Tensor
    private let inputGatesGradient: Tensor, hiddenGatesGradient: Tensor, stateGradient: Tensor

    /// Random operands for `batch` rows of `hidden` units.
    /// - Precondition: `cell` is ``RecurrentCell/lstm`` or ``RecurrentCell/gru``.
    public init(_ cell: RecurrentCell, batch: Int, hidden: Int) {
        precondition(cell.isGated, "GatedStepBenchmark: LSTM and GRU only, got \(cell)")
        self.cell = cell
        self.batch = batch
        self.hidden = hidden
        let gates = self.cell.gateCount * hidden
        var generator = SeededGenerator(seed: 7)
        func uniform(_ shape: [Int], _ bound: Float) -> Tensor {
            Tensor(randomUniform: shape, lowerBound: -bound, upperBound: bound, using: &generator)
        }
        inputGates = uniform([batch, gates], 2)
        hiddenGates = uniform([batch, gates], 2)
        previous = uniform([batch, hidden], 1)
        outputGradient = uniform([batch, hidden], 1)
        cellGradientIn = uniform([batch, hidden], 1)
        hiddenOutput = Tensor(zeros: [batch, hidden])
        cellOutput = Tensor(zeros: [batch, hidden])
        saved = Tensor(zeros: [batch, self.cell.savedCount * hidden])
        inputGatesGradient = Tensor(zeros: [batch, gates])
        hiddenGatesGradient = Tensor(zeros: [batch, gates])
        stateGradient = Tensor(zeros: [batch, hidden])
    }

    /// The fused forward and backward kernels; returns h and the input gates' gradient.
    @discardableResult
    public func fused() -> (hidden: [Float], inputGatesGradient: [Float]) {
        let zeros = Tensor(zeros: [batch, hidden])
        withExtendedLifetime((self, zeros)) {
            let gates = cell.gateCount * hidden
            stateGradient.mutablePointer.update(from: cell == .lstm ? cellGradientIn.pointer : zeros.pointer, count: batch * hidden)
            switch cell {
            case .lstm:
                Kernels.lstmCellForward(
                    batch: batch, hidden: hidden, hiddenOutput: hiddenOutput.mutablePointer, cellOutput: cellOutput.mutablePointer,
                    saved: saved.mutablePointer, inputGates: inputGates.pointer, inputStride: gates,
                    hiddenGates: hiddenGates.pointer, previousCell: previous.pointer)
                Kernels.lstmCellBackward(
                    batch: batch, hidden: hidden, inputGatesGradient: inputGatesGradient.mutablePointer, inputGradientStride: gates,
                    hiddenGatesGradient: hiddenGatesGradient.mutablePointer, cellGradient: stateGradient.mutablePointer,
                    outputGradient: outputGradient.pointer, outputGradientStride: hidden, hiddenGradient: zeros.pointer,
                    saved: saved.pointer, previousCell: previous.pointer)
            case .gru:
                Kernels.gruCellForward(
                    batch: batch, hidden: hidden, hiddenOutput: hiddenOutput.mutablePointer, saved: saved.mutablePointer,
                    inputGates: inputGates.pointer, inputStride: gates, hiddenGates: hiddenGates.pointer,
                    previousHidden: previous.pointer)
                Kernels.gruCellBackward(
                    batch: batch, hidden: hidden, inputGatesGradient: inputGatesGradient.mutablePointer, inputGradientStride: gates,
                    hiddenGatesGradient: hiddenGatesGradient.mutablePointer, hiddenGradient: stateGradient.mutablePointer,
                    outputGradient: outputGradient.pointer, outputGradientStride: hidden, saved: saved.pointer,
                    previousHidden: previous.pointer)
            case .elmanTanh, .elmanReLU: preconditionFailure("GatedStepBenchmark: gated cells only")
            }
        }
        return (hiddenOutput.scalars, inputGatesGradient.scalars)
    }

    /// The same step as tensor operations: recorded, then back-propagated
    /// with the same output gradients; returns h and the input gates' gradient.
    @discardableResult
    public func composed() -> (hidden: [Float], inputGatesGradient: [Float]) {
        let x = Parameter(inputGates), r = Parameter(hiddenGates), p = Parameter(previous)
        switch cell {
        case .lstm:
            let (h, c) = composedLSTMCell(gates: x.value + r.value, previousCell: p.value, hiddenSize: hidden)
            Tensor(concatenating: [h, c], alongAxis: 1).backward(seed: Tensor(concatenating: [outputGradient, cellGradientIn], alongAxis: 1))
            return (h.scalars, x.gradient!.scalars)
        case .gru:
            let h = composedGRUCell(inputGates: x.value, hiddenGates: r.value, previousHidden: p.value, hiddenSize: hidden)
            h.backward(seed: outputGradient)
            return (h.scalars, x.gradient!.scalars)
        case .elmanTanh, .elmanReLU: preconditionFailure("GatedStepBenchmark: gated cells only")
        }
    }
}
