// gradkit — what a checkpoint records of its run, and the check that a resumed run is the same run. SPDX-License-Identifier: MIT
import GradKit

/// The run's settings in a checkpoint's configuration: each ``Setting``
/// under `gradkit.option.<key>`, the command line under `gradkit.command`
/// and `--epochs` under `gradkit.epochs` (recorded, not compared).
enum RecordedSettings {
    static let prefix = "gradkit.option."
    static let commandKey = "gradkit.command"
    static let epochsKey = "gradkit.epochs"

    /// The configuration a checkpoint of `configuration` stores.
    static func metadata(_ settings: [Setting], configuration: TrainConfiguration) -> [String: String] {
        var metadata = [commandKey: (["gradkit", "train"] + configuration.arguments).joined(separator: " "), epochsKey: "\(configuration.plan.epochs)"]
        for setting in settings { metadata[prefix + setting.key] = setting.value }
        return metadata
    }

    /// A setting whose value differs between the checkpoint and the command line.
    struct Difference: Equatable, CustomStringConvertible {
        let key: String
        /// Nil when the checkpoint does not record the key.
        let recorded: String?
        let current: String
        /// Whether `recorded` is ``implicit``'s value, the checkpoint recording none.
        var assumed = false

        /// `--seed 0 (now 1)`; `--header false (not recorded: every run before the option had it; now true)`.
        var description: String {
            let name = Option.allCases.contains { $0.specification.name == key } ? "--" + key : key
            let was = recorded.map { $0.shownInMessage + (assumed ? " (not recorded: every run before the option had it; " : " (") }
            return "\(name) \(was ?? "(not recorded) (")now \(current.shownInMessage))"
        }
    }

    /// Settings added after checkpoints recorded options, with the value every
    /// run before them had: a checkpoint without the key ran with it.
    static let implicit = [
        Option.matmulPrecision.specification.name: MatmulPrecision.float32.rawValue, Option.flushSubnormals.specification.name: "off",
        Option.header.specification.name: "false",
    ]

    /// The settings of `current` that `configuration` records otherwise, in
    /// `current`'s order. A key the checkpoint lacks counts as different,
    /// unless ``implicit`` gives the value it had.
    /// With a different optimizer, only the optimizer is reported: the
    /// hyperparameters recorded are another optimizer's.
    static func differences(_ configuration: [String: String], _ current: [Setting]) -> [Difference] {
        let optimizerKey = Option.optimizer.specification.name
        let otherOptimizer = current.contains { $0.key == optimizerKey && configuration[prefix + optimizerKey] != $0.value }
        let hyperparameterKeys = Set(OptimizerOptions.hyperparameterOptions.map { $0.0.specification.name })
        return current.compactMap { setting in
            if otherOptimizer, hyperparameterKeys.contains(setting.key) { return nil }
            let recorded = configuration[prefix + setting.key]
            let value = recorded ?? implicit[setting.key]
            return value == setting.value
                ? nil : Difference(key: setting.key, recorded: value, current: setting.value, assumed: recorded == nil && value != nil)
        }
    }

    /// Checks that a checkpoint was made by a run with `current`'s settings.
    /// - Parameter accept: report differences on standard error and go on, instead of throwing.
    /// - Throws: ``CommandError`` listing every difference, or saying the checkpoint records none of gradkit's settings.
    static func check(_ configuration: [String: String], _ current: [Setting], file: String, accept: Bool) throws(CommandError) {
        guard configuration.keys.contains(where: { $0.hasPrefix(prefix) }) else {
            if accept { return }
            throw CommandError("--resume \(file.shownInMessage): the checkpoint records no gradkit train options (not written by gradkit train, or by an older version), so they cannot be compared; give --accept-changed-options to resume it anyway")
        }
        let differences = differences(configuration, current)
        guard !differences.isEmpty else { return }
        guard accept else {
            throw CommandError("--resume \(file.shownInMessage): the checkpoint's run had other options: \(differences.map(\.description).joined(separator: ", ")); give its options, or --accept-changed-options to go on with the new ones")
        }
        for difference in differences { printError("note: resuming with a changed option: \(difference)") }
    }

    /// `configuration` without a loss scaler's state, which `gradkit train`
    /// cannot continue (it does not scale the loss): refused, or with `accept`
    /// dropped after a note on standard error, so a run never loses its loss
    /// scaling unseen. A configuration without that state comes back as it is.
    /// - Parameter accept: drop the state and go on, instead of throwing.
    /// - Throws: ``CommandError`` naming the checkpoint's entry and `--accept-changed-options`.
    static func withoutLossScaling(_ configuration: [String: String], file: String, accept: Bool) throws(CommandError) -> [String: String] {
        guard let (key, value) = LossScaler.State.firstEntry(in: configuration) else { return configuration }
        let scaled = "the checkpoint's run scaled its loss (\(key.quotedForMessage()) is \(value.quotedForMessage()))"
        guard accept else {
            throw CommandError("--resume \(file.shownInMessage): \(scaled), which gradkit train does not do; give --accept-changed-options to resume it without loss scaling")
        }
        printError("note: resuming without loss scaling: \(scaled)")
        return configuration.filter { !LossScaler.State.keys.contains($0.key) }
    }
}
