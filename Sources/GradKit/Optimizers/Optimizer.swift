// GradKit — the optimizer base: flat buffers, runs, state. SPDX-License-Identifier: MIT

/// An optimizer over a fixed list of parameters.
///
/// On creation it moves the parameters' values and gradients into two flat,
/// 64-byte aligned buffers (each ``Parameter`` keeps working as before and
/// becomes a view), and keeps every kind of state (moments, accumulators) in
/// one flat buffer each. ``step()`` then runs one fused kernel pass per run of
/// consecutive parameters that have a gradient: read p, g and the state once,
/// write p and the state once.
///
/// A parameter with no gradient (`gradient == nil`) is skipped: its value and
/// its state stay exactly as they were, as in PyTorch. Each parameter counts
/// its own steps (PyTorch's `state["step"]`), which bias corrections use.
///
/// Concrete optimizers: ``SGD``, ``AdaGrad``, ``RMSprop``, ``Adam``, ``AdamW``.
/// Use one optimizer per parameter: binding a parameter to a second optimizer
/// moves it, and the first one moves it back (copying) on its next step.
public class Optimizer {
    /// The parameters updated, in the order given.
    public let parameters: [Parameter]

    /// The learning rate of the next step; set it between steps (schedules do).
    /// - Precondition: >= 0.
    public var learningRate: Float {
        didSet { precondition(learningRate >= 0, "\(kind): invalid learning rate \(learningRate)") }
    }

    /// Steps taken (calls to ``step()``).
    public private(set) var stepCount = 0

    /// Per parameter: steps in which it had a gradient.
    var parameterSteps: [Int]

    let layout: FlatLayout
    let values: FlatBuffer
    let gradients: FlatBuffer
    private var stateBuffers: [String: FlatBuffer] = [:]

    /// The name used in messages and exported state, e.g. "Adam".
    var kind: String { "\(type(of: self))" }

    init(parameters: [Parameter], learningRate: Float) {
        let kind = "\(Self.self)"
        precondition(learningRate >= 0, "\(kind): invalid learning rate \(learningRate)")
        var seen = Set<ObjectIdentifier>()
        for p in parameters {
            precondition(
                seen.insert(ObjectIdentifier(p)).inserted, "\(kind): parameter \(p) appears twice in the list")
        }
        self.parameters = parameters
        self.learningRate = learningRate
        self.parameterSteps = Array(repeating: 0, count: parameters.count)
        self.layout = FlatLayout(parameters)
        self.values = FlatBuffer(count: layout.total)
        self.gradients = FlatBuffer(count: layout.total)
        bindAll()
    }

    // ------------------------------------------------------------ override points

    /// The state buffers this optimizer keeps, with their initial value
    /// (PyTorch's state names). Override point 1 of 2.
    var stateSpecification: [(name: String, initialValue: Float)] { [] }

    /// Updates elements `range` of the flat buffers: parameters that all had
    /// their step count at `step - 1` before this step. Override point 2 of 2.
    func update(_ range: Range<Int>, step: Int, gradientScale: Float) {
        preconditionFailure("\(kind) must override update(_:step:gradientScale:)")
    }

    /// Parameters are grouped into one kernel call only when they share this
    /// key (their step count by default).
    func groupKey(_ index: Int) -> Int { parameterSteps[index] }

    /// Called after `update` for the parameters it covered.
    func didUpdate(_ index: Int) {}

    /// The hyperparameters, for exported state.
    var hyperparameters: [String: Double] { ["lr": Double(learningRate)] }

    /// Throws for hyperparameters this optimizer would reject.
    func validateHyperparameters(_ values: [String: Double]) throws {
        try Optimizer.require(values, ["lr"]) { $0 >= 0 }
    }

    /// Restores hyperparameters from exported state (after validation).
    func restoreHyperparameters(_ values: [String: Double]) {
        if let lr = values["lr"] { learningRate = Float(lr) }
    }

    /// Throws `invalidValue` for the first of `names` present in `values` that fails `valid`.
    static func require(_ values: [String: Double], _ names: [String], _ valid: (Double) -> Bool) throws {
        for name in names {
            if let v = values[name], !valid(v) { throw OptimizerStateError.invalidValue(name: name, value: v) }
        }
    }

    /// The buffers a parameter with state must have (all by default).
    var requiredBuffers: [String] { stateSpecification.map(\.name) }

    /// Called for each parameter after its state was restored.
    func restoredParameter(_ index: Int, hasState: Bool) {}

    // ------------------------------------------------------------ stepping

    /// Applies one update to every parameter that has a gradient.
    public func step() { step(gradientScale: 1) }

    /// Clips the gradients' global norm to `maxNorm` inside the update pass
    /// (one pass fewer than ``clipGradientNorm(_:maxNorm:normType:)`` followed by
    /// ``step()``, with the same result bit for bit; the stored gradients are
    /// left unscaled). Returns the total norm before clipping; when it is not
    /// finite the gradients are used unscaled, as the separate call would.
    /// - Precondition: `maxNorm` >= 0, `normType` > 0.
    @discardableResult
    public func step(clippingGradientNorm maxNorm: Float, normType: Float = 2) -> Float {
        let total = gradientNorm(parameters, normType: normType)
        step(gradientScale: clipCoefficient(total: total, maxNorm: maxNorm))
        return total
    }

    /// Forgets every gradient (PyTorch's `zero_grad()`, which sets them to None):
    /// parameters without a new gradient are skipped by the next step.
    public func zeroGradients() {
        for p in parameters { p.gradient = nil }
    }

    func step(gradientScale: Float) {
        ensureBound()
        var i = 0
        let n = parameters.count
        while i < n {
            guard parameters[i].hasGradient else {
                i += 1
                continue
            }
            let key = groupKey(i)
            let start = layout.offsets[i]
            var end = start + layout.counts[i]
            var j = i + 1
            while j < n, parameters[j].hasGradient, groupKey(j) == key {
                end = layout.offsets[j] + layout.counts[j]
                j += 1
            }
            update(start..<end, step: parameterSteps[i] + 1, gradientScale: gradientScale)
            for k in i..<j {
                parameterSteps[k] += 1
                parameters[k].valueVersion &+= 1
                didUpdate(k)
            }
            i = j
        }
        stepCount += 1
    }

    /// The flat state buffer `name`, made on first use.
    func state(_ name: String) -> FlatBuffer {
        if let buffer = stateBuffers[name] { return buffer }
        let initial = stateSpecification.first { $0.name == name }?.initialValue ?? 0
        let buffer = FlatBuffer(count: layout.total, initialValue: initial)
        stateBuffers[name] = buffer
        return buffer
    }

    // ------------------------------------------------------------ binding

    private func bindAll() {
        for (i, p) in parameters.enumerated() { bind(i, p) }
    }

    private func bind(_ i: Int, _ p: Parameter) {
        p.bindValue(to: values.base + layout.offsets[i], owner: values)
        p.bindGradient(to: gradients.base + layout.offsets[i], owner: gradients)
    }

    /// Before writing through the flat buffers: every parameter must still view
    /// them (else it was moved, e.g. by another optimizer), and no tensor handed
    /// out earlier may share a parameter's storage (it is moved to a copy).
    func ensureBound() {
        for (i, p) in parameters.enumerated() {
            let offset = layout.offsets[i]
            if p.storage.base != values.base + offset || p.storage.owner !== values
                || p.gradientStorage?.base != gradients.base + offset
            {
                bind(i, p)
            }
            Parameter.makeExclusive(&p.storage)
        }
    }
}

/// What went wrong restoring an optimizer from exported state.
public enum OptimizerStateError: Error, Equatable, CustomStringConvertible {
    case wrongOptimizer(expected: String, found: String)
    case parameterCountMismatch(expected: Int, found: Int)
    case missingBuffer(parameter: String, buffer: String)
    case shapeMismatch(parameter: String, buffer: String, expected: [Int], found: [Int])
    case invalidValue(name: String, value: Double)

    public var description: String {
        switch self {
        case .wrongOptimizer(let expected, let found):
            "optimizer state is for \(found), not \(expected)"
        case .parameterCountMismatch(let expected, let found):
            "optimizer state has \(found) parameters, the optimizer \(expected)"
        case .missingBuffer(let parameter, let buffer):
            "optimizer state of parameter '\(parameter)' lacks buffer '\(buffer)'"
        case .shapeMismatch(let parameter, let buffer, let expected, let found):
            "optimizer state buffer '\(buffer)' of parameter '\(parameter)' has shape \(found), expected \(expected)"
        case .invalidValue(let name, let value):
            "optimizer state has an invalid value \(value) for '\(name)'"
        }
    }
}

/// Everything needed to resume an optimizer exactly: hyperparameters, step
/// counts and every state buffer, per parameter (PyTorch's `state_dict`
/// layout: a parameter that has never been updated has no entry).
public struct OptimizerState: Sendable, Equatable {
    /// The optimizer's type name, e.g. "Adam".
    public var kind: String
    /// Hyperparameters by PyTorch's names ("lr", "betas" as "beta1"/"beta2", ...);
    /// flags are 0 or 1.
    public var hyperparameters: [String: Double]
    /// Steps taken by the optimizer.
    public var stepCount: Int
    /// One entry per parameter, in the optimizer's order.
    public var parameters: [ParameterState]

    /// The state of one parameter.
    public struct ParameterState: Sendable, Equatable {
        /// The parameter's name.
        public var name: String
        /// Steps in which the parameter had a gradient.
        public var step: Int
        /// State buffers by PyTorch's names ("exp_avg", "sum", ...); empty before the first update.
        public var buffers: [String: Tensor]
    }
}

extension Optimizer {
    /// A copy of the optimizer's state, for checkpoints.
    public func exportState() -> OptimizerState {
        let entries = parameters.enumerated().map { i, p in
            var buffers: [String: Tensor] = [:]
            if parameterSteps[i] > 0 {
                for spec in stateSpecification where requiredBuffers.contains(spec.name) {
                    let buffer = state(spec.name)
                    let start = buffer.base + layout.offsets[i]
                    buffers[spec.name] = Tensor(
                        shape: p.shape, scalars: Array(UnsafeBufferPointer(start: start, count: layout.counts[i])))
                }
            }
            return OptimizerState.ParameterState(name: p.name, step: parameterSteps[i], buffers: buffers)
        }
        return OptimizerState(kind: kind, hyperparameters: hyperparameters, stepCount: stepCount, parameters: entries)
    }

    /// Restores state exported by the same kind of optimizer over parameters of
    /// the same shapes; afterwards steps continue exactly as they would have.
    /// Nothing changes when it throws.
    public func restoreState(_ state: OptimizerState) throws {
        guard state.kind == kind else { throw OptimizerStateError.wrongOptimizer(expected: kind, found: state.kind) }
        guard state.parameters.count == parameters.count else {
            throw OptimizerStateError.parameterCountMismatch(expected: parameters.count, found: state.parameters.count)
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
        try validateHyperparameters(state.hyperparameters)
        let previous = hyperparameters
        restoreHyperparameters(state.hyperparameters)
        // The buffers the restored configuration needs (flags such as amsgrad
        // or centered may have changed); on failure, roll the flags back.
        for (i, entry) in state.parameters.enumerated() where entry.step > 0 {
            for name in requiredBuffers where entry.buffers[name] == nil {
                restoreHyperparameters(previous)
                throw OptimizerStateError.missingBuffer(parameter: parameters[i].name, buffer: name)
            }
        }
        stepCount = state.stepCount
        for (i, entry) in state.parameters.enumerated() {
            parameterSteps[i] = entry.step
            for spec in stateSpecification {
                if entry.step > 0, let tensor = entry.buffers[spec.name] {
                    let start = self.state(spec.name).base + layout.offsets[i]
                    tensor.withUnsafeBufferPointer { start.update(from: $0.baseAddress!, count: $0.count) }
                } else if let buffer = stateBuffers[spec.name] {
                    (buffer.base + layout.offsets[i]).update(repeating: spec.initialValue, count: layout.counts[i])
                }
            }
            restoredParameter(i, hasState: entry.step > 0)
        }
    }
}
