// GradKit — exporting and restoring an optimizer's state. SPDX-License-Identifier: MIT

/// What went wrong restoring an optimizer from exported state.
///
/// A hyperparameter's `name` is its PyTorch key ("lr", "beta1"); when the
/// state has several groups it names the group too ("lr of group 1").
public enum OptimizerStateError: Error, Equatable, CustomStringConvertible {
    /// The state is another optimizer's (``OptimizerState/kind`` names it, such as `"Adam"`).
    case wrongOptimizer(expected: String, found: String)
    /// The state holds a different number of parameters than the optimizer.
    case parameterCountMismatch(expected: Int, found: Int)
    /// The state holds a different number of parameter groups than the optimizer.
    case groupCountMismatch(expected: Int, found: Int)
    /// Group `group` holds other parameters (indices into the optimizer's list).
    case groupMismatch(group: Int, expected: [Int], found: [Int])
    /// A parameter that has taken steps lacks a state buffer the optimizer needs (`"exp_avg"`).
    case missingBuffer(parameter: String, buffer: String)
    /// A state buffer's shape differs from its parameter's.
    case shapeMismatch(parameter: String, buffer: String, expected: [Int], found: [Int])
    /// Out of range for the optimizer's table, not finite as a Float, or a
    /// flag other than 0 and 1.
    case invalidValue(name: String, value: Double)
    /// A hyperparameter key the optimizer does not have (`name` as in ``invalidValue(name:value:)``).
    case unknownHyperparameter(name: String)

    /// A one-line message naming the parameter, buffer or hyperparameter at fault.
    public var description: String {
        switch self {
        case .wrongOptimizer(let expected, let found):
            "optimizer state is for \(found), not \(expected)"
        case .parameterCountMismatch(let expected, let found):
            "optimizer state has \(found) parameters, the optimizer \(expected)"
        case .groupCountMismatch(let expected, let found):
            "optimizer state has \(found) parameter groups, the optimizer \(expected)"
        case .groupMismatch(let group, let expected, let found):
            "optimizer state's parameter group \(group) holds parameters \(found), the optimizer's \(expected)"
        case .missingBuffer(let parameter, let buffer):
            "optimizer state of parameter '\(parameter)' lacks buffer '\(buffer)'"
        case .shapeMismatch(let parameter, let buffer, let expected, let found):
            "optimizer state buffer '\(buffer)' of parameter '\(parameter)' has shape \(found), expected \(expected)"
        case .invalidValue(let name, let value):
            "optimizer state has an invalid value \(value) for '\(name)'"
        case .unknownHyperparameter(let name):
            "optimizer state has a hyperparameter '\(name)' the optimizer does not have"
        }
    }
}

/// Everything needed to resume an optimizer exactly: the groups with their
/// hyperparameters, step counts and every state buffer, per parameter
/// (PyTorch's `state_dict` layout: a parameter that has never been updated has
/// no buffers).
public struct OptimizerState: Sendable, Equatable {
    /// The optimizer's type name, e.g. "Adam".
    public var kind: String
    /// The parameter groups, in order (PyTorch's `param_groups`).
    public var groups: [GroupState]
    /// Steps taken by the optimizer.
    public var stepCount: Int
    /// One entry per parameter, in the optimizer's order.
    public var parameters: [ParameterState]

    /// One parameter group.
    public struct GroupState: Sendable, Equatable {
        /// Its parameters: indices into ``OptimizerState/parameters``.
        public var parameterIndices: [Int]
        /// Hyperparameters by PyTorch's keys ("lr", "betas" as "beta1"/"beta2",
        /// ...; ``Hyperparameter/pytorchKey``); flags are 0 or 1.
        public var hyperparameters: [String: Double]

        /// A group from its parameters' indices and its hyperparameters by PyTorch key.
        ///
        /// - Parameters:
        ///   - parameterIndices: indices into ``OptimizerState/parameters``.
        ///   - hyperparameters: values by ``Hyperparameter/pytorchKey``; flags are 0 or 1.
        public init(parameterIndices: [Int], hyperparameters: [String: Double]) {
            self.parameterIndices = parameterIndices
            self.hyperparameters = hyperparameters
        }
    }

    /// The state of one parameter.
    public struct ParameterState: Sendable, Equatable {
        /// The parameter's name.
        public var name: String
        /// Steps in which the parameter had a gradient.
        public var step: Int
        /// State buffers by PyTorch's names ("exp_avg", "sum", ...); empty before the first update.
        public var buffers: [String: Tensor]

        /// One parameter's state.
        ///
        /// - Parameters:
        ///   - name: the parameter's name.
        ///   - step: steps in which the parameter had a gradient.
        ///   - buffers: state buffers by PyTorch's names ("exp_avg", "sum", ...).
        public init(name: String, step: Int, buffers: [String: Tensor]) {
            self.name = name
            self.step = step
            self.buffers = buffers
        }
    }

    /// State with explicit parameter groups, as ``Optimizer/exportState()`` makes it.
    ///
    /// - Parameters:
    ///   - kind: the optimizer's type name, such as `"Adam"`.
    ///   - groups: the parameter groups, in the optimizer's order.
    ///   - stepCount: optimizer steps taken.
    ///   - parameters: each parameter's state, in the optimizer's order.
    public init(kind: String, groups: [GroupState], stepCount: Int, parameters: [ParameterState]) {
        self.kind = kind
        self.groups = groups
        self.stepCount = stepCount
        self.parameters = parameters
    }

    /// State with one group of every parameter (the layout before groups).
    public init(kind: String, hyperparameters: [String: Double], stepCount: Int, parameters: [ParameterState]) {
        self.init(
            kind: kind, groups: [GroupState(parameterIndices: Array(parameters.indices), hyperparameters: hyperparameters)],
            stepCount: stepCount, parameters: parameters)
    }

    /// The first group's hyperparameters. Setting changes, in every group, the
    /// entries that differ from the first group's (so
    /// `state.hyperparameters["amsgrad"] = 1` sets the flag everywhere and
    /// leaves each group's own learning rate), as setting an optimizer-level
    /// property sets it in every group.
    public var hyperparameters: [String: Double] {
        get { groups.first?.hyperparameters ?? [:] }
        set {
            let old = hyperparameters
            for g in groups.indices {
                for (key, value) in newValue where old[key] != value { groups[g].hyperparameters[key] = value }
                for key in old.keys where newValue[key] == nil { groups[g].hyperparameters[key] = nil }
            }
        }
    }
}

extension Optimizer {
    /// A copy of the optimizer's state, for checkpoints.
    public func exportState() -> OptimizerState {
        let specifications = Self.hyperparameterSpecifications
        let groupStates = zip(groups, groupRanges).map { group, range in
            OptimizerState.GroupState(
                parameterIndices: Array(range),
                hyperparameters: Dictionary(
                    uniqueKeysWithValues: specifications.map { ($0.pytorchKey, Double(group[$0.hyperparameter]!)) }))
        }
        let entries = parameters.enumerated().map { i, p in
            var buffers: [String: Tensor] = [:]
            if parameterSteps[i] > 0 {
                for (name, _) in stateSpecification(for: groups[groupOfParameter[i]]) {
                    let start = state(name).base + layout.offsets[i]
                    buffers[name] = Tensor(
                        shape: p.shape, scalars: Array(UnsafeBufferPointer(start: start, count: layout.counts[i])))
                }
            }
            return OptimizerState.ParameterState(name: p.name, step: parameterSteps[i], buffers: buffers)
        }
        return OptimizerState(kind: kind, groups: groupStates, stepCount: stepCount, parameters: entries)
    }

    /// Restores state exported by the same kind of optimizer over parameters of
    /// the same shapes, in the same groups; afterwards steps continue exactly
    /// as they would have. A hyperparameter the state lacks keeps its value.
    /// Nothing changes when it throws.
    /// - Throws: ``OptimizerStateError``: another optimizer, other parameters
    ///   or groups, a missing or misshapen buffer, a hyperparameter this
    ///   optimizer does not have, or a value its table rejects (checked as the
    ///   Float the optimizer would use: 1e300 is infinite).
    public func restoreState(_ state: OptimizerState) throws {
        guard state.kind == kind else { throw OptimizerStateError.wrongOptimizer(expected: kind, found: state.kind) }
        guard state.parameters.count == parameters.count else {
            throw OptimizerStateError.parameterCountMismatch(expected: parameters.count, found: state.parameters.count)
        }
        guard state.groups.count == groups.count else {
            throw OptimizerStateError.groupCountMismatch(expected: groups.count, found: state.groups.count)
        }
        for (g, group) in state.groups.enumerated() where group.parameterIndices != Array(groupRanges[g]) {
            throw OptimizerStateError.groupMismatch(group: g, expected: Array(groupRanges[g]), found: group.parameterIndices)
        }
        for (i, entry) in state.parameters.enumerated() {
            guard entry.step >= 0 else { throw OptimizerStateError.invalidValue(name: "\(entry.name).step", value: Double(entry.step)) }
            guard entry.step > 0 else { continue }
            for (name, tensor) in entry.buffers where tensor.shape != parameters[i].shape {
                throw OptimizerStateError.shapeMismatch(
                    parameter: entry.name, buffer: name, expected: parameters[i].shape, found: tensor.shape)
            }
        }
        guard state.stepCount >= 0 else { throw OptimizerStateError.invalidValue(name: "stepCount", value: Double(state.stepCount)) }
        let restored = try restoredGroups(state.groups)
        // The buffers the restored configuration needs (flags such as amsgrad
        // or centered may differ from the optimizer's).
        for (i, entry) in state.parameters.enumerated() where entry.step > 0 {
            for (name, _) in stateSpecification(for: restored[groupOfParameter[i]]) where entry.buffers[name] == nil {
                throw OptimizerStateError.missingBuffer(parameter: parameters[i].name, buffer: name)
            }
        }
        groups = restored
        stepCount = state.stepCount
        for (i, entry) in state.parameters.enumerated() {
            parameterSteps[i] = entry.step
            var copied: Set<String> = []
            if entry.step > 0 {
                for (name, _) in stateSpecification(for: groups[groupOfParameter[i]]) {
                    let start = self.state(name).base + layout.offsets[i]
                    entry.buffers[name]!.withUnsafeBufferPointer { start.update(from: $0.baseAddress!, count: $0.count) }
                    copied.insert(name)
                }
            }
            for name in stateBufferNames where !copied.contains(name) { resetState(name, of: i) }
            restoredParameter(i, hasState: entry.step > 0)
        }
    }

    /// The optimizer's groups with the values of `states`, checked against
    /// the table and rules as the Float values the optimizer would use.
    private func restoredGroups(_ states: [OptimizerState.GroupState]) throws -> [ParameterGroup] {
        let specifications = Self.hyperparameterSpecifications
        var restored = groups
        for (g, groupState) in states.enumerated() {
            func name(_ key: String) -> String { states.count == 1 ? key : "\(key) of group \(g)" }
            for (key, value) in groupState.hyperparameters.sorted(by: { $0.key < $1.key }) {
                guard let specification = specifications.first(where: { $0.pytorchKey == key }) else {
                    throw OptimizerStateError.unknownHyperparameter(name: name(key))
                }
                guard specification.accepts(Float(value)) else { throw OptimizerStateError.invalidValue(name: name(key), value: value) }
                restored[g][specification.hyperparameter] = Float(value)
            }
            for rule in Self.hyperparameterRules where !rule.holds(restored[g]) {
                throw OptimizerStateError.invalidValue(name: name(rule.reported.pytorchKey), value: Double(restored[g][rule.reported]!))
            }
        }
        return restored
    }
}
