// gradkit-bench --distributed — data-parallel steps under mpirun. SPDX-License-Identifier: MIT
//
//   swift build -c release --traits MPI --build-path .build-mpi --product gradkit-bench
//   mpirun -np 2 --mca btl self,vader .build-mpi/release/gradkit-bench --distributed --threads 1
//
// Times the training step of the wide MLP (1024x4-10, batch 256: stepWorkloads)
// data-parallel on every rank of the job, each with its shard of the same
// global batch, and, in alternating blocks of steps, the same step in one process
// on the whole batch while the other ranks wait idle: the speed-up is the ratio. Also
// reports the all-reduce's share of a step and how much of it ran while
// backward was still running (DataParallel.lastTimings).
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
    let block = 10, rounds = Swift.max(1, steps / (block - 2))
    report("gradkit-bench --distributed — \(Kernels.summary)")
    report("\(workload.name): \(parameterCount) parameters (\(format3(Double(parameterCount * 4) / 1_048_576)) MiB of gradients), "
        + "\(world.size) ranks (\(world.localSize) on this machine), \(rounds) rounds of \(block - 2) timed steps a side")

    // In alternating blocks, so that both sides of the speed-up meet the same machine (a
    // shared VM's cores speed up and slow down over seconds) with warm caches (stepping two
    // 12 MiB models in turn costs each a third more): each round takes `block` data-parallel
    // steps on every rank, then `block` steps of a second replica in one process on the
    // whole batch on rank 0 while the other ranks wait idle; the first 2 steps of each block
    // are not timed. Phases of the data-parallel step: forward and backward (with the
    // hooks' communication), the wait for the rest of the reduction, the optimizer step;
    // wall and on-CPU.
    let (model, optimizer) = makeModel()
    let parallel = try DataParallel(model: model, optimizer: optimizer, group: world)
    let (aloneModel, aloneOptimizer) = makeModel()
    var phases: [[Double]] = [], alone: [[Double]] = [], reductions: [ReductionTimings] = [], roundRatios: [Double] = []
    let clock = ContinuousClock()
    for _ in 0..<rounds {
        var roundSteps: [Double] = [], roundAlone: [Double] = []
        for index in 0..<block {
            let t0 = clock.now, c0 = processCPUSeconds()
            optimizer.zeroGradients()
            let shard = parallel.shard(batch)!
            softmaxCrossEntropy(logits: model(shard.features), labels: shard.labels!).backward()
            let t1 = clock.now, c1 = processCPUSeconds()
            try parallel.synchronizeGradients()
            let t2 = clock.now, c2 = processCPUSeconds()
            optimizer.step(clippingGradientNorm: 1)
            let t3 = clock.now, c3 = processCPUSeconds()
            guard index >= 2, let timings = parallel.lastTimings else { continue }
            phases.append([
                t0.duration(to: t3).seconds, t0.duration(to: t1).seconds, t1.duration(to: t2).seconds, t2.duration(to: t3).seconds,
                c1 - c0, c3 - c2,
            ])
            roundSteps.append(t0.duration(to: t3).seconds)
            reductions.append(timings)
        }
        if world.rank == 0 {
            for index in 0..<block {
                let u0 = clock.now, d0 = processCPUSeconds()
                aloneOptimizer.zeroGradients()
                softmaxCrossEntropy(logits: aloneModel(batch.features), labels: batch.labels!).backward()
                let u1 = clock.now, d1 = processCPUSeconds()
                aloneOptimizer.step(clippingGradientNorm: 1)
                let u2 = clock.now, d2 = processCPUSeconds()
                guard index >= 2 else { continue }
                alone.append([u0.duration(to: u2).seconds, u0.duration(to: u1).seconds, u1.duration(to: u2).seconds, d1 - d0, d2 - d1])
                roundAlone.append(u0.duration(to: u2).seconds)
            }
            roundRatios.append(median(roundAlone) / median(roundSteps))
        }
        try world.barrier()
    }
    let step = median(phases.map { $0[0] }), best = phases.map { $0[0] }.min()!
    let backward = median(phases.map { $0[1] }), wait = median(phases.map { $0[2] }), update = median(phases.map { $0[3] })
    let hooks = median(reductions.map(\.duringBackward.seconds)), cost = median(reductions.map(\.cost.seconds))
    // The job is as slow as its slowest rank.
    let perRank = try world.allGather([step, best])
    let parallelStep = perRank.map { $0[0] }.max()!, parallelBest = perRank.map { $0[1] }.max()!
    report("  data-parallel step   median \(formatSeconds(parallelStep)), min \(formatSeconds(parallelBest)) "
        + "(slowest rank; medians \(perRank.map { formatSeconds($0[0]) }.joined(separator: ", ")))")
    report("    rank 0: forward+backward \(formatSeconds(backward)) (\(formatSeconds(hooks)) of it communicating in hooks), "
        + "wait \(formatSeconds(wait)), optimizer step \(formatSeconds(update)); on-CPU: forward+backward "
        + "\(formatSeconds(median(phases.map { $0[4] }))), optimizer step \(formatSeconds(median(phases.map { $0[5] })))")
    report("  all-reduce           \(formatSeconds(cost)) a step = \(percent(cost / step)) of it: "
        + "\(formatSeconds(hooks)) inside backward's hooks, \(formatSeconds(wait)) waited after backward")
    report("  overlap              \(percent(median(reductions.map(\.overlap)))) of the all-reduce's span ran while backward was running")
    guard world.rank == 0 else { return }
    let single = median(alone.map { $0[0] }), singleBest = alone.map { $0[0] }.min()!
    let singleBackward = median(alone.map { $0[1] }), singleUpdate = median(alone.map { $0[2] })
    report("  one process          median \(formatSeconds(single)), min \(formatSeconds(singleBest)) on the whole batch of \(workload.batch): "
        + "forward+backward \(formatSeconds(singleBackward)), optimizer step \(formatSeconds(singleUpdate)); on-CPU: forward+backward "
        + "\(formatSeconds(median(alone.map { $0[3] }))), optimizer step \(formatSeconds(median(alone.map { $0[4] })))")
    report("  speed-up             \(format3(median(roundRatios)))x on \(world.size) ranks (median over \(rounds) rounds of their medians' ratio; "
        + "\(format3(single / parallelStep))x from the medians, \(format3(singleBest / parallelBest))x from the minima)")
    // Perfect scaling of forward and backward, a free reduction: what the replicated step leaves.
    let bound = single / (singleBackward / Double(world.size) + singleUpdate)
    report("  bound                \(format3(bound))x if forward+backward scaled perfectly and the all-reduce were free "
        + "(every rank takes the whole optimizer step)")
}

/// The CPU time this process has used (`CLOCK_PROCESS_CPUTIME_ID`): unlike the wall clock, it
/// does not grow while other processes take the core, so it shows the work on a busy machine.
func processCPUSeconds() -> Double {
    var time = timespec()
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &time)
    return Double(time.tv_sec) + Double(time.tv_nsec) * 1e-9
}

/// The median of `values`.
func median(_ values: [Double]) -> Double {
    let sorted = values.sorted()
    return sorted.isEmpty ? .nan : sorted[sorted.count / 2]
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
