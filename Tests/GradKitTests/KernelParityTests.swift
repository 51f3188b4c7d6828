// C kernels vs their pure-Swift twins, on every instruction-set path.
import Testing

@testable import GradKit

/// Input range, scalars, and whether the op is exact, for each unary op.
///
/// Exact ops (one IEEE operation or a comparison) must match the Swift twin bit
/// for bit. The transcendental ones are vectorizable approximations in C and
/// double-precision libm rounded once in Swift; the C result must lie within
/// 4 ulp of the twin's (3 ulp claimed in ck_elementwise.h, plus the twin's own
/// half ulp), scaled by the condition number where it exceeds 1.
private func unaryCase(_ op: UnaryOperation) -> (range: ClosedRange<Float>, a: Float, b: Float, exact: Bool) {
    switch op {
    case .negate, .abs, .square, .relu, .addScalar, .rsubScalar: (-4...4, 0.75, 0, true)
    case .mulScalar, .divScalar, .rdivScalar: (-4...4, -1.7, 0, true)
    case .leakyRelu: (-4...4, 0.01, 0, true)
    case .clamp: (-4...4, -0.5, 0.75, true)
    case .sqrt: (0...9, 0, 0, true)
    case .pow: (0.05...4, 2.5, 0, true) // powf on both sides
    case .log: (0.001...50, 0, 0, false)
    case .exp: (-20...20, 0, 0, false)
    case .sigmoid, .tanh: (-12...12, 0, 0, false)
    case .elu: (-6...4, 1.3, 0, false)
    case .gelu, .geluTanh: (-7...6, 0, 0, false)
    case .softplus: (-25...25, 1.5, 20, false)
    }
}

/// Special inputs every map must handle like the reference: signed zeros,
/// infinities, NaN, huge and tiny magnitudes, and the edges of exp's range.
private let specialInputs: [Float] = [
    0, -0.0, .infinity, -.infinity, .nan, 1e-30, -1e-30, 1e30, -1e30, 88.7, 88.8, -87.3, -103.9, -150, 1,
    Float.leastNonzeroMagnitude, Float.greatestFiniteMagnitude,
]
@Suite("C kernels agree with their Swift twins")
struct KernelParityTests {
    @Test("unary maps, every op, size and ISA", arguments: UnaryOperation.allCases)
    func unaryMaps(op: UnaryOperation) {
        let spec = unaryCase(op)
        for n in enumeratedSizes + [70_001, specialInputs.count] {
            let x = n == specialInputs.count ? specialInputs : randomScalars(n, seed: UInt64(n) &+ 11, in: spec.range)
            let reference = output(count: n, backend: .swift) { y in
                Kernels.unary(op, count: n, output: y, input: x, a: spec.a, b: spec.b)
            }
            // f'(x) from the twin, for the condition number |x f'(x) / f(x)|.
            let ones = [Float](repeating: 1, count: n)
            let slope = output(count: n, backend: .swift) { dx in
                Kernels.unaryBackward(
                    op, count: n, inputGradient: dx, outputGradient: ones, input: x, output: reference, a: spec.a,
                    b: spec.b)
            }
            forEachInstructionSet { isa in
                let fast = output(count: n, backend: .c) { y in
                    Kernels.unary(op, count: n, output: y, input: x, a: spec.a, b: spec.b)
                }
                if spec.exact {
                    expectIdentical(fast, reference, "\(op) n=\(n) \(isa)")
                    return
                }
                for i in 0..<n {
                    let condition = Double(Swift.abs(x[i] * slope[i] / reference[i]))
                    let allowed = 4 * Swift.max(1, condition.isFinite ? condition : 1)
                    let error = ulpDistance(fast[i], Double(reference[i]))
                    #expect(error <= allowed, "\(op)(\(x[i])) = \(fast[i]), reference \(reference[i]): \(error) ulp, allowed \(allowed) (\(isa))")
                    if !(error <= allowed) { return }
                }
            }
        }
    }

    @Test("unary pullbacks, every op, size and ISA", arguments: UnaryOperation.allCases)
    func unaryPullbacks(op: UnaryOperation) {
        let spec = unaryCase(op)
        for n in enumeratedSizes + [70_001] {
            let x = randomScalars(n, seed: UInt64(n) &+ 23, in: spec.range)
            let dy = randomScalars(n, seed: UInt64(n) &+ 29)
            // The forward output both sides read is the Swift twin's.
            let y = output(count: n, backend: .swift) { y in
                Kernels.unary(op, count: n, output: y, input: x, a: spec.a, b: spec.b)
            }
            let reference = output(count: n, backend: .swift) { dx in
                Kernels.unaryBackward(
                    op, count: n, inputGradient: dx, outputGradient: dy, input: x, output: y, a: spec.a, b: spec.b)
            }
            forEachInstructionSet { isa in
                let fast = output(count: n, backend: .c) { dx in
                    Kernels.unaryBackward(
                        op, count: n, inputGradient: dx, outputGradient: dy, input: x, output: y, a: spec.a,
                        b: spec.b)
                }
                // Derivatives built from an approximated function (gelu's erfc,
                // softplus's sigmoid, elu's exp) differ from libm's by the same few
                // ulp, measured relative to |dy| (their values can cancel to ~0).
                expectClose(fast, reference, relative: spec.exact ? 0 : 4e-6, absolute: spec.exact ? 0 : 1e-7, "\(op) n=\(n) \(isa)")
            }
        }
    }

    /// Shapes whose broadcasting exercises every row variant of the kernel:
    /// both contiguous, either operand broadcast, general strides, rank 0.
    static let broadcastPairs: [([Int], [Int])] = [
        ([17], [17]), ([257], [1]), ([1], [64]), ([], [3, 7]), ([3, 7], []),
        ([15, 16], [16]), ([16, 1], [1, 15]), ([7, 1, 3], [2, 3]), ([2, 1, 3, 1], [1, 4, 1, 5]),
        ([0, 3], [3]), ([64, 257], [64, 1]), ([3, 2, 17], [3, 1, 17]),
    ]

    @Test("broadcasting maps, every op and layout", arguments: BinaryOperation.allCases)
    func binaryMaps(op: BinaryOperation) {
        for (index, (shapeA, shapeB)) in Self.broadcastPairs.enumerated() {
            let range: ClosedRange<Float> = op == .pow ? 0.1...3 : -3...3
            var a = randomTensor(shapeA, seed: UInt64(index) * 2 + 1, in: range)
            let b = randomTensor(shapeB, seed: UInt64(index) * 2 + 2, in: op == .pow ? -2...2 : range)
            if op == .equal || op == .maximum || op == .minimum, a.shape == b.shape {
                a = b // ties
            }
            let reference = Kernels.withBackend(.swift) { Tensor.combined(op, a, b, name: "test") }.scalars
            forEachInstructionSet { isa in
                let fast = Kernels.withBackend(.c) { Tensor.combined(op, a, b, name: "test") }.scalars
                expectIdentical(fast, reference, "\(op) \(shapeA) \(shapeB) \(isa)")
            }
        }
    }

    @Test("broadcasting pullbacks, every differentiable op and layout",
          arguments: [BinaryOperation.mul, .div, .maximum, .minimum, .pow])
    func binaryPullbacks(op: BinaryOperation) {
        for (index, (shapeA, shapeB)) in Self.broadcastPairs.enumerated() {
            let range: ClosedRange<Float> = op == .pow ? 0.1...3 : -3...3
            let a = randomTensor(shapeA, seed: UInt64(index) + 101, in: range)
            let b = randomTensor(shapeB, seed: UInt64(index) + 202, in: op == .pow ? -2...2 : range)
            let out = Shape.broadcast(shapeA, shapeB, op: "test")
            let g = randomTensor(out, seed: UInt64(index) + 303)
            let y = Tensor.combined(op, a, b, name: "test")
            let layout = Tensor.broadcastLayout(out, shapeA, shapeB)
            func run(_ backend: KernelBackend) -> ([Float], [Float]) {
                let ga = Tensor(zeros: out), gb = Tensor(zeros: out)
                Kernels.withBackend(backend) {
                    Kernels.binaryBackward(
                        op, layout: layout, lhsGradient: ga.mutablePointer, rhsGradient: gb.mutablePointer,
                        outputGradient: g.pointer, lhs: a.pointer, rhs: b.pointer, output: y.pointer)
                }
                return withExtendedLifetime((a, b, g, y)) { (ga.scalars, gb.scalars) }
            }
            let reference = run(.swift)
            forEachInstructionSet { isa in
                let fast = run(.c)
                // pow's pullback calls powf/logf on both sides; the C side may fuse
                // the final multiply-adds (1 ulp).
                expectClose(fast.0, reference.0, relative: 3e-7, "\(op) lhs \(shapeA) \(shapeB) \(isa)")
                expectClose(fast.1, reference.1, relative: 3e-7, "\(op) rhs \(shapeA) \(shapeB) \(isa)")
            }
        }
    }

    @Test("reductions: sums bit-identical, extrema equal", arguments: ReductionOperation.allCases)
    func reductions(op: ReductionOperation) {
        var cases: [(outer: Int, extent: Int, inner: Int)] = []
        for n in enumeratedSizes { cases += [(1, n, 1), (3, n, 1), (2, n, 5), (1, n, 600)] }
        cases += [(1, 100_003, 1), (2, 70_000, 1), (300, 64, 1), (4, 1000, 17)]
        for (index, c) in cases.enumerated() {
            var x = randomScalars(c.outer * c.extent * c.inner, seed: UInt64(index) + 7, in: -10...10)
            if index % 9 == 5, !x.isEmpty { x[x.count / 2] = .nan }
            let count = c.outer * c.inner
            let reference = output(count: count, backend: .swift) { y in
                Kernels.reduce(op, outer: c.outer, extent: c.extent, inner: c.inner, output: y, input: x, scale: 0.5)
            }
            forEachInstructionSet { isa in
                let fast = output(count: count, backend: .c) { y in
                    Kernels.reduce(op, outer: c.outer, extent: c.extent, inner: c.inner, output: y, input: x, scale: 0.5)
                }
                // Sums: the same double additions in the same order on both sides
                // (see ck_reduce.h), so the bits match exactly.
                expectIdentical(fast, reference, "\(op) \(c) \(isa)")
            }
        }
    }

    @Test("softmax, log-softmax and their pullbacks")
    func softmaxFamily() {
        for logarithmic in [false, true] {
            for n in enumeratedSizes where n > 0 {
                for (outer, inner) in [(1, 1), (5, 1), (3, 4), (2, 1030)] where inner < 1000 || n < 20 {
                    let count = outer * n * inner
                    let x = randomScalars(count, seed: UInt64(n * 31 + inner), in: -30...30)
                    let dy = randomScalars(count, seed: UInt64(n * 37 + inner))
                    let ref = output(count: count, backend: .swift) { y in
                        Kernels.softmax(logarithmic: logarithmic, outer: outer, extent: n, inner: inner, output: y, input: x)
                    }
                    let refBack = output(count: count, backend: .swift) { dx in
                        Kernels.softmaxBackward(
                            logarithmic: logarithmic, outer: outer, extent: n, inner: inner, inputGradient: dx,
                            outputGradient: dy, output: ref)
                    }
                    forEachInstructionSet { isa in
                        let fast = output(count: count, backend: .c) { y in
                            Kernels.softmax(logarithmic: logarithmic, outer: outer, extent: n, inner: inner, output: y, input: x)
                        }
                        let fastBack = output(count: count, backend: .c) { dx in
                            Kernels.softmaxBackward(
                                logarithmic: logarithmic, outer: outer, extent: n, inner: inner, inputGradient: dx,
                                outputGradient: dy, output: ref)
                        }
                        // exp approximations (<= 3 ulp each) and differently ordered
                        // float sums of up to 257 terms: a few 1e-6 relative; log-softmax
                        // values near 0 get an absolute bound.
                        let context = "log=\(logarithmic) n=\(n) outer=\(outer) inner=\(inner) \(isa)"
                        expectClose(fast, ref, relative: 4e-6, absolute: 4e-6, context)
                        expectClose(fastBack, refBack, relative: 4e-6, absolute: 4e-6, context)
                    }
                }
            }
        }
    }

    @Test("fused softmax cross-entropy and its pullback")
    func crossEntropy() {
        for classes in enumeratedSizes where classes > 0 {
            for rows in [1, 3, 64] {
                let logits = randomScalars(rows * classes, seed: UInt64(classes * 7 + rows), in: -20...20)
                var generator = SeededGenerator(seed: UInt64(classes))
                let labels = (0..<rows).map { _ in Int(generator.next() % UInt64(classes)) }
                func run(_ backend: KernelBackend) -> ([Float], [Float], [Float]) {
                    var losses = [Float](repeating: 0, count: rows)
                    var probabilities = [Float](repeating: 0, count: rows * classes)
                    var gradient = [Float](repeating: 0, count: rows * classes)
                    Kernels.withBackend(backend) {
                        Kernels.softmaxCrossEntropy(
                            rows: rows, classes: classes, losses: &losses, probabilities: &probabilities,
                            logits: logits, labels: labels)
                        Kernels.softmaxCrossEntropyBackward(
                            rows: rows, classes: classes, logitsGradient: &gradient, probabilities: probabilities,
                            labels: labels, scale: 0.25)
                    }
                    return (losses, probabilities, gradient)
                }
                let reference = run(.swift)
                forEachInstructionSet { isa in
                    let fast = run(.c)
                    let context = "classes=\(classes) rows=\(rows) \(isa)"
                    // A loss is logsumexp - logit, which cancels to ~0 for a confident
                    // row: its error is absolute, a few ulp of the logits (|x| <= 20,
                    // ulp 2e-6). Probabilities: relative (exp approximations, sums).
                    // Gradients are scale * (p - 1) at the label, which cancels: a few
                    // ulp of 1, times the scale 0.25.
                    expectClose(fast.0, reference.0, relative: 4e-6, absolute: 8e-6, context)
                    expectClose(fast.1, reference.1, relative: 4e-6, absolute: 1e-9, context)
                    expectClose(fast.2, reference.2, relative: 4e-6, absolute: 0.25 * 4 * 1.2e-7, context)
                }
            }
        }
    }

    @Test("transposes, strided copies, gathers and scatters are exact")
    func layout() {
        for rows in enumeratedSizes {
            for columns in [1, 3, 16, 17] {
                for batch in [1, 2] {
                    let x = randomScalars(batch * rows * columns, seed: UInt64(rows * 100 + columns))
                    let count = x.count
                    let reference = output(count: count, backend: .swift) { y in
                        Kernels.transpose(batch: batch, rows: rows, columns: columns, output: y, input: x)
                    }
                    forEachInstructionSet { isa in
                        let fast = output(count: count, backend: .c) { y in
                            Kernels.transpose(batch: batch, rows: rows, columns: columns, output: y, input: x)
                        }
                        expectIdentical(fast, reference, "transpose \(batch)x\(rows)x\(columns) \(isa)")
                    }
                    // The definition, independently: y[b][c][r] == x[b][r][c].
                    var expected = [Float](repeating: 0, count: count)
                    for b in 0..<batch {
                        for r in 0..<rows {
                            for c in 0..<columns {
                                expected[b * rows * columns + c * rows + r] = x[b * rows * columns + r * columns + c]
                            }
                        }
                    }
                    expectIdentical(reference, expected, "transpose definition")
                }
            }
        }
        // Strided copies: permutations and broadcasts, including stride 0 rows.
        let source = randomScalars(2 * 3 * 17, seed: 5)
        let cases: [([Int], [Int])] = [([17, 3, 2], [1, 17, 51]), ([2, 17, 3], [51, 1, 17]), ([4, 3, 17], [0, 17, 1]),
                                       ([2, 3, 5], [51, 17, 0]), ([], [])]
        for (shape, strides) in cases {
            let count = Shape.count(shape)
            let reference = output(count: count, backend: .swift) { y in
                Kernels.stridedCopy(shape: shape, strides: strides, output: y, input: source)
            }
            let fast = output(count: count, backend: .c) { y in
                Kernels.stridedCopy(shape: shape, strides: strides, output: y, input: source)
            }
            expectIdentical(fast, reference, "strided copy \(shape) \(strides)")
        }
        // Gather and scatter-add with repeated rows.
        for columns in enumeratedSizes {
            let table = randomScalars(5 * columns, seed: UInt64(columns))
            let rows = [4, 0, 0, 2, 4, 4, 1]
            let gathered = output(count: rows.count * columns, backend: .c) { y in
                Kernels.gatherRows(count: rows.count, columns: columns, output: y, input: table, rows: rows)
            }
            let gatheredSwift = output(count: rows.count * columns, backend: .swift) { y in
                Kernels.gatherRows(count: rows.count, columns: columns, output: y, input: table, rows: rows)
            }
            expectIdentical(gathered, gatheredSwift, "gather columns=\(columns)")
            func scatter(_ backend: KernelBackend) -> [Float] {
                var y = [Float](repeating: 1, count: 5 * columns)
                Kernels.withBackend(backend) {
                    Kernels.scatterAddRows(count: rows.count, columns: columns, output: &y, input: gathered, rows: rows)
                }
                return y
            }
            expectIdentical(scatter(.c), scatter(.swift), "scatter columns=\(columns)")
        }
    }

    @Test("fill and axpy")
    func streaming() {
        for n in enumeratedSizes + [200_001] {
            let x = randomScalars(n, seed: UInt64(n))
            for backend in KernelBackend.allCases {
                let filled = output(count: n, backend: backend) { y in Kernels.fill(count: n, output: y, value: 2.5) }
                #expect(filled.allSatisfy { $0 == 2.5 })
                var y = randomScalars(n, seed: UInt64(n) + 1)
                let expected = zip(y, x).map { $0 + -0.5 * $1 }
                Kernels.withBackend(backend) { Kernels.axpy(count: n, output: &y, alpha: -0.5, input: x) }
                // y + a*x may be fused into one rounding in C: 1 ulp.
                expectClose(y, expected, relative: 1.2e-7, absolute: 1e-30, "axpy n=\(n) \(backend)")
            }
        }
    }

    @Test("maps in place give the bits they give out of place", arguments: UnaryOperation.allCases)
    func unaryInPlace(op: UnaryOperation) {
        let spec = unaryCase(op)
        for n in [1, 17, 4096, 70_001] {
            let x = randomScalars(n, seed: UInt64(n) &+ 31, in: spec.range)
            forEachInstructionSet { isa in
                let separate = output(count: n, backend: .c) { Kernels.unary(op, count: n, output: $0, input: x, a: spec.a, b: spec.b) }
                var inPlace = x
                Kernels.withBackend(.c) {
                    inPlace.withUnsafeMutableBufferPointer { Kernels.unary(op, count: n, output: $0.baseAddress!, input: $0.baseAddress!, a: spec.a, b: spec.b) }
                }
                expectIdentical(inPlace, separate, "\(op) n=\(n) \(isa)")
            }
        }
    }

    @Test("non-temporal stores write the same bits, at any alignment and thread count")
    func streamingStores() {
        // The output lands at every offset into a 64-byte line, so the normal
        // head, the streamed lines and the normal tail all vary.
        func run(_ n: Int, offset: Int, threshold: Int, _ body: (FloatPointer) -> Void) -> [Float] {
            let buffer = UnsafeMutablePointer<Float>.allocate(capacity: n + 16)
            defer { buffer.deallocate() }
            buffer.initialize(repeating: .nan, count: n + 16)
            Kernels.streamingStoreThreshold = threshold
            defer { Kernels.streamingStoreThreshold = Kernels.defaultStreamingStoreThreshold }
            Kernels.withBackend(.c) { body(buffer + offset) }
            return Array(UnsafeBufferPointer(start: buffer + offset, count: n))
        }
        func expectSame(_ label: String, _ n: Int, _ body: (FloatPointer) -> Void) {
            for offset in [0, 1, 7, 15] {
                let normal = run(n, offset: offset, threshold: .max, body)
                let streamed = run(n, offset: offset, threshold: 0, body)
                expectIdentical(streamed, normal, "\(label) n=\(n) offset=\(offset) \(Kernels.instructionSet) \(Kernels.threadCount) threads")
            }
        }
        withExclusiveThreadCount {
            for threads in [1, 2] {
                Kernels.threadCount = threads
                forEachInstructionSet { _ in
                    // Only the largest size is split over two threads (the kernels split at 2^13 elements or more).
                    for n in threads == 1 ? [1, 15, 17, 100, 1000, 70_001] : [70_001] {
                        let x = randomScalars(n, seed: UInt64(n) &+ 3)
                        let dy = randomScalars(n, seed: UInt64(n) &+ 4)
                        for op: UnaryOperation in [.relu, .mulScalar, .sigmoid, .gelu] {
                            expectSame("\(op)", n) { Kernels.unary(op, count: n, output: $0, input: x, a: 0.5) }
                            expectSame("\(op) pullback", n) {
                                Kernels.unaryBackward(op, count: n, inputGradient: $0, outputGradient: dy, input: x, output: x, a: 0.5)
                            }
                        }
                        expectSame("fill", n) { Kernels.fill(count: n, output: $0, value: -1.5) }
                        // Rows of every length, the bias broadcast along them, and one long row.
                        for columns in [1, 13, 16, 100, n] where n % columns == 0 {
                            let bias = randomScalars(columns, seed: 9)
                            let layout = StridedLayout(shape: [n / columns, columns], strides: [[columns, 1], [0, 1]])
                            expectSame("bias add \(columns) columns", n) {
                                Kernels.binary(.add, layout: layout, output: $0, lhs: x, rhs: bias)
                            }
                        }
                        let both = StridedLayout(shape: [n], strides: [[1], [1]])
                        expectSame("mul", n) { Kernels.binary(.mul, layout: both, output: $0, lhs: x, rhs: dy) }
                    }
                }
            }
        }
    }

    @Test("monitor statistics: moments, update size, saturation and dead-unit counts")
    func statistics() {
        for n in enumeratedSizes + [4095, 4096, 4097, 20_000] {
            let x = randomScalars(n, seed: UInt64(n) + 7, in: -3...3)
            let y = randomScalars(n, seed: UInt64(n) + 8, in: -3...3)
            // Exact references in double (Kahan is not needed: values are small and n modest).
            let sum = x.reduce(0.0) { $0 + Double($1) }, squares = x.reduce(0.0) { $0 + Double($1) * Double($1) }
            let change = zip(y, x).reduce(0.0) { $0 + (Double($1.0) - Double($1.1)) * (Double($1.0) - Double($1.1)) }
            let outside = x.filter { $0 < -2 || $0 > 1.5 }.count
            var results: [(Double, Double, Double, Double, Int)] = []
            forEachKernelPath { _ in
                x.withUnsafeBufferPointer { xs in
                    y.withUnsafeBufferPointer { ys in
                        let base = xs.baseAddress ?? UnsafePointer(bitPattern: 8)!, other = ys.baseAddress ?? UnsafePointer(bitPattern: 8)!
                        let m = Kernels.moments(count: n, base)
                        let c = Kernels.changeMoments(count: n, after: other, before: base)
                        results.append((m.sum, m.sumOfSquares, c.sumOfSquaredChanges, c.sumOfSquares, Kernels.countOutside(count: n, base, low: -2, high: 1.5)))
                    }
                }
            }
            for r in results {
                // Every ISA path and the twin follow one order: identical bits.
                #expect(r.0 == results[0].0 && r.1 == results[0].1 && r.2 == results[0].2 && r.3 == results[0].3 && r.4 == results[0].4, "n=\(n)")
            }
            let r = results[0]
            #expect(Swift.abs(r.0 - sum) <= 1e-12 * Swift.max(squares, 1) && Swift.abs(r.1 - squares) <= 1e-12 * Swift.max(squares, 1), "n=\(n)")
            // The update size sums in float lanes: relative error about n_lane * eps = 128 * 6e-8.
            #expect(Swift.abs(r.2 - change) <= 1e-5 * Swift.max(change, 1e-30) && Swift.abs(r.3 - squares) <= 1e-5 * Swift.max(squares, 1e-30), "n=\(n)")
            #expect(r.4 == outside)
        }
        for (rows, columns) in [(1, 1), (3, 5), (32, 128), (7, 1500)] {
            var y = randomScalars(rows * columns, seed: UInt64(rows * 31 + columns), in: -1...0.2)
            for c in stride(from: 0, to: columns, by: 3) { y[c] = 0.5 }  // every third column alive in row 0
            let dead = (0..<columns).filter { c in (0..<rows).allSatisfy { y[$0 * columns + c] <= 0 } }.count
            forEachKernelPath { path in
                let counted = y.withUnsafeBufferPointer { Kernels.countDeadColumns(rows: rows, columns: columns, $0.baseAddress!) }
                #expect(counted == dead, "\(rows)x\(columns) \(path)")
            }
        }
    }
}
