// GradKit CKernels — SGEMM. SPDX-License-Identifier: MIT
//
// BLIS structure (flame/blis): for each NC-wide block of columns and KC-deep
// block of k, op(B) is packed into NR-wide panels; each thread packs MC x KC
// blocks of op(A) into MR-tall panels and calls the micro-kernel on every
// MR x NR tile. The micro-kernel contract is one line:
//     C[0:MR, 0:NR] := alpha * Ap * Bp + beta * C      (beta == 0: C not read)
// Edge tiles run the micro-kernel into a local tile and merge the valid part.
// An operand already in the micro-kernel's layout (B untransposed with whole
// column tiles, A transposed with whole row tiles) is read in place.
// Products of a few rows skip packing (direct loops), where packing would cost
// more than it saves.
// In bfloat16 precision (ck_gemm.h) the packs round the operands as they copy
// them, so every product reads rounded values: no operand is read in place,
// the direct loops round as they read, and the micro-kernels take k in pairs.
// Where vdpbf16ps exists and pays (ck_bf16_dot_detected), the AVX-512 packs
// then turn the rounded panels into bfloat16 pairs and one vdpbf16ps per pair
// replaces two FMAs.
#include "ck_gemm.h"
#include "ck_internal.h"

#include <stdatomic.h>
#include <string.h>

// Every tile is stored as (alpha * acc) + (beta * C) with two roundings, never
// fused: full tiles (micro-kernel) and edge tiles (merge_tile) must round alike,
// or C would depend on where the thread split puts the tile edges.
#pragma clang fp contract(off)

#define GEMM_MAX_MR 12
#define GEMM_MAX_NR 32
#define GEMM_ALIGN 64u

// ---------------------------------------------------------------- bfloat16 rounding

typedef float ck_v4f __attribute__((vector_size(16)));
typedef uint32_t ck_u32x16 __attribute__((vector_size(64)));

// x rounded to bfloat16 as ck_gemm.h specifies (vcvtneps2bf16), as FP32 bits:
// to nearest even by adding 0x7fff plus the lowest kept bit and truncating (the
// carry takes values past the largest bfloat16 to infinity, and leaves infinity
// alone); NaN made quiet and truncated; zeros and denormals to a signed zero.
CK_INLINE uint32_t bf16_round_bits(uint32_t u) {
    uint32_t nearest = (u + 0x7fffu + ((u >> 16) & 1u)) & 0xffff0000u;
    uint32_t quiet = (u | 0x00400000u) & 0xffff0000u;
    uint32_t r = (u & 0x7fffffffu) > 0x7f800000u ? quiet : nearest;
    return (u & 0x7f800000u) == 0 ? u & 0x80000000u : r;
}

CK_INLINE float bf16_round(float x) {
    uint32_t u;
    memcpy(&u, &x, sizeof u);
    u = bf16_round_bits(u);
    memcpy(&x, &u, sizeof x);
    return x;
}

// bf16_round on each lane (the transposing packs round what they load).
CK_INLINE ck_v4f bf16_round_v4(ck_v4f x) {
    for (int lane = 0; lane < 4; ++lane) x[lane] = bf16_round(x[lane]);
    return x;
}

#if CK_HAVE_X86
// The same on sixteen lanes, in vector operations (comparisons give all-ones
// lanes): the AVX-512 transpose rounds eight of these per block.
CK_INLINE CK_TARGET_AVX512 ck_f32x16 bf16_round_v16(ck_f32x16 x) {
    ck_u32x16 u = (ck_u32x16)x;
    ck_u32x16 nearest = (u + 0x7fffu + ((u >> 16) & 1u)) & 0xffff0000u;
    ck_u32x16 quiet = (u | 0x00400000u) & 0xffff0000u;
    ck_u32x16 nan = (ck_u32x16)((u & 0x7fffffffu) > 0x7f800000u);
    ck_u32x16 tiny = (ck_u32x16)((u & 0x7f800000u) == 0u);
    ck_u32x16 r = (nearest & ~nan) | (quiet & nan);
    return (ck_f32x16)((r & ~tiny) | (u & 0x80000000u & tiny));
}
#endif

void ck_bf16_round_f32(size_t count, float *y, const float *x) {
    for (size_t i = 0; i < count; ++i) y[i] = bf16_round(x[i]);
}

// dst[0 : n] := src[0 : n] rounded to bfloat16: the copying packs in bfloat16
// precision (the FP32 ones memcpy). One body per instruction set, so the
// rounding runs at the vector width the micro-kernel has.
typedef void (*round_row_fn)(float *CK_RESTRICT dst, const float *CK_RESTRICT src, size_t n);

CK_INLINE void round_row_body(float *CK_RESTRICT dst, const float *CK_RESTRICT src, size_t n) {
    for (size_t i = 0; i < n; ++i) dst[i] = bf16_round(src[i]);
}

static void round_row(float *CK_RESTRICT dst, const float *CK_RESTRICT src, size_t n) { round_row_body(dst, src, n); }
#if CK_HAVE_X86
CK_TARGET_AVX2 static void round_row_avx2(float *CK_RESTRICT dst, const float *CK_RESTRICT src, size_t n) {
    round_row_body(dst, src, n);
}
CK_TARGET_AVX512 static void round_row_avx512(float *CK_RESTRICT dst, const float *CK_RESTRICT src, size_t n) {
    round_row_body(dst, src, n);
}
#endif

// bias: NULL, or NR values added to every row after alpha and beta (the fused
// bias of a linear layer; only on the last k block, so the sum is rounded as
// (Σ_k a·b) + bias, exactly as a separate bias add would round it).
// relu: then x <= 0 ? 0 : x (also on the last k block only; NaN stays NaN, -0
// becomes +0, as the elementwise ReLU).
// a_step, b_step: floats from one k to the next in ap and bp (MR and NR for
// packed panels; lda and ldb when an operand is read in place).
typedef void (*gemm_micro_fn)(size_t kc, const float *ap, ptrdiff_t a_step, const float *bp, ptrdiff_t b_step, float *c,
                              ptrdiff_t ldc, float alpha, float beta, const float *bias, int relu);

// The epilogue of one element of C, the one definition of it in this file:
//     act(v + bias[j])
// bias == NULL adds nothing (not even +0, which would turn -0 into +0); relu:
// x <= 0 ? +0 : x (NaN stays NaN, -0 becomes +0), as the elementwise ReLU. Each
// operation rounds on its own (contract(off) above), so a product stored through
// it has the bits of a GEMM followed by a separate bias add and ReLU.
CK_INLINE float finish(float v, const float *bias, size_t j, int relu) {
    if (bias) v = v + bias[j];
    return relu && v <= 0.0f ? 0.0f : v;
}

// How every path stores a row of C:
//     row[j] := finish(alpha * acc[j] + beta * row[j])      for j < n
// beta == 0: row is not read (NaN in C does not propagate). Inlined into each
// micro-kernel with a constant n, it compiles to that kernel's vector width.
CK_INLINE void store_row(float *CK_RESTRICT row, const float *CK_RESTRICT acc, size_t n, float alpha, float beta,
                         const float *CK_RESTRICT bias, int relu) {
    // 16 floats at a time: under -march=native clang would otherwise split this
    // loop into 256-bit vectors inside the AVX-512 micro-kernels.
#pragma clang loop vectorize_width(16)
    for (size_t j = 0; j < n; ++j) {
        float v = alpha * acc[j];
        if (beta != 0.0f) v = v + beta * row[j];
        row[j] = finish(v, bias, j, relu);
    }
}

// dst[d * dst_stride + i] = src[i * src_stride + d] for i < rows, d < depth: the
// transposing packs (op(A) = A, op(B) = Bᵀ). Each comes as is and rounding to
// bfloat16 (_bf16): one body compiled twice, so the FP32 packs are unchanged.
typedef void (*transpose_fn)(const float *src, ptrdiff_t src_stride, size_t rows, size_t depth, float *dst,
                             ptrdiff_t dst_stride);

typedef struct gemm_config {
    size_t mr, nr, kc, mc, nc;
    gemm_micro_fn micro;
    gemm_micro_fn micro_rows; // A row-major in place (third argument: lda); NULL if none
    transpose_fn transpose;
    round_row_fn round_row;   // the copying packs' rounding (bfloat16 precision)
    int pairs;                // packed panels made into bfloat16 pairs (the vdpbf16ps kernels)
} gemm_config;

static void transpose_into(const float *src, ptrdiff_t src_stride, size_t rows, size_t depth, float *dst,
                           ptrdiff_t dst_stride);
static void transpose_into_bf16(const float *src, ptrdiff_t src_stride, size_t rows, size_t depth, float *dst,
                                ptrdiff_t dst_stride);
#if CK_HAVE_X86
static void transpose_into_avx512(const float *src, ptrdiff_t src_stride, size_t rows, size_t depth, float *dst,
                                  ptrdiff_t dst_stride);
static void transpose_into_avx512_bf16(const float *src, ptrdiff_t src_stride, size_t rows, size_t depth, float *dst,
                                       ptrdiff_t dst_stride);
#endif

// ---------------------------------------------------------------- micro-kernels

// Every micro-kernel comes in two orders of k: one after the other (FP32), and
// in pairs, the second of each pair first (bfloat16, the order of vdpbf16ps; an
// odd last k alone). `paired` is a constant in each instance.

// Portable: 4 x 8, plain C the compiler keeps in registers.
enum { PORTABLE_MR = 4, PORTABLE_NR = 8 };

// acc += a[0 : MR]ᵀ b[0 : NR], one k step (a multiply and an add: contract(off)).
CK_INLINE void portable_step(float acc[PORTABLE_MR][PORTABLE_NR], const float *a, const float *b) {
    for (int i = 0; i < PORTABLE_MR; ++i)
        for (int j = 0; j < PORTABLE_NR; ++j) acc[i][j] += a[i] * b[j];
}

CK_INLINE void micro_portable_body(size_t kc, const float *ap, ptrdiff_t a_step, const float *bp, ptrdiff_t b_step,
                                   float *c, ptrdiff_t ldc, float alpha, float beta, const float *bias, int relu,
                                   int paired) {
    float acc[PORTABLE_MR][PORTABLE_NR] = { { 0 } };
    for (size_t q = 0; q < kc; ++q) {
        size_t p = paired && (q | 1) < kc ? q ^ 1 : q; // k = 1, 0, 3, 2, ... when paired
        portable_step(acc, ap + (ptrdiff_t)p * a_step, bp + (ptrdiff_t)p * b_step);
    }
    for (int i = 0; i < PORTABLE_MR; ++i) store_row(c + (ptrdiff_t)i * ldc, acc[i], PORTABLE_NR, alpha, beta, bias, relu);
}

static void micro_portable(size_t kc, const float *ap, ptrdiff_t a_step, const float *bp, ptrdiff_t b_step, float *c,
                           ptrdiff_t ldc, float alpha, float beta, const float *bias, int relu) {
    micro_portable_body(kc, ap, a_step, bp, b_step, c, ldc, alpha, beta, bias, relu, 0);
}

static void micro_portable_bf16(size_t kc, const float *ap, ptrdiff_t a_step, const float *bp, ptrdiff_t b_step,
                                float *c, ptrdiff_t ldc, float alpha, float beta, const float *bias, int relu) {
    micro_portable_body(kc, ap, a_step, bp, b_step, c, ldc, alpha, beta, bias, relu, 1);
}

#if CK_HAVE_X86
// AVX2 + FMA: 6 x 16, twelve ymm accumulators.
CK_INLINE CK_TARGET_AVX2 void avx2_step(__m256 acc[6][2], const float *a_, const float *b_) {
    __m256 b0 = _mm256_loadu_ps(b_), b1 = _mm256_loadu_ps(b_ + 8);
#pragma clang loop unroll(full)
    for (int i = 0; i < 6; ++i) {
        __m256 a = _mm256_broadcast_ss(a_ + i);
        acc[i][0] = _mm256_fmadd_ps(a, b0, acc[i][0]);
        acc[i][1] = _mm256_fmadd_ps(a, b1, acc[i][1]);
    }
}

CK_INLINE CK_TARGET_AVX2 void micro_avx2_body(size_t kc, const float *ap, ptrdiff_t a_step, const float *bp,
                                              ptrdiff_t b_step, float *c, ptrdiff_t ldc, float alpha, float beta,
                                              const float *bias, int relu, int paired) {
    __m256 acc[6][2];
    for (int i = 0; i < 6; ++i) acc[i][0] = acc[i][1] = _mm256_setzero_ps();
    if (paired) {
        for (size_t q = 0; q < kc; ++q) { // k = 1, 0, 3, 2, ... (see CK_MICRO_AVX512)
            size_t p = (q | 1) < kc ? q ^ 1 : q;
            avx2_step(acc, ap + (ptrdiff_t)p * a_step, bp + (ptrdiff_t)p * b_step);
        }
    } else {
        for (size_t p = 0; p < kc; ++p) {
            avx2_step(acc, ap, bp);
            ap += a_step;
            bp += b_step;
        }
    }
    for (int i = 0; i < 6; ++i) {
        float t[16]; // acc[i] as floats: the copy compiles away
        __builtin_memcpy(t, acc[i], sizeof t);
        store_row(c + (ptrdiff_t)i * ldc, t, 16, alpha, beta, bias, relu);
    }
}

CK_TARGET_AVX2 static void micro_avx2(size_t kc, const float *ap, ptrdiff_t a_step, const float *bp, ptrdiff_t b_step,
                                      float *c, ptrdiff_t ldc, float alpha, float beta, const float *bias, int relu) {
    micro_avx2_body(kc, ap, a_step, bp, b_step, c, ldc, alpha, beta, bias, relu, 0);
}

CK_TARGET_AVX2 static void micro_avx2_bf16(size_t kc, const float *ap, ptrdiff_t a_step, const float *bp,
                                           ptrdiff_t b_step, float *c, ptrdiff_t ldc, float alpha, float beta,
                                           const float *bias, int relu) {
    micro_avx2_body(kc, ap, a_step, bp, b_step, c, ldc, alpha, beta, bias, relu, 1);
}

// Stores an MR x 32 tile of accumulators (two zmm per row) through store_row:
// inlined with a constant mr, it compiles to the rows' vector stores.
CK_INLINE CK_TARGET_AVX512 void store_tile_avx512(int mr, const __m512 acc[][2], float *c, ptrdiff_t ldc, float alpha,
                                                  float beta, const float *bias, int relu) {
    for (int i = 0; i < mr; ++i) {
        float t[32]; // acc[i] as floats: the copy compiles away
        __builtin_memcpy(t, acc[i], sizeof t);
        store_row(c + (ptrdiff_t)i * ldc, t, 32, alpha, beta, bias, relu);
    }
}

// AVX-512: MR x 32 with MR = 12 (twenty-four zmm accumulators) or 8 (sixteen,
// for row counts that are multiples of 8 but not of 12, such as 64 and 128:
// no partial tiles). A values are broadcast from memory straight into the FMAs.
// NAME(kc, ap, STRIDE, ...): STRIDE is a_step (floats from one k to the next; rows
// adjacent) for panels, or a_row (floats from one row to the next; k adjacent)
// for row-major A read in place. PAIRED: k in pairs, the second first (bfloat16).
#define CK_AVX512_STEP(MR, A, B)                                                                                    \
    do {                                                                                                             \
        const float *a_ = (A), *b_ = (B);                                                                            \
        __m512 b0 = _mm512_loadu_ps(b_), b1 = _mm512_loadu_ps(b_ + 16);                                             \
        _Pragma("clang loop unroll(full)") for (int i = 0; i < MR; ++i) {                                            \
            __m512 a = _mm512_set1_ps(a_[(ptrdiff_t)i * a_row_]);                                                    \
            acc[i][0] = _mm512_fmadd_ps(a, b0, acc[i][0]);                                                           \
            acc[i][1] = _mm512_fmadd_ps(a, b1, acc[i][1]);                                                           \
        }                                                                                                            \
    } while (0)
#define CK_MICRO_AVX512(NAME, MR, STRIDE, A_STEP, A_ROW, PAIRED)                                                    \
    CK_TARGET_AVX512 static void NAME(size_t kc, const float *ap, ptrdiff_t STRIDE, const float *bp,                \
                                      ptrdiff_t b_step, float *c, ptrdiff_t ldc, float alpha, float beta,            \
                                      const float *bias, int relu) {                                                 \
        const ptrdiff_t a_step_ = (A_STEP), a_row_ = (A_ROW);                                                        \
        __m512 acc[MR][2];                                                                                           \
        for (int i = 0; i < MR; ++i) acc[i][0] = acc[i][1] = _mm512_setzero_ps();                                   \
        if (PAIRED) {                                                                                                \
            /* k = 1, 0, 3, 2, ...: one loop of one step, which keeps the tile in registers (a loop over pairs  \
               and a tail loop spilled the 12-row tile between them: half the speed). */                         \
            for (size_t q = 0; q < kc; ++q) {                                                                        \
                size_t p = (q | 1) < kc ? q ^ 1 : q;                                                                 \
                CK_AVX512_STEP(MR, ap + (ptrdiff_t)p * a_step_, bp + (ptrdiff_t)p * b_step);                         \
            }                                                                                                        \
        } else {                                                                                                     \
            for (size_t p = 0; p < kc; ++p) {                                                                        \
                CK_AVX512_STEP(MR, ap, bp);                                                                          \
                ap += a_step_;                                                                                       \
                bp += b_step;                                                                                        \
            }                                                                                                        \
        }                                                                                                            \
        store_tile_avx512(MR, acc, c, ldc, alpha, beta, bias, relu);                                                \
    }
CK_MICRO_AVX512(micro_avx512_12, 12, a_step, a_step, 1, 0)
CK_MICRO_AVX512(micro_avx512_8, 8, a_step, a_step, 1, 0)
CK_MICRO_AVX512(micro_avx512_rows_8, 8, a_row, 1, a_row, 0)
CK_MICRO_AVX512(micro_avx512_12_bf16, 12, a_step, a_step, 1, 1)
CK_MICRO_AVX512(micro_avx512_8_bf16, 8, a_step, a_step, 1, 1)

// vdpbf16ps: MR x 32 on bfloat16 pair panels (pair_rows): per pair of k, one
// 32-bit broadcast of A's pair per row and two vdpbf16ps per row, each the two
// multiply-adds of the contract (the odd k's product first). a_step and b_step
// are the words from one pair to the next (MR and 32). DOT is the instruction,
// or its documented result computed by two FMAs (dot_emulated).
CK_INLINE CK_TARGET_AVX512 __m512 dot_emulated(__m512 acc, __m512i a, __m512i b) {
    const __m512i high = _mm512_set1_epi32((int)0xffff0000u);
    acc = _mm512_fmadd_ps(_mm512_castsi512_ps(_mm512_and_si512(a, high)), _mm512_castsi512_ps(_mm512_and_si512(b, high)),
                          acc);
    return _mm512_fmadd_ps(_mm512_castsi512_ps(_mm512_slli_epi32(a, 16)), _mm512_castsi512_ps(_mm512_slli_epi32(b, 16)),
                           acc);
}

CK_INLINE CK_TARGET_AVX512_BF16 __m512 dot_hardware(__m512 acc, __m512i a, __m512i b) {
    return _mm512_dpbf16_ps(acc, (__m512bh)a, (__m512bh)b);
}

#define CK_MICRO_DOT(NAME, MR, TARGET, DOT)                                                                         \
    TARGET static void NAME(size_t kc, const float *ap, ptrdiff_t a_step, const float *bp, ptrdiff_t b_step,         \
                            float *c, ptrdiff_t ldc, float alpha, float beta, const float *bias, int relu) {         \
        __m512 acc[MR][2];                                                                                           \
        for (int i = 0; i < MR; ++i) acc[i][0] = acc[i][1] = _mm512_setzero_ps();                                   \
        for (size_t q = 0; 2 * q < kc; ++q) {                                                                        \
            __m512i b0 = _mm512_loadu_si512(bp), b1 = _mm512_loadu_si512(bp + 16);                                   \
            _Pragma("clang loop unroll(full)") for (int i = 0; i < MR; ++i) {                                        \
                __m512i a = _mm512_castps_si512(_mm512_set1_ps(ap[i]));                                              \
                acc[i][0] = DOT(acc[i][0], a, b0);                                                                   \
                acc[i][1] = DOT(acc[i][1], a, b1);                                                                   \
            }                                                                                                        \
            ap += a_step;                                                                                            \
            bp += b_step;                                                                                            \
        }                                                                                                            \
        store_tile_avx512(MR, acc, c, ldc, alpha, beta, bias, relu);                                                \
    }
CK_MICRO_DOT(micro_dot_12, 12, CK_TARGET_AVX512_BF16, dot_hardware)
CK_MICRO_DOT(micro_dot_8, 8, CK_TARGET_AVX512_BF16, dot_hardware)
CK_MICRO_DOT(micro_dot_emulated_12, 12, CK_TARGET_AVX512, dot_emulated)
CK_MICRO_DOT(micro_dot_emulated_8, 8, CK_TARGET_AVX512, dot_emulated)

// A panel of kc rows of `width` values already rounded to bfloat16 (row p holds
// k = p) made, in place, into the layout vdpbf16ps reads: ceil(kc / 2) rows of
// `width` 32-bit words, word (q, r) = bits(row 2q)[r] >> 16 | bits(row 2q + 1)[r]
// & 0xffff0000, the even k in the low half; a missing last partner is +0 (its
// product +0 leaves a chain from +0 unchanged). Row q is written after rows 2q
// and 2q + 1 are read, over rows already read: in place is safe.
CK_TARGET_AVX512 static void pair_rows(float *panel, size_t kc, size_t width) {
    const __m512i high = _mm512_set1_epi32((int)0xffff0000u);
    for (size_t q = 0; 2 * q < kc; ++q) {
        const float *even = panel + 2 * q * width, *odd = even + width;
        int partner = 2 * q + 1 < kc;
        for (size_t r = 0; r < width; r += 16) {
            __mmask16 lanes = width - r >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (width - r)) - 1);
            __m512i lo = _mm512_maskz_loadu_epi32(lanes, even + r);
            __m512i hi = partner ? _mm512_maskz_loadu_epi32(lanes, odd + r) : _mm512_setzero_si512();
            __m512i word = _mm512_or_si512(_mm512_srli_epi32(lo, 16), _mm512_and_si512(hi, high));
            _mm512_mask_storeu_epi32(panel + q * width + r, lanes, word);
        }
    }
}
#endif

// ---------------------------------------------------------------- the bfloat16 dot product

// A thread's override (-1: none), as ck_isa_select.
static _Thread_local int thread_dot = -1;

#if CK_HAVE_X86
CK_TARGET_AVX512_BF16 static void dot_lanes_hardware(float *acc, const float *a, const float *b) {
    __m512 r = dot_hardware(_mm512_loadu_ps(acc), _mm512_loadu_si512(a), _mm512_loadu_si512(b));
    _mm512_storeu_ps(acc, r);
}

CK_TARGET_AVX512 static void dot_lanes_emulated(float *acc, const float *a, const float *b) {
    __m512 r = dot_emulated(_mm512_loadu_ps(acc), _mm512_loadu_si512(a), _mm512_loadu_si512(b));
    _mm512_storeu_ps(acc, r);
}

// Whether this CPU's vdpbf16ps computes the contract's two roundings in its
// order: 256 lanes of random bfloat16 pairs (magnitudes 2^-12 to 2^13, normal
// products) and accumulators. About one lane in ten tells the contract from
// the other order, from a fused three-term sum and from adding the pair's
// exact sum; the bits of all 256 must agree.
static int vdpbf16ps_matches_contract(void) {
    enum { LANES = 256 };
    float a[LANES], b[LANES], acc[LANES], expected[LANES];
    uint64_t state = 0x9e3779b97f4a7c15u;
    for (size_t i = 0; i < 3 * LANES; ++i) {
        state = state * 6364136223846793005u + 1442695040888963407u;
        uint32_t bits = (uint32_t)(state >> 32);
        uint32_t exponent = 127 - 12 + (bits >> 8) % 25; // 2^-12 .. 2^12
        uint32_t lo = (bits & 0x8000u) << 16 | exponent << 23 | (bits & 0x7fu) << 16;
        uint32_t hi = (bits & 0x80000000u) | ((127 - 12 + (bits >> 16) % 25) << 23) | (bits & 0x7f00u) << 8;
        uint32_t word = lo >> 16 | hi; // two bfloat16: even k low, odd k high
        if (i < LANES) memcpy(&a[i], &word, 4);
        else if (i < 2 * LANES) memcpy(&b[i - LANES], &word, 4);
        else acc[i - 2 * LANES] = (float)(int32_t)bits * 0x1p-31f * 64.0f;
    }
    memcpy(expected, acc, sizeof acc);
    for (size_t i = 0; i < LANES; i += 16) {
        dot_lanes_hardware(acc + i, a + i, b + i);
        dot_lanes_emulated(expected + i, a + i, b + i);
    }
    return memcmp(acc, expected, sizeof acc) == 0;
}
#endif

#if CK_HAVE_X86
// Cycles (time-stamp counter) for 16 independent chains of 256 steps of `dot`
// on register operands: the instruction's throughput, not its latency.
#define CK_THROUGHPUT_LOOP(NAME, TARGET, STEP)                                                                      \
    TARGET static uint64_t NAME(void) {                                                                              \
        __m512 acc[16];                                                                                              \
        __m512i a = _mm512_set1_epi32(0x3f803f80), b = _mm512_set1_epi32(0x3f7f3f7f);                               \
        for (int i = 0; i < 16; ++i) acc[i] = _mm512_set1_ps((float)i);                                             \
        uint64_t start = __rdtsc();                                                                                  \
        for (int n = 0; n < 256; ++n) {                                                                              \
            _Pragma("clang loop unroll(full)") for (int i = 0; i < 16; ++i) acc[i] = STEP(acc[i], a, b);            \
            __asm__ volatile("" : "+v"(a));                                                                          \
        }                                                                                                            \
        uint64_t cycles = __rdtsc() - start;                                                                         \
        __m512 sum = acc[0];                                                                                         \
        for (int i = 1; i < 16; ++i) sum = _mm512_add_ps(sum, acc[i]);                                               \
        volatile float sink = _mm512_reduce_add_ps(sum);                                                             \
        (void)sink;                                                                                                  \
        return cycles;                                                                                               \
    }
CK_INLINE CK_TARGET_AVX512 __m512 fma_step(__m512 acc, __m512i a, __m512i b) {
    return _mm512_fmadd_ps(_mm512_castsi512_ps(a), acc, _mm512_castsi512_ps(b));
}
CK_THROUGHPUT_LOOP(fma_cycles, CK_TARGET_AVX512, fma_step)
CK_THROUGHPUT_LOOP(vdpbf16ps_cycles, CK_TARGET_AVX512_BF16, dot_hardware)

// vdpbf16ps's multiply-add rate over the FMA's on this core: each of its lanes
// does two multiply-adds, an FMA lane one, so 2 x FMA time / vdpbf16ps time for
// the same count. The fastest of 9 alternating runs of each (under 0.1 ms in all)
// keeps an interruption or the clock's warm-up out of the figure.
static double vdpbf16ps_measured_rate(void) {
    uint64_t fma = UINT64_MAX, dot = UINT64_MAX;
    for (int run = 0; run < 9; ++run) {
        uint64_t f = fma_cycles(), d = vdpbf16ps_cycles();
        if (f < fma) fma = f;
        if (d < dot) dot = d;
    }
    return dot ? 2.0 * (double)fma / (double)dot : 0;
}
#endif

// Whether vdpbf16ps exists and agreed with the contract, and its relative rate
// (0 where it does not), decided once: -1 until first use.
static _Atomic int vdpbf16ps_state = -1;
static _Atomic double vdpbf16ps_rate = 0;

bool ck_bf16_dot_vdpbf16ps_checked(void) {
    int state = atomic_load_explicit(&vdpbf16ps_state, memory_order_acquire);
    if (state < 0) {
        int checked = 0;
        double rate = 0;
#if CK_HAVE_X86
        checked = ck_isa_detected() == CK_ISA_AVX512 && ck_cpu_has_avx512_bf16() && vdpbf16ps_matches_contract();
        if (checked) rate = vdpbf16ps_measured_rate();
#endif
        // The first thread to finish decides; a racing thread's measurement is dropped.
        int expected = -1;
        if (atomic_compare_exchange_strong(&vdpbf16ps_state, &expected, -2)) {
            atomic_store_explicit(&vdpbf16ps_rate, rate, memory_order_relaxed);
            atomic_store_explicit(&vdpbf16ps_state, checked, memory_order_release);
        }
        while ((state = atomic_load_explicit(&vdpbf16ps_state, memory_order_acquire)) < 0) {}
    }
    return state == 1;
}

double ck_bf16_dot_vdpbf16ps_rate(void) {
    return ck_bf16_dot_vdpbf16ps_checked() ? atomic_load_explicit(&vdpbf16ps_rate, memory_order_relaxed) : 0;
}

ck_bf16_dot ck_bf16_dot_detected(void) {
    return ck_bf16_dot_vdpbf16ps_rate() >= CK_BF16_DOT_VDPBF16PS_MIN_RATE ? CK_BF16_DOT_VDPBF16PS : CK_BF16_DOT_FMA;
}

ck_bf16_dot ck_bf16_dot_active(void) { return thread_dot >= 0 ? (ck_bf16_dot)thread_dot : ck_bf16_dot_detected(); }

ck_bf16_dot ck_bf16_dot_select(ck_bf16_dot requested) {
    ck_bf16_dot granted = CK_BF16_DOT_FMA;
    if (requested == CK_BF16_DOT_VDPBF16PS && ck_bf16_dot_vdpbf16ps_checked()) granted = requested;
    if (requested == CK_BF16_DOT_EMULATED && ck_isa_detected() == CK_ISA_AVX512) granted = requested;
    thread_dot = (int)granted;
    return granted;
}

void ck_bf16_dot_clear(void) { thread_dot = -1; }

// The blocking for this instruction set and m rows. Each element of C is one
// dot product in k order (bfloat16: in pairs) whatever MR is, so the choice
// never changes results. KC is CK_GEMM_BF16_BLOCK on every path: the k blocks
// are part of the bfloat16 contract. Neither the blocking nor the workspace
// depends on the precision.
static gemm_config current_config(size_t m, int bf16) {
    (void)m, (void)bf16;
#if CK_HAVE_X86
    switch (ck_isa_active()) {
    case CK_ISA_AVX512: {
        ck_bf16_dot dot = bf16 ? ck_bf16_dot_active() : CK_BF16_DOT_FMA;
        if (dot != CK_BF16_DOT_FMA) {
            int hardware = dot == CK_BF16_DOT_VDPBF16PS, eight = m % 12 != 0 && m % 8 == 0;
            gemm_micro_fn micro = eight ? (hardware ? micro_dot_8 : micro_dot_emulated_8)
                                        : (hardware ? micro_dot_12 : micro_dot_emulated_12);
            return (gemm_config){ .mr = eight ? 8 : 12, .nr = 32, .kc = CK_GEMM_BF16_BLOCK, .mc = 144, .nc = 2048,
                                  .micro = micro, .transpose = transpose_into_avx512_bf16,
                                  .round_row = round_row_avx512, .pairs = 1 };
        }
        if (m % 12 != 0 && m % 8 == 0)
            return (gemm_config){ .mr = 8, .nr = 32, .kc = CK_GEMM_BF16_BLOCK, .mc = 144, .nc = 2048,
                                  .micro = bf16 ? micro_avx512_8_bf16 : micro_avx512_8,
                                  .micro_rows = bf16 ? NULL : micro_avx512_rows_8,
                                  .transpose = bf16 ? transpose_into_avx512_bf16 : transpose_into_avx512,
                                  .round_row = round_row_avx512 };
        return (gemm_config){ .mr = 12, .nr = 32, .kc = CK_GEMM_BF16_BLOCK, .mc = 144, .nc = 2048,
                              .micro = bf16 ? micro_avx512_12_bf16 : micro_avx512_12,
                              .transpose = bf16 ? transpose_into_avx512_bf16 : transpose_into_avx512,
                              .round_row = round_row_avx512 };
    }
    case CK_ISA_AVX2:
        return (gemm_config){ .mr = 6, .nr = 16, .kc = CK_GEMM_BF16_BLOCK, .mc = 96, .nc = 2048,
                              .micro = bf16 ? micro_avx2_bf16 : micro_avx2,
                              .transpose = bf16 ? transpose_into_bf16 : transpose_into, .round_row = round_row_avx2 };
    case CK_ISA_PORTABLE: break;
    }
#endif
    return (gemm_config){ .mr = PORTABLE_MR, .nr = PORTABLE_NR, .kc = CK_GEMM_BF16_BLOCK, .mc = 64, .nc = 1024,
                          .micro = bf16 ? micro_portable_bf16 : micro_portable,
                          .transpose = bf16 ? transpose_into_bf16 : transpose_into, .round_row = round_row };
}

// ---------------------------------------------------------------- packing

typedef struct gemm_operands {
    ck_transpose ta, tb;
    size_t m, n, k;
    float alpha, beta;
    const float *a, *b;
    ptrdiff_t lda, ldb, ldc;
    float *c;
    const float *bias;  // n values added to every row of C, or NULL
    int relu;           // then max(0, .) as the elementwise ReLU rounds it
    int bf16;           // CK_GEMM_PRECISION_BF16: operands rounded, k in pairs
} gemm_operands;

// dst[d * dst_stride + i] = src[i * src_stride + d] for i < rows, d < depth:
// 4 x 4 blocks through four vector registers (the shuffles compile to SSE on
// any x86-64), the edges one by one.
CK_INLINE void transpose_body(const float *src, ptrdiff_t src_stride, size_t rows, size_t depth, float *dst,
                              ptrdiff_t dst_stride, int round) {
    size_t i = 0;
    for (; i + 4 <= rows; i += 4) {
        size_t d = 0;
        for (; d + 4 <= depth; d += 4) {
            ck_v4f r0, r1, r2, r3;
            memcpy(&r0, src + (ptrdiff_t)i * src_stride + (ptrdiff_t)d, sizeof r0);
            memcpy(&r1, src + (ptrdiff_t)(i + 1) * src_stride + (ptrdiff_t)d, sizeof r1);
            memcpy(&r2, src + (ptrdiff_t)(i + 2) * src_stride + (ptrdiff_t)d, sizeof r2);
            memcpy(&r3, src + (ptrdiff_t)(i + 3) * src_stride + (ptrdiff_t)d, sizeof r3);
            if (round) {
                r0 = bf16_round_v4(r0), r1 = bf16_round_v4(r1);
                r2 = bf16_round_v4(r2), r3 = bf16_round_v4(r3);
            }
            ck_v4f t0 = __builtin_shufflevector(r0, r1, 0, 4, 1, 5), t1 = __builtin_shufflevector(r0, r1, 2, 6, 3, 7);
            ck_v4f t2 = __builtin_shufflevector(r2, r3, 0, 4, 1, 5), t3 = __builtin_shufflevector(r2, r3, 2, 6, 3, 7);
            ck_v4f c0 = __builtin_shufflevector(t0, t2, 0, 1, 4, 5), c1 = __builtin_shufflevector(t0, t2, 2, 3, 6, 7);
            ck_v4f c2 = __builtin_shufflevector(t1, t3, 0, 1, 4, 5), c3 = __builtin_shufflevector(t1, t3, 2, 3, 6, 7);
            memcpy(dst + (ptrdiff_t)d * dst_stride + (ptrdiff_t)i, &c0, sizeof c0);
            memcpy(dst + (ptrdiff_t)(d + 1) * dst_stride + (ptrdiff_t)i, &c1, sizeof c1);
            memcpy(dst + (ptrdiff_t)(d + 2) * dst_stride + (ptrdiff_t)i, &c2, sizeof c2);
            memcpy(dst + (ptrdiff_t)(d + 3) * dst_stride + (ptrdiff_t)i, &c3, sizeof c3);
        }
        for (; d < depth; ++d)
            for (size_t r = i; r < i + 4; ++r) {
                float v = src[(ptrdiff_t)r * src_stride + (ptrdiff_t)d];
                dst[(ptrdiff_t)d * dst_stride + (ptrdiff_t)r] = round ? bf16_round(v) : v;
            }
    }
    for (; i < rows; ++i)
        for (size_t d = 0; d < depth; ++d) {
            float v = src[(ptrdiff_t)i * src_stride + (ptrdiff_t)d];
            dst[(ptrdiff_t)d * dst_stride + (ptrdiff_t)i] = round ? bf16_round(v) : v;
        }
}

static void transpose_into(const float *src, ptrdiff_t src_stride, size_t rows, size_t depth, float *dst,
                           ptrdiff_t dst_stride) {
    transpose_body(src, src_stride, rows, depth, dst, dst_stride, 0);
}

static void transpose_into_bf16(const float *src, ptrdiff_t src_stride, size_t rows, size_t depth, float *dst,
                                ptrdiff_t dst_stride) {
    transpose_body(src, src_stride, rows, depth, dst, dst_stride, 1);
}

#if CK_HAVE_X86
// transpose_into with AVX-512: blocks of 8 rows x 16 depth through eight
// registers (unpack, shuffle within lanes, permute across lanes: 24 shuffles
// for 128 floats where the 4 x 4 blocks take 64), written as 16 runs of 8.
CK_INLINE CK_TARGET_AVX512 void transpose_avx512_body(const float *src, ptrdiff_t src_stride, size_t rows,
                                                      size_t depth, float *dst, ptrdiff_t dst_stride, int round) {
    transpose_fn edges = round ? transpose_into_bf16 : transpose_into;
    const __m512i low = _mm512_setr_epi32(0, 1, 2, 3, 16, 17, 18, 19, 4, 5, 6, 7, 20, 21, 22, 23);
    const __m512i high = _mm512_setr_epi32(8, 9, 10, 11, 24, 25, 26, 27, 12, 13, 14, 15, 28, 29, 30, 31);
    size_t i = 0;
    for (; i + 8 <= rows; i += 8) {
        const float *s = src + (ptrdiff_t)i * src_stride;
        size_t d = 0;
        for (; d + 16 <= depth; d += 16) {
            __m512 r[8], t[8], u[8];
            for (int q = 0; q < 8; ++q) r[q] = _mm512_loadu_ps(s + q * src_stride + (ptrdiff_t)d);
            if (round)
                for (int q = 0; q < 8; ++q) r[q] = (__m512)bf16_round_v16((ck_f32x16)r[q]);
            for (int q = 0; q < 8; q += 2) {
                t[q] = _mm512_unpacklo_ps(r[q], r[q + 1]);     // per lane: d0 of rows q, q+1; d1 of both
                t[q + 1] = _mm512_unpackhi_ps(r[q], r[q + 1]); // d2, d3
            }
            for (int q = 0; q < 8; q += 4) {
                u[q] = _mm512_shuffle_ps(t[q], t[q + 2], 0x44);     // per lane: d0 of 4 rows (lanes: d = 0, 4, 8, 12)
                u[q + 1] = _mm512_shuffle_ps(t[q], t[q + 2], 0xEE); // d1 (1, 5, 9, 13)
                u[q + 2] = _mm512_shuffle_ps(t[q + 1], t[q + 3], 0x44); // d2
                u[q + 3] = _mm512_shuffle_ps(t[q + 1], t[q + 3], 0xEE); // d3
            }
            for (int e = 0; e < 4; ++e) {
                __m512 lo = _mm512_permutex2var_ps(u[e], low, u[e + 4]);   // depth e, then e + 4: 8 rows each
                __m512 hi = _mm512_permutex2var_ps(u[e], high, u[e + 4]);  // depth e + 8, e + 12
                float *o = dst + (ptrdiff_t)(d + (size_t)e) * dst_stride + (ptrdiff_t)i;
                _mm256_storeu_ps(o, _mm512_castps512_ps256(lo));
                _mm256_storeu_ps(o + 4 * dst_stride, _mm512_extractf32x8_ps(lo, 1));
                _mm256_storeu_ps(o + 8 * dst_stride, _mm512_castps512_ps256(hi));
                _mm256_storeu_ps(o + 12 * dst_stride, _mm512_extractf32x8_ps(hi, 1));
            }
        }
        if (d < depth) edges(s + (ptrdiff_t)d, src_stride, 8, depth - d, dst + (ptrdiff_t)d * dst_stride + (ptrdiff_t)i, dst_stride);
    }
    if (i < rows) edges(src + (ptrdiff_t)i * src_stride, src_stride, rows - i, depth, dst + (ptrdiff_t)i, dst_stride);
}

CK_TARGET_AVX512 static void transpose_into_avx512(const float *src, ptrdiff_t src_stride, size_t rows, size_t depth,
                                                   float *dst, ptrdiff_t dst_stride) {
    transpose_avx512_body(src, src_stride, rows, depth, dst, dst_stride, 0);
}

CK_TARGET_AVX512 static void transpose_into_avx512_bf16(const float *src, ptrdiff_t src_stride, size_t rows,
                                                        size_t depth, float *dst, ptrdiff_t dst_stride) {
    transpose_avx512_body(src, src_stride, rows, depth, dst, dst_stride, 1);
}
#endif

// Ap: MR-tall panels of op(A)[i0 : i0+mc, p0 : p0+kc]; panel q holds, for each
// p, MR consecutive values (rows beyond m are zero).
static void pack_a(const gemm_operands *g, const gemm_config *cfg, size_t i0, size_t mc, size_t p0, size_t kc,
                   float *ap) {
    size_t mr = cfg->mr;
    for (size_t q = 0; q < mc; q += mr) {
        size_t rows = ck_min_size(mr, mc - q);
        float *panel = ap + q * kc;
        if (g->ta == CK_TRANSPOSE_NONE) {
            cfg->transpose(g->a + (ptrdiff_t)(i0 + q) * g->lda + (ptrdiff_t)p0, g->lda, rows, kc, panel, (ptrdiff_t)mr);
        } else {
            for (size_t p = 0; p < kc; ++p) {
                const float *src = g->a + (ptrdiff_t)(p0 + p) * g->lda + (ptrdiff_t)(i0 + q);
                if (g->bf16) cfg->round_row(panel + p * mr, src, rows);
                else memcpy(panel + p * mr, src, rows * sizeof(float));
            }
        }
        if (rows < mr) {
            for (size_t p = 0; p < kc; ++p)
                for (size_t i = rows; i < mr; ++i) panel[p * mr + i] = 0.0f;
        }
#if CK_HAVE_X86
        if (cfg->pairs) pair_rows(panel, kc, mr);
#endif
    }
}

// Bp: NR-wide panels of op(B)[p0 : p0+kc, j0 : j0+nc]; columns beyond n are zero.
static void pack_b_panel(const gemm_operands *g, const gemm_config *cfg, size_t p0, size_t kc, size_t j,
                         size_t cols, float *panel) {
    size_t nr = cfg->nr;
    if (g->tb == CK_TRANSPOSE_NONE) {
        for (size_t p = 0; p < kc; ++p) {
            const float *src = g->b + (ptrdiff_t)(p0 + p) * g->ldb + (ptrdiff_t)j;
            if (g->bf16) cfg->round_row(panel + p * nr, src, cols);
            else memcpy(panel + p * nr, src, cols * sizeof(float));
            for (size_t c = cols; c < nr; ++c) panel[p * nr + c] = 0.0f;
        }
    } else {
        cfg->transpose(g->b + (ptrdiff_t)j * g->ldb + (ptrdiff_t)p0, g->ldb, cols, kc, panel, (ptrdiff_t)nr);
        for (size_t p = 0; p < kc; ++p)
            for (size_t c = cols; c < nr; ++c) panel[p * nr + c] = 0.0f;
    }
#if CK_HAVE_X86
    if (cfg->pairs) pair_rows(panel, kc, nr);
#endif
}

typedef struct gemm_job {
    const gemm_operands *g;
    const gemm_config *cfg;
    size_t jc, nc, pc, kc;
    float beta;                  // beta for this k block
    int last_k_block;            // the bias is added on the last k block
    int a_in_place, b_in_place;  // operands the micro-kernel reads where they are (no packing)
    int a_rows_in_place;         // op(A) = A read in place through cfg->micro_rows
    int pack_b_in_parts;         // each (column) part packs its own panels of B
    float *bp;                   // packed op(B) block
    float *ap_base;              // per-part A blocks
    size_t ap_stride;            // floats per part
    int split_rows;              // parts split m (1) or the nc columns (0)
} gemm_job;

static void pack_b_part(void *ctx, size_t begin, size_t end, size_t part) {
    (void)part;
    const gemm_job *j = ctx;
    size_t nr = j->cfg->nr;
    for (size_t q = begin; q < end; ++q) {
        size_t col = q * nr;
        pack_b_panel(j->g, j->cfg, j->pc, j->kc, j->jc + col, ck_min_size(nr, j->nc - col), j->bp + col * j->kc);
    }
}

// Merges a full MR x NR tile computed with alpha = 1, beta = 0 into C.
static void merge_tile(const float *tile, size_t nr, float *c, ptrdiff_t ldc, size_t rows, size_t cols, float alpha,
                       float beta, const float *bias, int relu) {
    for (size_t i = 0; i < rows; ++i) store_row(c + (ptrdiff_t)i * ldc, tile + i * nr, cols, alpha, beta, bias, relu);
}

// Rows [r0, r1) and columns [c0, c1) of the current NC block (both in elements,
// r multiples of MR, c multiples of NR except at the ends).
static void compute_part(void *ctx, size_t begin, size_t end, size_t part) {
    const gemm_job *j = ctx;
    const gemm_operands *g = j->g;
    const gemm_config *cfg = j->cfg;
    size_t mr = cfg->mr, nr = cfg->nr;
    size_t r0, r1, c0, c1;
    if (j->split_rows) {
        r0 = begin * mr;
        r1 = ck_min_size(end * mr, g->m);
        c0 = 0;
        c1 = j->nc;
    } else {
        r0 = 0;
        r1 = g->m;
        c0 = begin * nr;
        c1 = ck_min_size(end * nr, j->nc);
        if (j->pack_b_in_parts) pack_b_part(ctx, begin, end, part);
    }
    float *ap = j->ap_base + part * j->ap_stride;
    float tile[GEMM_MAX_MR * GEMM_MAX_NR] __attribute__((aligned(64)));
    ptrdiff_t a_step = j->a_in_place ? g->lda : (ptrdiff_t)mr, b_step = j->b_in_place ? g->ldb : (ptrdiff_t)nr;
    gemm_micro_fn micro = cfg->micro;
    if (j->a_rows_in_place) {
        micro = cfg->micro_rows;
        a_step = g->lda; // passed as the distance between rows
    }
    for (size_t ic = r0; ic < r1; ic += cfg->mc) {
        size_t mc = ck_min_size(cfg->mc, r1 - ic);
        if (!j->a_in_place && !j->a_rows_in_place) pack_a(g, cfg, ic, mc, j->pc, j->kc, ap);
        for (size_t jr = c0; jr < c1; jr += nr) {
            size_t cols = ck_min_size(nr, c1 - jr);
            const float *bpanel = j->b_in_place ? g->b + (ptrdiff_t)j->pc * g->ldb + (ptrdiff_t)(j->jc + jr) : j->bp + jr * j->kc;
            for (size_t ir = 0; ir < mc; ir += mr) {
                size_t rows = ck_min_size(mr, mc - ir);
                float *c = g->c + (ptrdiff_t)(ic + ir) * g->ldc + (ptrdiff_t)(j->jc + jr);
                const float *apanel = j->a_in_place        ? g->a + (ptrdiff_t)j->pc * g->lda + (ptrdiff_t)(ic + ir)
                                      : j->a_rows_in_place ? g->a + (ptrdiff_t)(ic + ir) * g->lda + (ptrdiff_t)j->pc
                                                           : ap + ir * j->kc;
                const float *bias = j->last_k_block && g->bias ? g->bias + j->jc + jr : NULL;
                int relu = j->last_k_block && g->relu;
                if (rows == mr && cols == nr) {
                    micro(j->kc, apanel, a_step, bpanel, b_step, c, g->ldc, g->alpha, j->beta, bias, relu);
                } else {
                    micro(j->kc, apanel, a_step, bpanel, b_step, tile, (ptrdiff_t)nr, 1.0f, 0.0f, NULL, 0);
                    merge_tile(tile, nr, c, g->ldc, rows, cols, g->alpha, j->beta, bias, relu);
                }
            }
        }
    }
}

// ---------------------------------------------------------------- sizes

#ifdef _OPENMP
// A libomp parallel region costs about 2 us here: 64x64x64 took 3.4 us on two
// threads against 2.1 us on one. Only products of ~10 us and more are split.
#define GEMM_PARALLEL_MIN_FLOPS 2.0e6
#else
// The pool's fork/join costs ~0.25 us, and a caller never waits for a worker
// that has not started (parts are claimed): 64x64x64 (0.5 MFLOP) takes 1.3 us
// on two threads against 2.1 us on one.
#define GEMM_PARALLEL_MIN_FLOPS 1.0e5
#endif

// Products below this are split only while fine-grained splitting pays.
#define GEMM_COARSE_FLOPS 2.0e6

// The most parts a product may use (what its workspace is sized for).
static size_t gemm_flops_parts_max(size_t m, size_t n, size_t k) {
    double flops = 2.0 * (double)m * (double)n * (double)k;
    if (flops < GEMM_PARALLEL_MIN_FLOPS) return 1;
    return ck_threads_get();
}

// The parts a product uses now.
static size_t gemm_flops_parts(size_t m, size_t n, size_t k) {
    double flops = 2.0 * (double)m * (double)n * (double)k;
    if (flops < GEMM_COARSE_FLOPS && !ck_parallel_fine_grained()) return 1;
    return gemm_flops_parts_max(m, n, k);
}

static size_t align_floats(size_t count) { return ck_round_up(count, GEMM_ALIGN / sizeof(float)); }

// Floats of one packed block of op(B) (shared by all parts) and of one part's
// packed block of op(A), each rounded up to whole cache lines.
static void workspace_layout(const gemm_config *cfg, size_t m, size_t n, size_t k, size_t *b_floats,
                             size_t *a_floats) {
    size_t kc = ck_min_size(cfg->kc, k);
    size_t nc = ck_min_size(cfg->nc, ck_round_up(n, cfg->nr));
    size_t mc = ck_min_size(cfg->mc, ck_round_up(m, cfg->mr));
    *b_floats = align_floats(kc * ck_round_up(nc, cfg->nr));
    *a_floats = align_floats(ck_round_up(mc, cfg->mr) * kc);
}

// The direct loops pay only where packing would waste most of a micro-tile: a
// few rows (a vector-matrix product, m <= 4 against MR = 8 or 12). Measured on
// one core: 1x64x64 takes 0.24 us direct and 0.70 us packed; 8x8x8 takes
// 0.26 us direct and 0.10 us packed; 32x32x32 2.6 us direct, 0.54 us packed.
static int use_direct(size_t m, size_t n, ck_transpose ta, ck_transpose tb) {
    if (ta == CK_TRANSPOSE_YES && tb == CK_TRANSPOSE_YES) return 0;
    if (n > 512) return 0;
    return m <= 4;
}

size_t ck_sgemm_workspace_size(size_t m, size_t n, size_t k) {
    if (m == 0 || n == 0 || k == 0) return 0;
    gemm_config cfg = current_config(m, 0);
    size_t parts = gemm_flops_parts_max(m, n, k);
    size_t b_floats, a_floats;
    workspace_layout(&cfg, m, n, k, &b_floats, &a_floats);
    return (b_floats + parts * a_floats) * sizeof(float) + GEMM_ALIGN;
}

// ---------------------------------------------------------------- direct path

// Small products: no packing. Rows of C are accumulated in a stack buffer.
CK_INLINE void gemm_direct(const gemm_operands *g) {
    float acc[512];
    ptrdiff_t a_row = g->ta == CK_TRANSPOSE_NONE ? g->lda : 1;
    ptrdiff_t a_col = g->ta == CK_TRANSPOSE_NONE ? 1 : g->lda;
    for (size_t i = 0; i < g->m; ++i) {
        const float *arow = g->a + (ptrdiff_t)i * a_row;
        if (g->tb == CK_TRANSPOSE_NONE) {
            for (size_t j = 0; j < g->n; ++j) acc[j] = 0.0f;
            for (size_t p = 0; p < g->k; ++p) {
                float av = arow[(ptrdiff_t)p * a_col];
                const float *brow = g->b + (ptrdiff_t)p * g->ldb;
                for (size_t j = 0; j < g->n; ++j) acc[j] += av * brow[j];
            }
        } else { // op(A) row i (contiguous when A is not transposed) . B row j
            for (size_t j = 0; j < g->n; ++j) {
                const float *brow = g->b + (ptrdiff_t)j * g->ldb;
                float s = 0.0f;
                for (size_t p = 0; p < g->k; ++p) s += arow[(ptrdiff_t)p * a_col] * brow[p];
                acc[j] = s;
            }
        }
        store_row(g->c + (ptrdiff_t)i * g->ldc, acc, g->n, g->alpha, g->beta, g->bias, g->relu);
    }
}

// acc[0 : n] += a * round(b[0 : n]), a already rounded: one k step of a row.
CK_INLINE void axpy_bf16(float *CK_RESTRICT acc, size_t n, float a, const float *CK_RESTRICT b) {
    for (size_t j = 0; j < n; ++j) acc[j] += a * bf16_round(b[j]);
}

// The bfloat16 products of the direct path, and of a call whose workspace is
// too small to pack: no packing, the operands rounded as they are read, each
// element of C one chain per k block in the pair order (ck_gemm.h), stored per
// block as the packed path stores it. Any m and n (columns 512 at a time).
CK_INLINE void gemm_direct_bf16(const gemm_operands *g) {
    enum { COLUMNS = 512 };
    float acc[COLUMNS];
    ptrdiff_t a_row = g->ta == CK_TRANSPOSE_NONE ? g->lda : 1;
    ptrdiff_t a_col = g->ta == CK_TRANSPOSE_NONE ? 1 : g->lda;
    for (size_t j0 = 0; j0 < g->n; j0 += COLUMNS) {
        size_t n = ck_min_size(COLUMNS, g->n - j0);
        for (size_t i = 0; i < g->m; ++i) {
            const float *arow = g->a + (ptrdiff_t)i * a_row;
            for (size_t p0 = 0; p0 < g->k; p0 += CK_GEMM_BF16_BLOCK) {
                size_t p1 = ck_min_size(p0 + CK_GEMM_BF16_BLOCK, g->k), p = p0;
                if (g->tb == CK_TRANSPOSE_NONE) {
                    const float *b = g->b + (ptrdiff_t)j0;
                    for (size_t j = 0; j < n; ++j) acc[j] = 0.0f;
                    for (; p + 2 <= p1; p += 2) {
                        axpy_bf16(acc, n, bf16_round(arow[(ptrdiff_t)(p + 1) * a_col]), b + (ptrdiff_t)(p + 1) * g->ldb);
                        axpy_bf16(acc, n, bf16_round(arow[(ptrdiff_t)p * a_col]), b + (ptrdiff_t)p * g->ldb);
                    }
                    if (p < p1) axpy_bf16(acc, n, bf16_round(arow[(ptrdiff_t)p * a_col]), b + (ptrdiff_t)p * g->ldb);
                } else { // op(A) row i . B row j
                    for (size_t j = 0; j < n; ++j) {
                        const float *brow = g->b + (ptrdiff_t)(j0 + j) * g->ldb;
                        float s = 0.0f;
                        size_t q = p0;
                        for (; q + 2 <= p1; q += 2) {
                            s += bf16_round(arow[(ptrdiff_t)(q + 1) * a_col]) * bf16_round(brow[q + 1]);
                            s += bf16_round(arow[(ptrdiff_t)q * a_col]) * bf16_round(brow[q]);
                        }
                        if (q < p1) s += bf16_round(arow[(ptrdiff_t)q * a_col]) * bf16_round(brow[q]);
                        acc[j] = s;
                    }
                }
                int last = p1 == g->k;
                store_row(g->c + (ptrdiff_t)i * g->ldc + (ptrdiff_t)j0, acc, n, g->alpha, p0 == 0 ? g->beta : 1.0f,
                          last && g->bias ? g->bias + j0 : NULL, last && g->relu);
            }
        }
    }
}

#if CK_HAVE_X86
CK_TARGET_AVX2 static void gemm_direct_avx2(const gemm_operands *g) { gemm_direct(g); }
CK_TARGET_AVX512 static void gemm_direct_avx512(const gemm_operands *g) { gemm_direct(g); }
CK_TARGET_AVX2 static void gemm_direct_bf16_avx2(const gemm_operands *g) { gemm_direct_bf16(g); }
CK_TARGET_AVX512 static void gemm_direct_bf16_avx512(const gemm_operands *g) { gemm_direct_bf16(g); }
#endif

static void run_direct(const gemm_operands *g) {
#if CK_HAVE_X86
    switch (ck_isa_active()) {
    case CK_ISA_AVX512: g->bf16 ? gemm_direct_bf16_avx512(g) : gemm_direct_avx512(g); return;
    case CK_ISA_AVX2: g->bf16 ? gemm_direct_bf16_avx2(g) : gemm_direct_avx2(g); return;
    case CK_ISA_PORTABLE: break;
    }
#endif
    g->bf16 ? gemm_direct_bf16(g) : gemm_direct(g);
}

// ---------------------------------------------------------------- entry points

static void scale_c(size_t m, size_t n, float beta, float *c, ptrdiff_t ldc) {
    for (size_t i = 0; i < m; ++i) {
        float *row = c + (ptrdiff_t)i * ldc;
        if (beta == 0.0f) memset(row, 0, n * sizeof(float));
        else for (size_t j = 0; j < n; ++j) row[j] *= beta;
    }
}

// The epilogue after an unfused product: + bias, then the activation.
static void finish_rows(size_t m, size_t n, float *c, ptrdiff_t ldc, const float *bias, int relu) {
    if (!bias && !relu) return;
    for (size_t i = 0; i < m; ++i) {
        float *row = c + (ptrdiff_t)i * ldc;
        for (size_t j = 0; j < n; ++j) row[j] = finish(row[j], bias, j, relu);
    }
}

void ck_sgemm_epilogue_f32(ck_transpose trans_a, ck_transpose trans_b, size_t m, size_t n, size_t k, float alpha,
                           const float *a, ptrdiff_t lda, const float *b, ptrdiff_t ldb, float beta, float *c,
                           ptrdiff_t ldc, const float *bias, ck_gemm_activation activation,
                           ck_gemm_precision precision, void *workspace, size_t workspace_size) {
    if (m == 0 || n == 0) return;
    int relu = activation == CK_GEMM_ACTIVATION_RELU;
    int bf16 = precision == CK_GEMM_PRECISION_BF16;
    if (k == 0 || alpha == 0.0f) {
        scale_c(m, n, beta, c, ldc);
        finish_rows(m, n, c, ldc, bias, relu);
        return;
    }
    gemm_operands g = { .ta = trans_a, .tb = trans_b, .m = m, .n = n, .k = k, .alpha = alpha, .beta = beta,
                        .a = a, .b = b, .lda = lda, .ldb = ldb, .ldc = ldc, .c = c, .bias = bias, .relu = relu,
                        .bf16 = bf16 };
    if (use_direct(m, n, trans_a, trans_b)) {
        run_direct(&g);
        return;
    }
    gemm_config cfg = current_config(m, bf16);
    size_t parts = gemm_flops_parts(m, n, k);
    size_t b_floats, a_floats;
    workspace_layout(&cfg, m, n, k, &b_floats, &a_floats);
    uintptr_t base = ck_round_up((uintptr_t)workspace, GEMM_ALIGN);
    size_t usable = workspace ? workspace_size - (size_t)(base - (uintptr_t)workspace) : 0;
    if (!workspace || workspace_size < GEMM_ALIGN) usable = 0;
    size_t fit = usable / sizeof(float) > b_floats ? (usable / sizeof(float) - b_floats) / a_floats : 0;
    if (fit == 0 && bf16) {
        run_direct(&g);
        return;
    }
    if (fit == 0) {
        ck_sgemm_reference_f32(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
        finish_rows(m, n, c, ldc, bias, relu);
        return;
    }
    parts = ck_min_size(parts, fit);
    float *bp = (float *)base;
    gemm_job job = { .g = &g, .cfg = &cfg, .bp = bp, .ap_base = bp + b_floats, .ap_stride = a_floats };
    // An operand already laid out as the micro-kernel reads it is not packed: op(B) = B
    // (rows of NR consecutive floats) when every column tile is full, op(A) = Aᵀ (MR
    // consecutive floats per k) when every row tile is full. Only when it is reused by
    // few tiles (m or n <= 128): for larger products a packed, contiguous panel wins
    // (the wide MLP's 1024-column GEMMs lose 8% read in place). And B only up to 1 MiB:
    // a 1024x1024 B read in place (4 KiB between its rows) ran at half speed at m = 128
    // (dX = dY W of the wide MLP on half its batch: 6.2 -> 3.0 ms packed).
    // In bfloat16 precision every operand is packed: packing rounds it.
    job.b_in_place = !bf16 && trans_b == CK_TRANSPOSE_NONE && n % cfg.nr == 0 && m <= 128 && k * n <= ((size_t)1 << 18);
    job.a_in_place = !bf16 && trans_a == CK_TRANSPOSE_YES && m % cfg.mr == 0 && n <= 128;
    // A (not transposed) is read row by row in place by a micro-kernel that
    // broadcasts from MR row pointers: the same loads as from a packed panel. Also
    // for more columns when the parts split the columns and pack their own panels
    // of B (below): then no packed block crosses from one core to the other and a
    // k block takes one fork/join instead of two. Two threads, Emerald Rapids, A/B
    // in one process: the MNIST MLP's 128x256x784 NT 165 -> 231 GFLOP/s, its
    // 128x784x256 NN 196 -> 245, 256x256x256 186 -> 213, 1024^3 256 -> 269.
    size_t own_b_columns = ck_min_size(cfg.nc, n);
    int parts_pack_own_b = parts > 1 && ck_div_up(own_b_columns, cfg.nr) >= parts;
    job.a_rows_in_place = cfg.micro_rows && trans_a == CK_TRANSPOSE_NONE && m % cfg.mr == 0
                          && (n <= 128 || (parts_pack_own_b && !job.b_in_place));
    for (size_t jc = 0; jc < n; jc += cfg.nc) {
        job.jc = jc;
        job.nc = ck_min_size(cfg.nc, n - jc);
        size_t col_panels = ck_div_up(job.nc, cfg.nr);
        size_t row_panels = ck_div_up(m, cfg.mr);
        for (size_t pc = 0; pc < k; pc += cfg.kc) {
            job.pc = pc;
            job.kc = ck_min_size(cfg.kc, k - pc);
            job.beta = pc == 0 ? beta : 1.0f;
            job.last_k_block = pc + job.kc >= k;
            // Split the dimension with more micro-panels; each part gets whole panels.
            job.split_rows = row_panels >= col_panels || row_panels >= 2 * parts * (cfg.mc / cfg.mr);
            // When A needs no packing and B does, a column split lets each part pack
            // its own panels of B: one fork/join instead of two, no serial packing
            // (the forward X Wᵀ of a 64-wide layer: 1.85 -> 1.4 us).
            // In bfloat16 precision each part packs (rounds) all of A itself instead: for m <= 128
            // that costs less than the second fork/join (the deep MLP's 64x64x64 products).
            job.pack_b_in_parts = !job.b_in_place && parts > 1 && col_panels >= parts
                                  && (job.a_rows_in_place || ((job.a_in_place || bf16) && m <= 128));
            if (job.pack_b_in_parts) job.split_rows = 0;
            if (!job.b_in_place && !job.pack_b_in_parts) {
                size_t pack_grain = parts > 1 ? ck_max_size(1, col_panels / parts) : col_panels;
                ck_parallel_for(col_panels, pack_grain, pack_b_part, &job);
            }
            size_t units = job.split_rows ? row_panels : col_panels;
            size_t grain = parts > 1 ? ck_max_size(1, ck_div_up(units, parts)) : units;
            ck_parallel_for(units, grain, compute_part, &job);
        }
    }
}

// ---------------------------------------------------------------- pairs

// Products up to this many flops run one per thread in a pair (64x64x64 is
// 0.5 MFLOP: 2.1-2.4 us on one core, 1.4-1.6 us split over two).
#define GEMM_PAIR_MAX_FLOPS 2.0e6

#ifdef _OPENMP
static int pair_runs_together(const ck_gemm_args *first, const ck_gemm_args *second) {
    (void)first, (void)second; // a region costs as much as one small product: no gain measured
    return 0;
}
#else
static double gemm_flops(const ck_gemm_args *g) { return 2.0 * (double)g->m * (double)g->n * (double)g->k; }

static int pair_runs_together(const ck_gemm_args *first, const ck_gemm_args *second) {
    return ck_threads_get() >= 2 && gemm_flops(first) <= GEMM_PAIR_MAX_FLOPS && gemm_flops(second) <= GEMM_PAIR_MAX_FLOPS;
}
#endif

static size_t args_workspace(const ck_gemm_args *g) { return ck_sgemm_workspace_size(g->m, g->n, g->k); }

size_t ck_sgemm_pair_workspace_size(const ck_gemm_args *first, const ck_gemm_args *second) {
    size_t a = args_workspace(first), b = args_workspace(second);
    return pair_runs_together(first, second) ? ck_round_up(a, GEMM_ALIGN) + b : ck_max_size(a, b);
}

static void run_args(const ck_gemm_args *g, void *workspace, size_t size) {
    ck_sgemm_epilogue_f32(g->trans_a, g->trans_b, g->m, g->n, g->k, g->alpha, g->a, g->lda, g->b, g->ldb, g->beta, g->c,
                          g->ldc, g->bias, CK_GEMM_ACTIVATION_NONE, g->precision, workspace, size);
}

typedef struct pair_job {
    const ck_gemm_args *args[2];
    void *workspace[2];
    size_t size[2];
    int isa, dot; // the calling thread's choices (ck_isa_active, ck_bf16_dot_active)
} pair_job;

// Inside a pool job, the products' own parallel loops run on the calling thread.
// Each product picks its kernels itself, so the thread running it takes on the
// caller's instruction set and bfloat16 kernel for the while (a worker's own
// thread-local choices are not the caller's), then gets its own back.
static void pair_part(void *ctx, size_t begin, size_t end, size_t part) {
    const pair_job *j = ctx;
    int isa = ck_isa_override(), dot = thread_dot;
    ck_isa_set_override(j->isa);
    thread_dot = j->dot;
    for (size_t q = begin; q < end; ++q) run_args(j->args[q], j->workspace[q], j->size[q]);
    ck_isa_set_override(isa);
    thread_dot = dot;
    (void)part;
}

void ck_sgemm_pair_f32(const ck_gemm_args *first, const ck_gemm_args *second, void *workspace,
                       size_t workspace_size) {
    if (!pair_runs_together(first, second) || workspace_size < ck_sgemm_pair_workspace_size(first, second)
        || !ck_parallel_fine_grained()) {
        run_args(first, workspace, workspace_size);
        run_args(second, workspace, workspace_size);
        return;
    }
    size_t offset = ck_round_up(args_workspace(first), GEMM_ALIGN);
    pair_job job = { .args = { first, second },
                     .workspace = { workspace, (char *)workspace + offset },
                     .size = { offset, workspace_size - offset },
                     .isa = (int)ck_isa_active(), .dot = (int)ck_bf16_dot_active() };
    ck_parallel_for(2, 1, pair_part, &job);
}

void ck_sgemm_reference_f32(ck_transpose trans_a, ck_transpose trans_b, size_t m, size_t n, size_t k, float alpha,
                            const float *a, ptrdiff_t lda, const float *b, ptrdiff_t ldb, float beta, float *c,
                            ptrdiff_t ldc) {
    for (size_t i = 0; i < m; ++i) {
        for (size_t j = 0; j < n; ++j) {
            double s = 0.0;
            for (size_t p = 0; p < k; ++p) {
                float av = trans_a == CK_TRANSPOSE_NONE ? a[(ptrdiff_t)i * lda + (ptrdiff_t)p]
                                                        : a[(ptrdiff_t)p * lda + (ptrdiff_t)i];
                float bv = trans_b == CK_TRANSPOSE_NONE ? b[(ptrdiff_t)p * ldb + (ptrdiff_t)j]
                                                        : b[(ptrdiff_t)j * ldb + (ptrdiff_t)p];
                s += (double)av * (double)bv;
            }
            float *cv = c + (ptrdiff_t)i * ldc + (ptrdiff_t)j;
            *cv = beta == 0.0f ? (float)(alpha * s) : (float)(alpha * s) + beta * *cv;
        }
    }
}
