// The gradient-health monitor on canned pathological networks, and the non-finite guard.
import Testing

@testable import GradKit

/// Runs `steps` monitored training steps of `model` on a fixed batch with Adam.
@discardableResult
func monitoredSteps(_ model: any Layer, steps: Int, input: Tensor, labels: [Int], learningRate: Float = 1e-3) throws -> GradientMonitor {
    let monitor = GradientMonitor(model: model, window: steps)
    let optimizer = Adam(model.parameters, learningRate: learningRate)
    for _ in 0..<steps {
        let loss = monitor.observeForward { softmaxCrossEntropy(logits: model(input), labels: labels) }
        loss.backward()
        if try monitor.inspectGradients(loss: loss.scalar) == .step {
            monitor.willStep()
            optimizer.step()
            monitor.didStep()
        }
        optimizer.zeroGradients()
    }
    return monitor
}

/// Multiplies its input by NaN on the calls listed in `poisoned` (1-based), else passes it through.
final class Poison: Layer {
    var calls = 0
    let poisoned: Set<Int>
    var isTraining = true
    init(on poisoned: Set<Int>) { self.poisoned = poisoned }
    func callAsFunction(_ input: Tensor) -> Tensor {
        calls += 1
        return poisoned.contains(calls) ? input * Float.nan : input
    }
    var parameters: [Parameter] { [] }
}

@Suite("Gradient monitor")
struct MonitorTests {
    let input = randomTensor([64, 16], seed: 12, in: -2...2)
    var labels: [Int] { (0..<64).map { $0 % 4 } }

    @Test("a 20-layer sigmoid MLP is flagged vanishing in its first layers, with evidence")
    func vanishing() throws {
        let model = withManualSeed(1) { MLP(sizes: [16] + Array(repeating: 32, count: 19) + [4], activation: .sigmoid) }
        let report = try monitoredSteps(model, steps: 5, input: input, labels: labels).report
        #expect(report.layers.count == 20)
        for layer in report.layers.prefix(5) {
            #expect(layer.verdict == .vanishing, "layer \(layer.index): \(layer.verdict) \(layer.evidence)")
            #expect(layer.evidence.contains { $0.contains("times smaller than layer 20's") }, "\(layer.evidence)")
        }
        #expect(report.layers.last!.verdict == .healthy)
        // The gradient norm falls monotonically from the output toward the input.
        let norms = report.layers.map(\.gradientNorm)
        #expect(norms.first! < 1e-6 * norms.last!)
        #expect(!report.isHealthy)
    }

    @Test("a badly scaled deep ReLU net is flagged exploding")
    func exploding() throws {
        // Gain 5 instead of ReLU's sqrt(2): activations grow about 3.5x per layer going up and
        // gradients 3.5x per layer going down, so every layer's weight gradient is huge (their
        // products balance, so the ratios between layers stay moderate: the absolute test fires).
        let model = withManualSeed(2) { MLP(sizes: [16] + Array(repeating: 32, count: 11) + [4], activation: .relu, initializer: .xavierNormal(gain: 5)) }
        let report = try monitoredSteps(model, steps: 3, input: input, labels: labels).report
        for layer in report.layers {
            #expect(layer.verdict == .exploding, "layer \(layer.index): \(layer.verdict)")
            #expect(layer.evidence.contains { $0.contains("exceeds 1.0e+04 x max(1, |w|") }, "\(layer.evidence)")
        }
        // The same architecture at ReLU's own gain is not.
        let scaled = withManualSeed(2) { MLP(sizes: [16] + Array(repeating: 32, count: 11) + [4], activation: .relu, initializer: .xavierNormal(gain: Float(2).squareRoot())) }
        let calm = try monitoredSteps(scaled, steps: 3, input: input, labels: labels).report
        #expect(calm.layers.allSatisfy { $0.verdict != .exploding }, "\(calm)")
    }

    @Test("a ReLU net with a large negative bias is flagged dead")
    func dead() throws {
        let model = withManualSeed(3) { MLP(sizes: [16, 32, 32, 4], activation: .relu) }
        for p in model.parameters where p.name == "0.bias" || p.name == "2.bias" { p.value = Tensor(shape: p.shape, repeating: -10) }
        let report = try monitoredSteps(model, steps: 3, input: input, labels: labels).report
        for layer in report.layers.prefix(2) {
            #expect(layer.verdict == .dead, "layer \(layer.index): \(layer.verdict)")
            #expect(layer.deadFraction == 1)
            #expect(layer.evidence.contains { $0.contains("100% of the ReLU units after layer \(layer.index) output 0") }, "\(layer.evidence)")
        }
        // The output layer sees only zeros, so its weight gradient is exactly zero: never "healthy".
        #expect(report.layers[2].deadFraction == nil && report.layers[2].verdict == .vanishing)
        #expect(report.layers[2].evidence.contains { $0.contains("exactly zero at every recent sampled step") }, "\(report.layers[2].evidence)")
    }

    @Test("sigmoid units driven to 0 and 1 are flagged saturated; a well-initialized net is healthy")
    func saturatedAndHealthy() throws {
        let saturated = withManualSeed(4) { MLP(sizes: [16, 64, 4], activation: .sigmoid, initializer: .xavierNormal(gain: 20)) }
        let report = try monitoredSteps(saturated, steps: 3, input: input, labels: labels).report
        #expect(report.layers[0].verdict == .saturated, "\(report)")
        #expect(report.layers[0].saturatedFraction! >= 0.5)
        let healthy = withManualSeed(5) { MLP(sizes: [16, 64, 64, 4], activation: .relu, initializer: .heNormal()) }
        let good = try monitoredSteps(healthy, steps: 10, input: input, labels: labels).report
        #expect(good.isHealthy, "\(good)")
        #expect(good.layers.allSatisfy { ($0.updateRatio ?? 0) > 0 && $0.updateRatio! < 0.1 })
        // The activation statistics are those of the batch: compare with a direct computation.
        let probe = GradientMonitor(model: healthy)
        _ = probe.observeForward { withoutGradients { healthy(input) } }
        let pre = withoutGradients { healthy.network.layers[0](input) }.scalars
        let mean = pre.reduce(0.0) { $0 + Double($1) } / Double(pre.count)
        let spread = (pre.reduce(0.0) { $0 + (Double($1) - mean) * (Double($1) - mean) } / Double(pre.count)).squareRoot()
        let deadColumns = (0..<64).filter { c in (0..<64).allSatisfy { r in pre[r * 64 + c] <= 0 } }.count
        let first = probe.report.layers[0]
        #expect(Swift.abs(Double(first.preactivationMean!) - mean) < 1e-5 * spread)
        #expect(Swift.abs(Double(first.preactivationStandardDeviation!) - spread) < 1e-5 * spread)
        #expect(first.deadFraction == Float(deadColumns) / 64)
    }

    @Test("sampling changes nothing: outputs and gradients bit for bit as without the monitor")
    func samplingLeavesTrainingAlone() throws {
        let observed = withManualSeed(6) { MLP(sizes: [16, 48, 48, 4]) }
        let plain = withManualSeed(6) { MLP(sizes: [16, 48, 48, 4]) }
        let monitor = GradientMonitor(model: observed)
        let sampledLoss = monitor.observeForward { softmaxCrossEntropy(logits: observed(input), labels: labels) }
        sampledLoss.backward()
        let plainLoss = softmaxCrossEntropy(logits: plain(input), labels: labels)
        plainLoss.backward()
        // The fused Linear + ReLU pairs reported their pre-activations on the way.
        #expect(monitor.report.layers[0].deadFraction != nil && monitor.report.layers[1].preactivationMean != nil)
        expectIdentical(sampledLoss.scalars, plainLoss.scalars, "loss")
        for (a, b) in zip(observed.parameters, plain.parameters) {
            expectIdentical(a.gradient!.scalars, b.gradient!.scalars, a.name)
        }
    }

    @Test("a NaN in one gradient is named, the step skipped, parameters and optimizer state unchanged")
    func nonFiniteGuard() throws {
        let model = withManualSeed(6) { MLP(sizes: [16, 8, 4]) }
        let optimizer = Adam(model.parameters, learningRate: 0.01)
        let monitor = GradientMonitor(model: model)
        for _ in 0..<2 {  // give the optimizer some state
            softmaxCrossEntropy(logits: model(input), labels: labels).backward()
            optimizer.step()
            optimizer.zeroGradients()
        }
        let weights = model.stateDictionary(), state = optimizer.exportState()
        let loss = monitor.observeForward { softmaxCrossEntropy(logits: model(input), labels: labels) }
        loss.backward()
        let target = model.parameters.first { $0.name == "2.weight" }!
        var poisoned = target.gradient!.scalars
        poisoned[5] = .nan
        target.gradient = Tensor(shape: target.shape, scalars: poisoned)
        #expect(try monitor.inspectGradients(loss: loss.scalar) == .skip(parameter: "2.weight"))
        optimizer.zeroGradients()
        for (name, tensor) in model.stateDictionary() { expectIdentical(tensor.scalars, weights[name]!.scalars, name) }
        #expect(optimizer.exportState() == state)
        #expect(monitor.skippedSteps == 1 && monitor.consecutiveSkips == 1 && monitor.lastNonFinite == "2.weight")
        let report = monitor.report
        #expect(report.layers[1].verdict == .nonFinite && report.skippedSteps == 1)
        // An infinite gradient is caught too, and the policy can throw.
        let throwing = GradientMonitor(model: model, policy: .throwError)
        softmaxCrossEntropy(logits: model(input), labels: labels).backward()
        let first = model.parameters[0]
        var infinite = first.gradient!.scalars
        infinite[0] = -.infinity
        first.gradient = Tensor(shape: first.shape, scalars: infinite)
        #expect(throws: GradientMonitor.NonFiniteGradientError(parameter: "0.weight", step: 0)) { try throwing.inspectGradients(loss: 1) }
        optimizer.zeroGradients()
    }

    @Test("the trainer skips poisoned steps atomically, counts consecutive skips, stops or throws by policy")
    func trainerPolicies() throws {
        let data = try Dataset(features: input, labels: labels)
        func make(_ policy: GradientMonitor.NonFinitePolicy, poisoned: Set<Int>) -> (Trainer, Sequential) {
            let model = withManualSeed(7) { Sequential([Linear(inputSize: 16, outputSize: 8), Poison(on: poisoned), ReLU(), Linear(inputSize: 8, outputSize: 4)]) }
            let trainer = Trainer(
                model: model, optimizer: Adam(model.parameters), loss: .softmaxCrossEntropy,
                options: TrainingOptions(epochs: 2, batchSize: 16, progress: .silent), monitor: GradientMonitor(model: model, policy: policy))
            return (trainer, model)
        }
        let (trainer, model) = make(.skip, poisoned: [3, 4])
        var snapshots: [[String: Tensor]] = [], states: [OptimizerState] = []
        trainer.onStep = { _ in
            snapshots.append(model.stateDictionary())
            states.append(trainer.optimizer.exportState())
        }
        let history = try trainer.fit(data)
        #expect(history.steps.map(\.skipped) == [false, false, true, true, false, false, false, false])
        for skipped in [2, 3] {
            for (name, tensor) in snapshots[skipped] { expectIdentical(tensor.scalars, snapshots[1][name]!.scalars, "\(name) at step \(skipped)") }
            #expect(states[skipped] == states[1])
        }
        #expect(trainer.monitor.skippedSteps == 2 && trainer.monitor.consecutiveSkips == 0 && trainer.monitor.lastNonFinite == "0.weight")

        let (stopping, _) = make(.stop, poisoned: [2])
        let stopped = try stopping.fit(data)
        #expect(stopped.steps.count == 2 && stopped.stoppedEarly?.contains("'0.weight'") == true)

        let (throwing, _) = make(.throwError, poisoned: [1])
        #expect(throws: GradientMonitor.NonFiniteGradientError(parameter: "0.weight", step: 0)) { try throwing.fit(data) }
    }

    @Test("the trainer rejects data whose width differs from the model's input")
    func widthMismatch() throws {
        let model = withManualSeed(8) { MLP(sizes: [10, 4, 2]) }
        let trainer = Trainer(model: model, optimizer: SGD(model.parameters), loss: .softmaxCrossEntropy, options: TrainingOptions(progress: .silent))
        let data = try Dataset(features: Tensor(zeros: [4, 7]), labels: [0, 1, 0, 1])
        #expect(throws: DataError.widthMismatch(dataset: 7, model: 10)) { try trainer.fit(data) }
        let regression = try Dataset(features: Tensor(zeros: [4, 10]), targets: Tensor(zeros: [4, 2]))
        #expect(throws: TrainingError.self) { try trainer.fit(regression) }
    }
}
