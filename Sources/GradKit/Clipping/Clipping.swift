// GradKit — gradient clipping: global norm, value, per tensor, adaptive. SPDX-License-Identifier: MIT
#if canImport(Glibc)
import Glibc
#endif

// Parameters without a gradient are skipped by every function here, as in
// PyTorch. Norms are computed by one deterministic pass per parameter
// (double accumulation, fixed blocks: the same result for any thread count)
// and combined in the parameters' order.

func normKind(_ normType: Float, _ op: String) -> (NormKind, Double) {
    precondition(normType > 0 && !normType.isNaN, "\(op): normType must be > 0, got \(normType)")
    if normType == .infinity { return (.maximumAbsolute, .infinity) }
    if normType == 2 { return (.squares, 2) }
    if normType == 1 { return (.absolute, 1) }
    return (.power, Double(normType))
}

/// Power sums of each parameter's gradient and their combination: one
/// kernel call over all gradients, nil for parameters without one.
func powerSums(_ parameters: [Parameter], normType: Float, op: String) -> (total: Double, perParameter: [Double?], kind: NormKind, p: Double) {
    let (kind, p) = normKind(normType, op)
    var segments: [ConstFloatPointer] = [], lengths: [Int] = []
    segments.reserveCapacity(parameters.count)
    lengths.reserveCapacity(parameters.count)
    for parameter in parameters where parameter.hasGradient {
        guard let storage = parameter.gradientStorage else { continue }
        segments.append(UnsafePointer(storage.base))
        lengths.append(storage.count)
    }
    var partials = [Double](repeating: 0, count: segments.count)
    // The parameters own the gradient storages for the duration of the call.
    let total = withExtendedLifetime(parameters) {
        partials.withUnsafeMutableBufferPointer { buffer in
            Kernels.normSegments(
                kind, segments: segments, lengths: lengths, p: p, partials: buffer.baseAddress ?? UnsafeMutablePointer(bitPattern: 8)!)
        }
    }
    var perParameter: [Double?] = []
    perParameter.reserveCapacity(parameters.count)
    var next = 0
    for parameter in parameters {
        if parameter.hasGradient && parameter.gradientStorage != nil {
            perParameter.append(partials[next])
            next += 1
        } else {
            perParameter.append(nil)
        }
    }
    return (total, perParameter, kind, p)
}

private func root(_ sum: Double, _ kind: NormKind, _ p: Double) -> Float {
    switch kind {
    case .maximumAbsolute: Float(sum)
    case .squares: Float(sum.squareRoot())
    case .absolute: Float(sum)
    case .power: Float(pow(sum, 1 / p))
    }
}

/// The total p-norm of the gradients, as if all were one vector:
/// `(Σ_params Σ_i |g_i|^p)^(1/p)`, or `max |g_i|` for p = ∞. Parameters without
/// a gradient are skipped. NaN if any gradient holds NaN, +∞ if one holds ±∞.
/// - Precondition: `normType > 0` (`.infinity` allowed).
public func gradientNorm(_ parameters: [Parameter], normType: Float = 2) -> Float {
    let sums = powerSums(parameters, normType: normType, op: "gradientNorm")
    return root(sums.total, sums.kind, sums.p)
}

/// Each parameter's gradient norm, in order; nil for parameters without a
/// gradient. The per-layer view the gradient-health monitor reports.
public func gradientNorms(_ parameters: [Parameter], normType: Float = 2) -> [Float?] {
    let sums = powerSums(parameters, normType: normType, op: "gradientNorms")
    return sums.perParameter.map { $0.map { root($0, sums.kind, sums.p) } }
}

/// PyTorch's clip coefficient, in Float: `min(1, maxNorm / (total + 1e-6))`;
/// 1 when the total is not finite (the gradients are then left alone).
func clipCoefficient(total: Float, maxNorm: Float) -> Float {
    precondition(maxNorm >= 0, "clipGradientNorm: maxNorm must be >= 0, got \(maxNorm)")
    guard total.isFinite else { return 1 }
    let coefficient = maxNorm / (total + 1e-6)
    return coefficient < 1 ? coefficient : 1
}

/// Scales the gradients so that their total norm is at most `maxNorm`
/// (PyTorch's `clip_grad_norm_`), and returns the total norm before clipping.
///
/// ```
/// total = gradientNorm(parameters, normType)
/// c     = min(1, maxNorm / (total + 1e-6))
/// g     = c * g                for every gradient
/// ```
/// Below the threshold c is exactly 1 and the gradients are unchanged, bit for
/// bit. When `total` is NaN or infinite the gradients are left untouched (where
/// PyTorch would fill them with NaN) and the non-finite total is returned;
/// ``nonFiniteGradients(_:)`` names the culprits.
/// - Precondition: `maxNorm >= 0` (NaN traps), `normType > 0`.
@discardableResult
public func clipGradientNorm(_ parameters: [Parameter], maxNorm: Float, normType: Float = 2) -> Float {
    precondition(maxNorm >= 0, "clipGradientNorm: maxNorm must be >= 0, got \(maxNorm)")
    let total = gradientNorm(parameters, normType: normType)
    clipGradients(parameters, maxNorm: maxNorm, totalNorm: total)
    return total
}

/// Clips with a total norm already measured (``gradientNorm(_:normType:)``),
/// saving the norm pass when the caller needs the norm anyway. Same equations
/// and non-finite rule as ``clipGradientNorm(_:maxNorm:normType:)``.
/// - Precondition: `maxNorm >= 0`.
public func clipGradients(_ parameters: [Parameter], maxNorm: Float, totalNorm: Float) {
    let coefficient = clipCoefficient(total: totalNorm, maxNorm: maxNorm)
    guard coefficient != 1 else { return }
    for p in parameters where p.hasGradient {
        p.updateGradient(accumulating: true) { g in
            Kernels.unary(.mulScalar, count: p.scalarCount, output: g, input: g, a: coefficient)
        }
    }
}

/// Clamps every gradient element to `[-clipValue, clipValue]` (PyTorch's
/// `clip_grad_value_`): `g = min(max(g, -clipValue), clipValue)`. NaN stays NaN.
/// - Precondition: `clipValue >= 0`.
public func clipGradientValue(_ parameters: [Parameter], clipValue: Float) {
    precondition(clipValue >= 0, "clipGradientValue: clipValue must be >= 0, got \(clipValue)")
    for p in parameters where p.hasGradient {
        p.updateGradient(accumulating: true) { g in
            Kernels.unary(.clamp, count: p.scalarCount, output: g, input: g, a: -clipValue, b: clipValue)
        }
    }
}

/// Clips each gradient to its own Euclidean norm limit (Keras' `clipnorm`):
/// ```
/// ‖g‖ > maxNorm:  g = g * (maxNorm / ‖g‖)
/// ```
/// Gradients within the limit, and gradients whose norm is not finite, are
/// left untouched. Returns how many gradients were scaled.
/// - Precondition: `maxNorm >= 0`.
@discardableResult
public func clipGradientNormPerTensor(_ parameters: [Parameter], maxNorm: Float) -> Int {
    precondition(maxNorm >= 0, "clipGradientNormPerTensor: maxNorm must be >= 0, got \(maxNorm)")
    let norms = gradientNorms(parameters)
    var clipped = 0
    for (p, norm) in zip(parameters, norms) {
        guard let norm, norm.isFinite, norm > maxNorm else { continue }
        let scale = maxNorm / norm
        p.updateGradient(accumulating: true) { g in
            Kernels.unary(.mulScalar, count: p.scalarCount, output: g, input: g, a: scale)
        }
        clipped += 1
    }
    return clipped
}

/// Adaptive gradient clipping (Brock, De, Smith and Simonyan, 2021: NFNets),
/// unit-wise. A unit is one output row of a weight (every axis but the first);
/// a parameter of rank 0 or 1 is a single unit:
/// ```
/// limit = clipFactor * max(‖w_unit‖, epsilon)
/// ‖g_unit‖ > limit:  g_unit = g_unit * limit / max(‖g_unit‖, 1e-6)
/// ```
/// Returns how many units were clipped. Defaults are the paper's (0.01, 1e-3).
/// - Precondition: `clipFactor > 0`, `epsilon >= 0`.
@discardableResult
public func adaptiveClipGradients(_ parameters: [Parameter], clipFactor: Float = 0.01, epsilon: Float = 1e-3) -> Int {
    precondition(clipFactor > 0, "adaptiveClipGradients: clipFactor must be > 0, got \(clipFactor)")
    precondition(epsilon >= 0, "adaptiveClipGradients: epsilon must be >= 0, got \(epsilon)")
    var clipped = 0
    for p in parameters where p.hasGradient {
        let rows = p.shape.count >= 2 ? p.shape[0] : 1
        let columns = rows == 0 ? 0 : p.scalarCount / rows
        let weights = p.storage
        p.updateGradient(accumulating: true) { g in
            withExtendedLifetime(weights) {
                clipped += Kernels.adaptiveClip(
                    rows: rows, columns: columns, gradients: g, weights: weights.base, clipFactor: clipFactor,
                    epsilon: epsilon)
            }
        }
    }
    return clipped
}

/// The parameters whose gradient holds NaN or ±∞, in order: what a
/// non-finite ``gradientNorm(_:normType:)`` is made of.
public func nonFiniteGradients(_ parameters: [Parameter]) -> [Parameter] {
    parameters.filter { p in
        guard p.hasGradient, let storage = p.gradientStorage else { return false }
        return withExtendedLifetime(storage) { !Kernels.allFinite(count: storage.count, storage.base) }
    }
}
