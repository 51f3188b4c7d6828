// The parallel-for primitive: any thread count, concurrent callers, nested use.
import Dispatch
import Testing

@testable import GradKit

@Suite("Threading")
struct ThreadingTests {
    @Test("results are the same for 1 to 4 threads")
    func threadCounts() {
        withExclusiveThreadCount {
            let x = randomTensor([513, 300], seed: 1, in: -3...3)
            let w = randomTensor([300, 257], seed: 2)
            func compute() -> [[Float]] {
                Kernels.withBackend(.c) {
                    [x.tanh().scalars, (x * 2 + x).scalars, x.softmax().scalars, x.matmul(w).scalars,
                     x.sum(alongAxes: 0).scalars, x.max(alongAxes: 1).scalars, x.transposed().scalars]
                }
            }
            Kernels.threadCount = 1
            let reference = compute()
            for threads in [2, 3, 4] {
                Kernels.threadCount = threads
                let result = compute()
                for (a, b) in zip(result, reference) { expectIdentical(a, b, "threads \(threads)") }
            }
            #expect(Kernels.threadCount == 4)
            Kernels.threadCount = 0
            #expect(Kernels.threadCount >= 1, "0 restores the default")
        }
    }

    @Test("concurrent callers from several threads get correct results")
    func concurrentCallers() {
        let x = randomTensor([400_000], seed: 3, in: -3...3)
        let a = randomTensor([200, 300], seed: 4), b = randomTensor([300, 100], seed: 5)
        let expectedTanh = x.tanh().scalars, expectedProduct = a.matmul(b).scalars
        nonisolated(unsafe) var failures = 0
        let lock = DispatchSemaphore(value: 1)
        DispatchQueue.concurrentPerform(iterations: 8) { i in
            // While one caller holds the pool, the others run on their own thread.
            let ok = i % 2 == 0 ? x.tanh().scalars == expectedTanh : a.matmul(b).scalars == expectedProduct
            if !ok {
                lock.wait()
                failures += 1
                lock.signal()
            }
        }
        #expect(failures == 0)
    }
}
