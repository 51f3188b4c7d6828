// GradKit — residual connections. SPDX-License-Identifier: MIT

/// A residual block (He et al., 2016): `y = x + body(x)`, or
/// `y = projection(x) + body(x)` when the block changes the width. The
/// identity path carries gradients past the body unattenuated — a cure for
/// vanishing gradients in deep networks. Children are named `"body."` and
/// `"projection."`.
public final class Residual: HookedLayer {
    /// The transformation added to the shortcut; its parameters are named `"body."`.
    public let body: any Layer
    /// The shortcut's transformation when the block changes the width (often a ``Linear``), named `"projection."`; nil for the identity.
    public let projection: (any Layer)?

    /// Training mode, forwarded to the body and the projection.
    public var isTraining = true {
        didSet {
            body.isTraining = isTraining
            projection?.isTraining = isTraining
        }
    }

    /// A residual block around `body`.
    ///
    /// - Parameters:
    ///   - body: the layer (often a ``Sequential``) whose output is added to the shortcut; it must not belong to another container.
    ///   - projection: maps the input to the body's output shape when they differ; nil for the identity shortcut.
    public init(_ body: any Layer, projection: (any Layer)? = nil) {
        self.body = body
        self.projection = projection
        body.prefixNames(with: "body.")
        projection?.prefixNames(with: "projection.")
    }

    let forwardHooks = ForwardHooks()
    private lazy var bodyRunsOwnHooks = body.runsOwnForwardHooks

    /// `projection(x) + body(x)`, or `x + body(x)` without a projection; runs the forward hooks.
    /// - Precondition: without a projection, the body keeps the input's shape.
    public func callAsFunction(_ input: Tensor) -> Tensor { forwardHooks.run(self, input, forward(input)) }

    private func forward(_ input: Tensor) -> Tensor {
        let shortcut = projection.map { $0.apply(input, runsOwnHooks: $0.runsOwnForwardHooks) } ?? input
        let transformed = body.apply(input, runsOwnHooks: bodyRunsOwnHooks)
        precondition(
            transformed.shape == shortcut.shape,
            "Residual: body output \(transformed.shape) does not match the shortcut \(shortcut.shape); add a projection")
        return shortcut + transformed
    }

    /// The body's parameters, then the projection's.
    public var parameters: [Parameter] { body.parameters + (projection?.parameters ?? []) }
    /// The body's buffers, then the projection's.
    public var buffers: [Buffer] { body.buffers + (projection?.buffers ?? []) }
    /// The body, then the projection when present.
    public var children: [any Layer] { [body] + (projection.map { [$0] } ?? []) }
    /// `"body"` and, when present, `"projection"`.
    public var namedChildren: [(name: String, layer: any Layer)] {
        [("body", body)] + (projection.map { [("projection", $0)] } ?? [])
    }
    /// The projection's input width, else the body's.
    public var inputWidth: Int? { projection?.inputWidth ?? body.inputWidth }
}
