// GradKit — dropout. SPDX-License-Identifier: MIT

/// Dropout (Srivastava et al., 2014) with inverted scaling, PyTorch's
/// `nn.Dropout`: in training each element is zeroed with probability `p` and
/// the survivors are scaled by `1 / (1 - p)`, so evaluation (the identity)
/// needs no rescaling.
///
/// Each layer has its own seeded generator (drawn from ``manualSeed(_:)``'s
/// generator when no seed is given), so masks are reproducible.
public final class Dropout: HookedLayer {
    /// The probability of zeroing an element.
    public let probability: Float
    /// Training mode: drop elements; in evaluation the layer is the identity.
    public var isTraining = true
    private var generator: SeededGenerator
    let forwardHooks = ForwardHooks()

    /// A dropout layer.
    ///
    /// - Parameters:
    ///   - probability: the probability of zeroing an element (PyTorch's `p`, default 0.5).
    ///   - seed: seeds the layer's own mask generator; nil draws one from the shared generator (``manualSeed(_:)``).
    /// - Precondition: `0 <= probability <= 1`.
    public init(probability: Float = 0.5, seed: UInt64? = nil) {
        precondition(
            probability >= 0 && probability <= 1, "Dropout: probability has to be between 0 and 1, but got \(probability)")
        self.probability = probability
        self.generator = SeededGenerator(seed: seed ?? SharedRandom.with { $0.next() })
    }

    /// In training, zeroes each element with probability ``probability`` and scales the rest by `1 / (1 - probability)`; in evaluation returns `input`. Runs the forward hooks.
    public func callAsFunction(_ input: Tensor) -> Tensor {
        guard isTraining, probability > 0 else { return forwardHooks.run(self, input, input) }
        let mask = Tensor(uninitializedShape: input.shape)
        let keep = probability < 1 ? 1 / (1 - probability) : 0
        // p < 1 here or every element is dropped below; p * 2^64 < 2^64 then.
        let threshold = probability < 1 ? UInt64((Double(probability) * 0x1p64).rounded(.down)) : UInt64.max
        let m = mask.mutablePointer
        for i in 0..<mask.scalarCount {
            // Keep with probability 1 - p: compare 64 random bits with p * 2^64.
            m[i] = (probability >= 1 || generator.next() < threshold) ? 0 : keep
        }
        return forwardHooks.run(self, input, input * mask)
    }

    /// None: dropout has no parameters.
    public var parameters: [Parameter] { [] }

    /// The generator state, for checkpoints.
    public var generatorState: [UInt64] {
        get { generator.stateWords }
        set { generator = SeededGenerator(state: newValue) }
    }
}
