// GradKit — a run's history to and from a JSON-lines log. SPDX-License-Identifier: MIT

/// Why a JSON-lines log could not be read.
public struct RunLogError: Error, Equatable, CustomStringConvertible {
    /// The file, when the log came from one.
    public var path: String?
    /// The 1-based line at fault (nil when the file could not be read at all).
    public var line: Int?
    /// What was wrong.
    public var reason: String

    /// An error at `line` of `path`.
    public init(path: String? = nil, line: Int?, reason: String) {
        self.path = path
        self.line = line
        self.reason = reason
    }

    /// `PATH, line N: REASON`, with the parts that are known.
    public var description: String {
        let place = [path, line.map { "line \($0)" }].compactMap { $0 }.joined(separator: ", ")
        return place.isEmpty ? reason : "\(place): \(reason)"
    }
}

extension RunHistory {
    /// Rebuilds the history of a run from its JSON-lines log (the ``Trainer``'s
    /// `logPath`, with the monitor's `layers` records).
    /// - Parameters:
    ///   - path: the log file.
    ///   - maximumLength: the most entries each series keeps (see ``RunHistory``).
    /// - Throws: ``RunLogError`` naming the file and, for a malformed line, its number.
    public init(jsonLinesAt path: String, maximumLength: Int = 10_000) throws {
        let bytes: [UInt8]
        switch FileIO.readAll(path) {
        case .success(let read): bytes = read
        case .failure(let error): throw RunLogError(path: path, line: nil, reason: "cannot read: \(error.message)")
        }
        do {
            try self.init(parsing: bytes, maximumLength: maximumLength)
        } catch var error as RunLogError {
            error.path = path
            throw error
        }
    }

    /// Rebuilds the history of a run from the bytes of its JSON-lines log.
    ///
    /// One JSON object per line; blank lines are skipped, and so are records
    /// of other types (`epoch`, ...) and fields not listed here:
    /// ```
    /// {"type":"step","epoch":0,"step":12,"loss":0.41,"gradient_norm":1.7,"learning_rate":0.001,"skipped":false,"clipped":false}
    /// {"type":"layers","step":12,"layers":[{"layer":1,"path":"0","kind":"Linear","activation":"ReLU",
    ///   "gradient_norm":0.9,"weight_norm":8.1,"update_ratio":0.0012,"dead_fraction":0.05,"saturated_fraction":null,
    ///   "preactivation_mean":0.02,"preactivation_std":1.1,"verdict":"healthy","evidence":[]}, ...]}
    /// ```
    /// `null` stands for a value that does not apply (or, for `loss` and
    /// `gradient_norm`, one that was not finite). Every `layers` record must
    /// list the same layers as the first.
    ///
    /// A line that ends before its JSON value does — a record cut off by a
    /// crash, a full disk or a copy still in progress — is skipped, and its
    /// number kept in ``cutLines``; so is a line of zero bytes only (the
    /// unwritten tail a crash can leave), and zero bytes that end a line are
    /// ignored. Any other malformed line is an error. A UTF-8 byte-order mark
    /// at the start is ignored.
    ///
    /// Steps only grow within a run, so a `step` or `layers` record whose step
    /// is not above the previous record of its type starts a later run: a run
    /// resumed from a checkpoint older than the log's end, or a new run logged
    /// to the same file. The records from that step on that came before it are
    /// dropped (TensorBoard's `purge_step`) and its line kept in ``restartLines``.
    /// - Throws: ``RunLogError`` with the line number of the first malformed line.
    public init(parsing bytes: [UInt8], maximumLength: Int = 10_000) throws {
        guard maximumLength >= 2 else { throw RunLogError(line: nil, reason: "maximumLength must be >= 2, got \(maximumLength)") }
        self.init(layers: [], maximumLength: maximumLength)
        var sawLayers = false
        var lineNumber = 0
        // The step records kept so far, in increasing step order: what a restart leaves.
        var recorded: [(step: Int, skipped: Bool)] = []
        func restart(at step: Int) {
            let kept = recorded.firstIndex { $0.step >= step } ?? recorded.endIndex
            recorded.removeSubrange(kept...)
            dropRecords(fromStep: step, stepCount: recorded.count, skippedStepCount: recorded.filter(\.skipped).count)
            restartLines.append(lineNumber)
        }
        func isBlank(_ line: ArraySlice<UInt8>) -> Bool { line.allSatisfy { [0x20, 0x09, 0x0D].contains($0) } }
        // A byte-order mark, which some editors put first, is not part of the first record.
        var start = bytes.starts(with: [0xEF, 0xBB, 0xBF]) ? bytes.startIndex + 3 : bytes.startIndex
        while start < bytes.endIndex {
            lineNumber += 1
            let end = bytes[start...].firstIndex(of: 0x0A) ?? bytes.endIndex
            // A line ends at LF or CR LF: a cut line keeps the CR of its CR LF.
            var line = end > start && bytes[end - 1] == 0x0D ? bytes[start..<(end - 1)] : bytes[start..<end]
            start = end < bytes.endIndex ? end + 1 : end
            // Zeros at a line's end are a crash's unwritten tail (a file system that had extended the
            // file but not written its data): a line of zeros only is a cut line; the rest is read.
            let zeros = line.reversed().prefix { $0 == 0 }.count
            if zeros > 0 {
                line = line.dropLast(zeros)
                if isBlank(line) {
                    cutLines.append(lineNumber)
                    continue
                }
            }
            guard !isBlank(line) else { continue }
            let reader = RecordReader(line: lineNumber)
            guard let object = try reader.object(line) else {
                cutLines.append(lineNumber)
                continue
            }
            switch try reader.string(object, "type") {
            case "step":
                let step = try Step(reader, object)
                if let last = recorded.last, step.step <= last.step { restart(at: step.step) }
                recorded.append((step.step, step.skipped))
                append(step)
            case "layers":
                let (sample, layers) = try RunHistory.sample(reader, object)
                if let last = latestSample, sample.step <= last.step { restart(at: sample.step) }
                if !sawLayers {
                    self.layers = layers
                    sawLayers = true
                } else if layers != self.layers {
                    throw reader.error("the layers differ from those of the first layers record")
                }
                append(sample)
            default:
                continue
            }
        }
    }

    /// The `layers` record of `sample`.
    static func layersRecord(_ sample: Sample, layers: [Layer]) -> [String: JSON] {
        func number(_ value: Float?) -> JSON { value.map { .number(Double($0)) } ?? .null }
        let entries: [JSON] = zip(layers, sample.layers).map { layer, values in
            .object([
                "layer": .number(Double(layer.index)), "path": .string(layer.path), "kind": .string(layer.kind),
                "activation": layer.activation.map(JSON.string) ?? .null,
                "gradient_norm": number(values.gradientNorm), "weight_norm": number(values.weightNorm),
                "update_ratio": number(values.updateRatio), "dead_fraction": number(values.deadFraction),
                "saturated_fraction": number(values.saturatedFraction), "preactivation_mean": number(values.preactivationMean),
                "preactivation_std": number(values.preactivationStandardDeviation),
                "verdict": values.verdict.map { .string($0.rawValue) } ?? .null,
                "evidence": .array(values.evidence.map(JSON.string)),
            ])
        }
        return ["type": .string("layers"), "step": .number(Double(sample.step)), "layers": .array(entries)]
    }

    /// A `layers` record's sample and layer list.
    private static func sample(_ reader: RecordReader, _ object: [String: JSON]) throws -> (Sample, [Layer]) {
        let step = try reader.count(object, "step")
        guard let entries = object["layers"]?.arrayValue else { throw reader.error("'layers' must be an array") }
        var layers: [Layer] = [], values: [LayerSample] = []
        for (position, entry) in entries.enumerated() {
            guard let fields = entry.objectValue else { throw reader.error("layers[\(position)] must be an object") }
            let inner = reader.nested("layers[\(position)].")
            let index = try inner.count(fields, "layer")
            guard index == position + 1 else { throw reader.error("layers[\(position)] has layer \(index), expected \(position + 1)") }
            layers.append(Layer(
                index: index, path: try inner.string(fields, "path"), kind: try inner.string(fields, "kind"),
                activation: try inner.optionalString(fields, "activation")))
            var evidence: [String] = []
            if let list = fields["evidence"], list != .null {
                guard let items = list.arrayValue, items.allSatisfy({ $0.stringValue != nil }) else {
                    throw inner.error("'evidence' must be an array of strings")
                }
                evidence = items.map { $0.stringValue! }
            }
            var verdict: GradientMonitor.Verdict?
            if let name = try inner.optionalString(fields, "verdict") {
                guard let known = GradientMonitor.Verdict(rawValue: name) else {
                    throw inner.error("unknown verdict '\(name)' (expected one of \(GradientMonitor.Verdict.allCases.map(\.rawValue).joined(separator: ", ")))")
                }
                verdict = known
            }
            values.append(LayerSample(
                gradientNorm: try inner.float(fields, "gradient_norm") ?? .nan, weightNorm: try inner.float(fields, "weight_norm"),
                updateRatio: try inner.float(fields, "update_ratio"), deadFraction: try inner.float(fields, "dead_fraction"),
                saturatedFraction: try inner.float(fields, "saturated_fraction"),
                preactivationMean: try inner.float(fields, "preactivation_mean"),
                preactivationStandardDeviation: try inner.float(fields, "preactivation_std"), verdict: verdict, evidence: evidence))
        }
        return (Sample(step: step, layers: values), layers)
    }
}

extension RunHistory.Step {
    /// A `step` record.
    fileprivate init(_ reader: RecordReader, _ object: [String: JSON]) throws {
        let skipped: Bool
        switch object["skipped"] {
        case nil, .null?: skipped = false
        case .bool(let value)?: skipped = value
        default: throw reader.error("'skipped' must be true or false")
        }
        self.init(
            step: try reader.count(object, "step"), loss: try reader.float(object, "loss") ?? .nan,
            gradientNorm: try reader.float(object, "gradient_norm") ?? .nan, learningRate: try reader.float(object, "learning_rate"),
            skipped: skipped)
    }
}

/// Reads the fields of one log line, with errors that name the line and field.
private struct RecordReader {
    let line: Int
    var prefix = ""

    func error(_ reason: String) -> RunLogError { RunLogError(line: line, reason: reason) }

    func nested(_ prefix: String) -> RecordReader { RecordReader(line: line, prefix: self.prefix + prefix) }

    /// The line's object, or nil for a line that ended before its JSON value did.
    func object(_ bytes: ArraySlice<UInt8>) throws -> [String: JSON]? {
        let value: JSON
        do {
            value = try JSON.parse(bytes)
        } catch {
            if error.offset == bytes.count { return nil }
            throw self.error("not valid JSON at byte \(error.offset) of the line: \(error.reason)")
        }
        guard let object = value.objectValue else { throw self.error("expected a JSON object") }
        return object
    }

    func string(_ object: [String: JSON], _ key: String) throws -> String {
        guard let value = object[key]?.stringValue else { throw error("'\(prefix)\(key)' must be a string") }
        return value
    }

    func optionalString(_ object: [String: JSON], _ key: String) throws -> String? {
        switch object[key] {
        case nil, .null?: return nil
        case .string(let value)?: return value
        default: throw error("'\(prefix)\(key)' must be a string or null")
        }
    }

    /// A non-negative integer.
    func count(_ object: [String: JSON], _ key: String) throws -> Int {
        guard let value = object[key]?.integerValue else { throw error("'\(prefix)\(key)' must be a non-negative integer") }
        return value
    }

    /// A number, or nil for null or a missing field. Numbers beyond Float's range become ±∞.
    func float(_ object: [String: JSON], _ key: String) throws -> Float? {
        switch object[key] {
        case nil, .null?: return nil
        case .number(let value)?: return Float(value)
        default: throw error("'\(prefix)\(key)' must be a number or null")
        }
    }
}
