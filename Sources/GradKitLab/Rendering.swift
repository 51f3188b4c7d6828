// GradKitLab — what every experiment's section shows: the configuration table, the rules, curves over the seeds. SPDX-License-Identifier: MIT
import GradKit

/// A column an experiment adds to its configuration table.
struct Column: Sendable {
    var header: String
    var value: @Sendable (ConfigurationSummary) -> String
}

extension Analysis {
    /// One row per configuration: its role, the learning rates validation
    /// chose, the metric over the seeds, the experiment's own columns and the verdict.
    func table(_ columns: [Column] = []) -> ReportBlock {
        let hasRates = summaries.contains { !$0.configuration.learningRates.isEmpty }
        var header = ["configuration", "role"] + (hasRates ? ["learning rate (seeds)"] : []) + ["\(metric.name) (range)"]
        header += columns.map(\.header) + ["verdict"]
        let rows = summaries.map { s in
            [s.name, s.role.rawValue] + (hasRates ? [chosenRates(s)] : []) + [metric.describe(s.scoreRange)]
                + columns.map { $0.value(s) } + [verdictCell(s)]
        }
        return .table(header: header, rows: rows)
    }

    /// "0.01 (4), 0.003 (1)": each rate validation chose and at how many seeds.
    func chosenRates(_ summary: ConfigurationSummary) -> String {
        let rates = summary.trials.compactMap(\.learningRate)
        guard !rates.isEmpty else { return "—" }
        let counts = Dictionary(grouping: rates, by: { $0 }).mapValues(\.count)
        let ordered = counts.sorted { $0.value != $1.value ? $0.value > $1.value : $0.key < $1.key }
        if summary.configuration.learningRates.count == 1 { return rate(ordered[0].key) }
        return ordered.map { "\(rate($0.key)) (\($0.value))" }.joined(separator: ", ")
    }

    /// "helps (5 of 5)", "mixed: helps in 3 of 5", "reference".
    func verdictCell(_ summary: ConfigurationSummary) -> String {
        let v = summary.verdict
        guard let claim = summary.claim else { return v.label }
        if v.holds { return "**\(v.label)** (\(v.holding) of \(v.seeds))" }
        if v.fails { return "\(v.label) (\(v.seeds - v.holding) of \(v.seeds))" }
        return "mixed: \(claim.holds) in \(v.holding) of \(v.seeds)"
    }

    /// The grids and the verdict rules in words, for the text under the table.
    var rulesText: String {
        var lines: [String] = []
        var grids: [String: [String]] = [:], order: [String] = []
        for s in summaries where s.configuration.learningRates.count > 1 {
            let grid = "{" + s.configuration.learningRates.map(rate).joined(separator: ", ") + "}"
            if grids[grid] == nil { order.append(grid) }
            grids[grid, default: []].append(s.name)
        }
        if !order.isEmpty {
            lines.append("Learning-rate grids: " + order.map { "\($0) for \(list(grids[$0]!))" }.joined(separator: "; ") + ".")
        }
        var rules: [String: (words: String, names: [String])] = [:], ruleOrder: [String] = []
        for s in summaries {
            guard let claim = s.claim else { continue }
            if rules[claim.rule] == nil {
                ruleOrder.append(claim.rule)
                rules[claim.rule] = ("\"\(claim.holds)\" / \"\(claim.fails)\"", [])
            }
            rules[claim.rule]!.names.append(s.name)
        }
        for rule in ruleOrder {
            lines.append("Verdict \(rules[rule]!.words) (\(list(rules[rule]!.names))): at a seed, the claim holds when \(rule).")
        }
        return lines.joined(separator: " ")
    }
}

/// The median over several runs' curves at each x, with their smallest and
/// largest value as a band. A curve that ended early (a run stopped by a
/// non-finite gradient) counts as `pastEnd` beyond its end: +∞ makes the
/// median break off, with a cross, once most runs have stopped; NaN leaves
/// such runs out.
func medianSeries(
    _ name: String, _ curves: [[Double]], x: (Int) -> Double = { Double($0 + 1) }, pastEnd: Double, dashed: Bool = false
) -> Series {
    let length = curves.map(\.count).max() ?? 0
    var points: [(x: Double, y: Double)] = [], band: [(x: Double, low: Double, high: Double)] = []
    for i in 0..<length {
        let values = curves.map { i < $0.count ? $0[i] : pastEnd }.filter { !$0.isNaN }
        guard !values.isEmpty else { continue }
        let range = Range3(values)
        points.append((x(i), range.median))
        let finite = values.filter(\.isFinite)
        if curves.count > 1, let low = finite.min(), let high = finite.max() { band.append((x(i), low, high)) }
    }
    return Series(name, points: points, dashed: dashed, band: band)
}

/// The seed whose score is the median (the middle one when sorted; NaN last),
/// for figures that show a single run.
func medianSeedIndex(_ summary: ConfigurationSummary) -> Int {
    let order = summary.scores.indices.sorted { a, b in
        let x = summary.scores[a], y = summary.scores[b]
        return x.isNaN ? false : y.isNaN ? true : x < y
    }
    return order[order.count / 2]
}

extension Column {
    /// Scale-free evidence of a network's gradient health, median over the
    /// seeds: the first layer's gradient norm over the last layer's, and the
    /// first layer's update-to-weight ratio per step (geometric means over
    /// training, so a run that stopped counts up to its last finite sample).
    /// "—" for a configuration with fewer than two monitored layers.
    static let gradientHealth = [
        Column(header: "‖g_first‖ / ‖g_last‖ (median)") { s in
            monitored(s) ? sci(Range3(s.trials.map(\.firstToLastRatio)).median) : "—"
        },
        Column(header: "layer-1 update / weight (median)") { s in
            monitored(s) ? sci(Range3(s.trials.map { $0.meanUpdateRatio(layer: 1) }).median) : "—"
        },
    ]

    private static func monitored(_ s: ConfigurationSummary) -> Bool { s.trials.allSatisfy { $0.layerGradientNorms.count >= 2 } }
}
