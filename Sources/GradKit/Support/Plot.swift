// GradKit — SVG figures written without dependencies: line plots and heat maps. SPDX-License-Identifier: MIT
#if canImport(Glibc)
import Glibc
#endif

/// One line of a ``LinePlot``.
package struct Series: Sendable {
    package var name: String
    package var points: [(x: Double, y: Double)]
    /// Draw dashed (for references and baselines).
    package var dashed: Bool
    /// A range drawn as a pale area in the line's color behind it (for
    /// example the smallest and largest of several runs around their median);
    /// empty for none. Points that are not drawable break the area.
    package var band: [(x: Double, low: Double, high: Double)]

    package init(_ name: String, points: [(x: Double, y: Double)], dashed: Bool = false,
                 band: [(x: Double, low: Double, high: Double)] = []) {
        self.name = name
        self.points = points
        self.dashed = dashed
        self.band = band
    }

    /// y values at x = 1, 2, 3, ...
    package init(_ name: String, values: [Double], dashed: Bool = false) {
        self.init(name, points: values.enumerated().map { (Double($0.offset + 1), $0.element) }, dashed: dashed)
    }
}

/// A line plot: axes with ticks, optional log scales, a legend. Points that are
/// not finite (or not positive on a log axis) break the line; a series that
/// ends in them is marked with a cross at its last drawable point and
/// "(diverged)" in the legend.
package struct LinePlot: Sendable {
    package var title: String
    package var xLabel: String
    package var yLabel: String
    package var series: [Series]
    package var logY: Bool
    package var logX: Bool
    /// A horizontal reference line (for example chance accuracy), labeled.
    package var reference: (y: Double, label: String)?
    /// The y range shown; points beyond it are drawn at its edge (for curves
    /// that end in a spike). Nil: fit the data.
    package var yLimits: ClosedRange<Double>?

    package init(title: String, xLabel: String, yLabel: String, series: [Series], logY: Bool = false, logX: Bool = false,
                reference: (y: Double, label: String)? = nil, yLimits: ClosedRange<Double>? = nil) {
        self.yLimits = yLimits
        self.title = title
        self.xLabel = xLabel
        self.yLabel = yLabel
        self.series = series
        self.logY = logY
        self.logX = logX
        self.reference = reference
    }

    static let plotWidth = 560.0, height = 440.0
    static let left = 78.0, top = 44.0, bottom = 58.0

    /// The SVG document.
    package var svg: String {
        // The legend's width follows its longest entry (about 7 px per character at 12 px).
        let longest = series.map { $0.name.count + ($0.points.last.map { $0.y.isFinite } == false ? 11 : 0) }.max() ?? 0
        let right = Swift.max(120, 60 + 7 * Double(longest))
        let width = LinePlot.left + LinePlot.plotWidth + right
        var canvas = SVGCanvas(width: width, height: LinePlot.height)
        let plotWidth = LinePlot.plotWidth
        let plotHeight = LinePlot.height - LinePlot.top - LinePlot.bottom
        func drawable(_ p: (x: Double, y: Double)) -> Bool {
            p.x.isFinite && p.y.isFinite && (!logY || p.y > 0) && (!logX || p.x > 0)
        }
        let bandEdges = series.flatMap { $0.band.flatMap { [(x: $0.x, y: $0.low), (x: $0.x, y: $0.high)] } }.filter(drawable)
        let all = series.flatMap { $0.points.filter(drawable) } + bandEdges
        var ys = yLimits.map { [$0.lowerBound, $0.upperBound] } ?? all.map(\.y)
        if let reference, yLimits == nil { ys.append(reference.y) }
        let xScale = Scale(values: all.map(\.x), log: logX, length: plotWidth, padFraction: 0, nice: false)
        let yScale = Scale(values: ys, log: logY, length: plotHeight, padFraction: 0.04, nice: true)
        func px(_ x: Double) -> Double { LinePlot.left + xScale.position(x) }
        func py(_ y: Double) -> Double { LinePlot.top + plotHeight - yScale.position(y) }
        func clamped(_ y: Double) -> Double { yLimits.map { Swift.min(Swift.max(y, $0.lowerBound), $0.upperBound) } ?? y }

        canvas.text(title, x: LinePlot.left + plotWidth / 2, y: 24, size: 16, anchor: "middle", weight: "bold")
        // Grid and ticks.
        for tick in yScale.ticks {
            let y = py(tick.value)
            canvas.line(LinePlot.left, y, LinePlot.left + plotWidth, y, stroke: tick.major ? "#e3e3e3" : "#f2f2f2")
            if tick.major { canvas.text(tick.label, x: LinePlot.left - 8, y: y + 4, size: 12, anchor: "end") }
        }
        for tick in xScale.ticks {
            let x = px(tick.value)
            canvas.line(x, LinePlot.top, x, LinePlot.top + plotHeight, stroke: tick.major ? "#e3e3e3" : "#f2f2f2")
            if tick.major { canvas.text(tick.label, x: x, y: LinePlot.top + plotHeight + 18, size: 12, anchor: "middle") }
        }
        canvas.rectangle(LinePlot.left, LinePlot.top, plotWidth, plotHeight, fill: "none", stroke: "#444")
        canvas.text(xLabel, x: LinePlot.left + plotWidth / 2, y: LinePlot.height - 14, size: 13, anchor: "middle")
        canvas.text(yLabel, x: 18, y: LinePlot.top + plotHeight / 2, size: 13, anchor: "middle", rotate: true)
        if let reference, reference.y.isFinite, !logY || reference.y > 0 {
            let y = py(reference.y)
            canvas.line(LinePlot.left, y, LinePlot.left + plotWidth, y, stroke: "#888", dash: "2,3")
            canvas.text(reference.label, x: LinePlot.left + 6, y: y - 5, size: 11, fill: "#666")
        }
        // Bands, behind every line.
        for (index, s) in series.enumerated() where !s.band.isEmpty {
            var piece: [(x: Double, low: Double, high: Double)] = []
            func flushBand() {
                if piece.count >= 2 {
                    let outline = piece.map { (px($0.x), py(clamped($0.high))) } + piece.reversed().map { (px($0.x), py(clamped($0.low))) }
                    canvas.polygon(outline, fill: Palette.color(index), opacity: 0.15)
                }
                piece.removeAll()
            }
            // As for lines: about two points per pixel are enough.
            let stride = Swift.max(1, s.band.count / Int(2 * plotWidth))
            for (i, b) in s.band.enumerated() where i % stride == 0 || i == s.band.count - 1 {
                if drawable((b.x, b.low)) && drawable((b.x, b.high)) { piece.append(b) } else { flushBand() }
            }
            flushBand()
        }
        // Lines.
        for (index, s) in series.enumerated() {
            let color = Palette.color(index)
            var segment: [(Double, Double)] = []
            var lastDrawable: (Double, Double)?
            func flush() {
                if segment.count >= 2 { canvas.polyline(segment, stroke: color, dash: s.dashed ? "6,4" : nil) }
                if segment.count == 1 { canvas.circle(segment[0].0, segment[0].1, radius: 2.5, fill: color) }
                segment.removeAll()
            }
            // More points than pixels add nothing but bytes: keep about two per pixel (and the last).
            let stride = Swift.max(1, s.points.count / Int(2 * plotWidth))
            let kept = s.points.enumerated().filter { $0.offset % stride == 0 || $0.offset == s.points.count - 1 || !drawable($0.element) }.map(\.element)
            for p in kept {
                if drawable(p) {
                    let point = (px(p.x), py(clamped(p.y)))
                    segment.append(point)
                    lastDrawable = point
                } else {
                    flush()
                }
            }
            flush()
            if let last = s.points.last, !drawable(last), let mark = lastDrawable {
                canvas.cross(mark.0, mark.1, size: 6, stroke: color)
            }
        }
        // Legend.
        var y = LinePlot.top + 8
        for (index, s) in series.enumerated() {
            let x = LinePlot.left + plotWidth + 16
            canvas.line(x, y, x + 22, y, stroke: Palette.color(index), width: 2.5, dash: s.dashed ? "6,4" : nil)
            let diverged = s.points.last.map { !$0.y.isFinite } ?? false
            canvas.text(s.name + (diverged ? " (diverged)" : ""), x: x + 28, y: y + 4, size: 12)
            y += 20
        }
        return canvas.document
    }
}

/// A heat map of positive values on a log color scale (for example each
/// layer's gradient norm at each step), with a color bar. Rows are drawn top to
/// bottom in the order given.
package struct HeatMap: Sendable {
    package var title: String
    package var xLabel: String
    package var yLabel: String
    package var rowLabels: [String]
    /// values[row][column]; non-finite or non-positive cells are drawn grey.
    package var values: [[Double]]
    /// The x value of the first and last column (e.g. steps 1 and 600).
    package var xRange: ClosedRange<Double>
    package var colorLabel: String

    package init(title: String, xLabel: String, yLabel: String, rowLabels: [String], values: [[Double]],
                xRange: ClosedRange<Double>, colorLabel: String) {
        self.title = title
        self.xLabel = xLabel
        self.yLabel = yLabel
        self.rowLabels = rowLabels
        self.values = values
        self.xRange = xRange
        self.colorLabel = colorLabel
    }

    /// The SVG document.
    package var svg: String {
        let width = 760.0, height = 440.0, left = 78.0, right = 120.0, top = 44.0, bottom = 58.0
        var canvas = SVGCanvas(width: width, height: height)
        let plotWidth = width - left - right, plotHeight = height - top - bottom
        // At most 150 columns: wider maps are binned by geometric mean.
        let columns = values.map(\.count).max() ?? 0
        let bins = Swift.min(columns, 150)
        let binned: [[Double]] = values.map { row in
            (0..<bins).map { b in
                let lo = b * columns / bins, hi = Swift.max(lo + 1, (b + 1) * columns / bins)
                let cells = row[Swift.min(lo, row.count)..<Swift.min(hi, row.count)].filter { $0 > 0 && $0.isFinite }
                return cells.isEmpty ? .nan : exp(cells.reduce(0) { $0 + log($1) } / Double(cells.count))
            }
        }
        let positive = binned.flatMap { $0 }.filter { $0 > 0 && $0.isFinite }
        var low = log10(positive.min() ?? 1), high = log10(positive.max() ?? 10)
        if high - low < 1e-9 { high = low + 1 }
        low = low.rounded(.down)
        high = high.rounded(.up)
        canvas.text(title, x: left + plotWidth / 2, y: 24, size: 16, anchor: "middle", weight: "bold")
        let cellWidth = plotWidth / Double(Swift.max(bins, 1)), cellHeight = plotHeight / Double(Swift.max(binned.count, 1))
        // Colors in 64 levels; a run of equal cells in a row is one rectangle, and all rectangles of a
        // color are one path (a file a tenth the size of one <rect> per cell).
        var shapes: [String: String] = [:]
        for (r, row) in binned.enumerated() {
            let colors = row.map { v in
                v > 0 && v.isFinite ? Palette.viridis(((log10(v) - low) / (high - low) * 63).rounded() / 63) : "#bbbbbb"
            }
            var start = 0
            while start < colors.count {
                var end = start + 1
                while end < colors.count, colors[end] == colors[start] { end += 1 }
                let x = left + Double(start) * cellWidth, y = top + Double(r) * cellHeight
                let w = Double(end - start) * cellWidth + 0.4, h = cellHeight + 0.4
                shapes[colors[start], default: ""] += "M\(SVGCanvas.number(x)) \(SVGCanvas.number(y))h\(SVGCanvas.number(w))v\(SVGCanvas.number(h))h-\(SVGCanvas.number(w))z"
                start = end
            }
        }
        for color in shapes.keys.sorted() { canvas.path(shapes[color]!, fill: color) }
        canvas.rectangle(left, top, plotWidth, plotHeight, fill: "none", stroke: "#444")
        // Row labels: at most ~20.
        let every = Swift.max(1, (rowLabels.count + 19) / 20)
        for (r, label) in rowLabels.enumerated() where r % every == 0 || r == rowLabels.count - 1 {
            canvas.text(label, x: left - 8, y: top + (Double(r) + 0.5) * cellHeight + 4, size: 11, anchor: "end")
        }
        // Cells fill the exact range: ticks only where they fall inside it.
        let xScale = Scale(values: [xRange.lowerBound, xRange.upperBound], log: false, length: plotWidth, padFraction: 0, nice: false)
        for tick in xScale.ticks where tick.major {
            canvas.text(tick.label, x: left + xScale.position(tick.value), y: top + plotHeight + 18, size: 12, anchor: "middle")
        }
        canvas.text(xLabel, x: left + plotWidth / 2, y: height - 14, size: 13, anchor: "middle")
        canvas.text(yLabel, x: 18, y: top + plotHeight / 2, size: 13, anchor: "middle", rotate: true)
        // Color bar.
        let barX = left + plotWidth + 24, barWidth = 16.0
        let steps = 64
        for i in 0..<steps {
            let t = Double(i) / Double(steps - 1)
            canvas.rectangle(barX, top + plotHeight * (1 - Double(i + 1) / Double(steps)), barWidth, plotHeight / Double(steps) + 0.5,
                             fill: Palette.viridis(t), stroke: nil)
        }
        canvas.rectangle(barX, top, barWidth, plotHeight, fill: "none", stroke: "#444")
        let decades = Int(high - low)
        let labelEvery = Swift.max(1, (decades + 7) / 8)
        for d in stride(from: 0, through: decades, by: labelEvery) {
            let y = top + plotHeight * (1 - Double(d) / Double(Swift.max(decades, 1)))
            canvas.line(barX + barWidth, y, barX + barWidth + 4, y, stroke: "#444")
            canvas.text(powerOfTenLabel(Int(low) + d), x: barX + barWidth + 7, y: y + 4, size: 11)
        }
        canvas.text(colorLabel, x: barX + barWidth / 2, y: top - 10, size: 11, anchor: "middle")
        return canvas.document
    }
}

/// "1e-3" style labels for powers of ten (1, 10, 100 and 0.1, 0.01 spelled out).
func powerOfTenLabel(_ exponent: Int) -> String {
    switch exponent {
    case 0: "1"
    case 1: "10"
    case 2: "100"
    case 3: "1000"
    case -1: "0.1"
    case -2: "0.01"
    case -3: "0.001"
    default: "1e\(exponent)"
    }
}

/// Maps data values to pixels along one axis, and chooses ticks.
struct Scale {
    let low: Double, high: Double, log: Bool, length: Double

    /// - Parameter nice: round a linear range out to whole tick steps (else keep it exact).
    init(values: [Double], log: Bool, length: Double, padFraction: Double, nice: Bool) {
        self.log = log
        self.length = length
        // An infinite value has no place on an axis (and its logarithm no whole decade).
        let finite = values.filter(\.isFinite)
        var lo = finite.min() ?? 0, hi = finite.max() ?? 1
        if log {
            lo = log10(Swift.max(lo, 1e-300))
            hi = log10(Swift.max(hi, 1e-300))
            if hi - lo < 1e-9 { lo -= 0.5; hi += 0.5 }
            // Whole decades at both ends: log axes read best from one power of ten to another.
            lo = lo.rounded(.down)
            hi = hi.rounded(.up)
        } else {
            // Beyond ±1e307 the range's width and padding would overflow: such values are drawn outside it.
            lo = Swift.min(Swift.max(lo, -1e307), 1e307)
            hi = Swift.min(Swift.max(hi, -1e307), 1e307)
            // A range must be wide for its magnitude, or ±0.5 would round away and ticks would not advance.
            let magnitude = Swift.max(Swift.abs(lo), Swift.abs(hi))
            if hi - lo < Swift.max(1e-12, magnitude * 1e-9) {
                let half = Swift.max(0.5, magnitude * 1e-6)
                lo -= half
                hi += half
            }
            let pad = (hi - lo) * padFraction
            let nonNegative = lo >= 0
            lo -= pad
            hi += pad
            if nonNegative { lo = Swift.max(lo, 0) }  // counts and accuracies: no axis below 0
            if nice {
                let step = Scale.niceStep((hi - lo) / 6)
                lo = (lo / step).rounded(.down) * step
                hi = (hi / step).rounded(.up) * step
            }
        }
        low = lo
        high = hi
    }

    func position(_ value: Double) -> Double {
        let v = log ? log10(value) : value
        return (v - low) / (high - low) * length
    }

    /// 1, 2 or 5 times a power of ten, at least `rough`.
    static func niceStep(_ rough: Double) -> Double {
        let magnitude = pow(10, (log10(rough)).rounded(.down))
        for m in [1.0, 2, 5, 10] where m * magnitude >= rough { return m * magnitude }
        return 10 * magnitude
    }

    struct Tick { let value: Double; let label: String; let major: Bool }

    var ticks: [Tick] {
        if log {
            let decades = Int((high - low).rounded())
            let labelEvery = Swift.max(1, (decades + 7) / 8)
            var ticks: [Tick] = []
            for e in Int(low)...Int(high) {
                let major = (e - Int(low)) % labelEvery == 0
                ticks.append(Tick(value: pow(10, Double(e)), label: powerOfTenLabel(e), major: major))
                if decades <= 3, e < Int(high) {
                    for m in [2.0, 5.0] { ticks.append(Tick(value: m * pow(10, Double(e)), label: "", major: false)) }
                }
            }
            return ticks
        }
        let step = Scale.niceStep((high - low) / 6)
        var ticks: [Tick] = []
        var v = (low / step).rounded(.up) * step
        while v <= high + step * 1e-9 {
            ticks.append(Tick(value: v, label: Scale.label(v, step: step), major: true))
            v += step
        }
        return ticks
    }

    /// A tick label with as many decimals as the step needs.
    static func label(_ value: Double, step: Double) -> String {
        if Swift.abs(value) < step * 1e-9 { return "0" }
        if Swift.abs(value) >= 1e5 || step < 1e-4 { return shortScientific(value) }
        return fixed(value, decimals: Swift.max(0, Int(saturating: -log10(step).rounded(.down))))
    }
}

/// "2.5e-7".
package func shortScientific(_ value: Double) -> String {
    guard value != 0, value.isFinite else { return "\(value)" }
    var exponent = Int(log10(Swift.abs(value)).rounded(.down))
    var mantissa = ((value / pow(10, Double(exponent))) * 10).rounded() / 10
    if Swift.abs(mantissa) >= 10 {
        // 9.96e-5 rounds up to the next power of ten: 1e-4, not 10e-5.
        exponent += 1
        mantissa /= 10
    }
    let m = mantissa == mantissa.rounded() ? String(Int(mantissa)) : "\(mantissa)"
    return "\(m)e\(exponent)"
}

/// Colors: a qualitative palette for lines (Okabe–Ito and Tableau, readable by
/// colour-blind readers for the first eight) and viridis for heat maps.
enum Palette {
    static let lines = [
        "#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000", "#F0E442",
        "#8c564b", "#7f7f7f", "#bcbd22", "#17becf",
    ]

    static func color(_ index: Int) -> String { lines[index % lines.count] }

    /// Viridis at t in [0, 1], interpolated between nine anchors.
    static func viridis(_ t: Double) -> String {
        let anchors: [(Double, Double, Double)] = [
            (68, 1, 84), (72, 40, 120), (62, 74, 137), (49, 104, 142), (38, 130, 142), (31, 158, 137),
            (53, 183, 121), (109, 205, 89), (180, 222, 44), (253, 231, 37),
        ]
        let x = Swift.min(Swift.max(t.isFinite ? t : 0, 0), 1) * Double(anchors.count - 1)
        let i = Swift.min(Int(x), anchors.count - 2), f = x - Double(i)
        let a = anchors[i], b = anchors[i + 1]
        func channel(_ u: Double, _ v: Double) -> Int { Int((u + (v - u) * f).rounded()) }
        return "rgb(\(channel(a.0, b.0)),\(channel(a.1, b.1)),\(channel(a.2, b.2)))"
    }
}

/// Accumulates SVG elements.
struct SVGCanvas {
    private var body: [String] = []
    let width: Double, height: Double

    init(width: Double, height: Double) {
        self.width = width
        self.height = height
    }

    var document: String {
        """
        <svg xmlns="http://www.w3.org/2000/svg" width="\(n(width))" height="\(n(height))" viewBox="0 0 \(n(width)) \(n(height))" \
        font-family="Helvetica, Arial, sans-serif">
        <rect width="100%" height="100%" fill="white"/>
        \(body.joined(separator: "\n"))
        </svg>

        """
    }

    /// Two decimals at most.
    static func number(_ value: Double) -> String {
        let rounded = (value * 100).rounded() / 100
        return rounded == rounded.rounded() && Swift.abs(rounded) < 1e15 ? String(Int(rounded)) : "\(rounded)"
    }

    private func n(_ value: Double) -> String { SVGCanvas.number(value) }

    mutating func path(_ d: String, fill: String) { body.append("<path d=\"\(d)\" fill=\"\(fill)\"/>") }

    mutating func line(_ x1: Double, _ y1: Double, _ x2: Double, _ y2: Double, stroke: String, width: Double = 1, dash: String? = nil) {
        body.append("<line x1=\"\(n(x1))\" y1=\"\(n(y1))\" x2=\"\(n(x2))\" y2=\"\(n(y2))\" stroke=\"\(stroke)\" stroke-width=\"\(n(width))\"\(dash.map { " stroke-dasharray=\"\($0)\"" } ?? "")/>")
    }

    mutating func polyline(_ points: [(Double, Double)], stroke: String, dash: String?) {
        let list = points.map { "\(n($0.0)),\(n($0.1))" }.joined(separator: " ")
        body.append("<polyline points=\"\(list)\" fill=\"none\" stroke=\"\(stroke)\" stroke-width=\"2\" stroke-linejoin=\"round\"\(dash.map { " stroke-dasharray=\"\($0)\"" } ?? "")/>")
    }

    mutating func polygon(_ points: [(Double, Double)], fill: String, opacity: Double) {
        let list = points.map { "\(n($0.0)),\(n($0.1))" }.joined(separator: " ")
        body.append("<polygon points=\"\(list)\" fill=\"\(fill)\" fill-opacity=\"\(n(opacity))\" stroke=\"none\"/>")
    }

    mutating func rectangle(_ x: Double, _ y: Double, _ w: Double, _ h: Double, fill: String, stroke: String?) {
        body.append("<rect x=\"\(n(x))\" y=\"\(n(y))\" width=\"\(n(w))\" height=\"\(n(h))\" fill=\"\(fill)\"\(stroke.map { " stroke=\"\($0)\"" } ?? "")/>")
    }

    mutating func circle(_ x: Double, _ y: Double, radius: Double, fill: String) {
        body.append("<circle cx=\"\(n(x))\" cy=\"\(n(y))\" r=\"\(n(radius))\" fill=\"\(fill)\"/>")
    }

    mutating func cross(_ x: Double, _ y: Double, size: Double, stroke: String) {
        line(x - size, y - size, x + size, y + size, stroke: stroke, width: 2.5)
        line(x - size, y + size, x + size, y - size, stroke: stroke, width: 2.5)
    }

    mutating func text(_ content: String, x: Double, y: Double, size: Double, anchor: String = "start", weight: String? = nil,
                       fill: String = "#222", rotate: Bool = false) {
        let transform = rotate ? " transform=\"rotate(-90 \(n(x)) \(n(y)))\"" : ""
        body.append("<text x=\"\(n(x))\" y=\"\(n(y))\" font-size=\"\(n(size))\" text-anchor=\"\(anchor)\" fill=\"\(fill)\"\(weight.map { " font-weight=\"\($0)\"" } ?? "")\(transform)>\(escapeXML(content))</text>")
    }
}

func escapeXML(_ text: String) -> String {
    var out = ""
    for c in text {
        switch c {
        case "&": out += "&amp;"
        case "<": out += "&lt;"
        case ">": out += "&gt;"
        case "\"": out += "&quot;"
        default: out.append(c)
        }
    }
    return out
}
