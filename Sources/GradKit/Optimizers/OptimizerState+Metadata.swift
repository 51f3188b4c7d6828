// GradKit — optimizer state in a checkpoint's metadata and tensors. SPDX-License-Identifier: MIT

/// A checkpoint keeps an ``OptimizerState`` as safetensors metadata (strings)
/// plus one tensor per state buffer:
///
/// - `optimizer.kind`: the optimizer's type name;
/// - `optimizer.stepCount`: its step count;
/// - `optimizer.parameters`, `optimizer.steps`: JSON arrays of the parameters'
///   names and step counts, in the optimizer's order;
/// - `optimizer.groups`: a JSON array with one object per parameter group, as
///   PyTorch's `param_groups`: `"params"` (parameter indices) and one number
///   per hyperparameter by PyTorch key (flags 0 or 1);
/// - tensors `<prefix><parameter index>/<buffer>`, e.g. `optimizer/0/exp_avg`.
///
/// Files written before groups existed have `optimizer.hyperparameters` (one
/// JSON object) instead of `optimizer.groups`: they read as one group of
/// every parameter.
extension OptimizerState {
    /// Adds the state to a checkpoint's `metadata` and `tensors`, buffers
    /// under `prefix`.
    func write(metadata: inout [String: String], tensors: inout [String: Tensor], prefix: String) {
        metadata["optimizer.kind"] = kind
        metadata["optimizer.stepCount"] = String(stepCount)
        metadata["optimizer.parameters"] = JSON.array(parameters.map { .string($0.name) }).text
        metadata["optimizer.steps"] = JSON.array(parameters.map { .number(Double($0.step)) }).text
        metadata["optimizer.groups"] = JSON.array(groups.map { group in
            var members = group.hyperparameters.mapValues { JSON.number($0) }
            members["params"] = .array(group.parameterIndices.map { .number(Double($0)) })
            return .object(members)
        }).text
        for (index, entry) in parameters.enumerated() {
            for (buffer, tensor) in entry.buffers { tensors["\(prefix)\(index)/\(buffer)"] = tensor }
        }
    }

    /// The state kept in a checkpoint's `metadata`, with `buffers` the
    /// checkpoint's optimizer tensors (their names without the prefix); nil
    /// when the checkpoint has none (no `optimizer.kind`). Whether it fits an
    /// optimizer (groups, ranges) is checked by ``Optimizer/restoreState(_:)``.
    /// - Throws: ``CheckpointError/badMetadata(file:key:reason:)`` naming the
    ///   key that is missing or malformed.
    init?(metadata: [String: String], buffers: [String: Tensor], file: String) throws(CheckpointError) {
        guard let kind = metadata["optimizer.kind"] else { return nil }
        func bad(_ key: String, _ reason: String) -> CheckpointError { .badMetadata(file: file, key: key, reason: reason) }
        func json(_ key: String) throws(CheckpointError) -> JSON? {
            guard let text = metadata[key] else { return nil }
            do { return try JSON.parse(text) } catch { throw bad(key, "invalid JSON at offset \(error.offset): \(error.reason)") }
        }
        func counts(_ value: JSON?) -> [Int]? {
            guard let items = value?.arrayValue else { return nil }
            let counts = items.compactMap(\.integerValue)
            return counts.count == items.count ? counts : nil
        }
        func numbers(_ members: [String: JSON], _ key: String) throws(CheckpointError) -> [String: Double] {
            var numbers: [String: Double] = [:]
            for (name, value) in members {
                guard let number = value.numberValue else { throw bad(key, "'\(name)' is not a number") }
                numbers[name] = number
            }
            return numbers
        }
        guard let names = try json("optimizer.parameters")?.arrayValue?.compactMap(\.stringValue),
            let steps = counts(try json("optimizer.steps")), steps.count == names.count
        else {
            throw bad("optimizer", "parameters or steps are missing or malformed")
        }
        var stepCount = 0
        if let text = metadata["optimizer.stepCount"] {
            guard let value = Int(text), value >= 0 else { throw bad("optimizer.stepCount", "'\(text)' is not a count") }
            stepCount = value
        }
        let buffersByIndex: [Int: [String: Tensor]]
        do {
            buffersByIndex = try Checkpoint.groupOptimizerBuffers(buffers, parameterCount: names.count, file: file)
        } catch let error as CheckpointError {
            throw error
        } catch {
            throw bad("optimizer.parameters", "\(error)")
        }
        let entries = names.enumerated().map { index, name in
            ParameterState(name: name, step: steps[index], buffers: buffersByIndex[index] ?? [:])
        }
        let groupsJSON = try json("optimizer.groups"), flatJSON = try json("optimizer.hyperparameters")
        switch (groupsJSON, flatJSON) {
        case (let groupsJSON?, nil):
            guard let list = groupsJSON.arrayValue else { throw bad("optimizer.groups", "not an array") }
            var groups: [GroupState] = []
            for (g, item) in list.enumerated() {
                guard var members = item.objectValue else { throw bad("optimizer.groups", "group \(g) is not an object") }
                guard let indices = counts(members.removeValue(forKey: "params")) else {
                    throw bad("optimizer.groups", "group \(g) lacks \"params\", a list of parameter indices")
                }
                groups.append(GroupState(parameterIndices: indices, hyperparameters: try numbers(members, "optimizer.groups")))
            }
            self.init(kind: kind, groups: groups, stepCount: stepCount, parameters: entries)
        case (nil, let flatJSON?):
            guard let members = flatJSON.objectValue else { throw bad("optimizer.hyperparameters", "not an object") }
            self.init(kind: kind, hyperparameters: try numbers(members, "optimizer.hyperparameters"), stepCount: stepCount, parameters: entries)
        case (nil, nil):
            throw bad("optimizer", "neither optimizer.groups nor optimizer.hyperparameters is present")
        case (_?, _?):
            throw bad("optimizer", "both optimizer.groups and optimizer.hyperparameters are present")
        }
    }
}
