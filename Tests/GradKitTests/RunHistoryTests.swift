// A run's history: bounded series, the JSON-lines log both ways, the Markdown/SVG report, and a
// monitored digits run with TensorBoard output.
import Testing
#if canImport(Glibc)
import Glibc
#endif

@testable import GradKit

/// A monitored loop that writes the log as ``Trainer`` does (a `step` record per step) plus the
/// monitor's `layers` record after each sampled step.
func loggedRun(
    _ model: any Layer, steps: Int, sampleEvery: Int = 1, maximumHistoryLength: Int = 10_000, input: Tensor, labels: [Int]
) throws -> (GradientMonitor, String) {
    let monitor = GradientMonitor(model: model, sampleEvery: sampleEvery, window: 5, maximumHistoryLength: maximumHistoryLength)
    let optimizer = SGD(model.parameters, learningRate: 0.05, momentum: 0.9)
    var lines: [String] = []
    for step in 0..<steps {
        optimizer.learningRate = 0.05 / Float(1 + step / 10)
        let loss = monitor.observeForward { softmaxCrossEntropy(logits: model(input), labels: labels) }
        loss.backward()
        let decision = try monitor.inspectGradients(loss: loss.scalar, learningRate: optimizer.learningRate)
        if decision == .step {
            monitor.willStep()
            optimizer.step()
            monitor.didStep()
        }
        optimizer.zeroGradients()
        lines.append(JSON.object([
            "type": .string("step"), "epoch": .number(0), "step": .number(Double(step)), "loss": .number(Double(loss.scalar)),
            "gradient_norm": .number(Double(decision == .step ? monitor.lastGradientNorm : .nan)),
            "learning_rate": .number(Double(optimizer.learningRate)), "skipped": .bool(decision != .step), "clipped": .bool(false),
            "future_field": .string("ignored"),
        ]).text)
        if let layers = monitor.layersLogLine() { lines.append(layers) }
        if step == steps / 2 { lines.append(#"{"type":"epoch","epoch":1,"loss":0.5,"accuracy":null}"#) }
    }
    return (monitor, lines.joined(separator: "\n") + "\n")
}

/// Steps equal, NaN equal to NaN (a skipped step's loss and norm are NaN in a log).
func sameSteps(_ a: [RunHistory.Step], _ b: [RunHistory.Step]) -> Bool {
    func same(_ x: Float, _ y: Float) -> Bool { x == y || (x.isNaN && y.isNaN) || (!x.isFinite && !y.isFinite) }
    return a.count == b.count && zip(a, b).allSatisfy { x, y in
        x.step == y.step && x.skipped == y.skipped && x.learningRate == y.learningRate && same(x.loss, y.loss) && same(x.gradientNorm, y.gradientNorm)
    }
}

@Suite("Run history and reports")
struct RunHistoryTests {
    let input = randomTensor([48, 16], seed: 21, in: -2...2)
    var labels: [Int] { (0..<48).map { $0 % 4 } }

    @Test("a decimated series keeps exactly the offers i with (i + 1) % stride == 0, for even and odd capacities")
    func decimation() {
        for capacity in [2, 3, 4, 5, 7, 8] {
            var series = DecimatedSeries<Int>(capacity: capacity)
            for n in 1...200 {
                series.offer(n - 1)
                let expected = (0..<n).filter { ($0 + 1) % series.stride == 0 }
                #expect(series.elements == expected, "capacity \(capacity) after \(n) offers: \(series.elements), stride \(series.stride)")
                #expect(series.elements.count < capacity)
                if series.elements != expected { return }
            }
        }
    }

    @Test("the monitor keeps every step and sampled step, bounded, and its gradient-norm history is the samples'")
    func monitorHistory() throws {
        let model = withManualSeed(31) { MLP(sizes: [16, 24, 24, 4], activation: .relu) }
        let (monitor, _) = try loggedRun(model, steps: 37, sampleEvery: 3, maximumHistoryLength: 6, input: input, labels: labels)
        let history = monitor.history
        #expect(history.stepCount == 37 && history.skippedStepCount == 0)
        #expect(history.layers.map(\.path) == ["0", "2", "4"] && monitor.layerPaths == ["0", "2", "4"])
        #expect(history.layers.map(\.activation) == ["ReLU", "ReLU", nil] && history.layers.map(\.index) == [1, 2, 3])
        // 37 steps into 6 slots: steps i with (i + 1) % stride == 0.
        #expect(history.steps.map(\.step) == (0..<37).filter { ($0 + 1) % history.stepStride == 0 } && history.steps.count < 6)
        // 13 sampled steps (0, 3, ..., 36): the kept ones are the sampled steps at positions j with (j + 1) % stride == 0.
        let sampled = Array(stride(from: 0, to: 37, by: 3))
        #expect(history.samples.map(\.step) == sampled.indices.filter { ($0 + 1) % history.sampleStride == 0 }.map { sampled[$0] })
        #expect(monitor.gradientNormHistory == history.layers.indices.map { i in history.samples.map { $0.layers[i].gradientNorm } })
        #expect(monitor.historyStride == history.sampleStride)
        #expect(history.series(layer: 2, \.deadFraction).allSatisfy(\.isNaN) && history.series(layer: 0, \.deadFraction).allSatisfy { $0 >= 0 && $0 <= 1 })
        #expect(history.series(layer: 1, \.weightNorm) == history.samples.map { $0.layers[1].weightNorm! })
        // Every kept sample was completed after its step: weights measured, verdict given (the log line judged it).
        for sample in history.samples {
            #expect(sample.layers.allSatisfy { $0.weightNorm != nil && $0.updateRatio != nil && $0.verdict != nil })
            #expect(sample.layers[0].deadFraction != nil && sample.layers[2].deadFraction == nil)
        }
        // The latest sample (step 36, decimated away from `samples`) agrees with the monitor's report.
        let report = monitor.report, latest = try #require(history.latestSample)
        #expect(latest.step == 36 && history.samples.last!.step < 36)
        #expect(latest.layers.map(\.verdict) == report.layers.map(\.verdict) && latest.layers.map(\.evidence) == report.layers.map(\.evidence))
        #expect(latest.layers.map(\.weightNorm) == report.layers.map(\.weightNorm))
        #expect(history.steps.last!.learningRate == 0.05 / 4)
    }

    @Test("a log written step by step rebuilds the monitor's history; skipped steps and unknown records are tolerated")
    func logRoundTrip() throws {
        let model = withManualSeed(32) { Sequential([Linear(inputSize: 16, outputSize: 12), Poison(on: [4, 9]), Tanh(), Linear(inputSize: 12, outputSize: 4)]) }
        let (monitor, log) = try loggedRun(model, steps: 30, sampleEvery: 2, maximumHistoryLength: 8, input: input, labels: labels)
        let parsed = try RunHistory(parsing: Array(log.utf8), maximumLength: 8)
        let original = monitor.history
        #expect(parsed.layers == original.layers)
        #expect(parsed.stepCount == 30 && parsed.skippedStepCount == 2 && original.skippedStepCount == 2)
        #expect(sameSteps(parsed.steps, original.steps), "\(parsed.steps) vs \(original.steps)")
        #expect(parsed.samples == original.samples && parsed.latestSample == original.latestSample)
        #expect(parsed.stepStride == original.stepStride && parsed.sampleStride == original.sampleStride)
        #expect(parsed.samples.last!.layers[0].saturatedFraction != nil)

        // The same renderer gives the same report from the monitor and from its log.
        let direct = try temporaryDirectory(), fromLog = try temporaryDirectory()
        try monitor.writeReport(to: direct)
        let path = fromLog + "/run.jsonl"
        _ = FileIO.writeAtomically(Array(log.utf8), to: path)
        try RunHistory(jsonLinesAt: path, maximumLength: 8).writeReport(to: fromLog + "/report")
        #expect(try fileBytes(direct + "/report.md") == fileBytes(fromLog + "/report/report.md"))
        for name in try #require(try figureNames(direct + "/report.md")) {
            #expect(try fileBytes(direct + "/figures/" + name) == fileBytes(fromLog + "/report/figures/" + name), "\(name)")
        }
    }

    @Test("a restart in a log (a resume from an earlier checkpoint, a second run in the same file) replaces the records from its step on")
    func restartedLogs() throws {
        let model = withManualSeed(34) { Sequential([Linear(inputSize: 16, outputSize: 12), Poison(on: [4, 9]), Tanh(), Linear(inputSize: 12, outputSize: 4)]) }
        let (_, log) = try loggedRun(model, steps: 30, sampleEvery: 2, input: input, labels: labels)
        let lines = log.split(separator: "\n").map(String.init)
        func step(_ line: String) -> Int? {
            guard line.contains(#""type":"step""#) else { return nil }
            return try? JSON.parse(line).objectValue?["step"]?.integerValue
        }
        func parsed(_ lines: [String], maximumLength: Int = 10_000) throws -> RunHistory {
            try RunHistory(parsing: Array((lines.joined(separator: "\n") + "\n").utf8), maximumLength: maximumLength)
        }
        func same(_ a: RunHistory, _ b: RunHistory) -> Bool {
            a.stepCount == b.stepCount && a.skippedStepCount == b.skippedStepCount && sameSteps(a.steps, b.steps)
                && a.samples == b.samples && a.latestSample == b.latestSample && a.layers == b.layers
        }
        let whole = try parsed(lines)
        #expect(whole.stepCount == 30 && whole.skippedStepCount == 2 && whole.restartLines.isEmpty)
        // Crashed after step 12, resumed from a checkpoint taken after step 2: steps 3 to 12 (skipped step 4 and
        // 9 among them) are logged twice; the later copy is the run's.
        let crash = try #require(lines.firstIndex { step($0) == 13 }), resume = try #require(lines.firstIndex { step($0) == 3 })
        let resumed = try parsed(Array(lines[..<crash] + lines[resume...]))
        #expect(same(resumed, whole) && resumed.restartLines == [crash + 1] && resumed.cutLines.isEmpty)
        // A second run appended to the same log: only it is reported.
        let twice = try parsed(lines + lines)
        #expect(same(twice, whole) && twice.restartLines == [lines.count + 1])
        // A restart at the very first step of a one-step prefix, and one under decimation: bounded, steps increasing.
        #expect(try parsed(Array(lines[...1]) + lines).restartLines == [3])
        let decimated = try parsed(Array(lines[..<crash] + lines[resume...] + lines), maximumLength: 4)
        #expect(decimated.stepCount == 30 && decimated.skippedStepCount == 2 && decimated.restartLines.count == 2)
        #expect(decimated.steps.count < 4 && zip(decimated.steps, decimated.steps.dropFirst()).allSatisfy { $0.step < $1.step })
        #expect(decimated.latestSample?.step == whole.latestSample?.step)
    }

    @Test("a malformed log line is named by its number; a line cut off before its end is skipped and named")
    func malformedLogs() throws {
        func error(_ text: String) -> RunLogError? {
            do {
                _ = try RunHistory(parsing: Array(text.utf8))
                return nil
            } catch let error as RunLogError {
                return error
            } catch {
                return RunLogError(line: nil, reason: "unexpected \(error)")
            }
        }
        let step = #"{"type":"step","step":0,"loss":1,"gradient_norm":2,"learning_rate":0.1,"skipped":false}"#
        let layers = #"{"type":"layers","step":0,"layers":[{"layer":1,"path":"0","kind":"Linear","gradient_norm":1,"verdict":"healthy"}]}"#
        #expect(error("\(step)\n\n{\"type\":\"step\",\"step\":1,]\n")?.line == 3)
        #expect(try RunHistory(parsing: Array("\(step)\n\n{\"type\":\"step\",\"step\":1,\n\(step)".utf8)).cutLines == [3])
        #expect(error("\(step)\n[1,2]\n")?.reason == "expected a JSON object")
        #expect(error(#"{"step":1}"#)?.reason == "'type' must be a string")
        #expect(error(#"{"type":"step","step":-1,"loss":1}"#)?.reason == "'step' must be a non-negative integer")
        #expect(error(#"{"type":"step","step":1,"loss":"low"}"#)?.reason == "'loss' must be a number or null")
        #expect(error(#"{"type":"step","step":1,"skipped":"no"}"#)?.reason == "'skipped' must be true or false")
        #expect(error(layers.replacingOccurrences("healthy", with: "sleepy"))?.reason.hasPrefix("layers[0].verdict") == false)
        #expect(error(layers.replacingOccurrences("healthy", with: "sleepy"))?.reason.contains("unknown verdict 'sleepy'") == true)
        #expect(error(layers.replacingOccurrences(#""layer":1"#, with: #""layer":2"#))?.reason == "layers[0] has layer 2, expected 1")
        #expect(error(layers.replacingOccurrences(#""kind":"Linear","#, with: ""))?.reason == "'layers[0].kind' must be a string")
        #expect(error(layers + "\n" + layers.replacingOccurrences(#""path":"0""#, with: #""path":"1""#))?.line == 2)
        #expect(error("") == nil && error("\n \n\(step)\r\n{\"type\":\"checkpoint\",\"x\":[1]}\n") == nil)
        // Every prefix of a valid log parses: a line cut off (a crash mid-write, a full disk) is skipped and
        // named, the lines before it are read whole; so is a cut line that more records follow.
        let model = withManualSeed(33) { MLP(sizes: [16, 8, 4]) }
        let log = Array(try loggedRun(model, steps: 3, input: input, labels: labels).1.utf8)
        let lines = log.split(separator: 0x0A, omittingEmptySubsequences: false).dropLast()
        let ends = lines.reduce(into: [Int]()) { $0.append(($0.last.map { $0 + 1 } ?? 0) + $1.count) }
        let isStep = lines.map { String(decoding: $0, as: UTF8.self).contains(#""type":"step""#) }
        #expect(isStep.filter { $0 }.count == 3)
        for length in 0...log.count {
            let history = try RunHistory(parsing: Array(log.prefix(length)))
            let whole = ends.filter { $0 <= length }.count
            #expect(history.stepCount == isStep.prefix(whole).filter { $0 }.count)
            #expect(history.cutLines == (whole < lines.count && length > ends[whole] - lines[whole].count ? [whole + 1] : []), "\(length)")
        }
        let joined = try RunHistory(parsing: Array(log.prefix(ends[1] - 5)) + [0x0A] + log)
        #expect(joined.cutLines == [2] && joined.stepCount == 3)
        #expect(joined.restartLines == (isStep[0] ? [3] : []))
        #expect(throws: RunLogError.self) { try RunHistory(parsing: Array(#"{"type":"step",}"#.utf8) + [0x0A] + log) }
        // Cut inside an escape or a surrogate pair, or before the CR of a CR LF line: still a cut line.
        let escaped = Array(#"{"type":"step","step":1,"loss":1,"note":"\ud83d\ude00 \u00e9\n"}"#.utf8)
        for length in 1..<escaped.count {
            let text = Array(step.utf8) + [0x0D, 0x0A] + escaped.prefix(length) + [0x0D, 0x0A] + Array(step.utf8) + [0x0D, 0x0A]
            #expect(try RunHistory(parsing: text).cutLines == [2], "\(String(decoding: escaped.prefix(length), as: UTF8.self))")
        }
        #expect(try RunHistory(parsing: escaped + [0x0D, 0x0A]).stepCount == 1)
        // A crash's unwritten tail of zero bytes: a line of zeros is a cut line, zeros after a record are ignored,
        // zeros after a cut record leave it cut. A byte-order mark at the start is not part of the first record.
        let zeros = [UInt8](repeating: 0, count: 4096)
        let zeroTail = try RunHistory(parsing: Array(log) + zeros)
        #expect(zeroTail.stepCount == 3 && zeroTail.cutLines == [lines.count + 1])
        #expect(try RunHistory(parsing: Array(log) + zeros + [0x0A] + log).cutLines == [lines.count + 1])
        #expect(try RunHistory(parsing: Array(step.utf8) + zeros).cutLines.isEmpty)
        #expect(try RunHistory(parsing: Array(step.utf8.dropLast(3)) + zeros).cutLines == [1])
        #expect(error("{\"type\":\"step\",\u{0}\"step\":0}")?.line == 1)
        #expect(try RunHistory(parsing: [0xEF, 0xBB, 0xBF] + log).stepCount == 3)
        #expect(error("\n\u{FEFF}" + step)?.line == 2)
        #expect(throws: RunLogError(path: "/nonexistent/run.jsonl", line: nil, reason: "cannot read: No such file or directory")) {
            try RunHistory(jsonLinesAt: "/nonexistent/run.jsonl")
        }
    }

    @Test("the report has a verdict table, at least four well-formed figures, and captions with the run's numbers")
    func report() throws {
        let model = withManualSeed(34) { MLP(sizes: [16, 24, 24, 4], activation: .relu) }
        let (monitor, _) = try loggedRun(model, steps: 25, input: input, labels: labels)
        let history = monitor.history
        let (markdown, figures) = history.renderReport()
        #expect(figures.count >= 5 && Set(figures.map(\.fileName)).count == figures.count)
        for figure in figures {
            #expect(figure.svg.hasPrefix("<svg xmlns=\"http://www.w3.org/2000/svg\"") && wellFormedXML(figure.svg), "\(figure.fileName)")
            #expect(markdown.contains("](figures/\(figure.fileName))") && markdown.contains("*\(figure.caption)*"))
        }
        let table = markdown.split(separator: "\n").filter { $0.hasPrefix("| ") && !$0.hasPrefix("| layer") }
        #expect(table.count == 3)
        for (row, layer) in zip(table, history.layers) { #expect(row.hasPrefix("| \(layer.index) | \(layer.path) | \(layer.kind) |")) }
        // Captions quote the history's own numbers.
        let steps = history.steps
        let lowest = steps.min { $0.loss < $1.loss }!
        let loss = try #require(figures.first { $0.fileName == "loss.svg" })
        #expect(loss.caption.contains("\(fixed(steps[0].loss)) at step 0, \(fixed(steps.last!.loss)) at step 24, lowest \(fixed(lowest.loss)) at step \(lowest.step)"), "\(loss.caption)")
        let rate = try #require(figures.first { $0.fileName == "learning-rate.svg" })
        #expect(rate.caption.contains("\(scientific(0.05)) at step 0, \(scientific(Float(0.05) / 3)) at step 24"), "\(rate.caption)")
        let ratio = try #require(figures.first { $0.fileName == "first-last-ratio.svg" })
        let last = history.samples.last!
        #expect(ratio.caption.contains("\(scientific(Float(Double(last.layers[0].gradientNorm) / Double(last.layers[2].gradientNorm)))) at step 24"), "\(ratio.caption)")
        let verdicts = last.layers.map { $0.verdict! }
        #expect(markdown.contains("**Verdict:** " + (verdicts.allSatisfy { $0 == .healthy } ? "At step 24 every monitored layer (3) is healthy." : "At step 24: layer")))

        // Writing: directories created, an empty path refused, an unwritable one named.
        let directory = try temporaryDirectory() + "/deep/er"
        try monitor.writeReport(to: directory)
        #expect(try figureNames(directory + "/report.md")?.count == figures.count)
        #expect(throws: ReportError.emptyPath) { try monitor.writeReport(to: "") }
        let file = try temporaryDirectory() + "/plain"
        _ = FileIO.writeAtomically([1], to: file)
        #expect(throws: ReportError.self) { try history.writeReport(to: file) }
        // All or none: with one figure's path taken by a directory, the report written before stays whole.
        let before = String(decoding: try FileIO.readAll(directory + "/report.md").get(), as: UTF8.self)
        let blocked = directory + "/figures/" + figures[figures.count / 2].fileName
        #expect(unlink(blocked) == 0 && mkdir(blocked, 0o755) == 0)
        var longer = history
        longer.append(RunHistory.Step(step: 25, loss: 1, gradientNorm: 1, learningRate: nil, skipped: false))
        #expect(throws: ReportError.cannotWrite(path: blocked, reason: "is a directory, not a regular file; refusing to replace it")) {
            try longer.writeReport(to: directory)
        }
        #expect(String(decoding: try FileIO.readAll(directory + "/report.md").get(), as: UTF8.self) == before)
        #expect(FileIO.entries(of: directory).sorted() == ["figures", "report.md"])
        #expect(FileIO.entries(of: directory + "/figures").count == figures.count)
        // A history with no sampled step still reports, without per-layer figures.
        var empty = RunHistory(layers: history.layers)
        empty.append(RunHistory.Step(step: 0, loss: 2, gradientNorm: 1, learningRate: nil, skipped: false))
        let (text, only) = empty.renderReport()
        #expect(only.map(\.fileName) == ["loss.svg"] && text.contains("No sampled step with finite gradients"))
    }

    @Test("text from a log reaches report.md literally: no control characters, no raw HTML, no extra table cells")
    func hostileNames() throws {
        let model = withManualSeed(34) { MLP(sizes: [16, 24, 4], activation: .relu) }
        var history = try loggedRun(model, steps: 5, input: input, labels: labels).0.history
        history.layers[0].path = "<b>x</b>|\u{1B}[31m&lt;[a](u)*_`\\"
        let (markdown, _) = history.renderReport()
        #expect(!markdown.contains("<b>") && !markdown.contains("\u{1B}"))
        let row = try #require(markdown.split(separator: "\n").first { $0.hasPrefix("| 1 |") })
        #expect(row.contains(#"| \<b\>x\</b\>\|\\u{1B}\[31m\&lt;\[a\](u)\*\_\`\\ |"#), "\(row)")
    }

    @Test("a digits MLP trained by the Trainer: report with four or more figures, TensorBoard scalars and histograms for every layer")
    func trainedDigits() throws {
        let data = try Standardizer(fitting: Dataset.digits()).transform(Dataset.digits())
        let model = withManualSeed(35) { MLP(sizes: [64, 48, 32, 10], activation: .relu, initializer: .heNormal()) }
        let monitor = GradientMonitor(model: model, sampleEvery: 4)
        monitor.capturesGradientHistograms = true
        let trainer = Trainer(
            model: model, optimizer: Adam(model.parameters, learningRate: 3e-3), loss: .softmaxCrossEntropy,
            options: TrainingOptions(epochs: 2, batchSize: 64, progress: .silent), monitor: monitor)
        let boardDirectory = try environment("GRADKIT_TENSORBOARD_DIR") ?? temporaryDirectory() + "/board"
        let board = try TensorBoardWriter(directory: boardDirectory)
        var sampledSteps: [Int] = []
        trainer.onStep = { record in
            if monitor.sampleOfLastStep != nil { sampledSteps.append(record.step) }
            board.addSampledStep(of: monitor, step: record.step, loss: record.loss, accuracy: 0.5, learningRate: record.learningRate)
        }
        let history = try trainer.fit(data)
        try board.close()
        let reportDirectory = try environment("GRADKIT_REPORT_DIR") ?? temporaryDirectory() + "/report"
        try monitor.writeReport(to: reportDirectory)
        let names = try #require(try figureNames(reportDirectory + "/report.md"))
        #expect(names.count >= 4, "\(names)")
        for name in names { #expect(wellFormedXML(String(decoding: try fileBytes(reportDirectory + "/figures/" + name), as: UTF8.self)), "\(name)") }

        // Read the event file back: a gradient-norm scalar for every layer at every sampled step, a histogram per layer.
        let records = try #require(readTFRecords(try fileBytes(board.path)))
        let events = records.compactMap(DecodedEvent.init)
        #expect(events.count == records.count && events[0].fileVersion == "brain.Event:2")
        let layerCount = monitor.layerPaths.count
        #expect(sampledSteps == history.steps.map(\.step).filter { $0 % 4 == 0 } && layerCount == 3)
        for (i, path) in monitor.layerPaths.enumerated() {
            let tag = "layer_0\(i + 1)_\(path)"
            let normSteps = events.filter { $0.scalars["gradient_norm/" + tag] != nil }.map(\.step)
            #expect(normSteps == sampledSteps, "\(tag)")
            let histograms = events.filter { $0.histograms["gradient/" + tag] != nil }
            #expect(histograms.map(\.step) == sampledSteps)
            // The last histogram counts every weight gradient of the layer.
            let weights = model.parameters.filter { $0.name == path + ".weight" }.reduce(0) { $0 + $1.scalarCount }
            #expect(packedDoubles(histograms.last!.histograms["gradient/" + tag]!, 7).reduce(0, +) == Double(weights), "\(tag)")
        }
        #expect(events.filter { $0.scalars["loss"] != nil }.count == history.steps.count)
    }
}

/// The figure files a report.md links, in order.
func figureNames(_ reportPath: String) throws -> [String]? {
    let text = String(decoding: try fileBytes(reportPath), as: UTF8.self)
    return text.split(separator: "\n").compactMap { line -> String? in
        guard line.hasPrefix("!["), let open = line.firstRange(of: "](figures/") else { return nil }
        return String(line[open.upperBound...].dropLast())
    }
}

func environment(_ name: String) -> String? { getenv(name).map { String(cString: $0) } }

extension String {
    fileprivate func replacingOccurrences(_ target: String, with replacement: String) -> String {
        var result = "", rest = Substring(self)
        while let range = rest.firstRange(of: target) {
            result += rest[..<range.lowerBound] + replacement
            rest = rest[range.upperBound...]
        }
        return result + rest
    }
}
