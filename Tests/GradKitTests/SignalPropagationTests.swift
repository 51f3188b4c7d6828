// GradKit — tests of the mean-field theory against closed forms, brute-force integrals and random networks. SPDX-License-Identifier: MIT
#if canImport(Glibc)
import Glibc
#endif
@testable import GradKit
import Testing

/// `∫ f(mean + √variance z) ϕ(z) dz` by the trapezoid rule on equally spaced
/// points over z in [-12, 12], split where x = 0 (the kink of ReLU-like φ;
/// each side's end evaluated just inside it, so a jump in φ′ costs nothing):
/// no adaptivity, a reference that shares nothing else with the quadrature
/// under test. Its error is O(h²) ≈ 1e-7 · |f″| for 40,001 points in all.
private func bruteForceExpectation(mean: Double, variance: Double, points: Int = 40_001, _ f: (Double) -> Double) -> Double {
    let s = variance.squareRoot(), kink = -mean / s
    func trapezoid(_ a: Double, _ b: Double, _ n: Int) -> Double {
        let h = (b - a) / Double(n - 1)
        var sum = 0.0
        for i in 0..<n {
            // The ends sit 1e-13 inside the interval: the one-sided limits at the kink.
            let z = i == 0 ? a + 1e-13 : (i == n - 1 ? b - 1e-13 : a + Double(i) * h)
            sum += (i == 0 || i == n - 1 ? 0.5 : 1) * f(mean + s * z) * exp(-z * z / 2)
        }
        return sum * h
    }
    let total = kink > -12 && kink < 12
        ? trapezoid(-12, kink, points / 2) + trapezoid(kink, 12, points / 2)
        : trapezoid(-12, 12, points)
    return total / (2 * Double.pi).squareRoot()
}

/// Every activation GradKit's MLP offers.
private let activations: [Activation] = [.sigmoid, .tanh, .relu, .gelu, .softplus, .leakyRelu(negativeSlope: 0.1), .elu(alpha: 1)]

@Suite("Signal propagation: mean-field theory")
struct SignalPropagationTests {
    @Test("ReLU's closed forms: E[relu(√q z)²] = q/2, E[relu′²] = 1/2, χ₁ = σ_w²/2, critical at σ_w² = 2")
    func reluClosedForms() throws {
        for q in [0.01, 0.3, 1, 7, 250] {
            #expect(abs(SignalPropagation.meanSquare(of: .relu, mean: 0, variance: q) / (q / 2) - 1) < 1e-8, "q = \(q)")
            #expect(abs(SignalPropagation.meanSquaredSlope(of: .relu, mean: 0, variance: q) - 0.5) < 1e-8, "q = \(q)")
            // Leaky ReLU: (1 + α²)/2 for both.
            let leaky = Activation.leakyRelu(negativeSlope: 0.2)
            #expect(abs(SignalPropagation.meanSquare(of: leaky, mean: 0, variance: q) / (q * 1.04 / 2) - 1) < 1e-8)
            #expect(abs(SignalPropagation.meanSquaredSlope(of: leaky, mean: 0, variance: q) - 0.52) < 1e-8)
        }
        for sigmaW2 in [0.5, 1, 2, 3] {
            #expect(abs(SignalPropagation(activation: .relu, weightVariance: sigmaW2).chi1 - sigmaW2 / 2) < 1e-8, "σ_w² = \(sigmaW2)")
        }
        let critical = try #require(SignalPropagation.criticalWeightVariance(activation: .relu))
        #expect(abs(critical - 2) < 1e-6)
        // Per-layer ratios of a He network stay exactly 1 whatever the input's scale.
        for ratio in SignalPropagation(activation: .relu, weightVariance: 2).gradientRatios(depth: 30, inputVariance: 5) {
            #expect(abs(ratio - 1) < 1e-8)
        }
    }

    @Test("tanh without biases: q* = 0 and χ₁ = σ_w² up to σ_w = 1, the edge of chaos")
    func tanhEdgeOfChaos() {
        for sigmaW in [0.5, 0.8, 0.95] {
            let theory = SignalPropagation(activation: .tanh, weightScale: sigmaW)
            #expect(theory.fixedPoint() < 1e-6, "σ_w = \(sigmaW)")
            #expect(abs(theory.chi1 - sigmaW * sigmaW) < 1e-6, "σ_w = \(sigmaW)")
        }
        // At σ_w = 1 the approach to q* = 0 is algebraic (q_l ≈ 1/(2l)): 500 steps leave q ≈ 1e-3, χ ≈ 1 - 2q.
        let critical = SignalPropagation(activation: .tanh, weightScale: 1)
        #expect(critical.fixedPoint() < 2e-3)
        #expect(abs(critical.chi1 - 1) < 4e-3)
        // Above it, q* > 0 and χ₁ falls back below σ_w² (chaos: χ₁ > 1 for σ_w a little above 1).
        let chaotic = SignalPropagation(activation: .tanh, weightScale: 1.5)
        #expect(chaotic.fixedPoint() > 0.1)
        #expect(chaotic.chi1 > 1 && chaotic.chi1 < 2.25)
    }

    @Test("the quadrature agrees with a brute-force trapezoid rule for every activation")
    func againstBruteForce() {
        for activation in activations {
            for (mean, variance) in [(0.0, 0.01), (0.3, 2.5), (-0.7, 40)] {
                let pairs: [(Double, Double)] = [
                    (SignalPropagation.meanSquare(of: activation, mean: mean, variance: variance),
                     bruteForceExpectation(mean: mean, variance: variance) { pow(SignalPropagation.value(of: activation, at: $0), 2) }),
                    (SignalPropagation.meanSquaredSlope(of: activation, mean: mean, variance: variance),
                     bruteForceExpectation(mean: mean, variance: variance) { pow(SignalPropagation.derivative(of: activation, at: $0), 2) }),
                    (SignalPropagation.mean(of: activation, mean: mean, variance: variance),
                     bruteForceExpectation(mean: mean, variance: variance) { SignalPropagation.value(of: activation, at: $0) }),
                ]
                for (quadrature, reference) in pairs {
                    #expect(abs(quadrature - reference) <= 2e-6 * Swift.max(1, abs(reference)),
                            "\(activation) at N(\(mean), \(variance)): \(quadrature) vs \(reference)")
                }
            }
        }
    }

    /// Φ, the standard normal distribution function.
    private func normalCDF(_ t: Double) -> Double { erfc(-t / 2.0.squareRoot()) / 2 }
    /// ϕ, the standard normal density.
    private func normalDensity(_ t: Double) -> Double { exp(-t * t / 2) / (2 * Double.pi).squareRoot() }

    @Test("closed forms off-center and at large variance: ReLU, ELU, GELU and the identity to 1e-11", arguments: [
        (0.0, 0.01), (0.3, 1), (-0.7, 2.5), (1.5, 40), (0, 100), (-2, 250), (0.5, 1e4), (0, 1e12),
    ])
    func closedForms(_ mean: Double, _ variance: Double) {
        let s = variance.squareRoot(), t = mean / s
        func expectClose(_ quadrature: Double, _ exact: Double, _ what: String) {
            #expect(abs(quadrature - exact) <= 1e-11 * abs(exact), "\(what) at N(\(mean), \(variance)): \(quadrature) vs \(exact)")
        }
        // x ~ N(μ, σ²): E[relu x] = μΦ(μ/σ) + σϕ(μ/σ), E[(relu x)²] = (μ² + σ²)Φ(μ/σ) + μσϕ(μ/σ), E[relu′²] = Φ(μ/σ).
        expectClose(SignalPropagation.mean(of: .relu, mean: mean, variance: variance), mean * normalCDF(t) + s * normalDensity(t), "E[relu]")
        expectClose(SignalPropagation.meanSquare(of: .relu, mean: mean, variance: variance),
                    (mean * mean + variance) * normalCDF(t) + mean * s * normalDensity(t), "E[relu²]")
        expectClose(SignalPropagation.meanSquaredSlope(of: .relu, mean: mean, variance: variance), normalCDF(t), "E[relu′²]")
        // ELU with α = 1: φ′ = eˣ below 0, and E[e^{2x}; x < 0] = e^{2μ + 2σ²} Φ(−(μ + 2σ²)/σ) (erfc keeps the tail's digits).
        if variance <= 100 {
            let negative = exp(2 * mean + 2 * variance) * normalCDF(-(mean + 2 * variance) / s)
            expectClose(SignalPropagation.meanSquaredSlope(of: .elu(alpha: 1), mean: mean, variance: variance), normalCDF(t) + negative, "E[elu′²]")
        }
        // GELU is xΦ(x); Stein's lemma gives E[xΦ(x)] = μ E[Φ(x)] + σ² E[ϕ(x)] = μΦ(r) + σ²ϕ(r)/√(1 + σ²), r = μ/√(1 + σ²).
        let spread = (1 + variance).squareRoot(), r = mean / spread
        expectClose(SignalPropagation.mean(of: .gelu, mean: mean, variance: variance),
                    mean * normalCDF(r) + variance * normalDensity(r) / spread, "E[gelu]")
        expectClose(SignalPropagation.meanSquare(of: nil, mean: mean, variance: variance), mean * mean + variance, "E[x²]")
    }

    @Test("a narrow peak costs no more than a broad one: E[φ′²] for tanh, sigmoid, GELU and softplus within 5,000 evaluations up to variance 1e12")
    func evaluationCount() {
        for activation in [Activation.tanh, .sigmoid, .gelu, .softplus] {
            for variance in [1.0, 100, 1e4, 1e12] {
                var evaluations = 0
                let value = SignalPropagation.gaussianExpectation(mean: 0.3, variance: variance, kink: SignalPropagation.kink(of: activation)) { x in
                    evaluations += 1
                    return pow(SignalPropagation.derivative(of: activation, at: x), 2)
                }
                #expect(evaluations <= 5_000, "\(activation) at variance \(variance): \(evaluations) evaluations")
                #expect(value == SignalPropagation.meanSquaredSlope(of: activation, mean: 0.3, variance: variance))
            }
        }
    }

    @Test("φ′ is φ's derivative (central differences away from kinks)")
    func derivatives() {
        for activation in activations {
            for x in [-3.1, -0.45, 0.37, 2.2, 6] {
                let h = 1e-6
                let numeric = (SignalPropagation.value(of: activation, at: x + h) - SignalPropagation.value(of: activation, at: x - h)) / (2 * h)
                #expect(abs(numeric - SignalPropagation.derivative(of: activation, at: x)) < 1e-6, "\(activation) at \(x)")
            }
        }
    }

    /// A depth-`depth` stack of width-`width` Linear layers (weights N(0, σ_w²/width), zero biases) with
    /// `activation`, and its measured ‖δ_1‖ / ‖δ_depth‖ (the pre-activation gradients, read as the
    /// biases' gradients of single examples), root-mean-square over `examples` inputs of variance `inputVariance`.
    private func measuredFirstToLast(
        _ activation: Activation, weightScale: Double, depth: Int, width: Int, examples: Int, inputVariance: Double, seed: UInt64
    ) -> Double {
        var generator = SeededGenerator(seed: seed)
        var layers: [any Layer] = []
        var linears: [Linear] = []
        for _ in 0..<(depth + 1) {
            let linear = Linear(inputSize: width, outputSize: width, weightInitializer: .zeros, biasInitializer: .zeros)
            linear.weight.value = Tensor(randomNormal: [width, width], standardDeviation: Float(weightScale / Double(width).squareRoot()), using: &generator)
            linears.append(linear)
            layers.append(linear)
            if linears.count <= depth { layers.append(activation.makeLayer()) }
        }
        let model = Sequential(layers)
        var first = 0.0, last = 0.0
        for _ in 0..<examples {
            for p in model.parameters { p.gradient = nil }
            let x = Tensor(randomNormal: [1, width], standardDeviation: Float(inputVariance.squareRoot()), using: &generator)
            let seedGradient = Tensor(randomNormal: [1, width], using: &generator)
            model(x).backward(seed: seedGradient)
            func square(_ linear: Linear) -> Double { linear.bias!.gradient!.scalars.reduce(0.0) { $0 + Double($1) * Double($1) } }
            first += square(linears[0])
            last += square(linears[depth - 1])
        }
        return (first / last).squareRoot()
    }

    @Test("Monte Carlo: a random depth-50 GradKit network's per-layer gradient ratio is √χ within 3%", arguments: [
        (Activation.tanh, 0.9), (.tanh, 2.5), (.relu, 2.0.squareRoot()),
    ])
    func monteCarlo(_ activation: Activation, _ weightScale: Double) {
        let depth = 50, inputVariance = 1.0
        let measured = measuredFirstToLast(activation, weightScale: weightScale, depth: depth, width: 128, examples: 8, inputVariance: inputVariance, seed: 7)
        // ‖δ_1‖/‖δ_50‖ spans the ratios of layers 1 ..< 50 (layer 50's own is toward the readout).
        let theory = SignalPropagation(activation: activation, weightScale: weightScale)
        let predicted = theory.gradientRatios(depth: depth, inputVariance: inputVariance).dropLast().reduce(1, *)
        let perLayerMeasured = pow(measured, 1.0 / Double(depth - 1)), perLayerPredicted = pow(predicted, 1.0 / Double(depth - 1))
        print("monte carlo \(activation) σ_w \(weightScale): per layer measured \(perLayerMeasured), predicted \(perLayerPredicted), √χ₁ \(theory.chi1.squareRoot())")
        #expect(abs(perLayerMeasured / perLayerPredicted - 1) < 0.03,
                "\(activation), σ_w \(weightScale): per layer measured \(perLayerMeasured), predicted \(perLayerPredicted)")
    }
}

@Suite("Signal propagation: diagnose")
struct DiagnoseTests {
    /// The lab's vanishing-gradient network: 64 inputs, 19 hidden layers of 32, 10 outputs.
    private func labNetwork(_ activation: Activation = .sigmoid, initializer: Initializer? = nil, batchNorm: Bool = false, residual: Bool = false) -> MLP {
        withManualSeed(0) {
            MLP(sizes: [64] + Array(repeating: 32, count: 19) + [10], activation: activation, initializer: initializer, batchNorm: batchNorm, residual: residual)
        }
    }

    private func standardizedDigits() throws -> Dataset {
        try Standardizer(fitting: Dataset.digits()).transform(Dataset.digits())
    }

    @Test("the lab's 20-layer sigmoid net: vanishing as predicted (≈1.6e-16 first/last), cured by BatchNorm as predicted")
    func labSigmoidNetwork() throws {
        let data = try standardizedDigits()
        let model = labNetwork()
        let diagnosis = try diagnose(model: model, data: data)
        #expect(diagnosis.verdict == .vanishing)
        #expect(diagnosis.layers.count == 20 && diagnosis.layers[0].verdict == .vanishing && diagnosis.layers[19].verdict == .healthy)
        // Slope 1/4 times PyTorch's init scale √(1/3) per layer gives about 1.6e-16 over the hidden layers.
        #expect(diagnosis.predictedFirstToLastRatio > 3e-17 && diagnosis.predictedFirstToLastRatio < 8e-16, "\(diagnosis.predictedFirstToLastRatio)")
        // The theory against the measurement, layer by layer: within a factor of 4 over 16 decades.
        for layer in diagnosis.layers {
            let measured = try #require(layer.measuredRatio)
            #expect(abs(log10(layer.predictedRatio / measured)) < log10(4), "layer \(layer.index): \(layer.predictedRatio) vs \(measured)")
        }
        let cure = try #require(diagnosis.recommendedCure)
        #expect(cure.cure == .batchNorm && cure.predictedVerdict == .healthy)
        // The cure's predicted effect against the cured network, measured.
        let cured = try diagnose(model: labNetwork(batchNorm: true), data: data)
        #expect(cured.verdict == .healthy)
        let measured = try #require(cured.measuredFirstToLastRatio)
        #expect(abs(log10(cure.predictedFirstToLastRatio / measured)) < log10(5), "\(cure.predictedFirstToLastRatio) vs \(measured)")
    }

    @Test("the printed diagnosis shows ratios beyond Float's range as they are, not as 0 or 3.4e+38")
    func printsDoubleRange() throws {
        let model = withManualSeed(0) { MLP(sizes: [64] + Array(repeating: 32, count: 60) + [10], activation: .sigmoid) }
        let diagnosis = try diagnose(model: model, data: try standardizedDigits())
        let ratio = diagnosis.predictedFirstToLastRatio
        #expect(ratio > 0 && ratio < Double(Float.leastNonzeroMagnitude), "\(ratio): not a test of the range")
        let text = diagnosis.description
        #expect(text.contains("first/last gradient ratio predicted \(scientific(ratio)),"), "\(text)")
        #expect(!text.contains("ratio predicted 0,"), "\(text)")
    }

    @Test("a He-initialized ReLU net of the same depth is healthy and needs no cure")
    func heReLUNetwork() throws {
        let diagnosis = try diagnose(model: labNetwork(.relu, initializer: .heNormal()), data: try standardizedDigits())
        #expect(diagnosis.verdict == .healthy)
        #expect(diagnosis.recommendedCure == nil && diagnosis.candidates.isEmpty)
        #expect(abs(log10(diagnosis.predictedFirstToLastRatio)) < 1)
    }

    @Test("diagnose leaves the model bit-identical: parameters, gradients, running statistics, dropout's stream, mode")
    func leavesModelAlone() throws {
        func make() -> MLP {
            withManualSeed(3) { MLP(sizes: [64, 16, 16, 16, 10], activation: .tanh, batchNorm: true, dropout: 0.2, residual: true) }
        }
        let model = make(), twin = make()
        let data = try standardizedDigits()
        model.isTraining = false
        twin.isTraining = false
        model.parameters[0].gradient = Tensor(ones: model.parameters[0].shape)
        let before = model.stateDictionary()
        _ = try diagnose(model: model, data: data, batchSize: 16, seed: 5)
        #expect(model.isTraining == false)
        #expect(model.parameters[0].gradient?.scalars == Tensor(ones: model.parameters[0].shape).scalars)
        #expect(model.parameters.dropFirst().allSatisfy { $0.gradient == nil })
        let after = model.stateDictionary()
        #expect(before.keys.sorted() == after.keys.sorted())
        for (name, value) in before { #expect(after[name]?.scalars == value.scalars, "\(name)") }
        // Dropout's generator did not advance: a training-mode forward pass matches the untouched twin's.
        model.isTraining = true
        twin.isTraining = true
        let x = Tensor(shape: [4, 64], scalars: Array(data.features.scalars[0..<256]))
        #expect(withoutGradients { model(x).scalars } == withoutGradients { twin(x).scalars })
    }

    @Test("diagnose is deterministic for a seed")
    func deterministic() throws {
        let data = try standardizedDigits()
        let a = try diagnose(model: labNetwork(.tanh), data: data, seed: 4), b = try diagnose(model: labNetwork(.tanh), data: data, seed: 4)
        #expect(a.layers.map(\.measuredGradientNorm) == b.layers.map(\.measuredGradientNorm))
        #expect(a.layers.map(\.predictedRatio) == b.layers.map(\.predictedRatio))
    }

    @Test("a loss past Int's range prints in the report instead of trapping")
    func hugeLossPrints() throws {
        // Finite inputs of 1e20 (a CSV read without normalization) give logits and a loss near 1e20.
        let features = Tensor(shape: [4, 2], scalars: [1e20, 2, 3e20, 4, -1e20, 4, 2e20, 1])
        let data = try Dataset(features: features, labels: [0, 1, 1, 0])
        let diagnosis = try diagnose(model: withManualSeed(0) { MLP(sizes: [2, 4, 2]) }, data: data)
        try #require(diagnosis.loss.isFinite && diagnosis.loss > 0x1p63, "the loss \(diagnosis.loss) must exceed Int.max")
        #expect(diagnosis.description.contains("loss \(Double(diagnosis.loss))"), "\(diagnosis)")
    }

    @Test("an empty data set and a model with every Linear frozen are refused, not trapped on")
    func nothingToMeasure() throws {
        let data = try standardizedDigits()
        #expect(throws: DataError.self) { try diagnose(model: MLP(sizes: [64, 10]), data: data.subset([])) }
        let frozen = withManualSeed(0) { MLP(sizes: [64, 16, 10]) }
        frozen.freeze()
        #expect(throws: TrainingError.self) { try diagnose(model: frozen, data: data) }
        // One trainable Linear is enough: the frozen ones are reported as frozen.
        frozen.network.layers[0].unfreeze()
        let diagnosis = try diagnose(model: frozen, data: data)
        #expect(diagnosis.layers.map(\.verdict) == [.healthy, .frozen] && diagnosis.referenceIndex == 1)
    }

    @Test("weights of zeros, where the theory's ratios are 0 / 0, are judged vanishing, never healthy")
    func zeroWeights() throws {
        let model = withManualSeed(0) { MLP(sizes: [64, 16, 16, 10], initializer: .constant(0)) }
        let diagnosis = try diagnose(model: model, data: try standardizedDigits())
        #expect(diagnosis.verdict == .vanishing)
        // Every layer, the reference layer (the last) included: its weight gradient is 0 as well.
        for layer in diagnosis.layers {
            #expect(layer.verdict == .vanishing && layer.predictedVerdict == .vanishing, "layer \(layer.index)")
        }
        // A cure that keeps the zero weights (residual connections, BatchNorm) predicts nothing healthy.
        for candidate in diagnosis.candidates where candidate.predictedFirstToLastRatio.isNaN {
            #expect(candidate.predictedVerdict != .healthy, "\(candidate.cure)")
        }
        #expect(diagnosis.candidates.contains { $0.predictedFirstToLastRatio.isNaN }, "no 0 / 0 case: the test checks nothing")
        let cure = try #require(diagnosis.recommendedCure?.cure)
        guard case .initialization = cure else { Issue.record("recommended \(cure), not a re-initialization"); return }
    }

    /// The digits as `gradkit diagnose` reads them by default (pixels 0–16, not normalized), and a plain or
    /// residual MLP of `depth` hidden layers of 32 on them (the first, 64 → 32, is never residual).
    private func deepNetwork(_ activation: Activation, _ initializer: Initializer?, depth: Int, batchNorm: Bool = false, residual: Bool) -> MLP {
        withManualSeed(0) {
            MLP(sizes: [64] + Array(repeating: 32, count: depth) + [10], activation: activation, initializer: initializer,
                batchNorm: batchNorm, residual: residual)
        }
    }

    /// How far apart two positive ratios are, in decades.
    private func decades(_ a: Double, _ b: Double) -> Double { abs(log10(a / b)) }

    // A single network's ratios scatter about the mean-field value: over initialization seeds 0–5 these networks'
    // worst layers are within 0.6 decades and Monte Carlo draws of random residual ReLU nets (60 blocks of 64) spread
    // by 0.3–0.5 decades each. Without the gradient's part along each Linear's input the first layers come out
    // 2–4.4 decades too small here.
    @Test("deep residual ReLU and ELU nets on the digits: the theory follows the measurement at every layer within a factor of 5", arguments: [
        (Activation.relu, Initializer?.none, 40), (.relu, nil, 60), (.relu, .heNormal(), 40), (.relu, .heNormal(), 60),
        (.elu(alpha: 1), nil, 40), (.elu(alpha: 1), nil, 60), (.elu(alpha: 1), .heNormal(), 60),
    ])
    func deepResidualNetworks(_ activation: Activation, _ initializer: Initializer?, _ depth: Int) throws {
        let diagnosis = try diagnose(model: deepNetwork(activation, initializer, depth: depth, residual: true), data: Dataset.digits())
        #expect(diagnosis.verdict == .healthy)
        for layer in diagnosis.layers {
            let measured = try #require(layer.measuredRatio)
            #expect(decades(layer.predictedRatio, measured) < log10(5), "layer \(layer.index): predicted \(layer.predictedRatio), measured \(measured)")
        }
        let measured = try #require(diagnosis.measuredFirstToLastRatio)
        #expect(decades(diagnosis.predictedFirstToLastRatio, measured) < log10(5), "\(diagnosis.predictedFirstToLastRatio) vs \(measured)")
    }

    @Test("the residual cure of a deep plain ReLU or ELU net is predicted healthy, as the residual net measures", arguments: [
        Activation.relu, .elu(alpha: 1),
    ])
    func residualCurePredicted(_ activation: Activation) throws {
        let data = Dataset.digits()
        let plain = try diagnose(model: deepNetwork(activation, nil, depth: 60, residual: false), data: data)
        #expect(plain.verdict == .vanishing)
        let cure = try #require(plain.candidates.first { $0.cure == .residualConnections })
        #expect(cure.predictedVerdict == .healthy, "predicted first/last \(cure.predictedFirstToLastRatio)")
        let cured = try diagnose(model: deepNetwork(activation, nil, depth: 60, residual: true), data: data)
        #expect(cured.verdict == .healthy)
        let measured = try #require(cured.measuredFirstToLastRatio)
        #expect(decades(cure.predictedFirstToLastRatio, measured) < log10(5), "predicted \(cure.predictedFirstToLastRatio), measured \(measured)")
    }

    @Test("residual connections are recommended where the cures before them fail: a deep ReLU net with BatchNorm explodes, and measures healthy with them")
    func residualCureRecommended() throws {
        let data = Dataset.digits()
        let plain = try diagnose(model: deepNetwork(.relu, nil, depth: 60, batchNorm: true, residual: false), data: data)
        #expect(plain.verdict == .exploding)
        let cure = try #require(plain.recommendedCure)
        #expect(cure.cure == .residualConnections && cure.predictedVerdict == .healthy)
        // Re-initializing does not change what BatchNorm normalizes: predicted exploding still.
        #expect(plain.candidates.first.map { $0.predictedVerdict == .exploding } == true)
        let cured = try diagnose(model: deepNetwork(.relu, nil, depth: 60, batchNorm: true, residual: true), data: data)
        #expect(cured.verdict == .healthy)
        let measured = try #require(cured.measuredFirstToLastRatio)
        #expect(decades(cure.predictedFirstToLastRatio, measured) < log10(5), "predicted \(cure.predictedFirstToLastRatio), measured \(measured)")
    }

    @Test("a bias-free ReLU stack: what a Linear sends along its input leaves the mean squared gradient as the gradient-independence product, exactly")
    func homogeneousNetworkIsExact() {
        // For a positively homogeneous network the mean squared gradient is exactly the product of σ_w²/2 per layer
        // (Hanin and Nica, 2019); the part along the signal must neither add to it nor take from it.
        let width = 16, depth = 30
        let variances: [Double] = (0..<depth).map { (i: Int) -> Double in 2 * (1 + 0.1 * Double(i % 3)) } + [1.5]
        var stages: [PropagationStage] = []
        for i in 0..<depth {
            stages.append(.linear(index: i, weightVariance: variances[i], biasVariance: 0, inputWidth: width, outputWidth: width, feedsBatchNorm: false))
            stages.append(.activation(.relu))
        }
        stages.append(.linear(index: depth, weightVariance: variances[depth], biasVariance: 0, inputWidth: width, outputWidth: 10, feedsBatchNorm: false))
        var generator = SeededGenerator(seed: 1)
        let input = InputMoments(Tensor(randomNormal: [8, width], mean: 0.7, standardDeviation: 1, using: &generator))
        let predicted = predictWeightGradients(stages, input, linearCount: depth + 1)
        // The reference: input mean squares halve through each ReLU after σ_w², squared gradients likewise downward.
        var meanSquares = [input.meanSquare]
        for i in 0..<depth { meanSquares.append(variances[i] * meanSquares[i] / 2) }
        var gradients = [Double](repeating: 1, count: depth + 1)
        for i in stride(from: depth - 1, through: 0, by: -1) { gradients[i] = variances[i + 1] * gradients[i + 1] / 2 }
        for i in 0...depth {
            let reference = gradients[i] * Double(width) * meanSquares[i]
            #expect(abs(predicted[i] / reference - 1) < 1e-12, "layer \(i + 1): \(predicted[i]) vs \(reference)")
        }
    }

    @Test("a layer the theory does not cover is refused by name")
    func unsupported() throws {
        let model = Sequential([Linear(inputSize: 64, outputSize: 8), LayerNorm(featureCount: 8), Linear(inputSize: 8, outputSize: 10)])
        #expect(throws: TrainingError.self) { try diagnose(model: model, data: try standardizedDigits()) }
    }
}
