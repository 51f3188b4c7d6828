// Programmer errors trap with a message that names the operation and the shapes.
import Testing

@testable import GradKit

private func text(_ result: ExitTest.Result?) -> String { standardError(result) }

@Suite("Traps")
struct TrapTests {
    @Test("broadcasting mismatch")
    func broadcast() async {
        let result = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            let a = Tensor(zeros: [2, 3]), b = Tensor(zeros: [4])
            _ = Tensor.binary(.add, a, b, name: "+")
        }
        #expect(text(result).contains("+: shapes [2, 3] and [4] cannot be broadcast together"), "\(text(result))")
    }

    @Test("matmul inner dimensions")
    func matmul() async {
        let result = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            let a = Tensor(zeros: [2, 3]), b = Tensor(zeros: [4, 5])
            _ = a.matmul(b)
        }
        #expect(text(result).contains("matmul: shapes [2, 3] and [4, 5] are incompatible"), "\(text(result))")
    }

    @Test("matmul batch dimensions")
    func matmulBatch() async {
        let result = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            let a = Tensor(zeros: [2, 3, 4]), b = Tensor(zeros: [3, 4, 5])
            _ = a.matmul(b)
        }
        #expect(text(result).contains("matmul: batch dimensions [2] and [3]"), "\(text(result))")
    }

    @Test("reshape to a different element count")
    func reshape() async {
        let result = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            let a = Tensor(zeros: [2, 3])
            _ = a.reshaped(to: [4, 2])
        }
        #expect(text(result).contains("reshaped(to:): cannot reshape [2, 3] (6 elements) to [4, 2]"), "\(text(result))")
    }

    @Test("scalar count that does not match the shape")
    func scalars() async {
        let result = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            let values: [Float] = [1, 2, 3]
            _ = Tensor(shape: [2, 2], scalars: values)
        }
        #expect(text(result).contains("shape [2, 2] needs 4 scalars, got 3"), "\(text(result))")
    }

    @Test("cross-entropy label count")
    func labelCount() async {
        let result = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            let logits = Tensor(zeros: [3, 4])
            _ = softmaxCrossEntropy(logits: logits, labels: [0, 1])
        }
        #expect(text(result).contains("2 labels for logits of shape [3, 4]"), "\(text(result))")
    }

    @Test("cross-entropy label range")
    func labelRange() async {
        let result = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            let logits = Tensor(zeros: [2, 4])
            _ = softmaxCrossEntropy(logits: logits, labels: [0, 4])
        }
        #expect(text(result).contains("label 4 at row 1 is out of range 0..<4"), "\(text(result))")
    }

    @Test("assigning a value of another shape to a parameter")
    func parameterShape() async {
        let result = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            let w = Parameter(Tensor(zeros: [2, 3]), name: "layer.weight")
            w.value = Tensor(zeros: [3, 2])
        }
        #expect(
            text(result).contains("Parameter 'layer.weight': cannot assign a value of shape [3, 2] to shape [2, 3]"),
            "\(text(result))")
    }

    @Test("backward twice through the same tape")
    func backwardTwice() async {
        let result = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            let w = Parameter(Tensor(ones: [2]))
            let loss = w.value.sum()
            loss.backward()
            loss.backward()
        }
        #expect(text(result).contains("already consumed by an earlier backward()"), "\(text(result))")
    }

    @Test("backward without any parameter")
    func backwardUntracked() async {
        let result = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            let x = Tensor(ones: [2])
            x.sum().backward()
        }
        #expect(text(result).contains("was not computed from any Parameter"), "\(text(result))")
    }

    @Test("backward from a non-scalar without a seed")
    func backwardSeedless() async {
        let result = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            let w = Parameter(Tensor(ones: [2]))
            w.value.relu().backward()
        }
        #expect(text(result).contains("a tensor of shape [2] needs a seed"), "\(text(result))")
    }

    @Test("axis out of range")
    func axis() async {
        let result = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            let x = Tensor(zeros: [2, 3])
            _ = x.sum(alongAxes: [2])
        }
        #expect(text(result).contains("sum(alongAxes:): axis 2 is out of range for rank 2"), "\(text(result))")
    }

    @Test("gathered row out of bounds")
    func row() async {
        let result = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            let x = Tensor(zeros: [2, 3])
            _ = x.rows(at: [0, 2])
        }
        #expect(text(result).contains("rows(at:): index 2 is out of bounds for 2 rows"), "\(text(result))")
    }
}
