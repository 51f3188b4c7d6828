// GradKitLab — experiments that show each gradient pathology and its cure, and their report. SPDX-License-Identifier: MIT
#if canImport(Glibc)
import Glibc
#endif
import GradKit

/// How the lab runs.
public struct LabOptions: Sendable {
    /// Fewer epochs and configurations' steps: the whole lab in well under a minute.
    public var quick: Bool
    public var seed: UInt64
    /// Run only the experiments whose name contains this.
    public var only: String?

    public init(quick: Bool = false, seed: UInt64 = 0, only: String? = nil) {
        self.quick = quick
        self.seed = seed
        self.only = only
    }
}

/// An SVG figure of a report.
public struct Figure: Sendable {
    /// The file name under `figures/`, e.g. "vanishing-depth.svg".
    public var fileName: String
    public var caption: String
    public var svg: String
}

/// A piece of an experiment's section of the report.
public enum ReportBlock: Sendable {
    case text(String)
    case table(header: [String], rows: [[String]])
    case figure(Figure)
}

/// What an experiment found.
public struct ExperimentResult: Sendable {
    /// A stable identifier ("vanishing-gradients").
    public var name: String
    public var title: String
    /// One or two sentences backed by the numbers.
    public var verdict: String
    /// Whether the experiment showed what it set out to show (the pathology
    /// appeared and a cure worked); false is reported, not hidden.
    public var demonstrated: Bool
    public var blocks: [ReportBlock]
    /// Numbers for results.json.
    package var metrics: [String: JSON]
    public var seconds: Double = 0

    public var figures: [Figure] {
        blocks.compactMap { if case .figure(let f) = $0 { return f } else { return nil } }
    }
}

/// The lab: runs the experiments and writes `report.md`, `results.json` and
/// `figures/*.svg`.
public enum Lab {
    /// Every experiment, in report order.
    public static let experimentNames = ["vanishing-gradients", "exploding-gradients", "optimizers", "perceptron-vs-bp"]

    /// Runs the selected experiments, calling `progress` with a line as each starts and ends.
    public static func run(_ options: LabOptions, progress: (String) -> Void = { _ in }) -> [ExperimentResult] {
        var results: [ExperimentResult] = []
        let clock = ContinuousClock()
        for name in experimentNames where options.only.map({ name.contains($0) }) ?? true {
            progress("running \(name)\(options.quick ? " (quick)" : "") ...")
            let started = clock.now
            var result: ExperimentResult
            switch name {
            case "vanishing-gradients": result = vanishingGradients(options)
            case "exploding-gradients": result = explodingGradients(options)
            case "optimizers": result = optimizers(options)
            default: result = perceptronVersusBackPropagation(options)
            }
            result.seconds = seconds(started.duration(to: clock.now))
            progress("  \(result.demonstrated ? "shown" : "NOT shown"): \(result.verdict) (\(format(result.seconds, 1)) s)")
            results.append(result)
        }
        return results
    }

    /// Writes the report into `directory` (created if needed): `report.md`,
    /// `results.json` and `figures/`.
    /// - Throws: ``LabError`` when a file cannot be written.
    public static func writeReport(_ results: [ExperimentResult], options: LabOptions, command: String, totalSeconds: Double, to directory: String) throws {
        try prepareOutput(directory)
        var md = ["# GradKit lab report", ""]
        md.append("`\(command)` — \(options.quick ? "quick run" : "full run"), seed \(options.seed), \(format(totalSeconds, 1)) s on \(Kernels.cpuName) (\(Kernels.threadCount) threads), GradKit \(gradKitVersion).")
        md.append("")
        md.append("| experiment | shown | verdict |")
        md.append("|---|---|---|")
        for r in results { md.append("| [\(r.title)](#\(r.name)) | \(r.demonstrated ? "yes" : "**no**") | \(r.verdict.replacingPipes) |") }
        md.append("")
        for r in results {
            md.append("<a id=\"\(r.name)\"></a>")
            md.append("## \(r.title)")
            md.append("")
            md.append("**Verdict:** \(r.verdict)")
            md.append("")
            for block in r.blocks {
                switch block {
                case .text(let text):
                    md.append(text)
                case .table(let header, let rows):
                    md.append("| " + header.joined(separator: " | ") + " |")
                    md.append("|" + header.map { _ in "---" }.joined(separator: "|") + "|")
                    for row in rows { md.append("| " + row.map(\.replacingPipes).joined(separator: " | ") + " |") }
                case .figure(let figure):
                    try write(figure.svg, to: directory + "/figures/" + figure.fileName)
                    md.append("![\(figure.caption)](figures/\(figure.fileName))")
                    md.append("")
                    md.append("*\(figure.caption)*")
                }
                md.append("")
            }
            md.append("(\(format(r.seconds, 1)) s)")
            md.append("")
        }
        try write(md.joined(separator: "\n"), to: directory + "/report.md")
        let json = JSON.object([
            "command": .string(command), "quick": .bool(options.quick), "seed": .number(Double(options.seed)),
            "seconds": .number(totalSeconds),
            "experiments": .array(results.map { r in
                var object = r.metrics
                object["name"] = .string(r.name)
                object["title"] = .string(r.title)
                object["verdict"] = .string(r.verdict)
                object["demonstrated"] = .bool(r.demonstrated)
                object["seconds"] = .number(r.seconds)
                object["figures"] = .array(r.figures.map { .string("figures/" + $0.fileName) })
                return .object(object)
            }),
        ])
        try write(json.text + "\n", to: directory + "/results.json")
    }

    /// Creates `directory` and `directory/figures` (with missing parents), so
    /// that a bad output path fails before the experiments run.
    /// - Throws: ``LabError`` when they cannot be created.
    public static func prepareOutput(_ directory: String) throws {
        try makeDirectory(directory)
        try makeDirectory(directory + "/figures")
    }

    /// `mkdir -p`.
    private static func makeDirectory(_ path: String) throws {
        var prefix = path.hasPrefix("/") ? "/" : ""
        for component in path.split(separator: "/") {
            prefix += component + "/"
            if mkdir(prefix, 0o755) != 0 && errno != EEXIST {
                throw LabError.cannotWrite(path: prefix, reason: String(cString: strerror(errno)))
            }
        }
    }

    private static func write(_ text: String, to path: String) throws {
        if case .failure(let error) = FileIO.writeAtomically(Array(text.utf8), to: path) {
            throw LabError.cannotWrite(path: path, reason: error.message)
        }
    }
}

/// Why the lab could not write its report.
public enum LabError: Error, CustomStringConvertible {
    case cannotWrite(path: String, reason: String)

    public var description: String {
        switch self {
        case .cannotWrite(let path, let reason): "\(path): cannot write: \(reason)"
        }
    }
}

extension String {
    /// Table cells cannot hold a bare "|".
    fileprivate var replacingPipes: String { split(separator: "|", omittingEmptySubsequences: false).joined(separator: "\\|") }
}

func seconds(_ duration: Duration) -> Double {
    Double(duration.components.seconds) + Double(duration.components.attoseconds) * 1e-18
}

/// `digits` decimals.
func format(_ value: Double, _ digits: Int) -> String {
    guard value.isFinite else { return value.isNaN ? "NaN" : (value > 0 ? "∞" : "-∞") }
    let scale = pow(10, Double(digits))
    let rounded = (value * scale).rounded() / scale
    if digits == 0 { return String(Int(rounded)) }
    var text = "\(rounded)"
    if text.contains("e") { return shortScientific(value) }
    if let dot = text.firstIndex(of: ".") {
        let have = text.distance(from: dot, to: text.endIndex) - 1
        if have < digits { text += String(repeating: "0", count: digits - have) }
    }
    return text
}

/// A percentage with one decimal: 0.9721 → "97.2%".
func percent(_ fraction: Double) -> String { fraction.isFinite ? format(fraction * 100, 1) + "%" : "—" }

/// Two significant digits in scientific notation: "3.1e-8".
func sci(_ value: Double) -> String {
    guard value.isFinite else { return value.isNaN ? "NaN" : "∞" }
    return value == 0 ? "0" : shortScientific(value)
}

/// "1,234×" or "0.01×".
func times(_ ratio: Double) -> String {
    guard ratio.isFinite else { return "∞×" }
    if ratio >= 1e5 || ratio < 1e-2 { return sci(ratio) + "×" }
    if ratio >= 100 {
        let whole = Int(ratio.rounded())
        return (whole >= 1000 ? "\(whole / 1000),\(String(whole % 1000).leftPadded(3))" : "\(whole)") + "×"
    }
    return format(ratio, ratio >= 10 ? 0 : 1) + "×"
}

extension String {
    fileprivate func leftPadded(_ width: Int) -> String { String(repeating: "0", count: Swift.max(0, width - count)) + self }
}
