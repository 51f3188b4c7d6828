// GradKitLab — how the report prints numbers. SPDX-License-Identifier: MIT
#if canImport(Glibc)
import Glibc
#endif
import GradKit

/// A percentage with one decimal: 0.9721 → "97.2%"; "—" for no value.
func percent(_ fraction: Double) -> String { fraction.isFinite ? fixed(fraction * 100, decimals: 1) + "%" : "—" }

/// Percentage points with one decimal and a sign: 0.031 → "+3.1 points".
func points(_ difference: Double) -> String {
    guard difference.isFinite else { return "—" }
    return (difference >= 0 ? "+" : "−") + fixed(Swift.abs(difference) * 100, decimals: 1) + " points"
}

/// Two significant digits in scientific notation: "3.1e-8"; "—" for NaN.
func sci(_ value: Double) -> String {
    guard value.isFinite else { return value.isNaN ? "—" : "∞" }
    return value == 0 ? "0" : shortScientific(value)
}

/// "1,234×" or "0.01×".
func times(_ ratio: Double) -> String {
    guard ratio.isFinite else { return ratio.isNaN ? "—" : "∞×" }
    if ratio >= 1e5 || ratio < 1e-2 { return sci(ratio) + "×" }
    if ratio >= 100 { return grouped(Int(ratio.rounded())) + "×" }
    return fixed(ratio, decimals: ratio >= 10 ? 0 : 1) + "×"
}

/// A learning rate as written in code: 0.01, 3e-4.
func rate(_ value: Float) -> String {
    let v = Double(value)
    if v >= 1e-3 {
        var text = "\((v * 1e6).rounded() / 1e6)"
        if text.hasSuffix(".0") { text.removeLast(2) }
        return text
    }
    return shortScientific(v)
}

/// "a, b and c"; "none" for no names.
func list(_ names: [String]) -> String {
    switch names.count {
    case 0: "none"
    case 1: names[0]
    default: names.dropLast().joined(separator: ", ") + " and " + names.last!
    }
}

/// "91.6% (88.9%–95.3%)": a median and, when they differ, the range over the seeds.
func describe(_ range: Range3, _ format: (Double) -> String) -> String {
    let median = format(range.median), low = format(range.min), high = format(range.max)
    return low == high ? median : "\(median) (\(low)–\(high))"
}

extension Metric {
    /// The metric's median and range over the seeds.
    func describe(_ range: Range3) -> String { GradKitLab.describe(range, format) }
}
