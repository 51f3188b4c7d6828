// GradKit — numbers and durations as text, one definition for the library and the command line. SPDX-License-Identifier: MIT
#if canImport(Glibc)
import Glibc
#endif

/// A fraction as a percentage with two decimals: 0.97214 → "97.21%".
package func percent(_ fraction: Float) -> String {
    guard fraction.isFinite else { return "\(fraction)" }
    let hundredths = Int(saturating: (Double(fraction) * 10000).rounded())
    let decimals = hundredths % 100
    return "\(hundredths / 100).\(decimals < 10 ? "0" : "")\(decimals)%"
}

/// Four decimals at most, without exponent for moderate values.
package func fixed(_ value: Float) -> String {
    guard value.isFinite else { return "\(value)" }
    if value != 0 && (Swift.abs(value) < 1e-3 || Swift.abs(value) >= 1e6) { return scientific(value) }
    let scaled = (Double(value) * 10000).rounded() / 10000
    var text = "\(scaled)"
    if text.hasSuffix(".0") { text.removeLast(2) }
    return text
}

/// Three significant digits in scientific notation, e.g. 3.1e-08.
package func scientific(_ value: Float) -> String { scientific(Double(value)) }

/// Three significant digits in scientific notation, e.g. 9.0e-51 (a Double's
/// whole range: a theory's prediction can leave Float's).
package func scientific(_ value: Double) -> String {
    if value == 0 { return "0" }
    if !value.isFinite { return "\(value)" }
    var exponent = Int(log10(Double(Swift.abs(value))).rounded(.down))
    var rounded = (Double(value) / pow(10, Double(exponent)) * 10).rounded() / 10
    if Swift.abs(rounded) >= 10 {  // 9.96 rounds to 10.0: write 1.0 and the next exponent
        rounded /= 10
        exponent += 1
    }
    let sign = exponent < 0 ? "-" : "+"
    let magnitude = Swift.abs(exponent)
    return "\(rounded)e\(sign)\(magnitude < 10 ? "0" : "")\(magnitude)"
}

/// `decimals` decimals, trailing zeros kept ("0.50" for 0.5 at 2), no
/// exponent: for tables and tick labels whose numbers line up.
package func fixed(_ value: Double, decimals: Int) -> String {
    guard value.isFinite else { return value.isNaN ? "NaN" : (value > 0 ? "∞" : "-∞") }
    let scale = pow(10, Double(decimals))
    let rounded = (value * scale).rounded() / scale
    if decimals <= 0 { return String(Int64(rounded)) }
    var text = "\(rounded)"
    if text.contains("e") { return shortScientific(value) }  // below 1e-4 or above 2^53: Swift writes an exponent
    if let dot = text.firstIndex(of: ".") {
        let have = text.distance(from: dot, to: text.endIndex) - 1
        if have < decimals { text += String(repeating: "0", count: decimals - have) }
    }
    return text
}

/// 1234567 → "1,234,567".
package func grouped(_ value: Int) -> String {
    let digits = String(value.magnitude)
    var result = ""
    for (i, digit) in digits.enumerated() {
        if i > 0 && (digits.count - i) % 3 == 0 { result += "," }
        result.append(digit)
    }
    return (value < 0 ? "-" : "") + result
}

/// A whole number without ".0" ("1", not "1.0"), other values as Swift prints
/// them (the shortest text that reads back to the same Float): for ranges,
/// settings and messages.
package func shortNumber(_ value: Float) -> String {
    value == value.rounded() && Swift.abs(value) < 1e7 ? String(Int64(value)) : "\(value)"
}

/// The Double version of `shortNumber(_: Float)`.
package func shortNumber(_ value: Double) -> String {
    value == value.rounded() && Swift.abs(value) < 1e15 ? String(Int64(value)) : "\(value)"
}

extension Int {
    /// `value` rounded toward zero, clamped to `Int`'s range, NaN as 0: for
    /// numbers computed from a run and shown as text, where an infinite or
    /// enormous value (a diverged run's weights) must print rather than trap
    /// as `Int(_:)` does.
    package init(saturating value: Double) {
        if value.isNaN {
            self = 0
        } else if value >= 0x1p63 {
            self = .max
        } else if value < -0x1p63 {
            self = .min
        } else {
            self = Int(value)
        }
    }
}

extension Duration {
    /// The duration in seconds.
    package var seconds: Double { Double(components.seconds) + Double(components.attoseconds) * 1e-18 }
}
