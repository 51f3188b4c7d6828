// gradkit diagnose — the gradient diagnosis of a model before its first step. SPDX-License-Identifier: MIT
import GradKit

/// Builds the model and data `gradkit train` would from `configuration` and diagnoses them.
/// - Throws: ``UsageError`` when the widths do not fit the data, errors from
///   the data's files, and the library's when the model does not fit.
func diagnosis(_ configuration: TrainConfiguration) throws -> Diagnosis {
    if let threads = configuration.outputs.threads { Kernels.threadCount = threads }
    var files = RunFiles()
    for path in configuration.data.inputFiles { files.input(configuration.data.source.optionName, path) }
    try files.check()
    let train = try configuration.data.load(seed: configuration.plan.seed).train
    let batchSize = configuration.plan.batchSize
    if configuration.model.batchNorm, train.count < 2 {
        throw CommandError("--batch-norm needs 2 or more training examples, the training part has \(train.count)")
    }
    let widths = try configuration.model.widths(for: train, source: configuration.data.source, batchSize: batchSize)
    let model = configuration.model.makeModel(widths, seed: configuration.plan.seed)
    return try diagnose(model: model, data: train, loss: configuration.loss, batchSize: batchSize, seed: configuration.plan.seed)
}

/// Runs `gradkit diagnose`.
func diagnoseCommand(_ arguments: ParsedArguments) throws {
    let configuration = try TrainConfiguration(arguments)
    let result = try diagnosis(configuration)
    if !configuration.outputs.quiet { print(result) }
    if configuration.outputs.json { print(json(result).text) }
}

/// The diagnosis as one JSON object (numbers that are not finite become null).
func json(_ diagnosis: Diagnosis) -> JSON {
    func number(_ value: Double?) -> JSON { value.flatMap { $0.isFinite ? JSON.number($0) : nil } ?? .null }
    let layers: [JSON] = diagnosis.layers.map { layer in
        .object([
            "index": .number(Double(layer.index)), "path": .string(layer.path), "activation": layer.activation.map(JSON.string) ?? .null,
            "weight_variance": number(layer.weightVariance), "bias_variance": number(layer.biasVariance),
            "predicted_ratio": number(layer.predictedRatio), "measured_ratio": number(layer.measuredRatio),
            "predicted_gradient_norm": number(layer.predictedGradientNorm), "measured_gradient_norm": number(layer.measuredGradientNorm),
            "verdict": .string(layer.verdict.rawValue), "predicted_verdict": .string(layer.predictedVerdict.rawValue),
        ])
    }
    let cure: JSON = diagnosis.recommendedCure.map { effect in
        .object([
            "cure": .string(effect.cure.description), "options": .string(effect.cure.commandLineOptions),
            "predicted_first_to_last_ratio": number(effect.predictedFirstToLastRatio), "predicted_verdict": .string(effect.predictedVerdict.rawValue),
        ])
    } ?? .null
    return .object([
        "verdict": .string(diagnosis.verdict.rawValue), "predicted_first_to_last_ratio": number(diagnosis.predictedFirstToLastRatio),
        "measured_first_to_last_ratio": number(diagnosis.measuredFirstToLastRatio), "loss": number(Double(diagnosis.loss)),
        "batch_size": .number(Double(diagnosis.batchSize)), "cure": cure, "layers": .array(layers),
    ])
}
