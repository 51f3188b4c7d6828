// gradkit-mpi-check — data-parallel training checked against one process. SPDX-License-Identifier: MIT
//
//   swift build --traits MPI --build-path .build-mpi --product gradkit-mpi-check
//   mpirun -np 2 .build-mpi/debug/gradkit-mpi-check        (and -np 3: uneven shards)
//   mpirun -np 2 .build-mpi/debug/gradkit-mpi-check --fail throw|exit|hang [--rank R] [--timeout S]
//   .build-mpi/debug/gradkit-mpi-check --compare A.safetensors B.safetensors [--tolerance T]
//
// Every rank runs every check. Each check trains data-parallel and compares
// the result with a reference this process computes alone, on the whole of
// the same global batches, so a wrong sum, a wrong average or a wrong shard
// weight shows as a difference. Rank 0 prints one line per check; the exit
// status is 1 when any rank found a failure. The last line,
// "fingerprint: ...", lets a caller compare two launches bit for bit.
//
// --fail makes rank R (default: the last) fail at step 3 of a training loop:
// `throw` ends it with an error (the program aborts the job, as gradkit's CLI
// does), `exit` leaves the process without a word to the others, `hang`
// stops it answering; the other ranks must end the job within 30 s.
//
// --compare checks that two checkpoints' tensors agree within 1e-5 relative
// (gradkit train alone and under mpirun --distributed, say), or T (0: bit for bit).
#if canImport(Glibc)
import Glibc
#endif
import GradKit

/// Writes `line` to standard error.
func printError(_ line: String) {
    _ = line.withCString { write(2, $0, strlen($0)) }
}

#if MPI
let world: ProcessGroup = {
    do {
        return try ProcessGroup.world()
    } catch {
        printError("gradkit-mpi-check: \(error)\n")
        exit(1)
    }
}()

/// Prints on rank 0 only.
func report(_ line: String) {
    if world.rank == 0 {
        print(line)
        fflush(nil)
    }
}

struct CheckFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

let features = 20, classes = 5

/// The model every check trains: Linear, [BatchNorm], ReLU, Linear, Tanh,
/// Linear, initialized from one seed, with the first bias frozen (it has a
/// gradient on no rank and must not move).
func makeModel(batchNorm: Bool = false, seed: UInt64 = 7) -> Sequential {
    manualSeed(seed)
    var layers: [any Layer] = [Linear(inputSize: features, outputSize: 32)]
    if batchNorm { layers.append(BatchNorm(featureCount: 32)) }
    layers += [ReLU(), Linear(inputSize: 32, outputSize: 32), Tanh(), Linear(inputSize: 32, outputSize: classes)]
    let model = Sequential(layers)
    model.parameters[1].requiresGradient = false
    return model
}

/// Global batch `step`: random features and labels, the same on every rank.
/// Sizes cycle through 32, 29, 32 and 1, so shards are uneven with 2 and 3
/// ranks, and the batch of 1 leaves ranks without examples (they contribute
/// zeros, and must still step); BatchNorm, which needs two examples per
/// shard, gets 32 and 29 only.
func globalBatch(_ step: Int, batchNorm: Bool = false) -> Batch {
    let size = batchNorm ? [32, 29][step % 2] : [32, 29, 32, 1][step % 4]
    var generator = SeededGenerator(seed: 1000 + UInt64(step))
    let x = Tensor(randomNormal: [size, features], using: &generator)
    let labels = (0..<size).map { _ in Int.random(in: 0..<classes, using: &generator) }
    var unshuffled: SeededGenerator? = nil
    return try! Dataset(features: x, labels: labels, classCount: classes).batches(size: size, shuffledBy: &unshuffled)[0]
}

/// The largest elementwise difference of two tensors relative to the reference's largest magnitude.
func relativeDifference(_ value: Tensor, _ reference: Tensor) -> Float {
    precondition(value.shape == reference.shape, "relativeDifference: shapes \(value.shape) and \(reference.shape)")
    let scale = reference.scalars.map { Swift.abs($0) }.max() ?? 0
    let difference = zip(value.scalars, reference.scalars).map { Swift.abs($0 - $1) }.max() ?? 0
    return scale > 0 ? difference / scale : difference
}

/// The worst relative difference over every entry of two state dictionaries (equal key sets required).
func relativeDifference(_ state: [String: Tensor], _ reference: [String: Tensor]) throws -> (Float, String) {
    guard Set(state.keys) == Set(reference.keys) else { throw CheckFailure("tensors \(state.keys.sorted()) vs \(reference.keys.sorted())") }
    var worst: (Float, String) = (0, "")
    for name in reference.keys.sorted() {
        let difference = relativeDifference(state[name]!, reference[name]!)
        if difference > worst.0 || worst.1.isEmpty { worst = (difference, name) }
    }
    return worst
}

/// FNV-1a over the bit patterns of a state dictionary's tensors, in name order.
func fingerprint(_ state: [String: Tensor]) -> UInt64 {
    var hash: UInt64 = 14_695_981_039_346_656_037
    for name in state.keys.sorted() {
        for value in state[name]!.scalars { hash = (hash ^ UInt64(value.bitPattern)) &* 1_099_511_628_211 }
    }
    return hash
}

/// Throws unless every rank holds the same `hash`.
func requireSameOnEveryRank(_ hash: UInt64, _ what: String) throws {
    let all = try world.allGather([Double(hash >> 32), Double(hash & 0xFFFF_FFFF)])
    if let other = all.firstIndex(where: { $0 != all[0] }) {
        throw CheckFailure("\(what) differ between rank 0 and rank \(other)")
    }
}

/// Trains `steps` steps with the optimizer `makeOptimizer` builds, data-parallel
/// when `parallel` (with small buckets, so that several are in flight), else alone
/// on the whole batches; returns the model's state.
func train(
    steps: Int, parallel: Bool, batchNorm: Bool = false, makeOptimizer: ([Parameter]) -> Optimizer,
    failAt: (step: Int, rank: Int, mode: String)? = nil
) throws -> [String: Tensor] {
    let model = makeModel(batchNorm: batchNorm, seed: parallel ? 7 &+ UInt64(world.rank) : 7)  // other ranks must take rank 0's weights
    let optimizer = makeOptimizer(model.parameters)
    let data = parallel ? try DataParallel(model: model, optimizer: optimizer, group: world, bucketCapacity: 2048) : nil
    for step in 0..<steps {
        if let failAt, step == failAt.step, world.rank == failAt.rank { try fail(failAt.mode) }
        let batch = globalBatch(step, batchNorm: batchNorm)
        let part = data.map { $0.shard(batch) } ?? batch
        if let part { softmaxCrossEntropy(logits: model(part.features), labels: part.labels!).backward() }
        try data?.synchronizeGradients()
        optimizer.step()
        optimizer.zeroGradients()
    }
    return model.stateDictionary()
}

/// The reference for BatchNorm with per-rank statistics: one process runs
/// each rank's shard on its own (normalized with that shard's statistics,
/// starting from rank 0's running statistics), weights each shard's mean
/// loss by its share of the batch, and keeps rank 0's running statistics.
func trainSimulatingRanks(steps: Int, makeOptimizer: ([Parameter]) -> Optimizer) -> [String: Tensor] {
    let model = makeModel(batchNorm: true)
    let optimizer = makeOptimizer(model.parameters)
    let norm = model.layers.compactMap { $0 as? BatchNorm }[0]
    for step in 0..<steps {
        let batch = globalBatch(step, batchNorm: true), p = world.size, n = batch.count
        let start = norm.buffers.map(\.value)
        var rankZero = start
        for r in 0..<p {
            let count = n / p + (r < n % p ? 1 : 0), offset = r * (n / p) + Swift.min(r, n % p)
            guard count > 0 else { continue }
            for (buffer, value) in zip(norm.buffers, start) { buffer.value = value }
            let logits = model(batch.features.rows(offset..<(offset + count)))
            let loss = softmaxCrossEntropy(logits: logits, labels: Array(batch.labels![offset..<(offset + count)]))
            (loss * (Float(count) / Float(n))).backward()
            if r == 0 { rankZero = norm.buffers.map(\.value) }
        }
        for (buffer, value) in zip(norm.buffers, rankZero) { buffer.value = value }
        optimizer.step()
        optimizer.zeroGradients()
    }
    return model.stateDictionary()
}

/// Makes this rank fail as `--fail` asks.
func fail(_ mode: String) throws {
    printError("gradkit-mpi-check: rank \(world.rank) fails now (\(mode))\n")
    switch mode {
    case "throw": throw CheckFailure("rank \(world.rank) failed on purpose")
    case "exit": exit(3)
    default: while true { sleep(1) }  // hang
    }
}

func sgd(_ parameters: [Parameter]) -> Optimizer { SGD(parameters, learningRate: 0.05, momentum: 0.9) }
func adam(_ parameters: [Parameter]) -> Optimizer { Adam(parameters, learningRate: 1e-3) }

// ------------------------------------------------------------------ the checks

/// Relative agreement with one process after 100 steps (summation order differs, nothing else).
let tolerance: Float = 1e-5

func checkAgainstOneProcess(_ name: String, _ makeOptimizer: @escaping ([Parameter]) -> Optimizer) throws -> String {
    let parallel = try train(steps: 100, parallel: true, makeOptimizer: makeOptimizer)
    let alone = try train(steps: 100, parallel: false, makeOptimizer: makeOptimizer)
    try requireSameOnEveryRank(fingerprint(parallel), "parameters")
    let (difference, tensor) = try relativeDifference(parallel, alone)
    guard difference <= tolerance else { throw CheckFailure("'\(tensor)' differs from one process's by \(difference) (relative; limit \(tolerance))") }
    guard parallel["0.bias"]!.scalars == makeModel().stateDictionary()["0.bias"]!.scalars else { throw CheckFailure("the frozen bias moved") }
    return "100 steps, worst relative difference \(difference) in '\(tensor)'"
}

func checkDeterminism() throws -> String {
    let first = try train(steps: 100, parallel: true, makeOptimizer: adam)
    let second = try train(steps: 100, parallel: true, makeOptimizer: adam)
    guard fingerprint(first) == fingerprint(second) else { throw CheckFailure("two runs in one process differ") }
    runFingerprint = fingerprint(first)
    return "two runs of 100 steps bit-identical"
}
nonisolated(unsafe) var runFingerprint: UInt64 = 0

func checkBatchNorm() throws -> String {
    let parallel = try train(steps: 40, parallel: true, batchNorm: true, makeOptimizer: sgd)
    let simulated = trainSimulatingRanks(steps: 40, makeOptimizer: sgd)
    try requireSameOnEveryRank(fingerprint(parallel), "parameters and buffers")
    let (difference, tensor) = try relativeDifference(parallel, simulated)
    guard difference <= tolerance else { throw CheckFailure("'\(tensor)' differs from the per-rank simulation by \(difference)") }
    return "per-rank statistics, rank 0's buffers: worst relative difference \(difference) in '\(tensor)'"
}

/// Each rank draws its own dropout masks: on identical examples the ranks' outputs differ.
func checkDropoutStreams() throws -> String {
    manualSeed(11)
    let model = Sequential([Linear(inputSize: 8, outputSize: 64), Dropout(probability: 0.5)])
    let optimizer = SGD(model.parameters, learningRate: 0.1)
    let parallel = try DataParallel(model: model, optimizer: optimizer, group: world)
    let rows = 2 * world.size
    var unshuffled: SeededGenerator? = nil
    let batch = try Dataset(features: Tensor(ones: [rows, 8]), labels: Array(repeating: 0, count: rows), classCount: 64)
        .batches(size: rows, shuffledBy: &unshuffled)[0]
    var hashes: [UInt64] = []
    for _ in 0..<2 {
        let part = parallel.shard(batch)!
        let output = model(part.features)
        hashes.append(fingerprint(["output": output.detached()]))
        softmaxCrossEntropy(logits: output, labels: part.labels!).backward()
        try parallel.synchronizeGradients()
        optimizer.step()
        optimizer.zeroGradients()
    }
    let all = try world.allGather(hashes.map { Double($0 >> 12) })
    guard Set(all.map { $0[0] }).count == world.size, Set(all.map { $0[1] }).count == world.size else {
        throw CheckFailure("ranks drew the same dropout masks")
    }
    try requireSameOnEveryRank(fingerprint(model.stateDictionary()), "parameters")
    return "\(world.size) ranks, \(world.size) different masks in each of 2 steps"
}

/// Digits, a model, a trainer: the same on every rank.
func makeTrainer(seed: UInt64 = 3, epochs: Int = 2, dropout: Float = 0, parallel: Bool) throws -> (Trainer, Dataset, Dataset) {
    let parts = try Dataset.digits().split([0.8, 0.2], seed: 1, stratified: true)
    manualSeed(seed)
    let model = MLP(sizes: [64, 32, 10], batchNorm: dropout > 0, dropout: dropout)
    let optimizer = Adam(model.parameters, learningRate: 3e-3)
    let trainer = Trainer(
        model: model, optimizer: optimizer, loss: .softmaxCrossEntropy,
        options: TrainingOptions(epochs: epochs, batchSize: 32, seed: 5, progress: .silent))
    if parallel { trainer.dataParallel = try DataParallel(model: model, optimizer: optimizer, group: world) }
    return (trainer, parts[0], parts[1])
}

final class CountingCallback: TrainingCallback {
    var steps = 0
    func stepDidEnd(_ trainer: Trainer, _ record: StepRecord) throws { steps += 1 }
}

func checkTrainer() throws -> String {
    let (parallel, train, validation) = try makeTrainer(parallel: true)
    let counter = CountingCallback()
    parallel.callbacks = [counter]
    let history = try parallel.fit(train, validation: validation)
    let (alone, _, _) = try makeTrainer(parallel: false)
    let reference = try alone.fit(train, validation: validation)
    try requireSameOnEveryRank(fingerprint(parallel.model.stateDictionary()), "parameters")
    let (difference, tensor) = try relativeDifference(parallel.model.stateDictionary(), alone.model.stateDictionary())
    guard difference <= tolerance else { throw CheckFailure("'\(tensor)' differs from one process's by \(difference)") }
    for (a, b) in zip(history.epochs, reference.epochs) {
        guard Swift.abs(a.loss - b.loss) <= 1e-5 * Swift.abs(b.loss), a.accuracy == b.accuracy, a.validationAccuracy == b.validationAccuracy else {
            throw CheckFailure("epoch \(b.epoch): loss \(a.loss), accuracy \(a.accuracy ?? .nan) against \(b.loss), \(b.accuracy ?? .nan) alone")
        }
    }
    guard history.epochs.count == reference.epochs.count, history.steps.count == reference.steps.count else {
        throw CheckFailure("\(history.epochs.count) epochs of \(history.steps.count) steps against \(reference.epochs.count) of \(reference.steps.count)")
    }
    guard counter.steps == (world.rank == 0 ? history.steps.count : 0) else {
        throw CheckFailure("rank \(world.rank)'s callback saw \(counter.steps) steps (rank 0 alone runs callbacks)")
    }
    return "2 epochs on digits: validation accuracy \(history.epochs.last!.validationAccuracy!) as alone; worst relative difference \(difference)"
}

/// With BatchNorm and dropout, whose state is per rank within a step: the checkpoint must hold the job's.
func checkResume() throws -> String {
    let (whole, train, validation) = try makeTrainer(dropout: 0.2, parallel: true)
    try whole.fit(train, validation: validation)
    let path = "/tmp/gradkit-mpi-check-\(getppid()).safetensors"
    let (first, _, _) = try makeTrainer(epochs: 1, dropout: 0.2, parallel: true)
    try first.fit(train, validation: validation)
    if world.rank == 0 { try first.checkpoint().write(to: path) }
    try world.barrier()
    // Another seed, so only the restore can make the resumed run equal; rank 0 alone reads the file.
    let (resumed, _, _) = try makeTrainer(seed: 99, dropout: 0.2, parallel: true)
    if world.rank == 0 { try resumed.restore(Checkpoint.read(from: path), file: path) }
    try resumed.fit(train, validation: validation)
    try world.barrier()
    if world.rank == 0 { unlink(path) }
    guard resumed.completedEpochs == 2, fingerprint(resumed.model.stateDictionary()) == fingerprint(whole.model.stateDictionary()) else {
        throw CheckFailure("1 epoch, checkpoint, resume to 2 differs from 2 epochs in one run")
    }
    guard resumed.optimizer.exportState() == whole.optimizer.exportState() else { throw CheckFailure("optimizer state differs after resuming") }
    return "BatchNorm and dropout: 1 epoch + resume (rank 0 reads the checkpoint) bit-identical to 2 epochs"
}

// ------------------------------------------------------------------ main

Kernels.threadCount = 1

/// `--compare A B [--tolerance T]`: the checkpoints' tensors (model, optimizer,
/// best weights) agree within `limit` relative to each tensor's largest
/// magnitude (0: bit for bit).
func compareCheckpoints(_ first: String, _ second: String, limit: Float) throws -> String {
    func tensors(_ path: String) throws -> [String: Tensor] { try SafeTensors.read(path).tensors }
    let (difference, tensor) = try relativeDifference(try tensors(first), try tensors(second))
    guard difference <= limit else { throw CheckFailure("'\(tensor)' differs by \(difference) (relative; limit \(limit))") }
    return "\(first) and \(second) agree: worst relative difference \(difference) in '\(tensor)'"
}

var arguments = Array(CommandLine.arguments.dropFirst())
var failMode: String?
var failRank = world.size - 1
while let argument = arguments.first {
    arguments.removeFirst()
    switch (argument, arguments.first) {
    case ("--fail", let mode?) where ["throw", "exit", "hang"].contains(mode): failMode = mode
    case ("--rank", let rank?) where Int(rank).map({ (0..<world.size).contains($0) }) == true: failRank = Int(rank)!
    case ("--timeout", let seconds?) where Int(seconds).map({ $0 > 0 }) == true: world.timeout = .seconds(Int(seconds)!)
    case ("--compare", let first?) where arguments.count == 2 || (arguments.count == 4 && arguments[2] == "--tolerance" && Float(arguments[3]) != nil):
        do {
            let limit = arguments.count == 4 ? Float(arguments[3])! : tolerance
            report("ok   \(try compareCheckpoints(first, arguments[1], limit: limit))")
            exit(0)
        } catch {
            printError("FAIL \(error)\n")
            exit(1)
        }
    default:
        printError("usage: gradkit-mpi-check [--fail throw|exit|hang] [--rank R] [--timeout SECONDS] | --compare CHECKPOINT CHECKPOINT [--tolerance T]\n")
        exit(2)
    }
    arguments.removeFirst()
}

if let failMode {
    report("rank \(failRank) fails at step 3 (\(failMode)); \(world.size) ranks, timeout \(world.timeout)")
    do {
        _ = try train(steps: 1000, parallel: true, makeOptimizer: sgd, failAt: (3, failRank, failMode))
        report("FAIL: training ended normally")
        exit(1)
    } catch {
        printError("gradkit-mpi-check: rank \(world.rank): \(error)\n")
        world.abort(exitCode: 1)
    }
}

report("gradkit-mpi-check: \(world.size) ranks (\(world.localSize) on this machine); \(Kernels.summary)")
let checks: [(String, () throws -> String)] = [
    ("SGD with momentum against one process", { try checkAgainstOneProcess("sgd", sgd) }),
    ("Adam against one process", { try checkAgainstOneProcess("adam", adam) }),
    ("bit-identical runs", checkDeterminism),
    ("BatchNorm with per-rank statistics", checkBatchNorm),
    ("dropout streams per rank", checkDropoutStreams),
    ("Trainer against one process", checkTrainer),
    ("Trainer resumed from a checkpoint", checkResume),
]
var failures = 0
for (name, check) in checks {
    var outcome: String
    var failed = false
    do {
        outcome = try check()
    } catch let error as DistributedError {
        printError("gradkit-mpi-check: rank \(world.rank): \(name): \(error)\n")
        world.abort(exitCode: 1)
    } catch {
        outcome = "rank \(world.rank): \(error)"
        failed = true
    }
    // A check fails when it failed on any rank; rank 0 prints the first rank's reason.
    let verdicts = try world.allGather([failed ? 1 : 0])
    if let first = verdicts.firstIndex(where: { $0[0] != 0 }) {
        failures += 1
        if world.rank == first { printError("FAIL \(name): \(outcome)\n") }
        report("FAIL \(name) (rank \(first); see its message)")
    } else {
        report("ok   \(name): \(outcome)")
    }
}
report("fingerprint: \(String(runFingerprint, radix: 16))")
report(failures == 0 ? "all \(checks.count) checks passed" : "\(failures) of \(checks.count) checks failed")
exit(failures == 0 ? 0 : 1)
#else
printError("gradkit-mpi-check: built without the MPI trait; build with swift build --traits MPI\n")
exit(2)
#endif
