// GradKit CKernels — norms of gradient sets, finiteness, adaptive clipping. SPDX-License-Identifier: MIT
#include "ck_internal.h"
#include "ck_norm.h"

#include <math.h>

// No fused multiply-add: the Swift twins (and every ISA path) compute the same bits.
#pragma clang fp contract(off)

#define LANES 32
#define MAX_BLOCKS 1024u

// The canonical power sum of one block: lane j takes elements j, j+32, ...,
// then the lanes are added pairwise. 32 double lanes (reduce.c's sums use 16)
// keep four AVX-512 accumulators busy: twice the speed of 16 on data in cache.
// x^2 of a float is exact in double, so squares and absolute values sum to the
// same bits on every ISA, fused multiply-add or not.
CK_INLINE double power_block_body(const float *x, size_t n, ck_norm_kind kind, double p) {
    double acc[LANES] = { 0 };
    size_t i = 0;
    if (kind == CK_NORM_KIND_SQUARES) {
        for (; i + LANES <= n; i += LANES) {
            ck_prefetch_ahead(x + i);
            for (size_t j = 0; j < LANES; ++j) { double v = (double)x[i + j]; acc[j] += v * v; }
        }
        for (size_t j = 0; i + j < n; ++j) { double v = (double)x[i + j]; acc[j] += v * v; }
    } else if (kind == CK_NORM_KIND_ABS) {
        for (; i + LANES <= n; i += LANES) {
            ck_prefetch_ahead(x + i);
            for (size_t j = 0; j < LANES; ++j) acc[j] += fabs((double)x[i + j]);
        }
        for (size_t j = 0; i + j < n; ++j) acc[j] += fabs((double)x[i + j]);
    } else if (p == 3.0 || p == 4.0) {
        // Small integer powers by multiplication in double (pow costs ~40x more);
        // |x|^3 of a float rounds once, |x|^4 = (x^2)^2 is exact.
        int cube = p == 3.0;
        for (; i + LANES <= n; i += LANES) {
            ck_prefetch_ahead(x + i);
            for (size_t j = 0; j < LANES; ++j) {
                double v = fabs((double)x[i + j]), v2 = v * v;
                acc[j] += cube ? v2 * v : v2 * v2;
            }
        }
        for (size_t j = 0; i + j < n; ++j) {
            double v = fabs((double)x[i + j]), v2 = v * v;
            acc[j] += cube ? v2 * v : v2 * v2;
        }
    } else {
        for (; i + LANES <= n; i += LANES)
            for (size_t j = 0; j < LANES; ++j) acc[j] += pow(fabs((double)x[i + j]), p);
        for (size_t j = 0; i + j < n; ++j) acc[j] += pow(fabs((double)x[i + j]), p);
    }
    for (size_t w = LANES / 2; w >= 1; w /= 2)
        for (size_t j = 0; j < w; ++j) acc[j] += acc[j + w];
    return acc[0];
}

CK_INLINE double max_abs_body(const float *x, size_t n) {
    float acc[LANES];
    for (size_t j = 0; j < LANES; ++j) acc[j] = 0.0f;
    size_t i = 0;
    for (; i + LANES <= n; i += LANES)
        for (size_t j = 0; j < LANES; ++j) {
            float v = __builtin_fabsf(x[i + j]);
            acc[j] = (v > acc[j] || v != v) ? v : acc[j];
        }
    for (size_t j = 0; i + j < n; ++j) {
        float v = __builtin_fabsf(x[i + j]);
        acc[j] = (v > acc[j] || v != v) ? v : acc[j];
    }
    float m = acc[0];
    for (size_t j = 1; j < LANES; ++j) m = (acc[j] > m || acc[j] != acc[j]) ? acc[j] : m;
    return (double)m;
}

// 1 when every element is finite: x * 0 is NaN exactly for infinities and NaN.
CK_INLINE int finite_body(const float *x, size_t n) {
    int ok = 1;
    for (size_t i = 0; i < n; ++i) {
        float t = x[i] * 0.0f;
        ok &= (t == t);
    }
    return ok;
}

CK_INLINE void agc_row_body(size_t columns, float *g, const float *w, float clip_factor, float epsilon, size_t *clipped) {
    double gs = power_block_body(g, columns, CK_NORM_KIND_SQUARES, 2.0);
    double ws = power_block_body(w, columns, CK_NORM_KIND_SQUARES, 2.0);
    float gn = (float)sqrt(gs), wn = (float)sqrt(ws);
    float limit = clip_factor * (wn > epsilon ? wn : epsilon);
    if (gn > limit) {
        float scale = limit / (gn > 1e-6f ? gn : 1e-6f);
        for (size_t i = 0; i < columns; ++i) g[i] = g[i] * scale;
        *clipped += 1;
    }
}

typedef struct norm_isa {
    double (*power_block)(const float *, size_t, ck_norm_kind, double);
    double (*max_abs)(const float *, size_t);
    int (*finite)(const float *, size_t);
    void (*agc_row)(size_t, float *, const float *, float, float, size_t *);
} norm_isa;

static double power_block_portable(const float *x, size_t n, ck_norm_kind k, double p) { return power_block_body(x, n, k, p); }
static double max_abs_portable(const float *x, size_t n) { return max_abs_body(x, n); }
static int finite_portable(const float *x, size_t n) { return finite_body(x, n); }
static void agc_row_portable(size_t c, float *g, const float *w, float f, float e, size_t *k) { agc_row_body(c, g, w, f, e, k); }
static const norm_isa portable_isa = { power_block_portable, max_abs_portable, finite_portable, agc_row_portable };

#if CK_HAVE_X86
CK_TARGET_AVX2 static double power_block_avx2(const float *x, size_t n, ck_norm_kind k, double p) { return power_block_body(x, n, k, p); }
CK_TARGET_AVX2 static double max_abs_avx2(const float *x, size_t n) { return max_abs_body(x, n); }
CK_TARGET_AVX2 static int finite_avx2(const float *x, size_t n) { return finite_body(x, n); }
CK_TARGET_AVX2 static void agc_row_avx2(size_t c, float *g, const float *w, float f, float e, size_t *k) { agc_row_body(c, g, w, f, e, k); }
static const norm_isa avx2_isa = { power_block_avx2, max_abs_avx2, finite_avx2, agc_row_avx2 };

CK_TARGET_AVX512 static double power_block_avx512(const float *x, size_t n, ck_norm_kind k, double p) { return power_block_body(x, n, k, p); }
CK_TARGET_AVX512 static double max_abs_avx512(const float *x, size_t n) { return max_abs_body(x, n); }
CK_TARGET_AVX512 static int finite_avx512(const float *x, size_t n) { return finite_body(x, n); }
CK_TARGET_AVX512 static void agc_row_avx512(size_t c, float *g, const float *w, float f, float e, size_t *k) { agc_row_body(c, g, w, f, e, k); }
static const norm_isa avx512_isa = { power_block_avx512, max_abs_avx512, finite_avx512, agc_row_avx512 };
#endif

static const norm_isa *isa_table(void) { return CK_ISA_TABLE(portable_isa, avx2_isa, avx512_isa); }

static double combine(ck_norm_kind kind, double total, double part) {
    if (kind != CK_NORM_KIND_MAX_ABS) return total + part;
    return (part > total || part != part) ? part : total;
}

// The canonical partial of one segment: its blocks in order.
static double segment_partial(const norm_isa *isa, ck_norm_kind kind, const float *x, size_t n, double p) {
    if (kind == CK_NORM_KIND_MAX_ABS) return isa->max_abs(x, n);
    size_t block = ck_sum_block_size(n);
    double total = 0.0;
    for (size_t start = 0; start < n; start += block) {
        total += isa->power_block(x + start, ck_min_size(block, n - start), kind, p);
    }
    return total;
}

typedef struct norm_job {
    const norm_isa *isa;
    ck_norm_kind kind;
    double p;
    const float *const *segments;
    const size_t *lengths;
    double *partials;
    const float *x;
    size_t n, block;
    double *block_partials;
    const size_t *bounds;
} norm_job;

// Whole-segment parts: at least this many elements each, at most this many parts.
#define NORM_PART_GRAIN (1u << 15)
#define CK_NORM_MAX_PARTS 64

static void segments_part(void *ctx, size_t begin, size_t end, size_t part) {
    (void)part;
    const norm_job *j = ctx;
    for (size_t s = begin; s < end; ++s) {
        j->partials[s] = segment_partial(j->isa, j->kind, j->segments[s], j->lengths[s], j->p);
    }
}

// Segments [bounds[part], bounds[part + 1]).
static void balanced_part(void *ctx, size_t begin, size_t end, size_t part) {
    const norm_job *j = ctx;
    for (size_t q = begin; q < end; ++q) segments_part(ctx, j->bounds[q], j->bounds[q + 1], q);
    (void)part;
}

static void blocks_part(void *ctx, size_t begin, size_t end, size_t part) {
    (void)part;
    const norm_job *j = ctx;
    for (size_t b = begin; b < end; ++b) {
        size_t start = b * j->block;
        size_t len = ck_min_size(j->block, j->n - start);
        j->block_partials[b] = j->kind == CK_NORM_KIND_MAX_ABS ? j->isa->max_abs(j->x + start, len)
                                                             : j->isa->power_block(j->x + start, len, j->kind, j->p);
    }
}

double ck_norm_segments_f32(ck_norm_kind kind, size_t count, const float *const *segments, const size_t *lengths,
                            double p, double *partials) {
    norm_job job = { .isa = isa_table(), .kind = kind, .p = p, .segments = segments, .lengths = lengths,
                     .partials = partials };
    size_t threads = ck_threads_get();
    size_t total_length = 0, longest = 0;
    for (size_t s = 0; s < count; ++s) {
        total_length += lengths[s];
        longest = ck_max_size(longest, lengths[s]);
    }
    if (count >= 4 * threads || longest < 4 * 4096u) {
        // Many segments, or all short: whole segments per part, the parts cut
        // where the running length crosses equal shares of the elements.
        size_t parts = ck_parallel_parts(total_length, NORM_PART_GRAIN);
        size_t bounds[CK_NORM_MAX_PARTS + 1];
        parts = ck_min_size(parts, CK_NORM_MAX_PARTS);
        size_t running = 0, s = 0;
        bounds[0] = 0;
        for (size_t q = 1; q < parts; ++q) {
            size_t share = total_length / parts * q;
            while (s < count && running + lengths[s] / 2 < share) running += lengths[s++];
            bounds[q] = s;
        }
        bounds[parts] = count;
        job.bounds = bounds;
        ck_parallel_for(parts, 1, balanced_part, &job);
    } else {
        // Few long segments: split each one's blocks (same canonical order).
        double block_partials[MAX_BLOCKS];
        job.block_partials = block_partials;
        for (size_t s = 0; s < count; ++s) {
            size_t n = lengths[s];
            job.x = segments[s];
            job.n = n;
            job.block = kind == CK_NORM_KIND_MAX_ABS ? ck_max_size(ck_div_up(n, MAX_BLOCKS), 4096u)
                                                     : ck_sum_block_size(n);
            size_t blocks = ck_div_up(n, job.block);
            ck_parallel_for(blocks, 2, blocks_part, &job);
            double value = 0.0;
            for (size_t b = 0; b < blocks; ++b) value = combine(kind, value, block_partials[b]);
            partials[s] = value;
        }
    }
    double total = 0.0;
    for (size_t s = 0; s < count; ++s) total = combine(kind, total, partials[s]);
    return total;
}

typedef struct finite_job {
    const norm_isa *isa;
    const float *x;
    int *results;
} finite_job;

static void finite_part(void *ctx, size_t begin, size_t end, size_t part) {
    const finite_job *j = ctx;
    j->results[part] = j->isa->finite(j->x + begin, end - begin);
}

bool ck_all_finite_f32(size_t n, const float *x) {
    int results[256];
    finite_job job = { .isa = isa_table(), .x = x, .results = results };
    // Every slot starts true, so parts that do not run (fewer threads than
    // expected) cannot make the answer wrong.
    for (size_t i = 0; i < 256; ++i) results[i] = 1;
    ck_parallel_for(n, 1u << 16, finite_part, &job);
    int ok = 1;
    for (size_t i = 0; i < 256; ++i) ok &= results[i];
    return ok;
}

typedef struct agc_job {
    const norm_isa *isa;
    size_t columns;
    float *g;
    const float *w;
    float clip_factor, epsilon;
    size_t clipped[256];
} agc_job;

static void agc_part(void *ctx, size_t begin, size_t end, size_t part) {
    agc_job *j = ctx;
    size_t clipped = 0;
    for (size_t r = begin; r < end; ++r) {
        j->isa->agc_row(j->columns, j->g + r * j->columns, j->w + r * j->columns, j->clip_factor, j->epsilon, &clipped);
    }
    j->clipped[part] = clipped;
}

size_t ck_agc_f32(size_t rows, size_t columns, float *CK_RESTRICT g, const float *CK_RESTRICT w, float clip_factor,
                  float epsilon) {
    agc_job job = { .isa = isa_table(), .columns = columns, .g = g, .w = w, .clip_factor = clip_factor,
                    .epsilon = epsilon };
    size_t grain = ck_max_size(1, (1u << 15) / ck_max_size(columns, 1));
    for (size_t i = 0; i < 256; ++i) job.clipped[i] = 0;
    ck_parallel_for(rows, grain, agc_part, &job);
    size_t total = 0;
    for (size_t i = 0; i < 256; ++i) total += job.clipped[i];
    return total;
}
