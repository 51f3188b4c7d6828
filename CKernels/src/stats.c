// GradKit CKernels — activation statistics. SPDX-License-Identifier: MIT

#include "ck_internal.h"
#include "ck_stats.h"

// No fused multiply-add: the Swift twins compute the same bits.
#pragma clang fp contract(off)

#define LANES 16

// Canonical block: lane j takes elements j, j+16, ...; lanes added pairwise.
CK_INLINE void moments_block_body(const float *x, size_t n, double *s, double *q) {
    double a[LANES] = { 0 }, b[LANES] = { 0 };
    size_t i = 0;
    for (; i + LANES <= n; i += LANES)
        for (size_t j = 0; j < LANES; ++j) { double v = (double)x[i + j]; a[j] += v; b[j] += v * v; }
    for (size_t j = 0; i + j < n; ++j) { double v = (double)x[i + j]; a[j] += v; b[j] += v * v; }
    for (size_t w = LANES / 2; w >= 1; w /= 2)
        for (size_t j = 0; j < w; ++j) { a[j] += a[j + w]; b[j] += b[j + w]; }
    *s = a[0];
    *q = b[0];
}

// Sums of (a-b)^2 and b^2 for the update ratio, a diagnostic: float lanes
// (CHANGE_LANES of them, lane j takes elements j, j+CHANGE_LANES, ...; lanes
// added pairwise), twice as fast as double lanes. Blocks of CHANGE_BLOCK
// elements are combined in double, which bounds the relative error near 1e-5.
// With `update`, b takes a's values in the same pass (the snapshot for the next
// step's ratio): a separate copy cost as much as the sums.
#define CHANGE_LANES 32
#define CHANGE_BLOCK 4096
CK_INLINE void change_block_body(const float *CK_RESTRICT a, float *CK_RESTRICT b, size_t n, double *d, double *q,
                                 int update) {
    float x[CHANGE_LANES] = { 0 }, y[CHANGE_LANES] = { 0 };
    size_t i = 0;
    for (; i + CHANGE_LANES <= n; i += CHANGE_LANES)
        for (size_t j = 0; j < CHANGE_LANES; ++j) {
            float u = a[i + j] - b[i + j];
            x[j] += u * u;
            y[j] += b[i + j] * b[i + j];
            if (update) b[i + j] = a[i + j];
        }
    for (size_t j = 0; i + j < n; ++j) {
        float u = a[i + j] - b[i + j];
        x[j] += u * u;
        y[j] += b[i + j] * b[i + j];
        if (update) b[i + j] = a[i + j];
    }
    for (size_t w = CHANGE_LANES / 2; w >= 1; w /= 2)
        for (size_t j = 0; j < w; ++j) { x[j] += x[j + w]; y[j] += y[j + w]; }
    *d = (double)x[0];
    *q = (double)y[0];
}

CK_INLINE size_t outside_body(const float *x, size_t n, float low, float high) {
    size_t count = 0;
    for (size_t i = 0; i < n; ++i) count += (x[i] < low) | (x[i] > high);
    return count;
}

// Marks in `alive` the columns (of `width`; rows `stride` apart) with a
// positive entry among these rows.
CK_INLINE void alive_body(size_t rows, size_t width, size_t stride, const float *y, unsigned char *alive) {
    for (size_t r = 0; r < rows; ++r) {
        const float *row = y + r * stride;
        for (size_t c = 0; c < width; ++c) alive[c] |= row[c] > 0.0f;
    }
}

// The update switch picks a specialized loop; each wrapper is compiled per ISA.
CK_INLINE void change_block_dispatch(const float *a, float *b, size_t n, double *d, double *q, int update) {
    if (update) change_block_body(a, b, n, d, q, 1);
    else change_block_body(a, b, n, d, q, 0);
}

typedef struct stats_isa {
    void (*moments_block)(const float *, size_t, double *, double *);
    void (*change_block)(const float *, float *, size_t, double *, double *, int);
    size_t (*outside)(const float *, size_t, float, float);
    void (*alive)(size_t, size_t, size_t, const float *, unsigned char *);
} stats_isa;

static void moments_block_portable(const float *x, size_t n, double *s, double *q) { moments_block_body(x, n, s, q); }
static size_t outside_portable(const float *x, size_t n, float lo, float hi) { return outside_body(x, n, lo, hi); }
static void alive_portable(size_t r, size_t w, size_t s, const float *y, unsigned char *a) { alive_body(r, w, s, y, a); }
static void change_block_portable(const float *a, float *b, size_t n, double *d, double *q, int u) { change_block_dispatch(a, b, n, d, q, u); }
static const stats_isa portable_isa = { moments_block_portable, change_block_portable, outside_portable, alive_portable };

#if CK_HAVE_X86
CK_TARGET_AVX2 static void moments_block_avx2(const float *x, size_t n, double *s, double *q) { moments_block_body(x, n, s, q); }
CK_TARGET_AVX2 static size_t outside_avx2(const float *x, size_t n, float lo, float hi) { return outside_body(x, n, lo, hi); }
CK_TARGET_AVX2 static void alive_avx2(size_t r, size_t w, size_t s, const float *y, unsigned char *a) { alive_body(r, w, s, y, a); }
CK_TARGET_AVX2 static void change_block_avx2(const float *a, float *b, size_t n, double *d, double *q, int u) { change_block_dispatch(a, b, n, d, q, u); }
static const stats_isa avx2_isa = { moments_block_avx2, change_block_avx2, outside_avx2, alive_avx2 };

CK_TARGET_AVX512 static void moments_block_avx512(const float *x, size_t n, double *s, double *q) { moments_block_body(x, n, s, q); }
CK_TARGET_AVX512 static size_t outside_avx512(const float *x, size_t n, float lo, float hi) { return outside_body(x, n, lo, hi); }
CK_TARGET_AVX512 static void alive_avx512(size_t r, size_t w, size_t s, const float *y, unsigned char *a) { alive_body(r, w, s, y, a); }
CK_TARGET_AVX512 static void change_block_avx512(const float *a, float *b, size_t n, double *d, double *q, int u) { change_block_dispatch(a, b, n, d, q, u); }
static const stats_isa avx512_isa = { moments_block_avx512, change_block_avx512, outside_avx512, alive_avx512 };
#endif

static const stats_isa *isa_table(void) { return CK_ISA_TABLE(portable_isa, avx2_isa, avx512_isa); }

// Monitoring runs on activations of modest size: one thread, blocks in order.
void ck_moments_f32(size_t n, const float *x, double *sum, double *sum_squares) {
    const stats_isa *isa = isa_table();
    size_t block = ck_sum_block_size(n);
    double s = 0.0, q = 0.0;
    for (size_t start = 0; start < n; start += block) {
        double bs, bq;
        isa->moments_block(x + start, ck_min_size(block, n - start), &bs, &bq);
        s += bs;
        q += bq;
    }
    *sum = s;
    *sum_squares = q;
}

static void change_moments(size_t n, const float *after, float *before, bool update, double *sum_squared_change,
                           double *sum_squares_before) {
    const stats_isa *isa = isa_table();
    double d = 0.0, q = 0.0;
    for (size_t start = 0; start < n; start += CHANGE_BLOCK) {
        size_t length = ck_min_size(CHANGE_BLOCK, n - start);
        double bd, bq;
        isa->change_block(after + start, before + start, length, &bd, &bq, update);
        d += bd;
        q += bq;
    }
    *sum_squared_change = d;
    *sum_squares_before = q;
}

void ck_change_moments_f32(size_t n, const float *after, const float *before, double *sum_squared_change,
                           double *sum_squares_before) {
    change_moments(n, after, (float *)before, false, sum_squared_change, sum_squares_before);
}

void ck_change_moments_update_f32(size_t n, const float *after, float *before, double *sum_squared_change,
                                  double *sum_squares_before) {
    change_moments(n, after, before, true, sum_squared_change, sum_squares_before);
}

size_t ck_count_outside_f32(size_t n, const float *x, float low, float high) {
    return isa_table()->outside(x, n, low, high);
}

size_t ck_count_dead_columns_f32(size_t rows, size_t columns, const float *y) {
    const stats_isa *isa = isa_table();
    enum { TILE = 1024 };
    unsigned char alive[TILE];
    size_t dead = 0;
    for (size_t c0 = 0; c0 < columns; c0 += TILE) {
        size_t width = ck_min_size(TILE, columns - c0);
        for (size_t c = 0; c < width; ++c) alive[c] = 0;
        isa->alive(rows, width, columns, y + c0, alive);
        for (size_t c = 0; c < width; ++c) dead += !alive[c];
    }
    return dead;
}
