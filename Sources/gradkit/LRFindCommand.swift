// gradkit lr-find — the learning-rate range test. SPDX-License-Identifier: MIT
import GradKit
import GradKitLab

let lrFindUsage = """
    usage: gradkit lr-find [data, model and optimizer options of gradkit train] [options]

    The learning-rate range test (Smith, 2017): trains for --steps steps while the learning rate
    grows exponentially from --start to --end, stops when the smoothed loss passes 4x its
    minimum, prints the curve and suggests the rate where the loss falls fastest. The model and
    optimizer are put back afterwards.

      --start X      first learning rate (default 1e-6)
      --end X        last learning rate (default 10)
      --steps N      steps (default 100)
      --output FILE  the loss-against-learning-rate plot (default lr-find.svg)
      --json         end with one JSON line: suggestion, minimum_loss_rate, steps, stopped_early

    Example: gradkit lr-find --dataset digits --optimizer sgd --momentum 0.9
    """

/// Runs `gradkit lr-find`.
func lrFind(_ commandLine: [String]) throws {
    var start: Float = 1e-6, end: Float = 10, steps = 100, output = "lr-find.svg"
    let configuration = try TrainConfiguration(commandLine) { a in
        start = try a.float("start", atLeast: Float.leastNormalMagnitude) ?? start
        end = try a.float("end", atLeast: Float.leastNormalMagnitude) ?? end
        steps = try a.int("steps", range: 3...1_000_000) ?? steps
        output = a.string("output") ?? output
    }
    guard start < end else { throw UsageError("--start must be below --end, got \(start) and \(end)") }
    if let threads = configuration.threads { Kernels.threadCount = threads }
    let (trainSet, _, _) = try configuration.loadData()
    let model = configuration.makeModel(try configuration.widths(for: trainSet))
    let optimizer = configuration.makeOptimizer(model.parameters)
    let finder = LearningRateFinder(start: start, end: end, steps: steps, batchSize: configuration.batchSize, seed: configuration.seed)
    let result = try finder.run(
        model: model, optimizer: optimizer, loss: configuration.regression ? .meanSquaredError : .softmaxCrossEntropy, data: trainSet)
    if !configuration.quiet {
        print("learning rate   loss      smoothed")
        let every = Swift.max(1, result.learningRates.count / 25)
        for i in stride(from: 0, to: result.learningRates.count, by: every) {
            print("\(pad(scientific(result.learningRates[i]), 15)) \(pad(format(result.losses[i], digits: 4), 9)) \(format(result.smoothedLosses[i], digits: 4))")
        }
        if let reason = result.stoppedEarly { print("stopped: \(reason)") }
        print(result.suggestion.map { "suggested learning rate: \(scientific($0)) (where the loss falls fastest); minimum at \(scientific(result.minimumLossRate))" }
            ?? "no suggestion: the loss never fell; try a wider range")
    }
    let plot = LinePlot(
        title: "Learning-rate range test", xLabel: "learning rate", yLabel: "training loss",
        series: [
            Series("loss", points: zip(result.learningRates, result.losses).map { (Double($0), Double($1)) }, dashed: true),
            Series("smoothed loss", points: zip(result.learningRates, result.smoothedLosses).map { (Double($0), Double($1)) }),
        ] + (result.suggestion.map { s in
            let low = Double(result.smoothedLosses.min() ?? 0), high = Double(result.smoothedLosses.max() ?? 1)
            return [Series("suggested \(scientific(s))", points: [(Double(s), low), (Double(s), high)])]
        } ?? []),
        logY: false, logX: true,
        // Up to 1.5x the starting loss: the final spike would flatten the rest.
        yLimits: 0...(1.5 * Double(result.smoothedLosses.first ?? 1)))
    try writeText(plot.svg, to: output)
    if !configuration.quiet { print("wrote \(output)") }
    if configuration.json {
        print("{\"suggestion\":\(result.suggestion.map { jsonNumber(Double($0)) } ?? "null"),\"minimum_loss_rate\":\(jsonNumber(Double(result.minimumLossRate))),\"steps\":\(result.learningRates.count),\"stopped_early\":\(result.stoppedEarly == nil ? "false" : "true")}")
    }
}

private func pad(_ text: String, _ width: Int) -> String { text + String(repeating: " ", count: Swift.max(0, width - text.count)) }
