// GradKit — training checkpoints. SPDX-License-Identifier: MIT

/// Everything needed to resume training exactly, stored as one safetensors
/// file that PyTorch can read:
///
/// - the model's parameters and buffers under their PyTorch names (`"0.weight"`);
/// - the optimizer's buffers as `"optimizer/<parameter>/<buffer>"` tensors, its
///   kind, groups with their hyperparameters, and step counts in the metadata;
/// - the step and epoch counters, the random generators' states and a free-form
///   configuration (for example the command line), also in the metadata;
/// - early stopping's best weights so far, as `"best/<name>"` tensors.
///
/// Writing is atomic: a temporary file, fsync, then a rename over the target.
public struct Checkpoint: Sendable {
    /// Parameters and buffers by name (``Layer/stateDictionary()``).
    public var model: [String: Tensor]
    /// The optimizer's state, if any.
    public var optimizer: OptimizerState?
    /// Optimizer steps taken when the checkpoint was made.
    public var step: Int
    /// Epochs completed when the checkpoint was made.
    public var epoch: Int
    /// Generator states by role ("shuffle", "dropout:<layer>", ...).
    public var randomState: [String: [UInt64]]
    /// Free-form settings (the command line, data set, seed ...).
    public var configuration: [String: String]
    /// The best weights early stopping has seen, by name (restored when the run stops).
    public var bestModel: [String: Tensor]?

    /// A checkpoint of the given parts; early stopping's ``bestModel`` is set separately.
    ///
    /// - Parameters:
    ///   - model: parameters and buffers by name (``Layer/stateDictionary()``).
    ///   - optimizer: the optimizer's state (``Optimizer/exportState()``), if any.
    ///   - step: optimizer steps taken.
    ///   - epoch: epochs completed.
    ///   - randomState: generator states by role ("shuffle", "dropout:<layer>", ...).
    ///   - configuration: free-form settings, stored as metadata.
    public init(
        model: [String: Tensor], optimizer: OptimizerState? = nil, step: Int = 0, epoch: Int = 0,
        randomState: [String: [UInt64]] = [:], configuration: [String: String] = [:]
    ) {
        self.model = model
        self.optimizer = optimizer
        self.step = step
        self.epoch = epoch
        self.randomState = randomState
        self.configuration = configuration
    }

    static let format = "gradkit-checkpoint-1"
    static let optimizerPrefix = "optimizer/"
    static let bestModelPrefix = "best/"

    /// The bound on ``step``, ``epoch`` and the optimizer's step counts a
    /// checkpoint may hold: below 2^53, so counting on with `+= 1` cannot
    /// overflow and every count is exact as a Double (JSON's numbers).
    public static let countLimit = 1 << 53

    /// Words in a generator state (``SeededGenerator/stateWords``).
    static let randomStateWordCount = SeededGenerator(seed: 0).stateWords.count

    /// The file name of one optimizer buffer: `"optimizer/<parameter index>/<buffer>"`.
    static func optimizerTensorName(index: Int, buffer: String) -> String { "\(optimizerPrefix)\(index)/\(buffer)" }

    /// Writes the checkpoint atomically.
    /// - Throws: ``CheckpointError/writeFailed(file:reason:)``.
    public func write(to path: String) throws {
        let (tensors, metadata) = contents()
        try SafeTensors.write(tensors, metadata: metadata, to: path)
    }

    /// The bytes ``write(to:)`` writes, for sending a checkpoint elsewhere
    /// than to a file (data-parallel ranks agree through them).
    func encoded() -> [UInt8] {
        let (tensors, metadata) = contents()
        return SafeTensors.encode(tensors, metadata: metadata)
    }

    /// The safetensors tensors and metadata of the file.
    private func contents() -> (tensors: [String: Tensor], metadata: [String: String]) {
        var tensors = model
        for (name, tensor) in bestModel ?? [:] { tensors[Checkpoint.bestModelPrefix + name] = tensor }
        var metadata: [String: String] = [
            "format": Checkpoint.format, "step": String(step), "epoch": String(epoch),
            "random": JSON.object(randomState.mapValues { .array($0.map { .string(String($0)) }) }).text,
            "configuration": JSON.object(configuration.mapValues { .string($0) }).text,
        ]
        optimizer?.write(metadata: &metadata, tensors: &tensors, prefix: Checkpoint.optimizerPrefix)
        return (tensors, metadata)
    }

    /// Reads a checkpoint written by ``write(to:)``; a plain safetensors state
    /// dictionary (PyTorch's `save_file(model.state_dict())`) reads as a
    /// checkpoint with only model tensors.
    ///
    /// What is read is checked with ``validate(file:)`` before it is returned,
    /// so a checkpoint from a file never holds a count that overflows later, a
    /// generator state that cannot be restored, or a non-finite number.
    /// - Throws: ``CheckpointError`` for malformed files and metadata.
    public static func read(from path: String) throws -> Checkpoint {
        let (tensors, metadata) = try SafeTensors.read(path)
        return try Checkpoint(tensors: tensors, metadata: metadata, file: path)
    }

    /// Decodes bytes made by ``encoded()``; `source` names them in errors.
    /// - Throws: ``CheckpointError`` for malformed bytes and metadata.
    init(decoding bytes: [UInt8], source: String) throws {
        let (tensors, metadata) = try SafeTensors.decode(bytes, file: source)
        try self.init(tensors: tensors, metadata: metadata, file: source)
    }

    /// The checkpoint held in a safetensors file's tensors and metadata, as
    /// ``read(from:)`` builds it after reading the file (visible to the
    /// package's fuzzers, which decode files in memory).
    /// - Parameter file: The name errors report.
    /// - Throws: ``CheckpointError`` for malformed metadata and for what
    ///   ``validate(file:)`` refuses.
    package init(tensors: [String: Tensor], metadata: [String: String], file path: String) throws {
        var model: [String: Tensor] = [:], optimizerBuffers: [String: Tensor] = [:], best: [String: Tensor] = [:]
        for (name, tensor) in tensors {
            if name.hasPrefix(Checkpoint.optimizerPrefix) {
                optimizerBuffers[String(name.dropFirst(Checkpoint.optimizerPrefix.count))] = tensor
            } else if name.hasPrefix(Checkpoint.bestModelPrefix) {
                best[String(name.dropFirst(Checkpoint.bestModelPrefix.count))] = tensor
            } else {
                model[name] = tensor
            }
        }
        func integer(_ key: String) throws -> Int {
            guard let text = metadata[key] else { return 0 }
            guard let value = Int(text), value >= 0 else {
                throw CheckpointError.badMetadata(file: path, key: key, reason: "\(text.quotedForMessage()) is not a count from 0 to 2^53 - 1")
            }
            return value
        }
        func json(_ key: String) throws -> JSON? {
            guard let text = metadata[key] else { return nil }
            // Bounded like the header the text came from: one header string may hold a 90 MB JSON text.
            do { return try JSON.parse(ArraySlice(text.utf8), maximumValues: SafeTensors.maximumHeaderValues) } catch {
                throw CheckpointError.badMetadata(file: path, key: key, reason: "invalid JSON at offset \(error.offset): \(error.reason)")
            }
        }
        var randomState: [String: [UInt64]] = [:]
        if let random = try json("random") {
            guard let object = random.objectValue else { throw CheckpointError.badMetadata(file: path, key: "random", reason: "not an object") }
            for (role, words) in object {
                guard let list = words.arrayValue?.compactMap({ $0.stringValue.flatMap(UInt64.init) }), list.count == words.arrayValue?.count else {
                    throw CheckpointError.badMetadata(file: path, key: "random", reason: "\(role.quotedForMessage()) is not a list of 64-bit words")
                }
                randomState[role] = list
            }
        }
        var configuration: [String: String] = [:]
        if let config = try json("configuration") {
            guard let object = config.objectValue else { throw CheckpointError.badMetadata(file: path, key: "configuration", reason: "not an object") }
            for (key, value) in object { configuration[key] = value.stringValue ?? value.text }
        }
        let optimizer = try OptimizerState(metadata: metadata, buffers: optimizerBuffers, file: path)
        if optimizer == nil, let key = optimizerBuffers.keys.min() {
            throw CheckpointError.badMetadata(
                file: path, key: "optimizer.kind", reason: "missing, yet tensor \((Checkpoint.optimizerPrefix + key).quotedForMessage()) is optimizer state")
        }
        self.init(
            model: model, optimizer: optimizer, step: try integer("step"), epoch: try integer("epoch"),
            randomState: randomState, configuration: configuration)
        bestModel = best.isEmpty ? nil : best
        try validate(file: path)
    }

    /// The optimizer tensors (names without ``optimizerPrefix``, e.g.
    /// `"3/exp_avg"`) by parameter index, in one pass: looking up each
    /// parameter's buffers by prefix would take parameters × tensors steps.
    /// - Throws: ``CheckpointError/badMetadata(file:key:reason:)`` for a tensor
    ///   of no parameter (a bad index such as `01` or `-1`, or one past the
    ///   last): dropping it silently would lose state.
    static func groupOptimizerBuffers(_ buffers: [String: Tensor], parameterCount: Int, file: String) throws -> [Int: [String: Tensor]] {
        var grouped: [Int: [String: Tensor]] = [:]
        for (key, tensor) in buffers {
            guard let slash = key.firstIndex(of: "/"), let index = Int(key[..<slash]), String(index) == key[..<slash], index >= 0, index < parameterCount else {
                throw CheckpointError.badMetadata(
                    file: file, key: "optimizer.parameters",
                    reason: "tensor \((optimizerPrefix + key).quotedForMessage()) belongs to none of the \(parameterCount) parameters")
            }
            grouped[index, default: [:]][String(key[key.index(after: slash)...])] = tensor
        }
        return grouped
    }

    /// Checks that restoring this checkpoint cannot go wrong later: ``step``,
    /// ``epoch`` and the optimizer's step counts are from 0 to
    /// ``countLimit`` - 1; every generator state has 4 words, not all zero;
    /// every hyperparameter is finite also as a Float (1e300 is not); every
    /// model tensor and optimizer buffer is finite, and buffers of squares
    /// (`squareBuffers`) are not negative; the optimizer's parameter names
    /// are unique and, when the checkpoint has a model, name its tensors. ``read(from:)`` calls it;
    /// call it for a checkpoint built in memory from untrusted values.
    /// - Parameter file: The name errors report.
    /// - Throws: ``CheckpointError/badMetadata(file:key:reason:)`` naming the
    ///   key, or ``CheckpointError/nonFinite(file:tensor:element:value:)`` and
    ///   ``CheckpointError/negative(file:tensor:element:value:)`` naming the
    ///   tensor and element.
    public func validate(file: String = "checkpoint") throws {
        func count(_ value: Int, _ key: String) throws {
            guard value >= 0, value < Checkpoint.countLimit else {
                throw CheckpointError.badMetadata(file: file, key: key, reason: "\(value) is not a count from 0 to 2^53 - 1")
            }
        }
        try count(step, "step")
        try count(epoch, "epoch")
        for role in randomState.keys.sorted() {
            let words = randomState[role]!
            guard words.count == Checkpoint.randomStateWordCount, words.contains(where: { $0 != 0 }) else {
                throw CheckpointError.badMetadata(
                    file: file, key: "random",
                    reason: "\(role.quotedForMessage()) has \(words.count) words, expected \(Checkpoint.randomStateWordCount) not all zero")
            }
        }
        for name in model.keys.sorted() { try Checkpoint.requireFinite(model[name]!, name, file) }
        for name in (bestModel ?? [:]).keys.sorted() { try Checkpoint.requireFinite(bestModel![name]!, Checkpoint.bestModelPrefix + name, file) }
        guard let optimizer else { return }
        try count(optimizer.stepCount, "optimizer.stepCount")
        for group in optimizer.groups { try Checkpoint.requireFinite(group.hyperparameters, key: "optimizer.groups", file) }
        var named = Set<String>()
        for (index, entry) in optimizer.parameters.enumerated() {
            try count(entry.step, "optimizer.steps")
            // Unnamed parameters (an optimizer over bare tensors) are matched by position alone.
            if !entry.name.isEmpty {
                guard named.insert(entry.name).inserted else {
                    throw CheckpointError.badMetadata(file: file, key: "optimizer.parameters", reason: "names \(entry.name.quotedForMessage()) twice")
                }
                guard model.isEmpty || model[entry.name] != nil else {
                    throw CheckpointError.badMetadata(
                        file: file, key: "optimizer.parameters", reason: "names \(entry.name.quotedForMessage()), which is not a tensor of the model")
                }
            }
            for buffer in entry.buffers.keys.sorted() {
                let name = Checkpoint.optimizerTensorName(index: index, buffer: buffer)
                try Checkpoint.requireFinite(entry.buffers[buffer]!, name, file)
                if Checkpoint.squareBuffers.contains(buffer) { try Checkpoint.requireNonNegative(entry.buffers[buffer]!, name, file) }
            }
        }
    }

    /// The optimizer buffers that accumulate squares, so can never be negative (a negative one makes a NaN step).
    static let squareBuffers: Set<String> = ["exp_avg_sq", "max_exp_avg_sq", "square_avg", "sum"]

    private static func requireNonNegative(_ tensor: Tensor, _ name: String, _ file: String) throws {
        let bad = tensor.withUnsafeBufferPointer { values in values.firstIndex { $0 < 0 }.map { ($0, values[$0]) } }
        if let (element, value) = bad { throw CheckpointError.negative(file: file, tensor: name, element: element, value: value) }
    }

    /// Hyperparameters are Double in files and Float in the optimizers: 1e300 passes one and not the other.
    private static func requireFinite(_ hyperparameters: [String: Double], key: String, _ file: String) throws {
        for name in hyperparameters.keys.sorted() {
            let value = hyperparameters[name]!
            guard value.isFinite, Float(value).isFinite else {
                throw CheckpointError.badMetadata(file: file, key: key, reason: "\(name.quotedForMessage()) is \(value), not finite as a Float")
            }
        }
    }

    private static func requireFinite(_ tensor: Tensor, _ name: String, _ file: String) throws {
        let bad = tensor.withUnsafeBufferPointer { values in values.firstIndex { !$0.isFinite }.map { ($0, values[$0]) } }
        if let (element, value) = bad { throw CheckpointError.nonFinite(file: file, tensor: name, element: element, value: value) }
    }

    /// Loads the model tensors into `model` by name, reporting problems
    /// against this file: every name must match both ways, with equal shapes.
    /// - Throws: ``CheckpointError`` (nothing is changed then).
    public func load(into model: any Layer, file: String = "checkpoint") throws {
        do {
            try model.loadStateDictionary(self.model)
        } catch let error as LayerStateError {
            switch error {
            case .missing(let names): throw CheckpointError.missingTensor(file: file, tensor: names[0])
            case .unexpected(let names): throw CheckpointError.unexpectedTensor(file: file, tensor: names[0])
            case .shapeMismatch(let name, let expected, let found):
                throw CheckpointError.shapeMismatch(file: file, tensor: name, expected: expected, found: found)
            }
        }
    }
}
