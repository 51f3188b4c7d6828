// Freezing, gradient and forward hooks, and anomaly mode: what a user's own model needs to be diagnosed.
import Testing

@testable import GradKit

/// A layer defined outside GradKit: `y = 2x` with no parameters.
final class Doubling: Layer {
    var isTraining = true
    var calls = 0
    func callAsFunction(_ input: Tensor) -> Tensor {
        calls += 1
        return input * 2
    }
    var parameters: [Parameter] { [] }
}

/// A model written by hand, not a Sequential: its children are GradKit layers it calls directly.
final class HandWrittenModel: Layer {
    let first = Linear(inputSize: 8, outputSize: 16)
    let activation = Sigmoid()
    let last = Linear(inputSize: 16, outputSize: 3)
    var isTraining = true
    init() {
        first.prefixNames(with: "first.")
        last.prefixNames(with: "last.")
    }
    func callAsFunction(_ input: Tensor) -> Tensor { last(activation(first(input))) }
    var parameters: [Parameter] { first.parameters + last.parameters }
    var namedChildren: [(name: String, layer: any Layer)] { [("first", first), ("activation", activation), ("last", last)] }
    var children: [any Layer] { namedChildren.map(\.layer) }
}

@Suite("Freezing")
struct FreezingTests {
    let input = randomTensor([32, 16], seed: 30, in: -2...2)
    var labels: [Int] { (0..<32).map { $0 % 4 } }

    @Test("a frozen parameter gets no gradient, and a branch that needs none is not recorded")
    func noGradient() {
        let layer = withManualSeed(1) { Linear(inputSize: 16, outputSize: 4) }
        layer.freeze()
        #expect(layer.parameters.allSatisfy { !$0.requiresGradient })
        let y = layer(input)
        #expect(!y.requiresGradient, "data times frozen weights is a constant")
        let second = withManualSeed(2) { Linear(inputSize: 4, outputSize: 2) }
        second(y).sum().backward()
        #expect(layer.weight.gradient == nil && layer.bias?.gradient == nil)
        #expect(second.weight.gradient != nil)
        layer.unfreeze()
        #expect(layer(input).requiresGradient)
    }

    @Test("a frozen first layer: no gradient, bit-identical after 100 steps, 'frozen', the other verdicts unchanged")
    func frozenFirstLayer() throws {
        func train(freezingFirst: Bool) throws -> (Sequential, GradientMonitor.Report, [Float]) {
            let model = withManualSeed(5) { Sequential([Linear(inputSize: 16, outputSize: 32), ReLU(), Linear(inputSize: 32, outputSize: 32), ReLU(), Linear(inputSize: 32, outputSize: 4)]) }
            if freezingFirst { model.layers[0].freeze() }
            let before = model.layers[0].parameters.flatMap { $0.value.scalars }
            let data = try Dataset(features: input, labels: labels)
            let trainer = Trainer(
                model: model, optimizer: SGD(model.parameters, learningRate: 0.05, momentum: 0.9), loss: .softmaxCrossEntropy,
                options: TrainingOptions(epochs: 100, batchSize: 32, shuffle: false, progress: .silent))
            try trainer.fit(data)
            #expect(trainer.completedSteps == 100)
            return (model, trainer.monitor.report, before)
        }
        let (frozen, report, before) = try train(freezingFirst: true)
        expectIdentical(frozen.layers[0].parameters.flatMap { $0.value.scalars }, before)
        #expect(frozen.layers[0].parameters.allSatisfy { $0.gradient == nil })
        #expect(report.layers[0].verdict == .frozen)
        #expect(report.layers[0].evidence == ["layer 1's weights are frozen (requiresGradient is false): no gradient, no update"])
        let (_, free, _) = try train(freezingFirst: false)
        #expect(free.layers[0].verdict != .frozen)
        #expect(report.layers.dropFirst().map(\.verdict) == free.layers.dropFirst().map(\.verdict), "\(report)\n\(free)")
        #expect(report.isHealthy == free.isHealthy)
    }

    @Test("an optimizer skips a frozen parameter even when its gradient was set by hand")
    func optimizerSkipsFrozen() {
        let p = Parameter(Tensor([1, 2, 3]), name: "p")
        let optimizer = SGD([p], learningRate: 0.1)
        p.requiresGradient = false
        optimizer.step()
        #expect(p.value.scalars == [1, 2, 3])
    }
}

@Suite("Hooks")
struct HookTests {
    let input = randomTensor([8, 8], seed: 31)

    @Test("a parameter's gradient hook sees the gradient and may replace it; removal restores the plain gradient")
    func parameterHook() {
        let w = Parameter(randomTensor([8, 3], seed: 32), name: "w")
        var seen: [Float] = []
        let observe = w.registerGradientHook { seen = $0.scalars; return nil }
        let halve = w.registerGradientHook { $0 * 0.5 }
        input.matmul(w.value).tanh().sum().backward()
        let halved = w.gradient!.scalars
        w.gradient = nil
        observe.remove()
        halve.remove()
        halve.remove()  // twice does nothing
        input.matmul(w.value).tanh().sum().backward()
        let plain = w.gradient!.scalars
        expectIdentical(seen, plain, "the first hook saw the unmodified gradient")
        expectClose(halved, plain.map { $0 * 0.5 }, relative: 0)
    }

    @Test("a recorded tensor's hook sees its gradient and a replacement flows to its inputs")
    func tensorHook() {
        let w = Parameter(randomTensor([8, 3], seed: 33), name: "w")
        let hidden = input.matmul(w.value)
        var seen: Tensor?
        hidden.registerGradientHook { seen = $0; return Tensor(zeros: $0.shape) }
        hidden.tanh().sum().backward()
        let expected = withoutGradients { 1 - hidden.tanh().squared() }
        expectClose(seen!.scalars, expected.scalars, relative: 1e-6)
        #expect(w.gradient!.scalars.allSatisfy { $0 == 0 }, "the zeroed gradient reached w")
    }

    @Test("each parameter's gradient is handed over as soon as the sweep passes its first use")
    func earlyDelivery() {
        let model = withManualSeed(35) { Sequential([Linear(inputSize: 8, outputSize: 6), Tanh(), Linear(inputSize: 6, outputSize: 4), Tanh(), Linear(inputSize: 4, outputSize: 2)]) }
        var order: [String] = []
        var firstLayerReadyEarly = false
        for p in model.parameters {
            p.registerGradientAccumulatedHook { p in
                order.append(p.name)
                if p.name.hasPrefix("4."), model.parameters[0].gradient != nil { firstLayerReadyEarly = true }
                #expect(p.gradient != nil, "the hook runs after accumulation")
            }
        }
        let reference = withManualSeed(35) { Sequential([Linear(inputSize: 8, outputSize: 6), Tanh(), Linear(inputSize: 6, outputSize: 4), Tanh(), Linear(inputSize: 4, outputSize: 2)]) }
        model(input).sum().backward()
        reference(input).sum().backward()
        #expect(Set(order) == Set(model.parameters.map(\.name)) && order.count == 6)
        #expect(order.firstIndex { $0.hasPrefix("4.") }! < order.firstIndex { $0.hasPrefix("0.") }!, "\(order)")
        #expect(!firstLayerReadyEarly, "the last layer's gradient came before the first layer's was computed")
        for (p, q) in zip(model.parameters, reference.parameters) { expectIdentical(p.gradient!.scalars, q.gradient!.scalars, p.name) }
    }

    @Test("registering a hook on a tensor that is not recorded traps with a message")
    func unrecordedTensorHook() async {
        await #expect(processExitsWith: .failure) {
            Tensor([1, 2]).registerGradientHook { _ in nil }
        }
    }

    @Test("forward hooks see each layer's input and output, in containers and called directly, and can be removed")
    func forwardHooks() {
        let doubling = Doubling()
        let model = withManualSeed(7) { Sequential([Linear(inputSize: 8, outputSize: 4), Tanh(), doubling]) }
        var log: [String] = []
        var handles: [HookHandle] = []
        for layer in model.layers + [model] {
            handles.append(layer.registerForwardHook { layer, input, output in log.append("\(type(of: layer)) \(input.shape) -> \(output.shape)") })
        }
        let y = model(input)
        #expect(log == ["Linear [8, 8] -> [8, 4]", "Tanh [8, 4] -> [8, 4]", "Doubling [8, 4] -> [8, 4]", "Sequential [8, 8] -> [8, 4]"])
        log = []
        _ = model.layers[1](y)  // a GradKit layer called directly runs its hooks
        #expect(log == ["Tanh [8, 4] -> [8, 4]"])
        for handle in handles { handle.remove() }
        log = []
        _ = model(input)
        #expect(log.isEmpty && doubling.calls == 2)
    }

    @Test("Linear + ReLU stay one fused operation with hooks: same bits, one record, hooks see the pre-activations")
    func fusedWithHooks() {
        let make = { withManualSeed(8) { Sequential([Linear(inputSize: 8, outputSize: 6), ReLU(), Linear(inputSize: 6, outputSize: 2)]) } }
        let plain = make(), hooked = make()
        var linearOutput: Tensor?, reluInput: Tensor?, reluOutput: Tensor?
        hooked.layers[0].registerForwardHook { _, _, output in linearOutput = output }
        hooked.layers[1].registerForwardHook { _, input, output in reluInput = input; reluOutput = output }
        let recordsPlain = recordCount { _ = plain(input) }, recordsHooked = recordCount { _ = hooked(input) }
        #expect(recordsPlain == recordsHooked)
        let a = plain(input)
        a.sum().backward()  // one tape per thread: each backward before the next forward
        let b = hooked(input)
        b.sum().backward()
        expectIdentical(b.scalars, a.scalars)
        #expect(linearOutput!.scalars == reluInput!.scalars)
        #expect(linearOutput!.scalars.contains { $0 < 0 }, "pre-activations, not rectified")
        expectIdentical(reluOutput!.scalars, linearOutput!.relu().scalars)
        for (p, q) in zip(plain.parameters, hooked.parameters) { expectIdentical(q.gradient!.scalars, p.gradient!.scalars, p.name) }
    }

    /// Records on this thread's tape while `body` runs.
    private func recordCount(_ body: () -> Void) -> Int {
        Tape.local.current.reset()
        body()
        return Tape.local.current.recordCount
    }

    @Test("the monitor diagnoses a hand-written model: its layers, their activation statistics, a frozen one")
    func handWrittenModel() throws {
        let model = withManualSeed(9) { HandWrittenModel() }
        for p in model.first.parameters { p.value = p.value * 30 }  // saturates the sigmoid
        let input = randomTensor([64, 8], seed: 34, in: -2...2)
        let monitor = try monitoredSteps(model, steps: 3, input: input, labels: (0..<64).map { $0 % 3 })
        let report = monitor.report
        #expect(report.layers.map(\.path) == ["first", "last"])
        #expect(report.layers[0].activation == "sigmoid")
        #expect((report.layers[0].saturatedFraction ?? 0) > 0.5)
        #expect(report.layers[0].verdict == .saturated, "\(report)")
        model.last.freeze()
        #expect(monitor.report.layers[1].verdict == .frozen)
    }
}

@Suite("Anomaly mode")
struct AnomalyTests {
    /// The anomaly `body` throws (do/catch rather than `#expect(throws:)`: the
    /// call sites must be lines of this file, not of a macro expansion).
    private func anomaly(_ body: () throws -> Void) -> AnomalyError? {
        do {
            try withAnomalyDetection(body)
        } catch let error as AnomalyError {
            return error
        } catch {
            Issue.record("unexpected error \(error)")
        }
        return nil
    }

    @Test("a NaN made in the forward pass names the operation and the line that called it")
    func forwardNaN() throws {
        let w = Parameter(Tensor([1, -2, 3]), name: "w")
        let line = #line + 1
        let found = anomaly { (w.value * 2).log().sum().backward() }
        let error = try #require(found)
        #expect(error.operation == "log()")
        #expect(error.direction == .forward)
        #expect(error.callSite == "HookTests.swift:\(line)")
        #expect(error.value.isNaN)
        #expect("\(error)" == "NaN in the output of log(), recorded at HookTests.swift:\(line)")
        #expect(w.gradient == nil, "the sweep stopped before reaching w")
    }

    @Test("a NaN made only in the backward pass names that operation: sqrt at 0")
    func backwardOnlyNaN() throws {
        let w = Parameter(Tensor([0, 4]), name: "w")
        var forwardValue: [Float] = []
        let line = #line + 2
        let found = anomaly {
            let y = w.value.sqrt()
            forwardValue = y.scalars
            y.sum().backward()
        }
        let error = try #require(found)
        #expect(forwardValue == [0, 2], "the forward pass is finite")
        #expect(error.operation == "sqrt()")
        #expect(error.direction == .backward)
        #expect(error.callSite == "HookTests.swift:\(line)")
        #expect(error.value == .infinity)
        #expect("\(error)" == "infinity in the backward of sqrt(), recorded at HookTests.swift:\(line)")
    }

    @Test("without anomalies the scope returns the body's result; off, nothing is kept")
    func quietScope() throws {
        let w = Parameter(Tensor([1, 2]), name: "w")
        let value = try withAnomalyDetection {
            #expect(isDetectingAnomalies)
            let loss = (w.value * w.value).sum()
            loss.backward()
            return loss.scalar
        }
        #expect(value == 5 && w.gradient!.scalars == [2, 4])
        #expect(!isDetectingAnomalies)
        w.gradient = nil
        (w.value.log() * 0).sum().backward()  // finite; off: no checks, no error
        #expect(Tape.local.current.anomaly == nil)
    }
}

@Suite("Model summary")
struct SummaryTests {
    @Test("summary: every layer's output shape, its own parameter counts, frozen ones apart, and totals")
    func summary() {
        let model = withManualSeed(40) {
            Sequential([Linear(inputSize: 64, outputSize: 128), ReLU(), BatchNorm(featureCount: 128), Dropout(probability: 0.1), Linear(inputSize: 128, outputSize: 10)])
        }
        model.layers[0].freeze()
        let summary = model.summary()
        #expect(summary.inputShape == [1, 64])
        #expect(summary.rows.map(\.path) == ["0", "1", "2", "3", "4"])
        #expect(summary.rows.map(\.outputShape) == [[1, 128], [1, 128], [1, 128], [1, 128], [1, 10]])
        #expect(summary.rows.map(\.frozenParameters) == [64 * 128 + 128, 0, 0, 0, 0])
        #expect(summary.rows.map(\.trainableParameters) == [0, 0, 256, 0, 1290])
        #expect(summary.trainableParameters + summary.frozenParameters == model.parameterCount)
        let text = summary.description
        #expect(text.contains("Total: 9,866 parameters (38.5 KiB) — 1,546 trainable, 8,320 frozen"), "\(text)")
        #expect(text.contains("8,320 (frozen 8,320)"))
        #expect(model.isTraining, "the mode is put back")
        // A hand-written model: its own layers, found through namedChildren; an RNN over sequences.
        let recurrent = withManualSeed(41) { Sequential([RNN(inputSize: 3, hiddenSize: 5), Linear(inputSize: 5, outputSize: 2)]) }
        #expect(recurrent.summary(inputShape: [2, 7, 3]).rows.map(\.outputShape) == [[2, 7, 5], [2, 7, 2]])
        #expect(HandWrittenModel().summary().rows.map(\.path) == ["first", "activation", "last"])
    }

    @Test("layers describe themselves with their arguments; containers list their children")
    func descriptions() {
        let mlp = withManualSeed(42) { MLP(sizes: [4, 8, 2], activation: .leakyRelu(negativeSlope: 0.2), dropout: 0.5) }
        #expect("\(mlp)" == """
            MLP(
              (0): Linear(inputSize: 4, outputSize: 8)
              (1): LeakyReLU(negativeSlope: 0.2)
              (2): Dropout(probability: 0.5)
              (3): Linear(inputSize: 8, outputSize: 2)
            )
            """)
        let nested = Sequential([Residual(Sequential([Linear(inputSize: 3, outputSize: 3, bias: false), Tanh()])), Softmax()])
        #expect("\(nested)" == """
            Sequential(
              (0): Residual(
                (body): Sequential(
                  (0): Linear(inputSize: 3, outputSize: 3, bias: false)
                  (1): Tanh()
                )
              )
              (1): Softmax(axis: -1)
            )
            """)
    }
}
