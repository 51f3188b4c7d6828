// GradKitLab — the report: report.md, results.json and figures/*.svg. SPDX-License-Identifier: MIT
import GradKit

/// An SVG figure of a report.
public struct Figure: Sendable {
    /// The file name under `figures/`, e.g. "vanishing-depth.svg".
    public var fileName: String
    /// A sentence computed from the numbers the figure shows.
    public var caption: String
    /// The SVG document.
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
    /// The section heading.
    public var title: String
    /// One to three sentences, each true in at least 80% of the seeds.
    public var verdict: String
    /// Whether the experiment showed what it set out to show (the pathology
    /// and a remedy that helps, each in at least 80% of the seeds); false is
    /// reported, not hidden.
    public var demonstrated: Bool
    /// The section's text, tables and figures, in order.
    public var blocks: [ReportBlock]
    /// What the configurations are scored by ("test accuracy").
    public var metricName: String
    /// Each configuration across the seeds.
    var configurations: [ConfigurationSummary]
    /// The experiment's own numbers for results.json.
    package var metrics: [String: JSON]
    /// How long the experiment took.
    public var seconds: Double = 0

    /// The section's figures, in order.
    public var figures: [Figure] {
        blocks.compactMap { if case .figure(let f) = $0 { return f } else { return nil } }
    }

    /// The configuration named `name`.
    func configuration(_ name: String) -> ConfigurationSummary? { configurations.first { $0.name == name } }

    /// The entry of results.json.
    var json: JSON {
        var object = metrics
        object["name"] = .string(name)
        object["title"] = .string(title)
        object["verdict"] = .string(verdict)
        object["demonstrated"] = .bool(demonstrated)
        object["seconds"] = .number(seconds)
        object["metric"] = .string(metricName)
        object["figures"] = .array(figures.map { .string("figures/" + $0.fileName) })
        object["configurations"] = .array(configurations.map(\.json))
        return .object(object)
    }
}

extension ConfigurationSummary {
    /// The configuration's entry in results.json.
    var json: JSON {
        let range = scoreRange
        return .object([
            "name": .string(name), "role": .string(role.rawValue), "verdict": .string(verdict.label),
            "claim": claim.map { .string($0.rule) } ?? .null,
            "seeds": .number(Double(verdict.seeds)), "agreeing": .number(Double(verdict.agreeing)),
            "holding": .number(Double(verdict.holding)),
            "median": .number(range.median), "min": .number(range.min), "max": .number(range.max),
            "scores": .array(scores.map { .number($0) }),
            "learning_rates": .array(trials.map { $0.learningRate.map { .number(Double($0)) } ?? .null }),
            "diverged_seeds": .number(Double(divergedSeeds)),
        ])
    }
}

extension Lab {
    /// Writes the report into `directory` (created if needed): `report.md`,
    /// `results.json` and `figures/`, all or none: when one file cannot be
    /// written, none is replaced.
    /// - Throws: ``LabError`` when a file cannot be written.
    public static func writeReport(_ results: [ExperimentResult], options: LabOptions, totalSeconds: Double, to directory: String) throws {
        try prepareOutput(directory)
        var md = ["# GradKit lab report", ""]
        let seeds = seeds(for: options)
        md.append("`\(command(options))` — \(options.quick ? "quick run" : "full run"), matrix products in \(options.matmulPrecision): "
            + "every configuration at \(seeds.count) seeds (\(seeds.map(String.init).joined(separator: ", "))), derived from `--seed \(options.seed)`.")
        md.append("")
        md.append(timingLine(results, options: options, totalSeconds: totalSeconds))
        md.append("")
        md.append("| experiment | shown | verdict |")
        md.append("|---|---|---|")
        for r in results { md.append("| [\(r.title)](#\(r.name)) | \(r.demonstrated ? "yes" : "**no**") | \(r.verdict.replacingPipes) |") }
        md.append("")
        md.append(Lab.readingGuide)
        md.append("")
        var files: [(path: String, bytes: [UInt8])] = []
        for r in results {
            md += ["<a id=\"\(r.name)\"></a>", "## \(r.title)", "", "**Verdict:** \(r.verdict)", ""]
            for block in r.blocks {
                md += markdown(block)
                md.append("")
                if case .figure(let figure) = block { files.append((directory + "/figures/" + figure.fileName, Array(figure.svg.utf8))) }
            }
        }
        files.append((directory + "/report.md", Array(md.joined(separator: "\n").utf8)))
        let json = JSON.object([
            "command": .string(command(options)), "quick": .bool(options.quick), "seed": .number(Double(options.seed)),
            "matmul_precision": .string(options.matmulPrecision.rawValue),
            "seeds": .array(seeds.map { .number(Double($0)) }), "seconds": .number(totalSeconds),
            "experiments": .array(results.map(\.json)),
        ])
        files.append((directory + "/results.json", Array((prettyJSON(json) + "\n").utf8)))
        // All or none: a figure never goes without the report that shows it.
        do {
            try FileIO.writeAtomically(files)
        } catch {
            throw LabError.cannotWrite(path: error.path ?? directory, reason: error.message)
        }
    }

    /// How to read the tables, the same for every experiment.
    static let readingGuide = """
        How to read it: each configuration runs at every seed; where it has a learning-rate grid, the rate with \
        the best validation score is kept per seed, and every score is taken at the epoch with the best \
        validation score (validation data come from the training part; the test part is never used to choose). \
        Tables give the median over the seeds and, in parentheses, the smallest and largest value. A verdict \
        such as "helps" or "does not help" needs at least 80% of the seeds to agree; otherwise it says "mixed" \
        and how many seeds went each way. Figures draw the median over the seeds as a line and the range as a \
        pale band.
        """

    /// The command that reproduces the numbers (the output directory and the
    /// thread count do not change them; the matmul precision does).
    static func command(_ options: LabOptions) -> String {
        var words = ["gradkit", "lab"]
        if options.quick { words.append("--quick") }
        if options.seed != 0 { words += ["--seed", "\(options.seed)"] }
        if let only = options.only { words += ["--only", only] }
        if options.matmulPrecision != .float32 { words += ["--matmul-precision", options.matmulPrecision.rawValue] }
        return words.joined(separator: " ")
    }

    /// The one line of the report that differs between runs of the same command.
    static func timingLine(_ results: [ExperimentResult], options: LabOptions, totalSeconds: Double) -> String {
        let parts = results.map { "\($0.name) \(fixed($0.seconds, decimals: 1)) s" }.joined(separator: ", ")
        return "Time: \(fixed(totalSeconds, decimals: 1)) s (\(parts)) on \(Kernels.cpuName), \(options.threads) trial\(options.threads == 1 ? "" : "s") at a time, GradKit \(gradKitVersion)."
    }

    private static func markdown(_ block: ReportBlock) -> [String] {
        switch block {
        case .text(let text):
            return [text]
        case .table(let header, let rows):
            return ["| " + header.joined(separator: " | ") + " |", "|" + header.map { _ in "---" }.joined(separator: "|") + "|"]
                + rows.map { "| " + $0.map(\.replacingPipes).joined(separator: " | ") + " |" }
        case .figure(let figure):
            return ["![\(figure.caption)](figures/\(figure.fileName))", "", "*\(figure.caption)*"]
        }
    }

    /// Creates `directory` and `directory/figures` (with missing parents), so
    /// that a bad output path fails before the experiments run.
    /// - Throws: ``LabError`` when they cannot be created.
    public static func prepareOutput(_ directory: String) throws {
        if case .failure(let error) = FileIO.createDirectories(directory + "/figures") {
            throw LabError.cannotWrite(path: directory + "/figures", reason: error.message)
        }
    }
}

/// JSON with one member or element per line, indented by two spaces, keys
/// sorted: a diff of two reports then shows which numbers changed.
func prettyJSON(_ value: JSON, indent: String = "") -> String {
    let inner = indent + "  "
    switch value {
    case .array(let items) where !items.isEmpty:
        // Arrays of numbers stay on one line: a row of per-seed scores reads best that way.
        if items.allSatisfy({ if case .object = $0 { false } else if case .array = $0 { false } else { true } }) {
            return "[" + items.map(\.text).joined(separator: ", ") + "]"
        }
        return "[\n" + items.map { inner + prettyJSON($0, indent: inner) }.joined(separator: ",\n") + "\n" + indent + "]"
    case .object(let members) where !members.isEmpty:
        let lines = members.keys.sorted().map { key in inner + JSON.string(key).text + ": " + prettyJSON(members[key]!, indent: inner) }
        return "{\n" + lines.joined(separator: ",\n") + "\n" + indent + "}"
    default:
        return value.text
    }
}

/// Why the lab could not write its report.
public enum LabError: Error, CustomStringConvertible {
    /// A directory or file of the report could not be created or written.
    case cannotWrite(path: String, reason: String)

    /// The path and what went wrong.
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
