// GradKit — arithmetic with NumPy broadcasting. SPDX-License-Identifier: MIT

extension Tensor {
    /// `op(a, b)` with broadcasting, not recorded.
    static func combined(_ op: BinaryOperation, _ a: Tensor, _ b: Tensor, name: String) -> Tensor {
        if a.shape == b.shape {
            let y = Tensor(uninitializedShape: a.shape)
            let layout = StridedLayout(shape: [a.scalarCount], strides: [[1], [1]])
            withExtendedLifetime((a, b)) {
                Kernels.binary(op, layout: layout, output: y.mutablePointer, lhs: a.pointer, rhs: b.pointer)
            }
            return y
        }
        let shape = Shape.broadcast(a.shape, b.shape, op: name)
        let y = Tensor(uninitializedShape: shape)
        let layout = broadcastLayout(shape, a.shape, b.shape)
        withExtendedLifetime((a, b)) {
            Kernels.binary(op, layout: layout, output: y.mutablePointer, lhs: a.pointer, rhs: b.pointer)
        }
        return y
    }

    static func broadcastLayout(_ shape: [Int], _ a: [Int], _ b: [Int]) -> StridedLayout {
        if a == shape && b == shape { return StridedLayout(shape: [Shape.count(shape)], strides: [[1], [1]]) }
        return Shape.collapse(
            shape, [Shape.broadcastStrides(a, to: shape), Shape.broadcastStrides(b, to: shape)])
    }

    /// `op(a, b)` with broadcasting, recorded.
    static func binary(_ op: BinaryOperation, _ a: Tensor, _ b: Tensor, name: String) -> Tensor {
        let y = combined(op, a, b, name: name)
        return record(y, a, b, op: name, pullback: binaryPullback) { record in
            record.integer = op.rawValue
            record.shape0 = a.shape
            record.shape1 = b.shape
            switch op {
            case .add, .sub, .equal: break
            case .mul, .div, .maximum, .minimum: record.save(a, b)
            case .pow: record.save(a, b, y)
            }
        }
    }

    /// Elementwise sum with broadcasting.
    public static func + (lhs: Tensor, rhs: Tensor) -> Tensor { binary(.add, lhs, rhs, name: "+") }
    /// Elementwise difference with broadcasting.
    public static func - (lhs: Tensor, rhs: Tensor) -> Tensor { binary(.sub, lhs, rhs, name: "-") }
    /// Elementwise product with broadcasting.
    public static func * (lhs: Tensor, rhs: Tensor) -> Tensor { binary(.mul, lhs, rhs, name: "*") }
    /// Elementwise quotient with broadcasting.
    public static func / (lhs: Tensor, rhs: Tensor) -> Tensor { binary(.div, lhs, rhs, name: "/") }

    /// Adds a scalar to every element.
    public static func + (lhs: Tensor, rhs: Float) -> Tensor { lhs.unary(.addScalar, rhs) }
    /// Adds a scalar to every element.
    public static func + (lhs: Float, rhs: Tensor) -> Tensor { rhs.unary(.addScalar, lhs) }
    /// Subtracts a scalar from every element.
    public static func - (lhs: Tensor, rhs: Float) -> Tensor { lhs.unary(.addScalar, -rhs) }
    /// A scalar minus every element.
    public static func - (lhs: Float, rhs: Tensor) -> Tensor { rhs.unary(.rsubScalar, lhs) }
    /// Multiplies every element by a scalar.
    public static func * (lhs: Tensor, rhs: Float) -> Tensor { lhs.unary(.mulScalar, rhs) }
    /// Multiplies every element by a scalar.
    public static func * (lhs: Float, rhs: Tensor) -> Tensor { rhs.unary(.mulScalar, lhs) }
    /// Divides every element by a scalar (a true division, as PyTorch, not a multiplication by the reciprocal).
    public static func / (lhs: Tensor, rhs: Float) -> Tensor { lhs.unary(.divScalar, rhs) }
    /// A scalar divided by every element.
    public static func / (lhs: Float, rhs: Tensor) -> Tensor { rhs.unary(.rdivScalar, lhs) }

    /// Elementwise negation.
    public static prefix func - (operand: Tensor) -> Tensor { operand.unary(.negate) }

    /// `lhs = lhs + rhs`: a new recorded result, never an in-place write into shared memory.
    public static func += (lhs: inout Tensor, rhs: Tensor) { lhs = lhs + rhs }
    /// `lhs = lhs - rhs`.
    public static func -= (lhs: inout Tensor, rhs: Tensor) { lhs = lhs - rhs }
    /// `lhs = lhs * rhs`.
    public static func *= (lhs: inout Tensor, rhs: Tensor) { lhs = lhs * rhs }
    /// `lhs = lhs / rhs`.
    public static func /= (lhs: inout Tensor, rhs: Tensor) { lhs = lhs / rhs }
    /// `lhs = lhs + rhs`.
    public static func += (lhs: inout Tensor, rhs: Float) { lhs = lhs + rhs }
    /// `lhs = lhs - rhs`.
    public static func -= (lhs: inout Tensor, rhs: Float) { lhs = lhs - rhs }
    /// `lhs = lhs * rhs`.
    public static func *= (lhs: inout Tensor, rhs: Float) { lhs = lhs * rhs }
    /// `lhs = lhs / rhs`.
    public static func /= (lhs: inout Tensor, rhs: Float) { lhs = lhs / rhs }

    /// Elementwise `self^exponent` with broadcasting. The gradient with respect
    /// to the exponent is `y ln(self)`, taken as 0 where `self == 0` and the
    /// exponent is >= 0 (PyTorch's convention).
    public func pow(_ exponent: Tensor) -> Tensor { Tensor.binary(.pow, self, exponent, name: "pow") }

    /// `self += other` in place, not recorded (for gradient accumulation).
    mutating func addInPlace(_ other: Tensor) {
        precondition(shape == other.shape, "addInPlace: shapes \(shape) and \(other.shape) differ")
        makeUniquelyOwned()
        withExtendedLifetime(other) {
            Kernels.axpy(count: scalarCount, output: mutablePointer, alpha: 1, input: other.pointer)
        }
    }

    /// Sums a broadcast result back to `target` (the shape of an operand).
    func summed(toShape target: [Int]) -> Tensor {
        if shape == target { return self }
        let lead = rank - target.count
        var axes = Array(0..<lead)
        for i in 0..<target.count where target[i] == 1 && shape[lead + i] != 1 { axes.append(lead + i) }
        let kept = reducedKeepingAxes(.sum, axes: axes, mean: false)
        return Tensor(storage: kept.storage, shape: target)
    }
}

/// Elementwise maximum with broadcasting; NaN propagates. Where the operands
/// tie, each receives half the gradient (as `torch.maximum`).
public func maximum(_ lhs: Tensor, _ rhs: Tensor) -> Tensor { Tensor.binary(.maximum, lhs, rhs, name: "maximum") }

/// Elementwise minimum with broadcasting; NaN propagates; ties split the gradient.
public func minimum(_ lhs: Tensor, _ rhs: Tensor) -> Tensor { Tensor.binary(.minimum, lhs, rhs, name: "minimum") }

/// The pullback of every binary map: gradients at the output's shape, then
/// summed back over the broadcast axes of each operand.
private let binaryPullback: Pullback = { record, gradient, sink in
    let op = BinaryOperation(rawValue: record.integer)!
    let shapeA = record.shape0, shapeB = record.shape1
    switch op {
    case .add:
        sink.accumulate(0, gradient.summed(toShape: shapeA))
        sink.accumulate(1, gradient.summed(toShape: shapeB))
    case .sub:
        sink.accumulate(0, gradient.summed(toShape: shapeA))
        if sink.isNeeded(1) { sink.accumulate(1, gradient.summed(toShape: shapeB).mapped(.negate)) }
    case .mul, .div, .maximum, .minimum, .pow:
        let a = record.saved0!, b = record.saved1!
        let ga = sink.isNeeded(0) ? Tensor(uninitializedShape: gradient.shape) : nil
        let gb = sink.isNeeded(1) ? Tensor(uninitializedShape: gradient.shape) : nil
        let layout = Tensor.broadcastLayout(gradient.shape, shapeA, shapeB)
        withExtendedLifetime((gradient, a, b, record.saved2)) {
            Kernels.binaryBackward(
                op, layout: layout, lhsGradient: ga?.mutablePointer, rhsGradient: gb?.mutablePointer,
                outputGradient: gradient.pointer, lhs: a.pointer, rhs: b.pointer, output: record.saved2?.pointer)
        }
        if let ga { sink.accumulate(0, ga.summed(toShape: shapeA)) }
        if let gb { sink.accumulate(1, gb.summed(toShape: shapeB)) }
    case .equal:
        break
    }
}
