// GradKit — dynamic loss scaling for reduced-precision gradients. SPDX-License-Identifier: MIT

/// Dynamic loss scaling (Micikevicius et al., 2018, "Mixed Precision
/// Training"), with the semantics and defaults of PyTorch's
/// `torch.amp.GradScaler`.
///
/// In fp16 a gradient entry below 2⁻²⁵ ≈ 3e-8 rounds to zero, and small ones
/// lose bits long before: the gradient vanishes by rounding. Multiplying the
/// loss by a large scale S multiplies every gradient of the backward pass by
/// S (the chain rule is linear in the seed), which lifts them into fp16's
/// range; dividing the weight gradients by S in FP32 before the step undoes
/// it. Too large an S overflows fp16 (above 65504) into ±∞, which the step's
/// non-finite check catches: the step is skipped and S halved.
///
/// Each step, with scale S and `growthTracker` t (clean steps in a row):
/// ```
/// backward of S · loss                  gradients ĝ = S · g
/// g = ĝ · (1 / S)                       unscaleGradients; 1/S computed in double, rounded to Float
/// found = any g is NaN or ±∞            (the step's non-finite check)
/// found:      skip the optimizer step;  S = S · backoffFactor;  t = 0
/// otherwise:  optimizer step;           t = t + 1
///             if t == growthInterval:   S' = S · growthFactor;  S = S' if S' is finite;  t = 0
/// ```
/// S starts at `initialScale`. It is not bounded below (as in PyTorch): a
/// run whose gradients stay non-finite keeps halving it, and
/// ``TrainingOptions/maximumConsecutiveSkippedSteps`` ends such a run.
///
/// With a ``Trainer``, set ``Trainer/lossScaler``: every step then scales
/// the loss, unscales the gradients before the monitor's non-finite guard,
/// clipping and the step, and updates the scale from the guard's decision
/// (the guard's skip leaves parameters and optimizer state untouched). In a
/// loop of your own, as with PyTorch's `scaler.scale(loss).backward()`,
/// `scaler.step(optimizer)`, `scaler.update()`:
/// ```swift
/// let scaler = LossScaler()
/// let loss = softmaxCrossEntropy(logits: model(x), labels: y)
/// scaler.scaled(loss).backward()
/// scaler.unscaleGradients(optimizer.parameters)
/// let finite = gradientNorm(optimizer.parameters).isFinite    // or the monitor's inspectGradients
/// if finite { clipGradientNorm(optimizer.parameters, maxNorm: 1); optimizer.step() }
/// optimizer.zeroGradients()
/// scaler.update(foundNonFinite: !finite)
/// ```
public final class LossScaler {
    /// The scale S the next loss is multiplied by (PyTorch's `get_scale()`).
    public private(set) var scale: Float
    /// The factor S grows by after ``growthInterval`` clean steps in a row (> 1).
    public let growthFactor: Float
    /// The factor S shrinks by after a step with a non-finite gradient (in (0, 1)).
    public let backoffFactor: Float
    /// Clean steps in a row after which S grows (>= 1).
    public let growthInterval: Int
    /// Clean steps since the scale last changed or a step was skipped
    /// (PyTorch's `_growth_tracker`), in `0..<growthInterval`.
    public private(set) var growthTracker = 0

    /// A loss scaler with PyTorch's defaults.
    ///
    /// - Parameters:
    ///   - initialScale: the first scale (PyTorch's `init_scale`, default 2¹⁶ = 65536).
    ///   - growthFactor: the growth per ``growthInterval`` clean steps (`growth_factor`, default 2).
    ///   - backoffFactor: the shrinking after a non-finite step (`backoff_factor`, default 0.5).
    ///   - growthInterval: clean steps in a row before growing (`growth_interval`, default 2000).
    /// - Precondition: `initialScale` finite and > 0, `growthFactor` > 1 and finite,
    ///   0 < `backoffFactor` < 1, `growthInterval` >= 1.
    public init(initialScale: Float = 65536, growthFactor: Float = 2, backoffFactor: Float = 0.5, growthInterval: Int = 2000) {
        precondition(initialScale > 0 && initialScale.isFinite, "LossScaler: initialScale must be finite and > 0, got \(initialScale)")
        precondition(growthFactor > 1 && growthFactor.isFinite, "LossScaler: growthFactor must be finite and > 1, got \(growthFactor)")
        precondition(backoffFactor > 0 && backoffFactor < 1, "LossScaler: backoffFactor must be in (0, 1), got \(backoffFactor)")
        precondition(growthInterval >= 1, "LossScaler: growthInterval must be >= 1, got \(growthInterval)")
        self.scale = initialScale
        self.growthFactor = growthFactor
        self.backoffFactor = backoffFactor
        self.growthInterval = growthInterval
    }

    /// `loss · scale`, recorded: its backward pass gives every gradient times
    /// ``scale`` (PyTorch's `scaler.scale(loss)`).
    public func scaled(_ loss: Tensor) -> Tensor { loss * scale }

    /// Multiplies each parameter's gradient by 1 / ``scale`` (computed in
    /// double and rounded to Float once, as PyTorch does), in place;
    /// parameters without a gradient are skipped. NaN and ±∞ stay what they are.
    public func unscaleGradients(_ parameters: [Parameter]) {
        let inverse = Float(1 / Double(scale))
        for p in parameters where p.hasGradient {
            p.updateGradient(accumulating: true) { g in
                Kernels.unary(.mulScalar, count: p.scalarCount, output: g, input: g, a: inverse)
            }
        }
    }

    /// Updates the scale after a step: backs off when the step's gradients
    /// were not finite (the step must have been skipped), otherwise counts a
    /// clean step and grows the scale every ``growthInterval`` of them in a
    /// row (PyTorch's `scaler.update()`).
    /// - Parameter foundNonFinite: whether a gradient of the step held NaN or ±∞.
    public func update(foundNonFinite: Bool) {
        if foundNonFinite {
            scale = Float(Double(scale) * Double(backoffFactor))
            growthTracker = 0
            return
        }
        growthTracker += 1
        guard growthTracker == growthInterval else { return }
        let grown = Float(Double(scale) * Double(growthFactor))
        // Never grow past Float's range into ∞.
        if grown.isFinite { scale = grown }
        growthTracker = 0
    }

    /// Checkpoint keys of the scaler's state.
    static let scaleKey = "lossScaler.scale", growthTrackerKey = "lossScaler.growthTracker"

    /// The scale and the growth tracker, for a checkpoint's configuration (PyTorch's `state_dict()`).
    var state: [String: String] { [LossScaler.scaleKey: "\(scale)", LossScaler.growthTrackerKey: "\(growthTracker)"] }

    /// Takes the scale and growth tracker from a checkpoint's configuration;
    /// a value that is missing, unreadable or out of range is left as it is.
    func restore(_ configuration: [String: String]) {
        if let value = configuration[LossScaler.scaleKey].flatMap(Float.init), value > 0, value.isFinite { scale = value }
        if let value = configuration[LossScaler.growthTrackerKey].flatMap(Int.init), (0..<growthInterval).contains(value) {
            growthTracker = value
        }
    }
}
