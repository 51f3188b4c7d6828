// Dynamic loss scaling: PyTorch's GradScaler step for step (goldens from torch 2.15), the default
// growth interval, and the Trainer: scaling by a power of two changes nothing in FP32, an overflowing
// scale skips steps through the monitor's guard and backs off, the scaler's state survives a
// checkpoint, and a policy other than skip or anomaly mode is refused.
import Testing

@testable import GradKit

/// A linear regression that a Trainer fits in a few steps.
private func regression() throws -> (Dataset, Linear) {
    let x = randomTensor([24, 3], seed: 5)
    let w: [Float] = [0.5, -1.5, 2]
    let y = (0..<24).map { i in (0..<3).reduce(Float(0.25)) { $0 + w[$1] * x.scalars[i * 3 + $1] } }
    let data = try Dataset(features: x, targets: Tensor(shape: [24, 1], scalars: y))
    let model = withManualSeed(3) { Linear(inputSize: 3, outputSize: 1) }
    return (data, model)
}

@Suite("Loss scaling")
struct LossScalerTests {
    @Test("scale, growth tracker, skipped steps and parameter match torch.amp.GradScaler step for step", arguments: LossScalerGoldens.cases.indices)
    func goldens(_ index: Int) throws {
        let golden = LossScalerGoldens.cases[index]
        let defaults = LossScaler()
        let scaler = LossScaler(
            initialScale: golden.initialScale ?? defaults.scale, growthFactor: golden.growthFactor ?? defaults.growthFactor,
            backoffFactor: golden.backoffFactor ?? defaults.backoffFactor, growthInterval: golden.growthInterval ?? defaults.growthInterval)
        let p = Parameter(Tensor(shape: [1], scalars: [1]), name: "p")
        let optimizer = SGD([p], learningRate: 1)
        for (t, step) in golden.steps.enumerated() {
            let value: Float = step.kind == "f" ? 0x1p-20 : step.kind == "i" ? .infinity : .nan
            scaler.scaled((p.value * value).sum()).backward()
            let scaled = try #require(p.gradient).scalars[0]
            #expect(scaled == step.scaledGradient || (scaled.isNaN && step.scaledGradient.isNaN), "\(golden.name) step \(t): \(scaled)")
            scaler.unscaleGradients([p])
            let finite = gradientNorm([p]).isFinite
            if finite { optimizer.step() }
            optimizer.zeroGradients()
            scaler.update(foundNonFinite: !finite)
            #expect(finite == step.stepped, "\(golden.name) step \(t)")
            #expect(scaler.scale == step.scale && scaler.growthTracker == step.growthTracker, "\(golden.name) step \(t): \(scaler.scale), \(scaler.growthTracker)")
            // SGD at rate 1 moves p by the unscaled gradient 2^-20 exactly: unscaling must be exact.
            #expect(p.value.scalars[0] == step.parameter, "\(golden.name) step \(t): \(p.value.scalars[0])")
        }
    }

    @Test("PyTorch's defaults: 2^16, doubled after 2000 clean steps in a row, halved on a non-finite step")
    func defaults() {
        let scaler = LossScaler()
        #expect(scaler.scale == 65536 && scaler.growthFactor == 2 && scaler.backoffFactor == 0.5 && scaler.growthInterval == 2000)
        for _ in 0..<1999 { scaler.update(foundNonFinite: false) }
        #expect(scaler.scale == 65536 && scaler.growthTracker == 1999)
        scaler.update(foundNonFinite: false)
        #expect(scaler.scale == 131_072 && scaler.growthTracker == 0)
        for _ in 0..<1000 { scaler.update(foundNonFinite: false) }
        scaler.update(foundNonFinite: true)
        #expect(scaler.scale == 65536 && scaler.growthTracker == 0)
        // A non-finite step resets the count: 1999 more clean steps do not grow the scale.
        for _ in 0..<1999 { scaler.update(foundNonFinite: false) }
        #expect(scaler.scale == 65536 && scaler.growthTracker == 1999)
    }

    @Test("in FP32 a Trainer with the default scaler trains bit for bit as one without: scaling by 2^16 is exact")
    func exactInFloat32() throws {
        func fit(scaled: Bool) throws -> ([Float], [Float]) {
            let (data, model) = try regression()
            let trainer = Trainer(
                model: model, optimizer: Adam(model.parameters, learningRate: 0.05), loss: .meanSquaredError,
                options: TrainingOptions(epochs: 3, batchSize: 8, progress: .silent))
            if scaled { trainer.lossScaler = LossScaler() }
            let history = try trainer.fit(data)
            return (model.weight.value.scalars + model.bias!.value.scalars, history.steps.map(\.gradientNorm))
        }
        let (plain, plainNorms) = try fit(scaled: false), (scaled, scaledNorms) = try fit(scaled: true)
        expectIdentical(scaled, plain, "parameters")
        // The monitor sees unscaled gradients.
        expectIdentical(scaledNorms, plainNorms, "gradient norms")
    }

    @Test("an overflowing scale skips steps through the monitor's guard, leaving parameters and Adam's state untouched, and halves the scale")
    func overflowBacksOff() throws {
        let (data, model) = try regression()
        let optimizer = Adam(model.parameters, learningRate: 0.05)
        let trainer = Trainer(
            model: model, optimizer: optimizer, loss: .meanSquaredError,
            options: TrainingOptions(epochs: 2, batchSize: 8, progress: .silent, maximumConsecutiveSkippedSteps: nil))
        let scaler = LossScaler(initialScale: 0x1p127)
        trainer.lossScaler = scaler
        var before = model.stateDictionary(), beforeState = optimizer.exportState()
        var scales: [Float] = [], skipped: [Bool] = []
        trainer.onStep = { record in
            skipped.append(record.skipped)
            scales.append(scaler.scale)
            if record.skipped {
                for (name, tensor) in model.stateDictionary() { expectIdentical(tensor.scalars, before[name]!.scalars, name) }
                #expect(optimizer.exportState() == beforeState)
            }
            before = model.stateDictionary()
            beforeState = optimizer.exportState()
        }
        try trainer.fit(data)
        // 2^127 times these gradients overflows Float at some steps and not at others.
        let skips = skipped.filter { $0 }.count
        #expect(skips >= 1 && skips < skipped.count, "\(skipped)")
        #expect(trainer.monitor.skippedSteps == skips)
        // After each step: halved once per skipped step so far (2000 clean steps, the growth interval, are never reached).
        for t in scales.indices {
            let halvings = skipped.prefix(t + 1).filter { $0 }.count
            #expect(scales[t] == Float(sign: .plus, exponent: 127 - halvings, significand: 1), "step \(t): \(scales[t])")
        }
    }

    @Test("the scaler's scale and growth tracker are kept in checkpoints; unreadable values are ignored")
    func checkpoint() throws {
        let (data, model) = try regression()
        let trainer = Trainer(
            model: model, optimizer: SGD(model.parameters, learningRate: 0.01), loss: .meanSquaredError,
            options: TrainingOptions(epochs: 1, batchSize: 8, progress: .silent))
        trainer.lossScaler = LossScaler(initialScale: 1024, growthInterval: 100)
        try trainer.fit(data)
        let checkpoint = trainer.checkpoint()
        let resumed = Trainer(model: model, optimizer: SGD(model.parameters, learningRate: 0.01), loss: .meanSquaredError)
        resumed.lossScaler = LossScaler(growthInterval: 100)
        try resumed.restore(checkpoint)
        #expect(resumed.lossScaler!.scale == 1024 && resumed.lossScaler!.growthTracker == 3)
        var damaged = checkpoint
        damaged.configuration["lossScaler.scale"] = "-inf"
        damaged.configuration["lossScaler.growthTracker"] = "100"
        let other = Trainer(model: model, optimizer: SGD(model.parameters, learningRate: 0.01), loss: .meanSquaredError)
        other.lossScaler = LossScaler(growthInterval: 100)
        try other.restore(damaged)
        #expect(other.lossScaler!.scale == 65536 && other.lossScaler!.growthTracker == 0)
    }

    @Test("a loss scaler with a monitor that stops or throws at a non-finite gradient is refused")
    func needsSkipPolicy() throws {
        let (data, model) = try regression()
        let trainer = Trainer(
            model: model, optimizer: SGD(model.parameters), loss: .meanSquaredError, options: TrainingOptions(epochs: 1, progress: .silent),
            monitor: GradientMonitor(model: model, policy: .stop))
        trainer.lossScaler = LossScaler()
        #expect(throws: TrainingError.self) { try trainer.fit(data) }
        #expect(trainer.completedSteps == 0)
    }

    @Test("a loss scaler in anomaly mode is refused before the first step, not ended by its first overflow")
    func excludesAnomalyMode() throws {
        let (data, model) = try regression()
        let trainer = Trainer(
            model: model, optimizer: SGD(model.parameters), loss: .meanSquaredError,
            options: TrainingOptions(epochs: 1, progress: .silent, detectsAnomalies: true))
        // A scale at which some steps overflow (see overflowBacksOff): anomaly mode would end training there.
        trainer.lossScaler = LossScaler(initialScale: 0x1p127)
        #expect(throws: TrainingError.self) { try trainer.fit(data) }
        #expect(trainer.completedSteps == 0)
    }

    @Test("a growth factor of 1 or less traps with a message")
    func trapsOnBadFactor() async {
        let result = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            _ = LossScaler(growthFactor: 1)
        }
        #expect(standardError(result).contains("LossScaler: growthFactor must be finite and > 1, got 1.0"), "\(standardError(result))")
    }
}
