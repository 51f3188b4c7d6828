// gradkit-bench --roofline — each training step's matrix products timed at this machine's best
// SGEMM rate, measured in the same run. SPDX-License-Identifier: MIT
#if canImport(Glibc)
import Glibc
#endif
@_spi(Benchmarks) import GradKit

/// The floating-point operations of one training step of a ReLU MLP with layer
/// sizes `sizes` at `batch` examples: for each Linear layer of `in` inputs and
/// `out` outputs, 2·batch·in·out for the forward product, as many for the
/// weight gradient and, except for the first layer (its input needs no
/// gradient, so no product is run for it), as many for the input gradient.
/// Elementwise work, the loss, clipping and the optimizer are not counted: the
/// bound is the time of the products alone, the part no step can avoid.
func stepFLOPs(sizes: [Int], batch: Int) -> Double {
    var total = 0.0
    for layer in 0..<(sizes.count - 1) {
        let product = 2 * Double(batch) * Double(sizes[layer]) * Double(sizes[layer + 1])
        total += layer == 0 ? 2 * product : 3 * product
    }
    return total
}

/// This machine's best SGEMM rate in GFLOP/s: the highest median rate of the C
/// kernel over square products from 256 to 1024 and the MLP workloads' own
/// shapes (forward, input gradient, weight gradient), at the current thread
/// count, with matrix products in `precision`.
func bestSGEMMRate(budget: Double, precision: MatmulPrecision) -> (gflops: Double, shape: String) {
    var shapes: [(label: String, ta: Bool, tb: Bool, m: Int, n: Int, k: Int)] =
        [256, 512, 1024].map { ("\($0)x\($0)x\($0)", false, false, $0, $0, $0) }
    for workload in stepWorkloads {
        for layer in 0..<(workload.sizes.count - 1) {
            let b = workload.batch, i = workload.sizes[layer], o = workload.sizes[layer + 1]
            shapes.append(("\(b)x\(o)x\(i) NT", false, true, b, o, i))
            shapes.append(("\(b)x\(i)x\(o) NN", false, false, b, i, o))
            shapes.append(("\(o)x\(i)x\(b) TN", true, false, o, i, b))
        }
    }
    var best = (gflops: 0.0, shape: "")
    var generator = SeededGenerator(seed: 4)
    var seen = Set<String>()
    for s in shapes where seen.insert(s.label).inserted {
        let a = Tensor(randomNormal: [s.m * s.k], using: &generator), b = Tensor(randomNormal: [s.k * s.n], using: &generator)
        let c = UnsafeMutablePointer<Float>.allocate(capacity: s.m * s.n)
        defer { c.deallocate() }
        let t = a.withUnsafeBufferPointer { ap in
            b.withUnsafeBufferPointer { bp in
                Kernels.withBackend(.c) {
                    Kernels.withMatmulPrecision(precision) {
                        time(budget: budget, warmup: 2) {
                        BenchmarkKernels.gemm(
                                transposeA: s.ta, transposeB: s.tb, m: s.m, n: s.n, k: s.k, a: ap.baseAddress!, b: bp.baseAddress!, c: c)
                        }
                    }
                }
            }
        }
        let rate = 2 * Double(s.m * s.n * s.k) / t.median / 1e9
        if rate > best.gflops { best = (rate, s.label) }
    }
    return best
}

/// `gradkit-bench --roofline`: the best SGEMM rate, then per step workload its
/// FLOPs, its median step time, the time those FLOPs take at the best rate (the
/// bound) and bound/time; ten back-to-back timings of the deep step (slowest
/// over fastest). The same rate and step times with bfloat16 matrix products
/// (``MatmulPrecision/bfloat16``, whatever `--matmul-precision` says; the FP32
/// figures are FP32 likewise). With `--json` the last line is
/// `{"sgemm_gflops": X, "workloads": [{"name", "flops", "step_us", "bound_us", "fraction", "bf16_step_us"}], "bf16_gemm_gflops": Y, "bf16_dot": K}`
/// where K names the kernel the bfloat16 products ran on (``Kernels/BFloat16DotProduct``).
func runRoofline() {
    let rate = bestSGEMMRate(budget: options.budget / 2, precision: .float32)
    let bf16Rate = bestSGEMMRate(budget: options.budget / 2, precision: .bfloat16)
    var rows: [(name: String, flops: Double, step: Double, bound: Double, bf16Step: Double)] = []
    var deepRuns: [Double] = []
    for workload in stepWorkloads {
        let step = makeTrainingStep(sizes: workload.sizes, batch: workload.batch)
        func median(_ precision: MatmulPrecision) -> Double {
            Kernels.withBackend(.c) { Kernels.withMatmulPrecision(precision) { time(budget: options.budget * 2, step).median } }
        }
        let seconds = median(.float32), bf16Seconds = median(.bfloat16)
        let flops = stepFLOPs(sizes: workload.sizes, batch: workload.batch)
        rows.append((workload.name, flops, seconds, flops / (rate.gflops * 1e9), bf16Seconds))
        if workload.name.hasPrefix("deep") {
            deepRuns = Kernels.withBackend(.c) {
                Kernels.withMatmulPrecision(.float32) { (0..<10).map { _ in time(budget: options.budget / 2, step).median } }
            }
        }
    }
    if options.json {
        let items = rows.map { row in
            "{\"name\": \(jsonString(row.name)), \"flops\": \(row.flops), \"step_us\": \(row.step * 1e6), "
                + "\"bound_us\": \(row.bound * 1e6), \"fraction\": \(row.bound / row.step), \"bf16_step_us\": \(row.bf16Step * 1e6)}"
        }
        print("{\"sgemm_gflops\": \(rate.gflops), \"workloads\": [\(items.joined(separator: ", "))], \"bf16_gemm_gflops\": \(bf16Rate.gflops), "
            + "\"bf16_dot\": \(jsonString(Kernels.bfloat16DotProduct.description))}")
        return
    }
    print("best SGEMM: \(format3(rate.gflops)) GFLOP/s (\(rate.shape), \(Kernels.threadCount) threads)")
    print("best bfloat16 GEMM: \(format3(bf16Rate.gflops)) GFLOP/s (\(bf16Rate.shape); \(format3(bf16Rate.gflops / rate.gflops))x FP32; "
        + "pairs by \(Kernels.bfloat16DotProduct), AVX512_BF16 \(Kernels.cpuHasAVX512BF16 ? "present" : "absent"))")
    print("\(padded("step workload", 32)) \(padded("MFLOP", 9)) \(padded("step", 10)) \(padded("bound", 10)) \(padded("of bound", 9)) bf16 step")
    for row in rows {
        print("\(padded(row.name, 32)) \(padded(format3(row.flops / 1e6), 9)) \(padded(formatSeconds(row.step), 10)) "
            + "\(padded(formatSeconds(row.bound), 10)) \(padded("\(Int((row.bound / row.step * 100).rounded()))%", 9)) \(formatSeconds(row.bf16Step))")
    }
    if let fastest = deepRuns.min(), let slowest = deepRuns.max() {
        print("deep step, 10 back-to-back medians: \(formatSeconds(fastest))–\(formatSeconds(slowest)), slowest/fastest \(format3(slowest / fastest))")
    }
}
