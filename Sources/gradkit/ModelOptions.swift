// gradkit — the MLP a run trains, with its sizes bounded before anything is allocated. SPDX-License-Identifier: MIT
import GradKit

/// `--activation`.
enum ActivationChoice: String, CaseIterable {
    case relu, sigmoid, tanh, gelu
    case leakyRelu = "leaky-relu"
    case elu, softplus

    var activation: Activation {
        switch self {
        case .relu: .relu
        case .sigmoid: .sigmoid
        case .tanh: .tanh
        case .gelu: .gelu
        case .leakyRelu: .leakyRelu()
        case .elu: .elu()
        case .softplus: .softplus
        }
    }
}

/// `--init`.
enum InitializerChoice: String, CaseIterable {
    case pytorchDefault = "default"
    case xavierUniform = "xavier-uniform", xavierNormal = "xavier-normal", heUniform = "he-uniform", heNormal = "he-normal"
    case lecunNormal = "lecun-normal", orthogonal, zeros

    /// The initializer for weights before `activation` (nil: PyTorch's default).
    func initializer(for activation: Activation) -> Initializer? {
        let nonlinearity = activation.nonlinearity, gain = nonlinearity.gain
        return switch self {
        case .pytorchDefault: nil
        case .xavierUniform: .xavierUniform(gain: gain)
        case .xavierNormal: .xavierNormal(gain: gain)
        case .heUniform: .heUniform(nonlinearity: nonlinearity)
        case .heNormal: .heNormal(nonlinearity: nonlinearity)
        case .lecunNormal: .lecunNormal
        case .orthogonal: .orthogonal(gain: gain)
        case .zeros: .zeros
        }
    }
}

/// The model options, checked together.
struct ModelOptions {
    /// The widest layer `--layers` or the data may ask for.
    static let maximumWidth = 1_000_000
    /// At most this many widths (999 hidden layers).
    static let maximumWidthCount = 1_001
    /// Parameters in all (Linear weights and biases, BatchNorm scales and shifts).
    static let maximumParameterCount = 500_000_000
    /// Values one batch's activations may hold (batch size × the sum of the widths).
    static let maximumActivationCount = 500_000_000
    /// The memory estimate's bytes per parameter: the Float weight, its
    /// gradient and two optimizer slots (Adam's moments; SGD with momentum,
    /// RMSprop and AdaGrad keep fewer, AMSGrad and centered RMSprop one more).
    static let bytesPerParameter = 16
    /// The estimate's bytes per activation value: the layer's output and
    /// the activation's, each with its gradient (Float).
    static let bytesPerActivation = 16

    var layers: [Int]?
    var activation = ActivationChoice.relu
    var initializer = InitializerChoice.pytorchDefault
    var batchNorm = false
    var dropout: Float = 0
    var residual = false

    init(_ a: ParsedArguments) throws(UsageError) {
        layers = a.integers(.layers)
        activation = a.text(.activation).flatMap(ActivationChoice.init(rawValue:)) ?? .relu
        initializer = a.text(.initializer).flatMap(InitializerChoice.init(rawValue:)) ?? .pytorchDefault
        batchNorm = a.flag(.batchNorm)
        dropout = Float(a.number(.dropout) ?? 0)
        residual = a.flag(.residual)
        if batchNorm, let size = a.integer(.batchSize), size < 2 {
            throw UsageError("--batch-norm needs --batch-size 2 or more (BatchNorm normalizes each feature over the batch), got \(size)")
        }
        if let layers, residual, !ModelOptions.hasResidualBlock(layers) {
            throw UsageError("--residual wraps hidden layers whose input and output widths agree; give two equal hidden widths, e.g. --layers \(layers[0]),128,128,\(layers[layers.count - 1])")
        }
    }

    private static func hasResidualBlock(_ widths: [Int]) -> Bool {
        widths.count >= 4 && (1..<(widths.count - 2)).contains { widths[$0] == widths[$0 + 1] }
    }

    /// The widths for `data`: `--layers` checked against it, or one hidden layer
    /// per the data set's default (two equal ones with `--residual`, a block to wrap).
    /// - Throws: ``UsageError`` when the widths do not fit the data or exceed the size limits.
    func widths(for data: Dataset, source: DataSource, batchSize: Int) throws(UsageError) -> [Int] {
        let outputs = data.classCount ?? (data.targetValues?.shape.last ?? 1)
        var widths: [Int]
        if let layers {
            guard layers[0] == data.featureCount else {
                throw UsageError("--layers starts with \(layers[0]) inputs but the data has \(data.featureCount) features")
            }
            guard layers[layers.count - 1] == outputs else {
                throw UsageError("--layers ends with \(layers[layers.count - 1]) outputs but the data needs \(outputs)")
            }
            widths = layers
        } else {
            var hidden = if case .builtIn(let name) = source { name.hiddenWidths } else { [32] }
            if residual, hidden.count == 1 { hidden.append(hidden[0]) }
            widths = [data.featureCount] + hidden + [outputs]
        }
        try ModelOptions.checkSizes(widths, batchNorm: batchNorm, batchSize: Swift.min(batchSize, data.count))
        return widths
    }

    /// Refuses models beyond the limits before anything is allocated, and
    /// runs whose estimated memory (``bytesPerParameter`` per parameter,
    /// ``bytesPerActivation`` per activation of a batch) exceeds what the
    /// process may allocate (``MemoryBudget``). With widths ≤ 10^6 and at
    /// most 1,001 of them, no sum or product below overflows.
    static func checkSizes(_ widths: [Int], batchNorm: Bool, batchSize: Int, budget: MemoryBudget = .current) throws(UsageError) {
        if let wide = widths.first(where: { $0 > maximumWidth }) {
            throw UsageError("a layer of \(wide) units is wider than the limit of \(maximumWidth) (the data's features or classes set the first and last widths)")
        }
        var parameters = 0
        for i in 0..<(widths.count - 1) {
            parameters += widths[i] * widths[i + 1] + widths[i + 1]
            if batchNorm, i < widths.count - 2 { parameters += 2 * widths[i + 1] }
        }
        guard parameters <= maximumParameterCount else {
            throw UsageError("the model \(widths.map(String.init).joined(separator: "-").shownInMessage) has \(parameters) parameters, more than the limit of \(maximumParameterCount)")
        }
        let activations = batchSize * widths.reduce(0, +)
        guard activations <= maximumActivationCount else {
            throw UsageError("a batch of \(batchSize) through \(widths.map(String.init).joined(separator: "-").shownInMessage) holds \(activations) activations, more than the limit of \(maximumActivationCount); lower --batch-size")
        }
        let bytes = parameters * bytesPerParameter + activations * bytesPerActivation
        guard bytes <= budget.bytes else {
            throw UsageError(
                "training \(widths.map(String.init).joined(separator: "-").shownInMessage) (\(parameters) parameters) with batches of \(batchSize) needs about \(bytes) bytes, "
                    + "\(budget.exceededDescription); use narrower --layers or a smaller --batch-size")
        }
    }

    /// The MLP, initialized from `seed` (whatever other threads draw).
    func makeModel(_ widths: [Int], seed: UInt64) -> MLP {
        let activation = activation.activation
        return withManualSeed(seed) {
            MLP(
                sizes: widths, activation: activation, initializer: initializer.initializer(for: activation), batchNorm: batchNorm,
                dropout: dropout, residual: residual)
        }
    }

    /// Canonical values for checkpoints.
    func settings(widths: [Int]) -> [Setting] {
        [
            Setting(.layers, widths.map(String.init).joined(separator: ",")), Setting(.activation, activation.rawValue),
            Setting(.initializer, initializer.rawValue), Setting(.batchNorm, "\(batchNorm)"), Setting(.dropout, shortNumber(dropout)),
            Setting(.residual, "\(residual)"),
        ]
    }
}
