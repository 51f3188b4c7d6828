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
/// S starts at `initialScale`. A run whose gradients stay non-finite keeps
/// halving it, down to ``State/smallestScale`` (PyTorch has no floor; see
/// ``update(foundNonFinite:)``). With a ``Trainer``,
/// ``TrainingOptions/maximumConsecutiveSkippedSteps`` ends such a run, counting
/// only the steps skipped at a scale of 1 or less, so the back-offs that find
/// the scale's range are never taken for divergence.
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
/// Save ``state`` beside the model and optimizer, and give it to
/// ``restore(_:)`` to resume (a ``Trainer`` keeps it in its checkpoints).
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
    /// - Precondition: `initialScale` a valid scale (finite, > 0, and its
    ///   reciprocal finite as a Float: at least ``State/smallestScale``), `growthFactor`
    ///   finite and > 1, 0 < `backoffFactor` < 1, `growthInterval` >= 1. A
    ///   violation traps with a message naming the argument, in every build
    ///   (as the optimizers' initializers do; PyTorch raises).
    public init(initialScale: Float = 65536, growthFactor: Float = 2, backoffFactor: Float = 0.5, growthInterval: Int = 2000) {
        if let error = State.scaleError(initialScale) { fatalError("LossScaler: initialScale \(error.rule)") }
        guard growthFactor > 1 && growthFactor.isFinite else { fatalError("LossScaler: growthFactor must be finite and > 1, got \(growthFactor)") }
        guard backoffFactor > 0 && backoffFactor < 1 else { fatalError("LossScaler: backoffFactor must be in (0, 1), got \(backoffFactor)") }
        guard growthInterval >= 1 else { fatalError("LossScaler: growthInterval must be >= 1, got \(growthInterval)") }
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
    ///
    /// Backing off stops at ``State/smallestScale`` (about 2.94e-39), the
    /// smallest scale whose reciprocal is a finite Float. PyTorch has no such
    /// floor, but below it unscaling multiplies by +∞, so no step could ever
    /// be taken again; at the floor the run still ends by its skipped-step
    /// limit, and its state stays one ``restore(_:)`` accepts.
    public func update(foundNonFinite: Bool) {
        if foundNonFinite {
            scale = Swift.max(Float(Double(scale) * Double(backoffFactor)), State.smallestScale)
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

    /// The scale and the growth tracker, to save beside the model and
    /// optimizer and give back to ``restore(_:)`` (PyTorch's `scaler.state_dict()`).
    ///
    /// ```swift
    /// let saved = scaler.state                  // State(scale: 32768.0, growthTracker: 417)
    /// // ... later, or in another process, with a scaler of the same growthInterval:
    /// let resumed = LossScaler()
    /// try resumed.restore(saved)
    /// ```
    public var state: State { State(scale: scale, growthTracker: growthTracker) }

    /// Takes the scale and the growth tracker from `state` (PyTorch's
    /// `scaler.load_state_dict()`); the factors and the interval stay this
    /// scaler's own.
    ///
    /// ```swift
    /// try scaler.restore(LossScaler.State(scale: 1024, growthTracker: 0))
    /// try scaler.restore(LossScaler.State(scale: 0, growthTracker: 0))   // throws: the scale must be > 0
    /// ```
    /// - Throws: ``LossScalerStateError`` when the scale is not finite, not
    ///   positive or too small for its reciprocal to be a finite Float (which
    ///   ``unscaleGradients(_:)`` multiplies by), or the growth tracker is
    ///   outside `0..<growthInterval`; the scaler is left as it was.
    public func restore(_ state: State) throws {
        try state.validate(growthInterval: growthInterval)
        scale = state.scale
        growthTracker = state.growthTracker
    }
}

extension LossScaler {
    /// What a ``LossScaler`` changes as it runs: the scale and the growth
    /// tracker. PyTorch's `state_dict()` also holds the constructor's
    /// arguments; here they are the scaler's own constants, set when it is made.
    public struct State: Sendable, Equatable {
        /// The scale S (``LossScaler/scale``).
        public var scale: Float
        /// Clean steps since the scale last changed or a step was skipped (``LossScaler/growthTracker``).
        public var growthTracker: Int

        /// A state of the given scale and growth tracker; ``LossScaler/restore(_:)`` checks it.
        public init(scale: Float, growthTracker: Int) {
            self.scale = scale
            self.growthTracker = growthTracker
        }

        /// The smallest scale whose reciprocal, rounded to Float as
        /// ``LossScaler/unscaleGradients(_:)`` rounds it, is finite: about
        /// 2.9387e-39 (a denormal).
        public static let smallestScale: Float = {
            func valid(_ s: Float) -> Bool { Float(1 / Double(s)).isFinite }
            var s = Float(1 / Double(Float.greatestFiniteMagnitude))
            while !valid(s) { s = s.nextUp }
            while valid(s.nextDown) { s = s.nextDown }
            return s
        }()

        /// Why `scale` cannot be a scale; nil when it can.
        static func scaleError(_ scale: Float) -> LossScalerStateError? {
            guard scale.isFinite && scale > 0 else { return .invalidScale(scale) }
            // unscaleGradients multiplies by 1/S rounded to Float: below smallestScale that is +∞.
            guard scale >= smallestScale else { return .scaleTooSmall(scale) }
            return nil
        }

        /// Throws unless a scaler whose growth interval is `growthInterval` can take this state.
        func validate(growthInterval: Int) throws(LossScalerStateError) {
            if let error = State.scaleError(scale) { throw error }
            guard (0..<growthInterval).contains(growthTracker) else {
                throw .growthTrackerOutOfRange(growthTracker, growthInterval: growthInterval)
            }
        }

        /// Checkpoint keys of the state, in a ``Checkpoint``'s configuration
        /// (`gradkit train --resume` reads them too).
        package static let scaleKey = "lossScaler.scale", growthTrackerKey = "lossScaler.growthTracker"
        /// Both keys, in that order.
        package static let keys = [scaleKey, growthTrackerKey]

        /// The first of the state's entries `configuration` holds, as key and
        /// value; nil when it holds neither (a run without loss scaling).
        package static func firstEntry(in configuration: [String: String]) -> (key: String, value: String)? {
            for key in keys {
                if let value = configuration[key] { return (key, value) }
            }
            return nil
        }

        /// The entries of a checkpoint's configuration that hold the state.
        var configuration: [String: String] { [State.scaleKey: "\(scale)", State.growthTrackerKey: "\(growthTracker)"] }

        /// The state a checkpoint's configuration holds, checked for a scaler
        /// whose growth interval is `growthInterval`; nil when it holds none
        /// (a run without loss scaling).
        /// - Throws: ``CheckpointError/badMetadata(file:key:reason:)`` naming
        ///   the configuration entry that is missing, unreadable or invalid.
        init?(configuration: [String: String], growthInterval: Int, file: String) throws {
            let scaleText = configuration[State.scaleKey], trackerText = configuration[State.growthTrackerKey]
            if scaleText == nil && trackerText == nil { return nil }
            func bad(_ key: String, _ reason: String) -> CheckpointError {
                .badMetadata(file: file, key: "configuration", reason: "\(key.quotedForMessage()) \(reason)")
            }
            guard let scaleText else { throw bad(State.scaleKey, "is missing, yet \(State.growthTrackerKey.quotedForMessage()) is there") }
            guard let trackerText else { throw bad(State.growthTrackerKey, "is missing, yet \(State.scaleKey.quotedForMessage()) is there") }
            // Float(String) reads a C string: a NUL would end it early, and "1024\0junk" would pass.
            guard !scaleText.contains("\0"), let scale = Float(scaleText) else { throw bad(State.scaleKey, "is \(scaleText.quotedForMessage()), not a number") }
            guard let tracker = Int(trackerText) else { throw bad(State.growthTrackerKey, "is \(trackerText.quotedForMessage()), not a count") }
            self.init(scale: scale, growthTracker: tracker)
            do {
                try validate(growthInterval: growthInterval)
            } catch {
                throw bad(error.key, error.rule)
            }
        }
    }
}

/// Why a ``LossScaler/State`` cannot be restored into a ``LossScaler``.
public enum LossScalerStateError: Error, Equatable, CustomStringConvertible {
    /// The scale is NaN, infinite, zero or negative.
    case invalidScale(Float)
    /// The scale is positive but below ``LossScaler/State/smallestScale``, where its reciprocal,
    /// which unscaling multiplies the gradients by, overflows Float.
    case scaleTooSmall(Float)
    /// The growth tracker is outside `0..<growthInterval` of the scaler restored into.
    case growthTrackerOutOfRange(Int, growthInterval: Int)

    /// A one-line message naming the value at fault and the rule it breaks.
    public var description: String {
        switch self {
        case .invalidScale, .scaleTooSmall: "loss scaler state: the scale \(rule)"
        case .growthTrackerOutOfRange: "loss scaler state: the growth tracker \(rule)"
        }
    }

    /// The rule and the value, as the end of a sentence naming the value: "must be finite and > 0, got nan".
    var rule: String {
        switch self {
        case .invalidScale(let scale): "must be finite and > 0, got \(scale)"
        case .scaleTooSmall(let scale): "must be at least \(LossScaler.State.smallestScale) so that 1/S is a finite Float, got \(scale)"
        case .growthTrackerOutOfRange(let tracker, let interval): "must be in 0..<\(interval) (the scaler's growthInterval), got \(tracker)"
        }
    }

    /// The checkpoint configuration key of the value at fault.
    var key: String {
        switch self {
        case .invalidScale, .scaleTooSmall: LossScaler.State.scaleKey
        case .growthTrackerOutOfRange: LossScaler.State.growthTrackerKey
        }
    }
}
