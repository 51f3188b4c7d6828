// GradKit CKernels — reductions. SPDX-License-Identifier: MIT
//
// Sums accumulate in double in a fixed order that depends on the sizes only:
// the same bits for any thread count and any instruction set (float -> double
// conversion and double addition are exact or correctly rounded everywhere, and
// no multiply is fused into them).
#include "ck_reduce.h"
#include "ck_internal.h"

#include <math.h>

#define SUM_LANES 32
#define SUM_MAX_BLOCKS 1024u // blocks per row at most (their partials live on the stack); see ck_sum_block_size
#define INNER_TILE 512u      // columns per tile when reducing a strided axis

// Canonical sum of one block: lane j takes elements j, j+32, ...; the lanes
// are then added pairwise (j += j+16, j += j+8, ...). 32 double lanes keep four
// AVX-512 accumulators in flight (16 left the sum compute-bound at 72% of a*x+y).
// The main loop is written with vector types, lanes 8k..8k+7 in quarter k:
// the same additions, but clang's SLP vectorizer had split the scalar form
// into a mix of 512- and 128-bit pieces (7 conversions per 32 elements instead
// of 4; this sum ran at 70% of the sum of squares' speed in cache).
typedef float ck_f32x8 __attribute__((vector_size(32)));
typedef double ck_f64x8 __attribute__((vector_size(64)));

CK_INLINE double sum_block_body(const float *x, size_t n) {
    ck_f64x8 quarter[4] = { { 0 }, { 0 }, { 0 }, { 0 } };
    size_t i = 0;
    for (; i + SUM_LANES <= n; i += SUM_LANES) {
        ck_prefetch_ahead(x + i);
        for (size_t k = 0; k < 4; ++k) {
            ck_f32x8 v;
            __builtin_memcpy(&v, x + i + 8 * k, sizeof v);
            quarter[k] += __builtin_convertvector(v, ck_f64x8);
        }
    }
    double acc[SUM_LANES];
    __builtin_memcpy(acc, quarter, sizeof acc);
    for (size_t j = 0; i + j < n; ++j) acc[j] += (double)x[i + j];
    for (size_t w = SUM_LANES / 2; w >= 1; w /= 2) {
        for (size_t j = 0; j < w; ++j) acc[j] += acc[j + w];
    }
    return acc[0];
}

CK_INLINE float max_row_body(const float *x, size_t n, int is_max) {
    float acc[SUM_LANES];
    for (size_t j = 0; j < SUM_LANES; ++j) acc[j] = is_max ? -__builtin_inff() : __builtin_inff();
    size_t i = 0;
    if (is_max) {
        for (; i + SUM_LANES <= n; i += SUM_LANES)
            for (size_t j = 0; j < SUM_LANES; ++j) {
                float v = x[i + j];
                acc[j] = (v > acc[j] || v != v) ? v : acc[j];
            }
    } else {
        for (; i + SUM_LANES <= n; i += SUM_LANES)
            for (size_t j = 0; j < SUM_LANES; ++j) {
                float v = x[i + j];
                acc[j] = (v < acc[j] || v != v) ? v : acc[j];
            }
    }
    float m = is_max ? -__builtin_inff() : __builtin_inff();
    for (; i < n; ++i) {
        float v = x[i];
        m = is_max ? ((v > m || v != v) ? v : m) : ((v < m || v != v) ? v : m);
    }
    for (size_t j = 0; j < SUM_LANES; ++j) {
        float v = acc[j];
        if (m != m) break;
        m = is_max ? ((v > m || v != v) ? v : m) : ((v < m || v != v) ? v : m);
    }
    return m;
}

// Column-wise over a tile: acc[i] += x[r*inner + i] for r in order.
// Rows are added in order, sixteen at a time between one load and one store
// of each accumulator: the same additions in the same order as one row at a
// time, with a sixteenth of the accumulator traffic that bounded this loop
// (columns of 10^7 elements: 1.4 ms -> 0.53 ms).
CK_INLINE void sum_columns_body(size_t extent, size_t inner, size_t width, double *acc, const float *x) {
    for (size_t i = 0; i < width; ++i) acc[i] = 0.0;
    size_t r = 0;
    for (; r + 16 <= extent; r += 16) {
        const float *r0 = x + r * inner;
        for (size_t i = 0; i < width; ++i) {
            double a = acc[i];
#pragma clang loop unroll(full)
            for (size_t q = 0; q < 16; ++q) a += (double)r0[q * inner + i];
            acc[i] = a;
        }
    }
    for (; r < extent; ++r) {
        const float *row = x + r * inner;
        for (size_t i = 0; i < width; ++i) acc[i] += (double)row[i];
    }
}

CK_INLINE void extreme_columns_body(size_t extent, size_t inner, size_t width, float *y, const float *x,
                                    int is_max) {
    for (size_t i = 0; i < width; ++i) y[i] = is_max ? -__builtin_inff() : __builtin_inff();
    for (size_t r = 0; r < extent; ++r) {
        const float *row = x + r * inner;
        if (is_max) {
            for (size_t i = 0; i < width; ++i) { float v = row[i]; y[i] = (v > y[i] || v != v) ? v : y[i]; }
        } else {
            for (size_t i = 0; i < width; ++i) { float v = row[i]; y[i] = (v < y[i] || v != v) ? v : y[i]; }
        }
    }
}

typedef double (*sum_block_fn)(const float *, size_t);
typedef float (*max_row_fn)(const float *, size_t, int);
typedef void (*sum_columns_fn)(size_t, size_t, size_t, double *, const float *);
typedef void (*extreme_columns_fn)(size_t, size_t, size_t, float *, const float *, int);

typedef struct reduce_isa {
    sum_block_fn sum_block;
    max_row_fn max_row;
    sum_columns_fn sum_columns;
    extreme_columns_fn extreme_columns;
} reduce_isa;

static double sum_block_portable(const float *x, size_t n) { return sum_block_body(x, n); }
static float max_row_portable(const float *x, size_t n, int m) { return max_row_body(x, n, m); }
static void sum_columns_portable(size_t e, size_t in, size_t w, double *acc, const float *x) { sum_columns_body(e, in, w, acc, x); }
static void extreme_columns_portable(size_t e, size_t in, size_t w, float *y, const float *x, int m) { extreme_columns_body(e, in, w, y, x, m); }
static const reduce_isa portable_isa = { sum_block_portable, max_row_portable, sum_columns_portable, extreme_columns_portable };

#if CK_HAVE_X86
CK_TARGET_AVX2 static double sum_block_avx2(const float *x, size_t n) { return sum_block_body(x, n); }
CK_TARGET_AVX2 static float max_row_avx2(const float *x, size_t n, int m) { return max_row_body(x, n, m); }
CK_TARGET_AVX2 static void sum_columns_avx2(size_t e, size_t in, size_t w, double *acc, const float *x) { sum_columns_body(e, in, w, acc, x); }
CK_TARGET_AVX2 static void extreme_columns_avx2(size_t e, size_t in, size_t w, float *y, const float *x, int m) { extreme_columns_body(e, in, w, y, x, m); }
static const reduce_isa avx2_isa = { sum_block_avx2, max_row_avx2, sum_columns_avx2, extreme_columns_avx2 };

CK_TARGET_AVX512 static double sum_block_avx512(const float *x, size_t n) { return sum_block_body(x, n); }
CK_TARGET_AVX512 static float max_row_avx512(const float *x, size_t n, int m) { return max_row_body(x, n, m); }
CK_TARGET_AVX512 static void sum_columns_avx512(size_t e, size_t in, size_t w, double *acc, const float *x) { sum_columns_body(e, in, w, acc, x); }
CK_TARGET_AVX512 static void extreme_columns_avx512(size_t e, size_t in, size_t w, float *y, const float *x, int m) { extreme_columns_body(e, in, w, y, x, m); }
static const reduce_isa avx512_isa = { sum_block_avx512, max_row_avx512, sum_columns_avx512, extreme_columns_avx512 };
#endif

static const reduce_isa *isa_table(void) { return CK_ISA_TABLE(portable_isa, avx2_isa, avx512_isa); }

static size_t sum_block_size(size_t extent) { return ck_sum_block_size(extent); }

typedef struct reduce_job {
    const reduce_isa *isa;
    ck_reduce_op op;
    size_t outer, extent, inner, block;
    float *y;
    const float *x;
    double scale;
    double *partials;
} reduce_job;

// The canonical total of one contiguous row: its blocks summed in order.
static double row_total(const reduce_isa *isa, const float *x, size_t extent, size_t block) {
    double total = 0.0;
    for (size_t start = 0; start < extent; start += block) {
        total += isa->sum_block(x + start, ck_min_size(block, extent - start));
    }
    return total;
}

static void rows_part(void *ctx, size_t begin, size_t end, size_t part) {
    (void)part;
    const reduce_job *j = ctx;
    for (size_t o = begin; o < end; ++o) {
        const float *row = j->x + o * j->extent;
        if (j->op == CK_REDUCE_OP_SUM) {
            j->y[o] = (float)(row_total(j->isa, row, j->extent, j->block) * j->scale);
        } else {
            j->y[o] = j->isa->max_row(row, j->extent, j->op == CK_REDUCE_OP_MAX);
        }
    }
}

static void blocks_part(void *ctx, size_t begin, size_t end, size_t part) {
    (void)part;
    const reduce_job *j = ctx;
    for (size_t b = begin; b < end; ++b) {
        size_t start = b * j->block;
        j->partials[b] = j->isa->sum_block(j->x + start, ck_min_size(j->block, j->extent - start));
    }
}

static void tiles_part(void *ctx, size_t begin, size_t end, size_t part) {
    (void)part;
    const reduce_job *j = ctx;
    size_t tiles = ck_div_up(j->inner, INNER_TILE);
    double acc[INNER_TILE];
    for (size_t t = begin; t < end; ++t) {
        size_t o = t / tiles, start = (t % tiles) * INNER_TILE;
        size_t width = ck_min_size(INNER_TILE, j->inner - start);
        const float *x = j->x + o * j->extent * j->inner + start;
        float *y = j->y + o * j->inner + start;
        if (j->op == CK_REDUCE_OP_SUM) {
            j->isa->sum_columns(j->extent, j->inner, width, acc, x);
            for (size_t i = 0; i < width; ++i) y[i] = (float)(acc[i] * j->scale);
        } else {
            j->isa->extreme_columns(j->extent, j->inner, width, y, x, j->op == CK_REDUCE_OP_MAX);
        }
    }
}

void ck_reduce_f32(ck_reduce_op op, size_t outer, size_t extent, size_t inner, float *CK_RESTRICT y,
                   const float *CK_RESTRICT x, double scale) {
    reduce_job job = { .isa = isa_table(), .op = op, .outer = outer, .extent = extent, .inner = inner,
                       .block = sum_block_size(extent), .y = y, .x = x, .scale = scale };
    if (outer == 0 || inner == 0) return;
    if (inner > 1) {
        size_t tiles = outer * ck_div_up(inner, INNER_TILE);
        size_t work_per_tile = extent * ck_min_size(inner, INNER_TILE);
        size_t grain = ck_max_size(1, (1u << 16) / ck_max_size(work_per_tile, 1));
        ck_parallel_for(tiles, grain, tiles_part, &job);
        return;
    }
    size_t blocks = ck_div_up(extent, job.block);
    if (op == CK_REDUCE_OP_SUM && outer < ck_threads_get() && blocks > 1) {
        // Few long rows: split each row's blocks across threads, then add the
        // partials in block order (the same order row_total uses).
        double partials[SUM_MAX_BLOCKS];
        job.partials = partials;
        for (size_t o = 0; o < outer; ++o) {
            job.x = x + o * extent;
            ck_parallel_for(blocks, 4, blocks_part, &job);
            double total = 0.0;
            for (size_t b = 0; b < blocks; ++b) total += partials[b];
            y[o] = (float)(total * scale);
        }
        return;
    }
    size_t grain = ck_max_size(1, (1u << 16) / ck_max_size(extent, 1));
    ck_parallel_for(outer, grain, rows_part, &job);
}
