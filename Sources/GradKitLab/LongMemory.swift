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
    static let measuredBatch = 50

    static func lengths(_ plan: Plan) -> [Int] { plan.quick ? [25, 50] : [25, 50, 100, 200] }
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

    /// A network and a way to run its recurrent layer from a given state.
    struct Built {
        var model: Sequential
        var readout: Linear
        /// Runs the recurrent layer over `[batch, time, 2]` from a state (nil:
        /// zeros) and returns the state after the last step: `[h]`, or `[h, c]`
        /// for the LSTM, each `[batch, hidden]`.
        var run: (_ input: Tensor, _ state: [Tensor]?) -> [Tensor]
    }

    /// Gers, Schmidhuber and Cummins's (2000) forget-gate bias, Keras's
    /// default (`unit_forget_bias`): the LSTM starts out keeping its cell.
    static let forgetGateBias: Float = 1

    static func build(_ model: Model, seed: UInt64) -> Built {
        withManualSeed(seed) {
            let readout = Linear(inputSize: hidden, outputSize: 1)
            switch model {
            case .tanh, .relu:
                let rnn = RNN(inputSize: 2, hiddenSize: hidden, nonlinearity: model == .tanh ? .tanh : .relu)
                rnn.returnsSequences = false
                return Built(model: Sequential([rnn, readout]), readout: readout) { input, state in
                    [rnn.run(input, initialState: state?[0]).finalState]
                }
            case .lstm:
                let lstm = LSTM(inputSize: 2, hiddenSize: hidden)
                lstm.returnsSequences = false
                setForgetGateBias(lstm)
                return Built(model: Sequential([lstm, readout]), readout: readout) { input, state in
                    let final = lstm.run(input, initialState: state.map { LSTM.State(hidden: $0[0], cell: $0[1]) }).finalState
                    return [final.hidden, final.cell]
                }
            case .gru:
                let gru = GRU(inputSize: 2, hiddenSize: hidden)
                gru.returnsSequences = false
                return Built(model: Sequential([gru, readout]), readout: readout) { input, state in
                    [gru.run(input, initialState: state?[0]).finalState]
                }
            }
        }
    }

    /// The forget gate's total bias (b_ih + b_hh, rows hidden ..< 2·hidden in
    /// PyTorch's gate order i, f, g, o) set to ``forgetGateBias``.
    static func setForgetGateBias(_ lstm: LSTM) {
        for (bias, value) in [(lstm.biasInputHidden, forgetGateBias), (lstm.biasHiddenHidden, 0)] {
            guard let bias else { continue }
            var scalars = bias.value.scalars
            for j in hidden..<(2 * hidden) { scalars[j] = value }
            bias.value = Tensor(shape: bias.value.shape, scalars: scalars)
        }
    }

    static func trial(_ model: Model, _ length: Int, _ context: TrialContext) -> Trial {
        let data = ExplodingRNN.data(context.seed, length: length)
        let network = build(model, seed: context.seed.initialization)
        let initial = stateGradients(network, data.test)
        let optimizer = Adam(network.model.parameters, learningRate: context.learningRate)
        var trial = train(network.model, optimizer: optimizer, TrainingPlan(
            data: data, metric: .testMeanSquaredError, loss: .meanSquaredError, epochs: epochs(context.plan),
            clipping: model == .relu ? .norm(clipLimit) : nil, seed: context.seed, sampleEvery: 1000))
        trial.curves["initial"] = initial
        trial.curves["trained"] = stateGradients(network, data.test)
        trial.curves["steps"] = measuredSteps(length).map(Double.init)
        return trial
    }

    /// The steps t (1 ... T) at which the gradient reaching the state is
    /// measured: about ``measuredPoints`` of them, evenly spaced, both ends included.
    static func measuredSteps(_ steps: Int) -> [Int] {
        let stride = Swift.max(1, steps / measuredPoints)
        var result = Array(Swift.stride(from: 1, to: steps, by: stride))
        result.append(steps)
        return result
    }
    static let measuredPoints = 12

    /// ‖∂L/∂h_t‖ at each of ``measuredSteps(_:)``: the MSE of the first
    /// ``measuredBatch`` test sequences, with h_t the state after step t (h and
    /// c together for the LSTM), back-propagated from the loss through every
    /// later step. Measured by running the first t steps without gradients,
    /// making the state a ``Parameter`` and running the remaining steps from
    /// it: the state's gradient is the whole gradient reaching step t, through
    /// the recurrence as well as directly. Every parameter's gradient is left as it was.
    static func stateGradients(_ network: Built, _ data: Dataset) -> [Double] {
        let parameters = network.model.parameters
        let saved = parameters.map(\.gradient)
        defer { for (p, g) in zip(parameters, saved) { p.gradient = g } }
        let count = Swift.min(measuredBatch, data.count)
        let input = data.features.slicing(0..<count, alongAxis: 0)
        let target = data.targetValues!.slicing(0..<count, alongAxis: 0)
        let steps = input.shape[1]
        var state: [Tensor]?, done = 0
        return measuredSteps(steps).map { t in
            state = withoutGradients { network.run(input.slicing(done..<t, alongAxis: 1), state) }
            done = t
            let leaves = state!.map { Parameter($0, name: "state") }
            let last = t < steps ? network.run(input.slicing(t..<steps, alongAxis: 1), leaves.map(\.value))[0] : leaves[0].value
            meanSquaredError(predicted: network.readout(last), expected: target).backward()
            return leaves.reduce(0.0) { total, leaf in
                total + (leaf.gradient?.scalars.reduce(0.0) { $0 + Double($1) * Double($1) } ?? 0)
            }.squareRoot()
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
        headline += " At initialization the gradient reaching the first of \(longest) steps (‖∂L/∂h₁‖ / ‖∂L/∂h_T‖) is "
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
        Column(header: "‖∂L/∂h₁‖ / ‖∂L/∂h_T‖ at init (median)") { s in
            s.trials[0].curves["initial"] == nil ? "—" : sci(vanishing(s, "initial"))
        },
        Column(header: "after training (median)") { s in s.trials[0].curves["trained"] == nil ? "—" : sci(vanishing(s, "trained")) },
    ]

    static func setup(_ a: Analysis) -> String {
        """
        The adding problem as Le, Jaitly and Hinton (2015) set it (the generator of the exploding-RNN experiment): a value \
        in [0, 1) and a marker per step, one marked step in each half, the target the sum of the two marked values; \
        predicting the mean scores 1/6. Per seed and length 1,600 sequences to fit, 400 to validate and 500 to test. Each \
        network has \(hidden) units, PyTorch's initialization (the LSTM's forget gate biased to \(fixed(Double(forgetGateBias), decimals: 0)), \
        Keras's default after Gers, Schmidhuber and Cummins 2000, so that it starts out keeping its cell) and a linear \
        read-out of the last state, and is trained by Adam at rate \(rate(learningRate)), batch 32, for \(epochs(a.plan)) epochs; \
        the ReLU RNN clips the global gradient norm to \(fixed(Double(clipLimit), decimals: 0)) (Pascanu et al. 2013), as it \
        explodes without. The gradient reaching step t is measured as ‖∂L/∂h_t‖, the norm over the first \(measuredBatch) \
        test sequences of the loss's gradient with respect to the state after step t (h and c together for the LSTM), \
        through every later step: the first t steps run without gradients, the rest from that state as a parameter. \
        Measured at \(measuredPoints) evenly spaced steps, at initialization and after training. The question \
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
                let steps = measuredSteps(longest)
                return medianSeries(model.rawValue, curves, x: { Double(steps[$0]) }, pastEnd: .nan)
            }
            let plot = LinePlot(
                title: "‖∂L/∂h_t‖ over the last step's, \(key == "initial" ? "at initialization" : "after training"), \(longest) steps",
                xLabel: "time step t", yLabel: "‖∂L/∂h_t‖ / ‖∂L/∂h_T‖", series: series, logY: true, yLimits: 1e-30...10)
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
