// The Trainer's data-parallel path, driven by in-process stand-ins for DataParallel
// (which needs Open MPI: gradkit-mpi-check runs it under mpirun), and the in-memory
// checkpoints the ranks exchange.
import Testing
#if canImport(Glibc)
import Glibc
#endif

@testable import GradKit

/// One process posing as rank `rank` of `size`: every shard is the whole
/// batch and the statistics come back as they went, so a trainer using it
/// must train exactly as one without.
private final class StandIn: DataParallelTraining {
    let rank: Int
    let size: Int
    let optimizer: Optimizer
    var synchronizations = 0
    var steps = 0

    init(rank: Int = 0, size: Int = 1, optimizer: Optimizer) {
        self.rank = rank
        self.size = size
        self.optimizer = optimizer
    }

    func synchronize(_ trainer: Trainer) throws { synchronizations += 1 }
    func shard(_ batch: Batch) -> Batch? { batch }
    func synchronizeGradients(summing statistics: [Double]) throws -> [Double] {
        steps += 1
        return statistics
    }
}

private final class StepCounter: TrainingCallback {
    var steps = 0
    func stepDidEnd(_ trainer: Trainer, _ record: StepRecord) throws { steps += 1 }
}

@Suite("Data-parallel training path")
struct DataParallelTrainingTests {
    private func makeTrainer(batchNorm: Bool = false, batchSize: Int = 32, logPath: String? = nil) -> Trainer {
        let model = withManualSeed(4) { MLP(sizes: [64, 24, 10], batchNorm: batchNorm) }
        return Trainer(
            model: model, optimizer: Adam(model.parameters, learningRate: 3e-3), loss: .softmaxCrossEntropy,
            options: TrainingOptions(epochs: 2, batchSize: batchSize, seed: 9, progress: .silent, logPath: logPath))
    }

    @Test("a trainer with a one-process stand-in trains bit for bit as one without")
    func sameAsAlone() throws {
        let parts = try Dataset.digits().split([0.8, 0.2], seed: 2, stratified: true)
        let plain = makeTrainer()
        let expected = try plain.fit(parts[0], validation: parts[1])
        let parallel = makeTrainer()
        let standIn = StandIn(optimizer: parallel.optimizer)
        parallel.dataParallel = standIn
        let history = try parallel.fit(parts[0], validation: parts[1])
        #expect(standIn.synchronizations == 1)
        #expect(standIn.steps == expected.steps.count)
        #expect(history.steps == expected.steps)
        #expect(history.epochs.map(\.loss) == expected.epochs.map(\.loss))
        #expect(history.epochs.map(\.accuracy) == expected.epochs.map(\.accuracy))
        #expect(history.epochs.map(\.validationAccuracy) == expected.epochs.map(\.validationAccuracy))
        let state = parallel.model.stateDictionary(), reference = plain.model.stateDictionary()
        #expect(state.keys.sorted() == reference.keys.sorted())
        for (name, tensor) in reference { #expect(state[name]?.scalars == tensor.scalars, "\(name)") }
    }

    @Test("ranks other than 0 run no callbacks and write no log")
    func onlyRankZeroWrites() throws {
        let directory = try temporaryDirectory()
        defer { rmdir(directory) }
        let data = try Dataset.digits().split([0.2, 0.8], seed: 2)[0]
        for rank in [0, 1] {
            let path = "\(directory)/rank\(rank).jsonl"
            let trainer = makeTrainer(logPath: path)
            let counter = StepCounter()
            trainer.callbacks = [counter]
            trainer.dataParallel = StandIn(rank: rank, size: 2, optimizer: trainer.optimizer)
            let history = try trainer.fit(data)
            #expect(counter.steps == (rank == 0 ? history.steps.count : 0))
            #expect((access(path, F_OK) == 0) == (rank == 0), "rank \(rank)'s log")
            unlink(path)
        }
    }

    @Test("BatchNorm shards of one example are refused before training")
    func batchNormShardsOfOne() throws {
        let data = try Dataset.digits().split([0.2, 0.8], seed: 2)[0]
        let trainer = makeTrainer(batchNorm: true, batchSize: 32)
        trainer.dataParallel = StandIn(size: 17, optimizer: trainer.optimizer)
        #expect(throws: TrainingError.self) { try trainer.fit(data) }
        trainer.dataParallel = StandIn(size: 8, optimizer: trainer.optimizer)
        // 359 examples: batches of 32 and a last one of 7, shared by 8 ranks.
        #expect(throws: TrainingError.self) { try trainer.fit(data) }
        trainer.options.dropsLastBatch = true
        try trainer.fit(data)
    }

    @Test("a checkpoint's bytes decode to what its file reads as")
    func checkpointBytes() throws {
        let trainer = makeTrainer()
        try trainer.fit(try Dataset.digits().split([0.2, 0.8], seed: 2)[0])
        let checkpoint = trainer.checkpoint(configuration: ["note": "bytes"])
        let directory = try temporaryDirectory()
        defer { rmdir(directory) }
        let path = "\(directory)/checkpoint.safetensors"
        try checkpoint.write(to: path)
        defer { unlink(path) }
        let fromFile = try Checkpoint.read(from: path)
        let fromBytes = try Checkpoint(decoding: checkpoint.encoded(), source: "bytes")
        #expect(fromBytes.optimizer == fromFile.optimizer)
        #expect(fromBytes.step == fromFile.step && fromBytes.epoch == fromFile.epoch)
        #expect(fromBytes.configuration == fromFile.configuration && fromBytes.randomState == fromFile.randomState)
        #expect(fromBytes.model.mapValues(\.scalars) == fromFile.model.mapValues(\.scalars))
        #expect(throws: CheckpointError.self) { try Checkpoint(decoding: Array(checkpoint.encoded().prefix(20)), source: "bytes") }
    }
}
