// GradKit — Rosenblatt's perceptron. SPDX-License-Identifier: MIT

/// The classic perceptron (Rosenblatt, 1958): a linear threshold unit
/// `ŷ = [w·x + b > 0]`, trained by the perceptron learning rule rather than by
/// gradient descent (its step activation has no useful gradient).
///
/// For each example in turn, with label y ∈ {0, 1} and t = 2y − 1:
/// ```
/// if t (w·x + b) <= 0:   w = w + learningRate · t · x,   b = b + learningRate · t
/// ```
/// On linearly separable data it converges after at most (R / γ)² mistakes
/// (Novikoff, 1962), R being the largest norm of (x, 1) and γ the margin of a
/// unit separating vector (w*, b*). On data that no line separates — XOR is
/// the famous case (Minsky and Papert, 1969) — it never converges: every epoch
/// still makes mistakes, which ``learn(features:labels:learningRate:maximumEpochs:)``
/// reports. A hidden layer trained by back-propagation (``MLP``) solves XOR.
public final class Perceptron: HookedLayer {
    /// The features per example.
    public let inputSize: Int
    /// Shape `[inputSize]`, named `"weight"`; starts at zero.
    public let weight: Parameter
    /// Shape `[1]`, named `"bias"`; starts at zero.
    public let bias: Parameter
    /// Has no effect: the perceptron behaves the same in training and evaluation.
    public var isTraining = true

    /// A perceptron with zero weight and bias.
    ///
    /// - Parameter inputSize: the features per example; positive.
    public init(inputSize: Int) {
        precondition(inputSize > 0, "Perceptron: inputSize must be positive, got \(inputSize)")
        self.inputSize = inputSize
        weight = Parameter(Tensor(zeros: [inputSize]), name: "weight")
        bias = Parameter(Tensor(zeros: [1]), name: "bias")
    }

    let forwardHooks = ForwardHooks()

    /// The predictions, 0 or 1, shape `[batch, 1]` (not differentiable).
    /// - Precondition: input `[batch, inputSize]`.
    public func callAsFunction(_ input: Tensor) -> Tensor { forwardHooks.run(self, input, forward(input)) }

    private func forward(_ input: Tensor) -> Tensor {
        precondition(
            input.rank == 2 && input.shape[1] == inputSize,
            "Perceptron(inputSize: \(inputSize)): expected input [batch, \(inputSize)], got \(input.shape)")
        let scores = withoutGradients { input.matmul(weight.value.reshaped(to: [inputSize, 1])) + bias.value }
        return Tensor(shape: scores.shape, scalars: scores.scalars.map { $0 > 0 ? 1 : 0 })
    }

    /// The outcome of ``learn(features:labels:learningRate:maximumEpochs:)``.
    public struct Training: Sendable, Equatable {
        /// True when an epoch made no mistake.
        public var converged: Bool
        /// Mistakes (updates) in each epoch, in order.
        public var mistakesPerEpoch: [Int]
        /// All mistakes made.
        public var totalMistakes: Int { mistakesPerEpoch.reduce(0, +) }
    }

    /// Applies the perceptron rule over the examples in order, epoch after
    /// epoch, until an epoch makes no mistake or `maximumEpochs` have run.
    /// - Parameters:
    ///   - features: `[count, inputSize]`.
    ///   - labels: `count` labels, each 0 or 1.
    ///   - learningRate: the step of each correction (default 1; on zero-initialized weights any positive value makes the same mistakes).
    ///   - maximumEpochs: passes over the examples at most (default 100).
    /// - Returns: whether it converged and the mistakes of each epoch.
    /// - Precondition: matching sizes and labels in {0, 1}.
    @discardableResult
    public func learn(features: Tensor, labels: [Int], learningRate: Float = 1, maximumEpochs: Int = 100) -> Training {
        precondition(
            features.rank == 2 && features.shape[1] == inputSize,
            "Perceptron.learn: expected features [count, \(inputSize)], got \(features.shape)")
        precondition(
            labels.count == features.shape[0],
            "Perceptron.learn: \(labels.count) labels for \(features.shape[0]) examples")
        precondition(labels.allSatisfy { $0 == 0 || $0 == 1 }, "Perceptron.learn: labels must be 0 or 1")
        let x = features.scalars, n = inputSize
        var w = weight.value.scalars, b = bias.value.scalar
        var mistakes: [Int] = []
        var converged = false
        for _ in 0..<maximumEpochs {
            var count = 0
            for (i, label) in labels.enumerated() {
                let t: Float = label == 1 ? 1 : -1
                var score = b
                for j in 0..<n { score += w[j] * x[i * n + j] }
                if t * score <= 0 {
                    for j in 0..<n { w[j] += learningRate * t * x[i * n + j] }
                    b += learningRate * t
                    count += 1
                }
            }
            mistakes.append(count)
            if count == 0 {
                converged = true
                break
            }
        }
        weight.value = Tensor(shape: [n], scalars: w)
        bias.value = Tensor(shape: [1], scalars: [b])
        return Training(converged: converged, mistakesPerEpoch: mistakes)
    }

    /// `weight`, then `bias`.
    public var parameters: [Parameter] { [weight, bias] }
    /// `weight`.
    public var monitoredWeights: [Parameter] { [weight] }
    /// ``inputSize``.
    public var inputWidth: Int? { inputSize }
}
