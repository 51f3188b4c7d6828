// GradKit — starting reverse mode, and switching recording off. SPDX-License-Identifier: MIT

extension Tensor {
    /// Back-propagates from this tensor: adds `d(seed · self) / d p` into the
    /// ``Parameter/gradient`` of every parameter this tensor was computed from,
    /// then releases the tape (its saved values return to the buffer pool).
    ///
    /// Gradients accumulate across calls until reset, as in PyTorch.
    ///
    /// - Parameter seed: the gradient of the final objective with respect to
    ///   this tensor; omit it for a one-element tensor (a loss), where it is 1.
    /// - Precondition: this tensor was computed from a parameter with gradients
    ///   on, its tape has not been consumed by an earlier `backward()`, and a
    ///   seed, if given, has this tensor's shape.
    public func backward(seed: Tensor? = nil) {
        let seed = seed ?? defaultSeed()
        precondition(
            seed.shape == shape, "backward(seed:): seed of shape \(seed.shape) for a tensor of shape \(shape)")
        if node == Tensor.leafNode, isLiveLeaf {
            unsafeDowncast(origin.unsafelyUnwrapped, to: Parameter.self).receiveGradient(seed.detached())
            return
        }
        precondition(
            node >= 0,
            "backward(): this tensor was not computed from any Parameter (or was computed inside "
                + "withoutGradients, or detached), so there is nothing to differentiate")
        let session = unsafeDowncast(origin.unsafelyUnwrapped, to: TapeSession.self)
        precondition(
            session.isCurrent,
            "backward(): the tape that recorded this tensor was already consumed by an earlier backward(); "
                + "run the forward pass again")
        session.tape.backward(from: node, seed: seed.detached())
    }

    private func defaultSeed() -> Tensor {
        precondition(
            scalarCount == 1,
            "backward(): a tensor of shape \(shape) needs a seed (backward(seed:)); only one-element tensors default to 1")
        return Tensor(shape: shape, repeating: 1)
    }

    /// The same values, cut off from the tape: gradients do not flow through it.
    public func detached() -> Tensor {
        Tensor(storage: storage, shape: shape)
    }

    /// Whether operations on this tensor are recorded: it is a parameter's value
    /// or was computed from one, and its tape is still live.
    public var requiresGradient: Bool { liveTape != nil || isLiveLeaf }
}

/// Runs `body` without recording any operation on this thread, for inference
/// and evaluation (like PyTorch's `torch.no_grad()`). Nests; returns `body`'s result.
public func withoutGradients<Result>(_ body: () throws -> Result) rethrows -> Result {
    let tape = Tape.local.current
    tape.disabledDepth += 1
    defer { tape.disabledDepth -= 1 }
    return try body()
}

/// Whether operations on this thread are being recorded (false inside
/// ``withoutGradients(_:)`` and during `backward()`).
public var isRecordingGradients: Bool { Tape.local.current.disabledDepth == 0 }
