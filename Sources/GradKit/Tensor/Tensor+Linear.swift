// GradKit — matrix multiplication. SPDX-License-Identifier: MIT

extension Tensor {
    /// How the operands of a matmul were batched.
    private enum BatchMode: Int {
        /// `[..., m, k] x [k, n]`: the left batch folds into m, one GEMM.
        case folded = 0
        /// `[m, k] x [..., k, n]`: one left matrix for every right one.
        case sharedLeft = 1
        /// `[..., m, k] x [..., k, n]` with equal batch shapes.
        case batched = 2
    }

    /// The matrix product over the last two axes: `[m, k] x [k, n] -> [m, n]`.
    ///
    /// Leading axes are batch axes: `[..., m, k] x [k, n]`, `[m, k] x [..., k, n]`
    /// and `[..., m, k] x [..., k, n]` with equal batch shapes are supported.
    /// - Precondition: both operands have rank >= 2, the inner dimensions agree,
    ///   and batch shapes are equal or absent on one side.
    public func matmul(_ other: Tensor) -> Tensor {
        precondition(
            rank >= 2 && other.rank >= 2,
            "matmul: needs operands of rank >= 2, got shapes \(shape) and \(other.shape)")
        let m = shape[rank - 2], k = shape[rank - 1]
        let k2 = other.shape[other.rank - 2], n = other.shape[other.rank - 1]
        precondition(
            k == k2, "matmul: shapes \(shape) and \(other.shape) are incompatible (inner dimensions \(k) and \(k2) differ)")
        let batchA = Array(shape.dropLast(2)), batchB = Array(other.shape.dropLast(2))
        let mode: BatchMode
        let outShape: [Int]
        if batchB.isEmpty {
            mode = .folded
            outShape = batchA + [m, n]
        } else if batchA.isEmpty {
            mode = .sharedLeft
            outShape = batchB + [m, n]
        } else {
            precondition(
                batchA == batchB,
                "matmul: batch dimensions \(batchA) and \(batchB) of shapes \(shape) and \(other.shape) differ")
            mode = .batched
            outShape = batchA + [m, n]
        }
        let y = Tensor(uninitializedShape: outShape)
        withExtendedLifetime((self, other)) {
            let batch = mode == .folded ? 1 : Shape.count(mode == .sharedLeft ? batchB : batchA)
            let rows = mode == .folded ? Shape.count(batchA) * m : m
            Tensor.gemmBatched(
                batch: batch, transposeA: false, transposeB: false, m: rows, n: n, k: k,
                a: pointer, strideA: mode == .sharedLeft ? 0 : m * k, lda: k,
                b: other.pointer, strideB: n * k, ldb: n,
                beta: 0, c: y.mutablePointer, strideC: rows * n, ldc: n)
        }
        return Tensor.record(y, self, other, pullback: matmulPullback) { record in
            record.save(self, other)
            record.integer = mode.rawValue
        }
    }

    /// `C_i := op(A_i) op(B_i) + beta C_i` for i < batch (strides in elements).
    static func gemmBatched(
        batch: Int, transposeA: Bool, transposeB: Bool, m: Int, n: Int, k: Int,
        a: ConstFloatPointer, strideA: Int, lda: Int, b: ConstFloatPointer, strideB: Int, ldb: Int,
        beta: Float, c: FloatPointer, strideC: Int, ldc: Int
    ) {
        for i in 0..<batch {
            Kernels.gemm(
                transposeA: transposeA, transposeB: transposeB, m: m, n: n, k: k, alpha: 1,
                a: a + i * strideA, lda: lda, b: b + i * strideB, ldb: ldb,
                beta: beta, c: c + i * strideC, ldc: ldc)
        }
    }

    /// The pullback of matmul: dA = dC Bᵀ, dB = Aᵀ dC, written straight into
    /// the gradient buffers (beta = 1 accumulates on fan-out).
    fileprivate static func matmulBackward(_ record: borrowing TapeRecord, _ g: Tensor, _ sink: inout GradientSink) {
        let a = record.saved0!, b = record.saved1!
        let mode = BatchMode(rawValue: record.integer)!
        let m = a.shape[a.rank - 2], k = a.shape[a.rank - 1], n = b.shape[b.rank - 1]
        withExtendedLifetime((a, b, g)) {
            switch mode {
            case .folded:
                let rows = a.scalarCount / Swift.max(k, 1)
                sink.accumulate(0, shape: a.shape) { dA, beta in
                    gemmBatched(
                        batch: 1, transposeA: false, transposeB: true, m: rows, n: k, k: n,
                        a: g.pointer, strideA: 0, lda: n, b: b.pointer, strideB: 0, ldb: n,
                        beta: beta, c: dA, strideC: 0, ldc: k)
                }
                sink.accumulate(1, shape: b.shape) { dB, beta in
                    gemmBatched(
                        batch: 1, transposeA: true, transposeB: false, m: k, n: n, k: rows,
                        a: a.pointer, strideA: 0, lda: k, b: g.pointer, strideB: 0, ldb: n,
                        beta: beta, c: dB, strideC: 0, ldc: n)
                }
            case .sharedLeft, .batched:
                let batch = b.scalarCount / Swift.max(k * n, 1)
                let shared = mode == .sharedLeft
                sink.accumulate(0, shape: a.shape) { dA, beta in
                    // An empty batch sums nothing: a shared left factor's gradient is zero.
                    if batch == 0, beta == 0 { dA.update(repeating: 0, count: a.scalarCount) }
                    for i in 0..<batch {
                        // A shared left factor sums its gradient over the batch.
                        let target = shared ? dA : dA + i * m * k
                        let betaI: Float = shared && i > 0 ? 1 : beta
                        Kernels.gemm(
                            transposeA: false, transposeB: true, m: m, n: k, k: n, alpha: 1,
                            a: g.pointer + i * m * n, lda: n, b: b.pointer + i * k * n, ldb: n,
                            beta: betaI, c: target, ldc: k)
                    }
                }
                sink.accumulate(1, shape: b.shape) { dB, beta in
                    gemmBatched(
                        batch: batch, transposeA: true, transposeB: false, m: k, n: n, k: m,
                        a: a.pointer, strideA: shared ? 0 : m * k, lda: k, b: g.pointer, strideB: m * n, ldb: n,
                        beta: beta, c: dB, strideC: k * n, ldc: n)
                }
            }
        }
    }
}

private let matmulPullback: Pullback = { record, gradient, sink in
    Tensor.matmulBackward(record, gradient, &sink)
}

/// The affine map of a fully connected layer, as PyTorch's `F.linear`:
/// `y = x Wᵀ + b` for `x` of shape `[..., in]`, `weight` `[out, in]`, `bias`
/// `[out]`; `y` has shape `[..., out]`.
///
/// One fused operation on the tape: forward is one GEMM (W used transposed in
/// place) with the bias added in its epilogue; backward writes `dX = dY W`, `dW = dYᵀ X` and
/// `db = Σ_rows dY` straight into the gradient buffers, skipping the ones no
/// parameter needs (such as the gradient of a data batch).
/// - Precondition: the last dimension of `input` is `weight.shape[1]`, and `bias` (if any) has shape `[out]`.
public func linear(_ input: Tensor, weight: Tensor, bias: Tensor? = nil) -> Tensor {
    affine(input, weight: weight, bias: bias, relu: false)
}

/// `relu(linear(input, weight: weight, bias: bias))` as one operation: the ReLU
/// is applied to each tile of the GEMM's output while it is in registers, and
/// one tape record replaces two. The values and gradients are those of the two
/// operations, bit for bit. ``Sequential`` uses it for a ``Linear`` followed by
/// a ``ReLU``.
/// - Precondition: as ``linear(_:weight:bias:)``.
public func linearReLU(_ input: Tensor, weight: Tensor, bias: Tensor? = nil) -> Tensor {
    affine(input, weight: weight, bias: bias, relu: true)
}

/// ``linearReLU(_:weight:bias:)`` with its intermediate values shown to
/// `observe` (for forward hooks): the GEMM writes the pre-activations `z`, the
/// ReLU writes `y` beside them, and `observe(z, y)` sees both. Same values,
/// bits and tape record as the fused operation.
func linearReLU(_ input: Tensor, weight: Tensor, bias: Tensor?, observing observe: (_ z: Tensor, _ y: Tensor) -> Void) -> Tensor {
    withoutActuallyEscaping(observe) { affine(input, weight: weight, bias: bias, relu: true, observing: $0) }
}

private func affine(
    _ input: Tensor, weight: Tensor, bias: Tensor?, relu: Bool, observing observe: ((_ z: Tensor, _ y: Tensor) -> Void)? = nil
) -> Tensor {
    let op = relu ? "linearReLU(_:weight:bias:)" : "linear(_:weight:bias:)"
    precondition(weight.rank == 2, "\(op): weight must have shape [out, in], got \(weight.shape)")
    let outFeatures = weight.shape[0], inFeatures = weight.shape[1]
    precondition(
        input.rank >= 1 && input.shape[input.rank - 1] == inFeatures,
        "\(op): input of shape \(input.shape) does not end in \(inFeatures) features (weight \(weight.shape))")
    if let bias {
        precondition(bias.shape == [outFeatures], "\(op): bias of shape \(bias.shape) for \(outFeatures) outputs")
    }
    let rows = inFeatures == 0 ? input.scalarCount : input.scalarCount / inFeatures
    var outShape = input.shape
    outShape[outShape.count - 1] = outFeatures
    var y = Tensor(uninitializedShape: outShape)
    withExtendedLifetime((input, weight, bias)) {
        // The bias add (and the ReLU) are fused into the GEMM's epilogue, rounded as separate passes.
        Kernels.gemm(
            transposeA: false, transposeB: true, m: rows, n: outFeatures, k: inFeatures, alpha: 1,
            a: input.pointer, lda: inFeatures, b: weight.pointer, ldb: inFeatures, beta: 0, c: y.mutablePointer,
            ldc: outFeatures, bias: bias?.pointer, relu: relu && observe == nil)
    }
    if let observe {
        let z = y
        y = relu ? z.mapped(.relu) : z
        observe(z, y)
    }
    let pullback = relu ? linearReLUPullback : linearPullback
    let configure: (inout TapeRecord) -> Void = { record in
        record.save(input, weight, relu ? y : nil)
        record.integer = rows
    }
    if let bias { return Tensor.record(y, input, weight, bias, op: op, pullback: pullback, configure: configure) }
    return Tensor.record(y, input, weight, op: op, pullback: pullback, configure: configure)
}

/// The ReLU's rule (dZ = y > 0 ? dY : 0, with the saved output y), then the linear pullback.
private let linearReLUPullback: Pullback = { record, gradient, sink in
    let y = record.saved2!
    let dZ = Tensor(uninitializedShape: gradient.shape)
    withExtendedLifetime((gradient, y)) {
        Kernels.unaryBackward(
            .relu, count: gradient.scalarCount, inputGradient: dZ.mutablePointer, outputGradient: gradient.pointer,
            input: nil, output: y.pointer, a: 0, b: 0)
    }
    linearPullback(record, dZ, &sink)
}

private let linearPullback: Pullback = { record, gradient, sink in
    let x = record.saved0!, w = record.saved1!
    let rows = record.integer, outFeatures = w.shape[0], inFeatures = w.shape[1]
    withExtendedLifetime((x, w, gradient)) {
        // dX = dY W and dW = dYᵀ X.
        func inputGradient(_ dX: FloatPointer, _ beta: Float) -> GEMMArguments {
            GEMMArguments(
                transposeA: false, transposeB: false, m: rows, n: inFeatures, k: outFeatures, alpha: 1,
                a: gradient.pointer, lda: outFeatures, b: w.pointer, ldb: inFeatures, beta: beta, c: dX, ldc: inFeatures)
        }
        func weightGradient(_ dW: FloatPointer, _ beta: Float) -> GEMMArguments {
            GEMMArguments(
                transposeA: true, transposeB: false, m: outFeatures, n: inFeatures, k: rows, alpha: 1,
                a: gradient.pointer, lda: outFeatures, b: x.pointer, ldb: inFeatures, beta: beta, c: dW, ldc: inFeatures)
        }
        if sink.areDistinctAndNeeded(0, 1) {
            // Both at once (small products then run one per thread).
            sink.accumulate(0, shape: x.shape) { dX, betaX in
                sink.accumulate(1, shape: w.shape) { dW, betaW in
                    Kernels.gemmPair(inputGradient(dX, betaX), weightGradient(dW, betaW))
                }
            }
        } else {
            sink.accumulate(0, shape: x.shape) { Kernels.gemm(inputGradient($0, $1)) }
            sink.accumulate(1, shape: w.shape) { Kernels.gemm(weightGradient($0, $1)) }
        }
        if sink.isNeeded(2) {
            let db = Tensor(uninitializedShape: [outFeatures])
            Kernels.reduce(.sum, outer: 1, extent: rows, inner: outFeatures, output: db.mutablePointer, input: gradient.pointer)
            sink.accumulate(2, db)
        }
    }
}
