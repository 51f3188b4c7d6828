// GradKit — statistics of an activation layer's input and output over one batch. SPDX-License-Identifier: MIT

/// What the monitor measures at an activation layer: the spread of its
/// pre-activations, and the fraction of its outputs where the gradient is
/// (nearly) cut off — saturated sigmoid/tanh units, dead ReLU units.
struct ActivationStatistics: Sendable {
    var preactivationMean: Double
    var preactivationStandardDeviation: Double
    /// Sigmoid outputs below 0.01 or above 0.99, tanh beyond ±0.99
    /// (derivative below 0.01 resp. 0.02); nil for other functions.
    var saturatedFraction: Double?
    /// Units (columns) that output 0 for the whole batch; ReLU only.
    var deadFraction: Double?

    /// The statistics of `function` mapping `input` (pre-activations) to `output`; nil for an empty batch.
    init?(_ function: Activation, input: Tensor, output: Tensor) {
        let n = input.scalarCount
        guard n > 0, output.scalarCount == n else { return nil }
        let (sum, squares) = input.withUnsafeBufferPointer { Kernels.moments(count: n, $0.baseAddress!) }
        preactivationMean = sum / Double(n)
        preactivationStandardDeviation = Swift.max(squares / Double(n) - preactivationMean * preactivationMean, 0).squareRoot()
        switch function {
        case .sigmoid:
            saturatedFraction = output.fractionOutside(low: 0.01, high: 0.99)
        case .tanh:
            saturatedFraction = output.fractionOutside(low: -0.99, high: 0.99)
        case .relu:
            let columns = Swift.max(output.shape.last ?? 1, 1)
            let dead = output.withUnsafeBufferPointer { Kernels.countDeadColumns(rows: n / columns, columns: columns, $0.baseAddress!) }
            deadFraction = Double(dead) / Double(columns)
        default:
            break
        }
    }
}

extension Activation {
    /// The name the monitor's reports use.
    var reportName: String {
        switch self {
        case .sigmoid: "sigmoid"
        case .tanh: "tanh"
        case .relu: "ReLU"
        case .leakyRelu: "leaky ReLU"
        case .gelu: "GELU"
        case .softplus: "softplus"
        case .elu: "ELU"
        }
    }
}

extension Tensor {
    fileprivate func fractionOutside(low: Float, high: Float) -> Double {
        let n = scalarCount
        return Double(withUnsafeBufferPointer { Kernels.countOutside(count: n, $0.baseAddress!, low: low, high: high) }) / Double(n)
    }
}
