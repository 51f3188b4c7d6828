// Optimizers against PyTorch's trajectories, and C against Swift bit for bit.
import Testing

@_spi(Benchmarks) @testable import GradKit

/// An optimizer of `kind` with PyTorch's option names, over parameters (one
/// group) or parameter groups.
func makeOptimizer<Element: ParameterOrGroup>(_ kind: String, _ options: [String: Double], _ parameters: [Element]) -> Optimizer {
    func f(_ key: String, _ fallback: Float) -> Float { options[key].map(Float.init) ?? fallback }
    func b(_ key: String) -> Bool { (options[key] ?? 0) != 0 }
    switch kind {
    case "SGD":
        return SGD(
            parameters, learningRate: f("lr", 1e-3), momentum: f("momentum", 0), dampening: f("dampening", 0),
            weightDecay: f("weight_decay", 0), nesterov: b("nesterov"), maximize: b("maximize"))
    case "AdaGrad":
        return AdaGrad(
            parameters, learningRate: f("lr", 1e-2), learningRateDecay: f("lr_decay", 0),
            weightDecay: f("weight_decay", 0), initialAccumulatorValue: f("initial_accumulator_value", 0),
            epsilon: f("eps", 1e-10), maximize: b("maximize"))
    case "RMSprop":
        return RMSprop(
            parameters, learningRate: f("lr", 1e-2), alpha: f("alpha", 0.99), epsilon: f("eps", 1e-8),
            weightDecay: f("weight_decay", 0), momentum: f("momentum", 0), centered: b("centered"), maximize: b("maximize"))
    case "Adam":
        return Adam(
            parameters, learningRate: f("lr", 1e-3), beta1: f("beta1", 0.9), beta2: f("beta2", 0.999),
            epsilon: f("eps", 1e-8), weightDecay: f("weight_decay", 0), amsgrad: b("amsgrad"), maximize: b("maximize"))
    case "AdamW":
        return AdamW(
            parameters, learningRate: f("lr", 1e-3), beta1: f("beta1", 0.9), beta2: f("beta2", 0.999),
            epsilon: f("eps", 1e-8), weightDecay: f("weight_decay", 1e-2), amsgrad: b("amsgrad"), maximize: b("maximize"))
    default:
        preconditionFailure("unknown optimizer \(kind)")
    }
}

/// Sets each parameter's gradient for one step (nil: none).
func setGradients(_ parameters: [Parameter], _ gradients: [[Float]?]) {
    for (p, g) in zip(parameters, gradients) {
        p.gradient = g.map { Tensor(shape: p.shape, scalars: $0) }
    }
}

/// PyTorch agreement: 2e-5 relative, with an absolute floor of 1e-6 for
/// values that pass near zero. Both sides compute in Float, in different
/// orders (PyTorch's lerp and addcdiv against our expressions, its
/// double-precision scalars rounded at other points), and the rounding of
/// the 1e2 gradients stays in the moments as they decay. Measured: parameters
/// within 2e-6 absolute and 6e-7 relative; state buffers within 1.3e-5
/// relative (Adam's moments); the worst element, a momentum buffer near
/// zero, at 0.73 of this bound.
func expectPyTorchClose(_ actual: [Float], _ expected: [Float], _ context: String) {
    expectClose(actual, expected, relative: 2e-5, absolute: 1e-6, context)
}

@Suite("Optimizers")
struct OptimizerTests {
    static let caseNames = OptimizerGoldens.cases.map(\.name)

    @Test("PyTorch golden trajectories, every optimizer and option, both backends", arguments: caseNames)
    func goldens(name: String) {
        let golden = OptimizerGoldens.cases.first { $0.name == name }!
        for backend in KernelBackend.allCases {
            Kernels.withBackend(backend) {
                let p1 = Parameter(Tensor(shape: [2, 3], scalars: OptimizerGoldens.p1), name: "p1")
                let p2 = Parameter(Tensor(shape: [4], scalars: OptimizerGoldens.p2), name: "p2")
                let optimizer = makeOptimizer(golden.kind, golden.options, [p1, p2])
                #expect(OptimizerGoldens.gradients.count == golden.trajectory.count)
                for (step, (g1, g2)) in OptimizerGoldens.gradients.enumerated() {
                    setGradients([p1, p2], [g1, g2])
                    optimizer.step()
                    expectPyTorchClose(p1.value.scalars + p2.value.scalars, golden.trajectory[step], "\(name) step \(step + 1) \(backend)")
                }
                let state = optimizer.exportState()
                for (key, expected) in golden.state {
                    let parts = key.split(separator: ".", maxSplits: 1)
                    let entry = state.parameters[Int(parts[0])!]
                    guard let buffer = entry.buffers[String(parts[1])] else {
                        Issue.record("\(name): state buffer \(key) missing (\(backend))")
                        continue
                    }
                    expectPyTorchClose(buffer.scalars, expected, "\(name) state \(key) \(backend)")
                }
                #expect(state.parameters.map(\.step) == [10, 8], "p2 had no gradient in 2 of 10 steps")
            }
        }
    }

    /// Larger parameters so every kernel runs its vector loops and tails, and
    /// more than one thread.
    private static func parityRun(_ kind: String, _ options: [String: Double], _ backend: KernelBackend, clip: Float? = nil) -> ([[Float]], OptimizerState) {
        Kernels.withBackend(backend) {
            let shapes = [[70, 1001], [3], [257], [1, 17]]
            let parameters = shapes.enumerated().map { i, shape in
                Parameter(randomTensor(shape, seed: UInt64(i + 1), in: -2...2), name: "p\(i)")
            }
            let optimizer = makeOptimizer(kind, options, parameters)
            for step in 0..<8 {
                for (i, p) in parameters.enumerated() {
                    // Parameter 1 has no gradient in step 3; magnitudes vary by step.
                    if i == 1 && step == 3 { p.gradient = nil; continue }
                    let scale: Float = [1, 1e-3, 1e2, 1, 0.5, 1e-3, 10, 1][step]
                    p.gradient = randomTensor(p.shape, seed: UInt64(100 * step + i), in: -1...1) * scale
                }
                if let clip { optimizer.step(clippingGradientNorm: clip) } else { optimizer.step() }
            }
            return (parameters.map(\.value.scalars), optimizer.exportState())
        }
    }

    @Test("C and Swift agree bit for bit on parameters and state over 8 steps", arguments: caseNames)
    func parity(name: String) {
        let golden = OptimizerGoldens.cases.first { $0.name == name }!
        let c = Self.parityRun(golden.kind, golden.options, .c)
        let swift = Self.parityRun(golden.kind, golden.options, .swift)
        // Both compute the same IEEE operations in the same order (no fused
        // multiply-add on either side): exact equality is the claim.
        for (a, b) in zip(c.0, swift.0) { expectIdentical(a, b, "\(name) parameters") }
        #expect(c.1.parameters.count == swift.1.parameters.count)
        for (a, b) in zip(c.1.parameters, swift.1.parameters) {
            #expect(a.step == b.step)
            #expect(a.buffers.keys.sorted() == b.buffers.keys.sorted())
            for key in a.buffers.keys { expectIdentical(a.buffers[key]!.scalars, b.buffers[key]!.scalars, "\(name) \(key)") }
        }
    }

    /// Floats spread over every binade Adam can meet near the bottom of the range: zeros of both
    /// signs, subnormals, the binades just above 2^-126, and ordinary magnitudes, in random order.
    private static func spanningScalars(_ count: Int, seed: UInt64, exponents: ClosedRange<Int> = -99...1) -> [Float] {
        var generator = SeededGenerator(seed: seed)
        return (0..<count).map { _ in
            let sign: Float = Bool.random(using: &generator) ? -1 : 1
            switch Int.random(in: 0..<8, using: &generator) {
            case 0: return sign * 0
            case 1, 2: return sign * Float(bitPattern: UInt32.random(in: 1..<0x0080_0000, using: &generator))
            case 3: return sign * Float(sign: .plus, exponent: Int.random(in: -130 ... -100, using: &generator),
                                        significand: Float.random(in: 1..<2, using: &generator))
            default: return sign * Float(sign: .plus, exponent: Int.random(in: exponents, using: &generator),
                                         significand: Float.random(in: 1..<2, using: &generator))
            }
        }
    }

    // Serialized: the C kernel's choice of path is one setting for the process.
    @Test("Adam, AdamW and SGD with momentum near and below Float's normal range: C (either path) and Swift agree bit for bit",
          .serialized,
          arguments: ["adam_plain", "adam_amsgrad", "adam_weight_decay", "adam_betas_eps", "adamw_plain", "adamw_amsgrad",
                      "sgd_momentum", "sgd_dampening", "sgd_nesterov", "sgd_weight_decay", "sgd_maximize"])
    func subnormalParity(name: String) throws {
        // Moments of dead units decaying through the subnormals, squares of tiny gradients, clipping
        // that scales gradients to 1e-30: every operation of the step meets subnormal operands and
        // results. The C kernel's plain vector loop and its path in double must both round them as the
        // Swift twin's scalar code does.
        let golden = OptimizerGoldens.cases.first { $0.name == name }!
        var met = 0
        func run(_ backend: KernelBackend) throws -> ([[Float]], OptimizerState) {
            try Kernels.withBackend(backend) {
                let sizes = [16 * 40 + 7, 5, 64 * 9]
                let parameters = sizes.enumerated().map { i, n in
                    Parameter(Tensor(shape: [n], scalars: Self.spanningScalars(n, seed: UInt64(10 + i))), name: "p\(i)")
                }
                let optimizer = makeOptimizer(golden.kind, golden.options, parameters)
                for p in parameters { p.gradient = Tensor(zeros: p.shape) }
                optimizer.step()
                var state = optimizer.exportState()
                for (i, entry) in state.parameters.enumerated() {
                    for key in entry.buffers.keys.sorted() {
                        var moments = Self.spanningScalars(sizes[i], seed: UInt64(20 + 3 * i + key.count))
                        if key.hasSuffix("_sq") { moments = moments.map(abs) }
                        state.parameters[i].buffers[key] = Tensor(shape: [sizes[i]], scalars: moments)
                    }
                }
                try optimizer.restoreState(state)
                for step in 0..<30 {
                    for (i, p) in parameters.enumerated() {
                        var g = Self.spanningScalars(sizes[i], seed: UInt64(1000 * step + i), exponents: -125 ... -30)
                        // Dead units: runs of zero gradients, so moments decay through the subnormals.
                        for j in g.indices where (j / 48 + step / 10) % 3 == 0 { g[j] = 0 }
                        p.gradient = Tensor(shape: [sizes[i]], scalars: g)
                    }
                    if step % 4 == 3 { optimizer.step(clippingGradientNorm: 1e-30) } else { optimizer.step() }
                    met += optimizer.exportState().parameters.flatMap { $0.buffers.values.flatMap(\.scalars) }
                        .filter(\.isSubnormal).count
                }
                return (parameters.map(\.value.scalars), optimizer.exportState())
            }
        }
        let swift = try run(.swift)
        defer { Kernels.setOptimizerSubnormalsInDouble(nil) }
        for inDouble in [false, true] {
            Kernels.setOptimizerSubnormalsInDouble(inDouble)
            #expect(Kernels.optimizerSubnormalsInDouble == (inDouble && Kernels.instructionSet == .avx512))
            let c = try run(.c), path = inDouble ? "in double" : "plain loop"
            for (a, b) in zip(c.0, swift.0) { expectIdentical(a, b, "\(name) parameters, \(path)") }
            for (a, b) in zip(c.1.parameters, swift.1.parameters) {
                for key in a.buffers.keys {
                    expectIdentical(a.buffers[key]!.scalars, b.buffers[key]!.scalars, "\(name) \(key), \(path)")
                }
            }
        }
        #expect(met > 600, "the state stays in the subnormal range (\(met) subnormal after the steps of three runs)")
    }

    @Test("a parameter without a gradient is untouched, state included")
    func skipsParametersWithoutGradient() {
        for golden in OptimizerGoldens.cases where golden.name.hasSuffix("_plain") || golden.name == "sgd_momentum" {
            let a = Parameter(Tensor(shape: [3], scalars: [1, 2, 3]), name: "a")
            let b = Parameter(Tensor(shape: [2], scalars: [4, 5]), name: "b")
            let optimizer = makeOptimizer(golden.kind, golden.options, [a, b])
            setGradients([a, b], [[0.1, 0.2, 0.3], [0.4, 0.5]])
            optimizer.step()
            let before = optimizer.exportState().parameters[1]
            let value = b.value.scalars
            setGradients([a, b], [[0.1, 0.2, 0.3], nil])
            optimizer.step()
            #expect(b.value.scalars == value, "\(golden.name)")
            #expect(optimizer.exportState().parameters[1] == before, "\(golden.name)")
            optimizer.zeroGradients()
            let all = (a.value.scalars, b.value.scalars)
            optimizer.step()
            #expect(a.value.scalars == all.0 && b.value.scalars == all.1, "\(golden.name): zeroGradients then step changes nothing")
        }
    }

    @Test("fused clipping equals clipGradientNorm then step, bit for bit", arguments: ["sgd_momentum", "adagrad_plain", "rmsprop_centered", "adam_amsgrad", "adamw_plain"])
    func fusedClipping(name: String) {
        let golden = OptimizerGoldens.cases.first { $0.name == name }!
        let fused = Self.parityRun(golden.kind, golden.options, .c, clip: 5)
        let separate: ([[Float]], OptimizerState) = Kernels.withBackend(.c) {
            let shapes = [[70, 1001], [3], [257], [1, 17]]
            let parameters = shapes.enumerated().map { i, shape in
                Parameter(randomTensor(shape, seed: UInt64(i + 1), in: -2...2), name: "p\(i)")
            }
            let optimizer = makeOptimizer(golden.kind, golden.options, parameters)
            for step in 0..<8 {
                for (i, p) in parameters.enumerated() {
                    if i == 1 && step == 3 { p.gradient = nil; continue }
                    let scale: Float = [1, 1e-3, 1e2, 1, 0.5, 1e-3, 10, 1][step]
                    p.gradient = randomTensor(p.shape, seed: UInt64(100 * step + i), in: -1...1) * scale
                }
                clipGradientNorm(parameters, maxNorm: 5)
                optimizer.step()
            }
            return (parameters.map(\.value.scalars), optimizer.exportState())
        }
        for (a, b) in zip(fused.0, separate.0) { expectIdentical(a, b, "\(name)") }
        #expect(fused.1 == separate.1)
    }

    @Test("exported state resumes training exactly", arguments: caseNames)
    func resume(name: String) {
        let golden = OptimizerGoldens.cases.first { $0.name == name }!
        func parameters() -> [Parameter] {
            [Parameter(Tensor(shape: [2, 3], scalars: OptimizerGoldens.p1), name: "p1"),
             Parameter(Tensor(shape: [4], scalars: OptimizerGoldens.p2), name: "p2")]
        }
        let straight = parameters()
        let reference = makeOptimizer(golden.kind, golden.options, straight)
        for (g1, g2) in OptimizerGoldens.gradients {
            setGradients(straight, [g1, g2])
            reference.step()
        }
        let first = parameters()
        let optimizer = makeOptimizer(golden.kind, golden.options, first)
        for (g1, g2) in OptimizerGoldens.gradients.prefix(5) {
            setGradients(first, [g1, g2])
            optimizer.step()
        }
        let saved = optimizer.exportState()
        // A fresh optimizer with the same values and other hyperparameters.
        let second = parameters()
        for (p, q) in zip(second, first) { p.value = q.value }
        let resumed = makeOptimizer(golden.kind, [:], second)
        #expect(throws: Never.self) { try resumed.restoreState(saved) }
        #expect(resumed.exportState() == saved)
        for (g1, g2) in OptimizerGoldens.gradients.dropFirst(5) {
            setGradients(second, [g1, g2])
            resumed.step()
        }
        for (a, b) in zip(second, straight) { expectIdentical(a.value.scalars, b.value.scalars, "\(name) resumed") }
        #expect(resumed.exportState() == reference.exportState())
    }

    @Test("restoring bad state throws and changes nothing")
    func restoreErrors() {
        let p = Parameter(Tensor(shape: [2], scalars: [1, 2]), name: "w")
        let adam = Adam([p], learningRate: 0.1)
        p.gradient = Tensor(shape: [2], scalars: [1, 1])
        adam.step()
        let good = adam.exportState()
        let sgd = SGD([Parameter(Tensor(zeros: [2]))])
        #expect(throws: OptimizerStateError.wrongOptimizer(expected: "SGD", found: "Adam")) { try sgd.restoreState(good) }
        var wrongShape = good
        wrongShape.parameters[0].buffers["exp_avg"] = Tensor(zeros: [3])
        #expect(throws: OptimizerStateError.shapeMismatch(parameter: "w", buffer: "exp_avg", expected: [2], found: [3])) {
            try adam.restoreState(wrongShape)
        }
        var missing = good
        missing.parameters[0].buffers["exp_avg_sq"] = nil
        #expect(throws: OptimizerStateError.missingBuffer(parameter: "w", buffer: "exp_avg_sq")) { try adam.restoreState(missing) }
        var needsAMSGrad = good
        needsAMSGrad.hyperparameters["amsgrad"] = 1 // then max_exp_avg_sq is required, and absent
        #expect(throws: OptimizerStateError.missingBuffer(parameter: "w", buffer: "max_exp_avg_sq")) { try adam.restoreState(needsAMSGrad) }
        #expect(!adam.amsgrad, "the flag was rolled back")
        var badBeta = good
        badBeta.hyperparameters["beta1"] = 1.5
        #expect(throws: OptimizerStateError.invalidValue(name: "beta1", value: 1.5)) { try adam.restoreState(badBeta) }
        #expect(adam.exportState() == good, "a failed restore changes nothing")
    }

    @Test("restored values are checked as the Floats the optimizer uses, against the mathematically valid range")
    func restoredValuesAreFloats() {
        let p = Parameter(Tensor(shape: [2], scalars: [1, 2]), name: "w")
        let adam = Adam([p], learningRate: 0.1)
        p.gradient = Tensor(shape: [2], scalars: [1, 1])
        adam.step()
        let good = adam.exportState(), before = p.value.scalars
        // 1e300 is finite as a Double and infinite as a Float; 1 - 1e-12 is
        // below 1 as a Double and rounds to 1 as a Float.
        for (key, value) in [("lr", 1e300), ("eps", 1e300), ("beta1", 1 - 1e-12), ("weight_decay", .nan), ("amsgrad", 0.5)] {
            var bad = good
            bad.hyperparameters[key] = value
            #expect(throws: OptimizerStateError.self, "\(key) = \(value)") { try adam.restoreState(bad) }
        }
        #expect(adam.exportState() == good, "a failed restore changes nothing")
        #expect(p.value.scalars == before)

        let rmsprop = RMSprop([Parameter(Tensor(zeros: [1]))])
        var state = rmsprop.exportState()
        state.hyperparameters["alpha"] = 1.5 // PyTorch accepts alpha >= 0; above 1 the average diverges
        #expect(throws: OptimizerStateError.invalidValue(name: "alpha", value: 1.5)) { try rmsprop.restoreState(state) }
        state.hyperparameters["alpha"] = 0.5
        #expect(throws: Never.self) { try rmsprop.restoreState(state) }
        #expect(rmsprop.alpha == 0.5)
    }

    @Test("an optimizer's parameters live in one flat, aligned buffer and keep value semantics")
    func flatBuffers() {
        let a = Parameter(Tensor(shape: [3], scalars: [1, 2, 3]), name: "a")
        let b = Parameter(Tensor(shape: [2, 2], scalars: [4, 5, 6, 7]), name: "b")
        let held = a.value
        let sgd = SGD([a, b], learningRate: 1)
        #expect(a.storage.isView && b.storage.isView)
        #expect(Int(bitPattern: b.storage.base) - Int(bitPattern: a.storage.base) == 16 * 4, "b starts at the next 64-byte boundary")
        #expect(Int(bitPattern: a.storage.base) % 64 == 0)
        let snapshot = a.value
        a.gradient = Tensor(shape: [3], scalars: [1, 1, 1])
        b.gradient = Tensor(shape: [2, 2], scalars: [1, 1, 1, 1])
        sgd.step()
        #expect(a.value.scalars == [0, 1, 2] && b.value.scalars == [3, 4, 5, 6])
        #expect(snapshot.scalars == [1, 2, 3] && held.scalars == [1, 2, 3], "earlier values are snapshots")
    }
}

@Suite("Optimizer argument checks")
struct OptimizerTrapTests {
    @Test("negative learning rate")
    func negativeLearningRate() async {
        let result = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            _ = Adam([Parameter(Tensor(zeros: [1]))], learningRate: -1)
        }
        #expect(standardError(result).contains("Adam: invalid learning rate -1.0"))
    }

    @Test("beta outside [0, 1)")
    func invalidBeta() async {
        let result = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            _ = AdamW([Parameter(Tensor(zeros: [1]))], beta2: 1)
        }
        #expect(standardError(result).contains("AdamW: invalid beta parameter at index 1: 1.0"))
    }

    @Test("Nesterov without momentum")
    func nesterov() async {
        let result = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            _ = SGD([Parameter(Tensor(zeros: [1]))], learningRate: 0.1, nesterov: true)
        }
        #expect(standardError(result).contains("Nesterov momentum requires a momentum and zero dampening"))
    }

    @Test("negative AdaGrad accumulator and RMSprop alpha")
    func otherArguments() async {
        let adagrad = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            _ = AdaGrad([Parameter(Tensor(zeros: [1]))], initialAccumulatorValue: -1)
        }
        #expect(standardError(adagrad).contains("invalid initial_accumulator_value"))
        let rmsprop = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            _ = RMSprop([Parameter(Tensor(zeros: [1]))], alpha: -0.5)
        }
        #expect(standardError(rmsprop).contains("RMSprop: invalid alpha value -0.5"))
    }
}
