// GradKit — the report of a run: Markdown, a verdict table and SVG figures. SPDX-License-Identifier: MIT
#if canImport(Glibc)
import Glibc
#endif

/// Why a report could not be written.
public enum ReportError: Error, Equatable, CustomStringConvertible {
    /// The output directory path is empty.
    case emptyPath
    /// A file or directory of the report could not be written.
    case cannotWrite(path: String, reason: String)

    /// One line naming the path at fault and the reason.
    public var description: String {
        switch self {
        case .emptyPath: "report: the output directory path is empty"
        case .cannotWrite(let path, let reason): "\(path.shownInMessage): cannot write: \(reason)"
        }
    }
}

extension RunHistory {
    /// Writes `directory/report.md` and `directory/figures/*.svg` (the
    /// directories are created if needed; the files are written together: when
    /// one cannot be, none is replaced):
    /// - the verdict table at the latest sampled step (verdict, gradient and
    ///   weight norms, update ratio, dead or saturated units, evidence);
    /// - the depth profile: each layer's gradient norm, geometric mean over the
    ///   first and the last kept samples (log scale);
    /// - a heat map of every layer's gradient norm at every kept sample;
    /// - the first layer's gradient norm over the last layer's, over the steps;
    /// - the loss and, in its own figure, the learning rate over the steps;
    /// - when measured, the update-to-weight ratios and the dead or saturated
    ///   fractions over the steps.
    ///
    /// Captions state the numbers the figures show.
    /// - Throws: ``ReportError`` when `directory` is empty or a file cannot be written.
    public func writeReport(to directory: String) throws {
        guard !directory.isEmpty else { throw ReportError.emptyPath }
        let figuresDirectory = directory + "/figures"
        if case .failure(let error) = FileIO.createDirectories(figuresDirectory) {
            throw ReportError.cannotWrite(path: figuresDirectory, reason: error.message)
        }
        let (markdown, figures) = renderReport()
        // All or none: figures never go without the report that shows them.
        let files = figures.map { (path: figuresDirectory + "/" + $0.fileName, bytes: Array($0.svg.utf8)) }
            + [(path: directory + "/report.md", bytes: Array(markdown.utf8))]
        do {
            try FileIO.writeAtomically(files)
        } catch {
            throw ReportError.cannotWrite(path: error.path ?? directory, reason: error.message)
        }
    }

    /// The report's Markdown and its figures (file names under `figures/`);
    /// visible to the package's fuzzers, which render reports without writing them.
    package func renderReport() -> (markdown: String, figures: [ReportFigure]) {
        var md = ["# Gradient health report", "", summary, ""]
        md.append("**Verdict:** " + verdictSentence)
        md.append("")
        md += verdictTable
        var figures: [ReportFigure] = []
        for figure in [depthProfile, heatMap, firstToLastRatio, lossFigure, learningRateFigure, updateRatioFigure, activationFigure] {
            guard let figure else { continue }
            figures.append(figure)
        }
        if !figures.isEmpty {
            md.append("## Figures")
            md.append("")
            for figure in figures {
                md.append("![\(figure.caption.escapingBrackets)](figures/\(figure.fileName))")
                md.append("")
                md.append("*\(figure.caption)*")
                md.append("")
            }
        }
        return (md.joined(separator: "\n"), figures)
    }

    // MARK: Text

    private var summary: String {
        var parts = ["\(stepCount) step\(stepCount == 1 ? "" : "s")"]
        if skippedStepCount > 0 { parts[0] += " (\(skippedStepCount) skipped: NaN or infinity in the gradients or the loss)" }
        parts.append("\(layers.count) monitored layer\(layers.count == 1 ? "" : "s")")
        var kept = "\(samples.count) sampled step\(samples.count == 1 ? "" : "s") kept"
        if let first = samples.first, let last = samples.last { kept += " (steps \(first.step)–\(last.step)" + (sampleStride > 1 ? ", every \(ordinal(sampleStride)) sampled step)" : ")") }
        parts.append(kept)
        if stepStride > 1 { parts.append("loss and learning rate kept for every \(ordinal(stepStride)) step") }
        return parts.joined(separator: ", ") + "."
    }

    private var verdictSentence: String {
        var sentence: String
        if let last = latestSample, !layers.isEmpty {
            let judged = zip(layers, last.layers).filter { $0.1.verdict != nil }
            let unhealthy = judged.filter { $0.1.verdict != .healthy }
            if judged.isEmpty {
                sentence = "No verdicts were recorded for step \(last.step)."
            } else if unhealthy.isEmpty {
                sentence = judged.count == layers.count
                    ? "At step \(last.step) every monitored layer (\(layers.count)) is healthy."
                    : "At step \(last.step) the \(judged.count) judged layers are healthy."
            } else {
                let list = unhealthy.map { "layer \($0.0.index) (\($0.0.path.markdownLiteral)) \($0.1.verdict!.rawValue)" }
                let healthy = judged.count - unhealthy.count
                sentence = "At step \(last.step): " + list.joined(separator: "; ") + (healthy > 0 ? "; \(healthy) other\(healthy == 1 ? "" : "s") healthy." : ".")
            }
        } else if layers.isEmpty {
            sentence = "No monitored layers (none with weight matrices): no per-layer verdict."
        } else {
            sentence = "No sampled step with finite gradients: no per-layer verdict."
        }
        if skippedStepCount > 0 { sentence += " \(skippedStepCount) of \(stepCount) steps were skipped by the non-finite guard." }
        return sentence
    }

    private var verdictTable: [String] {
        guard let last = latestSample, !layers.isEmpty else { return [] }
        var md = ["## Layers at step \(last.step)", ""]
        md.append("| layer | path | kind | activation | verdict | ‖g‖ | ‖w‖ | update/weight | dead / saturated | evidence |")
        md.append("|---|---|---|---|---|---|---|---|---|---|")
        for (layer, values) in zip(layers, last.layers) {
            var units = "—"
            if let dead = values.deadFraction { units = "dead \(percentage(dead))" }
            if let saturated = values.saturatedFraction { units = "saturated \(percentage(saturated))" }
            let cells = [
                "\(layer.index)", layer.path, layer.kind, layer.activation ?? "—", values.verdict?.rawValue ?? "—",
                scientific(values.gradientNorm), values.weightNorm.map(scientific) ?? "—", values.updateRatio.map(scientific) ?? "—",
                units, values.evidence.isEmpty ? "—" : values.evidence.joined(separator: "; "),
            ]
            md.append("| " + cells.map(\.markdownLiteral).joined(separator: " | ") + " |")
        }
        md.append("")
        return md
    }

    // MARK: Figures

    /// Kept samples averaged at each end of the run for the depth profile.
    private var profileWindow: Int { Swift.max(1, Swift.min(20, samples.count / 2)) }

    private var depthProfile: ReportFigure? {
        guard !samples.isEmpty, !layers.isEmpty else { return nil }
        let w = profileWindow
        let first = samples.prefix(w), last = samples.suffix(w)
        func profile(_ window: ArraySlice<Sample>) -> [Double?] {
            layers.indices.map { i in
                let mean = geometricMean(window.map { $0.layers[i].gradientNorm })
                return mean > 0 ? mean : nil
            }
        }
        func label(_ window: ArraySlice<Sample>) -> String {
            let range = window.first!.step == window.last!.step ? "step \(window.first!.step)" : "steps \(window.first!.step)–\(window.last!.step)"
            return window.count == 1 ? range : "mean of \(window.count) samples, \(range)"
        }
        let early = profile(first), recent = profile(last)
        var series = [Series(label(last), points: recent.enumerated().map { (Double($0.offset + 1), $0.element ?? .nan) })]
        if samples.count > 1 {
            series.insert(Series(label(first), points: early.enumerated().map { (Double($0.offset + 1), $0.element ?? .nan) }, dashed: true), at: 0)
        }
        let plot = LinePlot(title: "Gradient norm by layer", xLabel: "layer (1 = input side)", yLabel: "‖∂loss/∂W‖", series: series, logY: true)
        var caption = "Each layer's gradient norm, geometric mean over "
        caption += samples.count > 1 ? "the first and the last \(w) kept sampled step\(w == 1 ? "" : "s") (log scale)." : "the one sampled step (log scale)."
        if layers.count > 1 {
            let n = layers.count
            func ratio(_ profile: [Double?]) -> String? {
                guard let a = profile[0], let b = profile[n - 1] else { return nil }
                return scientific(Float(a / b))
            }
            if let now = ratio(recent) {
                caption += " Layer 1's norm over layer \(n)'s: \(now) in the last window"
                caption += samples.count > 1 ? (ratio(early).map { ", \($0) in the first." } ?? ".") : "."
            } else {
                caption += " Layer 1's or layer \(n)'s norm was zero at every step of the last window."
            }
        }
        return ReportFigure(fileName: "depth-profile.svg", caption: caption, svg: plot.svg)
    }

    private var heatMap: ReportFigure? {
        guard let first = samples.first, let last = samples.last, !layers.isEmpty else { return nil }
        let values = layers.indices.map { i in gradientNorms(layer: i).map(Double.init) }
        let positive = values.joined().filter { $0 > 0 && $0.isFinite }
        let map = HeatMap(
            title: "‖∂loss/∂W‖ per layer and step", xLabel: "step", yLabel: "layer (1 = input side)",
            rowLabels: layers.map { "\($0.index)" }, values: values,
            xRange: Double(first.step)...Double(Swift.max(last.step, first.step + 1)), colorLabel: "‖g‖")
        var caption = "Gradient norm of each layer (rows, layer 1 at the top) at each of the \(samples.count) kept sampled steps, on a log color scale"
        if let low = positive.min(), let high = positive.max() {
            caption += ": from \(scientific(Float(low))) to \(scientific(Float(high)))"
        }
        let zeros = values.joined().filter { !($0 > 0 && $0.isFinite) }.count
        caption += zeros > 0 ? "; \(zeros) zero or missing cell\(zeros == 1 ? "" : "s") in grey." : "."
        return ReportFigure(fileName: "gradient-heatmap.svg", caption: caption, svg: map.svg)
    }

    private var firstToLastRatio: ReportFigure? {
        guard layers.count >= 2, !samples.isEmpty else { return nil }
        let n = layers.count
        let points = samples.map { sample -> (x: Double, y: Double) in
            let a = Double(sample.layers[0].gradientNorm), b = Double(sample.layers[n - 1].gradientNorm)
            return (Double(sample.step), a > 0 && b > 0 ? a / b : .nan)
        }
        let plot = LinePlot(
            title: "Layer 1 / layer \(n) gradient norm", xLabel: "step", yLabel: "ratio",
            series: [Series("‖g₁‖ / ‖g\(n)‖", points: points.filter { $0.y.isFinite })], logY: true, reference: (1, "equal"))
        let finite = points.filter { $0.y.isFinite }
        var caption = "The first layer's gradient norm over the last layer's (layer \(n)) at each kept sampled step (log scale)"
        if let start = finite.first, let end = finite.last {
            caption += ": \(scientific(Float(start.y))) at step \(Int(saturating: start.x)), \(scientific(Float(end.y))) at step \(Int(saturating: end.x))"
            caption += ", between \(scientific(Float(finite.map(\.y).min()!))) and \(scientific(Float(finite.map(\.y).max()!)))."
        } else {
            caption += ": undefined at every step (a zero norm)."
        }
        if finite.count < points.count { caption += " \(points.count - finite.count) step\(points.count - finite.count == 1 ? "" : "s") with a zero norm left out." }
        return ReportFigure(fileName: "first-last-ratio.svg", caption: caption, svg: plot.svg)
    }

    private var lossFigure: ReportFigure? {
        let points = steps.filter { !$0.skipped && $0.loss.isFinite }.map { (x: Double($0.step), y: Double($0.loss)) }
        guard let start = points.first, let end = points.last else { return nil }
        let lowest = points.min { $0.y < $1.y }!
        let positive = points.allSatisfy { $0.y > 0 }
        let logY = positive && lowest.y > 0 && (points.map(\.y).max()! / lowest.y) >= 100
        let plot = LinePlot(title: "Training loss", xLabel: "step", yLabel: "loss", series: [Series("loss", points: points)], logY: logY)
        var caption = "Training loss at each \(stepStride > 1 ? "kept (every \(ordinal(stepStride))) " : "")step\(logY ? " (log scale)" : ""): "
        caption += "\(fixed(Float(start.y))) at step \(Int(saturating: start.x)), \(fixed(Float(end.y))) at step \(Int(saturating: end.x)), lowest \(fixed(Float(lowest.y))) at step \(Int(saturating: lowest.x))."
        let left = steps.count - points.count
        if left > 0 { caption += " \(left) skipped or non-finite step\(left == 1 ? "" : "s") left out." }
        return ReportFigure(fileName: "loss.svg", caption: caption, svg: plot.svg)
    }

    private var learningRateFigure: ReportFigure? {
        let points = steps.compactMap { s in s.learningRate.map { (x: Double(s.step), y: Double($0)) } }
        guard let start = points.first, let end = points.last else { return nil }
        let low = points.map(\.y).min()!, high = points.map(\.y).max()!
        let logY = low > 0 && high / low >= 10
        let plot = LinePlot(title: "Learning rate", xLabel: "step", yLabel: "learning rate", series: [Series("learning rate", points: points)], logY: logY)
        var caption = "Learning rate at each \(stepStride > 1 ? "kept " : "")step: "
        if low == high {
            caption += "constant at \(scientific(Float(low)))."
        } else {
            caption += "\(scientific(Float(start.y))) at step \(Int(saturating: start.x)), \(scientific(Float(end.y))) at step \(Int(saturating: end.x)), "
            caption += "between \(scientific(Float(low))) and \(scientific(Float(high)))\(logY ? " (log scale)" : "")."
        }
        return ReportFigure(fileName: "learning-rate.svg", caption: caption, svg: plot.svg)
    }

    /// At most eight layers for figures with a line per layer: evenly spaced, first and last included.
    private var plottedLayers: [Int] {
        let n = layers.count
        guard n > 8 else { return Array(0..<n) }
        return (0..<8).map { Int((Double($0) * Double(n - 1) / 7).rounded()) }
    }

    private var updateRatioFigure: ReportFigure? {
        let chosen = plottedLayers.filter { i in samples.contains { $0.layers[i].updateRatio != nil } }
        guard !chosen.isEmpty else { return nil }
        let series = chosen.map { i in
            Series("layer \(layers[i].index)", points: samples.compactMap { s in s.layers[i].updateRatio.map { (Double(s.step), Double($0)) } })
        }
        let plot = LinePlot(title: "Update-to-weight ratio", xLabel: "step", yLabel: "‖Δw‖ / ‖w‖", series: series, logY: true)
        var caption = "‖Δw‖/‖w‖ of each step at the kept sampled steps (log scale)"
        if chosen.count < layers.count { caption += ", \(chosen.count) of \(layers.count) layers" }
        let latest = chosen.compactMap { i in samples.last(where: { $0.layers[i].updateRatio != nil }).map { (i, $0.layers[i].updateRatio!) } }
        if let low = latest.min(by: { $0.1 < $1.1 }), let high = latest.max(by: { $0.1 < $1.1 }) {
            caption += "; at the last measurement from \(scientific(low.1)) (layer \(layers[low.0].index)) to \(scientific(high.1)) (layer \(layers[high.0].index))"
        }
        return ReportFigure(fileName: "update-ratio.svg", caption: caption + ".", svg: plot.svg)
    }

    private var activationFigure: ReportFigure? {
        func fraction(_ s: LayerSample) -> Float? { s.deadFraction ?? s.saturatedFraction }
        let chosen = plottedLayers.filter { i in samples.contains { fraction($0.layers[i]) != nil } }
        guard !chosen.isEmpty else { return nil }
        func what(_ i: Int) -> String {
            samples.contains { $0.layers[i].deadFraction != nil } ? "dead" : "saturated"
        }
        let series = chosen.map { i in
            Series("layer \(layers[i].index) \(what(i)) (\(layers[i].activation ?? "?"))",
                   points: samples.compactMap { s in fraction(s.layers[i]).map { (Double(s.step), Double($0)) } })
        }
        let plot = LinePlot(
            title: "Dead and saturated units", xLabel: "step", yLabel: "fraction of units", series: series, yLimits: 0...1)
        let latest = chosen.compactMap { i in samples.last(where: { fraction($0.layers[i]) != nil }).map { "layer \(layers[i].index) \(what(i)) \(percentage(fraction($0.layers[i])!))" } }
        let caption = "The fraction of dead ReLU units (zero for the whole batch) or saturated sigmoid/tanh outputs after each layer, at the kept sampled steps; at the last measurement: "
            + latest.joined(separator: ", ") + "."
        return ReportFigure(fileName: "activations.svg", caption: caption, svg: plot.svg)
    }
}

/// One SVG figure of a report.
package struct ReportFigure: Sendable {
    /// The file name under `figures/`.
    package var fileName: String
    package var caption: String
    package var svg: String
}

/// 0.123 → "12%"; a value a log holds beyond Int's range (or not finite) as it is.
private func percentage(_ fraction: Float) -> String {
    if let percent = Int(exactly: (fraction * 100).rounded()) { return "\(percent)%" }
    return "\(Double(fraction) * 100)%"
}

/// 2 → "2nd", 4 → "4th".
private func ordinal(_ n: Int) -> String {
    let suffix = (n % 100 >= 11 && n % 100 <= 13) ? "th" : (n % 10 == 1 ? "st" : n % 10 == 2 ? "nd" : n % 10 == 3 ? "rd" : "th")
    return "\(n)\(suffix)"
}

extension String {
    /// Text read from a log as Markdown shows it, literally, in a table cell: control characters
    /// escaped (a terminal showing report.md obeys none), then a backslash before every character
    /// Markdown reads as syntax (emphasis, code, links and images through `[`, raw HTML, entities,
    /// the cell's `|`).
    fileprivate var markdownLiteral: String {
        var out = ""
        for character in escapingControlCharacters {
            if "\\`*_[]<>&|~".contains(character) { out.append("\\") }
            out.append(character)
        }
        return out
    }
    /// Image alt text cannot hold a bare "]".
    fileprivate var escapingBrackets: String { split(separator: "]", omittingEmptySubsequences: false).joined(separator: "\\]") }
}
