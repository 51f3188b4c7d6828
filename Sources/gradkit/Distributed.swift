// gradkit train --distributed — data-parallel training under mpirun. SPDX-License-Identifier: MIT
#if canImport(Glibc)
import Glibc
#endif
import GradKit

/// The processes of a `--distributed` run, once joined (for ``abortDistributedRun(_:status:)``).
#if MPI
nonisolated(unsafe) private var joinedWorld: ProcessGroup?
#endif

/// The MPI side of `gradkit train --distributed`: `mpirun -np N gradkit train
/// --distributed ...` starts N copies of the command, each loads the same data
/// and builds the same model, and the trainer trains them data-parallel
/// (``DataParallel``) on shards of the same global batches.
struct DistributedRun {
    #if MPI
    let world: ProcessGroup
    #endif

    /// Joins the MPI job. Ranks other than 0 print nothing and write no files
    /// (checkpoint, log, report, TensorBoard), and leave `--resume` to rank 0, whose state the trainer
    /// broadcasts when it starts. Without `--threads`, each rank takes an equal
    /// share of this machine's cores.
    /// - Throws: ``UsageError`` in a build without the MPI trait; ``DistributedError``.
    init(joining configuration: inout TrainConfiguration) throws {
        #if MPI
        world = try ProcessGroup.world()
        joinedWorld = world
        if configuration.outputs.threads == nil {
            configuration.outputs.threads = Swift.max(1, Int(sysconf(Int32(_SC_NPROCESSORS_ONLN))) / world.localSize)
        }
        if world.rank != 0 {
            configuration.outputs.quiet = true
            configuration.outputs.json = false
            configuration.outputs.checkpoint = nil
            configuration.outputs.log = nil
            configuration.outputs.report = nil
            configuration.outputs.tensorboard = nil
            configuration.outputs.resume = nil
        }
        #else
        throw UsageError("--distributed needs gradkit built with the MPI trait (swift build --traits MPI), started by mpirun")
        #endif
    }

    /// Makes `trainer` train data-parallel across the job's processes.
    func attach(to trainer: Trainer) throws {
        #if MPI
        trainer.dataParallel = try DataParallel(model: trainer.model, optimizer: trainer.optimizer, group: world)
        #endif
    }
}

/// In a `--distributed` run: prints `message` with this process's rank and ends
/// every process of the job at once (`MPI_Abort`), so that no rank waits for
/// one that failed. Returns when no MPI job was joined.
func abortDistributedRun(_ message: String, status: Int32) {
    #if MPI
    guard let world = joinedWorld else { return }
    let line = "gradkit: rank \(world.rank): \(message)\n"
    _ = line.withCString { write(2, $0, strlen($0)) }
    world.abort(exitCode: status)
    #endif
}
