// GradKit — activation statistics collected during a monitored forward pass. SPDX-License-Identifier: MIT

/// The kind of activation a layer applies, for its statistics.
enum ActivationKind: Sendable {
    case sigmoid, tanh, relu, leakyRelu, other

    var name: String {
        switch self {
        case .sigmoid: "sigmoid"
        case .tanh: "tanh"
        case .relu: "ReLU"
        case .leakyRelu: "leaky ReLU"
        case .other: "activation"
        }
    }
}

/// Statistics of one activation layer's input and output over one batch.
struct ActivationSample: Sendable {
    var kind: ActivationKind
    var preactivationMean: Double
    var preactivationStandardDeviation: Double
    /// Sigmoid outputs below 0.01 or above 0.99, tanh beyond ±0.99
    /// (derivative below 0.01 resp. 0.02); nil for other kinds.
    var saturatedFraction: Double?
    /// Units (columns) that output 0 for the whole batch; ReLU only.
    var deadFraction: Double?
}

/// Receives statistics from activation layers while a monitor observes a
/// forward pass on this thread. Costs one thread-local read per activation
/// call when nobody observes.
final class ActivationProbe {
    static let local = ThreadLocal { ActivationProbe() }

    var isActive = false
    private(set) var samples: [ObjectIdentifier: ActivationSample] = [:]

    func begin() {
        samples.removeAll(keepingCapacity: true)
        isActive = true
    }

    func end() { isActive = false }

    /// Called by activation layers after computing `output` from `input`.
    @inline(__always)
    /// Whether a monitor collects activation statistics on this thread now.
    static var isSampling: Bool { local.existing?.isActive ?? false }

    static func report(_ layer: AnyObject, kind: ActivationKind, input: Tensor, output: Tensor) {
        let probe = local.current
        guard probe.isActive else { return }
        probe.record(ObjectIdentifier(layer), kind: kind, input: input, output: output)
    }

    private func record(_ id: ObjectIdentifier, kind: ActivationKind, input: Tensor, output: Tensor) {
        let n = input.scalarCount
        guard n > 0 else { return }
        let (sum, squares) = input.withUnsafeBufferPointer { Kernels.moments(count: n, $0.baseAddress!) }
        let mean = sum / Double(n)
        let variance = Swift.max(squares / Double(n) - mean * mean, 0)
        var sample = ActivationSample(
            kind: kind, preactivationMean: mean, preactivationStandardDeviation: variance.squareRoot())
        switch kind {
        case .sigmoid:
            sample.saturatedFraction = Double(output.withUnsafeBufferPointer { Kernels.countOutside(count: n, $0.baseAddress!, low: 0.01, high: 0.99) }) / Double(n)
        case .tanh:
            sample.saturatedFraction = Double(output.withUnsafeBufferPointer { Kernels.countOutside(count: n, $0.baseAddress!, low: -0.99, high: 0.99) }) / Double(n)
        case .relu:
            let columns = output.shape.last ?? 1, rows = n / Swift.max(columns, 1)
            sample.deadFraction = Double(output.withUnsafeBufferPointer { Kernels.countDeadColumns(rows: rows, columns: columns, $0.baseAddress!) }) / Double(Swift.max(columns, 1))
        case .leakyRelu, .other:
            break
        }
        samples[id] = sample
    }
}
