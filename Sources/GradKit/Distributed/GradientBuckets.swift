// GradKit — gradient buckets and their ring all-reduce. SPDX-License-Identifier: MIT
#if MPI
import CMPI

/// An optimizer's flat gradient buffer cut into buckets of whole parameters,
/// each summed over the ranks by a ring all-reduce that starts as soon as
/// backward has delivered the gradients of all of the bucket's parameters
/// (PyTorch DDP's reducer).
///
/// **Buckets.** Parameters are taken in reverse order, the order in which
/// backward finishes their gradients, and added to a bucket until it holds
/// at least `capacity` bytes; a bucket is one contiguous range of the flat
/// buffer (parameters are laid out in order there).
///
/// **Ring.** A bucket is cut into `p` chunks (one per rank, 16-float
/// aligned). In reduce-scatter stage `s` (0 ..< p-1), rank `r` sends chunk
/// `r - s` to rank `r + 1` and adds the chunk `r - s - 1` it receives from
/// `r - 1` into its own; after `p - 1` stages it holds the complete sum of
/// chunk `r + 1`, which it scales by `1/p`. In all-gather stage `t`, it
/// sends chunk `r + 1 - t` and receives chunk `r - t` in place (indices mod `p`).
///
/// **Determinism.** Chunk `c`'s sum is always formed as
/// `((g[c] + g[c+1]) + g[c+2]) + ...` (ranks mod `p`), whatever the timing:
/// the parameters are bit-identical from run to run at a fixed rank count.
///
/// Communication advances only inside MPI calls, so ``progress()`` runs at
/// every delivered gradient; ``finish()`` polls the rest with a deadline.
final class GradientBuckets {
    /// Where a bucket is in its all-reduce.
    enum Phase: Equatable {
        /// Waiting for `pending` more gradients.
        case filling
        /// Stage `stage` of `2(p-1)` is in flight.
        case running(stage: Int)
        case done
    }

    struct Bucket {
        /// Its parameters: indices into the optimizer's list.
        let parameters: ClosedRange<Int>
        /// Its elements of the flat buffer.
        let elements: Range<Int>
        /// The `p + 1` boundaries of its chunks in the flat buffer.
        let chunks: [Int]
        /// Where its reduce-scatter receives land in `scratch`.
        let scratchOffset: Int
        /// Gradients still to arrive before it starts.
        var pending = 0
        var phase = Phase.filling
        /// The stage's send and receive.
        var requests: [MPI_Request?] = [cmpi_request_null(), cmpi_request_null()]
    }

    let group: ProcessGroup
    private let optimizer: Optimizer
    private(set) var buckets: [Bucket] = []
    /// Per parameter: its bucket.
    private let bucketOfParameter: [Int]
    private let scratch: FlatBuffer
    /// The factor each rank's gradients are multiplied by before the sum (see ``DataParallel/shard(_:)``).
    var localWeight: Float = 1
    /// When the first bucket of the step started (nil before).
    private(set) var firstStart: ContinuousClock.Instant?
    /// Time spent communicating inside backward's hooks this step.
    private(set) var hookTime: Duration = .zero

    /// - Parameters:
    ///   - capacity: bytes after which a bucket is closed (at least one parameter each).
    init(optimizer: Optimizer, group: ProcessGroup, capacity: Int) {
        self.optimizer = optimizer
        self.group = group
        let layout = optimizer.layout, p = group.size
        var buckets: [Bucket] = [], owner = Array(repeating: 0, count: optimizer.parameters.count)
        var scratchSize = 0
        var high = optimizer.parameters.count - 1
        while high >= 0 {
            var low = high, bytes = layout.counts[high] * 4
            while bytes < capacity, low > 0 {
                low -= 1
                bytes += layout.counts[low] * 4
            }
            let elements = layout.offsets[low]..<(layout.offsets[high] + layout.counts[high])
            let chunks = (0...p).map { k in
                k == p ? elements.upperBound : elements.lowerBound + (elements.count * k / p) / 16 * 16
            }
            let largest = (0..<p).map { chunks[$0 + 1] - chunks[$0] }.max() ?? 0
            buckets.append(Bucket(parameters: low...high, elements: elements, chunks: chunks, scratchOffset: scratchSize))
            scratchSize += (largest + 15) / 16 * 16
            for i in low...high { owner[i] = buckets.count - 1 }
            high = low - 1
        }
        self.buckets = buckets
        self.bucketOfParameter = owner
        self.scratch = FlatBuffer(count: scratchSize)
        reset()
    }

    /// Gets ready for the next step: every bucket waits for the gradients of
    /// its parameters that require one.
    func reset() {
        for b in buckets.indices {
            buckets[b].pending = buckets[b].parameters.filter { optimizer.parameters[$0].requiresGradient }.count
            buckets[b].phase = .filling
        }
        localWeight = 1
        firstStart = nil
        hookTime = .zero
    }

    /// Backward delivered parameter `index`'s gradient: starts its bucket when complete, and moves the others along.
    func parameterReady(_ index: Int) throws {
        let clock = ContinuousClock()
        let started = clock.now
        defer { hookTime += started.duration(to: clock.now) }
        let b = bucketOfParameter[index]
        guard buckets[b].phase == .filling, buckets[b].pending > 0 else {
            fatalError(
                "DataParallel: '\(optimizer.parameters[index].name)' received a second gradient before synchronizeGradients(); "
                    + "one backward per step, or accumulate in the loss")
        }
        let offset = optimizer.layout.offsets[index]
        guard optimizer.parameters[index].gradientStorage?.base == optimizer.gradients.base + offset else {
            fatalError(
                "DataParallel: the gradient of '\(optimizer.parameters[index].name)' is no longer in its optimizer's buffer "
                    + "(was the parameter given to another optimizer?)")
        }
        buckets[b].pending -= 1
        if buckets[b].pending == 0 { try start(b) }
        _ = try progress()
    }

    /// Starts every bucket still waiting (its missing gradients count as zero) and
    /// polls until all are summed.
    /// - Throws: ``DistributedError`` when the other ranks do not answer within the group's timeout.
    func finish() throws {
        for b in buckets.indices where buckets[b].phase == .filling { try start(b) }
        var poll = Poll(timeout: group.timeout)
        while try !progress() {
            if poll.expired() {
                let stuck = buckets.indices.first { buckets[$0].phase != .done } ?? 0
                throw group.timedOut("summing gradient bucket \(stuck) of \(buckets.count)")
            }
        }
    }

    /// Moves every running bucket as far as its messages allow; true when all are done.
    func progress() throws -> Bool {
        var allDone = true
        for b in buckets.indices {
            while case .running(let stage) = buckets[b].phase, try group.test(&buckets[b].requests) {
                try complete(b, stage: stage)
            }
            if buckets[b].phase != .done { allDone = false }
        }
        return allDone
    }

    private func start(_ b: Int) throws {
        if firstStart == nil { firstStart = ContinuousClock.now }
        let layout = optimizer.layout, base = optimizer.gradients.base
        for i in buckets[b].parameters where !optimizer.parameters[i].hasGradient {
            (base + layout.offsets[i]).update(repeating: 0, count: layout.counts[i])
        }
        if localWeight != 1 { scale(buckets[b].elements, by: localWeight) }
        if group.size == 1 {
            buckets[b].phase = .done
            return
        }
        try post(b, stage: 0)
    }

    /// The chunks stage `stage` sends and receives, and whether the receive is added (reduce-scatter) or copied.
    private func chunks(at stage: Int) -> (send: Int, receive: Int, adds: Bool) {
        let p = group.size, r = group.rank
        if stage < p - 1 { return ((r - stage + p) % p, (r - stage - 1 + 2 * p) % p, true) }
        let t = stage - (p - 1)
        return ((r + 1 - t + p) % p, (r - t + p) % p, false)
    }

    private func post(_ b: Int, stage: Int) throws {
        let (send, receive, adds) = chunks(at: stage)
        let bucket = buckets[b], base = optimizer.gradients.base, p = group.size
        let receiveCount = bucket.chunks[receive + 1] - bucket.chunks[receive]
        let destination = adds ? scratch.base + bucket.scratchOffset : base + bucket.chunks[receive]
        let tag = Int32(b)
        buckets[b].requests[1] = try group.receive(destination, count: receiveCount, from: (group.rank - 1 + p) % p, tag: tag)
        buckets[b].requests[0] = try group.send(
            base + bucket.chunks[send], count: bucket.chunks[send + 1] - bucket.chunks[send], to: (group.rank + 1) % p, tag: tag)
        buckets[b].phase = .running(stage: stage)
    }

    /// Stage `stage` of bucket `b` has arrived: add it in (reduce-scatter), average the
    /// finished chunk after the last addition, and post the next stage.
    private func complete(_ b: Int, stage: Int) throws {
        let p = group.size
        let (_, receive, adds) = chunks(at: stage)
        let bucket = buckets[b]
        if adds {
            let start = bucket.chunks[receive], count = bucket.chunks[receive + 1] - start
            let own = optimizer.gradients.base + start, received = scratch.base + bucket.scratchOffset
            if stage == p - 2 {
                // The last addition completes the chunk's sum: average it in the same pass.
                let scale = 1 / Float(p)
                for i in 0..<count { own[i] = (own[i] + received[i]) * scale }
            } else {
                Kernels.axpy(count: count, output: own, alpha: 1, input: received)
            }
        }
        if stage + 1 == 2 * (p - 1) {
            buckets[b].phase = .done
        } else {
            try post(b, stage: stage + 1)
        }
    }

    /// Multiplies elements `range` of the flat gradient buffer by `factor`.
    private func scale(_ range: Range<Int>, by factor: Float) {
        let elements = UnsafeMutableBufferPointer(start: optimizer.gradients.base + range.lowerBound, count: range.count)
        for i in elements.indices { elements[i] *= factor }
    }
}
#endif
