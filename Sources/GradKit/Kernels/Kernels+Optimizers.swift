// GradKit — dispatch of the optimizer and norm kernels. SPDX-License-Identifier: MIT
import CKernels

/// The scalars of one optimizer step, computed once per step in double and
/// rounded to Float (see ck_optim.h for the equations).
struct SGDScalars {
    var learningRate: Float, momentum: Float, weightDecay: Float, gradientScale: Float
    var oneMinusDampening: Float
    var nesterov: Bool, first: Bool
}

struct AdaGradScalars {
    var clr: Float, epsilon: Float, weightDecay: Float, gradientScale: Float
}

struct RMSpropScalars {
    var learningRate: Float, alpha: Float, epsilon: Float, weightDecay: Float, momentum: Float, gradientScale: Float
    var oneMinusAlpha: Float
    var centered: Bool
}

struct AdamScalars {
    var beta2: Float, epsilon: Float, weightDecay: Float, gradientScale: Float
    var oneMinusBeta1: Float, oneMinusBeta2: Float
    var stepSize: Float, biasCorrection2Sqrt: Float, decayFactor: Float
    var amsgrad: Bool
}

/// Which power sum a norm needs.
enum NormKind: Sendable {
    case squares, absolute, maximumAbsolute, power

    var c: ck_norm_kind {
        switch self {
        case .squares: CK_NORM_KIND_SQUARES
        case .absolute: CK_NORM_KIND_ABS
        case .maximumAbsolute: CK_NORM_KIND_MAX_ABS
        case .power: CK_NORM_KIND_POWER
        }
    }
}

extension Kernels {
    static func sgdStep(count: Int, parameters p: FloatPointer, momentumBuffer: FloatPointer?, gradients g: ConstFloatPointer, _ s: SGDScalars) {
        if useC {
            ck_sgd_step_f32(count, p, momentumBuffer, g, ck_sgd_scalars(
                learning_rate: s.learningRate, momentum: s.momentum, weight_decay: s.weightDecay,
                gradient_scale: s.gradientScale, one_minus_dampening: s.oneMinusDampening, nesterov: s.nesterov,
                first: s.first))
        } else {
            SwiftKernels.sgdStep(count: count, parameters: p, momentumBuffer: momentumBuffer, gradients: g, s)
        }
    }

    static func adagradStep(count: Int, parameters p: FloatPointer, sum: FloatPointer, gradients g: ConstFloatPointer, _ s: AdaGradScalars) {
        if useC {
            ck_adagrad_step_f32(count, p, sum, g, ck_adagrad_scalars(
                clr: s.clr, epsilon: s.epsilon, weight_decay: s.weightDecay, gradient_scale: s.gradientScale))
        } else {
            SwiftKernels.adagradStep(count: count, parameters: p, sum: sum, gradients: g, s)
        }
    }

    static func rmspropStep(
        count: Int, parameters p: FloatPointer, squareAverage: FloatPointer, gradientAverage: FloatPointer?,
        momentumBuffer: FloatPointer?, gradients g: ConstFloatPointer, _ s: RMSpropScalars
    ) {
        if useC {
            ck_rmsprop_step_f32(count, p, squareAverage, gradientAverage, momentumBuffer, g, ck_rmsprop_scalars(
                learning_rate: s.learningRate, alpha: s.alpha, epsilon: s.epsilon, weight_decay: s.weightDecay,
                momentum: s.momentum, gradient_scale: s.gradientScale, one_minus_alpha: s.oneMinusAlpha,
                centered: s.centered))
        } else {
            SwiftKernels.rmspropStep(
                count: count, parameters: p, squareAverage: squareAverage, gradientAverage: gradientAverage,
                momentumBuffer: momentumBuffer, gradients: g, s)
        }
    }

    static func adamStep(
        count: Int, parameters p: FloatPointer, expAvg: FloatPointer, expAvgSq: FloatPointer,
        maxExpAvgSq: FloatPointer?, gradients g: ConstFloatPointer, _ s: AdamScalars
    ) {
        if useC {
            ck_adam_step_f32(count, p, expAvg, expAvgSq, maxExpAvgSq, g, ck_adam_scalars(
                beta2: s.beta2, epsilon: s.epsilon, weight_decay: s.weightDecay, gradient_scale: s.gradientScale,
                one_minus_beta1: s.oneMinusBeta1, one_minus_beta2: s.oneMinusBeta2, step_size: s.stepSize,
                bias_correction2_sqrt: s.biasCorrection2Sqrt, decay_factor: s.decayFactor, amsgrad: s.amsgrad))
        } else {
            SwiftKernels.adamStep(
                count: count, parameters: p, expAvg: expAvg, expAvgSq: expAvgSq, maxExpAvgSq: maxExpAvgSq, gradients: g, s)
        }
    }

    /// Per-segment power sums (written to `partials`) and their combination in
    /// segment order; see ck_norm.h.
    static func normSegments(
        _ kind: NormKind, segments: [ConstFloatPointer], lengths: [Int], p: Double, partials: UnsafeMutablePointer<Double>
    ) -> Double {
        if useC {
            return segments.withUnsafeBufferPointer { s in
                lengths.withUnsafeBufferPointer { l in
                    s.withMemoryRebound(to: UnsafePointer<Float>?.self) { s in
                        ck_norm_segments_f32(kind.c, s.count, s.baseAddress, l.baseAddress, p, partials)
                    }
                }
            }
        }
        return SwiftKernels.normSegments(kind, segments: segments, lengths: lengths, p: p, partials: partials)
    }

    static func allFinite(count: Int, _ x: ConstFloatPointer) -> Bool {
        useC ? ck_all_finite_f32(count, x) : SwiftKernels.allFinite(count: count, x)
    }

    /// Adaptive gradient clipping, unit-wise; returns the number of units clipped.
    static func adaptiveClip(
        rows: Int, columns: Int, gradients g: FloatPointer, weights w: ConstFloatPointer, clipFactor: Float, epsilon: Float
    ) -> Int {
        if useC { return ck_agc_f32(rows, columns, g, w, clipFactor, epsilon) }
        return SwiftKernels.adaptiveClip(rows: rows, columns: columns, gradients: g, weights: w, clipFactor: clipFactor, epsilon: epsilon)
    }
}
