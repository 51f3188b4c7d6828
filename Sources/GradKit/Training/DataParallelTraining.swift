// GradKit — what a Trainer asks of data-parallel training. SPDX-License-Identifier: MIT

/// Data-parallel training as a ``Trainer`` drives it through
/// ``Trainer/dataParallel``: several processes each hold a replica of the
/// model, take their shard of every global batch, and sum their gradients so
/// that all of them take the step one process would take on the whole batch.
///
/// GradKit's implementation is `DataParallel`, on Open MPI, in builds with
/// the `MPI` trait (`swift build --traits MPI`); see `docs/distributed.md`.
public protocol DataParallelTraining: AnyObject {
    /// This process's number, from 0 to ``size`` - 1. Rank 0 alone runs the
    /// trainer's callbacks, writes its log and prints progress.
    var rank: Int { get }
    /// The number of processes.
    var size: Int { get }
    /// The optimizer whose gradients are summed; it must be the trainer's.
    var optimizer: Optimizer { get }

    /// Makes every rank's trainer state rank 0's (model, optimizer, counters,
    /// early stopping, generators): called when ``Trainer/fit(_:validation:)`` starts,
    /// so that a run restored on one rank only, or on every rank, continues the same everywhere.
    func synchronize(_ trainer: Trainer) throws

    /// This rank's part of a global batch (every rank is given the same batch),
    /// or nil when the batch is too small to give it any example; the part's
    /// size weights this rank's gradients in the next synchronization.
    func shard(_ batch: Batch) -> Batch?

    /// Waits until every rank's gradients are summed into the gradient of the
    /// mean loss over the global batch, and returns `statistics` (the same
    /// number on every rank) summed over the ranks in rank order, so every
    /// rank gets the same totals.
    func synchronizeGradients(summing statistics: [Double]) throws -> [Double]
}
