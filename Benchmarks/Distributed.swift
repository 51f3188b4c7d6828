// gradkit-bench --distributed — data-parallel steps under mpirun. SPDX-License-Identifier: MIT
//
//   swift build -c release --traits MPI --build-path .build-mpi --product gradkit-bench
//   mpirun -np 2 --mca btl self,vader .build-mpi/release/gradkit-bench --distributed --threads 1
//
// Times the training step of the wide MLP (1024x4-10, batch 256: stepWorkloads)
// data-parallel on every rank of the job, each with its shard of the same
// global batch, then, while the other ranks wait idle, the same step in one
// process on the whole batch: the speed-up is the ratio. Also reports the
// all-reduce's share of a step and how much of it ran while backward was
// still running (DataParallel.lastTimings).
#if canImport(Glibc)
import Glibc
#endif
import GradKit

#if MPI
/// Runs the data-parallel step benchmark on `workload`; rank 0 prints.
func distributedSteps(_ workload: (name: String, sizes: [Int], batch: Int, memorySteps: Int), steps: Int) throws {
    let world = try ProcessGroup.world()
    func report(_ line: String) {
        if world.rank == 0 { print(line) }
    }
    func makeModel() -> (Sequential, Adam) {
        manualSeed(1)
        var layers: [any Layer] = []
        for i in 0..<(workload.sizes.count - 1) {
            layers.append(Linear(inputSize: workload.sizes[i], outputSize: workload.sizes[i + 1]))
            if i < workload.sizes.count - 2 { layers.append(ReLU()) }
        }
        let model = Sequential(layers)
        return (model, Adam(model.parameters, learningRate: 1e-3))
    }
    var generator = SeededGenerator(seed: 2)
    let x = Tensor(randomNormal: [workload.batch, workload.sizes[0]], using: &generator)
    let labels = (0..<workload.batch).map { _ in Int.random(in: 0..<10, using: &generator) }
    var unshuffled: SeededGenerator? = nil
    let batch = try Dataset(features: x, labels: labels, classCount: 10).batches(size: workload.batch, shuffledBy: &unshuffled)[0]

    let parameterCount = workload.sizes.indices.dropLast().reduce(0) { $0 + workload.sizes[$1] * workload.sizes[$1 + 1] + workload.sizes[$1 + 1] }
    report("gradkit-bench --distributed — \(Kernels.summary)")
    report("\(workload.name): \(parameterCount) parameters (\(format3(Double(parameterCount * 4) / 1_048_576)) MiB of gradients), "
        + "\(world.size) ranks (\(world.localSize) on this machine), \(steps) steps after 3 warm-up steps")

    // Data-parallel: every rank its shard.
    let (model, optimizer) = makeModel()
    let parallel = try DataParallel(model: model, optimizer: optimizer, group: world)
    let shard = parallel.shard(batch)!
    var stepTimes: [Double] = [], costs: [Double] = [], exposed: [Double] = [], overlaps: [Double] = [], inBackward: [Double] = []
    for index in 0..<(steps + 3) {
        var timings: ReductionTimings?
        let seconds = try secondsThrowing {
            optimizer.zeroGradients()
            _ = parallel.shard(batch)
            softmaxCrossEntropy(logits: model(shard.features), labels: shard.labels!).backward()
            try parallel.synchronizeGradients()
            optimizer.step(clippingGradientNorm: 1)
            timings = parallel.lastTimings
        }
        guard index >= 3, let timings else { continue }
        stepTimes.append(seconds)
        costs.append(timings.cost.seconds)
        exposed.append((timings.afterBackward + timings.bookkeeping).seconds)
        inBackward.append(timings.duringBackward.seconds)
        overlaps.append(timings.overlap)
    }
    // Every rank's median step: the job is as slow as its slowest rank.
    let perRank = try world.allGather([median(stepTimes)]).map { $0[0] }
    let parallelStep = perRank.max()!
    report("  data-parallel step   median \(formatSeconds(parallelStep)) (slowest rank; ranks \(perRank.map(formatSeconds).joined(separator: ", ")))")
    report("  all-reduce           \(formatSeconds(median(costs))) a step = \(percent(median(costs) / median(stepTimes))) of it: "
        + "\(formatSeconds(median(inBackward))) inside backward's hooks, \(formatSeconds(median(exposed))) waited after backward")
    report("  overlap              \(percent(median(overlaps))) of the all-reduce's span ran while backward was running")

    // One process on the whole batch, the other ranks idle at the barrier.
    var alone: [Double] = []
    if world.rank == 0 {
        let (model, optimizer) = makeModel()
        for index in 0..<(steps + 3) {
            let seconds = try secondsThrowing {
                optimizer.zeroGradients()
                softmaxCrossEntropy(logits: model(batch.features), labels: batch.labels!).backward()
                optimizer.step(clippingGradientNorm: 1)
            }
            if index >= 3 { alone.append(seconds) }
        }
    }
    try world.barrier()
    if world.rank == 0 {
        let single = median(alone)
        report("  one process          median \(formatSeconds(single)) on the whole batch of \(workload.batch)")
        report("  speed-up             \(format3(single / parallelStep))x on \(world.size) ranks")
    }
}

/// The median of `values`.
func median(_ values: [Double]) -> Double {
    let sorted = values.sorted()
    return sorted.isEmpty ? .nan : sorted[sorted.count / 2]
}

/// A fraction as a whole percentage.
func percent(_ fraction: Double) -> String { "\(Int((fraction * 100).rounded()))%" }

/// The wall-clock seconds one call of `body` takes.
func secondsThrowing(_ body: () throws -> Void) throws -> Double {
    let clock = ContinuousClock()
    let start = clock.now
    try body()
    return start.duration(to: clock.now).seconds
}

extension Duration {
    var seconds: Double { Double(components.seconds) + Double(components.attoseconds) * 1e-18 }
}
#endif

/// `--distributed`: the data-parallel benchmark (needs the MPI trait and mpirun).
func runDistributedBenchmark(steps: Int) -> Never {
    #if MPI
    do {
        let workload = stepWorkloads.first { $0.name.hasPrefix("wide MLP") }!
        try distributedSteps(workload, steps: steps)
        exit(0)
    } catch {
        print("gradkit-bench: \(error)")
        (try? ProcessGroup.world())?.abort(exitCode: 1)
        exit(1)
    }
    #else
    print("gradkit-bench: --distributed needs a build with the MPI trait (swift build -c release --traits MPI), run under mpirun")
    exit(2)
    #endif
}
