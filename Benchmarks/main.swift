// gradkit-bench — C vs pure-Swift kernels, and autograd bookkeeping.
// SPDX-License-Identifier: MIT
//
//   swift run -c release gradkit-bench [--filter NAME] [--threads N] [--json] [--quick]
//   swift run -c release --traits NativeOpenMP gradkit-bench
#if canImport(Glibc)
import Glibc
#endif
import GradKit

var arguments = Array(CommandLine.arguments.dropFirst())
var filter: String?
var json = false
var quick = false
while let argument = arguments.first {
    arguments.removeFirst()
    switch argument {
    case "--filter":
        guard let value = arguments.first else { fatalError("--filter needs a NAME") }
        filter = value
        arguments.removeFirst()
    case "--threads":
        guard let value = arguments.first, let count = Int(value), count > 0 else { fatalError("--threads needs a count") }
        Kernels.threadCount = count
        arguments.removeFirst()
    case "--json": json = true
    case "--quick": quick = true
    case "--help", "-h":
        print("usage: gradkit-bench [--filter NAME] [--threads N] [--json] [--quick]")
        exit(0)
    default:
        print("gradkit-bench: unknown argument \(argument) (see --help)")
        exit(2)
    }
}
let budget = quick ? 0.1 : 0.5

nonisolated(unsafe) var results: [Measurement] = []
let options = (filter: filter, json: json, budget: budget)

func selected(_ name: String) -> Bool { options.filter.map { name.contains($0) } ?? true }

func record(_ m: Measurement) {
    results.append(m)
    if !options.json {
        let figure = m.unit == .operations ? "\(format3(m.throughput)) ns/op" : "\(format3(m.throughput)) \(m.unit.rawValue)"
        print("\(padded(m.name, 34)) \(padded(m.variant, 10)) median \(padded(formatSeconds(m.median), 10)) min \(padded(formatSeconds(m.minimum), 10)) \(figure)")
    }
}

if !json {
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
    for backend in KernelBackend.allCases {
        let t = Kernels.withBackend(backend) { time(budget: options.budget, body) }
        record(.init(name: name, variant: backend.rawValue, median: t.median, minimum: t.minimum, unit: unit, work: work))
    }
}

func kernels() {
    var generator = SeededGenerator(seed: 2)
    for n in [64, 256, 1024] {
        let a = Tensor(randomNormal: [n, n], using: &generator), b = Tensor(randomNormal: [n, n], using: &generator)
        compareBackends("sgemm \(n)x\(n)x\(n)", unit: .flops, work: 2 * Double(n * n * n)) { consume(a.matmul(b)) }
    }
    let n = 1 << 22
    let x = Tensor(randomNormal: [n], using: &generator), y = Tensor(randomNormal: [n], using: &generator)
    let bytes = Double(n * 4)
    compareBackends("add 4M (read 2, write 1)", unit: .bytes, work: 3 * bytes) { consume(x + y) }
    compareBackends("tanh 4M (read 1, write 1)", unit: .bytes, work: 2 * bytes) { consume(x.tanh()) }
    compareBackends("sum 4M (read 1)", unit: .bytes, work: bytes) { consume(x.sum()) }
}

autogradOverhead()
kernels()

if json {
    let items = results.map { m in
        "{\"name\": \(jsonString(m.name)), \"variant\": \(jsonString(m.variant)), \"median_s\": \(m.median), "
            + "\"min_s\": \(m.minimum), \"unit\": \(jsonString(m.unit.rawValue)), \"value\": \(m.throughput)}"
    }
    print("{\"context\": \(jsonString(Kernels.summary)), \"results\": [\n  " + items.joined(separator: ",\n  ") + "\n]}")
}
