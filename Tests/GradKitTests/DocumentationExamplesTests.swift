// GradKit — the DocC articles' examples, compiled and run, so the articles stay true. SPDX-License-Identifier: MIT
//
// Markdown cannot be compiled at run time, so each test below holds one ```swift block of an
// article in Sources/GradKit/GradKit.docc, line for line, with the names the article leaves to
// the reader (data, x, labels, directory) defined first and assertions added between the lines.
// "every line of the articles' Swift blocks is here" checks the correspondence (as ReadmeTests
// does for the README), so an edit to either side that breaks it fails.
import Testing

#if canImport(Glibc)
import Glibc
#endif
import GradKit

@Suite("Documentation examples")
struct DocumentationExamplesTests {
    /// The articles whose Swift blocks are mirrored here, and how many blocks each has.
    static let articles = ["YourOwnModel.md": 5, "DiagnosingARun.md": 3]

    /// A digits subset (64 features, 10 classes): enough for the examples, quick in debug builds.
    static func digits() -> Dataset { Dataset.digits().subset(Array(0..<256)) }

    // MARK: YourOwnModel.md

    @Test("freezing: the first layer gets no gradient, is not updated, and the monitor says frozen")
    func freezing() throws {
        let data = Self.digits()
        let model = Sequential([
            Linear(inputSize: 64, outputSize: 128), ReLU(),
            Linear(inputSize: 128, outputSize: 10),
        ])
        let before = model.layers[0].parameters.map(\.value.scalars)
        let headBefore = model.layers[2].parameters.map(\.value.scalars)

        model.layers[0].freeze()                                     // fine-tune the head only
        let trainable = model.parameters.filter(\.requiresGradient)  // the last Linear's weight and bias
        #expect(trainable.map(\.name) == ["2.weight", "2.bias"])
        let trainer = Trainer(model: model, optimizer: SGD(model.parameters, learningRate: 0.01), loss: .softmaxCrossEntropy,
                              options: TrainingOptions(epochs: 2, progress: .silent))
        try trainer.fit(data)
        let verdict = trainer.monitor.report.layers[0].verdict       // .frozen: no gradient, no update
        #expect(verdict == .frozen)
        #expect(model.layers[0].parameters.map(\.value.scalars) == before, "a frozen layer is not updated")
        #expect(model.layers[0].parameters.allSatisfy { $0.gradient == nil })
        #expect(model.layers[2].parameters.map(\.value.scalars) != headBefore, "the head trains")
        model.layers[0].unfreeze()
        #expect(model.parameters.allSatisfy { $0.requiresGradient })
    }

    @Test("parameter groups: each group's values, the optimizer's for the rest, settable between steps")
    func parameterGroups() {
        let model = Sequential([
            Linear(inputSize: 64, outputSize: 128), ReLU(),
            Linear(inputSize: 128, outputSize: 10),
        ])

        let sgd = SGD([
            ParameterGroup(model.layers[0].parameters, learningRate: 0.01),  // the body: smaller steps
            ParameterGroup(model.layers[2].parameters, weightDecay: 1e-4),   // the head: lr 0.1, with decay
        ], learningRate: 0.1, momentum: 0.9)
        #expect(sgd.parameterGroups.map(\.learningRate) == [0.01, 0.1])
        #expect(sgd.parameterGroups.map(\.weightDecay) == [0, 1e-4])
        #expect(sgd.parameterGroups.map(\.momentum) == [0.9, 0.9])
        sgd.parameterGroups[0].learningRate *= 0.5                         // between steps: param_groups[0]["lr"] *= 0.5
        #expect(sgd.parameterGroups.map(\.learningRate) == [0.005, 0.1])

        // One SGD step with these values against the equation by hand: p - lr * (g + wd * p).
        let weight = model.layers[2].parameters[0], body = model.layers[0].parameters[0]
        let (w0, b0) = (weight.value.scalars, body.value.scalars)
        weight.gradient = Tensor(shape: weight.shape, scalars: Array(repeating: 1, count: weight.scalarCount))
        body.gradient = Tensor(shape: body.shape, scalars: Array(repeating: 1, count: body.scalarCount))
        sgd.step()
        expectClose(weight.value.scalars, w0.map { $0 - 0.1 * (1 + 1e-4 * $0) }, relative: 1e-6)
        expectClose(body.value.scalars, b0.map { $0 - 0.005 * 1 }, relative: 1e-6)
    }

    @Test("parameter groups: AdamW without decay on vectors")
    func adamWGroups() {
        let model = Sequential([
            Linear(inputSize: 64, outputSize: 128), ReLU(),
            Linear(inputSize: 128, outputSize: 10),
        ])

        let matrices = model.parameters.filter { $0.shape.count >= 2 }
        let vectors = model.parameters.filter { $0.shape.count < 2 }
        let adamw = AdamW([ParameterGroup(matrices), ParameterGroup(vectors, weightDecay: 0)], learningRate: 1e-3)
        #expect(matrices.map(\.name) == ["0.weight", "2.weight"] && vectors.map(\.name) == ["0.bias", "2.bias"])
        #expect(adamw.parameterGroups.map(\.weightDecay) == [1e-2, 0], "AdamW's default decay for the matrices")
        #expect(adamw.parameterGroups.map(\.learningRate) == [1e-3, 1e-3])
    }

    @Test("hooks: forward, gradient (replacing and observing) and gradient-accumulated hooks run as described")
    func hooks() {
        let x = randomTensor([8, 64], seed: 11)
        let labels = (0..<8).map { $0 % 10 }
        let model = Sequential([
            Linear(inputSize: 64, outputSize: 128), ReLU(),
            Linear(inputSize: 128, outputSize: 10),
        ])
        // The reference: the head weight's gradient without hooks.
        softmaxCrossEntropy(logits: model(x), labels: labels).backward()
        let plainGradient = model.layers[2].parameters[0].gradient!.scalars
        for parameter in model.parameters { parameter.gradient = nil }

        var activations: [Tensor] = []
        let forwardHook = model.layers[1].registerForwardHook { layer, input, output in activations.append(output) }
        let headWeight = model.layers[2].parameters[0]
        headWeight.registerGradientHook { gradient in gradient * 0.5 }           // halve it before it is accumulated
        let hidden = model.layers[0](x)                                          // a recorded tensor
        var hiddenGradients: [Tensor] = []
        hidden.registerGradientHook { gradient in hiddenGradients.append(gradient); return nil }  // observe only
        var ready: [String] = []
        for parameter in model.parameters { parameter.registerGradientAccumulatedHook { ready.append($0.name) } }
        let logits = model.layers[2](model.layers[1](hidden))
        softmaxCrossEntropy(logits: logits, labels: labels).backward()
        forwardHook.remove()

        #expect(activations.count == 1 && activations[0].shape == [8, 128])
        #expect(activations[0].scalars.allSatisfy { $0 >= 0 }, "the ReLU's output")
        expectClose(headWeight.gradient!.scalars, plainGradient.map { $0 * 0.5 }, relative: 1e-6)
        #expect(hiddenGradients.count == 1 && hiddenGradients[0].shape == [8, 128])
        #expect(Set(ready) == Set(model.parameters.map(\.name)) && ready.count == 4)
        _ = withoutGradients { model(x) }
        #expect(activations.count == 1, "the removed forward hook no longer runs")
    }

    // MARK: DiagnosingARun.md

    @Test("anomaly mode names sqrt(), the backward pass and this file's line")
    func anomalyMode() throws {
        var checked = false

        let w = Parameter(Tensor([0, 4]), name: "w")
        do {
            try withAnomalyDetection {
                let loss = w.value.sqrt().sum()       // finite: √0 + √4 = 2
                #expect(loss.scalar == 2)
                loss.backward()                       // but d√w/dw = 1 / (2√w) is infinite at 0
            }
        } catch let error as AnomalyError {
            let message = "\(error)"                  // "infinity in the backward of sqrt(), recorded at Model.swift:4"
            let operation = error.operation           // "sqrt()"
            let direction = error.direction           // .backward: the gradient, not the output
            #expect(message.hasPrefix("infinity in the backward of sqrt(), recorded at DocumentationExamplesTests.swift:"))
            #expect(operation == "sqrt()")
            #expect(direction == .backward)
            #expect(error.callSite?.hasPrefix("DocumentationExamplesTests.swift:") == true)
            checked = true
        }
        #expect(checked, "withAnomalyDetection threw no AnomalyError")
        #expect(w.gradient == nil, "nothing is accumulated from a poisoned sweep")
    }

    @Test("run reports: the callbacks' report, TensorBoard events and log, then reports from the history and the log")
    func runReports() throws {
        let data = Self.digits()
        let directory = try temporaryDirectory()
        let model = Sequential([
            Linear(inputSize: 64, outputSize: 128), ReLU(),
            Linear(inputSize: 128, outputSize: 10),
        ])

        let options = TrainingOptions(epochs: 3, progress: .silent, logPath: directory + "/run.jsonl")
        let trainer = Trainer(model: model, optimizer: SGD(model.parameters, learningRate: 0.01), loss: .softmaxCrossEntropy, options: options)
        trainer.callbacks = [ReportWriter(directory: directory + "/report"), TensorBoardLogger(directory: directory + "/tensorboard")]
        try trainer.fit(data)
        #expect(trainer.completedSteps == 3 * 8)
        #expect(Self.files(directory + "/report").contains("report.md"))
        #expect(Self.files(directory + "/tensorboard").contains { $0.hasPrefix("events.out.tfevents.") })

        let history = trainer.monitor.history                          // layers, steps and samples, bounded
        try history.writeReport(to: directory + "/again")
        let logged = try RunHistory(jsonLinesAt: directory + "/run.jsonl")
        try logged.writeReport(to: directory + "/from-log")
        let board = try TensorBoardWriter(directory: directory + "/custom")
        board.addScalar("hidden/mean", model.layers[0].parameters[0].value.mean().scalar, step: trainer.completedSteps)
        board.addHistogram("hidden/weight", values: model.layers[0].parameters[0].value, step: trainer.completedSteps)
        try board.close()

        #expect(history.steps.count == 24 && logged.steps.count == 24)
        #expect(logged.steps.map(\.loss) == history.steps.map(\.loss), "the log holds the run's losses")
        #expect(Self.files(directory + "/again").contains("report.md"))
        #expect(Self.files(directory + "/from-log").contains("report.md"))
        #expect(Self.files(directory + "/custom").contains { $0.hasPrefix("events.out.tfevents.") })
    }

    // MARK: The correspondence

    @Test("every line of the articles' Swift blocks is here")
    func articleLinesAreTested() throws {
        var root = #filePath.split(separator: "/", omittingEmptySubsequences: false)
        root.removeLast(3)  // Tests/GradKitTests/DocumentationExamplesTests.swift
        let catalog = root.joined(separator: "/") + "/Sources/GradKit/GradKit.docc/"
        let tested = Set(try ReadmeTests.text(#filePath).split(separator: "\n").map(ReadmeTests.code))
        for (article, blockCount) in Self.articles.sorted(by: { $0.key < $1.key }) {
            let blocks = ReadmeTests.swiftBlocks(try ReadmeTests.text(catalog + article))
            #expect(blocks.count == blockCount, "\(article)'s ```swift blocks")
            let missing = blocks.joined().filter { !$0.1.isEmpty && !tested.contains($0.1) }
            #expect(missing.isEmpty, "not in DocumentationExamplesTests.swift: \(missing.map { "\(article):\($0.0): \($0.1)" })")
        }
    }

    /// The names in a directory (none when it cannot be opened).
    static func files(_ path: String) -> [String] {
        guard let directory = opendir(path) else { return [] }
        defer { closedir(directory) }
        var names: [String] = []
        while let entry = readdir(directory) {
            names.append(withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) })
        }
        return names
    }
}
