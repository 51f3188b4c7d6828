// Parameter groups against PyTorch's param_groups; changes between steps; state; the hyperparameter tables.
import Testing

@testable import GradKit

/// A group of `parameters` setting `options` (PyTorch's keys, as the goldens
/// give them) through ``ParameterGroup``'s public initializer.
func makeGroup(_ parameters: [Parameter], _ options: [String: Double]) -> ParameterGroup {
    let known: Set = [
        "lr", "weight_decay", "momentum", "dampening", "nesterov", "beta1", "beta2", "eps", "amsgrad", "alpha", "centered",
        "lr_decay", "initial_accumulator_value", "maximize",
    ]
    precondition(Set(options.keys).isSubset(of: known), "unknown option in \(options)")
    func f(_ key: String) -> Float? { options[key].map(Float.init) }
    func b(_ key: String) -> Bool? { options[key].map { $0 != 0 } }
    return ParameterGroup(
        parameters, learningRate: f("lr"), weightDecay: f("weight_decay"), momentum: f("momentum"), dampening: f("dampening"),
        nesterov: b("nesterov"), beta1: f("beta1"), beta2: f("beta2"), epsilon: f("eps"), amsgrad: b("amsgrad"),
        alpha: f("alpha"), centered: b("centered"), learningRateDecay: f("lr_decay"),
        initialAccumulatorValue: f("initial_accumulator_value"), maximize: b("maximize"))
}

/// The schedules of the group goldens (their PyTorch twins are in optimizer_goldens.py).
private func groupSchedule(_ name: String) -> any LearningRateSchedule {
    switch name {
    case "step": StepDecay(stepSize: 3, gamma: 0.5)
    case "inverse_time": InverseTimeDecay(decayRate: 0.5, decaySteps: 2)
    default: preconditionFailure("unknown schedule \(name)")
    }
}

/// The goldens' two parameters, p1 alone in group 0 and p2 alone in group 1.
private func goldenGroups(_ golden: OptimizerGoldens.GroupCase) -> (Parameter, Parameter, [ParameterGroup]) {
    let p1 = Parameter(Tensor(shape: [2, 3], scalars: OptimizerGoldens.p1), name: "p1")
    let p2 = Parameter(Tensor(shape: [4], scalars: OptimizerGoldens.p2), name: "p2")
    return (p1, p2, [makeGroup([p1], golden.groups[0]), makeGroup([p2], golden.groups[1])])
}

private let groupCaseNames = OptimizerGoldens.groupCases.map(\.name)
private let kinds = ["SGD", "AdaGrad", "RMSprop", "Adam", "AdamW"]

@Suite("Parameter groups")
struct ParameterGroupTests {
    @Test("two groups under a schedule follow PyTorch's rates, trajectories and state, both backends", arguments: groupCaseNames)
    func goldens(name: String) {
        let golden = OptimizerGoldens.groupCases.first { $0.name == name }!
        for backend in KernelBackend.allCases {
            Kernels.withBackend(backend) {
                let (p1, p2, groups) = goldenGroups(golden)
                let optimizer = makeOptimizer(golden.kind, golden.options, groups)
                let scheduler = LearningRateScheduler(optimizer: optimizer, schedule: groupSchedule(golden.schedule))
                #expect(golden.trajectory.count == 8 && golden.rates.count == 8)
                for (step, (g1, g2)) in OptimizerGoldens.gradients.prefix(golden.trajectory.count).enumerated() {
                    // Two roundings to Float (the base rate, then the scheduled one): one ulp.
                    let rates = optimizer.parameterGroups.map(\.learningRate)
                    #expect(rates.count == golden.rates[step].count)
                    for (rate, expected) in zip(rates, golden.rates[step]) {
                        #expect(Swift.abs(rate - Float(expected)) <= Float(expected).ulp, "\(name) step \(step): rate \(rate) vs \(expected)")
                    }
                    setGradients([p1, p2], [g1, g2])
                    optimizer.step()
                    scheduler.step()
                    expectPyTorchClose(p1.value.scalars + p2.value.scalars, golden.trajectory[step], "\(name) step \(step + 1) \(backend)")
                }
                let state = optimizer.exportState()
                #expect(state.parameters.map(\.step) == [8, 6], "p2 had no gradient in 2 of 8 steps")
                #expect(Set(state.parameters.enumerated().flatMap { i, p in p.buffers.keys.map { "\(i).\($0)" } }) == Set(golden.state.keys))
                for (key, expected) in golden.state {
                    let parts = key.split(separator: ".", maxSplits: 1)
                    guard let buffer = state.parameters[Int(parts[0])!].buffers[String(parts[1])] else {
                        Issue.record("\(name): state buffer \(key) missing (\(backend))")
                        continue
                    }
                    expectPyTorchClose(buffer.scalars, expected, "\(name) state \(key) \(backend)")
                }
                // Each group exports the values it set (the scheduled rate aside).
                #expect(state.groups.map(\.parameterIndices) == [[0], [1]])
                for (g, options) in golden.groups.enumerated() {
                    for (key, value) in options where key != "lr" {
                        #expect(state.groups[g].hyperparameters[key] == Double(Float(value)), "\(name) group \(g) \(key)")
                    }
                }
            }
        }
    }

    @Test("reduce on plateau lowers each group to its own minimum, as PyTorch's min_lr list")
    func plateauPerGroup() {
        let optimizer = SGD(
            [ParameterGroup([Parameter(Tensor(zeros: [1]))]), ParameterGroup([Parameter(Tensor(zeros: [1]))], learningRate: 0.05)],
            learningRate: 0.1)
        let plateau = ReduceLearningRateOnPlateau(
            optimizer: optimizer, factor: 0.5, patience: 5, cooldown: 2, minimums: OptimizerGoldens.plateauGroupMinimums)
        #expect(OptimizerGoldens.plateauGroupRates.count == OptimizerGoldens.plateauMetrics.count)
        for (metric, expected) in zip(OptimizerGoldens.plateauMetrics, OptimizerGoldens.plateauGroupRates) {
            plateau.step(metric: metric)
            let rates = optimizer.parameterGroups.map(\.learningRate)
            #expect(rates.count == expected.count)
            // Float learning rates compound the factor in Float: 1e-6 relative.
            for (rate, e) in zip(rates, expected) { #expect(Swift.abs(Double(rate) - e) <= 1e-6 * e, "\(rates) vs \(expected)") }
        }
        #expect(Set(OptimizerGoldens.plateauGroupRates.map { $0[1] }).count >= 3, "group 1 is reduced to its own minimum")
    }

    @Test("learning rate and momentum set by hand: the group's values apply, the optimizer's properties read group 0 and set every group")
    func byHand() {
        let a = Parameter(Tensor(shape: [1], scalars: [1]), name: "a"), b = Parameter(Tensor(shape: [1], scalars: [1]), name: "b")
        let sgd = SGD([ParameterGroup([a], learningRate: 0.1), ParameterGroup([b])], learningRate: 0.3)
        #expect(sgd.learningRate == 0.1 && sgd.parameterGroups.map(\.learningRate) == [0.1, 0.3])
        func step() {
            setGradients([a, b], [[1], [1]])
            sgd.step()
        }
        step()
        #expect(a.value.scalars == [1 - 0.1] && b.value.scalars == [1 - 0.3])
        sgd.parameterGroups[1].learningRate = 0.5
        step()
        #expect(a.value.scalars == [Float(1 - 0.1) - 0.1] && b.value.scalars == [Float(1 - 0.3) - 0.5])
        sgd.learningRate = 0.25
        #expect(sgd.parameterGroups.map(\.learningRate) == [0.25, 0.25])
        sgd.momentum = 0.5
        #expect(sgd.parameterGroups.map(\.momentum) == [0.5, 0.5])
        let before = (a.value.scalars[0], b.value.scalars[0])
        step() // the momentum buffer starts as the gradient: p - lr * 1
        #expect(a.value.scalars == [before.0 - 0.25] && b.value.scalars == [before.1 - 0.25])
        step() // b = 0.5 * 1 + 1
        #expect(a.value.scalars == [before.0 - 0.25 - 0.25 * 1.5] && b.value.scalars == [before.1 - 0.25 - 0.25 * 1.5])
    }

    @Test("AdaGrad fills each group's accumulators with the group's initial value (PyTorch uses the constructor's)")
    func adagradInitialAccumulator() throws {
        let a = Parameter(Tensor(shape: [1], scalars: [1]), name: "a"), b = Parameter(Tensor(shape: [2], scalars: [1, 1]), name: "b")
        let adagrad = AdaGrad([ParameterGroup([a]), ParameterGroup([b], initialAccumulatorValue: 0.5)], initialAccumulatorValue: 0.25)
        setGradients([a, b], [[2], [2, 2]])
        adagrad.step()
        let state = adagrad.exportState()
        let sums: [[Float]?] = state.parameters.map { $0.buffers["sum"]?.scalars }
        #expect(sums == [[4.25], [4.5, 4.5]])
        #expect(state.groups.map { $0.hyperparameters["initial_accumulator_value"] } == [0.25, 0.5])
        // A parameter restored without state gets its own group's value back.
        var reset = state
        reset.parameters[1] = .init(name: "b", step: 0, buffers: [:])
        try adagrad.restoreState(reset)
        #expect(adagrad.exportState().parameters[1].buffers.isEmpty)
        setGradients([a, b], [nil, [2, 2]])
        adagrad.step()
        #expect(adagrad.exportState().parameters[1].buffers["sum"]?.scalars == [4.5, 4.5])
    }

    /// One run of `kind` over three parameters: [a, c] in group 0 and [b] in
    /// group 1, or (`separate`) two optimizers of one group each; the groups'
    /// values change after steps 2 and 4 (`changes`). Returns the values and
    /// each parameter's exported state by name.
    private static func changingRun(
        _ kind: String, separate: Bool, changes: Bool, backend: KernelBackend = .c
    ) -> ([String: [Float]], [String: OptimizerState.ParameterState]) {
        Kernels.withBackend(backend) {
            let golden = OptimizerGoldens.groupCases.first { $0.kind == kind }!
            let a = Parameter(randomTensor([3, 5], seed: 1, in: -2...2), name: "a")
            let b = Parameter(randomTensor([17], seed: 2, in: -2...2), name: "b")
            let c = Parameter(randomTensor([4], seed: 3, in: -2...2), name: "c")
            let optimizers: [Optimizer] =
                separate
                ? [makeOptimizer(kind, golden.options, [makeGroup([a, c], golden.groups[0])]),
                   makeOptimizer(kind, golden.options, [makeGroup([b], golden.groups[1])])]
                : [makeOptimizer(kind, golden.options, [makeGroup([a, c], golden.groups[0]), makeGroup([b], golden.groups[1])])]
            // (optimizer, group) holding [a, c] and [b].
            let first = (optimizers[0], 0), second = separate ? (optimizers[1], 0) : (optimizers[0], 1)
            // A value of each optimizer that changes (besides the rate and weight decay).
            let other: (Hyperparameter, Float) = [
                "SGD": (.momentum, 0.3), "AdaGrad": (.learningRateDecay, 0.2), "RMSprop": (.alpha, 0.9),
                "Adam": (.beta1, 0.5), "AdamW": (.beta2, 0.9),
            ][kind]!
            for step in 0..<6 {
                for (i, p) in [a, b, c].enumerated() {
                    p.gradient = step == 3 && i == 2 ? nil : randomTensor(p.shape, seed: UInt64(10 * step + i), in: -1...1)
                }
                for optimizer in optimizers { optimizer.step() }
                guard changes else { continue }
                if step == 1 {
                    second.0.parameterGroups[second.1].learningRate *= 0.5
                    second.0.parameterGroups[second.1].weightDecay = 0.05
                }
                if step == 3 {
                    first.0.parameterGroups[first.1][other.0] = other.1
                    first.0.parameterGroups[first.1].learningRate = 0.002
                }
            }
            var values: [String: [Float]] = [:], states: [String: OptimizerState.ParameterState] = [:]
            for p in [a, b, c] { values[p.name] = p.value.scalars }
            for optimizer in optimizers { for entry in optimizer.exportState().parameters { states[entry.name] = entry } }
            return (values, states)
        }
    }

    @Test("values changed between steps take effect in their group only: two groups equal two separate optimizers bit for bit", arguments: kinds)
    func changesBetweenSteps(kind: String) {
        let grouped = Self.changingRun(kind, separate: false, changes: true)
        let separate = Self.changingRun(kind, separate: true, changes: true)
        #expect(grouped.0.keys.sorted() == separate.0.keys.sorted())
        for (name, values) in grouped.0 { expectIdentical(values, separate.0[name]!, "\(kind) \(name)") }
        #expect(grouped.1 == separate.1)
        // The changes matter: without them every parameter ends elsewhere.
        let unchanged = Self.changingRun(kind, separate: false, changes: false)
        for name in ["a", "b"] { #expect(unchanged.0[name]! != grouped.0[name]!, "\(kind) \(name)") }
    }

    @Test("C and Swift agree bit for bit with groups whose values differ and change", arguments: kinds)
    func parity(kind: String) {
        let c = Self.changingRun(kind, separate: false, changes: true, backend: .c)
        let swift = Self.changingRun(kind, separate: false, changes: true, backend: .swift)
        for (name, values) in c.0 { expectIdentical(values, swift.0[name]!, "\(kind) \(name)") }
        #expect(c.1 == swift.1)
    }

    @Test("a run never crosses a group boundary: large groups, both backends, against separate optimizers", arguments: kinds)
    func largeGroups(kind: String) {
        let golden = OptimizerGoldens.groupCases.first { $0.kind == kind }!
        func run(_ backend: KernelBackend, separate: Bool) -> [[Float]] {
            Kernels.withBackend(backend) {
                let shapes = [[70, 1001], [3], [257], [1, 17]]
                let parameters = shapes.enumerated().map { i, shape in
                    Parameter(randomTensor(shape, seed: UInt64(i + 1), in: -2...2), name: "p\(i)")
                }
                let groups = [makeGroup(Array(parameters[0..<2]), golden.groups[0]), makeGroup(Array(parameters[2...]), golden.groups[1])]
                let optimizers = separate ? groups.map { makeOptimizer(kind, golden.options, [$0]) } : [makeOptimizer(kind, golden.options, groups)]
                for step in 0..<8 {
                    for (i, p) in parameters.enumerated() {
                        if i == 1 && step == 3 { p.gradient = nil; continue }
                        let scale: Float = [1, 1e-3, 1e2, 1, 0.5, 1e-3, 10, 1][step]
                        p.gradient = randomTensor(p.shape, seed: UInt64(100 * step + i), in: -1...1) * scale
                    }
                    for optimizer in optimizers { optimizer.step() }
                }
                return parameters.map(\.value.scalars)
            }
        }
        let c = run(.c, separate: false), swift = run(.swift, separate: false), reference = run(.c, separate: true)
        #expect(c.count == 4 && swift.count == 4 && reference.count == 4)
        for i in c.indices {
            expectIdentical(c[i], swift[i], "\(kind) p\(i) C vs Swift")
            expectIdentical(c[i], reference[i], "\(kind) p\(i) grouped vs separate")
        }
    }

    @Test("groups export and restore exactly, through a checkpoint file too; a restore resets every group's values", arguments: groupCaseNames)
    func resume(name: String) throws {
        let golden = OptimizerGoldens.groupCases.first { $0.name == name }!
        let steps = Array(OptimizerGoldens.gradients.prefix(8))
        let (s1, s2, straightGroups) = goldenGroups(golden)
        let straight = makeOptimizer(golden.kind, golden.options, straightGroups)
        for (g1, g2) in steps {
            setGradients([s1, s2], [g1, g2])
            straight.step()
        }
        let (p1, p2, groups) = goldenGroups(golden)
        let first = makeOptimizer(golden.kind, golden.options, groups)
        for (g1, g2) in steps.prefix(4) {
            setGradients([p1, p2], [g1, g2])
            first.step()
        }
        let saved = first.exportState()
        #expect(saved.groups.count == 2 && saved.groups[0].hyperparameters != saved.groups[1].hyperparameters)
        let directory = try temporaryDirectory()
        try Checkpoint(model: [:], optimizer: saved).write(to: directory + "/groups.safetensors")
        let read = try Checkpoint.read(from: directory + "/groups.safetensors")
        #expect(read.optimizer == saved)

        // Fresh parameters with the same values, in groups with the initializer's defaults.
        let q1 = Parameter(p1.value, name: "p1"), q2 = Parameter(p2.value, name: "p2")
        let resumed = makeOptimizer(golden.kind, [:], [ParameterGroup([q1]), ParameterGroup([q2])])
        try resumed.restoreState(read.optimizer!)
        #expect(resumed.exportState() == saved)
        for (g1, g2) in steps.dropFirst(4) {
            setGradients([q1, q2], [g1, g2])
            resumed.step()
        }
        expectIdentical(q1.value.scalars + q2.value.scalars, s1.value.scalars + s2.value.scalars, "\(name) resumed")
        #expect(resumed.exportState() == straight.exportState())
    }

    @Test("a restore with another group structure, out-of-range or Float-infinite values, or foreign keys throws and changes nothing")
    func restoreErrors() {
        let a = Parameter(Tensor(shape: [2], scalars: [1, 2]), name: "a")
        let b = Parameter(Tensor(shape: [3], scalars: [3, 4, 5]), name: "b")
        let c = Parameter(Tensor(shape: [1], scalars: [6]), name: "c")
        let adam = Adam([ParameterGroup([a]), ParameterGroup([b, c], learningRate: 0.01, amsgrad: true)], learningRate: 0.1)
        setGradients([a, b, c], [[1, 1], [1, 1, 1], [1]])
        adam.step()
        let good = adam.exportState(), values = [a, b, c].map(\.value.scalars)

        let oneGroup = Adam([Parameter(Tensor(zeros: [2])), Parameter(Tensor(zeros: [3])), Parameter(Tensor(zeros: [1]))])
        #expect(throws: OptimizerStateError.groupCountMismatch(expected: 1, found: 2)) { try oneGroup.restoreState(good) }
        let otherSplit = Adam([
            ParameterGroup([Parameter(Tensor(zeros: [2])), Parameter(Tensor(zeros: [3]))]), ParameterGroup([Parameter(Tensor(zeros: [1]))]),
        ])
        #expect(throws: OptimizerStateError.groupMismatch(group: 0, expected: [0, 1], found: [0])) { try otherSplit.restoreState(good) }

        let bad: [(String, Int, String, Double, OptimizerStateError)] = [
            ("1e300 is infinite as a Float", 1, "lr", 1e300, .invalidValue(name: "lr of group 1", value: 1e300)),
            ("beta2 in [0, 1)", 0, "beta2", 1, .invalidValue(name: "beta2 of group 0", value: 1)),
            ("negative epsilon", 1, "eps", -1e-8, .invalidValue(name: "eps of group 1", value: -1e-8)),
            ("NaN weight decay", 0, "weight_decay", .nan, .invalidValue(name: "weight_decay of group 0", value: .nan)),
            ("a flag is 0 or 1", 1, "maximize", 0.5, .invalidValue(name: "maximize of group 1", value: 0.5)),
            ("Adam has no momentum", 1, "momentum", 0.9, .unknownHyperparameter(name: "momentum of group 1")),
        ]
        for (reason, group, key, value, expected) in bad {
            var state = good
            state.groups[group].hyperparameters[key] = value
            do {
                try adam.restoreState(state)
                Issue.record("no error: \(reason)")
            } catch let error as OptimizerStateError {
                // NaN != NaN: compare the descriptions.
                #expect(error.description == expected.description, "\(reason)")
            } catch {
                Issue.record("\(reason): \(error)")
            }
        }
        var moved = good
        moved.groups[1].parameterIndices = [2, 1]
        #expect(throws: OptimizerStateError.groupMismatch(group: 1, expected: [1, 2], found: [2, 1])) { try adam.restoreState(moved) }
        var noMaximum = good
        noMaximum.parameters[1].buffers["max_exp_avg_sq"] = nil // group 1 keeps AMSGrad's maximum
        #expect(throws: OptimizerStateError.missingBuffer(parameter: "b", buffer: "max_exp_avg_sq")) { try adam.restoreState(noMaximum) }
        #expect(adam.exportState() == good, "a failed restore changes nothing")
        #expect([a, b, c].map(\.value.scalars) == values)

        // Setting the first group's dictionary changes that entry everywhere, and only it.
        var flags = good
        flags.hyperparameters["maximize"] = 1
        #expect(flags.groups.map { $0.hyperparameters["maximize"] } == [1, 1])
        #expect(flags.groups.map { $0.hyperparameters["lr"] } == good.groups.map { $0.hyperparameters["lr"] })
    }

    @Test("a checkpoint with one optimizer.hyperparameters object and no groups restores as one group")
    func oldCheckpoint() throws {
        let w = Parameter(Tensor(shape: [2], scalars: [1, -1]), name: "w")
        let adam = Adam([w], learningRate: 0.1)
        setGradients([w], [[0.5, -2]])
        adam.step()
        let buffers = adam.exportState().parameters[0].buffers
        // Metadata as written before groups existed, by hand.
        let metadata = [
            "format": "gradkit-checkpoint-1", "step": "1", "epoch": "0", "optimizer.kind": "Adam", "optimizer.stepCount": "1",
            "optimizer.parameters": #"["w"]"#, "optimizer.steps": "[1]",
            "optimizer.hyperparameters": #"{"lr":0.25,"beta1":0.8,"beta2":0.99,"eps":1e-06,"weight_decay":0,"amsgrad":0,"maximize":0}"#,
        ]
        var tensors = ["w": w.value]
        for (name, tensor) in buffers { tensors["optimizer/0/\(name)"] = tensor }
        let directory = try temporaryDirectory()
        try SafeTensors.write(tensors, metadata: metadata, to: directory + "/old.safetensors")
        let read = try Checkpoint.read(from: directory + "/old.safetensors")
        let state = try #require(read.optimizer)
        #expect(state.groups.count == 1 && state.groups[0].parameterIndices == [0])
        #expect(state.hyperparameters == ["lr": 0.25, "beta1": 0.8, "beta2": 0.99, "eps": 1e-6, "weight_decay": 0, "amsgrad": 0, "maximize": 0])
        let resumed = Adam([Parameter(w.value, name: "w")])
        try resumed.restoreState(state)
        #expect(resumed.learningRate == 0.25 && resumed.beta1 == 0.8 && resumed.beta2 == 0.99 && resumed.epsilon == 1e-6)
        #expect(resumed.exportState().parameters == adam.exportState().parameters)

        // Malformed group metadata names its key.
        let malformed: [([String: String], String)] = [
            (["optimizer.groups": #"[{"lr":0.1}]"#], "params"),
            (["optimizer.groups": #"[{"params":[0],"lr":"fast"}]"#], "not a number"),
            (["optimizer.groups": #"{"params":[0]}"#], "not an array"),
            (["optimizer.groups": #"[{"params":[-1]}]"#], "params"),
            (["optimizer.groups": #"[{"params":[0]}]"#, "optimizer.hyperparameters": "{}"], "both"),
            ([:], "neither"),
        ]
        for (changes, reason) in malformed {
            var bad = metadata
            bad["optimizer.hyperparameters"] = nil
            for (key, value) in changes { bad[key] = value }
            try SafeTensors.write(tensors, metadata: bad, to: directory + "/bad.safetensors")
            do {
                _ = try Checkpoint.read(from: directory + "/bad.safetensors")
                Issue.record("no error: \(reason)")
            } catch let CheckpointError.badMetadata(file, key, message) {
                #expect(file.hasSuffix("bad.safetensors") && key.hasPrefix("optimizer"))
                #expect(message.contains(reason), "'\(message)' should mention '\(reason)'")
            }
        }
    }

    @Test("the Trainer's schedule scales each group from its own rate")
    func trainerSchedule() throws {
        let data = Dataset.xor(copies: 16, noise: 0.1)
        let model = withManualSeed(2) { MLP(sizes: [2, 8, 2]) }
        let biases = model.parameters.filter { $0.name.hasSuffix("bias") }, weights = model.parameters.filter { !$0.name.hasSuffix("bias") }
        #expect(!biases.isEmpty && !weights.isEmpty)
        let optimizer = SGD([ParameterGroup(weights), ParameterGroup(biases, learningRate: 0.02)], learningRate: 0.1)
        let trainer = Trainer(
            model: model, optimizer: optimizer, loss: .softmaxCrossEntropy,
            options: TrainingOptions(epochs: 4, batchSize: 16, schedule: .perEpoch(StepDecay(stepSize: 1, gamma: 0.5)), progress: .silent))
        let history = try trainer.fit(data)
        #expect(history.epochs.map(\.learningRate) == [0.1, 0.05, 0.025, 0.0125])
        #expect(optimizer.parameterGroups.map(\.learningRate) == [0.0125, Float(Double(Float(0.02)) * 0.125)])
    }

    @Test("one-cycle momentum is cycled in every group; each group's rate follows the cycle")
    func oneCyclePerGroup() {
        let sgd = SGD([ParameterGroup([Parameter(Tensor(zeros: [1]))]), ParameterGroup([Parameter(Tensor(zeros: [1]))], learningRate: 0.01)], learningRate: 0.1, momentum: 0.9)
        let schedule = OneCycle(maximum: 0.5, totalSteps: 10)
        let scheduler = LearningRateScheduler(optimizer: sgd, schedule: schedule)
        for step in 0..<10 {
            #expect(sgd.parameterGroups.map(\.momentum) == [Float](repeating: Float(schedule.momentum(atStep: step)!), count: 2))
            #expect(scheduler.learningRates.count == 2)
            #expect(sgd.parameterGroups.map(\.learningRate) == scheduler.learningRates.map(Float.init))
            scheduler.step()
        }
        #expect(scheduler.baseLearningRates == [Double(Float(0.1)), Double(Float(0.01))])
    }
}

/// The ranges and defaults GradKit documents (docs/decisions.md), written out
/// apart from the optimizers' tables: `nil` upper bound is unbounded; flags
/// have no range.
private struct Documented {
    var key: String, defaultValue: Float
    var range: (lower: Float, upper: Float?, includesUpper: Bool)?
}

private let atLeastZero: (Float, Float?, Bool) = (0, nil, false)
private let unitHalfOpen: (Float, Float?, Bool) = (0, 1, false)
private let unitClosed: (Float, Float?, Bool) = (0, 1, true)
private let documented: [String: [Documented]] = [
    "SGD": [
        .init(key: "lr", defaultValue: 1e-3, range: atLeastZero), .init(key: "momentum", defaultValue: 0, range: unitClosed),
        .init(key: "dampening", defaultValue: 0, range: unitClosed), .init(key: "weight_decay", defaultValue: 0, range: atLeastZero),
        .init(key: "nesterov", defaultValue: 0), .init(key: "maximize", defaultValue: 0),
    ],
    "AdaGrad": [
        .init(key: "lr", defaultValue: 1e-2, range: atLeastZero), .init(key: "lr_decay", defaultValue: 0, range: atLeastZero),
        .init(key: "weight_decay", defaultValue: 0, range: atLeastZero),
        .init(key: "initial_accumulator_value", defaultValue: 0, range: atLeastZero),
        .init(key: "eps", defaultValue: 1e-10, range: atLeastZero), .init(key: "maximize", defaultValue: 0),
    ],
    "RMSprop": [
        .init(key: "lr", defaultValue: 1e-2, range: atLeastZero), .init(key: "alpha", defaultValue: 0.99, range: unitHalfOpen),
        .init(key: "eps", defaultValue: 1e-8, range: atLeastZero), .init(key: "weight_decay", defaultValue: 0, range: atLeastZero),
        .init(key: "momentum", defaultValue: 0, range: unitClosed), .init(key: "centered", defaultValue: 0),
        .init(key: "maximize", defaultValue: 0),
    ],
    "Adam": [
        .init(key: "lr", defaultValue: 1e-3, range: atLeastZero), .init(key: "beta1", defaultValue: 0.9, range: unitHalfOpen),
        .init(key: "beta2", defaultValue: 0.999, range: unitHalfOpen), .init(key: "eps", defaultValue: 1e-8, range: atLeastZero),
        .init(key: "weight_decay", defaultValue: 0, range: atLeastZero), .init(key: "amsgrad", defaultValue: 0),
        .init(key: "maximize", defaultValue: 0),
    ],
    "AdamW": [
        .init(key: "lr", defaultValue: 1e-3, range: atLeastZero), .init(key: "beta1", defaultValue: 0.9, range: unitHalfOpen),
        .init(key: "beta2", defaultValue: 0.999, range: unitHalfOpen), .init(key: "eps", defaultValue: 1e-8, range: atLeastZero),
        .init(key: "weight_decay", defaultValue: 1e-2, range: atLeastZero), .init(key: "amsgrad", defaultValue: 0),
        .init(key: "maximize", defaultValue: 0),
    ],
]

/// Values at and around a documented range's bounds, as Doubles (what a
/// restore reads), each with whether it must be accepted.
private func probes(_ entry: Documented) -> [(Double, Bool)] {
    guard let range = entry.range else { return [(0, true), (1, true), (0.5, false), (2, false), (-1, false), (.nan, false)] }
    var probes: [(Double, Bool)] = [(Double(range.lower), true), (Double(range.lower.nextDown), false), (.nan, false), (.infinity, false)]
    if let upper = range.upper {
        probes += [(Double(upper.nextDown), true), (Double(upper), range.includesUpper), (Double(upper.nextUp), false)]
        // Below the bound as a Double, on it as a Float.
        if !range.includesUpper { probes.append((Double(upper) - 1e-12, false)) }
    } else {
        probes += [(1e30, true), (1e300, false)]
    }
    return probes
}

@Suite("Hyperparameter tables")
struct HyperparameterTableTests {
    private static func type(_ kind: String) -> Optimizer.Type {
        ["SGD": SGD.self, "AdaGrad": AdaGrad.self, "RMSprop": RMSprop.self, "Adam": Adam.self, "AdamW": AdamW.self][kind]!
    }

    @Test("each table lists the documented hyperparameters, ranges and defaults; the initializers' defaults agree", arguments: kinds)
    func tables(kind: String) {
        let table = Self.type(kind).hyperparameterSpecifications
        let expected = documented[kind]!
        #expect(table.map(\.pytorchKey) == expected.map(\.key))
        let defaults = makeOptimizer(kind, [:], [Parameter(Tensor(zeros: [1]))]).parameterGroups[0]
        for (specification, entry) in zip(table, expected) {
            #expect(specification.defaultValue == entry.defaultValue, "\(kind) \(entry.key)")
            #expect(defaults[specification.hyperparameter] == entry.defaultValue, "\(kind) \(entry.key): the initializer's default")
            #expect(specification.isFlag == (entry.range == nil), "\(kind) \(entry.key)")
            if let range = entry.range {
                #expect(specification.range.lowerBound == range.lower && specification.range.upperBound == range.upper, "\(kind) \(entry.key)")
                #expect(range.upper == nil || specification.range.includesUpperBound == range.includesUpper, "\(kind) \(entry.key)")
            }
            #expect(Hyperparameter(pytorchKey: entry.key) == specification.hyperparameter)
        }
        #expect(Adam.hyperparameterSpecifications.first { $0.name == "beta1" }?.rangeDescription == "[0, 1)")
        #expect(SGD.hyperparameterSpecifications.first { $0.name == "learningRate" }?.rangeDescription == "[0, ∞)")
        #expect(SGD.hyperparameterSpecifications.first { $0.name == "momentum" }?.rangeDescription == "[0, 1]")
    }

    @Test("a restore accepts exactly the documented range of every hyperparameter", arguments: kinds)
    func restoreChecks(kind: String) {
        // Momentum 0.9 so that SGD's Nesterov probe meets PyTorch's condition.
        let optimizer = makeOptimizer(kind, kind == "SGD" ? ["momentum": 0.9] : [:], [Parameter(Tensor(zeros: [1]))])
        let good = optimizer.exportState()
        for entry in documented[kind]! {
            for (value, accepted) in probes(entry) {
                var state = good
                state.hyperparameters[entry.key] = value
                do {
                    try optimizer.restoreState(state)
                    #expect(accepted, "\(kind) \(entry.key) = \(value) was accepted")
                    #expect(optimizer.exportState().hyperparameters[entry.key] == Double(Float(value)))
                } catch let error as OptimizerStateError {
                    #expect(!accepted, "\(kind) \(entry.key) = \(value) was rejected: \(error)")
                    if case .invalidValue(let name, _) = error { #expect(name == entry.key) } else { Issue.record("\(error)") }
                } catch {
                    Issue.record("\(error)")
                }
                try? optimizer.restoreState(good)
            }
        }
    }

    @Test("the initializer's and setters' checks accept exactly the documented range of every hyperparameter", arguments: kinds)
    func setterChecks(kind: String) {
        let type = Self.type(kind)
        let table = type.hyperparameterSpecifications
        let defaults = makeOptimizer(kind, [:], [Parameter(Tensor(zeros: [1]))]).defaults
        for entry in documented[kind]! {
            let specification = table.first { $0.pytorchKey == entry.key }!
            for (value, accepted) in probes(entry) {
                let float = Float(value)
                // The initializer's own arguments and the optimizer-level setters.
                #expect((specification.problem(with: float) == nil) == accepted, "\(kind) \(entry.key) = \(float)")
                // The groups given to the initializer or assigned to parameterGroups (rules aside).
                var group = ParameterGroup([])
                group[specification.hyperparameter] = float
                do {
                    let resolved = try table.resolve(group, defaults: defaults, rules: [], kind: kind)
                    #expect(accepted && resolved[specification.hyperparameter] == float, "\(kind) \(entry.key) = \(float) resolved")
                } catch {
                    #expect(!accepted, "\(kind) \(entry.key) = \(float) refused: \(error)")
                }
            }
            if let problem = specification.problem(with: -1) {
                #expect(problem.contains("-1.0") && problem.contains(specification.name) && problem.contains(specification.rangeDescription))
            }
        }
    }
}

@Suite("Parameter group checks")
struct ParameterGroupTrapTests {
    @Test("a group's value out of range, named with its group")
    func groupValue() async {
        let result = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            _ = SGD([ParameterGroup([Parameter(Tensor(zeros: [1]))]), ParameterGroup([Parameter(Tensor(zeros: [1]))], momentum: 1.5)])
        }
        #expect(standardError(result).contains("SGD: parameter group 1: invalid momentum value 1.5 (momentum must be a finite value in [0, 1])"))
    }

    @Test("a hyperparameter the optimizer does not have")
    func foreign() async {
        let result = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            _ = Adam([ParameterGroup([Parameter(Tensor(zeros: [1]))], momentum: 0.9)])
        }
        #expect(standardError(result).contains("Adam: parameter group 0: momentum is not a hyperparameter of Adam"))
    }

    @Test("setting parameterGroups: a value out of range")
    func setOutOfRange() async {
        let result = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            let adam = Adam([ParameterGroup([Parameter(Tensor(zeros: [1]))]), ParameterGroup([Parameter(Tensor(zeros: [1]))])])
            adam.parameterGroups[1].beta1 = 1
        }
        #expect(standardError(result).contains("Adam: parameter group 1: invalid beta parameter at index 0: 1.0 (beta1 must be a finite value in [0, 1))"))
    }

    @Test("setting parameterGroups: other parameters")
    func setOtherParameters() async {
        let result = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            let a = Parameter(Tensor(zeros: [1])), b = Parameter(Tensor(zeros: [1]))
            let sgd = SGD([ParameterGroup([a]), ParameterGroup([b])])
            sgd.parameterGroups = [ParameterGroup([b]), ParameterGroup([a])]
        }
        #expect(standardError(result).contains("SGD: parameter group 0 must keep its 1 parameters in the same order"))
    }

    @Test("setting parameterGroups: a value fixed at creation")
    func setFixed() async {
        let result = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            let adam = Adam([Parameter(Tensor(zeros: [1]))])
            adam.parameterGroups[0].amsgrad = true
        }
        #expect(standardError(result).contains("Adam: parameter group 0: amsgrad cannot change after the optimizer is made"))
    }

    @Test("setting parameterGroups: Nesterov momentum without momentum")
    func setRule() async {
        let result = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            let sgd = SGD([Parameter(Tensor(zeros: [1]))], momentum: 0.9, nesterov: true)
            sgd.parameterGroups[0].dampening = 0.5
        }
        #expect(standardError(result).contains("SGD: parameter group 0: Nesterov momentum requires a momentum and zero dampening"))
    }

    @Test("an optimizer-level setter: a value out of range")
    func optimizerLevel() async {
        let result = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            let rmsprop = RMSprop([Parameter(Tensor(zeros: [1]))])
            rmsprop.alpha = 1
        }
        #expect(standardError(result).contains("RMSprop: invalid alpha value 1.0 (alpha must be a finite value in [0, 1))"))
    }

    @Test("a parameter in two groups")
    func duplicate() async {
        let result = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            let a = Parameter(Tensor(zeros: [1]), name: "a")
            _ = SGD([ParameterGroup([a]), ParameterGroup([a])])
        }
        #expect(standardError(result).contains("appears in parameter groups 0 and 1"))
    }

    @Test("reading a value a group does not set")
    func unset() async {
        let result = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            _ = ParameterGroup([]).momentum
        }
        #expect(standardError(result).contains("ParameterGroup: momentum is not set"))
    }
}
