// GradKit — the tape: a flat record of differentiable operations. SPDX-License-Identifier: MIT
import Synchronization

/// A pullback: given one record and the gradient of its output, sends the
/// gradients of its inputs to the sink. Stored in records as a plain function
/// (no captured context, so recording allocates nothing for it).
typealias Pullback = @Sendable (_ record: borrowing TapeRecord, _ gradient: Tensor, _ sink: inout GradientSink) -> Void

/// One recorded operation: its pullback, its inputs' and output's nodes, and
/// whatever the pullback needs (saved values, shapes, scalars, indices).
struct TapeRecord {
    let pullback: Pullback
    /// Input nodes, -1 where the input needs no gradient.
    var inputs: (Int32, Int32, Int32) = (-1, -1, -1)
    var output: Int32 = -1
    var saved0: Tensor?
    var saved1: Tensor?
    var saved2: Tensor?
    var shape0: [Int] = []
    var shape1: [Int] = []
    var scalar0: Float = 0
    var scalar1: Float = 0
    var integer: Int = 0
    var indices: [Int] = []

    init(pullback: @escaping Pullback) { self.pullback = pullback }

    /// Saves a value for the pullback, stripped of tape tracking so records never
    /// keep their session alive.
    @inline(__always)
    mutating func save(_ a: Tensor?, _ b: Tensor? = nil, _ c: Tensor? = nil) {
        saved0 = a?.detached()
        saved1 = b?.detached()
        saved2 = c?.detached()
    }
}

/// Marks the tensors of one recording session. Recorded tensors hold it
/// strongly; the tape holds it weakly. When no recorded tensor is left, the
/// session dies and the tape knows its records can no longer be reached.
final class TapeSession {
    let tape: Tape
    let generation: UInt64

    init(tape: Tape, generation: UInt64) {
        self.tape = tape
        self.generation = generation
    }

    @inline(__always)
    var isCurrent: Bool { tape.generation == generation }
}

/// The per-thread tape.
///
/// Operations append records as they run; `backward` walks them from last to
/// first, which is already a reverse topological order, and then clears them.
/// Buffers (records, gradients) keep their capacity between steps.
final class Tape {
    static let local = ThreadLocal { Tape() }

    /// Unique across all tapes, so a parameter's cached leaf node can never be
    /// mistaken for one of another tape or an earlier session.
    private static let generations = Atomic<UInt64>(1)

    private(set) var generation: UInt64
    private weak var session: TapeSession?
    /// The records, in a buffer managed by hand: backward moves each record out
    /// as it runs its pullback, so saved values are released as early as
    /// possible and records are never copied.
    private var records: UnsafeMutablePointer<TapeRecord>
    private var recordCapacity = 256
    private(set) var recordCount = 0
    /// Parameters on this tape, in order of first use, with the index of the
    /// first record that used each: once backward has swept back past that
    /// record, the parameter's gradient is complete.
    private var leaves: [(node: Int32, parameter: Parameter, firstUse: Int)] = []
    private var nodeCount: Int32 = 0
    /// Gradients by node during a backward sweep.
    private var gradients: [Tensor?] = []
    /// By node during a sweep: the gradient in `gradients` is a view of its
    /// parameter's bound gradient buffer, written there by the pullbacks.
    private var writtenInParameter: [Bool] = []

    /// > 0 inside `withoutGradients` (on this thread).
    var disabledDepth = 0
    private(set) var isSweeping = false

    /// Gradient hooks on recorded tensors, by node; cleared with the records.
    private var nodeHooks: [Int32: HookList<GradientHook>] = [:]

    /// > 0 inside `withAnomalyDetection` (on this thread).
    var anomalyDepth = 0
    /// In anomaly mode: where each recorded node's operation was called.
    private var origins: [Int32: OperationOrigin] = [:]
    /// The first non-finite value found in anomaly mode, until the scope reports it.
    var anomaly: AnomalyError?

    init() {
        generation = Tape.generations.add(1, ordering: .relaxed).newValue
        records = .allocate(capacity: recordCapacity)
    }

    deinit {
        records.deinitialize(count: recordCount)
        records.deallocate()
    }

    private func appendRecord(_ record: consuming TapeRecord) {
        if recordCount == recordCapacity {
            let grown = UnsafeMutablePointer<TapeRecord>.allocate(capacity: recordCapacity * 2)
            grown.moveInitialize(from: records, count: recordCount)
            records.deallocate()
            records = grown
            recordCapacity *= 2
        }
        (records + recordCount).initialize(to: record)
        recordCount += 1
    }

    /// Forgets every record (their saved values return to the buffer pool).
    func reset() {
        records.deinitialize(count: recordCount)
        recordCount = 0
        leaves.removeAll(keepingCapacity: true)
        nodeCount = 0
        generation = Tape.generations.add(1, ordering: .relaxed).newValue
        session = nil
        if !nodeHooks.isEmpty { nodeHooks.removeAll() }
        if !origins.isEmpty { origins.removeAll() }
    }

    /// The live session, or a new one when no recorded tensor survives (then
    /// the old records are unreachable and are dropped first).
    @inline(__always)
    private func currentSession() -> TapeSession {
        if let session, session.generation == generation { return session }
        if recordCount > 0 || !leaves.isEmpty { reset() }
        let fresh = TapeSession(tape: self, generation: generation)
        session = fresh
        return fresh
    }

    /// The tape an operation on these inputs records on, or nil when it should
    /// not be recorded: gradients are off on this thread, or no input is a
    /// parameter's value or a live recorded tensor.
    @inline(__always)
    static func recording(_ a: Tensor, _ b: Tensor?, _ c: Tensor?) -> Tape? {
        let local = Tape.local.current
        if local.disabledDepth > 0 { return nil }
        // A live recorded input decides: the graph follows its data, even to
        // another thread.
        if let tape = a.liveTape ?? b?.liveTape ?? c?.liveTape { return tape }
        if a.isLiveLeaf || b?.isLiveLeaf == true || c?.isLiveLeaf == true { return local }
        return nil
    }

    /// Appends a record for `output` computed from `a`, `b`, `c` and returns
    /// `output` marked as recorded.
    func append(
        _ output: Tensor, _ a: Tensor, _ b: Tensor?, _ c: Tensor?, op: String, pullback: @escaping Pullback,
        configure: (inout TapeRecord) -> Void
    ) -> Tensor {
        let session = currentSession()
        var record = TapeRecord(pullback: pullback)
        record.inputs = (node(of: a), b.map(node(of:)) ?? -1, c.map(node(of:)) ?? -1)
        configure(&record)
        let id = nodeCount
        record.output = id
        nodeCount += 1
        appendRecord(record)
        if anomalyDepth > 0 { recordOrigin(of: id, op: op, output: output) }
        var result = output
        result.origin = session
        result.node = id
        return result
    }

    /// The node of an input on this tape, registering a parameter's value as a
    /// leaf on first use in this session; -1 when it needs no gradient.
    private func node(of t: Tensor) -> Int32 {
        if t.node >= 0 {
            let s = unsafeDowncast(t.origin.unsafelyUnwrapped, to: TapeSession.self)
            return (s.tape === self && s.generation == generation) ? t.node : -1
        }
        guard t.node == Tensor.leafNode else { return -1 }
        let parameter = unsafeDowncast(t.origin.unsafelyUnwrapped, to: Parameter.self)
        guard parameter.storage === t.storage, parameter.requiresGradient else { return -1 }
        if parameter.leafGeneration == generation { return parameter.leafNode }
        let id = nodeCount
        nodeCount += 1
        leaves.append((id, parameter, recordCount))
        parameter.leafGeneration = generation
        parameter.leafNode = id
        return id
    }

    // ------------------------------------------------------------ backward

    /// Propagates `seed` (the gradient of the tensor at `root`) back through
    /// every record, accumulates into the parameters' gradients, and clears
    /// the tape.
    func backward(from root: Int32, seed: Tensor) {
        precondition(!isSweeping, "backward(): called from inside a backward pass")
        let local = Tape.local.current
        local.disabledDepth += 1
        isSweeping = true
        defer {
            isSweeping = false
            local.disabledDepth -= 1
        }
        if anomalyDepth > 0, anomaly != nil {
            // Anomaly mode found a non-finite value already: this pass is poisoned, change nothing.
            reset()
            return
        }
        gradients.removeAll(keepingCapacity: true)
        gradients.append(contentsOf: repeatElement(nil, count: Int(nodeCount)))
        writtenInParameter.removeAll(keepingCapacity: true)
        writtenInParameter.append(contentsOf: repeatElement(false, count: Int(nodeCount)))
        gradients[Int(root)] = seed
        // In anomaly mode parameters receive nothing until the whole sweep is checked.
        let deliversEarly = anomalyDepth == 0
        var pendingLeaves = leaves.count
        while recordCount > 0 {
            recordCount -= 1
            let record = (records + recordCount).move() // released after its pullback
            let output = Int(record.output)
            if var gradient = gradients[output] {
                gradients[output] = nil // its buffer returns to the pool as soon as possible
                if !nodeHooks.isEmpty, let hooks = nodeHooks[record.output] {
                    gradient = hooks.apply(to: gradient, of: "a recorded tensor")
                }
                var sink = GradientSink(tape: self, inputs: record.inputs)
                record.pullback(record, gradient, &sink)
                if anomalyDepth > 0, !checkGradients(of: record) {
                    // The first non-finite gradient: stop, and leave the parameters' gradients as they were.
                    gradients.removeAll(keepingCapacity: true)
                    reset()
                    return
                }
            }
            // Parameters first used by this record have their whole gradient now: hand it over
            // (hooks run as soon as a gradient is ready, so work on it can overlap the rest of the sweep).
            while deliversEarly, pendingLeaves > 0, leaves[pendingLeaves - 1].firstUse >= recordCount {
                pendingLeaves -= 1
                deliver(leaves[pendingLeaves])
            }
        }
        while pendingLeaves > 0 {
            pendingLeaves -= 1
            deliver(leaves[pendingLeaves])
        }
        gradients.removeAll(keepingCapacity: true)
        reset()
    }

    /// Adds a leaf's gradient into its parameter and forgets it here.
    private func deliver(_ leaf: (node: Int32, parameter: Parameter, firstUse: Int)) {
        let i = Int(leaf.node)
        guard let gradient = gradients[i] else { return }
        gradients[i] = nil
        if writtenInParameter[i], leaf.parameter.stillTakesGradientWrittenInPlace(gradient) {
            leaf.parameter.receiveGradientWrittenInPlace()
        } else {
            // Changed during the sweep (a hook registered, a gradient assigned, bound elsewhere):
            // hand the sum over as any other gradient.
            leaf.parameter.receiveGradient(gradient)
        }
    }

    /// The parameter whose leaf is `node`, when its gradient may be written
    /// straight into its bound buffer (``Parameter/gradientBufferForDirectWrite()``);
    /// not in anomaly mode, where parameters receive nothing until the sweep is checked.
    private func parameterWritableInPlace(_ node: Int32) -> Parameter? {
        guard anomalyDepth == 0 else { return nil }
        // Leaves are appended as their nodes are numbered: sorted by node.
        var low = 0, high = leaves.count
        while low < high {
            let mid = (low + high) / 2
            if leaves[mid].node < node { low = mid + 1 } else { high = mid }
        }
        guard low < leaves.count, leaves[low].node == node else { return nil }
        return leaves[low].parameter
    }

    /// Registers a gradient hook on the recorded tensor at `node`.
    func registerHook(_ hook: @escaping GradientHook, node: Int32) -> HookHandle {
        let id = nodeHooks[node, default: HookList()].append(hook)
        let generation = self.generation
        return HookHandle { [weak self] in
            guard let self, self.generation == generation else { return }
            self.nodeHooks[node]?.remove(id)
        }
    }

    /// Anomaly mode, forward: remembers where `node`'s operation was called and
    /// reports a non-finite output.
    private func recordOrigin(of node: Int32, op: String, output: Tensor) {
        let origin = OperationOrigin(op: op)
        origins[node] = origin
        if anomaly == nil, !output.isAllFinite {
            anomaly = AnomalyError(operation: op, direction: .forward, callSite: origin.callSite, value: output.firstNonFiniteValue)
        }
    }

    /// Anomaly mode, backward: false (and the anomaly recorded) when `record`'s
    /// pullback made one of its inputs' gradients non-finite.
    private func checkGradients(of record: borrowing TapeRecord) -> Bool {
        for node in [record.inputs.0, record.inputs.1, record.inputs.2] where node >= 0 {
            guard let gradient = gradients[Int(node)], !gradient.isAllFinite else { continue }
            if anomaly == nil {
                let origin = origins[record.output]
                anomaly = AnomalyError(
                    operation: origin?.op ?? "an operation", direction: .backward, callSite: origin?.callSite,
                    value: gradient.firstNonFiniteValue)
            }
            return false
        }
        return true
    }

    /// Adds `gradient` to the gradient of `node`.
    fileprivate func accumulate(_ node: Int32, _ gradient: Tensor) {
        let i = Int(node)
        if writtenInParameter[i], let existing = gradients[i] {
            // The parameter's own buffer, which no one else reads during the sweep.
            precondition(existing.shape == gradient.shape, "backward: gradient of shape \(gradient.shape) for \(existing.shape)")
            withExtendedLifetime((existing, gradient)) {
                Kernels.axpy(count: existing.scalarCount, output: existing.mutablePointer, alpha: 1, input: gradient.pointer)
            }
        } else if var existing = gradients[i] {
            gradients[i] = nil
            existing.addInPlace(gradient)
            gradients[i] = existing
        } else {
            gradients[i] = gradient.detached()
        }
    }

    /// Lets `produce` write (beta = 0) or add (beta = 1) the gradient of `node`
    /// straight into its buffer, so a GEMM can accumulate without a temporary.
    fileprivate func accumulate(
        _ node: Int32, shape: [Int], _ produce: (_ destination: FloatPointer, _ beta: Float) -> Void
    ) {
        let i = Int(node)
        if writtenInParameter[i], let existing = gradients[i] {
            withExtendedLifetime(existing) { produce(existing.mutablePointer, 1) }
        } else if var existing = gradients[i] {
            gradients[i] = nil
            existing.makeUniquelyOwned()
            produce(existing.mutablePointer, 1)
            gradients[i] = existing
        } else if let parameter = parameterWritableInPlace(node), parameter.shape == shape,
                  let buffer = parameter.gradientBufferForDirectWrite() {
            // A parameter bound to a flat gradient buffer (an optimizer's) with no
            // gradient yet: write there, instead of into a tensor copied there later.
            withExtendedLifetime(buffer) { produce(buffer.base, 0) }
            gradients[i] = Tensor(storage: buffer, shape: shape)
            writtenInParameter[i] = true
        } else {
            let fresh = Tensor(uninitializedShape: shape)
            produce(fresh.mutablePointer, 0)
            gradients[i] = fresh
        }
    }
}

/// Where a pullback sends its inputs' gradients. Inputs that need no gradient
/// (constants, data) are skipped, and `isNeeded` lets a pullback skip computing
/// them at all.
struct GradientSink {
    fileprivate unowned(unsafe) let tape: Tape
    fileprivate let inputs: (Int32, Int32, Int32)

    @inline(__always)
    private func node(_ slot: Int) -> Int32 {
        switch slot {
        case 0: inputs.0
        case 1: inputs.1
        default: inputs.2
        }
    }

    /// Whether input `slot` (0, 1, 2 in the order the op recorded them) needs a gradient.
    @inline(__always)
    func isNeeded(_ slot: Int) -> Bool { node(slot) >= 0 }

    /// Whether inputs `a` and `b` both need gradients and are different tensors
    /// (so their gradients can be written at the same time).
    func areDistinctAndNeeded(_ a: Int, _ b: Int) -> Bool {
        isNeeded(a) && isNeeded(b) && node(a) != node(b)
    }

    /// Adds `gradient` to input `slot`'s gradient.
    func accumulate(_ slot: Int, _ gradient: Tensor) {
        let n = node(slot)
        if n >= 0 { tape.accumulate(n, gradient) }
    }

    /// Lets `produce` write the gradient of input `slot` (of `shape`) in place:
    /// it must compute `destination = result + beta * destination`.
    func accumulate(_ slot: Int, shape: [Int], _ produce: (_ destination: FloatPointer, _ beta: Float) -> Void) {
        let n = node(slot)
        if n >= 0 { tape.accumulate(n, shape: shape, produce) }
    }
}

extension Tensor {
    /// The tape of a live recorded tensor.
    @inline(__always)
    var liveTape: Tape? {
        guard node >= 0 else { return nil }
        let s = unsafeDowncast(origin.unsafelyUnwrapped, to: TapeSession.self)
        return s.isCurrent ? s.tape : nil
    }

    /// True for the value of a parameter that requires a gradient and still
    /// shows the parameter's storage.
    @inline(__always)
    var isLiveLeaf: Bool {
        guard node == Tensor.leafNode else { return false }
        let parameter = unsafeDowncast(origin.unsafelyUnwrapped, to: Parameter.self)
        return parameter.storage === storage && parameter.requiresGradient
    }

    /// Records an operation with one differentiable input.
    ///
    /// The fast exit costs two comparisons when nothing is tracked.
    @inline(__always)
    static func record(
        _ output: Tensor, _ a: Tensor, op: String = #function, pullback: @escaping Pullback,
        configure: (inout TapeRecord) -> Void = { _ in }
    ) -> Tensor {
        if a.node == Tensor.untracked { return output }
        guard let tape = Tape.recording(a, nil, nil) else { return output }
        return tape.append(output, a, nil, nil, op: op, pullback: pullback, configure: configure)
    }

    /// Records an operation with two differentiable inputs.
    @inline(__always)
    static func record(
        _ output: Tensor, _ a: Tensor, _ b: Tensor, op: String = #function, pullback: @escaping Pullback,
        configure: (inout TapeRecord) -> Void = { _ in }
    ) -> Tensor {
        if a.node == Tensor.untracked && b.node == Tensor.untracked { return output }
        guard let tape = Tape.recording(a, b, nil) else { return output }
        return tape.append(output, a, b, nil, op: op, pullback: pullback, configure: configure)
    }

    /// Records an operation with three differentiable inputs.
    @inline(__always)
    static func record(
        _ output: Tensor, _ a: Tensor, _ b: Tensor, _ c: Tensor, op: String = #function, pullback: @escaping Pullback,
        configure: (inout TapeRecord) -> Void = { _ in }
    ) -> Tensor {
        if a.node == Tensor.untracked && b.node == Tensor.untracked && c.node == Tensor.untracked { return output }
        guard let tape = Tape.recording(a, b, c) else { return output }
        return tape.append(output, a, b, c, op: op, pullback: pullback, configure: configure)
    }
}
