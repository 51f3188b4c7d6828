// GradKit — trainable parameters. SPDX-License-Identifier: MIT

/// A trainable tensor: a value, its accumulated gradient, and a name.
///
/// Parameters are reference types so that layers, optimizers and monitors can
/// share them. Reading ``value`` gives a tensor whose operations are recorded
/// on the tape; ``Tensor/backward(seed:)`` adds into ``gradient``, which keeps
/// accumulating across calls until it is reset (`gradient = nil`), as in
/// PyTorch.
///
/// ```swift
/// let w = Parameter(Tensor(shape: [3, 2], scalars: [0.1, -0.2, 0.3, 0.4, -0.5, 0.6]), name: "w")
/// let x = Tensor(shape: [4, 3], scalars: (0..<12).map { Float($0) / 10 })
/// let loss = x.matmul(w.value).tanh().sum()
/// loss.backward()
/// print(w.gradient!.scalars)   // d loss / d w
/// ```
///
/// Not thread-safe: use a parameter from one thread at a time.
public final class Parameter {
    /// A name for reports and checkpoints, such as `"0.weight"`.
    public var name: String
    /// The shape of ``value`` and ``gradient``; fixed for the parameter's life.
    public let shape: [Int]

    /// Whether `backward()` computes a gradient for this parameter (PyTorch's
    /// `requires_grad`; true by default). A frozen parameter (false) is a
    /// constant to autograd: operations on its value alone are not recorded,
    /// branches that lead only to frozen parameters are skipped in backward,
    /// and optimizers leave it alone because it has no gradient.
    /// ``Layer/freeze()`` sets it for every parameter of a layer.
    public var requiresGradient = true

    /// Run in registration order on each gradient `backward()` computes for
    /// this parameter, before it is added into ``gradient``.
    var gradientHooks = HookList<GradientHook>()
    /// Run after `backward()` has added a gradient into ``gradient``.
    var accumulatedHooks = HookList<(Parameter) -> Void>()

    var storage: TensorStorage
    var gradientStorage: TensorStorage?
    var hasGradient = false

    // The node this parameter has on the tape of generation `leafGeneration`.
    var leafGeneration: UInt64 = 0
    /// Counts writes to the value (assignments and optimizer steps), so a
    /// copy taken earlier can tell whether it is still current.
    var valueVersion: UInt64 = 0
    var leafNode: Int32 = -1

    /// A parameter holding a copy of `value`'s elements.
    public init(_ value: Tensor, name: String = "") {
        self.name = name
        self.shape = value.shape
        self.storage = value.storage.copy()
    }

    /// The number of elements.
    public var scalarCount: Int { storage.count }

    /// The current value. Operations on it are recorded on the tape (outside
    /// ``withoutGradients(_:)``). Setting copies the new elements in.
    /// - Precondition: a new value has this parameter's ``shape``.
    public var value: Tensor {
        get {
            var tensor = Tensor(storage: storage, shape: shape)
            guard requiresGradient else { return tensor }
            tensor.origin = self
            tensor.node = Tensor.leafNode
            return tensor
        }
        set {
            precondition(
                newValue.shape == shape,
                "Parameter '\(name)': cannot assign a value of shape \(newValue.shape) to shape \(shape)")
            newValue.withUnsafeBufferPointer { source in
                updateValue { destination in
                    if let start = source.baseAddress { destination.update(from: start, count: source.count) }
                }
            }
        }
    }

    /// The gradient accumulated by `backward()` since it was last reset, or nil.
    /// Setting copies the new elements in; setting nil resets it.
    /// - Precondition: a new gradient has this parameter's ``shape``.
    public var gradient: Tensor? {
        get {
            guard hasGradient, let gradientStorage else { return nil }
            return Tensor(storage: gradientStorage, shape: shape)
        }
        set {
            guard let newValue else {
                hasGradient = false
                return
            }
            precondition(
                newValue.shape == shape,
                "Parameter '\(name)': cannot assign a gradient of shape \(newValue.shape) to shape \(shape)")
            newValue.withUnsafeBufferPointer { source in
                updateGradient(accumulating: false) { destination in
                    if let start = source.baseAddress { destination.update(from: start, count: source.count) }
                }
            }
        }
    }

    /// Registers a hook on the gradients `backward()` computes for this
    /// parameter, run before they are added into ``gradient`` (PyTorch's
    /// `register_hook` on a leaf tensor). The hook may return a replacement of
    /// the same shape, or nil to keep the gradient: for example
    /// `w.registerGradientHook { $0 * 0.5 }` halves it, and a hook that records
    /// `$0` and returns nil only observes.
    /// - Returns: a handle whose ``HookHandle/remove()`` unregisters the hook.
    @discardableResult
    public func registerGradientHook(_ hook: @escaping GradientHook) -> HookHandle {
        let id = gradientHooks.append(hook)
        return HookHandle { [weak self] in self?.gradientHooks.remove(id) }
    }

    /// Registers a hook run after `backward()` has added this parameter's
    /// gradient into ``gradient`` (PyTorch's `register_post_accumulate_grad_hook`).
    /// `backward()` hands each parameter its gradient as soon as the sweep has
    /// passed the parameter's first use, so the hook can start work on it
    /// (an all-reduce, say) while the rest of the sweep runs.
    /// - Returns: a handle whose ``HookHandle/remove()`` unregisters the hook.
    @discardableResult
    public func registerGradientAccumulatedHook(_ hook: @escaping (Parameter) -> Void) -> HookHandle {
        let id = accumulatedHooks.append(hook)
        return HookHandle { [weak self] in self?.accumulatedHooks.remove(id) }
    }

    /// Adds a gradient computed by `backward()`, running the hooks before and after.
    func receiveGradient(_ gradient: Tensor) {
        accumulateGradient(gradientHooks.isEmpty ? gradient : gradientHooks.apply(to: gradient, of: "parameter '\(name)'"))
        if !accumulatedHooks.isEmpty { for entry in accumulatedHooks.entries { entry.hook(self) } }
    }

    /// The gradient buffer backward may write this step's gradient into
    /// directly: when the gradient is a view of a flat buffer (an optimizer's),
    /// there is no gradient yet to add to, and no hook must see it first. Made
    /// exclusive first (a reader of an earlier gradient keeps its values).
    func gradientBufferForDirectWrite() -> TensorStorage? {
        guard gradientHooks.isEmpty, !hasGradient, gradientStorage?.isView == true else { return nil }
        Parameter.makeExclusive(&gradientStorage!)
        return gradientStorage
    }

    /// Whether `gradient`, written into ``gradientBufferForDirectWrite()`` at
    /// the start of a sweep, can simply become the gradient now: nothing
    /// changed since (no hook registered, no gradient assigned, not rebound).
    func stillTakesGradientWrittenInPlace(_ gradient: Tensor) -> Bool {
        gradientHooks.isEmpty && !hasGradient && gradientStorage === gradient.storage
    }

    /// Backward wrote the whole gradient into ``gradientBufferForDirectWrite()``:
    /// it is this parameter's gradient now, as after ``receiveGradient(_:)``.
    func receiveGradientWrittenInPlace() {
        hasGradient = true
        if !accumulatedHooks.isEmpty { for entry in accumulatedHooks.entries { entry.hook(self) } }
    }

    /// Runs `body` on the value's memory for writing, after making sure no
    /// tensor handed out earlier (or saved on the tape) sees the change.
    func updateValue(_ body: (FloatPointer) -> Void) {
        valueVersion &+= 1
        makeValueExclusive()
        withExtendedLifetime(storage) { body(storage.base) }
    }

    /// Adds `gradient` into ``gradient`` (or sets it when there is none yet).
    func accumulateGradient(_ gradient: Tensor) {
        precondition(
            gradient.shape == shape,
            "Parameter '\(name)': gradient of shape \(gradient.shape) for a parameter of shape \(shape)")
        if !hasGradient, gradientStorage == nil || gradientStorage?.isView == false {
            // Nothing to add to and no bound buffer to keep: adopt the buffer.
            gradientStorage = gradient.storage.isView ? gradient.storage.copy() : gradient.storage
            hasGradient = true
            return
        }
        let accumulate = hasGradient
        gradient.withUnsafeBufferPointer { source in
            updateGradient(accumulating: accumulate) { destination in
                guard let start = source.baseAddress else { return }
                if accumulate {
                    Kernels.axpy(count: source.count, output: destination, alpha: 1, input: start)
                } else {
                    destination.update(from: start, count: source.count)
                }
            }
        }
    }

    /// Runs `body` on the gradient's memory for writing (allocating it if
    /// needed); with `accumulating`, `body` sees the current gradient.
    func updateGradient(accumulating: Bool, _ body: (FloatPointer) -> Void) {
        if gradientStorage == nil {
            gradientStorage = TensorStorage(count: storage.count)
        } else {
            Parameter.makeExclusive(&gradientStorage!)
        }
        let target = gradientStorage!
        withExtendedLifetime(target) { body(target.base) }
        hasGradient = true
    }

    private func makeValueExclusive() { Parameter.makeExclusive(&storage) }

    /// Ensures that writing through `storage` changes no tensor but its owner's.
    ///
    /// An owned buffer that others still read is replaced by a copy (plain
    /// copy-on-write). A view into a shared flat buffer cannot move, so the
    /// readers are moved instead: their storage object takes a private copy of
    /// the current values, and the owner gets a fresh view of the same memory.
    static func makeExclusive(_ storage: inout TensorStorage) {
        if isKnownUniquelyReferenced(&storage) { return }
        if storage.isView {
            let old = storage
            storage = TensorStorage(viewing: old.base, count: old.count, owner: old.owner!)
            old.detachIntoPrivateCopy()
        } else {
            storage = storage.copy()
        }
    }

    /// Makes the value a view of `count` elements at `base` in memory that
    /// `owner` keeps alive, copying the current values there first. For
    /// optimizers that keep all parameters in one flat buffer.
    func bindValue(to base: FloatPointer, owner: AnyObject) {
        let old = storage
        withExtendedLifetime(old) { base.update(from: old.base, count: old.count) }
        storage = TensorStorage(viewing: base, count: old.count, owner: owner)
        // Readers of a previous view keep its values; an owned buffer stays theirs.
        old.detachIntoPrivateCopy()
    }

    /// Makes the gradient a view into a flat buffer, like ``bindValue(to:owner:)``.
    func bindGradient(to base: FloatPointer, owner: AnyObject) {
        if let old = gradientStorage {
            withExtendedLifetime(old) { base.update(from: old.base, count: old.count) }
            old.detachIntoPrivateCopy()
        }
        gradientStorage = TensorStorage(viewing: base, count: storage.count, owner: owner)
    }
}

extension Parameter: CustomStringConvertible {
    /// `Parameter('0.weight', shape: [128, 64])`, or `unnamed` for a parameter without a name.
    public var description: String { "Parameter(\(name.isEmpty ? "unnamed" : "'\(name)'"), shape: \(shape))" }
}
