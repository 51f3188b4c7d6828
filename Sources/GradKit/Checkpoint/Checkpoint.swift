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
    /// Optimizer steps taken and epochs completed when the checkpoint was made.
    public var step: Int
    public var epoch: Int
    /// Generator states by role ("shuffle", "dropout:<layer>", ...).
    public var randomState: [String: [UInt64]]
    /// Free-form settings (the command line, data set, seed ...).
    public var configuration: [String: String]
    /// The best weights early stopping has seen, by name (restored when the run stops).
    public var bestModel: [String: Tensor]?

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

    /// The checkpoint held in a safetensors file's tensors and metadata.
    private init(tensors: [String: Tensor], metadata: [String: String], file path: String) throws {
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
            guard let value = Int(text), value >= 0 else { throw CheckpointError.badMetadata(file: path, key: key, reason: "'\(text)' is not a count") }
            return value
        }
        func json(_ key: String) throws -> JSON? {
            guard let text = metadata[key] else { return nil }
            do { return try JSON.parse(text) } catch {
                throw CheckpointError.badMetadata(file: path, key: key, reason: "invalid JSON at offset \(error.offset): \(error.reason)")
            }
        }
        var randomState: [String: [UInt64]] = [:]
        if let random = try json("random") {
            guard let object = random.objectValue else { throw CheckpointError.badMetadata(file: path, key: "random", reason: "not an object") }
            for (role, words) in object {
                guard let list = words.arrayValue?.compactMap({ $0.stringValue.flatMap(UInt64.init) }), list.count == words.arrayValue?.count else {
                    throw CheckpointError.badMetadata(file: path, key: "random", reason: "'\(role)' is not a list of 64-bit words")
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
        self.init(
            model: model, optimizer: optimizer, step: try integer("step"), epoch: try integer("epoch"),
            randomState: randomState, configuration: configuration)
        bestModel = best.isEmpty ? nil : best
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
