// GradKit — data-parallel training over Open MPI. SPDX-License-Identifier: MIT
#if MPI

/// Trains one model on several processes (PyTorch's `DistributedDataParallel`):
/// every rank holds a replica, computes the gradients of its shard of each
/// global batch, and the ranks sum them — in buckets that start while
/// backward is still running — so that every rank takes the step one process
/// would take on the whole batch.
///
/// ```swift
/// let world = try ProcessGroup.world()
/// manualSeed(0)
/// let model = Sequential([Linear(inputSize: 64, outputSize: 128), ReLU(), Linear(inputSize: 128, outputSize: 10)])
/// let optimizer = Adam(model.parameters)
/// let parallel = try DataParallel(model: model, optimizer: optimizer, group: world)  // rank 0's weights everywhere
/// for batch in batches {                       // the same global batches on every rank
///     if let shard = parallel.shard(batch) {
///         softmaxCrossEntropy(logits: model(shard.features), labels: shard.labels!).backward()
///     }
///     try parallel.synchronizeGradients()      // now the gradients of the mean loss over `batch`
///     optimizer.step()
///     optimizer.zeroGradients()
/// }
/// ```
/// With a ``Trainer``, set ``Trainer/dataParallel`` instead: it shards, waits and
/// lets rank 0 alone write files and print.
///
/// **Starting alike.** Creating a `DataParallel` broadcasts rank 0's
/// parameters, buffers and optimizer state; a trainer broadcasts its whole
/// state again when it starts fitting (after a resume, say).
///
/// **Averaging.** ``shard(_:)`` gives rank `r` of `p` the examples
/// `[r·⌊N/p⌋ + min(r, N mod p), ...)` of a global batch of `N`: the first
/// `N mod p` ranks get one more. Each rank's gradient (of its shard's mean
/// loss) is multiplied by `n_r·p/N` (1 for even shards), the ranks' gradients
/// are summed and the sum divided by `p`: the result is `Σ_r (n_r/N)·g_r`,
/// the gradient of the mean loss over the whole batch.
///
/// **Buffers** (BatchNorm's running statistics) are rank 0's: each rank
/// normalizes with its own shard's statistics in training (DDP's default), and
/// ``synchronizeGradients(summing:)`` then copies rank 0's buffers to every
/// rank (DDP's `broadcast_buffers`).
///
/// **Dropout** draws each rank's masks from a stream of its own, derived at
/// each ``shard(_:)`` from the generator state the ranks share and the rank;
/// ``synchronizeGradients(summing:)`` then gives every rank rank 0's advanced
/// state, so a checkpoint holds the state of the whole job and a resumed run
/// draws the masks an uninterrupted one would.
///
/// **Parameters without a gradient** on a rank (unused in its forward pass,
/// or an empty shard) contribute zeros; one that has a gradient on no rank
/// keeps none, so the optimizer skips it everywhere, as it would in one process.
///
/// Every backward over the optimizer's parameters is a data-parallel step
/// while the object lives: call ``synchronizeGradients(summing:)`` after each.
public final class DataParallel: DataParallelTraining {
    /// The replica on this rank.
    public let model: any Layer
    /// The optimizer whose flat gradient buffer is summed.
    public let optimizer: Optimizer
    /// The processes, on a communicator of this object's own; its ``ProcessGroup/timeout``
    /// is the given group's when this object was made, and may be changed here.
    public let group: ProcessGroup
    /// This process's number among ``size``; rank 0's state is the one every rank starts from.
    public var rank: Int { group.rank }
    /// The number of processes training together.
    public var size: Int { group.size }
    /// Bytes after which a gradient bucket is closed (each holds whole parameters).
    public let bucketCapacity: Int
    /// How the last synchronization went, for benchmarks and tuning.
    public private(set) var lastTimings: ReductionTimings?

    private let buckets: GradientBuckets
    /// The model's dropout layers, whose generators are per rank within a step.
    private let dropouts: [Dropout]
    private var hooks: [HookHandle] = []
    /// The first error a gradient hook met; thrown by the next synchronization.
    private var hookError: Error?

    /// Joins `model` and `optimizer` to data-parallel training on `group`
    /// (every rank must call this, in the same order as other collective calls),
    /// and gives every rank rank 0's parameters, buffers and optimizer state.
    /// - Parameters:
    ///   - group: the processes (default: every process of the job, ``ProcessGroup/world()``).
    ///   - bucketCapacity: bytes of gradients after which a bucket is closed and can be
    ///     summed on its own; smaller buckets start earlier, larger ones send fewer messages.
    /// - Throws: ``DistributedError`` when the ranks' optimizers do not hold the same
    ///   parameter shapes, or MPI fails; ``CheckpointError`` or ``OptimizerStateError``
    ///   when rank 0's state does not load.
    /// - Precondition: `bucketCapacity` > 0.
    public init(model: any Layer, optimizer: Optimizer, group: ProcessGroup? = nil, bucketCapacity: Int = 1 << 20) throws {
        precondition(bucketCapacity > 0, "DataParallel: bucketCapacity must be positive, got \(bucketCapacity)")
        self.model = model
        self.optimizer = optimizer
        self.group = try (group ?? ProcessGroup.world()).duplicate()
        self.bucketCapacity = bucketCapacity
        try Self.checkSameLayout(optimizer, group: self.group)
        optimizer.ensureBound()
        buckets = GradientBuckets(optimizer: optimizer, group: self.group, capacity: bucketCapacity)
        dropouts = Self.dropoutLayers(in: model)
        // Tags name buckets; MPI guarantees tags up to 32767.
        guard buckets.buckets.count <= 32767 else {
            throw DistributedError.unsupported(
                "\(buckets.buckets.count) gradient buckets are more than MPI's tags can name; raise bucketCapacity")
        }
        try agree(on: Checkpoint(model: model.stateDictionary(), optimizer: optimizer.exportState())) { checkpoint, source in
            try checkpoint.load(into: model, file: source)
            if let state = checkpoint.optimizer { try optimizer.restoreState(state) }
        }
        for (index, parameter) in optimizer.parameters.enumerated() {
            hooks.append(
                parameter.registerGradientAccumulatedHook { [weak self] _ in
                    guard let self, self.hookError == nil else { return }
                    do { try self.buckets.parameterReady(index) } catch { self.hookError = error }
                })
        }
    }

    deinit {
        for hook in hooks { hook.remove() }
    }

    /// Throws unless every rank's optimizer holds the same number of parameters with the same shapes.
    private static func checkSameLayout(_ optimizer: Optimizer, group: ProcessGroup) throws {
        var shapes: UInt64 = 14_695_981_039_346_656_037  // FNV-1a over the shapes
        for p in optimizer.parameters {
            for dimension in p.shape + [-1] {
                shapes = (shapes ^ UInt64(bitPattern: Int64(dimension))) &* 1_099_511_628_211
            }
        }
        let mine = [Double(optimizer.parameters.count), Double(optimizer.layout.total), Double(shapes >> 12)]
        let all = try group.allGather(mine, what: "the parameter shapes")
        if let other = all.firstIndex(where: { $0 != mine }) {
            throw DistributedError.mismatch(
                "rank \(group.rank)'s optimizer has \(optimizer.parameters.count) parameters (\(optimizer.layout.total) scalars), "
                    + "rank \(other)'s has \(Int(all[other][0])) (\(Int(all[other][1])) scalars)\(all[other][0] == mine[0] ? " of other shapes" : "")")
        }
    }

    /// Broadcasts rank 0's `checkpoint` and has every other rank `load` it.
    private func agree(on checkpoint: @autoclosure () -> Checkpoint, load: (Checkpoint, String) throws -> Void) throws {
        var bytes = rank == 0 ? checkpoint().encoded() : []
        let source = "rank 0's state"
        try group.broadcast(&bytes, what: source)
        if rank != 0 { try load(try Checkpoint(decoding: bytes, source: source), source) }
    }

    /// Gives every rank rank 0's whole trainer state: model, optimizer,
    /// counters, early stopping and generators (``Trainer/checkpoint(configuration:)``).
    /// - Throws: ``TrainingError/invalidOption(_:)`` when the trainer's optimizer is not
    ///   this object's; ``DistributedError``, ``CheckpointError``, ``OptimizerStateError``.
    public func synchronize(_ trainer: Trainer) throws {
        guard trainer.optimizer === optimizer else {
            throw TrainingError.invalidOption("the trainer's dataParallel sums the gradients of another optimizer than the trainer's")
        }
        try agree(on: trainer.checkpoint()) { checkpoint, source in try trainer.restore(checkpoint, file: source) }
    }

    /// This rank's examples of `batch`, which every rank is given whole: rank `r`
    /// of `p` takes `⌊N/p⌋` examples, one more when `r < N mod p`, in rank order.
    /// Remembers the share to weight this rank's gradients by in the next
    /// ``synchronizeGradients(summing:)``. Nil when the batch has fewer examples
    /// than ranks and this rank gets none (it then contributes zeros).
    public func shard(_ batch: Batch) -> Batch? {
        let total = batch.count, p = size
        let count = total / p + (rank < total % p ? 1 : 0)
        let start = rank * (total / p) + Swift.min(rank, total % p)
        buckets.localWeight = Float(count * p) / Float(total)
        if rank != 0 {
            for dropout in dropouts {
                var hash: UInt64 = 14_695_981_039_346_656_037
                for word in dropout.generatorState + [UInt64(rank)] { hash = (hash ^ word) &* 1_099_511_628_211 }
                dropout.generatorState = SeededGenerator(seed: hash).stateWords
            }
        }
        return count == 0 ? nil : batch.examples(start..<(start + count))
    }

    /// Waits until the gradients of the optimizer's parameters are the mean
    /// over the global batch on every rank, then copies rank 0's buffers and
    /// dropout generator states to the other ranks.
    /// - Parameter statistics: values to sum over the ranks (a loss times its
    ///   shard's size, a count of correct predictions); every rank passes as many.
    /// - Returns: `statistics` summed over the ranks in rank order.
    /// - Throws: ``DistributedError`` when another rank does not answer within
    ///   the group's ``ProcessGroup/timeout`` or MPI fails.
    @discardableResult
    public func synchronizeGradients(summing statistics: [Double] = []) throws -> [Double] {
        let clock = ContinuousClock()
        let backwardEnded = clock.now
        if let error = hookError {
            hookError = nil
            throw error
        }
        try buckets.finish()
        let summed = clock.now
        // Which parameters have a gradient on some rank travels with the statistics.
        let flags = optimizer.parameters.map { $0.hasGradient ? 1.0 : 0.0 }
        var totals = [Double](repeating: 0, count: statistics.count + flags.count)
        for values in try group.allGather(statistics + flags, what: "the step's statistics") {
            for i in totals.indices { totals[i] += values[i] }
        }
        for (i, p) in optimizer.parameters.enumerated() { p.hasGradient = totals[statistics.count + i] > 0 }
        try broadcastReplicaState()
        let firstStart = buckets.firstStart ?? backwardEnded
        lastTimings = ReductionTimings(
            duringBackward: buckets.hookTime, afterBackward: backwardEnded.duration(to: summed),
            bookkeeping: summed.duration(to: clock.now), span: firstStart.duration(to: summed),
            overlappedSpan: firstStart < backwardEnded ? firstStart.duration(to: backwardEnded) : .zero)
        buckets.reset()
        return Array(totals.prefix(statistics.count))
    }

    /// Copies rank 0's buffers (running statistics) and dropout generator states to every rank.
    private func broadcastReplicaState() throws {
        let buffers = model.buffers
        guard size > 1 else { return }
        if !buffers.isEmpty {
            var values = buffers.flatMap(\.value.scalars)
            try values.withUnsafeMutableBytes { try group.broadcast($0, from: 0, what: "rank 0's buffers") }
            if rank != 0 {
                var offset = 0
                for buffer in buffers {
                    let count = buffer.value.scalarCount
                    buffer.value = Tensor(shape: buffer.value.shape, scalars: Array(values[offset..<(offset + count)]))
                    offset += count
                }
            }
        }
        if !dropouts.isEmpty {
            var words = dropouts.flatMap(\.generatorState)
            try words.withUnsafeMutableBytes { try group.broadcast($0, from: 0, what: "rank 0's dropout generators") }
            if rank != 0 {
                var offset = 0
                for dropout in dropouts {
                    let count = dropout.generatorState.count
                    dropout.generatorState = Array(words[offset..<(offset + count)])
                    offset += count
                }
            }
        }
    }

    /// The dropout layers inside `layer`, depth first.
    private static func dropoutLayers(in layer: any Layer) -> [Dropout] {
        (layer as? Dropout).map { [$0] } ?? layer.children.flatMap { dropoutLayers(in: $0) }
    }
}

/// Where the time of one gradient synchronization went (``DataParallel/lastTimings``).
public struct ReductionTimings: Sendable, Equatable {
    /// Communication inside backward's gradient hooks: starting buckets,
    /// summing received chunks, polling. Backward is that much longer.
    public var duringBackward: Duration
    /// From the end of backward (the call of ``DataParallel/synchronizeGradients(summing:)``)
    /// until every bucket was summed: the reduction's exposed part.
    public var afterBackward: Duration
    /// Exchanging the statistics and gradient flags and broadcasting buffers.
    public var bookkeeping: Duration
    /// From the first bucket's start until the last bucket was summed.
    public var span: Duration
    /// The part of ``span`` before backward ended.
    public var overlappedSpan: Duration

    /// The fraction of the reduction's span that ran while backward was still running.
    public var overlap: Double {
        let total = span.seconds
        return total > 0 ? overlappedSpan.seconds / total : 0
    }

    /// The time the reduction added to a step: its work inside backward, the exposed wait and the bookkeeping.
    public var cost: Duration { duringBackward + afterBackward + bookkeeping }
}

extension Batch {
    /// Examples `range` of the batch.
    func examples(_ range: Range<Int>) -> Batch {
        Batch(features: features.rows(range), labels: labels.map { Array($0[range]) }, targets: targets?.rows(range))
    }

    private init(features: Tensor, labels: [Int]?, targets: Tensor?) {
        self.features = features
        self.labels = labels
        self.targets = targets
    }
}
#endif
