// GradKit — the optimizer base: flat buffers, runs, state. SPDX-License-Identifier: MIT

/// An optimizer over a fixed list of parameters, in one or more groups.
///
/// On creation it moves the parameters' values and gradients into two flat,
/// 64-byte aligned buffers (each ``Parameter`` keeps working as before and
/// becomes a view), and keeps every kind of state (moments, accumulators) in
/// one flat buffer each. ``step()`` then runs one fused kernel pass per run of
/// consecutive parameters that have a gradient: read p, g and the state once,
/// write p and the state once.
///
/// Parameter groups (PyTorch's `param_groups`, see ``ParameterGroup``) give
/// parts of the model their own hyperparameters. They are contiguous ranges of
/// the same flat buffers, in the order given; a run never crosses a group
/// boundary and uses its group's values.
///
/// A parameter with no gradient (`gradient == nil`) is skipped: its value and
/// its state stay exactly as they were, as in PyTorch. Each parameter counts
/// its own steps (PyTorch's `state["step"]`), which bias corrections use.
///
/// Concrete optimizers: ``SGD``, ``AdaGrad``, ``RMSprop``, ``Adam``, ``AdamW``.
/// Each declares its hyperparameters once, in ``hyperparameterSpecifications``.
/// Use one optimizer per parameter: binding a parameter to a second optimizer
/// moves it, and the first one moves it back (copying) on its next step.
public class Optimizer {
    /// The parameters updated, in the order given (group after group).
    public let parameters: [Parameter]

    /// The parameter groups, each with every hyperparameter of this optimizer
    /// set. Change a group's values between steps through it:
    /// `optimizer.parameterGroups[1].learningRate *= 0.5`.
    ///
    /// A value left nil in an assigned group takes the initializer's.
    /// - Precondition (on set): as many groups, each with the same parameters
    ///   in the same order (the flat layout is fixed at creation); only this
    ///   optimizer's hyperparameters, each in its range; values that are not
    ///   adjustable (``HyperparameterSpecification/isAdjustable``) unchanged.
    public var parameterGroups: [ParameterGroup] {
        get { groups }
        set { groups = checked(newValue) }
    }

    /// The resolved groups; only checked values are stored (through
    /// ``parameterGroups`` or a restore).
    var groups: [ParameterGroup]
    /// Per group: the indices of its parameters in `parameters`.
    let groupRanges: [Range<Int>]
    /// Per parameter: the index of its group.
    let groupOfParameter: [Int]
    /// The initializer's values (PyTorch's `defaults`): what a group's unset values take.
    let defaults: ParameterGroup

    /// The learning rate of the next step. Reading gives the first group's;
    /// setting sets every group's (schedules do, between steps).
    /// - Precondition: finite and >= 0.
    public var learningRate: Float {
        get { value(.learningRate) }
        set { setInEveryGroup(.learningRate, newValue) }
    }

    /// Steps taken (calls to ``step()``).
    public internal(set) var stepCount = 0

    /// Per parameter: steps in which it had a gradient.
    var parameterSteps: [Int]

    let layout: FlatLayout
    let values: FlatBuffer
    let gradients: FlatBuffer
    private var stateBuffers: [String: FlatBuffer] = [:]

    /// The name used in messages and exported state, e.g. "Adam".
    var kind: String { "\(type(of: self))" }

    /// The hyperparameters this optimizer has: PyTorch key, default, range
    /// and whether it may change between steps; one table drives the
    /// initializer's checks, the setters' checks, exported state, the checks
    /// of restored state and the messages. Each optimizer overrides it.
    public class var hyperparameterSpecifications: [HyperparameterSpecification] { [] }

    /// Conditions between one group's values that ranges cannot express.
    class var hyperparameterRules: [HyperparameterRule] { [] }

    /// Why the initializer would refuse `group` (a hyperparameter this
    /// optimizer does not have, a value out of range, a broken rule such as
    /// Nesterov's), with unset values taken from the table's defaults; nil
    /// when it would accept it. For callers that check user input before
    /// building an optimizer, whose initializer traps.
    package class func problem(with group: ParameterGroup) -> String? {
        var defaults = ParameterGroup([])
        for specification in hyperparameterSpecifications { defaults[specification.hyperparameter] = specification.defaultValue }
        do {
            _ = try hyperparameterSpecifications.resolve(group, defaults: defaults, rules: hyperparameterRules, kind: "\(Self.self)")
            return nil
        } catch {
            return error.description
        }
    }

    /// `groups` resolved against `defaults` (the initializer's arguments).
    /// - Precondition: at least one group; every parameter in one group only,
    ///   once; the table's checks hold for `defaults` and every group.
    init(_ groups: [ParameterGroup], defaults: ParameterGroup) {
        let kind = "\(Self.self)"
        let specifications = Self.hyperparameterSpecifications, rules = Self.hyperparameterRules
        for specification in specifications {
            if let problem = specification.problem(with: defaults[specification.hyperparameter]!) { fatalError("\(kind): \(problem)") }
        }
        for rule in rules where !rule.holds(defaults) { fatalError("\(kind): \(rule.message)") }
        guard !groups.isEmpty else { fatalError("\(kind): needs at least one parameter group") }
        var seen: [ObjectIdentifier: Int] = [:]
        for (g, group) in groups.enumerated() {
            for p in group.parameters {
                if let other = seen.updateValue(g, forKey: ObjectIdentifier(p)) {
                    fatalError(
                        "\(kind): \(p) appears \(other == g ? "twice in parameter group \(g)" : "in parameter groups \(other) and \(g)"); a parameter may belong to one group, once"
                    )
                }
            }
        }
        self.groups = groups.enumerated().map { g, group in
            do {
                return try specifications.resolve(group, defaults: defaults, rules: rules, kind: kind)
            } catch {
                fatalError("\(kind): parameter group \(g): \(error)")
            }
        }
        var ranges: [Range<Int>] = [], owners: [Int] = []
        for (g, group) in groups.enumerated() {
            ranges.append(owners.count..<(owners.count + group.parameters.count))
            owners += Array(repeating: g, count: group.parameters.count)
        }
        let parameters = groups.flatMap(\.parameters)
        self.parameters = parameters
        self.groupRanges = ranges
        self.groupOfParameter = owners
        self.defaults = defaults
        self.parameterSteps = Array(repeating: 0, count: parameters.count)
        self.layout = FlatLayout(parameters)
        self.values = FlatBuffer(count: layout.total)
        self.gradients = FlatBuffer(count: layout.total)
        bindAll()
    }

    // ------------------------------------------------------------ override points

    /// The state buffers parameters of `group` keep, with their initial
    /// values (PyTorch's state names). Override point 1 of 2.
    func stateSpecification(for group: ParameterGroup) -> [(name: String, initialValue: Float)] { [] }

    /// Updates elements `range` of the flat buffers: parameters of `group`
    /// that all had their step count at `step - 1` before this step.
    /// Override point 2 of 2.
    func update(_ range: Range<Int>, step: Int, gradientScale: Float, group: ParameterGroup) {
        preconditionFailure("\(kind) must override update(_:step:gradientScale:group:)")
    }

    /// Parameters are joined into one kernel call only when they share this
    /// key (their step count by default) and their group.
    func runKey(_ index: Int) -> Int { parameterSteps[index] }

    /// Called after `update` for the parameters it covered.
    func didUpdate(_ index: Int, group: ParameterGroup) {}

    /// Called for each parameter after its state was restored.
    func restoredParameter(_ index: Int, hasState: Bool) {}

    // ------------------------------------------------------------ hyperparameters

    /// The first group's value of `hyperparameter` (one of this optimizer's).
    func value(_ hyperparameter: Hyperparameter) -> Float { groups[0][hyperparameter]! }

    /// The first group's value of the flag `hyperparameter`.
    func flag(_ hyperparameter: Hyperparameter) -> Bool { value(hyperparameter) != 0 }

    /// Sets `hyperparameter` to `value` in every group.
    /// - Precondition: the value is in the table's range.
    func setInEveryGroup(_ hyperparameter: Hyperparameter, _ value: Float) {
        if let specification = Self.hyperparameterSpecifications.first(where: { $0.hyperparameter == hyperparameter }),
            let problem = specification.problem(with: value)
        {
            fatalError("\(kind): \(problem)")
        }
        var changed = groups
        for g in changed.indices { changed[g][hyperparameter] = value }
        parameterGroups = changed
    }

    /// Sets the flag `hyperparameter` in every group.
    func setInEveryGroup(_ hyperparameter: Hyperparameter, _ value: Bool) { setInEveryGroup(hyperparameter, value ? 1 : 0) }

    /// `new` resolved and checked as ``parameterGroups`` documents.
    private func checked(_ new: [ParameterGroup]) -> [ParameterGroup] {
        guard new.count == groups.count else {
            fatalError("\(kind): parameterGroups must keep its \(groups.count) groups, got \(new.count) (the flat layout is fixed at creation)")
        }
        let specifications = Self.hyperparameterSpecifications, rules = Self.hyperparameterRules
        return new.enumerated().map { g, group in
            let old = groups[g].parameters
            guard group.parameters.count == old.count, zip(group.parameters, old).allSatisfy({ $0 === $1 }) else {
                fatalError("\(kind): parameter group \(g) must keep its \(old.count) parameters in the same order (the flat layout is fixed at creation)")
            }
            do {
                let resolved = try specifications.resolve(group, defaults: defaults, rules: rules, kind: kind)
                for specification in specifications where !specification.isAdjustable {
                    let h = specification.hyperparameter
                    if resolved[h] != groups[g][h] { throw HyperparameterError.notAdjustable(h) }
                }
                return resolved
            } catch {
                fatalError("\(kind): parameter group \(g): \(error)")
            }
        }
    }

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
        for (group, range) in zip(groups, groupRanges) {
            var i = range.lowerBound
            while i < range.upperBound {
                guard parameters[i].hasGradient else {
                    i += 1
                    continue
                }
                let key = runKey(i)
                let start = layout.offsets[i]
                var end = start + layout.counts[i]
                var j = i + 1
                while j < range.upperBound, parameters[j].hasGradient, runKey(j) == key {
                    end = layout.offsets[j] + layout.counts[j]
                    j += 1
                }
                update(start..<end, step: parameterSteps[i] + 1, gradientScale: gradientScale, group: group)
                for k in i..<j {
                    parameterSteps[k] += 1
                    parameters[k].valueVersion &+= 1
                    didUpdate(k, group: group)
                }
                i = j
            }
        }
        stepCount += 1
    }

    /// The flat state buffer `name`, made on first use (each parameter's part
    /// at its group's initial value; the gaps between parameters zero).
    func state(_ name: String) -> FlatBuffer {
        if let buffer = stateBuffers[name] { return buffer }
        let buffer = FlatBuffer(count: layout.total)
        stateBuffers[name] = buffer
        for i in parameters.indices { resetState(name, of: i) }
        return buffer
    }

    /// Puts parameter `index`'s part of state buffer `name` (if made) back to
    /// its group's initial value.
    func resetState(_ name: String, of index: Int) {
        guard let buffer = stateBuffers[name] else { return }
        let initial = stateSpecification(for: groups[groupOfParameter[index]]).first { $0.name == name }?.initialValue ?? 0
        (buffer.base + layout.offsets[index]).update(repeating: initial, count: layout.counts[index])
    }

    /// The names of the state buffers made so far.
    var stateBufferNames: [String] { stateBuffers.keys.sorted() }

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
