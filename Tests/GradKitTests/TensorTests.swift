// The Tensor type: creation, access, value semantics, reproducible randomness.
#if canImport(Glibc)
import Glibc
#endif
import Testing

@testable import GradKit

@Suite("Tensor")
struct TensorTests {
    @Test("creation and access")
    func creation() {
        let x = Tensor(shape: [2, 3], scalars: [1, 2, 3, 4, 5, 6])
        #expect(x.shape == [2, 3] && x.rank == 2 && x.scalarCount == 6)
        #expect(x.scalars == [1, 2, 3, 4, 5, 6])
        #expect(x[1, 2] == 6 && x[0, 1] == 2)
        #expect(Tensor(zeros: [2, 2]).scalars == [0, 0, 0, 0])
        #expect(Tensor(ones: [3]).scalars == [1, 1, 1])
        #expect(Tensor(shape: [2], repeating: 7).scalars == [7, 7])
        #expect(Tensor(4).shape == [] && Tensor(4).scalar == 4)
        #expect(Tensor([1, 2, 3]).shape == [3])
        #expect(Tensor([[1, 2], [3, 4], [5, 6]]).shape == [3, 2])
        #expect(Tensor(zeros: [0, 4]).scalarCount == 0)
        #expect(Tensor(zeros: [2, 1, 2, 1]).rank == 4)
        #expect(x == Tensor([[1, 2, 3], [4, 5, 6]]))
        #expect(x != x.reshaped(to: [3, 2]))
        #expect(x.description == "Tensor(shape: [2, 3], [[1, 2, 3], [4, 5, 6]])")
    }

    @Test("buffers are 64-byte aligned")
    func alignment() {
        for n in enumeratedSizes + [1000, 100_000] {
            let t = Tensor(zeros: [n])
            t.withUnsafeBufferPointer { buffer in
                if let base = buffer.baseAddress { #expect(Int(bitPattern: base) % 64 == 0) }
            }
        }
    }

    @Test("copy-on-write: copies are independent")
    func copyOnWrite() {
        let a = Tensor(shape: [3], scalars: [1, 2, 3])
        var b = a
        b.withUnsafeMutableBufferPointer { $0[1] = 20 }
        #expect(a.scalars == [1, 2, 3])
        #expect(b.scalars == [1, 20, 3])
        let c = a.reshaped(to: [1, 3]) // shares memory, never written
        #expect(c.scalars == [1, 2, 3])
    }

    @Test("arithmetic and reductions against hand-computed values")
    func values() {
        let x = Tensor([[1, 2, 3], [4, 5, 6]])
        let row = Tensor([10, 20, 30])
        #expect((x + row).scalars == [11, 22, 33, 14, 25, 36])
        #expect((x * Tensor([[2], [3]])).scalars == [2, 4, 6, 12, 15, 18])
        #expect((x - 1).scalars == [0, 1, 2, 3, 4, 5])
        #expect((12 / x).scalars == [12, 6, 4, 3, 2.4, 2])
        #expect(x.sum().scalar == 21)
        #expect(x.sum(alongAxes: 0).shape == [1, 3] && x.sum(alongAxes: 0).scalars == [5, 7, 9])
        #expect(x.sum(squeezingAxes: 1).scalars == [6, 15])
        #expect(x.mean().scalar == 3.5)
        #expect(x.max(squeezingAxes: 0).scalars == [4, 5, 6])
        #expect(x.min().scalar == 1)
        #expect(x.transposed().scalars == [1, 4, 2, 5, 3, 6])
        #expect(x.matmul(x.transposed()).scalars == [14, 32, 32, 77])
        #expect(x.argmax(alongAxis: 1) == [2, 2])
        #expect(Tensor([[3, 1], [0, 9], [2, 2]]).argmax() == [0, 1, 0])
        #expect(x.rows(1..<2).scalars == [4, 5, 6])
        #expect(x.rows(at: [1, 1, 0]).scalars == [4, 5, 6, 4, 5, 6, 1, 2, 3])
        #expect(maximum(x, Tensor(3)).scalars == [3, 3, 3, 4, 5, 6])
        #expect(x.clamped(min: 2, max: 4).scalars == [2, 2, 3, 4, 4, 4])
        #expect(Tensor([-1, 0, 2]).relu().scalars == [0, 0, 2])
        #expect(x.transposed(permutation: [1, 0]) == x.transposed())
        #expect(Tensor(shape: [2, 2, 2], scalars: (0..<8).map(Float.init)).transposed(permutation: [2, 0, 1]).scalars
            == [0, 2, 4, 6, 1, 3, 5, 7])
    }

    @Test("softmax is stable for large logits and sums to one")
    func softmaxStable() {
        let logits = Tensor([[1000, 1001, 1002], [-1000, 0, 1000]])
        let p = logits.softmax()
        #expect(p.scalars.allSatisfy { $0.isFinite })
        expectClose(p.sum(squeezingAxes: 1).scalars, [1, 1], relative: 1e-6)
        // softmax(x + c) == softmax(x): the first row is softmax([0, 1, 2]).
        let e = [1.0, 2.718281828459045, 7.38905609893065], total = e.reduce(0, +)
        expectClose(Array(p.scalars[0..<3]), e.map { Float($0 / total) }, relative: 1e-6)
        // log-softmax directly, in Double: x - max - log(sum exp(x - max)), finite
        // even where softmax underflows to 0.
        let shiftRow0 = 1000 + Glibc.log(total), shiftRow1 = 1000 + Glibc.log(1 + Glibc.exp(-1000.0) + Glibc.exp(-2000.0))
        let expectedLog: [Double] = [1000 - shiftRow0, 1001 - shiftRow0, 1002 - shiftRow0, -1000 - shiftRow1, -shiftRow1, 1000 - shiftRow1]
        expectClose(logits.logSoftmax().scalars, expectedLog.map { Float($0) }, relative: 1e-6, absolute: 1e-5)
        // Cross-entropy of a confident correct prediction is ~0, of a wrong one ~2000.
        let loss = softmaxCrossEntropy(logits: logits, labels: [2, 0]).scalar
        expectClose([loss], [(0.40760596 + 2000) / 2], relative: 1e-6)
    }

    @Test("SeededGenerator reproduces the reference xoshiro256** stream")
    func seededGenerator() {
        // Golden values from Tests/Fixtures/xoshiro_reference.py (an independent
        // Python implementation of SplitMix64 seeding and xoshiro256**).
        var generator = SeededGenerator(seed: 42)
        let first = (0..<4).map { _ in generator.next() }
        #expect(first == [XoshiroReference.seed42[0], XoshiroReference.seed42[1], XoshiroReference.seed42[2], XoshiroReference.seed42[3]])
        var a = SeededGenerator(seed: 7), b = SeededGenerator(seed: 7)
        #expect(Tensor(randomNormal: [100], using: &a) == Tensor(randomNormal: [100], using: &b))
        let resumed = SeededGenerator(state: a.stateWords)
        #expect(resumed == a)
    }

    @Test("random tensors have the requested distribution")
    func randomDistributions() {
        var generator = SeededGenerator(seed: 3)
        let normal = Tensor(randomNormal: [100_000], mean: 2, standardDeviation: 3, using: &generator)
        let values = normal.scalars.map(Double.init)
        let mean = values.reduce(0, +) / Double(values.count)
        let variance = values.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(values.count - 1)
        // Standard errors: 3/sqrt(1e5) = 0.0095 for the mean, ~0.04 for the variance of 9.
        #expect(Swift.abs(mean - 2) < 0.05)
        #expect(Swift.abs(variance - 9) < 0.2)
        let uniform = Tensor(randomUniform: [100_000], lowerBound: -1, upperBound: 3, using: &generator).scalars
        #expect(uniform.allSatisfy { $0 >= -1 && $0 < 3 })
        let uniformMean: Double = uniform.map(Double.init).reduce(0, +) / 1e5
        #expect(Swift.abs(uniformMean - 1) < 0.02)
        // The deterministic logarithm behind the normal sampler.
        for x in [1e-300, 1e-5, 0.3, 0.5, 1, 1.5, 2, 10, 1e10] {
            let error: Double = Swift.abs(Sampling.naturalLog(x) - Glibc.log(x))
            let allowed: Double = 1e-15 * Swift.max(1, Swift.abs(Glibc.log(x)))
            #expect(error <= allowed, "ln \(x)")
        }
    }

    @Test("sums do not depend on the thread count")
    func deterministicSums() {
        withExclusiveThreadCount {
            let x = randomTensor([1_000_003], seed: 8, in: -100...100)
            var results: [Float] = []
            for threads in [1, 2, 3, 5] {
                Kernels.threadCount = threads
                results.append(Kernels.withBackend(.c) { x.sum().scalar })
            }
            results.append(Kernels.withBackend(.swift) { x.sum().scalar })
            #expect(Set(results.map(\.bitPattern)).count == 1, "\(results)")
        }
    }
}
