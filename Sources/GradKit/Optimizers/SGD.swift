// GradKit — stochastic gradient descent. SPDX-License-Identifier: MIT

/// Stochastic gradient descent with momentum, Nesterov momentum and coupled
/// weight decay: PyTorch's `torch.optim.SGD`, step for step.
///
/// With gradient g, parameter p and the options below, each step computes
/// ```
/// d = maximize ? -g : g
/// d = d + weightDecay * p                        (when weightDecay != 0)
/// momentum == 0:  p = p - learningRate * d
/// otherwise:      b = first step ? d : momentum * b + (1 - dampening) * d
///                 u = nesterov ? d + momentum * b : b
///                 p = p - learningRate * u
/// ```
/// The momentum buffer b starts as the parameter's first gradient, without
/// dampening (as PyTorch does).
///
/// Defaults are PyTorch's: learningRate 1e-3, momentum 0, dampening 0,
/// weightDecay 0, nesterov false, maximize false.
public final class SGD: Optimizer {
    /// Momentum factor (>= 0).
    public var momentum: Float {
        didSet { precondition(momentum >= 0, "SGD: invalid momentum value \(momentum)") }
    }
    /// Dampening of the momentum term.
    public var dampening: Float
    /// L2 penalty coefficient, added to the gradient (>= 0).
    public var weightDecay: Float {
        didSet { precondition(weightDecay >= 0, "SGD: invalid weight_decay value \(weightDecay)") }
    }
    /// Nesterov momentum (needs momentum > 0 and dampening 0).
    public private(set) var nesterov: Bool
    /// Ascend instead of descend.
    public private(set) var maximize: Bool

    private var momentumStarted: [Bool]

    /// - Precondition: learningRate, momentum and weightDecay >= 0; Nesterov
    ///   momentum requires momentum > 0 and dampening 0 (PyTorch's checks).
    public init(
        _ parameters: [Parameter], learningRate: Float = 1e-3, momentum: Float = 0, dampening: Float = 0,
        weightDecay: Float = 0, nesterov: Bool = false, maximize: Bool = false
    ) {
        precondition(momentum >= 0, "SGD: invalid momentum value \(momentum)")
        precondition(weightDecay >= 0, "SGD: invalid weight_decay value \(weightDecay)")
        precondition(
            !nesterov || (momentum > 0 && dampening == 0), "SGD: Nesterov momentum requires a momentum and zero dampening")
        self.momentum = momentum
        self.dampening = dampening
        self.weightDecay = weightDecay
        self.nesterov = nesterov
        self.maximize = maximize
        self.momentumStarted = Array(repeating: false, count: parameters.count)
        super.init(parameters: parameters, learningRate: learningRate)
    }

    override var stateSpecification: [(name: String, initialValue: Float)] { [("momentum_buffer", 0)] }

    override var requiredBuffers: [String] { momentum != 0 ? ["momentum_buffer"] : [] }

    override func groupKey(_ index: Int) -> Int { momentumStarted[index] ? 1 : 0 }

    override func didUpdate(_ index: Int) {
        if momentum != 0 { momentumStarted[index] = true }
    }

    override func restoredParameter(_ index: Int, hasState: Bool) { momentumStarted[index] = hasState && momentum != 0 }

    override func update(_ range: Range<Int>, step: Int, gradientScale: Float) {
        let o = range.lowerBound
        let scalars = SGDScalars(
            learningRate: learningRate, momentum: momentum, weightDecay: weightDecay,
            gradientScale: maximize ? -gradientScale : gradientScale,
            oneMinusDampening: Float(1 - Double(dampening)), nesterov: nesterov,
            first: !momentumStarted[parameterIndex(at: o)])
        Kernels.sgdStep(
            count: range.count, parameters: values.base + o,
            momentumBuffer: momentum != 0 ? state("momentum_buffer").base + o : nil, gradients: gradients.base + o, scalars)
    }

    override var hyperparameters: [String: Double] {
        [
            "lr": Double(learningRate), "momentum": Double(momentum), "dampening": Double(dampening),
            "weight_decay": Double(weightDecay), "nesterov": nesterov ? 1 : 0, "maximize": maximize ? 1 : 0,
        ]
    }

    override func validateHyperparameters(_ values: [String: Double]) throws {
        try super.validateHyperparameters(values)
        try Optimizer.require(values, ["momentum", "weight_decay"]) { $0 >= 0 }
        let momentum = values["momentum"] ?? Double(self.momentum), dampening = values["dampening"] ?? Double(self.dampening)
        if (values["nesterov"] ?? (nesterov ? 1 : 0)) != 0 && (momentum <= 0 || dampening != 0) {
            throw OptimizerStateError.invalidValue(name: "nesterov", value: 1)
        }
    }

    override func restoreHyperparameters(_ values: [String: Double]) {
        super.restoreHyperparameters(values)
        if let v = values["momentum"] { momentum = Float(v) }
        if let v = values["dampening"] { dampening = Float(v) }
        if let v = values["weight_decay"] { weightDecay = Float(v) }
        if let v = values["nesterov"] { nesterov = v != 0 }
        if let v = values["maximize"] { maximize = v != 0 }
    }
}

extension Optimizer {
    /// The parameter whose values start at flat offset `offset`.
    func parameterIndex(at offset: Int) -> Int {
        var low = 0, high = layout.offsets.count - 1
        while low < high {
            let mid = (low + high + 1) / 2
            if layout.offsets[mid] <= offset { low = mid } else { high = mid - 1 }
        }
        return low
    }
}
