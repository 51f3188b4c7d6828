// RNN, LSTM and GRU: PyTorch's goldens (LSTM, GRU; the RNN's are in LayerTests), state dictionaries, the fused recurrence against its unfused composition,
// gradient checks, and the gradient monitor.
import Testing

@_spi(Benchmarks) @testable import GradKit

/// The goldens' tolerance: |actual - expected| <= 1e-4 max(1, |expected|).
private let goldenTolerance: Float = 1e-4

/// The largest error relative to max(1, |expected|), lengths checked first.
private func relativeError(_ actual: [Float], _ expected: [Float], _ context: String, sourceLocation: SourceLocation = #_sourceLocation) -> Float {
    #expect(actual.count == expected.count, "length \(actual.count) vs \(expected.count) \(context)", sourceLocation: sourceLocation)
    guard actual.count == expected.count else { return .infinity }
    return zip(actual, expected).reduce(0) { Swift.max($0, Swift.abs($1.0 - $1.1) / Swift.max(1, Swift.abs($1.1))) }
}

/// A layer of either kind behind one interface, for the tests that treat both alike.
private protocol RecurrentLayerUnderTest: Layer {
    var hiddenSize: Int { get }
    var returnsSequences: Bool { get set }
    /// Outputs, then the final states (h, and c for the LSTM), from optional initial states.
    func runStates(_ input: Tensor, _ initial: [Tensor]?, fused: Bool) -> (outputs: Tensor, states: [Tensor])
}

extension LSTM: RecurrentLayerUnderTest {
    fileprivate func runStates(_ input: Tensor, _ initial: [Tensor]?, fused: Bool) -> (outputs: Tensor, states: [Tensor]) {
        let state = initial.map { State(hidden: $0[0], cell: $0[1]) }
        let (outputs, final) = fused ? run(input, initialState: state) : unfusedRun(input, initialState: state)
        return (outputs, [final.hidden, final.cell])
    }
}

extension RNN: RecurrentLayerUnderTest {
    fileprivate func runStates(_ input: Tensor, _ initial: [Tensor]?, fused: Bool) -> (outputs: Tensor, states: [Tensor]) {
        let (outputs, final) = fused ? run(input, initialState: initial?[0]) : unfusedRun(input, initialState: initial?[0])
        return (outputs, [final])
    }
}

extension GRU: RecurrentLayerUnderTest {
    fileprivate func runStates(_ input: Tensor, _ initial: [Tensor]?, fused: Bool) -> (outputs: Tensor, states: [Tensor]) {
        let (outputs, final) = fused ? run(input, initialState: initial?[0]) : unfusedRun(input, initialState: initial?[0])
        return (outputs, [final])
    }
}

private func makeLayer(_ cell: RecurrentCell, inputSize: Int, hiddenSize: Int, bias: Bool = true) -> any RecurrentLayerUnderTest {
    switch cell {
    case .lstm: LSTM(inputSize: inputSize, hiddenSize: hiddenSize, bias: bias)
    case .gru: GRU(inputSize: inputSize, hiddenSize: hiddenSize, bias: bias)
    case .elmanTanh: RNN(inputSize: inputSize, hiddenSize: hiddenSize, nonlinearity: .tanh, bias: bias)
    case .elmanReLU: RNN(inputSize: inputSize, hiddenSize: hiddenSize, nonlinearity: .relu, bias: bias)
    }
}

/// Every cell the fused recurrence runs.
private let allCells: [RecurrentCell] = [.lstm, .gru, .elmanTanh, .elmanReLU]

private func goldens(_ cell: RecurrentCell) -> [RecurrentGoldens.Case] { cell == .lstm ? RecurrentGoldens.lstm : RecurrentGoldens.gru }

/// The golden case's state dictionary as tensors of the layer's shapes.
private func stateDictionary(_ golden: RecurrentGoldens.Case, gates: Int) -> [String: Tensor] {
    let rows = gates * golden.hiddenSize
    var result: [String: Tensor] = [:]
    for (name, values) in golden.parameters {
        let shape = name.hasPrefix("weight_ih") ? [rows, golden.inputSize] : name.hasPrefix("weight_hh") ? [rows, golden.hiddenSize] : [rows]
        result[name] = Tensor(shape: shape, scalars: values)
    }
    return result
}

@Suite("Recurrent layers: RNN, LSTM and GRU")
struct RecurrentTests {
    @Test("outputs, final states and every gradient equal PyTorch's within 1e-4", arguments: [RecurrentCell.lstm, .gru], KernelBackend.allCases)
    func goldensMatch(cell: RecurrentCell, backend: KernelBackend) throws {
        var worst: Float = 0
        try Kernels.withBackend(backend) {
            for golden in goldens(cell) {
                let layer = makeLayer(cell, inputSize: golden.inputSize, hiddenSize: golden.hiddenSize, bias: golden.bias)
                try layer.loadStateDictionary(stateDictionary(golden, gates: cell.gateCount))
                let plane = [golden.batch, golden.hiddenSize]
                let input = Parameter(Tensor(shape: [golden.batch, golden.steps, golden.inputSize], scalars: golden.input), name: "input")
                let initial = golden.initialHidden.map { h in
                    [Parameter(Tensor(shape: plane, scalars: h), name: "initial_hidden")]
                        + (golden.initialCell.map { [Parameter(Tensor(shape: plane, scalars: $0), name: "initial_cell")] } ?? [])
                }
                let (outputs, states) = layer.runStates(input.value, initial?.map(\.value), fused: true)
                var errors = [
                    relativeError(outputs.scalars, golden.outputs, "\(golden.name) outputs"),
                    relativeError(states[0].scalars, golden.finalHidden, "\(golden.name) h_n"),
                ]
                var loss = (outputs * Tensor(shape: outputs.shape, scalars: golden.outputWeights)).sum()
                    + (states[0] * Tensor(shape: plane, scalars: golden.finalHiddenWeights)).sum()
                if cell == .lstm {
                    errors.append(relativeError(states[1].scalars, golden.finalCell!, "\(golden.name) c_n"))
                    loss = loss + (states[1] * Tensor(shape: plane, scalars: golden.finalCellWeights!)).sum()
                }
                loss.backward()
                let differentiated = layer.parameters + [input] + (initial ?? [])
                #expect(Set(differentiated.map(\.name)) == Set(golden.gradients.keys), "\(golden.name): gradients compared")
                for p in differentiated {
                    errors.append(relativeError(p.gradient?.scalars ?? [], golden.gradients[p.name] ?? [], "\(golden.name) d\(p.name)"))
                }
                let error = errors.max()!
                #expect(error <= goldenTolerance, "\(golden.name) \(backend): error \(error)")
                worst = Swift.max(worst, error)
            }
        }
        print("RecurrentTests: \(cell) \(backend) largest error against PyTorch, relative to max(1, |value|): \(worst)")
    }

    @Test("a PyTorch state dictionary loads from safetensors by name and gives PyTorch's outputs", arguments: [RecurrentCell.lstm, .gru])
    func safetensorsStateDictionary(cell: RecurrentCell) throws {
        let golden = goldens(cell)[1]
        let (tensors, _) = try SafeTensors.read(fixturePath("safetensors/torch_\(cell).safetensors"))
        let layer = makeLayer(cell, inputSize: golden.inputSize, hiddenSize: golden.hiddenSize)
        try layer.loadStateDictionary(tensors)
        for p in layer.parameters { #expect(p.value.scalars == golden.parameters[p.name], "\(p.name)") }
        let plane = [golden.batch, golden.hiddenSize]
        let initial = [golden.initialHidden, golden.initialCell].compactMap { $0 }.map { Tensor(shape: plane, scalars: $0) }
        let (outputs, _) = withoutGradients {
            layer.runStates(Tensor(shape: [golden.batch, golden.steps, golden.inputSize], scalars: golden.input), initial, fused: true)
        }
        #expect(relativeError(outputs.scalars, golden.outputs, "outputs") <= goldenTolerance)
        // A state dictionary of the other kind does not load, and changes nothing.
        let other = makeLayer(cell == .lstm ? .gru : .lstm, inputSize: golden.inputSize, hiddenSize: golden.hiddenSize)
        #expect(throws: LayerStateError.self) { try other.loadStateDictionary(tensors) }
    }

    @Test("the fused recurrence equals its unfused composition: values and gradients", arguments: allCells, KernelBackend.allCases)
    func fusedMatchesComposition(cell: RecurrentCell, backend: KernelBackend) {
        Kernels.withBackend(backend) {
            for (index, (batch, steps, hidden, withState)) in [(1, 1, 1, false), (3, 6, 5, true), (2, 9, 17, true), (4, 3, 33, false)].enumerated() {
                let layer = withManualSeed(UInt64(index)) { makeLayer(cell, inputSize: 3, hiddenSize: hidden) }
                let input = Parameter(randomTensor([batch, steps, 3], seed: UInt64(index) + 50, in: -2...2), name: "input")
                let initial = withState
                    ? (0..<cell.stateCount).map { Parameter(randomTensor([batch, hidden], seed: UInt64(index * 7 + $0), in: -1...1), name: "state \($0)") }
                    : []
                let weights = randomTensor([batch, steps, hidden], seed: UInt64(index) + 90)
                func gradients(fused: Bool) -> (values: [[Float]], gradients: [[Float]]) {
                    let differentiated = layer.parameters + [input] + initial
                    for p in differentiated { p.gradient = nil }
                    let (outputs, states) = layer.runStates(input.value, withState ? initial.map(\.value) : nil, fused: fused)
                    let loss = (outputs * weights).sum() + states.reduce(Tensor(0)) { $0 + $1.squared().sum() }
                    loss.backward()
                    return ([outputs.scalars] + states.map(\.scalars), differentiated.map { $0.gradient?.scalars ?? [] })
                }
                let fused = gradients(fused: true), composed = gradients(fused: false)
                let context = "\(cell) batch \(batch) steps \(steps) hidden \(hidden) \(backend)"
                for (a, b) in zip(fused.values, composed.values) {
                    if backend == .swift {
                        // Same operations in the same order, sigmoid and tanh from the same libm calls.
                        expectIdentical(a, b, "values " + context)
                    } else {
                        // The same approximations; only the GEMM's blocking may differ.
                        expectClose(a, b, relative: 1e-5, absolute: 1e-6, "values " + context)
                    }
                }
                // The pullbacks group the same products differently: a few ulp per step.
                for (a, b) in zip(fused.gradients, composed.gradients) {
                    expectClose(a, b, relative: 1e-4, absolute: 1e-5, "gradients " + context)
                }
            }
        }
    }

    @Test("gradient checks w.r.t. input, initial states and every parameter", arguments: allCells, KernelBackend.allCases)
    func gradientChecks(cell: RecurrentCell, backend: KernelBackend) {
        Kernels.withBackend(backend) {
            for (index, (bias, withState)) in [(true, true), (false, false), (true, false)].enumerated() {
                let layer = withManualSeed(UInt64(30 + index)) { makeLayer(cell, inputSize: 3, hiddenSize: 2, bias: bias) }
                let input = Parameter(randomTensor([2, 3, 3], seed: UInt64(index) + 1, in: -1.5...1.5), name: "input")
                let initial = withState
                    ? (0..<cell.stateCount).map { Parameter(randomTensor([2, 2], seed: UInt64(index * 5 + $0) + 9, in: -1...1), name: "state \($0)") }
                    : []
                let result = gradientCheck(layer.parameters + [input] + initial) {
                    let (outputs, states) = layer.runStates(input.value, withState ? initial.map(\.value) : nil, fused: true)
                    return Tensor(concatenating: [outputs.reshaped(to: [-1])] + states.map { $0.reshaped(to: [-1]) })
                }
                #expect(result.passed, "\(cell) bias \(bias) initial state \(withState) \(backend): \(result)")
                #expect(result.checkedCount > 0)
                // Calling the layer: every step, or the last one only.
                for sequences in [true, false] {
                    layer.returnsSequences = sequences
                    let called = gradientCheck(layer.parameters + [input]) { layer(input.value) }
                    #expect(called.passed, "\(cell) returnsSequences \(sequences) \(backend): \(called)")
                }
            }
        }
    }

    @Test("a layer's output without gradients equals the recorded one, and records nothing", arguments: allCells)
    func inference(cell: RecurrentCell) {
        let layer = withManualSeed(3) { makeLayer(cell, inputSize: 4, hiddenSize: 6) }
        let x = randomTensor([2, 5, 4], seed: 8)
        let recorded = layer(x)
        let untracked = withoutGradients { layer(x) }
        #expect(recorded.requiresGradient && !untracked.requiresGradient)
        expectIdentical(untracked.scalars, recorded.scalars)
        layer.returnsSequences = false
        let last = layer(x)
        #expect(last.shape == [2, 6])
        expectIdentical(last.scalars, (0..<2).flatMap { b in Array(recorded.scalars[(b * 30 + 24)..<(b * 30 + 30)]) })
    }

    @Test("values and gradients are the same bits on one thread and on several", arguments: allCells)
    func threadCountIndependent(cell: RecurrentCell) {
        // Wide enough that the gate kernels split their rows and the GEMMs their blocks.
        let layer = withManualSeed(9) { makeLayer(cell, inputSize: 5, hiddenSize: 130) }
        let x = randomTensor([40, 4, 5], seed: 12)
        func pass() -> [[Float]] {
            for p in layer.parameters { p.gradient = nil }
            let y = layer(x)
            (y * y).sum().backward()
            return [y.scalars] + layer.parameters.map { $0.gradient!.scalars }
        }
        let (one, several) = withExclusiveThreadCount { () -> ([[Float]], [[Float]]) in
            Kernels.threadCount = 1
            let one = pass()
            Kernels.threadCount = 4
            return (one, pass())
        }
        for (a, b) in zip(one, several) { expectIdentical(a, b, "\(cell)") }
    }

    @Test("the recurrence releases its inputs: nothing a step allocates outlives the step", arguments: allCells, [false, true])
    func recurrenceReleasesItsInputs(cell: RecurrentCell, recording: Bool) {
        // A training loop runs the recurrence thousands of times: one tensor kept per call
        // is a leak of a whole [batch, time, gates] buffer per step.
        let batch = 2, steps = 3, hidden = 4, gates = cell.gateCount * hidden
        weak var projectedStorage: TensorStorage?
        weak var outputStorage: TensorStorage?
        func projected() -> Tensor {
            let tensor = Tensor(shape: [batch, steps, gates], scalars: (0..<(batch * steps * gates)).map { Float($0 % 7) * 0.1 })
            projectedStorage = tensor.storage
            return tensor
        }
        do {
            let weight = Parameter(Tensor(shape: [gates, hidden], scalars: (0..<(gates * hidden)).map { Float($0 % 5) * 0.05 }))
            let bias = Parameter(Tensor(zeros: [gates]))
            let run = {
                fusedRecurrence(
                    cell, projected: projected(), recurrentWeight: weight.value, initialHidden: nil, initialCell: nil,
                    recurrentBias: bias.value, appendingFinalCell: false)
            }
            let output = recording ? run() : withoutGradients(run)
            outputStorage = output.storage
            if recording { output.sum().backward() }
        }
        #expect(projectedStorage == nil, "the input projection outlives the call")
        #expect(outputStorage == nil, "the output outlives the call")
    }

    @Test("names, shapes, initialization bounds and descriptions follow PyTorch")
    func parametersAndDescriptions() {
        let lstm = LSTM(inputSize: 3, hiddenSize: 4), gru = GRU(inputSize: 3, hiddenSize: 4, bias: false)
        #expect(lstm.parameters.map(\.name) == ["weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0"])
        #expect(lstm.parameters.map(\.shape) == [[16, 3], [16, 4], [16], [16]])
        #expect(gru.parameters.map(\.name) == ["weight_ih_l0", "weight_hh_l0"])
        #expect(gru.parameters.map(\.shape) == [[12, 3], [12, 4]])
        for p in lstm.parameters + gru.parameters {
            #expect(p.value.scalars.allSatisfy { Swift.abs($0) <= 0.5 }, "\(p.name) within ±1/√4")
        }
        #expect(lstm.parameters[0].value.scalars.contains { Swift.abs($0) > 0.4 }, "spread over the interval")
        #expect(lstm.monitoredWeights.map(\.name) == ["weight_ih_l0", "weight_hh_l0"])
        #expect("\(lstm)" == "LSTM(inputSize: 3, hiddenSize: 4)")
        #expect("\(gru)" == "GRU(inputSize: 3, hiddenSize: 4, bias: false)")
        let model = Sequential([LSTM(inputSize: 3, hiddenSize: 4), Linear(inputSize: 4, outputSize: 2)])
        #expect(model.parameters.prefix(4).map(\.name) == ["0.weight_ih_l0", "0.weight_hh_l0", "0.bias_ih_l0", "0.bias_hh_l0"])
        #expect("\(model)".contains("(0): LSTM(inputSize: 3, hiddenSize: 4)"))
    }

    @Test("the gradient monitor judges an LSTM and a GRU as units and writes a report")
    func monitored() throws {
        for cell in [RecurrentCell.lstm, .gru] {
            let recurrent = withManualSeed(5) { makeLayer(cell, inputSize: 3, hiddenSize: 8) }
            recurrent.returnsSequences = false
            let model = withManualSeed(6) { Sequential([recurrent, Linear(inputSize: 8, outputSize: 4)]) }
            let input = randomTensor([16, 6, 3], seed: 4, in: -1...1)
            let monitor = try monitoredSteps(model, steps: 3, input: input, labels: (0..<16).map { $0 % 4 })
            let report = monitor.report
            #expect(report.layers.map(\.kind) == [cell.name, "Linear"])
            #expect(report.layers.map(\.path) == ["0", "1"])
            let first = report.layers[0]
            #expect(first.gradientNorm > 0 && first.gradientNorm.isFinite, "\(first)")
            #expect(first.weightNorm > 0 && first.updateRatio != nil, "\(first)")
            #expect("\(report)".contains("layer 1 (0, \(cell.name))"))
            let directory = try temporaryDirectory()
            try monitor.writeReport(to: directory)
            let text = String(decoding: try FileIO.readAll(directory + "/report.md").get(), as: UTF8.self)
            #expect(text.contains(cell.name))
        }
    }

    @Test("inputs of the wrong shape trap with a message naming the layer")
    func shapeTraps() async {
        await #expect(processExitsWith: .failure) {
            _ = LSTM(inputSize: 3, hiddenSize: 4)(Tensor(zeros: [2, 5]))
        }
        let lstm = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            _ = LSTM(inputSize: 3, hiddenSize: 4)(Tensor(zeros: [2, 5, 2]))
        }
        #expect(standardError(lstm).contains("LSTM(inputSize: 3, hiddenSize: 4): expected input [batch, time >= 1, 3], got [2, 5, 2]"))
        let gru = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            _ = GRU(inputSize: 3, hiddenSize: 4).run(Tensor(zeros: [2, 5, 3]), initialState: Tensor(zeros: [3, 4]))
        }
        #expect(standardError(gru).contains("GRU: initial state [3, 4], expected [2, 4]"))
        let state = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            let zeros = Tensor(zeros: [2, 4])
            _ = LSTM(inputSize: 3, hiddenSize: 4).run(Tensor(zeros: [2, 1, 3]), initialState: .init(hidden: zeros, cell: Tensor(zeros: [2, 3])))
        }
        #expect(standardError(state).contains("LSTM: initial state hidden [2, 4] and cell [2, 3], expected [2, 4] each"))
    }
}
