// GradKit — one entry point per kernel, routed to C or to the Swift twin. SPDX-License-Identifier: MIT
//
// These are the only calls into CKernels. Contracts (shapes, aliasing) are the
// C headers'; callers check shapes before calling.
import CKernels

typealias FloatPointer = UnsafeMutablePointer<Float>
typealias ConstFloatPointer = UnsafePointer<Float>

extension Kernels {
    @inline(__always)
    static var useC: Bool { KernelContext.backend == .c }

    static func unary(
        _ op: UnaryOperation, count: Int, output: FloatPointer, input: ConstFloatPointer,
        a: Float = 0, b: Float = 0
    ) {
        if useC {
            ck_unary_f32(op.c, count, output, input, ck_unary_params(a: a, b: b))
        } else {
            SwiftKernels.unary(op, count: count, output: output, input: input, a: a, b: b)
        }
    }

    static func unaryBackward(
        _ op: UnaryOperation, count: Int, inputGradient: FloatPointer, outputGradient: ConstFloatPointer,
        input: ConstFloatPointer?, output: ConstFloatPointer?, a: Float = 0, b: Float = 0
    ) {
        if useC {
            ck_unary_backward_f32(
                op.c, count, inputGradient, outputGradient, input, output, ck_unary_params(a: a, b: b))
        } else {
            SwiftKernels.unaryBackward(
                op, count: count, inputGradient: inputGradient, outputGradient: outputGradient,
                input: input, output: output, a: a, b: b)
        }
    }

    static func binary(
        _ op: BinaryOperation, layout: StridedLayout, output: FloatPointer,
        lhs: ConstFloatPointer, rhs: ConstFloatPointer
    ) {
        if useC {
            layout.shape.withUnsafeBufferPointer { shape in
                layout.strides[0].withUnsafeBufferPointer { sa in
                    layout.strides[1].withUnsafeBufferPointer { sb in
                        ck_binary_f32(
                            op.c, shape.count, shape.baseAddress, output, lhs, sa.baseAddress, rhs, sb.baseAddress)
                    }
                }
            }
        } else {
            SwiftKernels.binary(op, layout: layout, output: output, lhs: lhs, rhs: rhs)
        }
    }

    static func binaryBackward(
        _ op: BinaryOperation, layout: StridedLayout, lhsGradient: FloatPointer?, rhsGradient: FloatPointer?,
        outputGradient: ConstFloatPointer, lhs: ConstFloatPointer, rhs: ConstFloatPointer,
        output: ConstFloatPointer?
    ) {
        if useC {
            layout.shape.withUnsafeBufferPointer { shape in
                layout.strides[0].withUnsafeBufferPointer { sa in
                    layout.strides[1].withUnsafeBufferPointer { sb in
                        ck_binary_backward_f32(
                            op.c, shape.count, shape.baseAddress, lhsGradient, rhsGradient, outputGradient,
                            lhs, sa.baseAddress, rhs, sb.baseAddress, output)
                    }
                }
            }
        } else {
            SwiftKernels.binaryBackward(
                op, layout: layout, lhsGradient: lhsGradient, rhsGradient: rhsGradient,
                outputGradient: outputGradient, lhs: lhs, rhs: rhs, output: output)
        }
    }

    static func fill(count: Int, output: FloatPointer, value: Float) {
        if useC { ck_fill_f32(count, output, value) } else { SwiftKernels.fill(count: count, output: output, value: value) }
    }

    /// y += alpha * x
    static func axpy(count: Int, output: FloatPointer, alpha: Float, input: ConstFloatPointer) {
        if useC {
            ck_axpy_f32(count, output, alpha, input)
        } else {
            SwiftKernels.axpy(count: count, output: output, alpha: alpha, input: input)
        }
    }

    static func reduce(
        _ op: ReductionOperation, outer: Int, extent: Int, inner: Int, output: FloatPointer,
        input: ConstFloatPointer, scale: Double = 1
    ) {
        if useC {
            ck_reduce_f32(op.c, outer, extent, inner, output, input, scale)
        } else {
            SwiftKernels.reduce(
                op, outer: outer, extent: extent, inner: inner, output: output, input: input, scale: scale)
        }
    }

    static func softmax(
        logarithmic: Bool, outer: Int, extent: Int, inner: Int, output: FloatPointer, input: ConstFloatPointer
    ) {
        if useC {
            if logarithmic {
                ck_log_softmax_f32(outer, extent, inner, output, input)
            } else {
                ck_softmax_f32(outer, extent, inner, output, input)
            }
        } else {
            SwiftKernels.softmax(
                logarithmic: logarithmic, outer: outer, extent: extent, inner: inner, output: output, input: input)
        }
    }

    static func softmaxBackward(
        logarithmic: Bool, outer: Int, extent: Int, inner: Int, inputGradient: FloatPointer,
        outputGradient: ConstFloatPointer, output: ConstFloatPointer
    ) {
        if useC {
            if logarithmic {
                ck_log_softmax_backward_f32(outer, extent, inner, inputGradient, outputGradient, output)
            } else {
                ck_softmax_backward_f32(outer, extent, inner, inputGradient, outputGradient, output)
            }
        } else {
            SwiftKernels.softmaxBackward(
                logarithmic: logarithmic, outer: outer, extent: extent, inner: inner,
                inputGradient: inputGradient, outputGradient: outputGradient, output: output)
        }
    }

    static func softmaxCrossEntropy(
        rows: Int, classes: Int, losses: FloatPointer, probabilities: FloatPointer,
        logits: ConstFloatPointer, labels: UnsafePointer<Int>
    ) {
        if useC {
            labels.withMemoryRebound(to: Int64.self, capacity: rows) { labels in
                ck_softmax_cross_entropy_f32(rows, classes, losses, probabilities, logits, labels)
            }
        } else {
            SwiftKernels.softmaxCrossEntropy(
                rows: rows, classes: classes, losses: losses, probabilities: probabilities, logits: logits,
                labels: labels)
        }
    }

    static func softmaxCrossEntropyBackward(
        rows: Int, classes: Int, logitsGradient: FloatPointer, probabilities: ConstFloatPointer,
        labels: UnsafePointer<Int>, scale: Float
    ) {
        if useC {
            labels.withMemoryRebound(to: Int64.self, capacity: rows) { labels in
                ck_softmax_cross_entropy_backward_f32(rows, classes, logitsGradient, probabilities, labels, scale)
            }
        } else {
            SwiftKernels.softmaxCrossEntropyBackward(
                rows: rows, classes: classes, logitsGradient: logitsGradient, probabilities: probabilities,
                labels: labels, scale: scale)
        }
    }

    /// Row-major `C := alpha op(A) op(B) + beta C`, then `+ bias` on every row
    /// and, with `relu`, `x <= 0 ? 0 : x`, both applied to each tile as it is
    /// computed (rounded as separate passes would round them); see `ck_gemm.h`.
    static func gemm(
        transposeA: Bool, transposeB: Bool, m: Int, n: Int, k: Int, alpha: Float,
        a: ConstFloatPointer, lda: Int, b: ConstFloatPointer, ldb: Int,
        beta: Float, c: FloatPointer, ldc: Int, bias: ConstFloatPointer? = nil, relu: Bool = false
    ) {
        let context = KernelContext.local.current
        let precision = context.matmulPrecision
        if (context.backendOverride ?? Kernels.backend) == .c {
            let bytes = ck_sgemm_workspace_size(m, n, k)
            let workspace = context.workspace(bytes: bytes)
            ck_sgemm_epilogue_f32(
                transposeA ? CK_TRANSPOSE_YES : CK_TRANSPOSE_NONE, transposeB ? CK_TRANSPOSE_YES : CK_TRANSPOSE_NONE,
                m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, bias,
                relu ? CK_GEMM_ACTIVATION_RELU : CK_GEMM_ACTIVATION_NONE, precision.c, workspace, bytes)
        } else {
            let bytes = SwiftKernels.gemmWorkspaceSize(m: m, n: n, k: k)
            let workspace = context.workspace(bytes: bytes)
            SwiftKernels.gemm(
                transposeA: transposeA, transposeB: transposeB, m: m, n: n, k: k, alpha: alpha,
                a: a, lda: lda, b: b, ldb: ldb, beta: beta, c: c, ldc: ldc, precision: precision,
                workspace: workspace)
            // The twin adds the bias (then the ReLU) after the product, as the C epilogue rounds them.
            if let bias {
                for i in 0..<m {
                    let row = c + i &* ldc
                    for j in 0..<n { row[j] = row[j] + bias[j] }
                }
            }
            if relu {
                for i in 0..<m {
                    let row = c + i &* ldc
                    for j in 0..<n { row[j] = row[j] <= 0 ? 0 : row[j] }
                }
            }
        }
    }

    /// `gemm` with its arguments in one value.
    static func gemm(_ g: GEMMArguments) {
        gemm(
            transposeA: g.transposeA, transposeB: g.transposeB, m: g.m, n: g.n, k: g.k, alpha: g.alpha,
            a: g.a, lda: g.lda, b: g.b, ldb: g.ldb, beta: g.beta, c: g.c, ldc: g.ldc)
    }

    /// Two independent products, `C1 := alpha1 op(A1) op(B1) + beta1 C1` and
    /// the same for the second: the same results as two `gemm` calls, run at
    /// the same time (one per thread) when both are small; see `ck_gemm.h`.
    /// Neither C may overlap an operand of the other product.
    static func gemmPair(_ first: GEMMArguments, _ second: GEMMArguments) {
        let context = KernelContext.local.current
        guard (context.backendOverride ?? Kernels.backend) == .c else {
            gemm(first)
            gemm(second)
            return
        }
        let precision = context.matmulPrecision
        var one = first.cArguments(precision), two = second.cArguments(precision)
        let bytes = ck_sgemm_pair_workspace_size(&one, &two)
        let workspace = context.workspace(bytes: bytes)
        ck_sgemm_pair_f32(&one, &two, workspace, bytes)
    }

    /// `y[i] = x[i]` rounded to bfloat16 by the C kernels' rounding (`ck_bf16_round_f32`).
    static func roundToBFloat16(count: Int, output: FloatPointer, input: ConstFloatPointer) {
        ck_bf16_round_f32(count, output, input)
    }

    /// The plain triple loop (double accumulator) the blocked GEMMs are tested against.
    static func gemmReference(
        transposeA: Bool, transposeB: Bool, m: Int, n: Int, k: Int, alpha: Float,
        a: ConstFloatPointer, lda: Int, b: ConstFloatPointer, ldb: Int,
        beta: Float, c: FloatPointer, ldc: Int
    ) {
        ck_sgemm_reference_f32(
            transposeA ? CK_TRANSPOSE_YES : CK_TRANSPOSE_NONE, transposeB ? CK_TRANSPOSE_YES : CK_TRANSPOSE_NONE,
            m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
    }

    /// `y[b][c][r] = x[b][r][c]`
    static func transpose(batch: Int, rows: Int, columns: Int, output: FloatPointer, input: ConstFloatPointer) {
        if useC {
            ck_transpose_f32(batch, rows, columns, output, input)
        } else {
            SwiftKernels.transpose(batch: batch, rows: rows, columns: columns, output: output, input: input)
        }
    }

    /// `y[idx] = x[idx . strides]` over `shape`, y contiguous.
    static func stridedCopy(shape: [Int], strides: [Int], output: FloatPointer, input: ConstFloatPointer) {
        if useC {
            shape.withUnsafeBufferPointer { s in
                strides.withUnsafeBufferPointer { st in
                    ck_strided_copy_f32(s.count, s.baseAddress, output, input, st.baseAddress)
                }
            }
        } else {
            SwiftKernels.stridedCopy(shape: shape, strides: strides, output: output, input: input)
        }
    }

    static func gatherRows(
        count: Int, columns: Int, output: FloatPointer, input: ConstFloatPointer, rows: UnsafePointer<Int>
    ) {
        if useC {
            rows.withMemoryRebound(to: Int64.self, capacity: count) { rows in
                ck_gather_rows_f32(count, columns, output, input, rows)
            }
        } else {
            SwiftKernels.gatherRows(count: count, columns: columns, output: output, input: input, rows: rows)
        }
    }

    static func scatterAddRows(
        count: Int, columns: Int, output: FloatPointer, input: ConstFloatPointer, rows: UnsafePointer<Int>
    ) {
        if useC {
            rows.withMemoryRebound(to: Int64.self, capacity: count) { rows in
                ck_scatter_add_rows_f32(count, columns, output, input, rows)
            }
        } else {
            SwiftKernels.scatterAddRows(count: count, columns: columns, output: output, input: input, rows: rows)
        }
    }
}

/// The arguments of one product for ``Kernels/gemmPair(_:_:)``: row-major
/// `C := alpha op(A) op(B) + beta C`.
struct GEMMArguments {
    var transposeA: Bool, transposeB: Bool
    var m: Int, n: Int, k: Int
    var alpha: Float
    var a: ConstFloatPointer, lda: Int
    var b: ConstFloatPointer, ldb: Int
    var beta: Float
    var c: FloatPointer, ldc: Int

    /// The C struct, computing in `precision`.
    func cArguments(_ precision: MatmulPrecision) -> ck_gemm_args {
        ck_gemm_args(
            trans_a: transposeA ? CK_TRANSPOSE_YES : CK_TRANSPOSE_NONE,
            trans_b: transposeB ? CK_TRANSPOSE_YES : CK_TRANSPOSE_NONE, m: m, n: n, k: k, alpha: alpha, a: a,
            lda: lda, b: b, ldb: ldb, beta: beta, c: c, ldc: ldc, bias: nil, precision: precision.c)
    }
}

extension MatmulPrecision {
    /// The C enum.
    var c: ck_gemm_precision {
        switch self {
        case .float32: CK_GEMM_PRECISION_F32
        case .bfloat16: CK_GEMM_PRECISION_BF16
        }
    }
}
