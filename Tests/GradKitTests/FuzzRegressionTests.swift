// GradKit — the fuzz targets' committed inputs, replayed, and the bugs fuzzing found. SPDX-License-Identifier: MIT
import Testing
#if canImport(Glibc)
import Glibc
#endif

@testable import GradKit
@testable import GradKitFuzz
@testable import gradkit

/// A path under `Fuzz/` at the package's root.
func fuzzPath(_ name: String, file: String = #filePath) -> String {
    var parts = file.split(separator: "/", omittingEmptySubsequences: false)
    parts.removeLast(3)  // Tests/GradKitTests/FuzzRegressionTests.swift
    return parts.joined(separator: "/") + "/Fuzz/" + name
}

/// The files of a committed input directory (none when it does not exist).
private func committedInputs(_ directory: String) -> [String] {
    guard let stream = opendir(fuzzPath(directory)) else { return [] }
    closedir(stream)
    return inputFiles(fuzzPath(directory))
}

/// The bytes of a committed input.
private func committedInput(_ name: String) throws -> [UInt8] { try FileIO.readAll(fuzzPath(name)).get() }

@Suite("Fuzzing")
struct FuzzRegressionTests {
    // Without the fuzzing build: what the fuzzer once found stays found.
    @Test("every committed corpus and regression input runs through its target", arguments: FuzzTarget.allCases)
    func replay(_ target: FuzzTarget) throws {
        let corpus = committedInputs("corpus/\(target.rawValue)"), regressions = committedInputs("regressions/\(target.rawValue)")
        #expect(corpus.count >= 10, "\(target): \(corpus.count) seeds")
        for path in corpus + regressions { target.run(try FileIO.readAll(path).get()) }
    }

    @Test("the committed seeds are what the generator writes (but for training runs, which depend on the CPU's kernels)")
    func seedsAreGenerated() throws {
        let generated: [FuzzTarget: [String: [UInt8]]] = [.safetensors: Seeds.safetensors(), .idx: Seeds.idx(), .csv: Seeds.csv(), .log: Seeds.log(), .arguments: Seeds.arguments()]
        for (target, files) in generated {
            for (name, bytes) in files where !name.hasPrefix("gradkit-checkpoint-") && !name.hasPrefix("trainer-") && name != "truncated.safetensors" {
                #expect(try committedInput("corpus/\(target.rawValue)/\(name)") == bytes, "\(target.rawValue)/\(name) differs from Seeds.swift")
            }
        }
    }

    @Test("the corpus's GradKit checkpoints read and restore into the harness's trainer", arguments: ["SGD", "AdaGrad", "RMSprop", "Adam", "AdamW"])
    func seedCheckpointsRestore(_ kind: String) throws {
        let checkpoint = try Checkpoint.read(from: fuzzPath("corpus/safetensors/gradkit-checkpoint-\(kind).safetensors"))
        #expect(checkpoint.optimizer?.kind == kind)
        #expect(checkpoint.bestModel != nil && checkpoint.randomState["dropout:2"] != nil)
        let model = SafeTensorsTarget.model()
        let trainer = Trainer(model: model, optimizer: SafeTensorsTarget.optimizer(kind: kind, model), loss: .softmaxCrossEntropy)
        try trainer.restore(checkpoint)
        #expect(trainer.completedEpochs == 2)
    }

    // The arguments target must see what the tool sees: a command line it refuses is refused
    // with the same message, one it accepts is accepted (those are not run here: they train).
    @Test("the arguments target refuses the near-miss command lines with the tool's own usage errors and accepts the others")
    func seedCommandLines() throws {
        let refused = [
            "unknown-command", "empty-command", "operand-after-options-end", "unknown-option", "short-option", "option-twice", "value-missing", "flag-with-value", "out-of-range",
            "other-command-option", "conflicting-sources", "bad-lists", "lr-range",
        ]
        for (name, bytes) in Seeds.arguments() {
            let words = ArgumentsTarget.words(bytes)
            let base = String(name.dropLast(".args".count))
            if refused.contains(base) {
                let error = #expect(throws: UsageError.self, "\(base)") { try checkArguments(words) }
                let (status, message) = execute(words)
                #expect(status == 2 && message?.hasPrefix(error?.description ?? "?") == true, "\(base): \(message ?? "no error")")
            } else {
                #expect(throws: Never.self, "\(base)") { try checkArguments(words) }
            }
        }
    }

    @Test("the corpus's training log has step and layers records of three layers")
    func seedLog() throws {
        let history = try RunHistory(parsing: committedInput("corpus/log/trainer-run.jsonl"))
        #expect(history.stepCount == 4 && history.samples.count == 4)
        #expect(history.layers.map(\.activation) == ["ReLU", "tanh", nil])
    }
}

/// Bugs the fuzz targets found, one test each; the inputs are under `Fuzz/regressions/`.
@Suite("Fuzzing finds")
struct FuzzFindingTests {
    @Test("a report shows a dead fraction beyond Int's range as it is (log: report-dead-fraction-1e30.jsonl)")
    func reportFractionBeyondInt() async throws {
        // The old code trapped converting 1e32 % to Int: run it where a trap is an answer.
        let result = await #expect(processExitsWith: .success, observing: [\.standardOutputContent]) {
            print(try RunHistory(parsing: committedInput("regressions/log/report-dead-fraction-1e30.jsonl")).renderReport().markdown)
        }
        let markdown = String(decoding: result?.standardOutputContent ?? [], as: UTF8.self)
        #expect(markdown.contains("| dead \(Double(Float(1e30)) * 100)% |"), "\(markdown)")
    }

    // One step numbered 2^53 - 1 gave the loss figure an x range of width 0 (±0.5 rounds away
    // there), a tick step of 0 and a tick loop that never ended (log: report-one-step-beyond-2-53.jsonl).
    @Test("a linear scale is wide enough for its magnitude and has a few ticks", arguments: [
        [9007199254740991.0], [1e20, 1e20 + 16384], [1e300, 1e300], [-1.7e308, 1.7e308], [-Double.leastNonzeroMagnitude, Double.leastNonzeroMagnitude], [0.25, 0.25],
    ], [true, false])
    func scaleOfExtremeValues(_ values: [Double], nice: Bool) throws {
        let scale = Scale(values: values, log: false, length: 100, padFraction: 0.04, nice: nice)
        let width = scale.high - scale.low
        // A tick step of a sixth of the width must change a value of the range's magnitude.
        try #require(width.isFinite && width > 0, "range \(scale.low)...\(scale.high)")
        try #require(width / 6 > 4 * Swift.max(Swift.abs(scale.low), Swift.abs(scale.high)).ulp, "range \(scale.low)...\(scale.high)")
        let ticks = scale.ticks
        #expect((2...12).contains(ticks.count), "\(ticks.map(\.value))")
        let slack = width * 1e-9  // the tick loop's own tolerance for rounding in its additions
        #expect(ticks.allSatisfy { $0.value >= scale.low - slack && $0.value <= scale.high + slack }, "\(ticks.map(\.value))")
        for value in values where Swift.abs(value) < 1e300 {
            #expect((0...100).contains(scale.position(value)), "\(value) at \(scale.position(value))")
        }
    }

    @Test("the report of one step numbered 2^53 - 1 plots its loss (log: report-one-step-beyond-2-53.jsonl)")
    func reportOfStepBeyond2To53() throws {
        try #require(Scale(values: [9007199254740991], log: false, length: 1, padFraction: 0, nice: false).high > 9007199254740991)
        let (markdown, figures) = try RunHistory(parsing: committedInput("regressions/log/report-one-step-beyond-2-53.jsonl")).renderReport()
        #expect(figures.map(\.fileName) == ["loss.svg", "learning-rate.svg"])
        #expect(markdown.contains("1 at step 9007199254740991"), "\(markdown)")
    }
}
