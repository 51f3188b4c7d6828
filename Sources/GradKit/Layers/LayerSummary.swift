// GradKit — a model's summary (Keras' model.summary()) and the layers' descriptions. SPDX-License-Identifier: MIT

/// A table of a model's layers: each layer's path, type, output shape for a
/// given input and parameter count (trainable and frozen), with totals —
/// Keras' `model.summary()`. Its `description` is the table.
///
/// ```
/// Layer          Type      Output shape  Parameters
/// 0              Linear    [1, 128]           8,320
/// 1              ReLU      [1, 128]               0
/// 2              Linear    [1, 10]            1,290
/// Total: 9,610 parameters (37.5 KiB) — 9,610 trainable, 0 frozen
/// ```
public struct ModelSummary: Sendable, CustomStringConvertible {
    /// One row of the table.
    public struct Row: Sendable, Equatable {
        /// The layer's path in the model (`"0"`, `"1.body.0"`; `"model"` for the model itself).
        public var path: String
        /// The layer's type name.
        public var type: String
        /// The shape of the layer's output for the summary's input; nil when it was not run.
        public var outputShape: [Int]?
        /// Scalars in the layer's own parameters (not its children's) that require gradients.
        public var trainableParameters: Int
        /// Scalars in the layer's own parameters that are frozen.
        public var frozenParameters: Int
    }

    /// The layers that have no children or have parameters of their own, depth first.
    public var rows: [Row]
    /// The input shape the output shapes were computed for, if any.
    public var inputShape: [Int]?

    /// Scalars that require gradients, in the whole model.
    public var trainableParameters: Int { rows.reduce(0) { $0 + $1.trainableParameters } }
    /// Frozen scalars in the whole model.
    public var frozenParameters: Int { rows.reduce(0) { $0 + $1.frozenParameters } }

    /// The table in Keras' `model.summary()` layout: the input shape (when known), one row per layer (path, type, output shape, parameters), then the total with its size at 4 bytes a scalar, trainable and frozen.
    public var description: String {
        let header = ["Layer", "Type", "Output shape", "Parameters"]
        let cells = rows.map { row in
            [row.path, row.type, row.outputShape.map { "\($0)" } ?? "—",
             grouped(row.trainableParameters + row.frozenParameters) + (row.frozenParameters > 0 ? " (frozen \(grouped(row.frozenParameters)))" : "")]
        }
        let widths = header.indices.map { c in ([header[c]] + cells.map { $0[c] }).map(\.count).max()! }
        func line(_ cells: [String]) -> String {
            cells.enumerated().map { c, text in
                let pad = String(repeating: " ", count: widths[c] - text.count)
                return c == cells.count - 1 ? pad + text : text + pad
            }.joined(separator: "  ")
        }
        let total = trainableParameters + frozenParameters
        var lines = [line(header)] + cells.map(line)
        if let inputShape { lines.insert("Input shape \(inputShape)", at: 0) }
        lines.append("Total: \(grouped(total)) parameters (\(byteSize(total * 4))) — \(grouped(trainableParameters)) trainable, \(grouped(frozenParameters)) frozen")
        return lines.joined(separator: "\n")
    }
}

extension Layer {
    /// The summary of this model: every layer with its output shape for an
    /// input of `inputShape` (default `[1, inputWidth]` when the model fixes
    /// its input width; no shapes when it is nil and the width is unknown) and
    /// its parameter counts.
    ///
    /// The shapes come from one forward pass on zeros, in evaluation mode and
    /// without recording, through forward hooks; the model's mode is put back.
    public func summary(inputShape: [Int]? = nil) -> ModelSummary {
        let shape = inputShape ?? inputWidth.map { [1, $0] }
        var layers: [(path: String, layer: any Layer)] = []
        func visit(_ layer: any Layer, _ path: String) {
            layers.append((path.isEmpty ? "model" : path, layer))
            for (name, child) in layer.namedChildren { visit(child, path.isEmpty ? name : "\(path).\(name)") }
        }
        visit(self, "")
        var shapes: [ObjectIdentifier: [Int]] = [:]
        if let shape {
            let handles = layers.map { entry in
                entry.layer.registerForwardHook { layer, _, output in shapes[ObjectIdentifier(layer)] = output.shape }
            }
            let wasTraining = isTraining
            isTraining = false
            _ = withoutGradients { apply(Tensor(zeros: shape), runsOwnHooks: runsOwnForwardHooks) }
            isTraining = wasTraining
            for handle in handles { handle.remove() }
        }
        var rows: [ModelSummary.Row] = []
        for (path, layer) in layers {
            let childParameters = Set(layer.children.flatMap(\.parameters).map(ObjectIdentifier.init))
            let own = layer.parameters.filter { !childParameters.contains(ObjectIdentifier($0)) }
            guard layer.children.isEmpty || !own.isEmpty else { continue }
            rows.append(ModelSummary.Row(
                path: path, type: "\(type(of: layer))", outputShape: shapes[ObjectIdentifier(layer)],
                trainableParameters: own.filter(\.requiresGradient).reduce(0) { $0 + $1.scalarCount },
                frozenParameters: own.filter { !$0.requiresGradient }.reduce(0) { $0 + $1.scalarCount }))
        }
        return ModelSummary(rows: rows, inputShape: shape)
    }
}

/// A byte count in B, KiB, MiB or GiB with one decimal.
private func byteSize(_ bytes: Int) -> String {
    var value = Double(bytes)
    for unit in ["B", "KiB", "MiB", "GiB"] {
        if value < 1024 || unit == "GiB" {
            return unit == "B" ? "\(bytes) B" : "\((value * 10).rounded() / 10) \(unit)"
        }
        value /= 1024
    }
    return "\(bytes) B"
}
