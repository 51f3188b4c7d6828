// GradKit — finite-difference gradient checking, like PyTorch's gradcheck. SPDX-License-Identifier: MIT

/// The outcome of ``gradientCheck(_:stepSize:absoluteTolerance:relativeTolerance:of:)``.
public struct GradientCheckResult: Sendable, CustomStringConvertible {
    /// One Jacobian entry where the analytic and numeric derivatives disagree.
    public struct Mismatch: Sendable, CustomStringConvertible {
        /// Which parameter (or input), in the order given.
        public var input: Int
        /// The element of that parameter, row-major.
        public var element: Int
        /// The element of the function's output, row-major.
        public var output: Int
        /// d output / d element from `backward()`.
        public var analytic: Double
        /// The finite-difference estimate (for a non-smooth entry: the nearest
        /// one-sided slope).
        public var numeric: Double
        /// True when the function has a kink at this point in this direction.
        public var isNonSmooth: Bool

        /// `input I[E] -> output[O]: analytic A, numeric N`, marked when the point is non-smooth.
        public var description: String {
            "input \(input)[\(element)] -> output[\(output)]: analytic \(analytic), numeric \(numeric)"
                + (isNonSmooth ? " (non-smooth point)" : "")
        }
    }

    /// Jacobian entries compared.
    public var checkedCount = 0
    /// Entries where the function is not differentiable at the point (a kink
    /// within the step), checked against the one-sided slopes instead.
    public var nonSmoothCount = 0
    /// The largest |analytic − numeric| / tolerance seen; ≤ 1 passes.
    public var worstErrorRatio = 0.0
    /// Every failing entry.
    public var mismatches: [Mismatch] = []

    /// True when every entry agrees within tolerance.
    public var passed: Bool { mismatches.isEmpty }

    /// A verdict line with the counts and the worst error-to-tolerance ratio, then up to 10 mismatches.
    public var description: String {
        let head = passed ? "gradient check passed" : "gradient check FAILED (\(mismatches.count) entries)"
        var text = "\(head): \(checkedCount) entries, \(nonSmoothCount) non-smooth, worst error/tolerance \(worstErrorRatio)"
        for mismatch in mismatches.prefix(10) { text += "\n  " + mismatch.description }
        return text
    }
}

/// Compares the gradients `backward()` computes for `function` with central
/// finite differences, entry by entry of the Jacobian (PyTorch's `gradcheck`).
///
/// For every output element i, `function()` is run and back-propagated with a
/// one-hot seed: row i of the analytic Jacobian. For every parameter element j,
/// `function()` is evaluated (without gradients) at x ± h and x ± h/2, and the
/// two central differences are combined by Richardson extrapolation,
/// `(4 D(h/2) − D(h)) / 3`, which cancels the O(h²) error. Differences use the
/// perturbations actually representable in Float and are taken in Double.
///
/// An entry passes when `|analytic − numeric| ≤ atol + rtol·|numeric| + noise`,
/// where `noise = 16 ulp(max |y|) / h` bounds Float rounding in `function`
/// amplified by the division by h. The defaults suit Float32 functions of
/// moderate size (|values| ≲ 10).
///
/// Non-smooth points are handled deliberately: where the two central
/// differences disagree, or the one-sided slopes keep a gap that does not
/// shrink with h (a kink such as ReLU's at 0 within the step), the analytic
/// derivative must lie between the one-sided slopes — a subgradient check.
///
/// Parameter values are restored afterwards, and so are their gradients.
/// `function` must be deterministic (no dropout).
///
/// - Parameters:
///   - parameters: the parameters to differentiate with respect to.
///   - stepSize: h relative to max(1, |x|).
///   - absoluteTolerance: the absolute part of the tolerance (see above).
///   - relativeTolerance: the relative part of the tolerance (see above).
///   - function: computes the output from the parameters' current values.
public func gradientCheck(
    _ parameters: [Parameter], stepSize: Float = 1e-2, absoluteTolerance: Double = 1e-3,
    relativeTolerance: Double = 1e-2, of function: () -> Tensor
) -> GradientCheckResult {
    precondition(stepSize > 0, "gradientCheck: stepSize must be > 0, got \(stepSize)")
    let savedGradients = parameters.map(\.gradient)
    defer { for (p, g) in zip(parameters, savedGradients) { p.gradient = g } }

    let base = withoutGradients { function() }
    let outputs = base.scalarCount
    let baseValues = base.scalars.map(Double.init)

    // Analytic Jacobian, one row per output element.
    var analytic = [[[Double]]](repeating: [], count: outputs) // [output][input][element]
    for i in 0..<outputs {
        for p in parameters { p.gradient = nil }
        let y = function()
        var seed = [Float](repeating: 0, count: outputs)
        seed[i] = 1
        if y.requiresGradient { y.backward(seed: Tensor(shape: y.shape, scalars: seed)) }
        analytic[i] = parameters.map { p in
            p.gradient?.scalars.map(Double.init) ?? [Double](repeating: 0, count: p.scalarCount)
        }
    }

    var result = GradientCheckResult()
    for (inputIndex, parameter) in parameters.enumerated() {
        let original = parameter.value.scalars
        for element in 0..<parameter.scalarCount {
            let x0 = original[element]
            let h = stepSize * Swift.max(1, Swift.abs(x0))
            func evaluate(_ x: Float) -> (x: Double, y: [Double]) {
                parameter.updateValue { $0[element] = x }
                let y = withoutGradients { function() }
                return (Double(x), y.scalars.map(Double.init))
            }
            let p1 = evaluate(x0 + h), m1 = evaluate(x0 - h)
            let p2 = evaluate(x0 + h / 2), m2 = evaluate(x0 - h / 2)
            parameter.updateValue { $0[element] = x0 }
            let x = Double(x0)

            for output in 0..<outputs {
                let y0 = baseValues[output]
                let d1 = (p1.y[output] - m1.y[output]) / (p1.x - m1.x)
                let d2 = (p2.y[output] - m2.y[output]) / (p2.x - m2.x)
                let numeric = (4 * d2 - d1) / 3
                let magnitude = [y0, p1.y[output], m1.y[output], p2.y[output], m2.y[output]].map(Swift.abs).max()!
                let noise = 16 * Double(Float(magnitude).ulp) / Double(h)
                let tolerance = absoluteTolerance + relativeTolerance * Swift.abs(numeric) + noise
                let a = analytic[output][inputIndex][element]

                let slopes = [
                    (p1.y[output] - y0) / (p1.x - x), (y0 - m1.y[output]) / (x - m1.x),
                    (p2.y[output] - y0) / (p2.x - x), (y0 - m2.y[output]) / (x - m2.x),
                ]
                let gapWide = slopes[0] - slopes[1], gapNarrow = slopes[2] - slopes[3]
                let nonSmooth =
                    Swift.abs(d1 - d2) > tolerance
                    || (Swift.abs(gapNarrow) > tolerance && Swift.abs(gapNarrow - gapWide / 2) > 0.25 * Swift.abs(gapWide))

                result.checkedCount += 1
                let error: Double
                var reference = numeric
                if nonSmooth {
                    result.nonSmoothCount += 1
                    let low = slopes.min()!, high = slopes.max()!
                    error = a < low ? low - a : (a > high ? a - high : 0)
                    reference = a < low ? low : (a > high ? high : a)
                } else {
                    error = Swift.abs(a - numeric)
                }
                let ratio = error.isNaN ? .infinity : error / tolerance
                result.worstErrorRatio = Swift.max(result.worstErrorRatio, ratio)
                if !(ratio <= 1) {
                    result.mismatches.append(
                        .init(
                            input: inputIndex, element: element, output: output, analytic: a, numeric: reference,
                            isNonSmooth: nonSmooth))
                }
            }
        }
    }
    return result
}

/// ``gradientCheck(_:stepSize:absoluteTolerance:relativeTolerance:of:)`` for a
/// function of tensors: the derivatives are taken with respect to `inputs`.
public func gradientCheck(
    at inputs: [Tensor], stepSize: Float = 1e-2, absoluteTolerance: Double = 1e-3,
    relativeTolerance: Double = 1e-2, of function: ([Tensor]) -> Tensor
) -> GradientCheckResult {
    let parameters = inputs.enumerated().map { Parameter($0.element, name: "input \($0.offset)") }
    return gradientCheck(
        parameters, stepSize: stepSize, absoluteTolerance: absoluteTolerance, relativeTolerance: relativeTolerance
    ) {
        function(parameters.map(\.value))
    }
}
