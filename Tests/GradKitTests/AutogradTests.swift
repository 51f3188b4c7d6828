// Tape semantics: what is recorded, how gradients accumulate, when the tape is released.
import Dispatch
import Testing

@testable import GradKit

@Suite("Autograd")
struct AutogradTests {
    @Test("d/dW sum(tanh(X W)) = Xᵀ (1 - tanh²(X W))", arguments: KernelBackend.allCases)
    func snippet(backend: KernelBackend) {
        Kernels.withBackend(backend) {
            let wValues: [Float] = [0.1, -0.2, 0.3, 0.4, -0.5, 0.6]
            let w = Parameter(Tensor(shape: [3, 2], scalars: wValues), name: "w")
            let x = Tensor(shape: [4, 3], scalars: (0..<12).map { Float($0) / 10 })
            let loss = x.matmul(w.value).tanh().sum()
            loss.backward()
            // The formula, in Double, independently of GradKit.
            var expected = [Double](repeating: 0, count: 6)
            var total = 0.0
            for i in 0..<4 {
                for j in 0..<2 {
                    var z = 0.0
                    for p in 0..<3 { z += Double(i * 3 + p) / 10 * Double(wValues[p * 2 + j]) }
                    let t = _tanh(z)
                    total += t
                    for p in 0..<3 { expected[p * 2 + j] += Double(i * 3 + p) / 10 * (1 - t * t) }
                }
            }
            expectClose(loss.scalars, [Float(total)], relative: 1e-6)
            expectClose(w.gradient!.scalars, expected.map(Float.init), relative: 1e-6)
            #expect(Tape.local.current.recordCount == 0, "backward releases the tape")
        }
    }

    @Test("gradients accumulate across backward calls until reset, as in PyTorch")
    func accumulation() {
        let w = Parameter(Tensor(shape: [2], scalars: [1, 2]))
        (w.value * 3).sum().backward()
        #expect(w.gradient!.scalars == [3, 3])
        (w.value * w.value).sum().backward() // d/dw w² = 2w, added
        #expect(w.gradient!.scalars == [5, 7])
        w.gradient = nil
        #expect(w.gradient == nil)
        (w.value * 3).sum().backward()
        #expect(w.gradient!.scalars == [3, 3])
    }

    @Test("fan-out: a parameter used several times receives the sum of its uses")
    func fanOut() {
        let w = Parameter(Tensor(shape: [1], scalars: [3]))
        let v = w.value
        (v * v * v + v).sum().backward() // 3 w² + 1 = 28
        #expect(w.gradient!.scalars == [28])
    }

    @Test("nothing is recorded without parameters, inside withoutGradients, or through detached()")
    func recordingScope() {
        let w = Parameter(Tensor(shape: [2], scalars: [1, 2]))
        let data = Tensor(shape: [2], scalars: [5, 6])
        #expect(!(data * 2).requiresGradient)
        #expect((w.value * 2).requiresGradient)
        #expect(isRecordingGradients)
        withoutGradients {
            #expect(!isRecordingGradients)
            #expect(!(w.value * 2).requiresGradient)
        }
        #expect(!w.value.detached().requiresGradient)
        // A detached branch contributes no gradient.
        let y = w.value * w.value.detached()
        y.sum().backward()
        #expect(w.gradient!.scalars == [1, 2])
    }

    @Test("a non-scalar result back-propagates a seed")
    func seed() {
        let w = Parameter(Tensor(shape: [2, 2], scalars: [1, 2, 3, 4]))
        let y = w.value * 2
        y.backward(seed: Tensor(shape: [2, 2], scalars: [1, 0, -1, 0.5]))
        #expect(w.gradient!.scalars == [2, 0, -2, 1])
        // A parameter's own value too.
        w.gradient = nil
        w.value.backward(seed: Tensor(ones: [2, 2]))
        #expect(w.gradient!.scalars == [1, 1, 1, 1])
    }

    @Test("forward passes that are never differentiated do not pile up on the tape")
    func sessionsEnd() {
        let w = Parameter(Tensor(shape: [4, 4], scalars: (0..<16).map(Float.init)))
        for _ in 0..<100 {
            let y = (w.value.matmul(w.value) + 1).tanh().sum()
            _ = y.scalar // evaluation only: y dies at the end of the iteration
        }
        // Each new forward pass finds the previous session dead and drops its
        // records: what remains is one pass (matmul, +, tanh, sum, reshape), not 100.
        #expect(Tape.local.current.recordCount <= 5)
        // A result that is still alive keeps its graph and can be differentiated.
        let kept = (w.value * 2).sum()
        _ = (w.value * 3).sum()
        kept.backward()
        #expect(w.gradient!.scalars == [Float](repeating: 2, count: 16))
    }

    @Test("results of a consumed tape are constants in later computations")
    func staleResults() {
        let w = Parameter(Tensor(shape: [1], scalars: [2]))
        let h = w.value * w.value
        h.sum().backward()
        #expect(w.gradient!.scalars == [4])
        #expect(!h.requiresGradient)
        w.gradient = nil
        (h * w.value).sum().backward() // h is now the constant 4
        #expect(w.gradient!.scalars == [4])
    }

    @Test("values are snapshots: later parameter updates do not change them")
    func valueSemantics() {
        let w = Parameter(Tensor(shape: [3], scalars: [1, 2, 3]))
        let before = w.value
        w.value = Tensor(shape: [3], scalars: [7, 8, 9])
        #expect(before.scalars == [1, 2, 3])
        #expect(w.value.scalars == [7, 8, 9])
        // A stale snapshot is a constant: no gradient reaches w through it.
        (before * w.value).sum().backward()
        #expect(w.gradient!.scalars == [1, 2, 3])
        var copy = w.value
        copy.withUnsafeMutableBufferPointer { $0[0] = -1 }
        #expect(w.value.scalars == [7, 8, 9])
    }

    @Test("a parameter bound to a flat buffer: writes move earlier readers onto private copies")
    func flatBufferViews() {
        final class Flat {
            let memory = UnsafeMutablePointer<Float>.allocate(capacity: 8)
            deinit { memory.deallocate() }
        }
        let flat = Flat()
        let w = Parameter(Tensor(shape: [2], scalars: [1, 2]))
        let b = Parameter(Tensor(shape: [3], scalars: [3, 4, 5]))
        let early = w.value
        w.bindValue(to: flat.memory, owner: flat)
        b.bindValue(to: flat.memory + 4, owner: flat)
        #expect(Array(UnsafeBufferPointer(start: flat.memory, count: 2)) == [1, 2])
        #expect(w.value.scalars == [1, 2] && b.value.scalars == [3, 4, 5])
        let held = w.value // shares the flat memory
        w.updateValue { $0[0] = 10 } // held is detached first
        #expect(held.scalars == [1, 2])
        #expect(early.scalars == [1, 2])
        #expect(w.value.scalars == [10, 2])
        #expect(flat.memory[0] == 10)
        // Gradients accumulate in the bound buffer.
        w.bindGradient(to: flat.memory + 6, owner: flat)
        (w.value * 3).sum().backward()
        #expect(flat.memory[6] == 3 && flat.memory[7] == 3)
        #expect(w.gradient!.scalars == [3, 3])
    }

    @Test("gradients written straight into an optimizer's flat buffer: the same bits as an unbound parameter's")
    func gradientsIntoFlatBuffer() {
        var generator = SeededGenerator(seed: 11)
        let weight = Tensor(randomNormal: [5, 4], using: &generator), bias = Tensor(randomNormal: [5], using: &generator)
        let x1 = Tensor(randomNormal: [6, 4], using: &generator), x2 = Tensor(randomNormal: [3, 4], using: &generator)
        let bound = (w: Parameter(weight), b: Parameter(bias)), free = (w: Parameter(weight), b: Parameter(bias))
        let optimizer = SGD([bound.w, bound.b], learningRate: 0.1) // binds values and gradients to its flat buffers
        // The weight and bias are used twice: the second contribution adds to the first one's buffer.
        func backward(_ p: (w: Parameter, b: Parameter)) {
            let y1 = linearReLU(x1, weight: p.w.value, bias: p.b.value)
            let y2 = linear(x2, weight: p.w.value, bias: p.b.value)
            ((y1 * y1).sum() + (y2 * 0.5).sum()).backward()
        }
        backward(bound)
        backward(free)
        #expect(bound.w.gradient!.scalars == free.w.gradient!.scalars)
        #expect(bound.b.gradient!.scalars == free.b.gradient!.scalars)
        let held = bound.w.gradient!
        // A second backward adds to the gradient there (PyTorch's accumulation).
        backward(bound)
        backward(free)
        #expect(bound.w.gradient!.scalars == free.w.gradient!.scalars)
        #expect(held.scalars != bound.w.gradient!.scalars)
        // After zeroing, the next backward writes afresh into the buffer (whose old
        // values must not leak in), and a gradient held from before keeps its values.
        let heldValues = held.scalars
        let viewing = bound.w.gradient! // shares the flat buffer's memory
        let viewingValues = viewing.scalars
        optimizer.zeroGradients()
        free.w.gradient = nil
        free.b.gradient = nil
        let afterZero = bound.w.gradient
        #expect(afterZero == nil)
        let kept = bound.b.registerGradientHook { _ in nil } // observes: the gradient goes through the hook path
        backward(bound)
        backward(free)
        #expect(held.scalars == heldValues)
        #expect(viewing.scalars == viewingValues)
        #expect(bound.w.gradient!.scalars == free.w.gradient!.scalars)
        #expect(bound.b.gradient!.scalars == free.b.gradient!.scalars)
        kept.remove()
        optimizer.step()
        #expect(bound.w.value.scalars != weight.scalars)
    }

    @Test("a hook registered or a gradient assigned while backward runs counts as it does for an unbound parameter")
    func changesDuringBackward() {
        let x = Tensor(shape: [2, 2], scalars: [1, 2, 3, 4])
        // w is used twice; the hook on the intermediate h runs between its two contributions.
        func gradient(bound: Bool, change: @escaping (Parameter) -> Void) -> [Float] {
            let w = Parameter(Tensor(shape: [2, 2], scalars: [0.5, -1, 2, 0.25]))
            let optimizer: SGD? = bound ? SGD([w], learningRate: 0.1) : nil
            let h = linear(x, weight: w.value) * 1
            h.registerGradientHook { _ in change(w); return nil }
            linear(h, weight: w.value).sum().backward()
            withExtendedLifetime(optimizer) {}
            return w.gradient!.scalars
        }
        let changes: [(String, (Parameter) -> Void)] = [
            ("a gradient hook", { $0.registerGradientHook { $0 * 0 } }),
            ("an assigned gradient", { $0.gradient = Tensor(ones: [2, 2]) }),
            ("a new optimizer", { _ = SGD([$0], learningRate: 0.1) }),
        ]
        for (name, change) in changes {
            #expect(gradient(bound: true, change: change) == gradient(bound: false, change: change), "\(name)")
        }
        #expect(gradient(bound: true) { $0.registerGradientHook { $0 * 0 } } == [0, 0, 0, 0])
    }

    @Test("a shared left factor times an empty batch has a zero gradient, not the last step's")
    func emptyBatchSharedLeft() {
        let a = Parameter(Tensor(shape: [2, 2], scalars: [1, 2, 3, 4]))
        let optimizer = SGD([a], learningRate: 0.1)
        a.value.matmul(Tensor(shape: [1, 2, 2], scalars: [1, 1, 1, 1])).sum().backward()
        #expect(a.gradient!.scalars == [2, 2, 2, 2])
        optimizer.zeroGradients()
        a.value.matmul(Tensor(zeros: [0, 2, 2])).sum().backward()
        #expect(a.gradient!.scalars == [0, 0, 0, 0])
    }

    @Test("a graph can be built on one thread and differentiated on another")
    func crossThread() {
        let w = Parameter(Tensor(shape: [2], scalars: [1, -1]))
        let loss = (w.value * w.value).sum()
        let done = DispatchSemaphore(value: 0)
        nonisolated(unsafe) let parameter = w
        DispatchQueue.global().async {
            let extended = loss * 3 // recorded on the tape that owns loss
            extended.backward()
            _ = parameter
            done.signal()
        }
        done.wait()
        #expect(w.gradient!.scalars == [6, -6])
    }

    @Test("both backends give the same gradients for a small network")
    func backendsAgree() {
        func gradients(_ backend: KernelBackend) -> [[Float]] {
            Kernels.withBackend(backend) {
                let w1 = Parameter(randomTensor([8, 16], seed: 1)), w2 = Parameter(randomTensor([16, 4], seed: 2))
                let x = randomTensor([32, 8], seed: 3)
                let labels = (0..<32).map { $0 % 4 }
                softmaxCrossEntropy(logits: x.matmul(w1.value).relu().matmul(w2.value), labels: labels).backward()
                return [w1.gradient!.scalars, w2.gradient!.scalars]
            }
        }
        let c = gradients(.c), swift = gradients(.swift)
        expectClose(c[0], swift[0], relative: 1e-5, absolute: 1e-7)
        expectClose(c[1], swift[1], relative: 1e-5, absolute: 1e-7)
    }
}

// tanh in Double without Foundation.
private func _tanh(_ x: Double) -> Double {
    let e = _exp(2 * x)
    return (e - 1) / (e + 1)
}

private func _exp(_ x: Double) -> Double {
    // exp via 2^n e^r with a Taylor series; |x| here is small.
    var term = 1.0, sum = 1.0
    for k in 1...30 {
        term *= x / Double(k)
        sum += term
    }
    return sum
}
