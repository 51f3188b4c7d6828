// GradKitLab — vanishing by rounding: small gradients underflow in fp16, loss scaling lifts them back, bfloat16 never loses them. SPDX-License-Identifier: MIT
#if canImport(Glibc)
import Glibc
#endif
import GradKit

/// A 6-layer ReLU MLP on the digits whose loss is small (the cross-entropy
/// times λ = 2⁻¹⁹), trained by Adam with its ε scaled by λ too, so that in
/// exact arithmetic every step is that of the unweighted loss: in FP32 the
/// network trains as usual, and only storage can tell the difference. Four
/// configurations share the seed's data, initial weights and batches: FP32;
/// every activation, activation gradient and weight gradient stored in fp16
/// (emulated, ``StorageRounding`` and a gradient hook per parameter; master
/// weights and the optimizer stay FP32); the same with dynamic loss scaling
/// (``LossScaler``, PyTorch's defaults); and bfloat16 storage without
/// scaling (Micikevicius et al., 2018, "Mixed Precision Training", ICLR).
enum LossScaling {
    static let depth = 6, width = 64
    /// λ: the loss is the cross-entropy times this.
    static let lossWeight: Float = 0x1p-19
    /// Adam's rate, the same for every configuration.
    static let adamRate: Float = 1e-3
    static func epochs(_ plan: Plan) -> Int { plan.epochs(full: 10, quick: 4) }

    static let experiment = Experiment(
        name: "loss-scaling", title: "Loss scaling: gradients that vanish by rounding in fp16", metric: .testAccuracy,
        configurations: configurations, conclude: conclude)

    enum Name {
        static let fp32 = "FP32"
        static let fp16 = "fp16 storage"
        static let scaled = "fp16 storage + loss scaling"
        static let bf16 = "bf16 storage"
    }

    /// Keys of ``Trial/values`` and ``Trial/curves``.
    enum Key {
        /// Per layer (`zeroShare(layer:)`): the share of its weight-gradient entries that are exactly zero as stored, mean over steps.
        static func zeroShare(layer: Int) -> String { "zero share \(layer)" }
        static let skippedSteps = "skipped steps", finalScale = "final loss scale"
    }

    /// How a configuration stores what it computes.
    struct Storage: Sendable {
        var format: StorageFormat?
        var scaled = false
    }

    // MARK: Running

    static func configurations(_ plan: Plan) -> [Configuration] {
        func run(_ name: String, _ role: Role, _ storage: Storage, claim: Claim?) -> Configuration {
            Configuration(name, role: role, learningRates: [adamRate], claim: claim) { trial(storage, $0) }
        }
        return [
            run(Name.fp32, .control, Storage(), claim: nil),
            run(Name.fp16, .pathology, Storage(format: .float16), claim: underflows()),
            run(Name.scaled, .remedy, Storage(format: .float16, scaled: true), claim: restores()),
            run(Name.bf16, .alternative, Storage(format: .bfloat16), claim: matches()),
            .majorityClass(digitsSplit),
        ]
    }

    /// The network, with a ``StorageRounding`` before the first layer and after every layer when `format` is set.
    static func network(_ format: StorageFormat?) -> Sequential {
        let sizes = [64] + Array(repeating: width, count: depth - 1) + [10]
        var layers: [any Layer] = format.map { [StorageRounding($0)] } ?? []
        for i in 0..<depth {
            layers.append(Linear(inputSize: sizes[i], outputSize: sizes[i + 1], weightInitializer: .heNormal(), biasInitializer: .constant(0)))
            if let format { layers.append(StorageRounding(format)) }
            guard i < depth - 1 else { break }
            layers.append(ReLU())
            if let format { layers.append(StorageRounding(format)) }
        }
        return Sequential(layers)
    }

    /// Counts, per layer, the weight-gradient entries that are zero as stored, and the skipped steps.
    final class Recorder {
        var zeros: [Int], entries: [Int]
        var skipped = 0
        init(layers: Int) {
            zeros = Array(repeating: 0, count: layers)
            entries = zeros
        }

        /// A parameter's gradient hook: `gradient` as `format` stores it (nil
        /// without a format: FP32 keeps it as it is), counted into `layer`'s
        /// zero share when the parameter is that layer's weight.
        func store(_ gradient: Tensor, format: StorageFormat?, layer: Int?) -> Tensor? {
            let stored = format.map { gradient.stored(as: $0) } ?? gradient
            if let layer {
                zeros[layer] += stored.scalars.reduce(0) { $0 + ($1 == 0 ? 1 : 0) }
                entries[layer] += stored.scalarCount
            }
            return format == nil ? nil : stored
        }

        /// Each layer's share of zero entries over everything counted (0 for a layer never counted).
        var zeroShares: [Double] { zip(zeros, entries).map { Double($0) / Double(Swift.max($1, 1)) } }
    }

    static func trial(_ storage: Storage, _ context: TrialContext) -> Trial {
        let model = withManualSeed(context.seed.initialization) { network(storage.format) }
        let recorder = Recorder(layers: depth)
        let weights = model.parameters.filter { $0.shape.count == 2 }
        for p in model.parameters {
            let layer = weights.firstIndex { $0 === p }
            p.registerGradientHook { recorder.store($0, format: storage.format, layer: layer) }
        }
        let optimizer = Adam(model.parameters, learningRate: context.learningRate, epsilon: 1e-8 * lossWeight)
        let loss = LossFunction(name: "λ · cross-entropy", targets: .labels) { output, batch in
            softmaxCrossEntropy(logits: output, labels: batch.labels!) * lossWeight
        }
        let scaler = storage.scaled ? LossScaler() : nil
        var trial = train(model, optimizer: optimizer, TrainingPlan(
            data: digitsSplit(seed: context.seed), metric: .testAccuracy, loss: loss, epochs: epochs(context.plan),
            seed: context.seed, sampleEvery: 10, lossScaler: scaler)) { _, record in
            if record.skipped { recorder.skipped += 1 }
        }
        for (layer, share) in recorder.zeroShares.enumerated() { trial.values[Key.zeroShare(layer: layer + 1)] = share }
        trial.values[Key.skippedSteps] = Double(recorder.skipped)
        trial.values[Key.finalScale] = Double(scaler?.scale ?? 1)
        return trial
    }

    // MARK: Analysis

    /// A layer loses gradient to rounding when this much more of its weight gradient is zero than in FP32.
    static let underflowShare = 0.1
    /// Matching FP32: a test accuracy at most this far below it.
    static let matchTolerance = 0.03

    /// The share of layer `layer`'s weight-gradient entries that were zero as stored, mean over training.
    static func zeroShare(_ trial: Trial, layer: Int) -> Double { trial.values[Key.zeroShare(layer: layer)] ?? .nan }

    /// Per layer, how much more of the weight gradient is zero than in FP32 at the same seed.
    static func excessZeros(_ trial: Trial, _ seed: SeedTrials) -> [Double] {
        (1...depth).map { zeroShare(trial, layer: $0) - zeroShare(seed[Name.fp32], layer: $0) }
    }

    /// How far below FP32 a score must be to count as failing: a quarter of the way from FP32 down to the majority class.
    static func failureMargin(_ seed: SeedTrials) -> Double { (seed[Name.fp32].score - seed[ControlName.majorityClass].score) / 4 }

    /// ``matchTolerance`` and ``underflowShare`` in words.
    static let tolerance = "\(fixed(matchTolerance * 100, decimals: 0)) percentage points"
    static let underflowWords = "\(fixed(underflowShare * 100, decimals: 0)) percentage points"

    /// λ as a power of two, "2⁻¹⁹".
    static var lossWeightWords: String {
        let digits: [Character: Character] = ["-": "⁻", "0": "⁰", "1": "¹", "2": "²", "3": "³", "4": "⁴", "5": "⁵", "6": "⁶", "7": "⁷", "8": "⁸", "9": "⁹"]
        return "2" + String("\(Int(lossWeight.exponent))".map { digits[$0]! })
    }

    static func matchesFP32(_ trial: Trial, _ seed: SeedTrials) -> Bool {
        trial.score.isFinite && trial.score >= seed[Name.fp32].score - matchTolerance
    }

    static func underflows() -> Claim {
        Claim(holds: "underflows", fails: "trains", rule: """
            the share of some layer's weight-gradient entries that are zero as stored exceeds FP32's at that seed by at \
            least \(underflowWords) (mean over training), and its test accuracy is below FP32's by at least a quarter of the distance from \
            FP32 down to the majority class
            """) { trial, seed in
            excessZeros(trial, seed).contains { $0 >= underflowShare } && seed[Name.fp32].score - trial.score >= failureMargin(seed)
        }
    }

    static func restores() -> Claim {
        Claim(holds: "restores FP32", fails: "does not restore FP32", rule: """
            its test accuracy is at most \(tolerance) below FP32's at that seed, no layer's share of \
            zero weight-gradient entries exceeds FP32's by \(underflowWords), and it beats fp16 storage without scaling by \
            at least a quarter of the distance from FP32 down to the majority class
            """) { trial, seed in
            matchesFP32(trial, seed) && excessZeros(trial, seed).allSatisfy { $0 < underflowShare }
                && trial.score - seed[Name.fp16].score >= failureMargin(seed)
        }
    }

    static func matches() -> Claim {
        Claim(holds: "matches FP32", fails: "falls short of FP32", rule: """
            its test accuracy is at most \(tolerance) below FP32's at that seed and no layer's share of \
            zero weight-gradient entries exceeds FP32's by \(underflowWords)
            """) { trial, seed in
            matchesFP32(trial, seed) && excessZeros(trial, seed).allSatisfy { $0 < underflowShare }
        }
    }

    // MARK: Rendering

    static func conclude(_ a: Analysis) -> Conclusion {
        let pathology = a[Name.fp16], remedy = a[Name.scaled], bf16 = a[Name.bf16]
        let demonstrated = pathology.verdict.holds && remedy.verdict.holds
        let blocks: [ReportBlock] = [.text(setup(a)), a.table(columns), .text(a.rulesText), .text(scalerText(a))] + figures(a)
        var metrics: [String: JSON] = [
            "depth": .number(Double(depth)), "epochs": .number(Double(epochs(a.plan))), "loss_weight": .number(Double(lossWeight)),
            "fp16_demonstrated_underflow": .bool(pathology.verdict.holds), "loss_scaling_restores_fp32": .bool(remedy.verdict.holds),
            "bf16_matches_fp32": .bool(bf16.verdict.holds), "fp16_stopped_seeds": .number(Double(pathology.divergedSeeds)),
        ]
        for s in [pathology, remedy, bf16, a[Name.fp32]] {
            metrics["zero_share_by_layer." + s.name] = .array((1...depth).map { layer in .number(medianZeroShare(s, layer: layer)) })
        }
        return Conclusion(headline: headline(a), demonstrated: demonstrated, blocks: blocks, metrics: metrics)
    }

    /// The median over the seeds of a layer's zero share.
    static func medianZeroShare(_ s: ConfigurationSummary, layer: Int) -> Double { Range3(s.trials.map { zeroShare($0, layer: layer) }).median }

    /// The median over the seeds of each layer's excess zero share over FP32.
    static func medianExcess(_ a: Analysis, _ s: ConfigurationSummary) -> [Double] {
        (0..<depth).map { layer in Range3(zip(s.trials, a.seedTrials).map { excessZeros($0, $1)[layer] }).median }
    }

    static let columns = [
        Column(header: "zero weight-gradient entries, layers 1–\(depth) (median)") { s in
            s.trials.first?.values[Key.zeroShare(layer: 1)] == nil
                ? "—" : (1...depth).map { percent(medianZeroShare(s, layer: $0)) }.joined(separator: " / ")
        },
        Column(header: "non-finite gradients", value: nonFiniteCell),
    ]

    /// With the scaler, the steps it skipped (median); without, the seeds whose run a NaN or ∞ stopped.
    static func nonFiniteCell(_ s: ConfigurationSummary) -> String {
        guard s.trials.first?.values[Key.skippedSteps] != nil else { return "—" }
        if s.name == Name.scaled { return "\(fixed(Range3(s.trials.map { $0.values[Key.skippedSteps]! }).median, decimals: 0)) steps skipped (median)" }
        return "run stopped in \(s.divergedSeeds) of \(s.trials.count) seeds"
    }

    /// The median step (1-based) at which the runs that hit a non-finite gradient stopped.
    static func medianStop(_ s: ConfigurationSummary) -> Double { Range3(s.trials.compactMap(\.stoppedAtStep).map { Double($0 + 1) }).median }

    static func setup(_ a: Analysis) -> String {
        """
        A \(depth)-layer ReLU MLP (\(depth - 1) hidden layers of \(width), He initialization) on the digits (\(sizes(a.plan))), \
        batch 32, \(epochs(a.plan)) epochs, Adam at rate \(rate(adamRate)), at seeds \(a.plan.seeds.map(String.init).joined(separator: ", ")). \
        The loss is the cross-entropy times λ = \(lossWeightWords) ≈ \(sci(Double(lossWeight))), a stand-in for a loss whose gradients are \
        small — averaged over millions of tokens or pixels, or an auxiliary loss with a small weight; Adam's ε is scaled by λ \
        too, so that in exact arithmetic its steps are those of the unweighted loss and FP32 trains as usual. \
        "fp16 storage" rounds the input, every layer's output and every activation gradient to fp16 (a \
        `StorageRounding` layer after each layer: its backward rounds the gradient), and every weight gradient (a gradient \
        hook per parameter); the arithmetic, the master weights and Adam's state stay FP32, as in mixed-precision training. \
        fp16 rounds magnitudes below 2⁻²⁵ ≈ 3e-8 to zero: a gradient entry that small is lost. "fp16 storage + loss \
        scaling" multiplies the loss by the `LossScaler`'s scale (PyTorch's `GradScaler` defaults: 2¹⁶, doubled after 2000 \
        clean steps, halved and the step skipped on an infinite or NaN gradient) and divides the weight gradients by it in \
        FP32 before the step (Micikevicius et al., 2018, "Mixed Precision Training", ICLR). "bf16 storage" rounds to \
        bfloat16, which keeps FP32's exponent range with 8 bits of precision. The weights enter the forward pass in FP32 (the \
        fp16 copy of the weights real mixed precision uses is not emulated). A weight gradient's zero entries include those \
        FP32 has too (a ReLU silent for the whole batch); the rules compare with FP32 at the same seed. As in the \
        other experiments, the monitor stops a run without a scaler at its first NaN or infinite gradient; with the scaler \
        such a step is skipped and the scale halved.
        """
    }

    static func headline(_ a: Analysis) -> String {
        let fp32 = a[Name.fp32], fp16 = a[Name.fp16], scaled = a[Name.scaled], bf16 = a[Name.bf16]
        var text: String
        if fp16.verdict.holds {
            let excess = medianExcess(a, fp16)
            let worst = excess.indices.max { excess[$0] < excess[$1] }!
            let lost = excess.indices.filter { excess[$0] >= underflowShare }.map { "\($0 + 1)" }
            text = "Stored in fp16 without scaling, the small gradients underflow: layer\(lost.count == 1 ? "" : "s") \(list(lost)) "
                + "have at least \(underflowWords) more of their weight-gradient entries at zero than in FP32 (most: layer \(worst + 1), "
                + "\(percent(medianZeroShare(fp16, layer: worst + 1))) zero against \(percent(medianZeroShare(fp32, layer: worst + 1))) in FP32; medians), "
                + "and the test accuracy falls to \(percent(fp16.scoreRange.median)) from FP32's \(percent(fp32.scoreRange.median)) "
                + "(\(fp16.verdict.holding) of \(fp16.verdict.seeds) seeds)."
        if fp16.divergedSeeds > 0 {
            let steps = fp16.trials.map(\.stepLoss.count).max() ?? 0
            text += " Later, in \(fp16.divergedSeeds) of \(fp16.trials.count) seeds, a value overflows fp16 (past 65504) and a gradient "
                + "turns NaN (median step \(fixed(medianStop(fp16), decimals: 0)) of \(steps)), which stops the run."
        }
        } else {
            text = "fp16 storage without scaling does not fail consistently: \(fp16.verdict.describe(fp16.claim)) (test accuracy "
                + "\(percent(fp16.scoreRange.median)), FP32 \(percent(fp32.scoreRange.median)))."
        }
        text += " Dynamic loss scaling \(scaled.verdict.holds ? "restores FP32-level training" : "does not restore FP32 consistently") "
            + "(\(percent(scaled.scoreRange.median)); \(scaled.verdict.describe(scaled.claim)))"
        text += ", and bf16 storage without scaling \(bf16.verdict.holds ? "matches FP32" : "does not match FP32 consistently") "
            + "(\(percent(bf16.scoreRange.median)); \(bf16.verdict.describe(bf16.claim)))."
        return text
    }

    /// What the loss scaler did: its scale at the end and the steps it skipped.
    static func scalerText(_ a: Analysis) -> String {
        let scaled = a[Name.scaled]
        let finals = Range3(scaled.trials.map { $0.values[Key.finalScale] ?? .nan })
        let skipped = Range3(scaled.trials.map { $0.values[Key.skippedSteps] ?? .nan })
        let steps = scaled.trials.map(\.stepLoss.count).max() ?? 0
        let interval = LossScaler().growthInterval
        var text = """
            **The scaler.** Over \(steps) steps the loss scale ended at \(describe(finals) { grouped(Int($0)) }) and \
            \(describe(skipped) { fixed($0, decimals: 0) }) steps were skipped for an infinite or NaN gradient (medians over \
            the seeds, ranges in parentheses).
            """
        if skipped.max == 0 {
            text += " With gradients this small the initial scale overflows nothing"
            text += steps < interval ? ", and a run this short never reaches the \(grouped(interval)) clean steps after which it would double." : "."
            text += " The scale only has to lift the gradients above fp16's underflow threshold without lifting the largest past 65504."
        }
        return text
    }

    static func figures(_ a: Analysis) -> [ReportBlock] {
        let stored = [a[Name.fp32], a[Name.fp16], a[Name.scaled], a[Name.bf16]]
        let zeroPlot = LinePlot(
            title: "Weight-gradient entries that are exactly zero, per layer", xLabel: "layer (1 = input side)", yLabel: "share zero (mean over training)",
            series: stored.map { s in
                medianSeries(s.name, s.trials.map { t in (1...depth).map { zeroShare(t, layer: $0) } }, pastEnd: .nan, dashed: s.role == .control)
            }, yLimits: 0...1)
        let accuracyPlot = LinePlot(
            title: "Test accuracy after each epoch", xLabel: "epoch", yLabel: "test accuracy",
            series: stored.map { s in medianSeries(s.name, s.trials.map(\.test), pastEnd: .nan, dashed: s.role == .control) },
            reference: (a[ControlName.majorityClass].scoreRange.median, "majority class"))
        let fp16 = a[Name.fp16], scaled = a[Name.scaled], fp32 = a[Name.fp32]
        let excess = medianExcess(a, fp16), scaledExcess = medianExcess(a, scaled)
        let zeroCaption = "The share of each layer's weight-gradient entries that are zero as stored (median over \(a.plan.seeds.count) seeds, "
            + "band: range): fp16 without scaling differs from FP32 by \(points(excess.min()!)) to \(points(excess.max()!)) "
            + "per layer, fp16 with loss scaling by at most \(points(scaledExcess.max()!))."
        return [
            .figure(Figure(fileName: "loss-scaling-zeros.svg", caption: zeroCaption, svg: zeroPlot.svg)),
            .figure(Figure(
                fileName: "loss-scaling-accuracy.svg",
                caption: "Test accuracy after each epoch (median over the seeds, band: range): FP32 \(percent(fp32.scoreRange.median)), "
                    + "fp16 \(percent(fp16.scoreRange.median)), fp16 with loss scaling \(percent(scaled.scoreRange.median)), "
                    + "bf16 \(percent(a[Name.bf16].scoreRange.median)) at the validation-selected epoch.",
                svg: accuracyPlot.svg)),
        ]
    }
}
