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
/// current thread count and instruction set, in either precision. 0 means the
/// call needs none.
size_t ck_sgemm_workspace_size(size_t m, size_t n, size_t k);

/// The activation ck_sgemm_epilogue_f32 applies after the bias.
typedef enum ck_gemm_activation {
    CK_GEMM_ACTIVATION_NONE = 0,
    CK_GEMM_ACTIVATION_RELU = 1, ///< x <= 0 ? 0 : x (NaN stays NaN), as ck_unary_f32's ReLU
} ck_gemm_activation;

/// The precision of the products inside a GEMM, as PyTorch's
/// torch.set_float32_matmul_precision: the operands, C and the result stay FP32.
///
/// CK_GEMM_PRECISION_BF16 is one exact contract, the same bits on every path
/// (portable, AVX2, AVX-512, any thread count, the Swift twin) and chosen to be
/// what AVX512_BF16's vdpbf16ps computes:
///  * Rounding (ck_bf16_round_f32, vcvtneps2bf16): each element of A and B is
///    rounded to bfloat16 (8 significant bits) to nearest, ties to even; a
///    finite value that rounds past the largest bfloat16 becomes infinity; NaN
///    stays NaN, made quiet (its upper 16 bits, quiet bit set); zeros and FP32
///    denormals become a zero of the same sign (bfloat16 has no denormals here).
///  * Order: k is cut into blocks of CK_GEMM_BF16_BLOCK from p = 0. In a block
///    starting at p0, each element of C is one FP32 chain from acc = +0, the
///    pairs (p0, p0+1), (p0+2, p0+3), ... in order, each pair as vdpbf16ps
///    takes it: acc = fma(a[p+1], b[p+1], acc), then acc = fma(a[p], b[p], acc),
///    round to nearest even; a last unpaired p is the single step fma(a[p], b[p], acc)
///    (the hardware's zero partner adds +0, which never changes a chain that starts
///    at +0). Each block is then stored as every GEMM stores it:
///    C := alpha * acc + beta * C, with beta = 1 after the first block; bias and
///    activation follow the last block.
///  * Out of contract (each path is still deterministic): a product of two
///    rounded operands is exact in FP32, so paths compute fma as a multiply and
///    an add, or as an fma, interchangeably; that holds unless a product's
///    magnitude is below 2^-126 or overflows. There, and where a chain passes
///    through a denormal (vdpbf16ps flushes denormal results to zero; these
///    paths keep IEEE gradual underflow), the paths may differ from each other
///    and from vdpbf16ps in the last bits of values near 2^-126. NaN results
///    are NaN, with payload and sign unspecified.
typedef enum ck_gemm_precision {
    CK_GEMM_PRECISION_F32 = 0,  ///< FP32 operands, FP32 fused multiply-adds in k order
    CK_GEMM_PRECISION_BF16 = 1, ///< operands rounded to bfloat16, FP32 sums in pairs (above)
} ck_gemm_precision;

/// The k block of CK_GEMM_PRECISION_BF16's order (the blocked kernel's KC).
#define CK_GEMM_BF16_BLOCK 256

/// y[i] := x[i] rounded to bfloat16 as CK_GEMM_PRECISION_BF16 rounds operands,
/// stored as the FP32 value it denotes (low 16 bits zero). y may equal x.
void ck_bf16_round_f32(size_t count, float *y, const float *x);

/// How CK_GEMM_PRECISION_BF16's pairs are computed on the AVX-512 path. Every
/// choice gives the contract's bits; only the speed differs.
typedef enum ck_bf16_dot {
    /// Operands packed as FP32 (rounded), two FMAs per pair: any AVX-512 CPU.
    CK_BF16_DOT_FMA = 0,
    /// Operands packed as bfloat16 pairs, one vdpbf16ps per pair (AVX512_BF16):
    /// twice the multiply-adds per instruction, half the packed bytes.
    CK_BF16_DOT_VDPBF16PS = 1,
    /// The vdpbf16ps kernel and packs with each vdpbf16ps computed by its
    /// documented two FMAs (AVX-512F): tests the packing and tiles of the
    /// hardware path on CPUs without the instruction. Slower than CK_BF16_DOT_FMA.
    CK_BF16_DOT_EMULATED = 2,
} ck_bf16_dot;

/// Whether the CPU has AVX512_BF16 and its vdpbf16ps agreed with the contract
/// on a check run at first use (256 lanes of random pairs, where the other
/// order, a fused three-term sum or the pair's exact sum would each show).
bool ck_bf16_dot_vdpbf16ps_checked(void);

/// vdpbf16ps's multiply-add rate relative to the FMA's on this core, measured
/// once at first use (2 x the time of a run of FMAs over the time of as many
/// vdpbf16ps); 0 where ck_bf16_dot_vdpbf16ps_checked() is false. About 2 where
/// the two issue at the same rate (AMD Zen 4), about 0.5 where vdpbf16ps issues
/// at a quarter of the FMA's rate (Intel Sapphire and Emerald Rapids).
double ck_bf16_dot_vdpbf16ps_rate(void);

/// The rate from which vdpbf16ps is the default: its kernel also spends a pass
/// making the rounded panels into pairs, so an equal rate does not pay.
#define CK_BF16_DOT_VDPBF16PS_MIN_RATE 1.25

/// The default: CK_BF16_DOT_VDPBF16PS where ck_bf16_dot_vdpbf16ps_checked() and
/// ck_bf16_dot_vdpbf16ps_rate() >= CK_BF16_DOT_VDPBF16PS_MIN_RATE;
/// CK_BF16_DOT_FMA otherwise (the same bits either way).
ck_bf16_dot ck_bf16_dot_detected(void);

/// The choice bfloat16 GEMMs called on this thread use (on the AVX-512 path;
/// the other paths have one kernel each).
ck_bf16_dot ck_bf16_dot_active(void);

/// Makes bfloat16 GEMMs called on this thread use `requested`; returns the
/// choice now active. CK_BF16_DOT_VDPBF16PS is granted only where checked,
/// CK_BF16_DOT_EMULATED only on AVX-512 CPUs; otherwise CK_BF16_DOT_FMA. For
/// tests and benchmarks; other threads are unaffected.
ck_bf16_dot ck_bf16_dot_select(ck_bf16_dot requested);

/// Ends this thread's ck_bf16_dot_select: back to the detected choice.
void ck_bf16_dot_clear(void);

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
/// precision: how op(A) op(B) is computed (ck_gemm_precision).
/// Aliasing: C must not overlap A, B, bias or the workspace; A and B may overlap.
/// workspace: 64-byte aligned, `workspace_size` bytes; with less than
/// ck_sgemm_workspace_size(m, n, k) the kernel uses fewer threads, or a slower
/// unpacked loop when even one thread's blocks do not fit.
void ck_sgemm_epilogue_f32(ck_transpose trans_a, ck_transpose trans_b,
                           size_t m, size_t n, size_t k,
                           float alpha, const float *a, ptrdiff_t lda,
                           const float *b, ptrdiff_t ldb,
                           float beta, float *c, ptrdiff_t ldc, const float *bias,
                           ck_gemm_activation activation, ck_gemm_precision precision,
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
    ck_gemm_precision precision;
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

/// The reference the blocked kernel is tested against in FP32 precision: the
/// same contract, a plain triple loop with a double accumulator, single-threaded.
void ck_sgemm_reference_f32(ck_transpose trans_a, ck_transpose trans_b,
                            size_t m, size_t n, size_t k,
                            float alpha, const float *a, ptrdiff_t lda,
                            const float *b, ptrdiff_t ldb,
                            float beta, float *c, ptrdiff_t ldc);

#endif
