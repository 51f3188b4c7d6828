// GradKit — a diagnosis of a model's gradients before its first step: theory and one measured pass. SPDX-License-Identifier: MIT

/// What ``diagnose(model:data:loss:batchSize:seed:thresholds:)`` found: per
/// layer, the gradient norm mean-field theory predicts
/// (``SignalPropagation``) and the one a forward and backward pass measured,
/// the verdict in ``GradientMonitor``'s words, and the cure the theory
/// recommends with its predicted effect.
public struct Diagnosis: Sendable, CustomStringConvertible {
    /// One ``Linear`` layer, 1-based from the input, as the monitor numbers them.
    public struct LayerReport: Sendable {
        /// The layer's 1-based position among the model's Linear layers, from the input.
        public var index: Int
        /// The layer's path in the model (`"0"`, `"2.body.0"`).
        public var path: String
        /// `σ_w²`: the weights' mean square times their fan-in.
        public var weightVariance: Double
        /// `σ_b²`: the biases' mean square (0 without a bias).
        public var biasVariance: Double
        /// The activation after it, by the monitor's name (nil: none, as for the output layer).
        public var activation: String?
        /// The weight gradient's norm over the reference layer's, as the theory predicts it.
        public var predictedRatio: Double
        /// The reference layer's measured norm times ``predictedRatio`` (nil when that norm is 0 or not finite).
        public var predictedGradientNorm: Double?
        /// The weight gradient's Euclidean norm after one backward pass (nil for a frozen layer).
        public var measuredGradientNorm: Double?
        /// ``measuredGradientNorm`` over the reference layer's (nil when either is missing, 0 or not finite).
        public var measuredRatio: Double?
        /// The verdict from the measurement.
        public var verdict: GradientMonitor.Verdict
        /// The verdict the theory alone gives.
        public var predictedVerdict: GradientMonitor.Verdict
    }

    /// A change to the model that the theory can evaluate.
    public enum Cure: Sendable, Equatable, CustomStringConvertible {
        /// Re-initialize every weight (the activation's standard initializer and gain).
        case initialization(Initializer)
        /// ``BatchNorm`` after each hidden ``Linear``.
        case batchNorm
        /// ReLU activations with He initialization.
        case reluWithHeInitialization
        /// ``Residual`` connections around the hidden layers whose input and output widths agree.
        case residualConnections

        /// The cure in words, as `gradkit diagnose` prints it ("add BatchNorm after each hidden Linear").
        public var description: String {
            switch self {
            case .initialization(let initializer): "initialize the weights with \(Cure.name(initializer))"
            case .batchNorm: "add BatchNorm after each hidden Linear"
            case .reluWithHeInitialization: "use ReLU with He initialization"
            case .residualConnections: "add residual connections around the hidden layers"
            }
        }

        /// The `gradkit` options that apply the cure to an MLP.
        public var commandLineOptions: String {
            switch self {
            case .initialization(let initializer):
                switch initializer {
                case .heNormal: "--init he-normal"
                case .xavierNormal: "--init xavier-normal"
                default: "--init " + Cure.name(initializer)
                }
            case .batchNorm: "--batch-norm"
            case .reluWithHeInitialization: "--activation relu --init he-normal"
            case .residualConnections: "--residual"
            }
        }

        private static func name(_ initializer: Initializer) -> String {
            switch initializer {
            case .heNormal(_, let nonlinearity): "He normal (gain \(shortDecimal(Double(nonlinearity.gain))))"
            case .xavierNormal(let gain): "Xavier normal (gain \(shortDecimal(Double(gain))))"
            default: "\(initializer)"
            }
        }
    }

    /// A cure and what the theory predicts with it.
    public struct CureEffect: Sendable {
        /// The change to the model.
        public var cure: Cure
        /// The first layer's gradient norm over the reference layer's, with the cure.
        public var predictedFirstToLastRatio: Double
        /// The worst per-layer verdict the theory gives with the cure.
        public var predictedVerdict: GradientMonitor.Verdict
    }

    /// The ``Linear`` layers, from the input.
    public var layers: [LayerReport]
    /// The worst layer verdict: non-finite, exploding, vanishing, else healthy.
    public var verdict: GradientMonitor.Verdict
    /// The first layer's predicted gradient norm over the reference layer's.
    public var predictedFirstToLastRatio: Double
    /// The same, measured (nil when a norm is missing, 0 or not finite).
    public var measuredFirstToLastRatio: Double?
    /// The cure recommended: the first of ``candidates`` the theory predicts
    /// healthy; nil when the model is healthy or nothing tried is predicted to help.
    public var recommendedCure: CureEffect?
    /// Every cure evaluated, in the order of preference.
    public var candidates: [CureEffect]
    /// The loss of the measured batch.
    public var loss: Float
    /// The examples in the measured batch.
    public var batchSize: Int
    /// The 1-based index of the reference layer: the last layer that is not frozen.
    public var referenceIndex: Int
    /// Whether the theory predicts no gradient at the reference layer, which makes its ratios 0/0 (NaN).
    var predictsNoReferenceGradient = false

    /// A per-layer table, the verdict and the cure.
    public var description: String {
        var lines = ["layer  path            activation  σ_w²      predicted ‖g‖  measured ‖g‖  ratio (pred / meas)  verdict"]
        func pad(_ s: String, _ width: Int) -> String { s + String(repeating: " ", count: Swift.max(1, width - s.count)) }
        for layer in layers {
            lines.append(
                pad("\(layer.index)", 7) + pad(layer.path, 16) + pad(layer.activation ?? "—", 12) + pad(shortDecimal(layer.weightVariance), 10)
                    + pad(layer.predictedGradientNorm.map(scientificText) ?? "—", 15) + pad(layer.measuredGradientNorm.map(scientificText) ?? "—", 14)
                    + pad(scientificText(layer.predictedRatio) + " / " + (layer.measuredRatio.map(scientificText) ?? "—"), 21) + layer.verdict.rawValue)
        }
        lines.append("")
        lines.append(
            "verdict: \(verdict.rawValue) — first/last gradient ratio predicted \(scientificText(predictedFirstToLastRatio)), "
                + "measured \(measuredFirstToLastRatio.map(scientificText) ?? "—") (batch of \(batchSize), loss \(shortDecimal(Double(loss))))")
        if let note = missingRatioNote { lines.append(note) }
        if let cure = recommendedCure {
            lines.append("cure: \(cure.cure) (\(cure.cure.commandLineOptions)): predicted first/last ratio \(scientificText(cure.predictedFirstToLastRatio)), \(cure.predictedVerdict.rawValue)")
        } else if verdict == .vanishing || verdict == .exploding {
            lines.append("cure: none of the cures tried is predicted to make the gradients healthy")
        }
        for other in candidates where other.cure != recommendedCure?.cure {
            lines.append("  also: \(other.cure) (\(other.cure.commandLineOptions)): predicted ratio \(scientificText(other.predictedFirstToLastRatio)), \(other.predictedVerdict.rawValue)")
        }
        return lines.joined(separator: "\n")
    }

    /// The line that explains a `—` where the report would show a ratio to a reference layer without gradient
    /// (0/0), or to a norm that is not finite; nil when the report shows none.
    private var missingRatioNote: String? {
        let measuredNone = layers[referenceIndex - 1].measuredGradientNorm == 0
        var zero: [String] = []
        if predictsNoReferenceGradient { zero.append("the theory predicts") }
        if measuredNone { zero.append("the pass measures") }
        if !zero.isEmpty {
            return "note: — marks a ratio to layer \(referenceIndex)'s gradient, which \(zero.joined(separator: " and ")) to be 0: the ratio is 0/0"
        }
        let predicted = layers.map(\.predictedRatio) + [predictedFirstToLastRatio] + candidates.map(\.predictedFirstToLastRatio)
        return predicted.contains(where: \.isNaN) ? "note: — marks a ratio of gradient norms too large for a Double (∞/∞)" : nil
    }
}

/// Diagnoses `model`'s gradients before training: predicts each ``Linear``
/// layer's gradient norm from mean-field theory (``SignalPropagation``) and
/// measures it with one forward and backward pass on a batch of `data`, then
/// gives a verdict per layer and overall (the monitor's vocabulary and
/// `thresholds`: a layer whose norm is below `vanishingRatio`, or above
/// `explodingRatio`, times the last layer's is vanishing or exploding) and
/// the cure the theory predicts to work.
///
/// The prediction reads the model's actual layers: each Linear's σ_w² (its
/// weights' mean square times fan-in) and σ_b², the activation after it,
/// ``BatchNorm`` (normalizes the pre-activations to its scale and shift and
/// divides the backward gradient by the batch's standard deviation: the
/// approximation of Yang et al., 2019, which gives ReLU networks their π/(π−1)
/// per layer) and ``Residual`` (the body's output moments add to the input's,
/// the means meeting in the mean square). Backward, it follows the part of
/// the gradient that each Linear sends along its own input, which the
/// gradient-independence assumption leaves out: a small share in a plain
/// network, most of the gradient in a deep residual ReLU or ELU network,
/// whose shortcuts carry it down while it grows at the forward rate. The
/// first layer's inputs enter with the batch's own mean, mean square and
/// variance. The theory predicts ratios between layers; the absolute scale
/// comes from the loss, so predicted norms are anchored at the measured last
/// layer. It predicts per example (`‖δ‖²·‖x‖²`), leaving out the batch's
/// cross terms: where the examples are nearly uncorrelated at one layer and
/// nearly alike at another (standardized inputs into a deep residual
/// stream), a layer's ratio can be off by up to about a factor of 6.
///
/// The measurement runs the model in training mode (BatchNorm uses the
/// batch's statistics, as the first step would) with ``Dropout`` off. The
/// model is left exactly as it was: parameters untouched, gradients and
/// BatchNorm's running statistics restored, its mode put back.
///
/// ```swift
/// let model = withManualSeed(0) { MLP(sizes: [64] + Array(repeating: 32, count: 19) + [10], activation: .sigmoid) }
/// let diagnosis = try diagnose(model: model, data: digits)
/// print(diagnosis)        // vanishing; cure: add BatchNorm after each hidden Linear
/// ```
/// - Parameters:
///   - model: the network at initialization; left exactly as it was.
///   - data: examples whose features fit the model's input (and labels or
///     targets that fit `loss`); one batch of them is measured.
///   - loss: the loss whose gradient is propagated (the training loss).
///   - batchSize: the measured batch's size (at most the data's count); the
///     batch is the first of an epoch shuffled by `seed`.
///   - seed: the seed of that shuffle.
///   - thresholds: the monitor's thresholds for the verdicts.
/// - Throws: ``DataError`` when the data is empty or does not fit the model,
///   ``TrainingError`` when it does not fit the loss, and
///   ``TrainingError/invalidOption(_:)`` for a model the theory does not cover
///   (a layer other than Linear, BatchNorm, an elementwise activation,
///   Dropout, Residual without projection, Sequential or MLP), a model whose
///   Linear layers are all frozen, or a BatchNorm with a batch of one example.
public func diagnose(
    model: any Layer, data: Dataset, loss: LossFunction = .softmaxCrossEntropy, batchSize: Int = 32, seed: UInt64 = 0,
    thresholds: GradientMonitor.Thresholds = .init()
) throws -> Diagnosis {
    if let width = model.inputWidth, width != data.featureCount { throw DataError.widthMismatch(dataset: data.featureCount, model: width) }
    if loss.usesLabels != (data.labels != nil) { throw TrainingError.missingTargets("the loss and the data set's targets do not match") }
    guard batchSize > 0 else { throw TrainingError.invalidOption("diagnose: the batch size must be positive, got \(batchSize)") }
    // `Dataset.subset([])` is the one way to an empty data set.
    guard data.count > 0 else { throw DataError.invalidArgument("diagnose: the data set has no examples") }
    var found = ModelStructure()
    let stages = try found.stages(of: model, path: "")
    guard !found.linears.isEmpty else { throw TrainingError.invalidOption("diagnose: the model has no Linear layer") }
    // With every Linear frozen nothing is measured, and without a trainable parameter the loss has no backward pass.
    guard found.linears.contains(where: { !$0.isFrozen }) else {
        throw TrainingError.invalidOption("diagnose: every Linear layer is frozen, so there is no gradient to diagnose; unfreeze one")
    }
    var generator: SeededGenerator? = SeededGenerator(seed: seed)
    let batch = data.batches(size: Swift.min(batchSize, data.count), shuffledBy: &generator)[0]
    if found.hasBatchNorm && batch.count < 2 {
        throw TrainingError.invalidOption("diagnose: BatchNorm needs a batch of 2 or more examples, got \(batch.count)")
    }
    let (norms, lossValue) = measureGradientNorms(model, found, batch, loss)
    let input = InputMoments(batch.features)
    let prediction = predictWeightGradients(stages, input, linearCount: found.linears.count)

    let referenceIndex = found.linears.indices.last { !found.linears[$0].isFrozen } ?? (found.linears.count - 1)
    let predictedReference = prediction[referenceIndex], measuredReference = norms[referenceIndex]
    func judge(_ ratio: Double?, norm: Double?, index: Int) -> GradientMonitor.Verdict {
        if found.linears[index].isFrozen { return .frozen }
        guard let norm else { return .healthy }
        if !norm.isFinite { return .nonFinite }
        // No gradient at all, the reference layer's included, is vanishing (as the monitor's zero-gradient rule).
        guard index != referenceIndex else { return norm == 0 ? .vanishing : .healthy }
        guard let ratio else { return norm == 0 ? .vanishing : .healthy }
        // 0 / 0 (weights of zeros): no gradient reaches the reference layer either, so none flows anywhere.
        if ratio.isNaN { return .vanishing }
        if ratio > Double(thresholds.explodingRatio) { return .exploding }
        if ratio < Double(thresholds.vanishingRatio) { return .vanishing }
        return .healthy
    }
    var layers: [Diagnosis.LayerReport] = []
    for (i, linear) in found.linears.enumerated() {
        let predicted = (prediction[i] / predictedReference).squareRoot()
        let anchor = measuredReference.flatMap { $0 > 0 && $0.isFinite ? $0 : nil }
        let measured = norms[i]
        let measuredRatio = anchor.flatMap { a in measured.flatMap { $0.isFinite ? $0 / a : nil } }
        layers.append(Diagnosis.LayerReport(
            index: i + 1, path: linear.path, weightVariance: linear.weightVariance, biasVariance: linear.biasVariance,
            activation: linear.activation?.reportName, predictedRatio: predicted, predictedGradientNorm: anchor.map { $0 * predicted },
            measuredGradientNorm: measured, measuredRatio: measuredRatio,
            verdict: judge(measuredRatio, norm: measured, index: i),
            predictedVerdict: judge(predicted, norm: i == referenceIndex && predictedReference == 0 ? 0 : 1, index: i)))
    }
    let verdict = worst(layers.map(\.verdict))

    // The cures, in the order of preference: the least change to the model first.
    var candidates: [Diagnosis.CureEffect] = []
    for cure in found.candidateCures() {
        let cured = found.apply(cure, to: stages)
        let p = predictWeightGradients(cured, input, linearCount: found.linears.count)
        let ratios = p.indices.map { (p[$0] / p[referenceIndex]).squareRoot() }
        candidates.append(Diagnosis.CureEffect(
            cure: cure, predictedFirstToLastRatio: ratios[0],
            predictedVerdict: worst(ratios.indices.map { judge(ratios[$0], norm: 1, index: $0) })))
    }
    let needsCure = verdict == .vanishing || verdict == .exploding
    let first = layers[0]
    return Diagnosis(
        layers: layers, verdict: verdict, predictedFirstToLastRatio: first.predictedRatio, measuredFirstToLastRatio: first.measuredRatio,
        recommendedCure: needsCure ? candidates.first { $0.predictedVerdict == .healthy } : nil, candidates: needsCure ? candidates : [],
        loss: lossValue, batchSize: batch.count, referenceIndex: referenceIndex + 1, predictsNoReferenceGradient: predictedReference == 0)
}

/// The worst of `verdicts` that the gradient scale can show: non-finite, exploding, vanishing, else healthy.
private func worst(_ verdicts: [GradientMonitor.Verdict]) -> GradientMonitor.Verdict {
    [.nonFinite, .exploding, .vanishing].first { verdicts.contains($0) } ?? .healthy
}

/// One forward and backward pass in training mode with dropout off: each
/// Linear's weight-gradient norm (nil when frozen) and the loss. Restores
/// gradients, BatchNorm's running statistics and the training modes.
private func measureGradientNorms(_ model: any Layer, _ structure: ModelStructure, _ batch: Batch, _ loss: LossFunction) -> ([Double?], Float) {
    let parameters = model.parameters, buffers = model.buffers
    let savedGradients = parameters.map(\.gradient), savedBuffers = buffers.map(\.value)
    let wasTraining = model.isTraining
    model.isTraining = true
    let dropoutModes = structure.dropouts.map(\.isTraining)
    for dropout in structure.dropouts { dropout.isTraining = false }
    defer {
        for (p, g) in zip(parameters, savedGradients) { p.gradient = g }
        for (b, v) in zip(buffers, savedBuffers) { b.value = v }
        model.isTraining = wasTraining
        for (dropout, mode) in zip(structure.dropouts, dropoutModes) { dropout.isTraining = mode }
    }
    for p in parameters { p.gradient = nil }
    let value = loss(model(batch.features), batch)
    value.backward()
    let norms: [Double?] = structure.linears.map { linear in
        guard !linear.isFrozen else { return nil }
        guard let gradient = linear.weight.gradient else { return 0 }
        return gradient.scalars.reduce(0.0) { $0 + Double($1) * Double($1) }.squareRoot()
    }
    return (norms, value.scalars[0])
}

// MARK: - The model as the theory sees it

/// A step of the mean-field model.
indirect enum PropagationStage {
    /// A Linear layer: its position among the Linears, σ_w², σ_b², widths, and whether a BatchNorm follows it.
    case linear(index: Int, weightVariance: Double, biasVariance: Double, inputWidth: Int, outputWidth: Int, feedsBatchNorm: Bool)
    /// BatchNorm with the mean of its squared scales, the mean and mean square of its shifts.
    case batchNorm(scaleSquare: Double, shift: Double, shiftSquare: Double, epsilon: Double)
    case activation(Activation)
    /// `x + body(x)`.
    case residual([PropagationStage])
}

/// The batch's inputs as the theory needs them.
struct InputMoments {
    /// The features' count.
    var width: Int
    /// The features' mean over the batch and over features: an example's mean over its features, averaged over the batch.
    var mean: Double
    /// The mean of every feature's square.
    var meanSquare: Double
    /// The mean over features of each feature's variance across the batch.
    var variance: Double

    init(_ features: Tensor) {
        let width = features.shape[features.rank - 1], rows = features.scalarCount / Swift.max(width, 1)
        let x = features.scalars
        var total = 0.0, square = 0.0, variance = 0.0
        for j in 0..<width {
            var sum = 0.0, sumSquares = 0.0
            for i in 0..<rows {
                let v = Double(x[i * width + j])
                sum += v
                sumSquares += v * v
            }
            let mean = sum / Double(rows)
            total += mean
            square += sumSquares / Double(rows)
            variance += Swift.max(sumSquares / Double(rows) - mean * mean, 0)
        }
        self.width = width
        mean = total / Double(Swift.max(width, 1))
        meanSquare = square / Double(Swift.max(width, 1))
        self.variance = variance / Double(Swift.max(width, 1))
    }
}

/// The per-unit moments of a layer's output in the mean-field model.
private struct Signal {
    /// The units' count.
    var width: Int
    /// The mean over units (an example's mean over its units: its component along the all-ones vector).
    var mean: Double
    /// The mean square over units (the second moment the next Linear sees).
    var meanSquare: Double
    /// The variance across the batch (what a following BatchNorm divides by).
    var variance: Double

    /// The mean square of the signal less its mean over units: its spread over units and examples.
    var spread: Double { Swift.max(meanSquare - mean * mean, 0) }
}

/// A back-propagated gradient in the mean-field model: a part along the
/// forward signal `x` at the same point, `ḡ·1 + β·(x − x̄·1)` (`x̄`: the
/// signal's mean over units), and the rest. The part along the signal is what
/// a Linear layer's backward pass sends along its own input (see
/// ``propagate(_:_:)``); `ḡ` and `β` vary from example to example, each a sum
/// of independent unit-variance sources (one born at each Linear), so only
/// their second moments enter the squared norm.
private struct Gradient {
    /// One source's coefficients: on the all-ones vector (`ḡ`) and on the centered signal (`β`).
    struct Source {
        var unit: Double
        var signal: Double
    }

    /// The squared norm of the part not along the signal.
    var rest: Double
    /// How much of ``rest`` is orthogonal to the (uncentered) signal here, as a Linear's backward pass leaves what
    /// it does not send along its input.
    var orthogonal: Double
    /// What a projection on the centered signal here sees of ``rest``, in units of a random vector's squared norm:
    /// `E[((x − x̄)·r)²] / E[(x − x̄)²]`. The parts a Linear's independent weights `W̃` made count in full, or by
    /// what is left of them once orthogonal to the signal; the parts that are functions of the forward signal count
    /// 0, since the forward pass fixes their projections (their fluctuations are the forward pass's, which
    /// mean-field theory leaves out).
    var projected: Double
    /// The part along the signal, one entry per source; the sources are independent, so their squares add.
    var sources: [Source] = []

    /// `E[ḡ²]`.
    var unitSquare: Double { sources.reduce(0) { $0 + $1.unit * $1.unit } }
    /// `E[β²]`.
    var signalSquare: Double { sources.reduce(0) { $0 + $1.signal * $1.signal } }

    /// The expected squared norm at a point whose signal is `signal`.
    func squaredNorm(at signal: Signal) -> Double {
        rest + Double(signal.width) * (unitSquare + signalSquare * signal.spread)
    }

    /// The gradients of two branches that meet: everything adds, each source's part with the same source's (a
    /// source one branch lacks counts 0 there).
    static func + (a: Gradient, b: Gradient) -> Gradient {
        var sum = Gradient(rest: a.rest + b.rest, orthogonal: a.orthogonal + b.orthogonal, projected: a.projected + b.projected)
        for k in 0..<Swift.max(a.sources.count, b.sources.count) {
            let x = k < a.sources.count ? a.sources[k] : Source(unit: 0, signal: 0)
            let y = k < b.sources.count ? b.sources[k] : Source(unit: 0, signal: 0)
            sum.sources.append(Source(unit: x.unit + y.unit, signal: x.signal + y.signal))
        }
        return sum
    }
}

/// Each Linear's predicted squared weight-gradient norm, for a unit squared
/// gradient at the model's output (only ratios between them mean anything).
func predictWeightGradients(_ stages: [PropagationStage], _ input: InputMoments, linearCount: Int) -> [Double] {
    var predicted = [Double](repeating: 0, count: linearCount)
    let start = Signal(width: input.width, mean: input.mean, meanSquare: input.meanSquare, variance: input.variance)
    let (_, backward) = propagate(stages, start)
    // The loss's gradient at the output is independent of the output's weights.
    _ = backward(Gradient(rest: 1, orthogonal: 0, projected: 1), &predicted)
    return predicted
}

/// Runs `stages` forward from `input`; returns the output's moments and the
/// backward pass: from the gradient at the output, the one at the input,
/// recording each Linear's squared weight-gradient norm (`‖δ‖²·‖x‖²` per
/// example: the batch's cross terms are left out).
///
/// The forward pass is the mean-field variance map with the mean over units
/// carried along: a residual block's `x + f(x)` has mean square
/// `E[x²] + E[f²] + 2·x̄·f̄`, since the body's units are independent of the
/// shortcut's (its weights are fresh), so only the means meet.
///
/// The backward pass does not assume that a Linear's backward weights are
/// independent of its forward ones. Given the forward pass, a Linear
/// `h = W·z + b` has `W = (h − b)·zᵀ/‖z‖² + W̃·(I − z·zᵀ/‖z‖²)` with `W̃` an
/// independent copy (a Gaussian matrix conditioned on `W·z`), so the gradient
/// `u` at `h` comes back as
/// ```
/// Wᵀu = ((h − b)·u / ‖z‖²) · z  +  (I − z·zᵀ/‖z‖²) · W̃ᵀu
/// ```
/// The second term has squared norm `σ_w²‖u‖²·(1 − 1/fan-in)` and is
/// orthogonal to `z`. The first lies along the layer's own input: for `u`'s
/// part along the output signal, `β·h`, its coefficient is exactly
/// `β·σ_w²·fan-out/fan-in`; for parts `W̃` made, a random coefficient of
/// variance `E[((h − b)·u)²] / ‖z‖⁴` (a new source): `σ_w²‖u‖²/(fan-in·‖z‖²)`
/// for a random `u` (so the total is `σ_w²‖u‖²`, as the
/// gradient-independence assumption has it), but only the biases' share for
/// one orthogonal to the signal. Below a ReLU, `φ′(h)⊙r` with `r ⊥ relu(h)`
/// is orthogonal to `h` too, so in a positively homogeneous network the part
/// along the signal stays a `1/width` share and the mean squared gradient is
/// the one the gradient-independence assumption gives, as it must be exactly
/// (Hanin and Nica, 2019). Across a residual block, though, the shortcut
/// carries the part along the signal down unchanged while the body adds its
/// own, so it grows at the forward rate of the stream's mean square,
/// `1 + (E[f²] + 2·x̄·f̄)/E[x²]`, not at the rest's `1 + χ`. With ReLU or ELU
/// the stream's mean makes the first larger, and after about ten blocks of
/// width 64 the part along the signal is most of the gradient: left out, the
/// first layer's gradient in a 60-block residual ReLU network comes out three
/// to four decades too small.
///
/// At an activation `y = φ(h)` the part along `y`, `ḡ + β·(φ(h) − E φ)`,
/// becomes `φ′(h)·(ḡ + β·(φ(h) − E φ))`, a function of `h`: its projection
/// on `1` and `h − h̄` (over `h`'s Gaussian) is the new part along the signal,
/// the remainder joins the rest. A part orthogonal to `y` is weighted by
/// `(N·E[φ′²] − E[φ′²y²]/E[y²]) / (N − 1)` instead of `E[φ′²]` (it lacks
/// `y`'s direction), and a projection on `h − h̄` sees of it only its part
/// along `(h − h̄)·φ′(h) − κ·φ(h)`, `κ` the regression coefficient. At a
/// residual block the part along the body's output is not along the
/// signal below the block, and the part along the input is not along the
/// body's. BatchNorm's backward pass removes from each unit the batch mean
/// and the component along the normalized input, which is where the part
/// along the signal lies, and leaves a gradient whose projection on the
/// Linear before it sums to 0 over the batch: the squared norm goes on as
/// before, none of it along the signal, and that Linear sends nothing along
/// its input.
private func propagate(_ stages: [PropagationStage], _ input: Signal) -> (Signal, (Gradient, inout [Double]) -> Gradient) {
    var signal = input
    var steps: [(Gradient, inout [Double]) -> Gradient] = []
    for stage in stages {
        let before = signal
        switch stage {
        case .linear(let index, let weightVariance, let biasVariance, let inputWidth, let outputWidth, let feedsBatchNorm):
            signal = Signal(
                width: outputWidth, mean: 0, meanSquare: weightVariance * before.meanSquare + biasVariance,
                variance: weightVariance * before.variance)
            let output = signal
            // ‖∂L/∂W‖² = ‖δ‖² · ‖x‖² per example; before a BatchNorm δ has zero batch mean, so x enters centered.
            let inputSquare = Double(inputWidth) * (feedsBatchNorm ? before.variance : before.meanSquare)
            let fanIn = Double(inputWidth), fanOut = Double(outputWidth)
            // h − b = λ·h + ε with ε independent of h (the biases' share): λ = σ_w²·E[z²] / E[h²].
            let regression = output.meanSquare > 0 ? weightVariance * before.meanSquare / output.meanSquare : 0
            steps.append { gradient, recorded in
                let square = gradient.squaredNorm(at: output)
                recorded[index] = square * inputSquare
                guard before.meanSquare > 0, !feedsBatchNorm else {
                    let scattered = weightVariance * square
                    return Gradient(rest: scattered, orthogonal: 0, projected: scattered)
                }
                let scattered = weightVariance * square * (1 - 1 / fanIn)
                var result = Gradient(rest: scattered, orthogonal: scattered, projected: 0)
                let gain = weightVariance * fanOut / fanIn
                result.sources = gradient.sources.map { Gradient.Source(unit: $0.signal * gain * before.mean, signal: $0.signal * gain) }
                // E[((h − b)·u)²] / (σ_w²·E[z²]) over the parts of u not along h: W̃'s parts through λ·h and ε, the
                // others (ḡ·1, functions of h orthogonal to it) through ε alone.
                let seen = regression * gradient.projected + (1 - regression) * (gradient.rest + fanOut * gradient.unitSquare)
                let coefficient = (weightVariance * seen / (fanIn * fanIn * before.meanSquare)).squareRoot()
                result.sources.append(Gradient.Source(unit: coefficient * before.mean, signal: coefficient))
                return result
            }
        case .batchNorm(let scaleSquare, let shift, let shiftSquare, let epsilon):
            signal = Signal(width: before.width, mean: shift, meanSquare: scaleSquare + shiftSquare, variance: scaleSquare)
            let factor = scaleSquare / (before.variance + epsilon)
            let output = signal
            steps.append { gradient, _ in
                let square = gradient.squaredNorm(at: output) * factor
                return Gradient(rest: square, orthogonal: 0, projected: square)
            }
        case .activation(let activation):
            let spread = before.spread
            func expectation(_ f: @escaping (Double) -> Double) -> Double {
                SignalPropagation.gaussianExpectation(mean: before.mean, variance: spread, kink: SignalPropagation.kink(of: activation), f)
            }
            let value = { (x: Double) in SignalPropagation.value(of: activation, at: x) }
            let derivative = { (x: Double) in SignalPropagation.derivative(of: activation, at: x) }
            let mean = SignalPropagation.mean(of: activation, mean: before.mean, variance: spread)
            let square = SignalPropagation.meanSquare(of: activation, mean: before.mean, variance: spread)
            signal = Signal(width: before.width, mean: mean, meanSquare: square, variance: Swift.max(square - mean * mean, 0))
            let slope = SignalPropagation.meanSquaredSlope(of: activation, mean: before.mean, variance: spread)
            // With φ̃ = φ − E φ and h̃ = h − h̄: φ′·(ḡ + β·φ̃)'s moments and its projections on 1 and h̃.
            let slopeMean = expectation { derivative($0) }, slopeCentered = expectation { derivative($0) * (value($0) - mean) }
            let slopeAlong = expectation { ($0 - before.mean) * derivative($0) }
            let slopeCenteredAlong = expectation { ($0 - before.mean) * derivative($0) * (value($0) - mean) }
            let squareCentered = expectation { derivative($0) * derivative($0) * (value($0) - mean) }
            let squareCenteredSquare = expectation { derivative($0) * derivative($0) * (value($0) - mean) * (value($0) - mean) }
            // For r ⊥ y, per unit of ‖r‖²: φ′⊙r's squared norm, and what a projection on h̃ sees of it (and of a random r).
            let width = Double(before.width)
            let slopeOutput = square > 0 ? expectation { derivative($0) * derivative($0) * value($0) * value($0) } / square : slope
            let orthogonalSlope = width > 1 ? Swift.max((width * slope - slopeOutput) / (width - 1), 0) : slope
            let alongSquare = expectation { ($0 - before.mean) * ($0 - before.mean) * derivative($0) * derivative($0) }
            let alongOutput = square > 0 ? expectation { ($0 - before.mean) * derivative($0) * value($0) } : 0
            let orthogonalSeen = spread > 0 ? Swift.max(alongSquare - (square > 0 ? alongOutput * alongOutput / square : 0), 0) / spread : 0
            let randomSeen = spread > 0 ? alongSquare / spread : 0
            steps.append { gradient, _ in
                let orthogonal = Swift.min(gradient.orthogonal, gradient.rest)
                var result = Gradient(
                    rest: (gradient.rest - orthogonal) * slope + orthogonal * orthogonalSlope, orthogonal: 0,
                    projected: gradient.projected * randomSeen + orthogonal * orthogonalSeen)
                var remainder = 0.0
                for source in gradient.sources {
                    let unit = source.unit * slopeMean + source.signal * slopeCentered
                    let along = spread > 0 ? (source.unit * slopeAlong + source.signal * slopeCenteredAlong) / spread : 0
                    let power = source.unit * source.unit * slope + 2 * source.unit * source.signal * squareCentered
                        + source.signal * source.signal * squareCenteredSquare
                    remainder += power - unit * unit - along * along * spread
                    result.sources.append(Gradient.Source(unit: unit, signal: along))
                }
                result.rest += width * Swift.max(remainder, 0)
                return result
            }
        case .residual(let body):
            let (out, bodyBackward) = propagate(body, before)
            signal = Signal(
                width: before.width, mean: before.mean + out.mean, meanSquare: before.meanSquare + out.meanSquare + 2 * before.mean * out.mean,
                variance: before.variance + out.variance)
            let width = Double(before.width)
            steps.append { gradient, recorded in
                // β·(x̃ + f̃): β·f̃ is not along the signal below the block, β·x̃ not along the body's; a part
                // orthogonal to x + f is orthogonal to neither branch's signal.
                let projected = gradient.projected + gradient.orthogonal
                var shortcut = Gradient(rest: gradient.rest + gradient.signalSquare * width * out.spread, orthogonal: 0, projected: projected)
                shortcut.sources = gradient.sources
                var intoBody = Gradient(rest: gradient.rest + gradient.signalSquare * width * before.spread, orthogonal: 0, projected: projected)
                intoBody.sources = gradient.sources
                return shortcut + bodyBackward(intoBody, &recorded)
            }
        }
    }
    return (signal, { gradient, recorded in
        var g = gradient
        for step in steps.reversed() { g = step(g, &recorded) }
        return g
    })
}

/// The layers of a model that the theory reads, found by walking it.
struct ModelStructure {
    struct LinearLayer {
        var path: String
        var weight: Parameter
        var weightVariance: Double
        var biasVariance: Double
        var inputWidth: Int
        var outputWidth: Int
        var isFrozen: Bool
        /// The activation that follows it (through BatchNorm and Dropout).
        var activation: Activation?
    }

    var linears: [LinearLayer] = []
    var dropouts: [Dropout] = []
    var hasBatchNorm = false
    var hasResidual = false
    var activations: [Activation] = []

    /// The stages of `layer`, whose parameters live under `path`.
    mutating func stages(of layer: any Layer, path: String) throws -> [PropagationStage] {
        func child(_ name: String) -> String { path.isEmpty ? name : path + "." + name }
        switch layer {
        case let linear as Linear:
            let weight = linear.weight.value.scalars
            let weightSquare = weight.reduce(0.0) { $0 + Double($1) * Double($1) } / Double(Swift.max(weight.count, 1))
            let bias = linear.bias?.value.scalars ?? []
            let biasSquare = bias.isEmpty ? 0 : bias.reduce(0.0) { $0 + Double($1) * Double($1) } / Double(bias.count)
            linears.append(LinearLayer(
                path: path.isEmpty ? "model" : path, weight: linear.weight, weightVariance: weightSquare * Double(linear.inputSize),
                biasVariance: biasSquare, inputWidth: linear.inputSize, outputWidth: linear.outputSize,
                isFrozen: !linear.weight.requiresGradient, activation: nil))
            return [.linear(index: linears.count - 1, weightVariance: weightSquare * Double(linear.inputSize), biasVariance: biasSquare,
                            inputWidth: linear.inputSize, outputWidth: linear.outputSize, feedsBatchNorm: false)]
        case let norm as BatchNorm:
            hasBatchNorm = true
            let scales = norm.weight?.value.scalars.map(Double.init) ?? [1]
            let shifts = norm.bias?.value.scalars.map(Double.init) ?? [0]
            return [.batchNorm(
                scaleSquare: scales.reduce(0) { $0 + $1 * $1 } / Double(scales.count), shift: shifts.reduce(0, +) / Double(shifts.count),
                shiftSquare: shifts.reduce(0) { $0 + $1 * $1 } / Double(shifts.count), epsilon: Double(norm.epsilon))]
        case let activation as ActivationLayer:
            guard let function = activation.activationFunction else {
                throw TrainingError.invalidOption("diagnose: \(path.isEmpty ? "the model" : "layer " + path) is a softmax, which the theory does not cover")
            }
            if let last = linears.indices.last, linears[last].activation == nil { linears[last].activation = function }
            activations.append(function)
            return [.activation(function)]
        case let dropout as Dropout:
            dropouts.append(dropout)
            return []
        case let residual as Residual:
            guard residual.projection == nil else {
                throw TrainingError.invalidOption("diagnose: the residual block at \(path) has a projection, which the theory does not cover")
            }
            hasResidual = true
            return [.residual(try stages(of: residual.body, path: child("body")))]
        case is Sequential, is MLP:
            var result: [PropagationStage] = []
            for (name, layer) in layer.namedChildren { result += try stages(of: layer, path: child(name)) }
            return markBatchNormInputs(result)
        default:
            throw TrainingError.invalidOption(
                "diagnose: \(path.isEmpty ? "the model" : "layer " + path) is a \(type(of: layer)); the theory covers Linear, BatchNorm, elementwise activations, Dropout, Residual, Sequential and MLP")
        }
    }

    /// The cures worth evaluating for this model, in the order of preference.
    func candidateCures() -> [Diagnosis.Cure] {
        var cures: [Diagnosis.Cure] = []
        let distinct = activations.reduce(into: [Activation]()) { if !$0.contains($1) { $0.append($1) } }
        if distinct.count == 1, let activation = distinct.first {
            switch activation.nonlinearity {
            case .sigmoid, .tanh: cures.append(.initialization(.xavierNormal(gain: activation.nonlinearity.gain)))
            default: cures.append(.initialization(.heNormal(nonlinearity: activation.nonlinearity)))
            }
        }
        if !hasBatchNorm { cures.append(.batchNorm) }
        if distinct != [.relu] { cures.append(.reluWithHeInitialization) }
        if !hasResidual { cures.append(.residualConnections) }
        return cures
    }

    /// `stages` with `cure` applied.
    func apply(_ cure: Diagnosis.Cure, to stages: [PropagationStage]) -> [PropagationStage] {
        switch cure {
        case .initialization(let initializer):
            return stages.map { reinitialized($0, initializer) }
        case .reluWithHeInitialization:
            return stages.map { withReLU(reinitialized($0, .heNormal())) }
        case .batchNorm:
            return markBatchNormInputs(withBatchNorm(stages))
        case .residualConnections:
            return withResiduals(stages)
        }
    }
}

/// `σ_w²` of `initializer` for a weight of fan-in `input` and fan-out `output`.
private func weightVariance(_ initializer: Initializer, input: Int, output: Int) -> Double {
    let fanIn = Double(input), fanOut = Double(output)
    switch initializer {
    case .xavierNormal(let gain), .xavierUniform(let gain): return Double(gain * gain) * 2 * fanIn / (fanIn + fanOut)
    case .heNormal(let mode, let nonlinearity), .heUniform(let mode, let nonlinearity):
        return Double(nonlinearity.gain * nonlinearity.gain) * (mode == .fanIn ? 1 : fanIn / fanOut)
    case .lecunNormal: return 1
    case .orthogonal(let gain): return Double(gain * gain) * (output >= input ? fanIn / fanOut : 1)
    case .constant(let value): return Double(value * value) * fanIn
    case .zeros: return 0
    case .pytorchDefault: return 1.0 / 3
    }
}

private func reinitialized(_ stage: PropagationStage, _ initializer: Initializer) -> PropagationStage {
    switch stage {
    case .linear(let index, _, let bias, let input, let output, let feeds):
        .linear(index: index, weightVariance: weightVariance(initializer, input: input, output: output), biasVariance: bias,
                inputWidth: input, outputWidth: output, feedsBatchNorm: feeds)
    case .residual(let body): .residual(body.map { reinitialized($0, initializer) })
    default: stage
    }
}

private func withReLU(_ stage: PropagationStage) -> PropagationStage {
    switch stage {
    case .activation: .activation(.relu)
    case .residual(let body): .residual(body.map(withReLU))
    default: stage
    }
}

/// A BatchNorm (PyTorch's initial scale 1, shift 0) between each Linear and the activation after it.
private func withBatchNorm(_ stages: [PropagationStage]) -> [PropagationStage] {
    var result: [PropagationStage] = []
    for (i, stage) in stages.enumerated() {
        if case .residual(let body) = stage {
            result.append(.residual(withBatchNorm(body)))
            continue
        }
        result.append(stage)
        if case .linear = stage, i + 1 < stages.count, case .activation = stages[i + 1] {
            result.append(.batchNorm(scaleSquare: 1, shift: 0, shiftSquare: 0, epsilon: 1e-5))
        }
    }
    return result
}

/// Marks each Linear directly followed by a BatchNorm.
private func markBatchNormInputs(_ stages: [PropagationStage]) -> [PropagationStage] {
    stages.enumerated().map { i, stage in
        switch stage {
        case .linear(let index, let weight, let bias, let input, let output, _):
            var feeds = false
            if i + 1 < stages.count, case .batchNorm = stages[i + 1] { feeds = true }
            return .linear(index: index, weightVariance: weight, biasVariance: bias, inputWidth: input, outputWidth: output, feedsBatchNorm: feeds)
        case .residual(let body): return .residual(markBatchNormInputs(body))
        default: return stage
        }
    }
}

/// Each hidden block (a Linear of equal input and output widths with its
/// BatchNorm and activation) wrapped in a residual connection, as ``MLP`` does.
private func withResiduals(_ stages: [PropagationStage]) -> [PropagationStage] {
    var result: [PropagationStage] = []
    var i = 0
    while i < stages.count {
        if case .linear(_, _, _, let input, let output, _) = stages[i], input == output {
            var end = i + 1
            if end < stages.count, case .batchNorm = stages[end] { end += 1 }
            if end < stages.count, case .activation = stages[end] {
                result.append(.residual(Array(stages[i...end])))
                i = end + 1
                continue
            }
        }
        result.append(stages[i])
        i += 1
    }
    return result
}

/// `1.2e-16`: two significant digits; `—` for NaN, a ratio that does not exist (0/0, ∞/∞), which the report's note explains.
private func scientificText(_ value: Double) -> String {
    guard value.isFinite else { return value.isNaN ? "—" : (value > 0 ? "inf" : "-inf") }
    return scientific(value)
}

/// A short decimal: `0.333`, `2`; past 1e15 as Swift prints a Double (`1e+37`: a loss
/// or σ_w² that large comes from huge inputs or weights, and must print, not trap).
private func shortDecimal(_ value: Double) -> String {
    guard value.isFinite, Swift.abs(value) < 1e15 else { return "\(value)" }
    return shortNumber((value * 1000).rounded() / 1000)
}
