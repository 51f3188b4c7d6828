// GradKit — emulated reduced-precision storage: values and gradients rounded to fp16 or bfloat16. SPDX-License-Identifier: MIT

/// A floating-point format narrower than `Float` that a tensor can be stored
/// in, emulated: values are rounded to the format and kept as `Float`, so
/// that every later operation sees exactly what the narrow format could hold
/// (the arithmetic itself stays in FP32, as in mixed-precision kernels that
/// accumulate in FP32).
///
/// | format    | bits (sign, exponent, mantissa) | largest finite | smallest normal | smallest subnormal |
/// |-----------|---------------------------------|----------------|-----------------|--------------------|
/// | float16   | 1, 5, 10                        | 65504          | 2⁻¹⁴ ≈ 6.1e-5   | 2⁻²⁴ ≈ 6.0e-8      |
/// | bfloat16  | 1, 8, 7                         | ≈ 3.39e38      | 2⁻¹²⁶ ≈ 1.2e-38 | 2⁻¹³³ ≈ 9.2e-41    |
///
/// Rounding is to nearest, ties to even (IEEE 754's default, and what a
/// conversion on a GPU does): fp16 flushes magnitudes below 2⁻²⁵ to ±0 and
/// turns magnitudes of 65520 and above into ±∞; bfloat16 keeps Float's
/// exponent range and only shortens the mantissa. NaN stays NaN.
///
/// bfloat16 storage keeps Float's subnormals (rounded like any value), as
/// PyTorch's `tensor.to(torch.bfloat16)` does. The operand rounding of
/// ``MatmulPrecision/bfloat16`` differs there: it is `vcvtneps2bf16`'s, which
/// turns every Float subnormal (magnitudes below 2⁻¹²⁶) into a signed zero.
public enum StorageFormat: String, Sendable, CaseIterable {
    /// IEEE 754 binary16 (`Float16`, PyTorch's `torch.float16`).
    case float16
    /// Google's brain floating point (PyTorch's `torch.bfloat16`): Float's top 16 bits.
    case bfloat16

    /// `value` rounded to the nearest value of the format (ties to even), as a `Float`.
    @inline(__always)
    public func round(_ value: Float) -> Float {
        guard value.isFinite else { return value }
        switch self {
        case .float16:
            let magnitude = Swift.abs(value)
            // Halfway between 65504 and 2^16 rounds to the even 2^16: past the largest finite.
            if magnitude >= 65520 { return value < 0 ? -.infinity : .infinity }
            // Below 2^-14 fp16 is subnormal: a fixed grid of 2^-24, and scaling by 2^24 is exact.
            if magnitude < 0x1p-14 { return (value * 0x1p24).rounded(.toNearestOrEven) * 0x1p-24 }
            return Float(bitPattern: roundingAwayLowBits(value.bitPattern, 13))
        case .bfloat16:
            return Float(bitPattern: roundingAwayLowBits(value.bitPattern, 16))
        }
    }
}

/// `bits` (a Float's pattern) with its lowest `count` mantissa bits rounded
/// away, to nearest, ties to even; a carry into the exponent is the correct
/// rounding up (to ∞ past the largest finite value).
@inline(__always)
private func roundingAwayLowBits(_ bits: UInt32, _ count: UInt32) -> UInt32 {
    let half: UInt32 = (1 << (count - 1)) - 1
    let rounded = bits &+ half &+ ((bits >> count) & 1)
    return rounded & ~((1 << count) - 1)
}

extension Tensor {
    /// The tensor as `format` would store it: every element rounded with
    /// ``StorageFormat/round(_:)``. Recorded, and the gradient flowing back
    /// through it is rounded to `format` too, so that inserting it after an
    /// operation stores both the operation's output and the gradient with
    /// respect to that output in the narrow format:
    ///
    /// ```
    /// forward:   y  = round(x)
    /// backward:  dx = round(dy)
    /// ```
    /// The backward is not the derivative of the rounding (which is 0 almost
    /// everywhere): as in real reduced-precision training, the gradient is
    /// the FP32 one, stored narrow. Rounding is idempotent, so storing an
    /// already-stored value changes nothing.
    public func stored(as format: StorageFormat) -> Tensor {
        let y = rounded(to: format)
        return Tensor.record(y, self, op: "stored(as:)", pullback: storagePullback) { record in
            record.integer = format == .float16 ? 0 : 1
        }
    }

    /// Every element rounded to `format`, not recorded.
    func rounded(to format: StorageFormat) -> Tensor {
        let y = Tensor(uninitializedShape: shape)
        let output = y.mutablePointer
        withUnsafeBufferPointer { input in
            for i in input.indices { output[i] = format.round(input[i]) }
        }
        return y
    }
}

/// The pullback of ``Tensor/stored(as:)``: the incoming gradient, rounded to the same format.
private let storagePullback: Pullback = { record, gradient, sink in
    sink.accumulate(0, gradient.rounded(to: record.integer == 0 ? .float16 : .bfloat16))
}
