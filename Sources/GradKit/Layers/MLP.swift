// GradKit — multi-layer perceptrons ("BP networks"). SPDX-License-Identifier: MIT

/// The nonlinearity between the layers of an ``MLP``.
public enum Activation: Sendable, Equatable {
    /// ``Sigmoid``.
    case sigmoid
    /// ``Tanh``.
    case tanh
    /// ``ReLU``.
    case relu
    /// ``GELU``, exact.
    case gelu
    /// ``Softplus`` with β 1 and threshold 20.
    case softplus
    /// ``LeakyReLU`` with the given slope for x ≤ 0.
    case leakyRelu(negativeSlope: Float = 0.01)
    /// ``ELU`` with the given scale of the negative branch.
    case elu(alpha: Float = 1)

    /// A fresh layer computing it.
    public func makeLayer() -> any Layer {
        switch self {
        case .sigmoid: Sigmoid()
        case .tanh: Tanh()
        case .relu: ReLU()
        case .gelu: GELU()
        case .softplus: Softplus()
        case .leakyRelu(let slope): LeakyReLU(negativeSlope: slope)
        case .elu(let alpha): ELU(alpha: alpha)
        }
    }

    /// The initializer gain's nonlinearity (GELU and softplus count as ReLU).
    public var nonlinearity: Nonlinearity {
        switch self {
        case .sigmoid: .sigmoid
        case .tanh: .tanh
        case .relu, .gelu, .softplus, .elu: .relu
        case .leakyRelu(let slope): .leakyRelu(negativeSlope: slope)
        }
    }
}

/// A fully connected network trained by back-propagation: `sizes[0]` inputs,
/// hidden layers of `sizes[1 ..< n-1]` units, `sizes[n-1]` outputs (logits: no
/// activation at the end). Each hidden layer is
/// ```
/// Linear → [BatchNorm] → activation → [Dropout]
/// ```
/// and with `residual`, a hidden layer whose input and output widths agree is
/// wrapped in ``Residual``. The layers live in a ``Sequential``, so parameter
/// names are PyTorch's for the same `nn.Sequential` (`"0.weight"`, ...).
public final class MLP: HookedLayer {
    /// The widths from the input to the output layer (`[64, 128, 10]`).
    public let sizes: [Int]
    /// The layers, in a ``Sequential`` whose children name the parameters.
    public let network: Sequential

    /// Training mode, forwarded to ``network``.
    public var isTraining: Bool {
        get { network.isTraining }
        set { network.isTraining = newValue }
    }

    /// A network of ``Linear`` layers with the given widths.
    ///
    /// - Parameters:
    ///   - sizes: the widths from the input to the output (`[64, 128, 10]`); at least two, all positive.
    ///   - activation: the nonlinearity after each hidden layer (default ReLU).
    ///   - initializer: for every weight; nil keeps PyTorch's default. Biases
    ///     keep PyTorch's default unless the initializer is ``Initializer/zeros``
    ///     or a constant.
    ///   - batchNorm: put a ``BatchNorm`` after each hidden ``Linear`` (default false).
    ///   - dropout: the probability of a ``Dropout`` after each hidden activation; 0 (the default) adds none.
    ///   - residual: wrap each hidden block whose input and output widths agree in a ``Residual``.
    /// - Precondition: at least two sizes, all positive; `0 <= dropout < 1`.
    public init(
        sizes: [Int], activation: Activation = .relu, initializer: Initializer? = nil, batchNorm: Bool = false,
        dropout: Float = 0, residual: Bool = false
    ) {
        precondition(sizes.count >= 2 && sizes.allSatisfy { $0 > 0 }, "MLP: needs at least two positive sizes, got \(sizes)")
        precondition(dropout >= 0 && dropout < 1, "MLP: dropout must be in [0, 1), got \(dropout)")
        self.sizes = sizes
        let weightInitializer = initializer ?? .pytorchDefault
        let biasInitializer: Initializer = {
            switch initializer {
            case .zeros?, .constant?: initializer!
            default: .pytorchDefault
            }
        }()
        var layers: [any Layer] = []
        for i in 0..<(sizes.count - 1) {
            let linear = Linear(
                inputSize: sizes[i], outputSize: sizes[i + 1], weightInitializer: weightInitializer,
                biasInitializer: biasInitializer)
            if i == sizes.count - 2 {
                layers.append(linear)
                break
            }
            var block: [any Layer] = [linear]
            if batchNorm { block.append(BatchNorm(featureCount: sizes[i + 1])) }
            block.append(activation.makeLayer())
            if dropout > 0 { block.append(Dropout(probability: dropout)) }
            if residual && sizes[i] == sizes[i + 1] {
                layers.append(Residual(Sequential(block)))
            } else {
                layers.append(contentsOf: block)
            }
        }
        network = Sequential(layers)
    }

    let forwardHooks = ForwardHooks()

    /// Applies the ``network``.
    /// - Precondition: inputs `[..., sizes[0]]`.
    public func callAsFunction(_ input: Tensor) -> Tensor { forwardHooks.run(self, input, forward(input)) }

    private func forward(_ input: Tensor) -> Tensor {
        precondition(
            input.rank >= 1 && input.shape[input.rank - 1] == sizes[0],
            "MLP(sizes: \(sizes)): input of shape \(input.shape) does not have \(sizes[0]) features")
        return network(input)
    }

    /// The network's parameters, in order.
    public var parameters: [Parameter] { network.parameters }
    /// The network's buffers (its batch normalizations').
    public var buffers: [Buffer] { network.buffers }
    /// The ``network``.
    public var children: [any Layer] { [network] }
    /// The network's layers, named as their parameters are (no extra prefix).
    public var namedChildren: [(name: String, layer: any Layer)] { network.namedChildren }
    /// `sizes[0]`.
    public var inputWidth: Int? { sizes[0] }
}
