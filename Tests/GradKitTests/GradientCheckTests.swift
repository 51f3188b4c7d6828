// Finite-difference checks of every differentiable operation, on both backends.
import Testing

@testable import GradKit

private typealias Unary = (name: String, range: ClosedRange<Float>, apply: @Sendable (Tensor) -> Tensor)

private let unaryOperations: [Unary] = [
    ("negate", -2...2, { -$0 }),
    ("exp", -2...2, { $0.exp() }),
    ("log", 0.2...3, { $0.log() }),
    ("sqrt", 0.2...3, { $0.sqrt() }),
    ("abs", -2...2, { $0.abs() }),
    ("squared", -2...2, { $0.squared() }),
    ("pow 3", -2...2, { $0.pow(3) }),
    ("pow 0.5", 0.2...3, { $0.pow(0.5) }),
    ("pow -1.5", 0.3...3, { $0.pow(-1.5) }),
    ("pow 0", -1...1, { $0.pow(0) }),
    ("clamped", -1...1, { $0.clamped(min: -0.5, max: 0.5) }),
    ("sigmoid", -4...4, { $0.sigmoid() }),
    ("tanh", -3...3, { $0.tanh() }),
    ("relu", -2...2, { $0.relu() }),
    ("leakyRelu", -2...2, { $0.leakyRelu(negativeSlope: 0.1) }),
    ("elu", -2...2, { $0.elu(alpha: 1.3) }),
    ("gelu", -3...3, { $0.gelu() }),
    ("gelu tanh", -3...3, { $0.gelu(approximation: .tanh) }),
    ("softplus", -3...3, { $0.softplus(beta: 2, threshold: 20) }),
    ("softplus threshold", 1...3, { $0.softplus(beta: 2, threshold: 4) }),
    ("x + s", -2...2, { $0 + 2 }),
    ("s + x", -2...2, { 2 + $0 }),
    ("x - s", -2...2, { $0 - 2 }),
    ("s - x", -2...2, { 2 - $0 }),
    ("x * s", -2...2, { $0 * 3 }),
    ("s * x", -2...2, { 3 * $0 }),
    ("x / s", -2...2, { $0 / 3 }),
    ("s / x", 0.5...2, { 3 / $0 }),
]

private let broadcastShapes: [([Int], [Int])] = [
    ([3, 4], [3, 4]), ([3, 4], [4]), ([3, 1], [1, 4]), ([2, 3, 4], [3, 1]), ([], [3]), ([2, 1, 3], [2, 2, 1]),
]

private let binaryOperations: [(name: String, positive: Bool, apply: @Sendable (Tensor, Tensor) -> Tensor)] = [
    ("+", false, { $0 + $1 }), ("-", false, { $0 - $1 }), ("*", false, { $0 * $1 }),
    ("/", true, { $0 / $1 }), ("maximum", false, { maximum($0, $1) }), ("minimum", false, { minimum($0, $1) }),
    ("pow", true, { $0.pow($1) }),
]

private func expectPasses(
    _ result: GradientCheckResult, _ label: String, sourceLocation: SourceLocation = #_sourceLocation
) {
    #expect(result.passed, "\(label): \(result)", sourceLocation: sourceLocation)
    #expect(result.checkedCount > 0, "\(label): nothing was checked", sourceLocation: sourceLocation)
}

@Suite("gradientCheck on every differentiable operation")
struct GradientCheckTests {
    @Test("unary maps and scalar arithmetic", arguments: KernelBackend.allCases)
    func unary(backend: KernelBackend) {
        Kernels.withBackend(backend) {
            for (index, op) in unaryOperations.enumerated() {
                let x = randomTensor([3, 5], seed: UInt64(index) + 1, in: op.range)
                expectPasses(gradientCheck(at: [x]) { op.apply($0[0]) }, "\(op.name) \(backend)")
            }
        }
    }

    @Test("binary maps with broadcasting, gradients to both operands", arguments: KernelBackend.allCases)
    func binary(backend: KernelBackend) {
        Kernels.withBackend(backend) {
            for (opIndex, op) in binaryOperations.enumerated() {
                for (shapeIndex, (shapeA, shapeB)) in broadcastShapes.enumerated() {
                    let seed = UInt64(opIndex * 100 + shapeIndex * 2)
                    let range: ClosedRange<Float> = op.positive ? 0.5...2 : -2...2
                    let a = randomTensor(shapeA, seed: seed + 1, in: range)
                    var b = randomTensor(shapeB, seed: seed + 2, in: range)
                    if shapeA == shapeB, op.name == "maximum" || op.name == "minimum" {
                        // Some ties: a kink, where each side receives half the gradient.
                        var values = b.scalars
                        let aValues = a.scalars
                        for i in stride(from: 0, to: values.count, by: 3) { values[i] = aValues[i] }
                        b = Tensor(shape: shapeB, scalars: values)
                    }
                    expectPasses(gradientCheck(at: [a, b]) { op.apply($0[0], $0[1]) }, "\(op.name) \(shapeA) \(shapeB) \(backend)")
                }
            }
        }
    }

    @Test("reductions", arguments: KernelBackend.allCases)
    func reductions(backend: KernelBackend) {
        let cases: [(String, (Tensor) -> Tensor)] = [
            ("sum", { $0.sum() }), ("sum axis 0", { $0.sum(alongAxes: 0) }), ("sum axes 1 2", { $0.sum(alongAxes: 1, 2) }),
            ("sum squeezing -1", { $0.sum(squeezingAxes: -1) }), ("sum axes 0 2", { $0.sum(alongAxes: 0, 2) }),
            ("mean", { $0.mean() }), ("mean axis 1", { $0.mean(alongAxes: 1) }), ("mean squeezing 0", { $0.mean(squeezingAxes: 0) }),
            ("max", { $0.max() }), ("max axis 2", { $0.max(alongAxes: 2) }), ("max squeezing 0 1", { $0.max(squeezingAxes: 0, 1) }),
            ("min", { $0.min() }), ("min axis 1", { $0.min(alongAxes: 1) }),
        ]
        Kernels.withBackend(backend) {
            for (index, (name, f)) in cases.enumerated() {
                let x = randomTensor([2, 3, 4], seed: UInt64(index) + 40, in: -2...2)
                expectPasses(gradientCheck(at: [x]) { f($0[0]) }, "\(name) \(backend)")
            }
            // Ties in a maximum: the gradient is shared equally (a kink for the
            // finite differences, checked against the one-sided slopes).
            let tied = Tensor(shape: [2, 3], scalars: [1, 3, 3, -1, -1, 0.5])
            let result = gradientCheck(at: [tied]) { $0[0].max(alongAxes: 1) }
            expectPasses(result, "max with ties \(backend)")
            #expect(result.nonSmoothCount > 0)
        }
    }

    @Test("shape operations", arguments: KernelBackend.allCases)
    func shapes(backend: KernelBackend) {
        let cases: [(String, [Int], (Tensor) -> Tensor)] = [
            ("reshaped", [2, 6], { $0.reshaped(to: [3, -1]) * $0.reshaped(to: [3, 4]) }),
            ("transposed", [3, 5], { $0.transposed() * 2 }),
            ("batched transposed", [2, 3, 4], { $0.transposed().exp() }),
            ("permutation", [2, 3, 4], { $0.transposed(permutation: [2, 0, 1]).tanh() }),
            ("broadcasted", [3, 1], { $0.broadcasted(to: [2, 3, 4]).sigmoid() }),
            ("rows range", [5, 3], { $0.rows(1..<4).squared() }),
            ("rows at", [5, 3], { $0.rows(at: [4, 0, 4, 2]).squared() }),
            ("expanding", [3, 4], { $0.expandingShape(at: 1).sum(alongAxes: 1) }),
            ("squeezing", [3, 1, 4], { $0.squeezingShape(at: 1).exp() }),
        ]
        Kernels.withBackend(backend) {
            for (index, (name, shape, f)) in cases.enumerated() {
                let x = randomTensor(shape, seed: UInt64(index) + 70, in: -1...1)
                expectPasses(gradientCheck(at: [x]) { f($0[0]) }, "\(name) \(backend)")
            }
        }
    }

    @Test("matmul: plain, folded batch, shared left factor, batched", arguments: KernelBackend.allCases)
    func matmul(backend: KernelBackend) {
        let cases: [([Int], [Int])] = [([3, 4], [4, 5]), ([2, 3, 4], [4, 5]), ([3, 4], [2, 4, 5]), ([2, 3, 4], [2, 4, 5]), ([1, 7], [7, 1])]
        Kernels.withBackend(backend) {
            for (index, (shapeA, shapeB)) in cases.enumerated() {
                let a = randomTensor(shapeA, seed: UInt64(index) + 90), b = randomTensor(shapeB, seed: UInt64(index) + 91)
                expectPasses(gradientCheck(at: [a, b]) { $0[0].matmul($0[1]) }, "matmul \(shapeA) \(shapeB) \(backend)")
            }
        }
    }

    @Test("softmax family and cross-entropy", arguments: KernelBackend.allCases)
    func softmax(backend: KernelBackend) {
        Kernels.withBackend(backend) {
            let x = randomTensor([3, 4, 5], seed: 120, in: -3...3)
            for axis in [0, 1, -1] {
                expectPasses(gradientCheck(at: [x]) { $0[0].softmax(alongAxis: axis) }, "softmax axis \(axis) \(backend)")
                expectPasses(gradientCheck(at: [x]) { $0[0].logSoftmax(alongAxis: axis) }, "logSoftmax axis \(axis) \(backend)")
            }
            let logits = randomTensor([6, 5], seed: 121, in: -3...3)
            let labels = [0, 4, 2, 2, 1, 3]
            expectPasses(
                gradientCheck(at: [logits]) { softmaxCrossEntropy(logits: $0[0], labels: labels) },
                "softmaxCrossEntropy \(backend)")
        }
    }

    @Test("fan-out and composition: a small MLP", arguments: KernelBackend.allCases)
    func composite(backend: KernelBackend) {
        Kernels.withBackend(backend) {
            let x = randomTensor([3, 3], seed: 130)
            // x used four times, and matmul with itself on both sides.
            expectPasses(gradientCheck(at: [x]) { ($0[0] * $0[0] + $0[0].tanh() * $0[0]).matmul($0[0]) }, "fan-out \(backend)")

            let input = randomTensor([4, 3], seed: 131)
            let w1 = Parameter(randomTensor([3, 5], seed: 132), name: "w1")
            let b1 = Parameter(randomTensor([5], seed: 133), name: "b1")
            let w2 = Parameter(randomTensor([5, 3], seed: 134), name: "w2")
            let b2 = Parameter(randomTensor([3], seed: 135), name: "b2")
            let result = gradientCheck([w1, b1, w2, b2]) {
                let hidden = (input.matmul(w1.value) + b1.value).tanh()
                return softmaxCrossEntropy(logits: hidden.matmul(w2.value) + b2.value, labels: [0, 2, 1, 2])
            }
            expectPasses(result, "MLP \(backend)")
        }
    }

    @Test("ReLU's kink: inputs at and next to 0 are checked against the one-sided slopes")
    func reluKink() {
        // Exactly at 0, and within the step h = 0.01 on either side.
        let x = Tensor(shape: [6], scalars: [0, 0, 0.003, -0.004, 0.5, -0.5])
        let result = gradientCheck(at: [x]) { $0[0].relu() }
        expectPasses(result, "relu at the kink")
        #expect(result.nonSmoothCount >= 4)
        // And the analytic derivative at 0 is PyTorch's: 0.
        let p = Parameter(Tensor(shape: [3], scalars: [0, 1, -1]))
        p.value.relu().sum().backward()
        #expect(p.gradient!.scalars == [0, 1, 0])
    }

    @Test("a wrong derivative fails the check")
    func detectsWrongGradients() {
        // y = x^2 recorded with the pullback of x^2 / 2 (dx = g x instead of 2 g x).
        func wrongSquare(_ x: Tensor) -> Tensor {
            Tensor.record(x.mapped(.square), x, pullback: { record, g, sink in
                sink.accumulate(0, Tensor.combined(.mul, g, record.saved0!, name: "test"))
            }) { $0.save(x) }
        }
        let x = randomTensor([4], seed: 140, in: 0.5...1.5)
        let result = gradientCheck(at: [x]) { wrongSquare($0[0]) }
        #expect(!result.passed)
        #expect(result.mismatches.count == 4)
        #expect(result.mismatches.allSatisfy { Swift.abs($0.numeric - 2 * $0.analytic) < 1e-2 })

        // At a kink too: a derivative of 2 for ReLU at 0 lies outside [0, 1].
        func wrongRelu(_ x: Tensor) -> Tensor {
            Tensor.record(x.mapped(.relu), x, pullback: { _, g, sink in
                sink.accumulate(0, g.mapped(.mulScalar, 2))
            })
        }
        let kink = gradientCheck(at: [Tensor(shape: [1], scalars: [0])]) { wrongRelu($0[0]) }
        #expect(!kink.passed)
        #expect(kink.mismatches.first?.isNonSmooth == true)
    }
}
