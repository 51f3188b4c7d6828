// GradKit — tests of gradkit diagnose: train's options, the lab's networks, strictness. SPDX-License-Identifier: MIT
@testable import gradkit
import GradKit
import Testing

/// The diagnosis `gradkit diagnose arguments` prints.
private func diagnosis(_ arguments: [String]) throws -> Diagnosis {
    try gradkit.diagnosis(TrainConfiguration(ParsedArguments(arguments, for: .diagnose)))
}

/// The lab's vanishing-gradient network as options: 64 inputs, 19 hidden layers of 32, 10 outputs, standardized digits.
private let labNetwork = ["--dataset", "digits", "--normalize", "standard", "--layers", "64," + Array(repeating: "32", count: 19).joined(separator: ",") + ",10"]

@Suite("Command line: gradkit diagnose")
struct DiagnoseCommandTests {
    @Test("the lab's 20-layer sigmoid net is vanishing before training; the cure is a configuration the lab shows helps")
    func sigmoid() throws {
        let result = try diagnosis(labNetwork + ["--activation", "sigmoid"])
        #expect(result.verdict == .vanishing)
        let cure = try #require(result.recommendedCure)
        // The lab's vanishing-gradient experiment trains "sigmoid + BatchNorm" (and ReLU + He, residual) as cures.
        #expect([.batchNorm, .reluWithHeInitialization, .residualConnections].contains(cure.cure))
        #expect(cure.predictedVerdict == .healthy)
        // The cure, applied with its own options, is healthy when measured.
        let cured = try diagnosis(labNetwork + ["--activation", "sigmoid"] + cure.cure.commandLineOptions.split(separator: " ").map(String.init))
        #expect(cured.verdict == .healthy)
    }

    @Test("a He-initialized ReLU net of the same depth is healthy")
    func heReLU() throws {
        let result = try diagnosis(labNetwork + ["--activation", "relu", "--init", "he-normal"])
        #expect(result.verdict == .healthy)
        #expect(result.recommendedCure == nil)
    }

    @Test("weights of zeros: ratios that are 0/0 print as — with a note saying why, and the JSON holds null, not NaN")
    func zeroWeights() throws {
        let result = try diagnosis(["--dataset", "digits", "--layers", "64,16,16,10", "--init", "zeros"])
        #expect(result.verdict == .vanishing)
        // The case this checks: the theory's ratios are 0/0 and the last layer measures no gradient.
        try #require(result.layers.allSatisfy { $0.predictedRatio.isNaN } && result.layers.last?.measuredGradientNorm == 0)
        let text = result.description
        #expect(!text.lowercased().contains("nan"), "\(text)")
        #expect(text.contains("first/last gradient ratio predicted —, measured —"), "\(text)")
        #expect(text.contains("note: — marks a ratio to layer 3's gradient, which the theory predicts and the pass measures to be 0: the ratio is 0/0"), "\(text)")
        let line = json(result).text
        #expect(!line.lowercased().contains("nan") && !line.contains("inf"), "\(line)")
        let parsed = try JSON.parse(line)
        let layers = try #require(parsed["layers"]?.arrayValue)
        #expect(layers.count == 3 && layers.allSatisfy { $0["predicted_ratio"] == .null && $0["measured_ratio"] == .null })
        #expect(parsed["predicted_first_to_last_ratio"] == .null)
        // Healthy weights print no note.
        #expect(!(try diagnosis(["--dataset", "digits", "--layers", "64,16,16,10"])).description.contains("note:"))
    }

    @Test("runs, and prints JSON; train's optimizer and training options are refused; help lists it")
    func strictness() throws {
        #expect(execute(["diagnose", "--dataset", "xor", "--json", "--quiet", "--batch-size", "8", "--seed", "2"]).status == 0)
        for bad in [["--optimizer", "sgd"], ["--epochs", "3"], ["--lr", "0.1"], ["--checkpoint", "x.safetensors"]] {
            let (status, error) = execute(["diagnose"] + bad)
            #expect(status == 2 && (error ?? "").contains("does not apply to diagnose"), "\(bad): \(error ?? "")")
        }
        #expect(toolHelp.contains("diagnose"))
        #expect(help(for: .diagnose).contains("--batch-norm") && !help(for: .diagnose).contains("--optimizer"))
        let object = json(try diagnosis(["--dataset", "xor", "--batch-size", "8"]))
        #expect(object.text.contains("\"verdict\""))
    }
}
