// gradkit-bench — C vs pure-Swift kernels, and autograd bookkeeping.
// SPDX-License-Identifier: MIT
//
//   swift run -c release gradkit-bench [--filter NAME] [--threads N] [--unsplit] [--flush-subnormals] [--optimizer-subnormals P] [--matmul-precision P] [--json] [--quick]
//   swift run -c release gradkit-bench --roofline [--threads N] [--json]   (Roofline.swift; FP32 and bfloat16)
//   swift run -c release --traits NativeOpenMP gradkit-bench
//   mpirun -np 2 .build-mpi/release/gradkit-bench --distributed --threads 1   (MPI trait; Distributed.swift)
#if canImport(Glibc)
import Glibc
#endif
@_spi(Benchmarks) import GradKit

/// Writes `gradkit-bench: MESSAGE` and a line break to standard error.
func printError(_ message: String) {
    let line = "gradkit-bench: \(message)\n"
    _ = line.withCString { write(2, $0, strlen($0)) }
}

/// Ends the program with a usage error on standard error (exit status 2, as gradkit's).
func usageError(_ message: String) -> Never {
    printError("\(message) (see --help)")
    exit(2)
}

var arguments = Array(CommandLine.arguments.dropFirst())
var seen: Set<String> = []
var filter: String?
var json = false
var quick = false
var distributed = false
var roofline = false
var bf16Dot = Kernels.detectedBFloat16DotProduct
nonisolated(unsafe) var onlyBackend: KernelBackend?
/// --optimizer-subnormals: Adam's and SGD's path for elements near subnormals (nil: measured).
nonisolated(unsafe) var optimizerSubnormalsInDouble: Bool?
while let argument = arguments.first {
    arguments.removeFirst()
    guard seen.insert(argument).inserted else { usageError("\(argument) is given twice") }
    switch argument {
    case "--filter":
        guard let value = arguments.first else { usageError("--filter needs a NAME") }
        filter = value
        arguments.removeFirst()
    case "--threads":
        guard let value = arguments.first, let count = Int(value), count > 0 else { usageError("--threads needs a count") }
        Kernels.threadCount = count
        arguments.removeFirst()
    case "--backend":
        guard let value = arguments.first, let backend = KernelBackend(rawValue: value) else { usageError("--backend needs c or swift") }
        onlyBackend = backend
        arguments.removeFirst()
    case "--matmul-precision":
        guard let value = arguments.first, let precision = MatmulPrecision(name: value) else {
            usageError("--matmul-precision needs float32 (fp32) or bfloat16 (bf16)")
        }
        Kernels.matmulPrecision = precision
        arguments.removeFirst()
    case "--bf16-dot":
        let kinds: [String: Kernels.BFloat16DotProduct] = ["fma": .fusedMultiplyAdd, "vdpbf16ps": .vdpbf16ps, "emulated": .emulatedVDPBF16PS]
        guard let value = arguments.first, let kind = kinds[value] else { usageError("--bf16-dot needs fma, vdpbf16ps or emulated") }
        bf16Dot = kind
        arguments.removeFirst()
    case "--unsplit": Kernels.splitsSmallProducts = false
    case "--flush-subnormals": Kernels.flushesSubnormals = true
    case "--optimizer-subnormals":
        let paths: [String: Bool] = ["double": true, "plain": false]
        guard let value = arguments.first, let inDouble = paths[value] else { usageError("--optimizer-subnormals needs double or plain") }
        optimizerSubnormalsInDouble = inDouble
        Kernels.setOptimizerSubnormalsInDouble(inDouble)
        arguments.removeFirst()
    case "--json": json = true
    case "--quick": quick = true
    case "--distributed": distributed = true
    case "--roofline": roofline = true
    case "--help", "-h":
        print("usage: gradkit-bench [--filter NAME] [--threads N] [--unsplit] [--flush-subnormals] [--optimizer-subnormals P] [--matmul-precision P] [--bf16-dot K] [--backend c|swift] [--json] [--quick] [--distributed] [--roofline]")
        print("  --bf16-dot fma|vdpbf16ps|emulated: the kernel bfloat16 products use (Kernels.BFloat16DotProduct; default: this CPU's best)")
        print("  --unsplit: products of a few microseconds on one thread (Kernels.splitsSmallProducts = false)")
        print("  --flush-subnormals: subnormal numbers flushed to zero on the benchmark's thread and the kernels' (Kernels.flushesSubnormals)")
        print("  --optimizer-subnormals double|plain: Adam's and SGD's C kernels compute elements near subnormals in double or in their plain loops (default: measured)")
        print("  --matmul-precision float32|bf16: GEMMs with operands rounded to bfloat16 (Kernels.matmulPrecision); --roofline measures both")
        print("  --distributed: data-parallel steps of the wide MLP under mpirun (MPI trait)")
        print("  --roofline: each step workload's time against its FLOPs at this machine's best SGEMM rate")
        exit(0)
    default:
        usageError("unknown argument \(argument)")
    }
}
let budget = quick ? 0.1 : 0.5

nonisolated(unsafe) var results: [Measurement] = []
let options = (filter: filter, json: json, budget: budget, quick: quick)

func selected(_ name: String) -> Bool { options.filter.map { name.contains($0) } ?? true }

func record(_ m: Measurement) {
    results.append(m)
    if !options.json {
        var figure = m.unit == .operations ? "\(format3(m.throughput)) ns/op" : "\(format3(m.throughput)) \(m.unit.rawValue)"
        if let (bandwidth, fraction) = m.roofline {
            figure += "  = \(Int((fraction * 100).rounded()))% of a*x+y (\(format3(bandwidth)) GB/s)"
        }
        print("\(padded(m.name, 34)) \(padded(m.variant, 10)) median \(padded(formatSeconds(m.median), 10)) min \(padded(formatSeconds(m.minimum), 10)) \(figure)")
    }
}

if !json && !distributed {
    print("gradkit-bench — \(Kernels.summary)")
    print("")
}

// ------------------------------------------------------------------ autograd

/// Forward + backward through a chain of tiny ops: the bookkeeping cost per
/// recorded op (the arithmetic on 4 elements is a few nanoseconds).
func autogradOverhead() {
    let name = "autograd.overhead (4 elements)"
    guard selected(name) else { return }
    var generator = SeededGenerator(seed: 1)
    let w = Parameter(Tensor(randomNormal: [4], using: &generator), name: "w")
    let iterations = 25
    let opsPerStep = Double(iterations * 3 + 2) // (h * 0.5 + w).tanh() per iteration; sum = reduce + reshape
    let recorded = time(budget: options.budget) {
        var h = w.value
        for _ in 0..<iterations { h = (h * 0.5 + w.value).tanh() }
        h.sum().backward()
        w.gradient = nil
    }
    record(.init(name: name, variant: "fwd+bwd", median: recorded.median, minimum: recorded.minimum, unit: .operations, work: opsPerStep))
    let forwardOnly = time(budget: options.budget) {
        withoutGradients {
            var h = w.value
            for _ in 0..<iterations { h = (h * 0.5 + w.value).tanh() }
            consume(h.sum())
        }
    }
    record(.init(name: name, variant: "untracked", median: forwardOnly.median, minimum: forwardOnly.minimum, unit: .operations, work: opsPerStep))
}

// ------------------------------------------------------------------ kernels

func compareBackends(_ name: String, unit: Measurement.Unit, work: Double, _ body: @escaping () -> Void) {
    guard selected(name) else { return }
    for backend in KernelBackend.allCases where onlyBackend.map({ $0 == backend }) ?? true {
        let t = Kernels.withBackend(backend) { time(budget: options.budget, body) }
        record(.init(name: name, variant: backend.rawValue, median: t.median, minimum: t.minimum, unit: unit, work: work))
    }
}

/// The SGEMM shapes: squares, an odd non-square, and the skinny products of
/// MLP training (batch x width: the forward X Wᵀ is NT, dX = dY W is NN, dW =
/// dYᵀ X is TN).
let gemmShapes: [(label: String, ta: Bool, tb: Bool, m: Int, n: Int, k: Int)] =
    [32, 64, 128, 256, 512, 1024, 2048].map { ("\($0)x\($0)x\($0)", false, false, $0, $0, $0) } + [
        ("257x129x301", false, false, 257, 129, 301),
        ("mlp 32x128x64 NT", false, true, 32, 128, 64), ("mlp 32x64x128 NN", false, false, 32, 64, 128),
        ("mlp 128x64x32 TN", true, false, 128, 64, 32),
        ("mlp 64x64x64 NT", false, true, 64, 64, 64), ("mlp 64x64x64 TN", true, false, 64, 64, 64),
        ("mlp 128x256x784 NT", false, true, 128, 256, 784), ("mlp 128x784x256 NN", false, false, 128, 784, 256),
        ("mlp 256x784x128 TN", true, false, 256, 784, 128),
        ("mlp 256x1024x1024 NT", false, true, 256, 1024, 1024), ("mlp 256x1024x1024 NN", false, false, 256, 1024, 1024),
        ("mlp 1024x1024x256 TN", true, false, 1024, 1024, 256),
    ]

/// Checks a GEMM result against the double-accumulating reference (on up to 64
/// rows) with the error bound of the tests: |error| <= (k + 2) 2^-24 Σ|a||b|. In
/// bfloat16 precision the reference multiplies the operands rounded as the kernel rounds them.
func checkGEMM(_ s: (label: String, ta: Bool, tb: Bool, m: Int, n: Int, k: Int), a unrounded: UnsafePointer<Float>,
               b unroundedB: UnsafePointer<Float>, c: UnsafePointer<Float>, backend: KernelBackend) {
    let rows = 0..<Swift.min(s.m, 64)
    let reference = UnsafeMutablePointer<Float>.allocate(capacity: s.m * s.n)
    let absA = UnsafeMutablePointer<Float>.allocate(capacity: s.m * s.k), absB = UnsafeMutablePointer<Float>.allocate(capacity: s.k * s.n)
    let bound = UnsafeMutablePointer<Float>.allocate(capacity: s.m * s.n)
    let roundedA = UnsafeMutablePointer<Float>.allocate(capacity: s.m * s.k), roundedB = UnsafeMutablePointer<Float>.allocate(capacity: s.k * s.n)
    defer { reference.deallocate(); absA.deallocate(); absB.deallocate(); bound.deallocate(); roundedA.deallocate(); roundedB.deallocate() }
    roundedA.update(from: unrounded, count: s.m * s.k)
    roundedB.update(from: unroundedB, count: s.k * s.n)
    if Kernels.activeMatmulPrecision == .bfloat16 {
        BenchmarkKernels.roundToBFloat16(count: s.m * s.k, x: roundedA, y: roundedA)
        BenchmarkKernels.roundToBFloat16(count: s.k * s.n, x: roundedB, y: roundedB)
    }
    let a = UnsafePointer(roundedA), b = UnsafePointer(roundedB)
    for i in 0..<(s.m * s.k) { absA[i] = Swift.abs(a[i]) }
    for i in 0..<(s.k * s.n) { absB[i] = Swift.abs(b[i]) }
    BenchmarkKernels.gemmReference(transposeA: s.ta, transposeB: s.tb, m: s.m, n: s.n, k: s.k, a: a, b: b, c: reference, rows: rows)
    BenchmarkKernels.gemmReference(transposeA: s.ta, transposeB: s.tb, m: s.m, n: s.n, k: s.k, a: absA, b: absB, c: bound, rows: rows)
    let gamma = Float(s.k + 2) * 0x1p-24
    for i in rows {
        for j in 0..<s.n where !(Swift.abs(c[i * s.n + j] - reference[i * s.n + j]) <= gamma * bound[i * s.n + j] + Float.leastNormalMagnitude) {
            print("gradkit-bench: sgemm \(s.label) (\(backend)) is wrong at C[\(i),\(j)]: \(c[i * s.n + j]) vs \(reference[i * s.n + j])")
            exit(1)
        }
    }
}

func kernels() {
    var generator = SeededGenerator(seed: 2)
    for s in gemmShapes {
        let name = "sgemm " + s.label
        guard selected(name) else { continue }
        let a = Tensor(randomNormal: [s.m * s.k], using: &generator), b = Tensor(randomNormal: [s.k * s.n], using: &generator)
        let c = UnsafeMutablePointer<Float>.allocate(capacity: s.m * s.n)
        defer { c.deallocate() }
        a.withUnsafeBufferPointer { ap in
            b.withUnsafeBufferPointer { bp in
                for backend in KernelBackend.allCases where onlyBackend.map({ $0 == backend }) ?? true {
                    Kernels.withBackend(backend) {
                        let run = { BenchmarkKernels.gemm(transposeA: s.ta, transposeB: s.tb, m: s.m, n: s.n, k: s.k, a: ap.baseAddress!, b: bp.baseAddress!, c: c) }
                        run()
                        checkGEMM(s, a: ap.baseAddress!, b: bp.baseAddress!, c: c, backend: backend)
                        let t = time(budget: backend == .swift && s.m * s.n * s.k > 1 << 27 ? options.budget / 4 : options.budget, warmup: 1, run)
                        record(.init(name: name, variant: backend.rawValue, median: t.median, minimum: t.minimum, unit: .flops, work: 2 * Double(s.m * s.n * s.k)))
                    }
                }
            }
        }
    }
    streamingKernels()
}

/// Streaming kernels at 10^4 ... 10^7 elements, as GB/s of the bytes each reads
/// and writes, against a*x+y (12 bytes an element) at the same size timed alternately with it.
func streamingKernels() {
    let kernelsNames = ["axpy", "scale", "relu", "sigmoid", "tanh", "gelu", "relu backward", "tanh backward", "bias add",
                        "column sums", "sum", "sum of squares", "p-norm (p=3)"]
    for count in [10_000, 100_000, 1_000_000, 10_000_000] {
        let size = count == 10_000 ? "1e4" : count == 100_000 ? "1e5" : count == 1_000_000 ? "1e6" : "1e7"
        guard kernelsNames.contains(where: { selected("\($0) \(size)") }) else { continue }
        let x = BenchmarkKernels.allocateFloats(count), y = BenchmarkKernels.allocateFloats(count)
        let dy = BenchmarkKernels.allocateFloats(count), dx = BenchmarkKernels.allocateFloats(count)
        let out = BenchmarkKernels.allocateFloats(count)
        defer { x.deallocate(); y.deallocate(); dy.deallocate(); dx.deallocate(); out.deallocate() }
        var generator = SeededGenerator(seed: 5)
        let values = Tensor(randomNormal: [count], using: &generator).scalars
        for i in 0..<count {
            x[i] = values[i]
            y[i] = Float(Glibc.tanh(Double(values[i])))
            dy[i] = values[(i &* 7) % count] * 0.1
        }
        let columns = 1000, rows = count / columns
        // The roofline, a*x+y at this size, is timed alternately with the kernel, one call each,
        // so that this machine's bandwidth drifting between states hits both alike.
        let clock = ContinuousClock()
        func measure(_ label: String, bytes: Double, _ body: @escaping () -> Void) {
            let name = "\(label) \(size)"
            guard selected(name) else { return }
            for backend in KernelBackend.allCases where onlyBackend.map({ $0 == backend }) ?? true {
                var kernel: [Double] = [], axpy: [Double] = []
                let started = clock.now
                for _ in 0..<2 { Kernels.withBackend(backend, body) }
                repeat {
                    axpy.append(seconds { Kernels.withBackend(.c) { BenchmarkKernels.axpy(count: count, y: out, alpha: 1e-7, x: x) } })
                    kernel.append(seconds { Kernels.withBackend(backend, body) })
                } while kernel.count < 5 || (started.duration(to: clock.now) < .milliseconds(Int(options.budget * 2000)) && kernel.count < 100_000)
                kernel.sort()
                axpy.sort()
                var m = Measurement(name: name, variant: backend.rawValue, median: kernel[kernel.count / 2], minimum: kernel[0], unit: .bytes, work: bytes * Double(count))
                let roofline = 12 * Double(count) / axpy[0] / 1e9
                m.roofline = (roofline, m.throughput / roofline)
                record(m)
            }
        }
        // Results are checked C against Swift before timing (exact or within a few ulp for the transcendentals).
        // `scale`: the magnitude errors are relative to (|dy| for pullbacks, whose 1 - y² cancels).
        func agree(_ body: (UnsafeMutablePointer<Float>) -> Void, relative: Float, scale: UnsafePointer<Float>? = nil) -> Bool {
            let c = BenchmarkKernels.allocateFloats(count), swift = BenchmarkKernels.allocateFloats(count)
            defer { c.deallocate(); swift.deallocate() }
            Kernels.withBackend(.c) { body(c) }
            Kernels.withBackend(.swift) { body(swift) }
            for i in 0..<count where !(Swift.abs(c[i] - swift[i]) <= relative * Swift.max(Swift.abs(swift[i]), Swift.abs(scale?[i] ?? 0), 1e-30)) {
                print("gradkit-bench: C and Swift disagree at \(i): \(c[i]) vs \(swift[i])")
                exit(1)
            }
            return true
        }
        measure("axpy", bytes: 12) { BenchmarkKernels.axpy(count: count, y: out, alpha: 1e-7, x: x) }
        for (map, tolerance): (BenchmarkKernels.Map, Float) in [(.scale, 0), (.relu, 0), (.sigmoid, 5e-7), (.tanh, 5e-7), (.gelu, 1e-6)] where selected("\(map.rawValue) \(size)") {
            _ = agree({ BenchmarkKernels.map(map, count: count, y: $0, x: x) }, relative: tolerance)
            measure(map.rawValue, bytes: 8) { BenchmarkKernels.map(map, count: count, y: out, x: x) }
        }
        for (map, tolerance): (BenchmarkKernels.Map, Float) in [(.relu, 0), (.tanh, 1e-6)] where selected("\(map.rawValue) backward \(size)") {
            _ = agree({ BenchmarkKernels.mapBackward(map, count: count, dx: $0, dy: dy, x: x, y: y) }, relative: tolerance, scale: dy)
            measure("\(map.rawValue) backward", bytes: 12) { BenchmarkKernels.mapBackward(map, count: count, dx: dx, dy: dy, x: x, y: y) }
        }
        if selected("bias add \(size)") {
            _ = agree({ BenchmarkKernels.addBias(rows: rows, columns: columns, y: $0, x: x, bias: dy) }, relative: 0)
            measure("bias add", bytes: 8) { BenchmarkKernels.addBias(rows: rows, columns: columns, y: out, x: x, bias: dy) }
        }
        if selected("column sums \(size)") {
            measure("column sums", bytes: 4) { BenchmarkKernels.columnSums(rows: rows, columns: columns, sums: out, x: x) }
        }
        measure("sum", bytes: 4) { consume(BenchmarkKernels.sum(count: count, x: x)) }
        measure("sum of squares", bytes: 4) { consume(BenchmarkKernels.powerSum(count: count, x: x, p: 2)) }
        measure("p-norm (p=3)", bytes: 4) { consume(BenchmarkKernels.powerSum(count: count, x: x, p: 3)) }
    }
}

// ------------------------------------------------------------------ optimizers

/// A 10 M-element a*x+y (C kernel): the roofline for the streaming kernels,
/// measured right before each of them because this machine's bandwidth drifts
/// between runs. Returns GB/s.
final class AxpyRoofline {
    let count: Int
    let x: UnsafeMutablePointer<Float>, y: UnsafeMutablePointer<Float>

    init(count: Int) {
        self.count = count
        // Allocated like the optimizers' flat buffers, so the roofline is fair.
        x = BenchmarkKernels.allocateFloats(count)
        y = BenchmarkKernels.allocateFloats(count)
        x.initialize(repeating: 1, count: count)
        y.initialize(repeating: 0, count: count)
    }

    deinit {
        x.deallocate()
        y.deallocate()
    }

    func measure(_ backend: KernelBackend = .c) -> Measurement {
        let t = Kernels.withBackend(backend) {
            time(budget: options.budget) { BenchmarkKernels.axpy(count: count, y: y, alpha: 1e-7, x: x) }
        }
        return Measurement(
            name: "axpy 10M (read 2, write 1)", variant: backend.rawValue, median: t.median, minimum: t.minimum,
            unit: .bytes, work: Double(count * 12))
    }
}

/// 10 M parameters in 20 tensors, every one with a gradient: one step of each
/// optimizer, and global-norm clipping, as GB/s of the bytes each must move,
/// and as a fraction of the a*x+y bandwidth measured just before.
func optimizers() {
    guard ["axpy 10M", "optimizer ", "clipGradientNorm 10M"].contains(where: selected) else { return }
    let tensors = 20, perTensor = 500_000
    let total = Double(tensors * perTensor)
    let roofline = AxpyRoofline(count: tensors * perTensor)
    if selected("axpy 10M") {
        record(roofline.measure(.c))
        record(roofline.measure(.swift))
    }
    var generator = SeededGenerator(seed: 3)
    func parameters() -> [Parameter] {
        (0..<tensors).map { i in
            let p = Parameter(Tensor(randomNormal: [perTensor], using: &generator), name: "p\(i)")
            p.gradient = Tensor(randomNormal: [perTensor], standardDeviation: 1e-3, using: &generator)
            return p
        }
    }
    func report(_ name: String, bytes: Double, _ body: @escaping () -> Void) {
        let axpy = roofline.measure()
        for backend in KernelBackend.allCases {
            let t = Kernels.withBackend(backend) { time(budget: options.budget, body) }
            var m = Measurement(name: name, variant: backend.rawValue, median: t.median, minimum: t.minimum, unit: .bytes, work: bytes * total)
            if backend == .c { m.roofline = (axpy.throughput, m.throughput / axpy.throughput) }
            record(m)
        }
    }
    // Bytes per element: reads and writes of parameters, gradients and state.
    let cases: [(String, Double, ([Parameter]) -> Optimizer)] = [
        ("sgd momentum", 20, { SGD($0, learningRate: 1e-3, momentum: 0.9) }),
        ("adagrad", 20, { AdaGrad($0) }),
        ("rmsprop", 20, { RMSprop($0) }),
        ("adam", 28, { Adam($0) }),
        ("adamw", 28, { AdamW($0) }),
    ]
    for (label, bytes, make) in cases {
        let name = "optimizer \(label) 10M/20"
        guard selected(name) else { continue }
        let optimizer = make(parameters())
        report(name, bytes: bytes) { optimizer.step() }
    }
    let name = "clipGradientNorm 10M/20"
    if selected(name) {
        let ps = parameters()
        // Read for the norm, then read and write to scale: 12 bytes. The limit
        // sits just under the current norm so every call really scales (a fixed
        // limit converges to a coefficient of exactly 1).
        report(name, bytes: 12) {
            let total = gradientNorm(ps)
            clipGradients(ps, maxNorm: total * 0.9999, totalNorm: total)
        }
    }
}

/// Adam and SGD with momentum over the deep MLP's 83,850 parameters where a fifth of the gradients,
/// scattered, are subnormal (as the optimizer state of units that stopped learning becomes while it
/// decays): the C kernel's path in double for such elements (on CPUs that compute subnormals
/// slowly), its plain vector loop, and the Swift twin. The state stays subnormal from step to step.
func subnormalOptimizers() {
    let cases: [(String, ([Parameter]) -> Optimizer)] = [
        ("adam", { Adam($0) }), ("sgd momentum", { SGD($0, learningRate: 1e-2, momentum: 0.9) }),
    ]
    for (label, make) in cases {
        let name = "optimizer \(label), a fifth subnormal 84k"
        guard selected(name) else { continue }
        var generator = SeededGenerator(seed: 5)
        let parameter = Parameter(Tensor(randomNormal: [83_850], standardDeviation: 0.1, using: &generator), name: "p")
        let normal = Tensor(randomNormal: [83_850], standardDeviation: 1e-3, using: &generator).scalars
        parameter.gradient = Tensor(shape: [83_850], scalars: normal.enumerated().map { i, g in
            (i &* 2_654_435_761) % 5 == 0 ? g * 1e-37 : g
        })
        let optimizer = make([parameter])
        optimizer.step() // SGD's first step creates its momentum buffer
        for (variant, inDouble) in [("c", nil), ("c plain loop", false)] as [(String, Bool?)] {
            Kernels.setOptimizerSubnormalsInDouble(inDouble)
            let t = Kernels.withBackend(.c) { time(budget: options.budget) { optimizer.step() } }
            let shown = variant == "c" && Kernels.optimizerSubnormalsInDouble ? "c in double" : variant
            record(Measurement(name: name, variant: shown, median: t.median, minimum: t.minimum, unit: .operations, work: 1))
        }
        Kernels.setOptimizerSubnormalsInDouble(optimizerSubnormalsInDouble)
        let t = Kernels.withBackend(.swift) { time(budget: options.budget) { optimizer.step() } }
        record(Measurement(name: name, variant: "swift", median: t.median, minimum: t.minimum, unit: .operations, work: 1))
    }
}

// ------------------------------------------------------------------ training

/// One training step of the digits MLP (64-128-10, ReLU, batch 32, Adam):
/// bare, with only the monitor's non-finite guard, and with the monitor sampling
/// every step. Identical models take turns, each step timed on its own, so that
/// drift (the models' values change as they train, and with them the cost of
/// subnormal arithmetic) hits all alike. The target: sampling every step costs
/// at most 10% of a step.
func trainingStep() {
    let name = "train step digits 64-128-10 b32"
    guard selected(name) else { return }
    let data = Dataset.digits()
    var shuffle: SeededGenerator? = SeededGenerator(seed: 0)
    let batches = data.batches(size: 32, shuffledBy: &shuffle)
    // Three identical models on the same batches, so all drift alike: one trained bare, one
    // with only the monitor's non-finite guard (it samples nothing after its first step), one
    // with the monitor sampling every step (the arithmetic is the same, so they stay identical).
    manualSeed(0)
    let bareModel = MLP(sizes: [64, 128, 10])
    manualSeed(0)
    let guardedModel = MLP(sizes: [64, 128, 10])
    manualSeed(0)
    let model = MLP(sizes: [64, 128, 10])
    let bareOptimizer = Adam(bareModel.parameters), guardedOptimizer = Adam(guardedModel.parameters), optimizer = Adam(model.parameters)
    let guardOnly = GradientMonitor(model: guardedModel, sampleEvery: Int.max)
    let monitor = GradientMonitor(model: model, sampleEvery: 1)
    var bareIndex = 0, guardedIndex = 0, index = 0
    func bareStep() {
        bareIndex = (bareIndex + 1) % (batches.count - 1)
        let batch = batches[bareIndex]
        let loss = softmaxCrossEntropy(logits: bareModel(batch.features), labels: batch.labels!)
        loss.backward()
        bareOptimizer.step()
        bareOptimizer.zeroGradients()
    }
    func monitoredStep(_ monitor: GradientMonitor, _ model: MLP, _ optimizer: Optimizer, _ index: inout Int) {
        index = (index + 1) % (batches.count - 1)
        let batch = batches[index]
        let loss = monitor.observeForward { softmaxCrossEntropy(logits: model(batch.features), labels: batch.labels!) }
        loss.backward()
        if case .step = try! monitor.inspectGradients(loss: loss.scalar) {
            monitor.willStep()
            optimizer.step()
            monitor.didStep()
        }
        optimizer.zeroGradients()
    }
    func guardedStep() { monitoredStep(guardOnly, guardedModel, guardedOptimizer, &guardedIndex) }
    func sampledStep() { monitoredStep(monitor, model, optimizer, &index) }
    let clock = ContinuousClock()
    for _ in 0..<20 {
        bareStep()
        guardedStep()
        sampledStep()
    }
    var bare: [Double] = [], guarded: [Double] = [], monitored: [Double] = []
    let started = clock.now
    repeat {
        bare.append(seconds(bareStep))
        guarded.append(seconds(guardedStep))
        monitored.append(seconds(sampledStep))
    } while bare.count < 50 || (started.duration(to: clock.now) < .milliseconds(Int(options.budget * 3000)) && bare.count < 100_000)
    func summary(_ v: [Double]) -> (median: Double, minimum: Double) {
        let sorted = v.sorted()
        return (sorted[sorted.count / 2], sorted[0])
    }
    let b = summary(bare), g = summary(guarded), m = summary(monitored)
    record(.init(name: name, variant: "bare", median: b.median, minimum: b.minimum, unit: .operations, work: 1))
    record(.init(name: name, variant: "guard", median: g.median, minimum: g.minimum, unit: .operations, work: 1))
    record(.init(name: name, variant: "monitored", median: m.median, minimum: m.minimum, unit: .operations, work: 1))
    if !options.json {
        print("  monitor: the non-finite guard \(format3((g.median / b.median - 1) * 100))%, sampling every step another \(format3((m.median - g.median) / b.median * 100))%, together \(format3((m.median / b.median - 1) * 100))% of a step (medians of \(bare.count) alternating steps)")
    }
}

// ------------------------------------------------------------------ end-to-end training steps

/// The end-to-end workloads: a ReLU MLP; each step zeroes the gradients, runs
/// forward, softmax cross-entropy on fixed random data, backward, global-norm
/// clipping at 1 and an Adam step (fused: `step(clippingGradientNorm: 1)`,
/// the same numbers as clipping then stepping).
let stepWorkloads: [(name: String, sizes: [Int], batch: Int, memorySteps: Int)] = [
    ("digits MLP 64-128-64-10 b32", [64, 128, 64, 10], 32, 10_000),
    ("MNIST MLP 784-256-128-10 b128", [784, 256, 128, 10], 128, 10_000),
    ("deep MLP 20x64 b64", [64] + Array(repeating: 64, count: 20) + [10], 64, 10_000),
    ("wide MLP 1024x4-10 b256", [1024, 1024, 1024, 1024, 10], 256, 1_000),
]

/// Resident and peak resident memory of this process, in bytes (/proc/self/status).
func memoryUsage() -> (resident: Int, peak: Int) {
    guard let file = fopen("/proc/self/status", "r") else { return (0, 0) }
    defer { fclose(file) }
    var resident = 0, peak = 0
    var line = [CChar](repeating: 0, count: 256)
    while fgets(&line, 256, file) != nil {
        let text = String(decoding: line.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        let kilobytes = Int(text.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first ?? "") ?? 0
        if text.hasPrefix("VmRSS:") { resident = kilobytes * 1024 }
        if text.hasPrefix("VmHWM:") { peak = kilobytes * 1024 }
    }
    return (resident, peak)
}

/// One training step of a ReLU MLP with layer sizes `sizes` on fixed random
/// data of `batch` examples: zero the gradients, forward, softmax
/// cross-entropy, backward, and an Adam step fused with global-norm clipping at 1.
func makeTrainingStep(sizes: [Int], batch: Int) -> () -> Void {
    manualSeed(1)
    var layers: [any Layer] = []
    for i in 0..<(sizes.count - 1) {
        layers.append(Linear(inputSize: sizes[i], outputSize: sizes[i + 1]))
        if i < sizes.count - 2 { layers.append(ReLU()) }
    }
    let model = Sequential(layers)
    let optimizer = Adam(model.parameters, learningRate: 1e-3)
    var generator = SeededGenerator(seed: 2)
    let x = Tensor(randomNormal: [batch, sizes[0]], using: &generator)
    let labels = (0..<batch).map { _ in Int.random(in: 0..<10, using: &generator) }
    return {
        optimizer.zeroGradients()
        softmaxCrossEntropy(logits: model(x), labels: labels).backward()
        optimizer.step(clippingGradientNorm: 1)
    }
}

func endToEndSteps() {
    for workload in stepWorkloads {
        let name = "step " + workload.name
        guard selected(name) else { continue }
        for backend in KernelBackend.allCases where onlyBackend.map({ $0 == backend }) ?? true {
            Kernels.withBackend(backend) {
                let step = makeTrainingStep(sizes: workload.sizes, batch: workload.batch)
                let t = time(budget: backend == .swift ? options.budget / 2 : options.budget, step)
                record(.init(name: name, variant: backend.rawValue, median: t.median, minimum: t.minimum, unit: .operations, work: 1))
                // Steady state allocates nothing new: resident memory after 10% of the steps and at the end.
                guard backend == .c, !options.quick else { return }
                let total = workload.memorySteps
                for _ in 0..<(total / 10) { step() }
                let early = memoryUsage().resident
                for _ in (total / 10)..<total { step() }
                let (late, peak) = memoryUsage()
                if !options.json {
                    print("  memory: resident \(format3(Double(early) / 1048576)) MiB after \(total / 10) steps, \(format3(Double(late) / 1048576)) MiB after \(total) (\(late - early >= 0 ? "+" : "")\(format3(Double(late - early) / 1024)) KiB); process peak \(format3(Double(peak) / 1048576)) MiB")
                }
            }
        }
    }
}

// ------------------------------------------------------------------ recurrent layers

/// LSTM and GRU: one step's gate arithmetic as the fused kernels against the
/// same arithmetic as recorded tensor operations (forward and backward, batch
/// 32, hidden 128), then whole layers (batch 32, 32 steps, 64 inputs, hidden
/// 128, forward and backward) against their step-by-step composition. Each
/// pair is checked to agree before it is timed.
func recurrentLayers() {
    for (label, cell) in [("LSTM", RecurrentCell.lstm), ("GRU", .gru), ("RNN", .elmanTanh)] {
        let step = cell == .elmanTanh ? nil : GatedStepBenchmark(cell, batch: 32, hidden: 128)
        let layerName = "\(label) layer b32 t32 64-128 fwd+bwd"
        let layer: any Layer = switch cell {
        case .lstm: LSTM(inputSize: 64, hiddenSize: 128)
        case .gru: GRU(inputSize: 64, hiddenSize: 128)
        case .elmanTanh, .elmanReLU: RNN(inputSize: 64, hiddenSize: 128)
        }
        var generator = SeededGenerator(seed: 3)
        let x = Tensor(randomNormal: [32, 32, 64], using: &generator), w = Tensor(randomNormal: [32, 32, 128], using: &generator)
        func pass(fused: Bool) -> [Float] {
            let outputs: Tensor = switch layer {
            case let lstm as LSTM: fused ? lstm.run(x).outputs : lstm.unfusedRun(x).outputs
            case let gru as GRU: fused ? gru.run(x).outputs : gru.unfusedRun(x).outputs
            case let rnn as RNN: fused ? rnn.run(x).outputs : rnn.unfusedRun(x).outputs
            default: fatalError("gradkit-bench: not a recurrent layer")
            }
            (outputs * w).sum().backward()
            for p in layer.parameters { p.gradient = nil }
            return outputs.scalars
        }
        var cases: [(String, () -> Void, () -> Void)] = [(layerName, { consume(pass(fused: true)) }, { consume(pass(fused: false)) })]
        if let step { cases.insert(("\(label) step b32 h128 gates fwd+bwd", { consume(step.fused()) }, { consume(step.composed()) }), at: 0) }
        for (name, fused, composed) in cases {
            guard selected(name) else { continue }
            for backend in KernelBackend.allCases where onlyBackend.map({ $0 == backend }) ?? true {
                Kernels.withBackend(backend) {
                    let agree = name == layerName
                        ? zip(pass(fused: true), pass(fused: false)).allSatisfy { Swift.abs($0 - $1) <= 1e-4 }
                        : zip(step!.fused().inputGatesGradient, step!.composed().inputGatesGradient).allSatisfy { (a: Float, b: Float) in Swift.abs(a - b) <= 1e-5 }
                    guard agree else { fatalError("gradkit-bench: \(name): fused and composed disagree (\(backend))") }
                    let a = time(budget: options.budget, fused), b = time(budget: options.budget, composed)
                    record(.init(name: name, variant: "fused \(backend)", median: a.median, minimum: a.minimum, unit: .operations, work: 1))
                    record(.init(name: name, variant: "ops \(backend)", median: b.median, minimum: b.minimum, unit: .operations, work: 1))
                    if !options.json { print("  fused: \(format3(b.median / a.median))x the composed operations' speed (medians, \(backend))") }
                }
            }
        }
    }
}

/// The benchmarks the arguments select, on this (the main) thread.
@MainActor func runSelected() {
    if distributed { runDistributedBenchmark(steps: quick ? 10 : 30) }
    if roofline {
        runRoofline()
        exit(0)
    }

    autogradOverhead()
    kernels()
    optimizers()
    subnormalOptimizers()
    trainingStep()
    endToEndSteps()
    recurrentLayers()
    if results.isEmpty, let filter = options.filter { usageError("no benchmark's name contains \(filter)") }

    if json {
        let items = results.map { m in
            "{\"name\": \(jsonString(m.name)), \"variant\": \(jsonString(m.variant)), \"median_s\": \(m.median), "
                + "\"min_s\": \(m.minimum), \"unit\": \(jsonString(m.unit.rawValue)), \"value\": \(m.throughput)"
                + (m.roofline.map { ", \"axpy_gbps\": \($0.0), \"axpy_fraction\": \($0.1)" } ?? "") + "}"
        }
        print("{\"context\": \(jsonString(Kernels.summary)), \"results\": [\n  " + items.joined(separator: ",\n  ") + "\n]}")
    }
}

Kernels.withBFloat16DotProduct(bf16Dot) { runSelected() }
