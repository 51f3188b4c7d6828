// GradKitLab — long memory: how far back the Elman RNN, the LSTM and the GRU carry the adding problem's values and their gradients. SPDX-License-Identifier: MIT
#if canImport(Glibc)
import Glibc
#endif
import GradKit

/// Le et al.'s (2015) adding problem at growing sequence lengths for four
/// recurrent networks of 32 units trained the same way (Adam, a short
/// budget): the Elman RNN with tanh, the Elman RNN with ReLU and global-norm
/// clipping, the LSTM and the GRU. Each is judged at each length against
/// predicting the mean; the figures show the gradient reaching each time step,
/// the vanishing-over-time picture of Bengio et al. (1994) and Hochreiter and
/// Schmidhuber (1997), and the test error against the length.
enum LongMemory {
    static let hidden = 32
    static let learningRate: Float = 0.01
    /// Global-norm clipping of the ReLU RNN (Pascanu et al. 2013).
    static let clipLimit: Float = 1
    /// The claim's bar: a tenth of the mean predictor's error. Remembering only
    /// one of the two values leaves 1/12 ≈ 0.083, half of the mean's 1/6.
    static let learnedFraction = 0.1
    /// The sequences of the gradient-per-step measurement.
    static let measuredBatch = 100

    static func lengths(_ plan: Plan) -> [Int] { plan.quick ? [25, 50] : [25, 50, 100] }
    static func epochs(_ plan: Plan) -> Int { plan.epochs(full: 6, quick: 4) }

    static let experiment = Experiment(
        name: "long-memory", title: "Long memory: the adding problem at growing lengths", metric: .testMeanSquaredError,
        configurations: configurations, conclude: conclude)

    /// The recurrent networks compared.
    enum Model: String, CaseIterable, Sendable {
        case tanh = "tanh RNN"
        case relu = "ReLU RNN + clipping"
        case lstm = "LSTM"
        case gru = "GRU"

        var role: Role {
            switch self {
            case .tanh: .pathology
            case .relu: .alternative
            case .lstm, .gru: .remedy
            }
        }
    }

    static func name(_ model: Model, _ length: Int) -> String { "\(model.rawValue), \(length) steps" }
    static func meanName(_ length: Int) -> String { "\(ControlName.mean), \(length) steps" }

    // MARK: Running

    static func configurations(_ plan: Plan) -> [Configuration] {
        var result: [Configuration] = []
        for length in lengths(plan) {
            for model in Model.allCases {
                result.append(Configuration(name(model, length), role: model.role, learningRates: [learningRate], claim: learns(length)) { context in
                    trial(model, length, context)
                })
            }
            var mean = Configuration.meanPredictor { ExplodingRNN.data($0, length: length) }
            mean.name = meanName(length)
            result.append(mean)
        }
        return result
    }

    /// A network and a way to run its recurrent layer returning every step's state.
    struct Built {
        var model: Sequential
        var readout: Linear
        /// `[batch, time, hidden]`: every step's hidden state.
        var states: (Tensor) -> Tensor
    }

    static func build(_ model: Model, seed: UInt64) -> Built {
        withManualSeed(seed) {
            let readout = Linear(inputSize: hidden, outputSize: 1)
            func built<R: Layer>(_ layer: R, _ sequences: @escaping (Bool) -> Void) -> Built {
                sequences(false)
                return Built(model: Sequential([layer, readout]), readout: readout) { input in
                    sequences(true)
                    defer { sequences(false) }
                    return layer(input)
                }
            }
            switch model {
            case .tanh, .relu:
                let rnn = RNN(inputSize: 2, hiddenSize: hidden, nonlinearity: model == .tanh ? .tanh : .relu)
                return built(rnn) { rnn.returnsSequences = $0 }
            case .lstm:
                let lstm = LSTM(inputSize: 2, hiddenSize: hidden)
                return built(lstm) { lstm.returnsSequences = $0 }
            case .gru:
                let gru = GRU(inputSize: 2, hiddenSize: hidden)
                return built(gru) { gru.returnsSequences = $0 }
            }
        }
    }

    static func trial(_ model: Model, _ length: Int, _ context: TrialContext) -> Trial {
        let data = ExplodingRNN.data(context.seed, length: length)
        let network = build(model, seed: context.seed.initialization)
        let initial = stepGradients(network, data.test)
        let optimizer = Adam(network.model.parameters, learningRate: context.learningRate)
        var trial = train(network.model, optimizer: optimizer, TrainingPlan(
            data: data, metric: .testMeanSquaredError, loss: .meanSquaredError, epochs: epochs(context.plan),
            clipping: model == .relu ? .norm(clipLimit) : nil, seed: context.seed, sampleEvery: 1000))
        trial.curves["initial"] = initial
        trial.curves["trained"] = stepGradients(network, data.test)
        return trial
    }

    /// ‖∂L/∂x_t‖ for every step t, in order: the MSE of the first
    /// ``measuredBatch`` test sequences back-propagated through the whole
    /// recurrence to the input at each step (the input is a ``Parameter`` for
    /// the measurement). The input weights map the gradient at step t's
    /// pre-activations to it, so it falls and rises with the gradient reaching
    /// step t. Every parameter's gradient is left as it was.
    static func stepGradients(_ network: Built, _ data: Dataset) -> [Double] {
        let parameters = network.model.parameters
        let saved = parameters.map(\.gradient)
        defer { for (p, g) in zip(parameters, saved) { p.gradient = g } }
        let count = Swift.min(measuredBatch, data.count)
        let input = Parameter(data.features.slicing(0..<count, alongAxis: 0), name: "input")
        let target = data.targetValues!.slicing(0..<count, alongAxis: 0)
        let states = network.states(input.value)
        let steps = states.shape[1], width = input.value.shape[2]
        let last = states.slicing((steps - 1)..<steps, alongAxis: 1).reshaped(to: [count, hidden])
        meanSquaredError(predicted: network.readout(last), expected: target).backward()
        guard let gradient = input.gradient else { return Array(repeating: 0, count: steps) }
        let g = gradient.scalars
        return (0..<steps).map { t in
            var total = 0.0
            for b in 0..<count {
                for j in 0..<width { total += Double(g[(b * steps + t) * width + j]) * Double(g[(b * steps + t) * width + j]) }
            }
            return total.squareRoot()
        }
    }

    // MARK: Analysis

    /// Whether a test error counts as having learned the task, against the mean predictor's at the same seed and length.
    static func learned(_ score: Double, mean: Double) -> Bool { score.isFinite && score <= learnedFraction * mean }

    /// The claim of a network trained on sequences of `length` steps.
    static func learns(_ length: Int) -> Claim {
        Claim(holds: "learns", fails: "does not learn", rule: """
            its test MSE is at most a tenth of predicting the mean's on the same sequences (about 0.017; remembering only \
            one of the two values leaves 1/12 ≈ 0.083)
            """) { trial, seed in learned(trial.score, mean: seed[meanName(length)].score) }
    }

    /// The longest length at which `model`'s verdict holds with every shorter length's, nil when none.
    static func longestLearned(_ a: Analysis, _ model: Model) -> Int? {
        var longest: Int?
        for length in lengths(a.plan) {
            guard a[name(model, length)].verdict.holds else { break }
            longest = length
        }
        return longest
    }

    // MARK: Rendering

    static func conclude(_ a: Analysis) -> Conclusion {
        let lengths = self.lengths(a.plan)
        let reach = Model.allCases.map { model in (model, longestLearned(a, model)) }
        let parts = reach.map { model, longest in
            longest.map { "the \(model.rawValue) up to \($0) steps" } ?? "the \(model.rawValue) at none of them"
        }
        let longest = lengths.last!
        let decay = Model.allCases.map { model in (model, vanishing(a[name(model, longest)], "initial")) }
        var headline = "Learning the adding problem (test MSE at most a tenth of the mean's in at least 80% of the seeds, \(epochs(a.plan)) "
        headline += "epochs of Adam) at lengths \(lengths.map(String.init).joined(separator: ", ")): \(parts.joined(separator: "; "))."
        headline += " At initialization the gradient reaching the first of \(longest) steps (‖∂L/∂x₁‖ / ‖∂L/∂x_T‖) is "
        headline += decay.map { "\(sci($0.1)) for the \($0.0.rawValue)" }.joined(separator: ", ") + " (medians)."
        let learnedSomewhere = reach.contains { $0.1 != nil }
        let tanhVanishes = decay.first { $0.0 == .tanh }.map { $0.1 < 1e-3 } ?? false
        return Conclusion(
            headline: headline, demonstrated: learnedSomewhere && tanhVanishes,
            blocks: [.text(setup(a)), a.table(columns), .text(a.rulesText)] + figures(a),
            metrics: Dictionary(uniqueKeysWithValues: reach.map { model, longest in
                ("longest_length_learned_" + model.key, longest.map { JSON.number(Double($0)) } ?? .null)
            }) .merging(["epochs": .number(Double(epochs(a.plan))), "hidden_units": .number(Double(hidden))]) { $1 })
    }

    /// The median over the seeds of ‖∂L/∂h_1‖ / ‖∂L/∂h_T‖ from the trials' curve `key`.
    static func vanishing(_ s: ConfigurationSummary, _ key: String) -> Double {
        Range3(s.trials.map { trial in
            guard let curve = trial.curves[key], let first = curve.first, let last = curve.last, last > 0 else { return .nan }
            return first / last
        }).median
    }

    static let columns = [
        Column(header: "‖∂L/∂x₁‖ / ‖∂L/∂x_T‖ at init (median)") { s in
            s.trials[0].curves["initial"] == nil ? "—" : sci(vanishing(s, "initial"))
        },
        Column(header: "after training (median)") { s in s.trials[0].curves["trained"] == nil ? "—" : sci(vanishing(s, "trained")) },
    ]

    static func setup(_ a: Analysis) -> String {
        """
        The adding problem as Le, Jaitly and Hinton (2015) set it (the generator of the exploding-RNN experiment): a value \
        in [0, 1) and a marker per step, one marked step in each half, the target the sum of the two marked values; \
        predicting the mean scores 1/6. Per seed and length 1,600 sequences to fit, 400 to validate and 500 to test. Each \
        network has \(hidden) units, PyTorch's initialization and a linear read-out of the last state, and is trained by \
        Adam at rate \(rate(learningRate)), batch 32, for \(epochs(a.plan)) epochs; the ReLU RNN clips the global gradient norm \
        to \(fixed(Double(clipLimit), decimals: 0)) (Pascanu et al. 2013), as it explodes without. The gradient reaching step t is \
        measured as ‖∂L/∂x_t‖, the norm over the first \(measuredBatch) test sequences of the loss's gradient with respect \
        to the input at step t, back-propagated through every later step (the gradient with respect to the states tensor \
        the layer returns holds only the loss's direct path, not the path through the recurrence); the input weights map \
        the gradient at step t's pre-activations to it. Measured at initialization and after training. The question \
        is the long-range dependency of Bengio, Simard and Frasconi (1994) and Hochreiter and Schmidhuber (1997): a \
        marked value early in the sequence must reach the loss through every later step.
        """
    }

    static func figures(_ a: Analysis) -> [ReportBlock] {
        let lengths = self.lengths(a.plan), longest = lengths.last!
        var blocks: [ReportBlock] = []
        for key in ["initial", "trained"] {
            let series = Model.allCases.map { model -> Series in
                let s = a[name(model, longest)]
                let curves = s.trials.map { trial in (trial.curves[key] ?? []).map { $0 > 0 ? $0 / (trial.curves[key]!.last!) : .nan } }
                return medianSeries(model.rawValue, curves, pastEnd: .nan)
            }
            let plot = LinePlot(
                title: "‖∂L/∂x_t‖ over the last step's, \(key == "initial" ? "at initialization" : "after training"), \(longest) steps",
                xLabel: "time step t", yLabel: "‖∂L/∂x_t‖ / ‖∂L/∂x_T‖", series: series, logY: true, yLimits: 1e-30...10)
            let ratios = Model.allCases.map { "\($0.rawValue) \(sci(vanishing(a[name($0, longest)], key)))" }
            blocks.append(.figure(Figure(
                fileName: "long-memory-gradient-\(key).svg",
                caption: "The gradient reaching each of \(longest) steps, relative to the last step's (median over the seeds, band: "
                    + "range), \(key == "initial" ? "at initialization" : "after training"); at the first step: \(ratios.joined(separator: ", ")).",
                svg: plot.svg)))
        }
        let errorPlot = LinePlot(
            title: "Test MSE against sequence length, adding problem", xLabel: "sequence length", yLabel: "test MSE",
            series: Model.allCases.map { model in
                var points: [(x: Double, y: Double)] = [], band: [(x: Double, low: Double, high: Double)] = []
                for length in lengths {
                    let range = a[name(model, length)].scoreRange
                    points.append((Double(length), range.median))
                    band.append((Double(length), range.min, range.max))
                }
                return Series(model.rawValue, points: points, band: band)
            },
            logY: true, logX: true, reference: (a[meanName(longest)].scoreRange.median, "predict the mean"))
        let reach = Model.allCases.map { model in "\(model.rawValue) \(longestLearned(a, model).map { "\($0)" } ?? "none")" }
        blocks.append(.figure(Figure(
            fileName: "long-memory-error.svg",
            caption: "Test MSE against sequence length (median over the seeds, band: range); the dashed line is predicting the mean. "
                + "Longest length learned in at least 80% of the seeds: \(reach.joined(separator: ", ")).",
            svg: errorPlot.svg)))
        return blocks
    }
}

extension LongMemory.Model {
    /// The model's key in results.json's metrics.
    var key: String {
        switch self {
        case .tanh: "tanh_rnn"
        case .relu: "relu_rnn_clipped"
        case .lstm: "lstm"
        case .gru: "gru"
        }
    }
}
