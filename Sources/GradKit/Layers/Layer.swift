// GradKit — the layer protocol, buffers, containers' naming and state dictionaries. SPDX-License-Identifier: MIT

/// A building block of a model: a function of one tensor with trainable
/// parameters, PyTorch's `nn.Module`.
///
/// Layers are reference types: models share them with optimizers and monitors.
/// Parameters carry stable dotted names: a layer names its own `"weight"` and
/// `"bias"`, and each container that takes it prefixes its position (`"0."`,
/// `"body."`), so `Sequential([Linear(...), ReLU(), Linear(...)])` has
/// `"0.weight"`, `"0.bias"`, `"2.weight"`, `"2.bias"` — PyTorch's names, so
/// checkpoints interoperate. A layer belongs to one container.
public protocol Layer: AnyObject {
    /// Applies the layer.
    func callAsFunction(_ input: Tensor) -> Tensor

    /// The trainable parameters, in a fixed order (depth first, in the order
    /// the layer was built), named by their dotted paths.
    var parameters: [Parameter] { get }

    /// Non-trainable state that checkpoints keep (BatchNorm's running statistics).
    var buffers: [Buffer] { get }

    /// The layers directly inside this one.
    var children: [any Layer] { get }

    /// The children with the names their parameters are prefixed with
    /// (`"0"`, `"body"`); by default their indices.
    var namedChildren: [(name: String, layer: any Layer)] { get }

    /// The width of the inputs this layer takes (its last axis), when it fixes
    /// one; nil for width-agnostic layers such as activations.
    var inputWidth: Int? { get }

    /// Training mode (true, the default, as in PyTorch) or evaluation mode:
    /// dropout and batch normalization behave differently. Setting it sets it
    /// on every child.
    var isTraining: Bool { get set }

    /// The weights by which ``GradientMonitor`` judges this layer as one unit
    /// (a ``Linear``'s weight matrix, an ``RNN``'s two), or empty when the
    /// monitor should not report it on its own (containers, activations,
    /// normalization). By default: for a layer without children, its
    /// parameters of rank 2 or more (weights, not biases or scales).
    var monitoredWeights: [Parameter] { get }

    /// The activation function this layer applies, for the monitor's
    /// activation statistics (saturation, dead units); nil for other layers.
    var activationFunction: Activation? { get }
}

extension Layer {
    /// By default the buffers of the children, in order.
    public var buffers: [Buffer] { children.flatMap(\.buffers) }
    /// By default none: a layer without sublayers.
    public var children: [any Layer] { [] }
    /// By default the children named by their indices (`"0"`, `"1"`, ...).
    public var namedChildren: [(name: String, layer: any Layer)] { children.enumerated().map { ("\($0.offset)", $0.element) } }
    /// By default nil: any width.
    public var inputWidth: Int? { nil }
    /// By default, for a layer without children, its parameters of rank 2 or more; for a container, none.
    public var monitoredWeights: [Parameter] { children.isEmpty ? parameters.filter { $0.shape.count >= 2 } : [] }
    /// By default nil: the layer applies no activation the monitor measures.
    public var activationFunction: Activation? { nil }

    /// The number of trainable scalars.
    public var parameterCount: Int { parameters.reduce(0) { $0 + $1.scalarCount } }

    /// Freezes every parameter of this layer and its children: backward
    /// computes no gradient for them and optimizers leave them as they are
    /// (PyTorch's `requires_grad_(False)`). See ``Parameter/requiresGradient``.
    public func freeze() {
        for p in parameters { p.requiresGradient = false }
    }

    /// Makes every parameter of this layer and its children trainable again.
    public func unfreeze() {
        for p in parameters { p.requiresGradient = true }
    }

    /// Prepends `prefix` to the names of every parameter and buffer inside.
    func prefixNames(with prefix: String) {
        for p in parameters { p.name = prefix + p.name }
        for b in buffers { b.name = prefix + b.name }
    }
}

/// Non-trainable layer state, saved in checkpoints: PyTorch's buffers.
public final class Buffer {
    /// The dotted name, like a parameter's (`"4.running_mean"`).
    public var name: String
    /// The current value.
    public var value: Tensor

    /// A buffer holding `value` under the dotted `name`.
    ///
    /// - Parameters:
    ///   - value: the initial value.
    ///   - name: the name within its layer (`"running_mean"`); containers prefix their path.
    public init(_ value: Tensor, name: String) {
        self.value = value
        self.name = name
    }
}

/// What went wrong loading a state dictionary; nothing was changed.
public enum LayerStateError: Error, Equatable, CustomStringConvertible {
    /// Names the model has and the dictionary lacks.
    case missing([String])
    /// Names the dictionary has and the model lacks.
    case unexpected([String])
    /// An entry's shape differs from the model's; `name` is the dotted name.
    case shapeMismatch(name: String, expected: [Int], found: [Int])

    /// A one-line message naming the entries at fault.
    public var description: String {
        switch self {
        case .missing(let names): "state dictionary lacks \(names.joined(separator: ", "))"
        case .unexpected(let names): "state dictionary has unknown entries \(names.joined(separator: ", "))"
        case .shapeMismatch(let name, let expected, let found): "'\(name)' has shape \(found), the model expects \(expected)"
        }
    }
}

extension Layer {
    /// Every parameter and buffer by dotted name (PyTorch's `state_dict()`).
    public func stateDictionary() -> [String: Tensor] {
        var result: [String: Tensor] = [:]
        for p in parameters { result[p.name] = p.value.detached() }
        for b in buffers { result[b.name] = b.value }
        return result
    }

    /// Sets parameters and buffers by name (PyTorch's `load_state_dict`). With
    /// `strict`, the names must match exactly both ways. Everything is checked
    /// before anything is written: on error the model is unchanged.
    public func loadStateDictionary(_ values: [String: Tensor], strict: Bool = true) throws {
        let parameters = self.parameters, buffers = self.buffers
        let known = Set(parameters.map(\.name) + buffers.map(\.name))
        if strict {
            let missing = known.subtracting(values.keys).sorted()
            if !missing.isEmpty { throw LayerStateError.missing(missing) }
            let unexpected = Set(values.keys).subtracting(known).sorted()
            if !unexpected.isEmpty { throw LayerStateError.unexpected(unexpected) }
        }
        for p in parameters {
            if let v = values[p.name], v.shape != p.shape {
                throw LayerStateError.shapeMismatch(name: p.name, expected: p.shape, found: v.shape)
            }
        }
        for b in buffers {
            if let v = values[b.name], v.shape != b.value.shape {
                throw LayerStateError.shapeMismatch(name: b.name, expected: b.value.shape, found: v.shape)
            }
        }
        for p in parameters { if let v = values[p.name] { p.value = v } }
        for b in buffers { if let v = values[b.name] { b.value = v.detached() } }
    }
}

/// Layers applied one after another; children are named by index (`"0."`,
/// `"1."`, ...), as PyTorch's `nn.Sequential`.
///
/// ```swift
/// let model = Sequential([Linear(inputSize: 64, outputSize: 128), ReLU(), Linear(inputSize: 128, outputSize: 10)])
/// let same = Sequential {
///     Linear(inputSize: 64, outputSize: 128)
///     ReLU()
///     Linear(inputSize: 128, outputSize: 10)
/// }
/// ```
public final class Sequential: HookedLayer {
    /// The layers, in order.
    public let layers: [any Layer]

    /// Training mode; setting it sets every layer's.
    public var isTraining = true {
        didSet { for layer in layers { layer.isTraining = isTraining } }
    }

    let forwardHooks = ForwardHooks()

    /// For each layer: whether it is a ``Linear`` directly followed by a
    /// ``ReLU`` (the two run as one ``linearReLU(_:weight:bias:)``).
    private let fusesReLU: [Bool]
    /// For each layer: whether it runs its own forward hooks.
    private let runsOwnHooks: [Bool]

    /// Layers applied in the order given; each is renamed with its index as prefix (`"0.weight"`).
    ///
    /// - Parameter layers: the layers; each must not belong to another container.
    public init(_ layers: [any Layer]) {
        self.layers = layers
        fusesReLU = layers.indices.map { i in i + 1 < layers.count && layers[i] is Linear && layers[i + 1] is ReLU }
        runsOwnHooks = layers.map(\.runsOwnForwardHooks)
        for (index, layer) in layers.enumerated() { layer.prefixNames(with: "\(index).") }
    }

    /// Layers listed in a result-builder block, applied in order (`if`, `if`/`else` and `for` work).
    ///
    /// - Parameter build: the block listing the layers.
    public convenience init(@LayerBuilder _ build: () -> [any Layer]) {
        self.init(build())
    }

    /// Applies the layers in order. A ``Linear`` followed by a ``ReLU`` runs as
    /// one fused operation (same values and gradients, bit for bit).
    public func callAsFunction(_ input: Tensor) -> Tensor {
        var x = input
        var i = 0
        while i < layers.count {
            if fusesReLU[i] {
                x = unsafeDowncast(layers[i] as AnyObject, to: Linear.self)
                    .fusedWithReLU(x, unsafeDowncast(layers[i + 1] as AnyObject, to: ReLU.self))
                i += 2
            } else {
                x = layers[i].apply(x, runsOwnHooks: runsOwnHooks[i])
                i += 1
            }
        }
        return forwardHooks.run(self, input, x)
    }

    /// The layers applied one by one, never fused: the general path the fused
    /// one is tested against.
    func unfused(_ input: Tensor) -> Tensor {
        layers.indices.reduce(input) { layers[$1].apply($0, runsOwnHooks: runsOwnHooks[$1]) }
    }

    /// Every layer's parameters, in order.
    public var parameters: [Parameter] { layers.flatMap(\.parameters) }
    /// Every layer's buffers, in order.
    public var buffers: [Buffer] { layers.flatMap(\.buffers) }
    /// The layers, named by their indices.
    public var children: [any Layer] { layers }
    /// The input width of the first layer that fixes one, or nil.
    public var inputWidth: Int? { layers.lazy.compactMap(\.inputWidth).first }
}

/// Builds the layer list of a ``Sequential``.
@resultBuilder
public enum LayerBuilder {
    /// A single layer.
    public static func buildExpression(_ layer: any Layer) -> [any Layer] { [layer] }
    /// An array of layers, spliced in.
    public static func buildExpression(_ layers: [any Layer]) -> [any Layer] { layers }
    /// The layers of a block, in order.
    public static func buildBlock(_ parts: [any Layer]...) -> [any Layer] { parts.flatMap { $0 } }
    /// The layers of an `if` without `else`, when it ran; none otherwise.
    public static func buildOptional(_ part: [any Layer]?) -> [any Layer] { part ?? [] }
    /// The layers of an `if` branch.
    public static func buildEither(first part: [any Layer]) -> [any Layer] { part }
    /// The layers of an `else` branch.
    public static func buildEither(second part: [any Layer]) -> [any Layer] { part }
    /// The layers of every iteration of a `for` loop, in order.
    public static func buildArray(_ parts: [[any Layer]]) -> [any Layer] { parts.flatMap { $0 } }
}
