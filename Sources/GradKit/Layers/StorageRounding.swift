// GradKit — a layer that stores its input in fp16 or bfloat16 (emulated). SPDX-License-Identifier: MIT

/// A layer that stores its input in a narrower format (``Tensor/stored(as:)``):
/// its output is the input rounded to the format, and the gradient that
/// flows back through it is rounded too. Put one after each layer of a
/// `Sequential` to emulate training with activations and activation
/// gradients kept in fp16 or bfloat16; round the weight gradients as well
/// with a hook on each parameter:
///
/// ```swift
/// let model = Sequential([StorageRounding(.float16), Linear(inputSize: 64, outputSize: 32), StorageRounding(.float16),
///                         ReLU(), StorageRounding(.float16), Linear(inputSize: 32, outputSize: 10), StorageRounding(.float16)])
/// for p in model.parameters { p.registerGradientHook { $0.stored(as: .float16) } }
/// ```
public final class StorageRounding: HookedLayer {
    /// The format values and gradients are rounded to.
    public let format: StorageFormat
    /// Has no effect: rounding is the same in training and evaluation.
    public var isTraining = true
    let forwardHooks = ForwardHooks()

    /// A layer that rounds to `format`.
    /// - Parameter format: fp16 or bfloat16.
    public init(_ format: StorageFormat) { self.format = format }

    /// `input.stored(as: format)`; runs the forward hooks.
    public func callAsFunction(_ input: Tensor) -> Tensor { forwardHooks.run(self, input, input.stored(as: format)) }

    /// None: rounding has no parameters.
    public var parameters: [Parameter] { [] }
}
