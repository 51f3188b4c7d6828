// SGEMM: the blocked C kernel (every ISA path) and the Swift twin against the
// triple-loop reference, with a rigorous error bound, and by projection.
import Testing

@testable import GradKit

private struct GEMMCase: CustomStringConvertible {
    var transposeA: Bool, transposeB: Bool
    var m: Int, n: Int, k: Int
    var alpha: Float, beta: Float
    /// Extra elements between rows of every operand (odd leading dimensions).
    var pad: Int
    /// Whether the Swift twin runs it too (the C kernel runs every case on every ISA path).
    var twin = true

    var description: String {
        "\(transposeA ? "T" : "N")\(transposeB ? "T" : "N") m=\(m) n=\(n) k=\(k) alpha=\(alpha) beta=\(beta) pad=\(pad)"
    }

    var lda: Int { (transposeA ? m : k) + pad }
    var ldb: Int { (transposeB ? k : n) + pad }
    var ldc: Int { n + pad }
    var aCount: Int { (transposeA ? k : m) * lda }
    var bCount: Int { (transposeB ? n : k) * ldb }
    var cCount: Int { m * ldc }
}

private func run(
    _ c: GEMMCase, _ a: [Float], _ b: [Float], _ c0: [Float], reference: Bool = false, bias: [Float]? = nil,
    relu: Bool = false
) -> [Float] {
    var out = c0
    out.withUnsafeMutableBufferPointer { cb in
        a.withUnsafeBufferPointer { ab in
            b.withUnsafeBufferPointer { bb in
                let ap = ab.baseAddress ?? UnsafePointer(bitPattern: 64)!, bp = bb.baseAddress ?? UnsafePointer(bitPattern: 64)!
                let cp = cb.baseAddress ?? UnsafeMutablePointer(bitPattern: 64)!
                if reference {
                    Kernels.gemmReference(
                        transposeA: c.transposeA, transposeB: c.transposeB, m: c.m, n: c.n, k: c.k, alpha: c.alpha,
                        a: ap, lda: c.lda, b: bp, ldb: c.ldb, beta: c.beta, c: cp, ldc: c.ldc)
                } else {
                    Kernels.gemm(
                        transposeA: c.transposeA, transposeB: c.transposeB, m: c.m, n: c.n, k: c.k, alpha: c.alpha,
                        a: ap, lda: c.lda, b: bp, ldb: c.ldb, beta: c.beta, c: cp, ldc: c.ldc, bias: bias, relu: relu)
                }
            }
        }
    }
    return out
}

/// Checks `actual` against the reference with the standard bound for a dot
/// product of length k in Float: |error| <= gamma_k (|alpha| |A||B| + |beta C0|)
/// with gamma_k = (k + 2) u, u = 2^-24 (Higham, Accuracy and Stability, 3.1).
/// The bound is computed with the same reference on absolute values.
private struct Expected {
    var reference: [Float], magnitude: [Float]

    init(_ c: GEMMCase, _ a: [Float], _ b: [Float], _ c0: [Float]) {
        reference = run(c, a, b, c0, reference: true)
        var magnitudeCase = c
        magnitudeCase.alpha = Swift.abs(c.alpha)
        magnitudeCase.beta = Swift.abs(c.beta)
        magnitude = run(
            magnitudeCase, a.map(Swift.abs), b.map(Swift.abs), c0.map { $0.isNaN ? 0 : Swift.abs($0) }, reference: true)
    }
}

private func check(_ c: GEMMCase, _ expected: Expected, _ c0: [Float], _ actual: [Float], _ label: String) {
    let reference = expected.reference, magnitude = expected.magnitude
    let gamma = Float(c.k + 2) * 0x1p-24
    #expect(actual.count == reference.count)
    for i in 0..<c.m {
        for j in 0..<c.n {
            let index = i * c.ldc + j
            let error = Swift.abs(actual[index] - reference[index])
            let allowed = gamma * magnitude[index] + Float.leastNormalMagnitude
            if !(error <= allowed) {
                Issue.record("\(label) \(c): C[\(i),\(j)] = \(actual[index]), reference \(reference[index]), bound \(allowed)")
                return
            }
        }
        // Padding between rows must be untouched.
        for j in c.n..<c.ldc where actual[i * c.ldc + j].bitPattern != c0[i * c.ldc + j].bitPattern {
            Issue.record("\(label) \(c): padding C[\(i),\(j)] was written")
            return
        }
    }
}

private func cases() -> [GEMMCase] {
    var result: [GEMMCase] = []
    let small = [0, 1, 2, 3, 7, 15, 16, 17]
    let scalars: [(Float, Float)] = [(1, 0), (-0.5, 1), (2, -0.75)]
    var index = 0
    for ta in [false, true] {
        for tb in [false, true] {
            for m in small {
                for n in small {
                    for k in small {
                        let (alpha, beta) = scalars[index % scalars.count]
                        result.append(.init(transposeA: ta, transposeB: tb, m: m, n: n, k: k, alpha: alpha, beta: beta, pad: index % 3))
                        index += 1
                    }
                }
            }
            // Larger shapes: 64 and 257 around every blocking edge (MR 4/6/12,
            // NR 8/16/32, MC 64-144, KC 256), the skinny shapes of MLP training,
            // threads (m n k >= 1e6), and more than one NC block (n > 2048).
            let large: [(Int, Int, Int)] = [
                (64, 257, 17), (257, 64, 257), (257, 257, 64), (1, 257, 64), (257, 1, 64), (64, 64, 257),
                (32, 1024, 64), (300, 130, 520), (145, 97, 300), (40, 2100, 30), (128, 128, 128),
            ]
            // The Swift twin (slow in debug builds) runs each large shape with one of the scalar
            // pairs, a different one from shape to shape and from layout to layout.
            for (shape, (m, n, k)) in large.enumerated() {
                for (pair, (alpha, beta)) in scalars.enumerated() {
                    result.append(.init(
                        transposeA: ta, transposeB: tb, m: m, n: n, k: k, alpha: alpha, beta: beta, pad: 3,
                        twin: (shape + (ta ? 1 : 0) + (tb ? 2 : 0)) % scalars.count == pair))
                }
            }
        }
    }
    return result
}

@Suite("SGEMM")
struct GEMMTests {
    @Test("C kernel on every ISA path and the Swift twin match the reference within the error bound")
    func againstReference() {
        for (index, c) in cases().enumerated() {
            let a = randomScalars(c.aCount, seed: UInt64(index * 3 + 1))
            let b = randomScalars(c.bCount, seed: UInt64(index * 3 + 2))
            var c0 = randomScalars(c.cCount, seed: UInt64(index * 3 + 3))
            if c.beta == 0 {
                // beta == 0 must not read C: NaN there must not reach the result.
                c0 = c0.enumerated().map { $0.offset % 5 == 0 ? .nan : $0.element }
            }
            let expected = Expected(c, a, b, c0)
            forEachInstructionSet { isa in
                let actual = Kernels.withBackend(.c) { run(c, a, b, c0) }
                check(c, expected, c0, actual, "C \(isa)")
            }
            if c.twin {
                let swift = Kernels.withBackend(.swift) { run(c, a, b, c0) }
                check(c, expected, c0, swift, "Swift")
            }
        }
    }

    @Test("projection: (A B) x equals A (B x) for random x", arguments: [KernelBackend.c, .swift])
    func projection(backend: KernelBackend) {
        for (m, n, k) in [(17, 15, 16), (64, 257, 257), (257, 64, 7), (300, 400, 530), (33, 2049, 65)] {
            for (ta, tb) in [(false, false), (false, true), (true, false), (true, true)] {
                // The Swift twin (slow in debug builds) runs the 64-million-product shape in one layout.
                if backend == .swift && m * n * k > 10_000_000 && (ta || tb) { continue }
                let c = GEMMCase(transposeA: ta, transposeB: tb, m: m, n: n, k: k, alpha: 1, beta: 0, pad: 0)
                let a = randomScalars(c.aCount, seed: UInt64(m + n))
                let b = randomScalars(c.bCount, seed: UInt64(n + k))
                let product = Kernels.withBackend(backend) { run(c, a, b, [Float](repeating: 0, count: c.cCount)) }
                let x = randomScalars(n, seed: 99).map(Double.init)
                func opA(_ i: Int, _ p: Int) -> Double { Double(ta ? a[p * c.lda + i] : a[i * c.lda + p]) }
                func opB(_ p: Int, _ j: Int) -> Double { Double(tb ? b[j * c.ldb + p] : b[p * c.ldb + j]) }
                var bx = [Double](repeating: 0, count: k), bxAbs = [Double](repeating: 0, count: k)
                for p in 0..<k {
                    for j in 0..<n {
                        bx[p] += opB(p, j) * x[j]
                        bxAbs[p] += Swift.abs(opB(p, j) * x[j])
                    }
                }
                for i in 0..<m {
                    var lhs = 0.0, rhs = 0.0, scale = 0.0
                    for j in 0..<n { lhs += Double(product[i * n + j]) * x[j] }
                    for p in 0..<k {
                        rhs += opA(i, p) * bx[p]
                        scale += Swift.abs(opA(i, p)) * bxAbs[p]
                    }
                    // Each C entry carries at most (k+2)u relative to its |A||B| sum.
                    let allowed = Double(k + 2) * 0x1p-24 * scale + 1e-12
                    if !(Swift.abs(lhs - rhs) <= allowed) {
                        Issue.record("\(backend) \(c): row \(i): (AB)x = \(lhs), A(Bx) = \(rhs), bound \(allowed)")
                        break
                    }
                }
            }
        }
    }

    @Test("the result does not depend on the thread count")
    func threadCountIndependent() {
        // Row splits with packed A (m = 300), and column splits whose parts pack
        // their own panels of B and read A's rows in place (m a multiple of 8, not
        // of 12): across k blocks, with partial column tiles, and past one NC block.
        let cases = [
            GEMMCase(transposeA: false, transposeB: true, m: 300, n: 310, k: 600, alpha: 1, beta: 0, pad: 1),
            GEMMCase(transposeA: false, transposeB: true, m: 128, n: 256, k: 300, alpha: 1, beta: 0, pad: 0),
            GEMMCase(transposeA: false, transposeB: false, m: 136, n: 200, k: 70, alpha: -0.5, beta: 1, pad: 3),
            GEMMCase(transposeA: false, transposeB: false, m: 16, n: 2100, k: 80, alpha: 1, beta: 0, pad: 0),
        ]
        withExclusiveThreadCount {
            for (index, c) in cases.enumerated() {
                let a = randomScalars(c.aCount, seed: UInt64(3 * index + 1)), b = randomScalars(c.bCount, seed: UInt64(3 * index + 2))
                let c0 = randomScalars(c.cCount, seed: UInt64(3 * index + 3))
                Kernels.threadCount = 1
                let one = Kernels.withBackend(.c) { run(c, a, b, c0) }
                // Every C element is one micro-kernel's dot product in a fixed k order,
                // whichever thread computes it.
                for threads in [2, 3] {
                    Kernels.threadCount = threads
                    let split = Kernels.withBackend(.c) { run(c, a, b, c0) }
                    expectIdentical(split, one, "threads \(threads) vs 1, \(c)")
                }
            }
        }
    }

    @Test("the fused bias epilogue rounds exactly as a GEMM followed by a bias add")
    func fusedBias() {
        for (index, (m, n, k)) in [(1, 1, 1), (5, 7, 3), (64, 64, 64), (64, 257, 17), (257, 64, 300), (33, 100, 520), (40, 2100, 30)].enumerated() {
            for (ta, tb) in [(false, false), (false, true), (true, false), (true, true)] {
                for (alpha, beta): (Float, Float) in [(1, 0), (-0.5, 1)] {
                    let c = GEMMCase(transposeA: ta, transposeB: tb, m: m, n: n, k: k, alpha: alpha, beta: beta, pad: 2)
                    let a = randomScalars(c.aCount, seed: UInt64(index * 7 + 1)), b = randomScalars(c.bCount, seed: UInt64(index * 7 + 2))
                    let c0 = randomScalars(c.cCount, seed: UInt64(index * 7 + 3)), bias = randomScalars(n, seed: UInt64(index * 7 + 4))
                    forEachKernelPath { path in
                        var expected = run(c, a, b, c0)
                        for i in 0..<m { for j in 0..<n { expected[i * c.ldc + j] = expected[i * c.ldc + j] + bias[j] } }
                        let fused = run(c, a, b, c0, bias: bias)
                        expectIdentical(fused, expected, "\(path) \(c)")
                    }
                }
            }
        }
    }

    @Test("the fused ReLU epilogue equals a GEMM with bias followed by the elementwise ReLU, NaN and -0 included")
    func fusedReLU() {
        for (index, (m, n, k)) in [(1, 1, 1), (3, 40, 5), (64, 64, 64), (64, 257, 17), (257, 64, 30), (33, 100, 52), (8, 2100, 3)].enumerated() {
            for (ta, tb) in [(false, false), (false, true), (true, false), (true, true)] {
                for (alpha, beta): (Float, Float) in [(1, 0), (-1, 0), (-0.5, 1), (0, 0)] {
                    let c = GEMMCase(transposeA: ta, transposeB: tb, m: m, n: n, k: k, alpha: alpha, beta: beta, pad: 1)
                    var a = randomScalars(c.aCount, seed: UInt64(index * 7 + 1)), b = randomScalars(c.bCount, seed: UInt64(index * 7 + 2))
                    // A NaN (its row or column of C becomes NaN) and a zero row of
                    // op(A): its dot products are +0, times alpha = -1 gives -0, plus
                    // a -0 bias stays -0, which the ReLU must turn into +0.
                    a[a.count / 2] = .nan
                    for p in 0..<k { a[ta ? p * c.lda : p] = 0 }
                    let c0 = randomScalars(c.cCount, seed: UInt64(index * 7 + 3))
                    var bias = randomScalars(n, seed: UInt64(index * 7 + 4))
                    for j in stride(from: 0, to: n, by: 2) { bias[j] = -0.0 }
                    forEachKernelPath { path in
                        let expected = run(c, a, b, c0, bias: bias)
                        let fused = run(c, a, b, c0, bias: bias, relu: true)
                        // The elementwise ReLU kernel on the unfused result (padding included: it is untouched by both).
                        let reference = Tensor(shape: [expected.count], scalars: expected).relu().scalars
                        var reluOfRows = expected
                        for i in 0..<m { for j in 0..<n { reluOfRows[i * c.ldc + j] = reference[i * c.ldc + j] } }
                        expectIdentical(fused, reluOfRows, "\(path) \(c)")
                    }
                }
            }
        }
    }

    @Test("a GEMM pair gives the two products of two gemm calls, bit for bit, run together or one after the other")
    func pairMatchesTwoCalls() {
        withExclusiveThreadCount {
            // A linear layer's dX = dY W (NN) and dW = dYᵀ X (TN): small (run one per
            // thread), odd-sized with beta = 1, and large (run one after the other).
            for (index, (rows, inputs, outputs)) in [(64, 64, 64), (7, 33, 19), (32, 128, 64), (160, 140, 120)].enumerated() {
                // Tensors, so the operand pointers stay valid across the calls.
                let dY = randomTensor([rows * outputs], seed: UInt64(index * 5 + 1))
                let w = randomTensor([outputs * inputs], seed: UInt64(index * 5 + 2))
                let x = randomTensor([rows * inputs], seed: UInt64(index * 5 + 3))
                let dX0 = randomScalars(rows * inputs, seed: UInt64(index * 5 + 4))
                let dW0 = randomScalars(outputs * inputs, seed: UInt64(index * 5 + 5))
                for beta: Float in [0, 1] {
                    for threads in [1, 2, 3] {
                        Kernels.threadCount = threads
                        // Every ISA path: a product run on a pool worker follows the caller's choice (the
                        // portable path rounds products apart, the others fuse them, so a worker on its own
                        // path would change the bits).
                        forEachKernelPath { path in
                            var pairX = dX0, pairW = dW0, singleX = dX0, singleW = dW0
                            func arguments(_ dX: FloatPointer, _ dW: FloatPointer) -> (GEMMArguments, GEMMArguments) {
                                (GEMMArguments(
                                    transposeA: false, transposeB: false, m: rows, n: inputs, k: outputs, alpha: 1,
                                    a: dY.pointer, lda: outputs, b: w.pointer, ldb: inputs, beta: beta, c: dX, ldc: inputs),
                                 GEMMArguments(
                                    transposeA: true, transposeB: false, m: outputs, n: inputs, k: rows, alpha: 1,
                                    a: dY.pointer, lda: outputs, b: x.pointer, ldb: inputs, beta: beta, c: dW, ldc: inputs))
                            }
                            withExtendedLifetime((dY, w, x)) {
                                pairX.withUnsafeMutableBufferPointer { px in
                                    pairW.withUnsafeMutableBufferPointer { pw in
                                        let (first, second) = arguments(px.baseAddress!, pw.baseAddress!)
                                        Kernels.gemmPair(first, second)
                                    }
                                }
                                singleX.withUnsafeMutableBufferPointer { sx in
                                    singleW.withUnsafeMutableBufferPointer { sw in
                                        let (first, second) = arguments(sx.baseAddress!, sw.baseAddress!)
                                        Kernels.gemm(first)
                                        Kernels.gemm(second)
                                    }
                                }
                            }
                            let label = "\(rows)x\(inputs)x\(outputs) beta=\(beta) threads=\(threads) \(path)"
                            expectIdentical(pairX, singleX, "dX " + label)
                            expectIdentical(pairW, singleW, "dW " + label)
                        }
                    }
                }
            }
        }
    }
}
