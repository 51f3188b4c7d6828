// gradkit lr-find — the learning-rate range test. SPDX-License-Identifier: MIT
import GradKit

/// `lr-find`'s own options.
struct LearningRateFinderOptions {
    /// The rates `--start` and `--end` accept: above 0 (the range is
    /// geometric) and up to 10^6, beyond which every model diverges at once.
    static let rates = ValueRange(lower: 0, includesLower: false, upper: 1e6, includesUpper: true)

    var start: Float = 1e-6
    var end: Float = 10
    var steps = 100
    var output = "lr-find.svg"

    init(_ a: ParsedArguments, learningRate: HyperparameterSpecification) throws(UsageError) {
        start = a.number(.start).map(Float.init) ?? start
        end = a.number(.end).map(Float.init) ?? end
        steps = a.integer(.steps) ?? steps
        output = a.text(.plotOutput) ?? output
        guard start < end else { throw UsageError("--start must be below --end, got \(shortNumber(start)) and \(shortNumber(end))") }
        for (option, rate) in [(Option.start, start), (.end, end)] where !learningRate.accepts(rate) {
            throw UsageError("\(option.flagName) must be a learning rate in \(learningRate.rangeDescription), got \(shortNumber(rate))")
        }
    }
}

/// Runs `gradkit lr-find`.
func lrFindCommand(_ arguments: ParsedArguments) throws {
    let configuration = try TrainConfiguration(arguments)
    let options = try LearningRateFinderOptions(arguments, learningRate: configuration.optimizer.kind.specification(.learningRate)!)
    if let threads = configuration.outputs.threads { Kernels.threadCount = threads }
    var files = RunFiles()
    for path in configuration.data.inputFiles { files.input(configuration.data.source.optionName, path) }
    files.file(Option.plotOutput.flagName, options.output)
    try files.check()
    // The lock `train --checkpoint` takes: two runs never write one file at once.
    let lock = try lockOutput(options.output, option: Option.plotOutput.flagName)
    defer { lock.release() }
    var train = try configuration.data.load(seed: configuration.plan.seed).train
    let batchSize = configuration.plan.batchSize
    if configuration.model.batchNorm {
        guard train.count >= 2 else { throw CommandError("--batch-norm needs 2 or more training examples, the training part has \(train.count)") }
        // A last batch of one example cannot be batch-normalized: leave one example out, as PyTorch's drop_last would.
        if train.count % batchSize == 1 { train = train.subset(Array(0..<(train.count - 1))) }
    }
    let widths = try configuration.model.widths(for: train, source: configuration.data.source, batchSize: batchSize)
    let model = configuration.model.makeModel(widths, seed: configuration.plan.seed)
    let optimizer = configuration.optimizer.makeOptimizer(model.parameters)
    let finder = LearningRateFinder(start: options.start, end: options.end, steps: options.steps, batchSize: batchSize, seed: configuration.plan.seed)
    let result = try configuration.plan.withKernelSettings {
        try finder.run(model: model, optimizer: optimizer, loss: configuration.loss, data: train)
    }
    if !configuration.outputs.quiet { printCurve(result) }
    try writeText(plot(result).svg, to: options.output)
    if !configuration.outputs.quiet { print("wrote \(options.output)") }
    if configuration.outputs.json {
        let object: [String: JSON] = [
            "suggestion": result.suggestion.map { .number(Double($0)) } ?? .null, "minimum_loss_rate": .number(Double(result.minimumLossRate)),
            "steps": .number(Double(result.learningRates.count)), "stopped_early": .bool(result.stoppedEarly != nil),
        ]
        print(JSON.object(object).text)
    }
}

private func printCurve(_ result: LearningRateFinder.Result) {
    func pad(_ text: String, _ width: Int) -> String { text + String(repeating: " ", count: Swift.max(0, width - text.count)) }
    print("learning rate   loss      smoothed")
    let every = Swift.max(1, result.learningRates.count / 25)
    for i in stride(from: 0, to: result.learningRates.count, by: every) {
        print("\(pad(scientific(result.learningRates[i]), 15)) \(pad(fixed(result.losses[i]), 9)) \(fixed(result.smoothedLosses[i]))")
    }
    if let reason = result.stoppedEarly { print("stopped: \(reason)") }
    print(result.suggestion.map { "suggested learning rate: \(scientific($0)) (where the loss falls fastest); minimum at \(scientific(result.minimumLossRate))" }
        ?? "no suggestion: the loss never fell; try a wider range")
}

/// The loss and smoothed loss against the learning rate, with the suggestion marked.
private func plot(_ result: LearningRateFinder.Result) -> LinePlot {
    let suggestion = result.suggestion.map { rate in
        let low = Double(result.smoothedLosses.min() ?? 0), high = Double(result.smoothedLosses.max() ?? 1)
        return [Series("suggested \(scientific(rate))", points: [(Double(rate), low), (Double(rate), high)])]
    }
    return LinePlot(
        title: "Learning-rate range test", xLabel: "learning rate", yLabel: "training loss",
        series: [
            Series("loss", points: zip(result.learningRates, result.losses).map { (Double($0), Double($1)) }, dashed: true),
            Series("smoothed loss", points: zip(result.learningRates, result.smoothedLosses).map { (Double($0), Double($1)) }),
        ] + (suggestion ?? []),
        logY: false, logX: true,
        // Up to 1.5x the starting loss: the final spike would flatten the rest.
        yLimits: 0...(1.5 * Double(result.smoothedLosses.first ?? 1)))
}

/// Writes a text file atomically.
/// - Throws: ``CommandError`` naming the path.
func writeText(_ text: String, to path: String) throws(CommandError) {
    if case .failure(let error) = FileIO.writeAtomically(Array(text.utf8), to: path) {
        throw CommandError("\(path.shownInMessage): cannot write: \(error.message)")
    }
}
