// gradkit-bench — timing harness. SPDX-License-Identifier: MIT
import GradKit

/// One measured figure.
struct Measurement {
    var name: String
    var variant: String
    /// Seconds per call.
    var median: Double
    var minimum: Double
    /// What one call does, for throughput figures.
    var unit: Unit
    var work: Double
    /// For streaming kernels: the a*x+y bandwidth measured just before, and
    /// this figure's fraction of it.
    var roofline: (bandwidth: Double, fraction: Double)? = nil

    enum Unit: String { case flops = "GFLOP/s", bytes = "GB/s", operations = "ns/op" }

    /// GFLOP/s or GB/s from the minimum time (the least disturbed run); ns per
    /// operation from the median.
    var throughput: Double {
        switch unit {
        case .flops, .bytes: work / minimum / 1e9
        case .operations: median / work * 1e9
        }
    }
}

/// Runs `body` until about `budget` seconds have passed (at least 5 times,
/// after `warmup` unmeasured runs) and returns the median and minimum.
func time(budget: Double = 0.4, warmup: Int = 3, _ body: () -> Void) -> (median: Double, minimum: Double) {
    for _ in 0..<warmup { body() }
    let clock = ContinuousClock()
    var samples: [Double] = []
    let start = clock.now
    repeat {
        samples.append(seconds(body))
    } while samples.count < 5 || (start.duration(to: clock.now) < .milliseconds(Int(budget * 1000)) && samples.count < 100_000)
    samples.sort()
    return (samples[samples.count / 2], samples[0])
}

/// The wall-clock seconds one call of `body` takes.
func seconds(_ body: () -> Void) -> Double {
    let clock = ContinuousClock()
    let start = clock.now
    body()
    let elapsed = start.duration(to: clock.now)
    return Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) * 1e-18
}

/// Keeps a value alive and observed so the optimizer cannot drop the work.
@inline(never)
func consume<T>(_ value: T) { withExtendedLifetime(value) {} }

func formatSeconds(_ s: Double) -> String {
    if s < 1e-6 { return String(format3(s * 1e9)) + " ns" }
    if s < 1e-3 { return String(format3(s * 1e6)) + " µs" }
    if s < 1 { return String(format3(s * 1e3)) + " ms" }
    return String(format3(s)) + " s"
}

/// A fraction as a whole percentage.
func percent(_ fraction: Double) -> String { "\(Int((fraction * 100).rounded()))%" }

/// Three significant digits without Foundation.
func format3(_ x: Double) -> String {
    if x == 0 || !x.isFinite { return "\(x)" }
    var digits = 2
    var magnitude = Swift.abs(x)
    while magnitude >= 10 && digits > 0 {
        magnitude /= 10
        digits -= 1
    }
    let scale = [1.0, 10.0, 100.0][digits]
    let rounded = (x * scale).rounded() / scale
    if digits == 0 { return String(Int(rounded)) }
    var text = String(rounded)
    if let dot = text.firstIndex(of: ".") {
        let decimals = text.distance(from: dot, to: text.endIndex) - 1
        if decimals < digits { text += String(repeating: "0", count: digits - decimals) }
    }
    return text
}

func padded(_ text: String, _ width: Int) -> String {
    text.count >= width ? text : text + String(repeating: " ", count: width - text.count)
}

func jsonString(_ text: String) -> String {
    "\"" + text.replacingAll("\\", "\\\\").replacingAll("\"", "\\\"") + "\""
}

extension String {
    func replacingAll(_ target: String, _ replacement: String) -> String {
        split(separator: Character(target), omittingEmptySubsequences: false).joined(separator: replacement)
    }
}
