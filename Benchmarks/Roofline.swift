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
    stepProducts(sizes: sizes, batch: batch).reduce(0) { $0 + $1.flops }
}

/// One product shape: C (m×n) = op(A) op(B) with inner dimension k.
private struct ProductShape: Hashable {
    var transposeA: Bool, transposeB: Bool, m: Int, n: Int, k: Int

    var label: String { "\(m)x\(n)x\(k) \(transposeA ? "T" : "N")\(transposeB ? "T" : "N")" }
    var flops: Double { 2 * Double(m) * Double(n) * Double(k) }
}

/// The products of one training step of an MLP, as the step runs them: per Linear layer the
/// forward (batch × out × in, NT), the weight gradient (out × in × batch, TN) and, except for
/// the first layer, the input gradient (batch × in × out, NN).
private func stepProducts(sizes: [Int], batch: Int) -> [ProductShape] {
    (0..<(sizes.count - 1)).flatMap { layer -> [ProductShape] in
        let i = sizes[layer], o = sizes[layer + 1]
        let forward = ProductShape(transposeA: false, transposeB: true, m: batch, n: o, k: i)
        let weightGradient = ProductShape(transposeA: true, transposeB: false, m: o, n: i, k: batch)
        let inputGradient = ProductShape(transposeA: false, transposeB: false, m: batch, n: i, k: o)
        return layer == 0 ? [forward, weightGradient] : [forward, weightGradient, inputGradient]
    }
}

/// The median time in seconds of every product shape of the step workloads and of square
/// products from 256 to 1024, each timed alone with warm caches, with the C kernel at the
/// current thread count and matrix products in `precision`.
private func productTimes(budget: Double, precision: MatmulPrecision) -> [ProductShape: Double] {
    var shapes = [256, 512, 1024].map { ProductShape(transposeA: false, transposeB: false, m: $0, n: $0, k: $0) }
    shapes += stepWorkloads.flatMap { stepProducts(sizes: $0.sizes, batch: $0.batch) }
    var times: [ProductShape: Double] = [:]
    var generator = SeededGenerator(seed: 4)
    for s in shapes where times[s] == nil {
        let a = Tensor(randomNormal: [s.m * s.k], using: &generator), b = Tensor(randomNormal: [s.k * s.n], using: &generator)
        let c = UnsafeMutablePointer<Float>.allocate(capacity: s.m * s.n)
        defer { c.deallocate() }
        times[s] = a.withUnsafeBufferPointer { ap in
            b.withUnsafeBufferPointer { bp in
                Kernels.withBackend(.c) {
                    Kernels.withMatmulPrecision(precision) {
                        time(budget: budget, warmup: 2) {
                            BenchmarkKernels.gemm(
                                transposeA: s.transposeA, transposeB: s.transposeB, m: s.m, n: s.n, k: s.k,
                                a: ap.baseAddress!, b: bp.baseAddress!, c: c)
                        }
                    }
                }
            }
        }.median
    }
    return times
}

/// This machine's best SGEMM rate in GFLOP/s: the highest median rate among `times`.
private func bestRate(_ times: [ProductShape: Double]) -> (gflops: Double, shape: String) {
    let best = times.max { $0.key.flops / $0.value < $1.key.flops / $1.value }!
    return (best.key.flops / best.value / 1e9, best.key.label)
}

/// `gradkit-bench --roofline`: the best SGEMM rate, then per step workload its
/// FLOPs, its median step time, the time those FLOPs take at the best rate (the
/// bound) and bound/time, and the time of the step's own products each timed alone
/// at their shapes (what the step would take with nothing outside its products,
/// and with each product as fast as alone with warm caches); ten back-to-back
/// timings of the deep step (slowest over fastest). The same rate and step times with bfloat16 matrix products
/// (``MatmulPrecision/bfloat16``, whatever `--matmul-precision` says; the FP32
/// figures are FP32 likewise). With `--json` the last line is
/// `{"sgemm_gflops": X, "workloads": [{"name", "flops", "step_us", "bound_us", "fraction", "products_us", "bf16_step_us"}], "bf16_gemm_gflops": Y, "bf16_dot": K}`
/// where K names the kernel the bfloat16 products ran on (``Kernels/BFloat16DotProduct``).
func runRoofline() {
    let times = productTimes(budget: options.budget / 2, precision: .float32)
    let rate = bestRate(times), bf16Rate = bestRate(productTimes(budget: options.budget / 2, precision: .bfloat16))
    var rows: [(name: String, flops: Double, step: Double, bound: Double, products: Double, bf16Step: Double)] = []
    var deepRuns: [Double] = []
    for workload in stepWorkloads {
        let step = makeTrainingStep(sizes: workload.sizes, batch: workload.batch)
        func median(_ precision: MatmulPrecision, _ step: () -> Void) -> Double {
            Kernels.withBackend(.c) { Kernels.withMatmulPrecision(precision) { time(budget: options.budget * 2, step).median } }
        }
        // Each precision starts from the same model: a step that trained on in FP32 first would time
        // bfloat16 on a nearly memorized batch, whose tiny gradients make subnormal products.
        let seconds = median(.float32, step)
        let bf16Seconds = median(.bfloat16, makeTrainingStep(sizes: workload.sizes, batch: workload.batch))
        let flops = stepFLOPs(sizes: workload.sizes, batch: workload.batch)
        let products = stepProducts(sizes: workload.sizes, batch: workload.batch).reduce(0) { $0 + times[$1]! }
        rows.append((workload.name, flops, seconds, flops / (rate.gflops * 1e9), products, bf16Seconds))
        if workload.name.hasPrefix("deep") {
            deepRuns = Kernels.withBackend(.c) {
                Kernels.withMatmulPrecision(.float32) { (0..<10).map { _ in time(budget: options.budget / 2, step).median } }
            }
        }
    }
    // A step cannot take less than its own products: where the products timed alone took longer, the machine's
    // speed changed during the run, and every fraction of it is suspect.
    for row in rows where row.products > row.step * 1.05 {
        printError("note: \(row.name): its products alone took \(formatSeconds(row.products)), the whole step "
            + "\(formatSeconds(row.step)): the machine's speed changed during the run; repeat it on a quieter machine")
    }
    if options.json {
        let items = rows.map { row in
            "{\"name\": \(jsonString(row.name)), \"flops\": \(row.flops), \"step_us\": \(row.step * 1e6), "
                + "\"bound_us\": \(row.bound * 1e6), \"fraction\": \(row.bound / row.step), \"products_us\": \(row.products * 1e6), "
                + "\"bf16_step_us\": \(row.bf16Step * 1e6)}"
        }
        print("{\"sgemm_gflops\": \(rate.gflops), \"workloads\": [\(items.joined(separator: ", "))], \"bf16_gemm_gflops\": \(bf16Rate.gflops), "
            + "\"bf16_dot\": \(jsonString(Kernels.bfloat16DotProduct.description))}")
        return
    }
    print("best SGEMM: \(format3(rate.gflops)) GFLOP/s (\(rate.shape), \(Kernels.threadCount) threads)")
    print("best bfloat16 GEMM: \(format3(bf16Rate.gflops)) GFLOP/s (\(bf16Rate.shape); \(format3(bf16Rate.gflops / rate.gflops))x FP32; "
        + "pairs by \(Kernels.bfloat16DotProduct), AVX512_BF16 \(Kernels.cpuHasAVX512BF16 ? "present" : "absent"))")
    print("\(padded("step workload", 32)) \(padded("MFLOP", 9)) \(padded("step", 10)) \(padded("bound", 10)) \(padded("of bound", 9)) "
        + "\(padded("products", 10)) \(padded("bound/products", 15)) \(padded("products/step", 14)) bf16 step")
    for row in rows {
        print("\(padded(row.name, 32)) \(padded(format3(row.flops / 1e6), 9)) \(padded(formatSeconds(row.step), 10)) "
            + "\(padded(formatSeconds(row.bound), 10)) \(padded(percent(row.bound / row.step), 9)) \(padded(formatSeconds(row.products), 10)) "
            + "\(padded(percent(row.bound / row.products), 15)) \(padded(percent(row.products / row.step), 14)) \(formatSeconds(row.bf16Step))")
    }
    print("products: the step's own products, each timed alone (warm caches); of bound = bound/products × products/step")
    for (workload, row) in zip(stepWorkloads, rows) {
        let products = stepProducts(sizes: workload.sizes, batch: workload.batch)
        var shown = Set<ProductShape>()
        let shapes = products.filter { shown.insert($0).inserted }.map { shape in
            let count = products.filter { $0 == shape }.count, seconds = times[shape]!
            return "\(shape.label) \(format3(shape.flops / seconds / 1e9)) GFLOP/s"
                + (count > 1 ? " ×\(count)" : "") + " (\(percent(Double(count) * seconds / row.products)))"
        }
        print("  \(workload.name): \(shapes.joined(separator: ", "))")
    }
    if let fastest = deepRuns.min(), let slowest = deepRuns.max() {
        print("deep step, 10 back-to-back medians: \(formatSeconds(fastest))–\(formatSeconds(slowest)), slowest/fastest \(format3(slowest / fastest))")
    }
}
