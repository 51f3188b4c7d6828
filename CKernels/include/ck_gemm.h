// GradKit CKernels — single-precision matrix multiply. SPDX-License-Identifier: MIT
#ifndef CK_GEMM_H
#define CK_GEMM_H

#include "ck_config.h"

/// Whether a GEMM operand is used as stored or transposed.
typedef enum ck_transpose {
    CK_TRANSPOSE_NONE = 0,
    CK_TRANSPOSE_YES = 1,
} ck_transpose;

/// Bytes of workspace ck_sgemm_epilogue_f32 needs for these sizes with the
/// current thread count and instruction set. 0 means the call needs none.
size_t ck_sgemm_workspace_size(size_t m, size_t n, size_t k);

/// The activation ck_sgemm_epilogue_f32 applies after the bias.
typedef enum ck_gemm_activation {
    CK_GEMM_ACTIVATION_NONE = 0,
    CK_GEMM_ACTIVATION_RELU = 1, ///< x <= 0 ? 0 : x (NaN stays NaN), as ck_unary_f32's ReLU
} ck_gemm_activation;

/// Row-major SGEMM with a linear layer's epilogue fused in, applied to each
/// tile of C while it is in registers (the one GEMM entry point: plain SGEMM is
/// bias == NULL with CK_GEMM_ACTIVATION_NONE):
///   C := act((alpha * op(A) * op(B) + beta * C) + 1 bias)
///
///   op(A) is m x k: A[i*lda + p] (NONE) or A[p*lda + i] (YES)
///   op(B) is k x n: B[p*ldb + j] (NONE) or B[j*ldb + p] (YES)
///   C     is m x n: C[i*ldc + j]
///   bias  is NULL or n values, one per column, added to every row
///
/// Rounded exactly as the product, then a separate bias add, then the
/// elementwise activation. beta == 0 means C is not read (NaN in C does not
/// propagate), as in BLAS. k == 0 scales C by beta. Leading dimensions are in
/// elements, at least the row length of the stored matrix.
/// Aliasing: C must not overlap A, B, bias or the workspace; A and B may overlap.
/// workspace: 64-byte aligned, `workspace_size` bytes; with less than
/// ck_sgemm_workspace_size(m, n, k) the kernel uses fewer threads, or a slower
/// unpacked loop when even one thread's blocks do not fit.
void ck_sgemm_epilogue_f32(ck_transpose trans_a, ck_transpose trans_b,
                           size_t m, size_t n, size_t k,
                           float alpha, const float *a, ptrdiff_t lda,
                           const float *b, ptrdiff_t ldb,
                           float beta, float *c, ptrdiff_t ldc, const float *bias,
                           ck_gemm_activation activation,
                           void *workspace, size_t workspace_size);

/// One product for ck_sgemm_pair_f32: the arguments of ck_sgemm_epilogue_f32
/// with no activation.
typedef struct ck_gemm_args {
    ck_transpose trans_a, trans_b;
    size_t m, n, k;
    float alpha;
    const float *a;
    ptrdiff_t lda;
    const float *b;
    ptrdiff_t ldb;
    float beta;
    float *c;
    ptrdiff_t ldc;
    const float *bias; // may be NULL
} ck_gemm_args;

/// Bytes of workspace ck_sgemm_pair_f32 needs for these two products.
size_t ck_sgemm_pair_workspace_size(const ck_gemm_args *first, const ck_gemm_args *second);

/// Two independent products (a linear layer's dX = dY W and dW = dYᵀ X), the
/// same results bit for bit as two ck_sgemm_epilogue_f32 calls. Small ones run at
/// the same time, one per thread, where splitting each over the threads would
/// pay two fork/joins for half as much work each; others run one after the
/// other with every thread. Neither C may overlap any operand of the other.
void ck_sgemm_pair_f32(const ck_gemm_args *first, const ck_gemm_args *second, void *workspace,
                       size_t workspace_size);

/// The reference the blocked kernel is tested against: the same contract, a
/// plain triple loop with a double accumulator, single-threaded.
void ck_sgemm_reference_f32(ck_transpose trans_a, ck_transpose trans_b,
                            size_t m, size_t n, size_t k,
                            float alpha, const float *a, ptrdiff_t lda,
                            const float *b, ptrdiff_t ldb,
                            float beta, float *c, ptrdiff_t ldc);

#endif
