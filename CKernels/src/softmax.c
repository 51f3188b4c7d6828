// GradKit CKernels — softmax, log-softmax, cross-entropy. SPDX-License-Identifier: MIT
#include "ck_softmax.h"
#include "ck_internal.h"
#include "ck_math.h"

#define LANES 16

// Maximum of a contiguous row (NaN-propagating), 16 lanes so it vectorizes.
CK_INLINE float row_max(const float *x, size_t n) {
    float acc[LANES];
    for (size_t j = 0; j < LANES; ++j) acc[j] = -__builtin_inff();
    size_t i = 0;
    for (; i + LANES <= n; i += LANES)
        for (size_t j = 0; j < LANES; ++j) {
            float v = x[i + j];
            acc[j] = (v > acc[j] || v != v) ? v : acc[j];
        }
    for (size_t j = 0; i + j < n; ++j) {
        float v = x[i + j];
        acc[j] = (v > acc[j] || v != v) ? v : acc[j];
    }
    float m = acc[0];
    for (size_t j = 1; j < LANES; ++j) m = (acc[j] > m || acc[j] != acc[j]) ? acc[j] : m;
    return m;
}

// e[i] = exp(x[i] - m) and their sum (16 float lanes, then pairwise).
CK_INLINE float exp_shifted_sum(float *e, const float *x, size_t n, float m) {
    float acc[LANES] = { 0 };
    size_t i = 0;
    for (; i + LANES <= n; i += LANES)
        for (size_t j = 0; j < LANES; ++j) {
            float v = ck_expf(x[i + j] - m);
            e[i + j] = v;
            acc[j] += v;
        }
    for (size_t j = 0; i + j < n; ++j) {
        float v = ck_expf(x[i + j] - m);
        e[i + j] = v;
        acc[j] += v;
    }
    for (size_t w = LANES / 2; w >= 1; w /= 2)
        for (size_t j = 0; j < w; ++j) acc[j] += acc[j + w];
    return acc[0];
}

CK_INLINE float row_dot(const float *a, const float *b, size_t n) {
    float acc[LANES] = { 0 };
    size_t i = 0;
    for (; i + LANES <= n; i += LANES)
        for (size_t j = 0; j < LANES; ++j) acc[j] += a[i + j] * b[i + j];
    for (size_t j = 0; i + j < n; ++j) acc[j] += a[i + j] * b[i + j];
    for (size_t w = LANES / 2; w >= 1; w /= 2)
        for (size_t j = 0; j < w; ++j) acc[j] += acc[j + w];
    return acc[0];
}

CK_INLINE float row_sum(const float *a, size_t n) {
    float acc[LANES] = { 0 };
    size_t i = 0;
    for (; i + LANES <= n; i += LANES)
        for (size_t j = 0; j < LANES; ++j) acc[j] += a[i + j];
    for (size_t j = 0; i + j < n; ++j) acc[j] += a[i + j];
    for (size_t w = LANES / 2; w >= 1; w /= 2)
        for (size_t j = 0; j < w; ++j) acc[j] += acc[j + w];
    return acc[0];
}

// One contiguous row. mode 0: softmax, 1: log-softmax.
CK_INLINE void softmax_row_body(size_t n, float *y, const float *x, int log_mode) {
    float m = row_max(x, n);
    if (log_mode) {
        float s = 0.0f;
        float acc[LANES] = { 0 };
        size_t i = 0;
        for (; i + LANES <= n; i += LANES)
            for (size_t j = 0; j < LANES; ++j) acc[j] += ck_expf(x[i + j] - m);
        for (size_t j = 0; i + j < n; ++j) acc[j] += ck_expf(x[i + j] - m);
        for (size_t w = LANES / 2; w >= 1; w /= 2)
            for (size_t j = 0; j < w; ++j) acc[j] += acc[j + w];
        s = acc[0];
        // (x - m) - log s, not x - (m + log s): the latter rounds at |m|'s scale.
        float log_sum = ck_logf(s);
        for (size_t k = 0; k < n; ++k) y[k] = (x[k] - m) - log_sum;
    } else {
        float s = exp_shifted_sum(y, x, n, m);
        for (size_t k = 0; k < n; ++k) y[k] = y[k] / s;
    }
}

CK_INLINE void softmax_backward_row_body(size_t n, float *dx, const float *dy, const float *y, int log_mode) {
    if (log_mode) {
        float s = row_sum(dy, n);
        for (size_t i = 0; i < n; ++i) dx[i] = dy[i] - ck_expf(y[i]) * s;
    } else {
        float s = row_dot(dy, y, n);
        for (size_t i = 0; i < n; ++i) dx[i] = y[i] * (dy[i] - s);
    }
}

CK_INLINE float cross_entropy_row_body(size_t n, float *p, const float *x, int64_t label) {
    float m = row_max(x, n);
    float target = x[label];
    float s = exp_shifted_sum(p, x, n, m);
    for (size_t k = 0; k < n; ++k) p[k] = p[k] / s;
    return (m - target) + ck_logf(s); // m - target first: no rounding at |m|'s scale
}

// Rows shorter than LANES (10 classes, say) leave exp_shifted_sum in its scalar
// tail: for those, a block of rows is shifted by each row's maximum, the
// exponentials are taken in one vectorized pass over the whole block, and each
// row is summed with the same lane layout as exp_shifted_sum (so the bits agree).
CK_INLINE void cross_entropy_block_body(size_t n, size_t rows, float *p, const float *x, const int64_t *labels,
                                        float *losses) {
    float maxima[64];
    for (size_t r = 0; r < rows; ++r) {
        maxima[r] = row_max(x + r * n, n);
        for (size_t c = 0; c < n; ++c) p[r * n + c] = x[r * n + c] - maxima[r];
    }
    size_t total = rows * n;
    for (size_t i = 0; i < total; ++i) p[i] = ck_expf(p[i]);
    for (size_t r = 0; r < rows; ++r) {
        float *e = p + r * n;
        float acc[LANES] = { 0 };
        for (size_t j = 0; j < n; ++j) acc[j] += e[j];
        for (size_t w = LANES / 2; w >= 1; w /= 2)
            for (size_t j = 0; j < w; ++j) acc[j] += acc[j + w];
        float s = acc[0];
        for (size_t c = 0; c < n; ++c) e[c] = e[c] / s;
        losses[r] = (maxima[r] - x[r * n + (size_t)labels[r]]) + ck_logf(s);
    }
}

typedef void (*softmax_row_fn)(size_t, float *, const float *, int);
typedef void (*softmax_backward_row_fn)(size_t, float *, const float *, const float *, int);
typedef float (*cross_entropy_row_fn)(size_t, float *, const float *, int64_t);
typedef void (*cross_entropy_block_fn)(size_t, size_t, float *, const float *, const int64_t *, float *);

typedef struct softmax_isa {
    softmax_row_fn row;
    softmax_backward_row_fn backward_row;
    cross_entropy_row_fn cross_entropy_row;
    cross_entropy_block_fn cross_entropy_block;
} softmax_isa;

static void row_portable(size_t n, float *y, const float *x, int m) { softmax_row_body(n, y, x, m); }
static void backward_row_portable(size_t n, float *dx, const float *dy, const float *y, int m) { softmax_backward_row_body(n, dx, dy, y, m); }
static float cross_entropy_row_portable(size_t n, float *p, const float *x, int64_t l) { return cross_entropy_row_body(n, p, x, l); }
static void cross_entropy_block_portable(size_t n, size_t r, float *p, const float *x, const int64_t *l, float *o) { cross_entropy_block_body(n, r, p, x, l, o); }
static const softmax_isa portable_isa = { row_portable, backward_row_portable, cross_entropy_row_portable, cross_entropy_block_portable };

#if CK_HAVE_X86
CK_TARGET_AVX2 static void row_avx2(size_t n, float *y, const float *x, int m) { softmax_row_body(n, y, x, m); }
CK_TARGET_AVX2 static void backward_row_avx2(size_t n, float *dx, const float *dy, const float *y, int m) { softmax_backward_row_body(n, dx, dy, y, m); }
CK_TARGET_AVX2 static float cross_entropy_row_avx2(size_t n, float *p, const float *x, int64_t l) { return cross_entropy_row_body(n, p, x, l); }
CK_TARGET_AVX2 static void cross_entropy_block_avx2(size_t n, size_t r, float *p, const float *x, const int64_t *l, float *o) { cross_entropy_block_body(n, r, p, x, l, o); }
static const softmax_isa avx2_isa = { row_avx2, backward_row_avx2, cross_entropy_row_avx2, cross_entropy_block_avx2 };

CK_TARGET_AVX512 static void row_avx512(size_t n, float *y, const float *x, int m) { softmax_row_body(n, y, x, m); }
CK_TARGET_AVX512 static void backward_row_avx512(size_t n, float *dx, const float *dy, const float *y, int m) { softmax_backward_row_body(n, dx, dy, y, m); }
CK_TARGET_AVX512 static float cross_entropy_row_avx512(size_t n, float *p, const float *x, int64_t l) { return cross_entropy_row_body(n, p, x, l); }
CK_TARGET_AVX512 static void cross_entropy_block_avx512(size_t n, size_t r, float *p, const float *x, const int64_t *l, float *o) { cross_entropy_block_body(n, r, p, x, l, o); }
static const softmax_isa avx512_isa = { row_avx512, backward_row_avx512, cross_entropy_row_avx512, cross_entropy_block_avx512 };
#endif

static const softmax_isa *isa_table(void) { return CK_ISA_TABLE(portable_isa, avx2_isa, avx512_isa); }

typedef struct softmax_job {
    const softmax_isa *isa;
    size_t extent, inner;
    int log_mode;
    float *y, *losses;
    const float *x, *dy;
    const int64_t *labels;
    float scale;
} softmax_job;

// Strided slices (inner > 1) are gathered into a stack row, processed by the
// contiguous routine, and scattered back; rows longer than the stack buffer
// are processed in place with scalar loops.
#define STRIDED_ROW 1024u

static void strided_softmax(const softmax_job *j, size_t slice, int backward) {
    size_t o = slice / j->inner, i = slice % j->inner;
    size_t base = o * j->extent * j->inner + i;
    float xr[STRIDED_ROW], yr[STRIDED_ROW];
    if (j->extent <= STRIDED_ROW) {
        for (size_t r = 0; r < j->extent; ++r) xr[r] = (backward ? j->dy : j->x)[base + r * j->inner];
        if (backward) {
            for (size_t r = 0; r < j->extent; ++r) yr[r] = j->x[base + r * j->inner];
            j->isa->backward_row(j->extent, xr, xr, yr, j->log_mode);
        } else {
            j->isa->row(j->extent, xr, xr, j->log_mode);
        }
        for (size_t r = 0; r < j->extent; ++r) j->y[base + r * j->inner] = xr[r];
        return;
    }
    // Long strided rows: three scalar passes.
    const float *x = j->x + base;
    float *y = j->y + base;
    size_t s = j->inner, n = j->extent;
    if (!backward) {
        float m = -__builtin_inff();
        for (size_t r = 0; r < n; ++r) m = (x[r * s] > m || x[r * s] != x[r * s]) ? x[r * s] : m;
        float total = 0.0f;
        for (size_t r = 0; r < n; ++r) total += ck_expf(x[r * s] - m);
        if (j->log_mode) {
            float log_sum = ck_logf(total);
            for (size_t r = 0; r < n; ++r) y[r * s] = (x[r * s] - m) - log_sum;
        } else {
            for (size_t r = 0; r < n; ++r) y[r * s] = ck_expf(x[r * s] - m) / total;
        }
    } else {
        const float *dy = j->dy + base; // here x holds the forward output
        float total = 0.0f;
        for (size_t r = 0; r < n; ++r) total += j->log_mode ? dy[r * s] : dy[r * s] * x[r * s];
        for (size_t r = 0; r < n; ++r) {
            y[r * s] = j->log_mode ? dy[r * s] - ck_expf(x[r * s]) * total : x[r * s] * (dy[r * s] - total);
        }
    }
}

static void forward_part(void *ctx, size_t begin, size_t end, size_t part) {
    (void)part;
    const softmax_job *j = ctx;
    for (size_t r = begin; r < end; ++r) {
        if (j->inner == 1) j->isa->row(j->extent, j->y + r * j->extent, j->x + r * j->extent, j->log_mode);
        else strided_softmax(j, r, 0);
    }
}

static void backward_part(void *ctx, size_t begin, size_t end, size_t part) {
    (void)part;
    const softmax_job *j = ctx;
    for (size_t r = begin; r < end; ++r) {
        if (j->inner == 1) {
            size_t o = r * j->extent;
            j->isa->backward_row(j->extent, j->y + o, j->dy + o, j->x + o, j->log_mode);
        } else {
            strided_softmax(j, r, 1);
        }
    }
}

static void softmax_run(size_t outer, size_t extent, size_t inner, float *y, const float *x, const float *dy,
                        int log_mode, int backward) {
    softmax_job job = { .isa = isa_table(), .extent = extent, .inner = inner, .log_mode = log_mode,
                        .y = y, .x = x, .dy = dy };
    if (extent == 0 || inner == 0) return;
    size_t slices = outer * inner;
    size_t grain = ck_max_size(1, (1u << 14) / extent);
    ck_parallel_for(slices, grain, backward ? backward_part : forward_part, &job);
}

void ck_softmax_f32(size_t outer, size_t extent, size_t inner, float *y, const float *x) {
    softmax_run(outer, extent, inner, y, x, NULL, 0, 0);
}

void ck_log_softmax_f32(size_t outer, size_t extent, size_t inner, float *y, const float *x) {
    softmax_run(outer, extent, inner, y, x, NULL, 1, 0);
}

void ck_softmax_backward_f32(size_t outer, size_t extent, size_t inner, float *dx, const float *dy, const float *y) {
    softmax_run(outer, extent, inner, dx, y, dy, 0, 1);
}

void ck_log_softmax_backward_f32(size_t outer, size_t extent, size_t inner, float *dx, const float *dy,
                                 const float *y) {
    softmax_run(outer, extent, inner, dx, y, dy, 1, 1);
}

static void cross_entropy_part(void *ctx, size_t begin, size_t end, size_t part) {
    (void)part;
    const softmax_job *j = ctx;
    if (j->extent < LANES) {
        for (size_t r = begin; r < end; r += 64) {
            size_t rows = ck_min_size(64, end - r), o = r * j->extent;
            j->isa->cross_entropy_block(j->extent, rows, j->y + o, j->x + o, j->labels + r, j->losses + r);
        }
        return;
    }
    for (size_t r = begin; r < end; ++r) {
        size_t o = r * j->extent;
        j->losses[r] = j->isa->cross_entropy_row(j->extent, j->y + o, j->x + o, j->labels[r]);
    }
}

void ck_softmax_cross_entropy_f32(size_t rows, size_t classes, float *losses, float *probabilities,
                                  const float *logits, const int64_t *labels) {
    softmax_job job = { .isa = isa_table(), .extent = classes, .inner = 1, .y = probabilities, .x = logits,
                        .losses = losses, .labels = labels };
    if (classes == 0) return;
    ck_parallel_for(rows, ck_max_size(1, (1u << 14) / classes), cross_entropy_part, &job);
}

static void cross_entropy_backward_part(void *ctx, size_t begin, size_t end, size_t part) {
    (void)part;
    const softmax_job *j = ctx;
    for (size_t r = begin; r < end; ++r) {
        size_t o = r * j->extent, label = (size_t)j->labels[r];
        float target = j->x[o + label]; // read first: dlogits may alias the probabilities
        for (size_t c = 0; c < j->extent; ++c) j->y[o + c] = j->scale * j->x[o + c];
        j->y[o + label] = j->scale * (target - 1.0f);
    }
}

void ck_softmax_cross_entropy_backward_f32(size_t rows, size_t classes, float *dlogits, const float *probabilities,
                                           const int64_t *labels, float scale) {
    softmax_job job = { .isa = isa_table(), .extent = classes, .inner = 1, .y = dlogits, .x = probabilities,
                        .labels = labels, .scale = scale };
    if (classes == 0) return;
    ck_parallel_for(rows, ck_max_size(1, (1u << 15) / classes), cross_entropy_backward_part, &job);
}
