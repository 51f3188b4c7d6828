// Dynamic loss scaling: PyTorch's GradScaler step for step (goldens from torch 2.15), the default
// growth interval, and the Trainer: scaling by a power of two changes nothing in FP32, an overflowing
// scale skips steps through the monitor's guard and backs off, the scaler's state survives a
// checkpoint and restore(_:) and is checked on the way in (and refused by a trainer without a scaler),
// bad initializer arguments trap with a message, and a policy other than skip or anomaly mode is refused.
import Testing

@testable import GradKit

/// A linear regression that a Trainer fits in a few steps.
/// A Trainer with a loss scaler (scale 1024, growth interval 100) after one epoch of the regression
/// (3 steps), and its model.
private func scaledRegressionTrainer() throws -> (Trainer, Linear) {
    let (data, model) = try regression()
    let trainer = Trainer(
        model: model, optimizer: SGD(model.parameters, learningRate: 0.01), loss: .meanSquaredError,
        options: TrainingOptions(epochs: 1, batchSize: 8, progress: .silent))
    trainer.lossScaler = LossScaler(initialScale: 1024, growthInterval: 100)
    try trainer.fit(data)
    return (trainer, model)
}

private func regression(targetScale: Float = 1) throws -> (Dataset, Linear) {
    let x = randomTensor([24, 3], seed: 5)
    let w: [Float] = [0.5, -1.5, 2]
    let y = (0..<24).map { i in targetScale * (0..<3).reduce(Float(0.25)) { $0 + w[$1] * x.scalars[i * 3 + $1] } }
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

    @Test("backing off from an overflowing scale is not divergence: only steps skipped at a scale of 1 or less count toward the limit")
    func calibrationIsNotDivergence() throws {
        // Targets of order 2^40 make gradients of order 2^41: the scale must fall from 2^127 below about 2^87,
        // some 40 skipped steps in a row, before a step is taken. The default limit is 10.
        let (data, model) = try regression(targetScale: 0x1p40), (plain, _) = try regression()
        let trainer = Trainer(
            model: model, optimizer: SGD(model.parameters, learningRate: 1e-30), loss: .meanSquaredError,
            options: TrainingOptions(epochs: 40, batchSize: 8, progress: .silent))
        trainer.lossScaler = LossScaler(initialScale: 0x1p127)
        let history = try trainer.fit(data)
        let leadingSkips = history.steps.prefix { $0.skipped }.count
        #expect(!history.diverged && history.steps.count == 120 && leadingSkips > 10, "\(history)")
        #expect(history.steps.dropFirst(leadingSkips).contains { !$0.skipped })
        #expect(leadingSkips >= 30 && trainer.lossScaler!.scale < 0x1p90, "\(leadingSkips), \(trainer.lossScaler!.scale)")

        // Gradients that are NaN whatever the scale: 16 back-offs from 2^16 to 1 (not counted), then 10 skips
        // at a scale of 1 or less end the run as diverged.
        let poisoned = withManualSeed(3) { Sequential([Linear(inputSize: 3, outputSize: 1), Poison(on: Set(1...10_000))]) }
        let diverging = Trainer(
            model: poisoned, optimizer: SGD(poisoned.parameters, learningRate: 0.01), loss: .meanSquaredError,
            options: TrainingOptions(epochs: 40, batchSize: 8, progress: .silent))
        diverging.lossScaler = LossScaler()
        let stopped = try diverging.fit(plain)
        #expect(stopped.diverged && stopped.steps.count == 26 && stopped.skippedSteps == 26, "\(stopped)")
        #expect(diverging.lossScaler!.scale == 0x1p-10)
    }

    @Test("the scaler's scale and growth tracker are kept in checkpoints; a checkpoint without them leaves the scaler as it is")
    func checkpoint() throws {
        let (trainer, model) = try scaledRegressionTrainer()
        let checkpoint = trainer.checkpoint()
        let resumed = Trainer(model: model, optimizer: SGD(model.parameters, learningRate: 0.01), loss: .meanSquaredError)
        resumed.lossScaler = LossScaler(growthInterval: 100)
        try resumed.restore(checkpoint)
        #expect(resumed.lossScaler!.scale == 1024 && resumed.lossScaler!.growthTracker == 3)
        var unscaled = checkpoint
        unscaled.configuration["lossScaler.scale"] = nil
        unscaled.configuration["lossScaler.growthTracker"] = nil
        let other = Trainer(model: model, optimizer: SGD(model.parameters, learningRate: 0.01), loss: .meanSquaredError)
        other.lossScaler = LossScaler(growthInterval: 100)
        try other.restore(unscaled)
        #expect(other.lossScaler!.state == LossScaler.State(scale: 65536, growthTracker: 0))
    }

    @Test("a checkpoint file whose scaler state is missing, unreadable or invalid is refused by name, and nothing changes", arguments: [
        ("lossScaler.scale", "1e-39"), ("lossScaler.scale", "0"), ("lossScaler.scale", "-2"), ("lossScaler.scale", "nan"),
        ("lossScaler.scale", "inf"), ("lossScaler.scale", "big"), ("lossScaler.scale", nil), ("lossScaler.scale", "1024\u{0}junk"),
        ("lossScaler.growthTracker", "100"), ("lossScaler.growthTracker", "-1"), ("lossScaler.growthTracker", "1.5"),
        ("lossScaler.growthTracker", nil),
    ] as [(String, String?)])
    func damagedCheckpointFile(_ key: String, _ value: String?) throws {
        let (trainer, _) = try scaledRegressionTrainer()
        var checkpoint = trainer.checkpoint()
        checkpoint.configuration[key] = value
        let path = try temporaryDirectory() + "/damaged.safetensors"
        try checkpoint.write(to: path)

        let fresh = withManualSeed(9) { Linear(inputSize: 3, outputSize: 1) }
        let before = fresh.stateDictionary()
        let resumed = Trainer(model: fresh, optimizer: SGD(fresh.parameters, learningRate: 0.01), loss: .meanSquaredError)
        resumed.lossScaler = LossScaler(growthInterval: 100)
        let error = try #require(throws: CheckpointError.self) { try resumed.restore(Checkpoint.read(from: path), file: path) }
        guard case .badMetadata(let file, "configuration", let reason) = error else {
            Issue.record("\(error)")
            return
        }
        #expect(file == path && reason.hasPrefix("'\(key)' "), "\(error)")
        #expect(resumed.lossScaler!.state == LossScaler.State(scale: 65536, growthTracker: 0))
        #expect(resumed.completedSteps == 0)
        for (name, tensor) in fresh.stateDictionary() { expectIdentical(tensor.scalars, before[name]!.scalars, name) }
    }

    @Test("a trainer without a loss scaler refuses a checkpoint file holding a scaler's state, naming it and the fix, and changes nothing; with the entries removed or a scaler set it resumes")
    func scalerStateWithoutScaler() throws {
        let (trainer, model) = try scaledRegressionTrainer()
        let saved = trainer.checkpoint()
        let directory = try temporaryDirectory()
        let path = directory + "/scaled.safetensors"
        try saved.write(to: path)
        var trackerOnly = saved
        trackerOnly.configuration["lossScaler.scale"] = nil
        try trackerOnly.write(to: directory + "/tracker-only.safetensors")

        let fresh = withManualSeed(9) { Linear(inputSize: 3, outputSize: 1) }
        let before = fresh.stateDictionary()
        let optimizer = SGD(fresh.parameters, learningRate: 0.01)
        let resumed = Trainer(model: fresh, optimizer: optimizer, loss: .meanSquaredError)
        let optimizerBefore = optimizer.exportState()
        for (file, key, value) in [(path, "lossScaler.scale", "1024.0"), (directory + "/tracker-only.safetensors", "lossScaler.growthTracker", "3")] {
            let error = try #require(throws: CheckpointError.self) { try resumed.restore(Checkpoint.read(from: file), file: file) }
            guard case .badMetadata(file, "configuration", let reason) = error else {
                Issue.record("\(error)")
                continue
            }
            #expect(reason.hasPrefix("'\(key)' is '\(value)': the checkpoint's run scaled its loss"), "\(error)")
            #expect(reason.contains("set `trainer.lossScaler = LossScaler()`"), "\(error)")
            #expect(reason.contains("remove the entries 'lossScaler.scale' and 'lossScaler.growthTracker'"), "\(error)")
            #expect(resumed.lossScaler == nil && resumed.completedSteps == 0 && resumed.completedEpochs == 0)
            #expect(optimizer.exportState() == optimizerBefore)
            for (name, tensor) in fresh.stateDictionary() { expectIdentical(tensor.scalars, before[name]!.scalars, name) }
        }

        // Resuming without scaling on purpose: the entries removed, the rest restores.
        var unscaled = try Checkpoint.read(from: path)
        unscaled.configuration["lossScaler.scale"] = nil
        unscaled.configuration["lossScaler.growthTracker"] = nil
        try resumed.restore(unscaled, file: path)
        #expect(resumed.lossScaler == nil && resumed.completedSteps == trainer.completedSteps && resumed.completedEpochs == 1)
        for (name, tensor) in model.stateDictionary() { expectIdentical(fresh.stateDictionary()[name]!.scalars, tensor.scalars, name) }
        #expect(resumed.checkpoint().configuration["lossScaler.scale"] == nil)

        // Continuing with scaling: a scaler set before restoring takes the state.
        let scaled = Trainer(model: fresh, optimizer: SGD(fresh.parameters, learningRate: 0.01), loss: .meanSquaredError)
        scaled.lossScaler = LossScaler(growthInterval: 100)
        try scaled.restore(Checkpoint.read(from: path), file: path)
        #expect(scaled.lossScaler!.state == trainer.lossScaler!.state)
    }

    @Test("state and restore(_:) carry a scaler over: the restored one scales, grows and backs off as the original does")
    func stateRoundTrip() throws {
        let original = LossScaler(initialScale: 256, growthFactor: 4, backoffFactor: 0.25, growthInterval: 5)
        for clean in [true, true, false, true, true, true, true, true, true, true] { original.update(foundNonFinite: !clean) }
        let saved = original.state
        #expect(saved == LossScaler.State(scale: original.scale, growthTracker: original.growthTracker))
        let copy = LossScaler(growthFactor: 4, backoffFactor: 0.25, growthInterval: 5)
        try copy.restore(saved)
        #expect(copy.state == saved)
        for clean in [true, true, true, false, true, true, true, true, true, true, true] {
            original.update(foundNonFinite: !clean)
            copy.update(foundNonFinite: !clean)
            #expect(copy.state == original.state)
        }
        // 1/S must be a finite Float: 2^128 is not (Float.greatestFiniteMagnitude is 2^128 − 2^104), 2^128 / 1.004 is.
        try copy.restore(LossScaler.State(scale: 0x1.01p-128, growthTracker: 4))
        #expect(copy.state == LossScaler.State(scale: 0x1.01p-128, growthTracker: 4))
    }

    @Test("restore(_:) refuses a scale that is not finite and positive or whose reciprocal overflows, and a tracker out of range, and changes nothing", arguments: [
        (LossScaler.State(scale: 0, growthTracker: 0), LossScalerStateError.invalidScale(0)),
        (LossScaler.State(scale: -1, growthTracker: 0), .invalidScale(-1)),
        (LossScaler.State(scale: .infinity, growthTracker: 0), .invalidScale(.infinity)),
        (LossScaler.State(scale: Float(1e-39 as Double), growthTracker: 0), .scaleTooSmall(Float(1e-39 as Double))),
        (LossScaler.State(scale: 0x1p-128, growthTracker: 0), .scaleTooSmall(0x1p-128)),
        (LossScaler.State(scale: .leastNonzeroMagnitude, growthTracker: 0), .scaleTooSmall(.leastNonzeroMagnitude)),
        (LossScaler.State(scale: 1024, growthTracker: -1), .growthTrackerOutOfRange(-1, growthInterval: 5)),
        (LossScaler.State(scale: 1024, growthTracker: 5), .growthTrackerOutOfRange(5, growthInterval: 5)),
    ])
    func restoreRefuses(_ state: LossScaler.State, _ expected: LossScalerStateError) {
        let scaler = LossScaler(initialScale: 8, growthInterval: 5)
        scaler.update(foundNonFinite: false)
        #expect(throws: expected) { try scaler.restore(state) }
        #expect(scaler.state == LossScaler.State(scale: 8, growthTracker: 1))
        // NaN is refused too (it equals nothing, so it is checked by case).
        #expect { try scaler.restore(LossScaler.State(scale: .nan, growthTracker: 0)) } throws: { error in
            if case LossScalerStateError.invalidScale(let scale) = error { return scale.isNaN }
            return false
        }
        #expect(String(describing: expected).hasPrefix("loss scaler state: the "))
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

    /// The initializer's arguments that must trap, and the message they must trap with.
    static let badArguments: [(label: String, message: String)] = [
        ("initialScale 0", "initialScale must be finite and > 0, got 0.0"),
        ("initialScale nan", "initialScale must be finite and > 0, got nan"),
        ("initialScale 1e-39", "initialScale must be at least \(LossScaler.State.smallestScale) so that 1/S is a finite Float, got 1e-39"),
        ("growthFactor 1", "growthFactor must be finite and > 1, got 1.0"),
        ("growthFactor nan", "growthFactor must be finite and > 1, got nan"),
        ("backoffFactor 1", "backoffFactor must be in (0, 1), got 1.0"),
        ("backoffFactor nan", "backoffFactor must be in (0, 1), got nan"),
        ("growthInterval 0", "growthInterval must be >= 1, got 0"),
    ]

    /// Builds the scaler `label` names: one bad argument, the rest PyTorch's defaults.
    static func makeScaler(_ label: String) -> LossScaler {
        switch label {
        case "initialScale 0": LossScaler(initialScale: 0)
        case "initialScale nan": LossScaler(initialScale: .nan)
        case "initialScale 1e-39": LossScaler(initialScale: Float(1e-39 as Double))
        case "growthFactor 1": LossScaler(growthFactor: 1)
        case "growthFactor nan": LossScaler(growthFactor: .nan)
        case "backoffFactor 1": LossScaler(backoffFactor: 1)
        case "backoffFactor nan": LossScaler(backoffFactor: .nan)
        case "growthInterval 0": LossScaler(growthInterval: 0)
        default: fatalError("no such case \(label)")
        }
    }

    // A precondition's message is dropped in -O builds; fatalError keeps it in every build. In the
    // debug build the tests run in, the runtime's "Fatal error:" prefix (not "Precondition failed:") tells them apart.
    @Test("a bad initializer argument traps with a message naming it, kept in every build", arguments: LossScalerTests.badArguments.indices)
    func trapsOnBadArgument(_ index: Int) async {
        let (label, message) = LossScalerTests.badArguments[index]
        let result = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) { [index] in
            _ = LossScalerTests.makeScaler(LossScalerTests.badArguments[index].label)
        }
        #expect(standardError(result).contains("Fatal error: LossScaler: \(message)"), "\(label): \(standardError(result))")
    }

    @Test("backing off stops at the smallest scale whose reciprocal is finite, a state restore accepts")
    func backoffFloor() throws {
        let smallest = LossScaler.State.smallestScale
        #expect(Float(1 / Double(smallest)).isFinite && !Float(1 / Double(smallest.nextDown)).isFinite)
        let scaler = LossScaler(initialScale: 1e-37)
        for _ in 0..<20 { scaler.update(foundNonFinite: true) }
        #expect(scaler.scale == smallest)
        try LossScaler().restore(scaler.state)
        #expect(throws: LossScalerStateError.scaleTooSmall(smallest.nextDown)) {
            try LossScaler().restore(LossScaler.State(scale: smallest.nextDown, growthTracker: 0))
        }
    }
}
