// GradKit CKernels — fused optimizer steps. SPDX-License-Identifier: MIT
//
// Branch-free where the options are scalars (a select per element is free in
// a memory-bound loop); a separate loop only where an option adds an array.
#include "ck_internal.h"
#include "ck_optim.h"

#include <math.h>

// Each operation rounds separately, in the documented order: the Swift twins
// must be able to reproduce every bit.
#pragma clang fp contract(off)

#define OPTIM_GRAIN (1u << 15)

CK_INLINE float gradient(float g, float p, float scale, float weight_decay) {
    float d = g * scale;
    return weight_decay != 0.0f ? d + weight_decay * p : d;
}

// torch.lerp: start + w (end - start) for w < 1/2, end - (end - start)(1 - w) otherwise.
CK_INLINE float lerp(float start, float end, float weight) {
    return weight < 0.5f ? start + weight * (end - start) : end - (end - start) * (1.0f - weight);
}

// ---------------------------------------------------------------- bodies

CK_INLINE void sgd_body(size_t n, float *p, float *b, const float *g, ck_sgd_scalars s, int with_momentum,
                        int first, int nesterov) {
    float neg_lr = -s.learning_rate;
    if (!with_momentum) {
        for (size_t i = 0; i < n; ++i) p[i] = p[i] + neg_lr * gradient(g[i], p[i], s.gradient_scale, s.weight_decay);
        return;
    }
    for (size_t i = 0; i < n; ++i) {
        float pi = p[i];
        float d = gradient(g[i], pi, s.gradient_scale, s.weight_decay);
        float buf = first ? d : b[i] * s.momentum + s.one_minus_dampening * d;
        float u = nesterov ? d + s.momentum * buf : buf;
        p[i] = pi + neg_lr * u;
        b[i] = buf;
    }
}

CK_INLINE void adagrad_body(size_t n, float *p, float *sum, const float *g, ck_adagrad_scalars s) {
    float neg_clr = -s.clr;
    for (size_t i = 0; i < n; ++i) {
        float d = gradient(g[i], p[i], s.gradient_scale, s.weight_decay);
        float acc = sum[i] + d * d;
        sum[i] = acc;
        float std = sqrtf(acc) + s.epsilon;
        p[i] = p[i] + neg_clr * d / std;
    }
}

CK_INLINE void rmsprop_body(size_t n, float *p, float *sq, float *ga, float *b, const float *g, ck_rmsprop_scalars s,
                            int centered, int with_momentum) {
    float neg_lr = -s.learning_rate;
    for (size_t i = 0; i < n; ++i) {
        float d = gradient(g[i], p[i], s.gradient_scale, s.weight_decay);
        float v = sq[i] * s.alpha + s.one_minus_alpha * d * d;
        sq[i] = v;
        float avg;
        if (centered) {
            float a = lerp(ga[i], d, s.one_minus_alpha);
            ga[i] = a;
            avg = sqrtf(v - a * a);
        } else {
            avg = sqrtf(v);
        }
        avg = avg + s.epsilon;
        if (with_momentum) {
            float buf = b[i] * s.momentum + d / avg;
            b[i] = buf;
            p[i] = p[i] + neg_lr * buf;
        } else {
            p[i] = p[i] + neg_lr * d / avg;
        }
    }
}

CK_INLINE void adam_body(size_t n, float *p, float *m, float *v, float *vmax, const float *g, ck_adam_scalars s,
                         int amsgrad) {
    float neg_step = -s.step_size;
    for (size_t i = 0; i < n; ++i) {
        float pi = p[i] * s.decay_factor;
        float d = gradient(g[i], pi, s.gradient_scale, s.weight_decay);
        float mi = lerp(m[i], d, s.one_minus_beta1);
        float vi = v[i] * s.beta2 + s.one_minus_beta2 * d * d;
        float vd = vi;
        if (amsgrad) {
            float w = vmax[i];
            vd = (vi > w || vi != vi) ? vi : w; // torch.maximum propagates NaN
            vmax[i] = vd;
        }
        float denom = sqrtf(vd) / s.bias_correction2_sqrt + s.epsilon;
        p[i] = pi + neg_step * mi / denom;
        m[i] = mi;
        v[i] = vi;
    }
}

// ---------------------------------------------------------------- per-ISA entry points

typedef struct optim_isa {
    void (*sgd)(size_t, float *, float *, const float *, ck_sgd_scalars);
    void (*adagrad)(size_t, float *, float *, const float *, ck_adagrad_scalars);
    void (*rmsprop)(size_t, float *, float *, float *, float *, const float *, ck_rmsprop_scalars);
    void (*adam)(size_t, float *, float *, float *, float *, const float *, ck_adam_scalars);
} optim_isa;

// The option switches pick specialized loops; each wrapper is compiled per ISA.
CK_INLINE void sgd_dispatch(size_t n, float *p, float *b, const float *g, ck_sgd_scalars s) {
    if (s.momentum == 0.0f) sgd_body(n, p, b, g, s, 0, 0, 0);
    else if (s.first) sgd_body(n, p, b, g, s, 1, 1, s.nesterov);
    else if (s.nesterov) sgd_body(n, p, b, g, s, 1, 0, 1);
    else sgd_body(n, p, b, g, s, 1, 0, 0);
}

CK_INLINE void rmsprop_dispatch(size_t n, float *p, float *sq, float *ga, float *b, const float *g,
                                ck_rmsprop_scalars s) {
    int momentum = s.momentum > 0.0f;
    if (s.centered) {
        if (momentum) rmsprop_body(n, p, sq, ga, b, g, s, 1, 1);
        else rmsprop_body(n, p, sq, ga, b, g, s, 1, 0);
    } else {
        if (momentum) rmsprop_body(n, p, sq, ga, b, g, s, 0, 1);
        else rmsprop_body(n, p, sq, ga, b, g, s, 0, 0);
    }
}

CK_INLINE void adam_dispatch(size_t n, float *p, float *m, float *v, float *vmax, const float *g, ck_adam_scalars s) {
    if (s.amsgrad) adam_body(n, p, m, v, vmax, g, s, 1);
    else adam_body(n, p, m, v, vmax, g, s, 0);
}

static void sgd_portable(size_t n, float *p, float *b, const float *g, ck_sgd_scalars s) { sgd_dispatch(n, p, b, g, s); }
static void adagrad_portable(size_t n, float *p, float *sum, const float *g, ck_adagrad_scalars s) { adagrad_body(n, p, sum, g, s); }
static void rmsprop_portable(size_t n, float *p, float *sq, float *ga, float *b, const float *g, ck_rmsprop_scalars s) { rmsprop_dispatch(n, p, sq, ga, b, g, s); }
static void adam_portable(size_t n, float *p, float *m, float *v, float *vmax, const float *g, ck_adam_scalars s) { adam_dispatch(n, p, m, v, vmax, g, s); }
static const optim_isa portable_isa = { sgd_portable, adagrad_portable, rmsprop_portable, adam_portable };

#if CK_HAVE_X86
CK_TARGET_AVX2 static void sgd_avx2(size_t n, float *p, float *b, const float *g, ck_sgd_scalars s) { sgd_dispatch(n, p, b, g, s); }
CK_TARGET_AVX2 static void adagrad_avx2(size_t n, float *p, float *sum, const float *g, ck_adagrad_scalars s) { adagrad_body(n, p, sum, g, s); }
CK_TARGET_AVX2 static void rmsprop_avx2(size_t n, float *p, float *sq, float *ga, float *b, const float *g, ck_rmsprop_scalars s) { rmsprop_dispatch(n, p, sq, ga, b, g, s); }
CK_TARGET_AVX2 static void adam_avx2(size_t n, float *p, float *m, float *v, float *vmax, const float *g, ck_adam_scalars s) { adam_dispatch(n, p, m, v, vmax, g, s); }
static const optim_isa avx2_isa = { sgd_avx2, adagrad_avx2, rmsprop_avx2, adam_avx2 };

CK_TARGET_AVX512 static void sgd_avx512(size_t n, float *p, float *b, const float *g, ck_sgd_scalars s) { sgd_dispatch(n, p, b, g, s); }
CK_TARGET_AVX512 static void adagrad_avx512(size_t n, float *p, float *sum, const float *g, ck_adagrad_scalars s) { adagrad_body(n, p, sum, g, s); }
CK_TARGET_AVX512 static void rmsprop_avx512(size_t n, float *p, float *sq, float *ga, float *b, const float *g, ck_rmsprop_scalars s) { rmsprop_dispatch(n, p, sq, ga, b, g, s); }
CK_TARGET_AVX512 static void adam_avx512(size_t n, float *p, float *m, float *v, float *vmax, const float *g, ck_adam_scalars s) { adam_dispatch(n, p, m, v, vmax, g, s); }
static const optim_isa avx512_isa = { sgd_avx512, adagrad_avx512, rmsprop_avx512, adam_avx512 };
#endif

static const optim_isa *isa_table(void) { return CK_ISA_TABLE(portable_isa, avx2_isa, avx512_isa); }

// ---------------------------------------------------------------- drivers

typedef struct optim_job {
    const optim_isa *isa;
    float *p, *a, *b, *c;
    const float *g;
    ck_sgd_scalars sgd;
    ck_adagrad_scalars adagrad;
    ck_rmsprop_scalars rmsprop;
    ck_adam_scalars adam;
} optim_job;

static inline float *offset(float *x, size_t i) { return x ? x + i : NULL; }

static void sgd_part(void *ctx, size_t begin, size_t end, size_t part) {
    (void)part;
    const optim_job *j = ctx;
    j->isa->sgd(end - begin, j->p + begin, offset(j->a, begin), j->g + begin, j->sgd);
}

void ck_sgd_step_f32(size_t n, float *CK_RESTRICT p, float *CK_RESTRICT momentum_buffer, const float *CK_RESTRICT g,
                     ck_sgd_scalars s) {
    optim_job job = { .isa = isa_table(), .p = p, .a = momentum_buffer, .g = g, .sgd = s };
    ck_parallel_for(n, OPTIM_GRAIN, sgd_part, &job);
}

static void adagrad_part(void *ctx, size_t begin, size_t end, size_t part) {
    (void)part;
    const optim_job *j = ctx;
    j->isa->adagrad(end - begin, j->p + begin, j->a + begin, j->g + begin, j->adagrad);
}

void ck_adagrad_step_f32(size_t n, float *CK_RESTRICT p, float *CK_RESTRICT sum, const float *CK_RESTRICT g,
                         ck_adagrad_scalars s) {
    optim_job job = { .isa = isa_table(), .p = p, .a = sum, .g = g, .adagrad = s };
    ck_parallel_for(n, OPTIM_GRAIN, adagrad_part, &job);
}

static void rmsprop_part(void *ctx, size_t begin, size_t end, size_t part) {
    (void)part;
    const optim_job *j = ctx;
    j->isa->rmsprop(end - begin, j->p + begin, j->a + begin, offset(j->b, begin), offset(j->c, begin), j->g + begin,
                    j->rmsprop);
}

void ck_rmsprop_step_f32(size_t n, float *CK_RESTRICT p, float *CK_RESTRICT square_avg, float *CK_RESTRICT grad_avg,
                         float *CK_RESTRICT momentum_buffer, const float *CK_RESTRICT g, ck_rmsprop_scalars s) {
    optim_job job = { .isa = isa_table(), .p = p, .a = square_avg, .b = grad_avg, .c = momentum_buffer, .g = g,
                      .rmsprop = s };
    ck_parallel_for(n, OPTIM_GRAIN, rmsprop_part, &job);
}

static void adam_part(void *ctx, size_t begin, size_t end, size_t part) {
    (void)part;
    const optim_job *j = ctx;
    j->isa->adam(end - begin, j->p + begin, j->a + begin, j->b + begin, offset(j->c, begin), j->g + begin, j->adam);
}

void ck_adam_step_f32(size_t n, float *CK_RESTRICT p, float *CK_RESTRICT exp_avg, float *CK_RESTRICT exp_avg_sq,
                      float *CK_RESTRICT max_exp_avg_sq, const float *CK_RESTRICT g, ck_adam_scalars s) {
    optim_job job = { .isa = isa_table(), .p = p, .a = exp_avg, .b = exp_avg_sq, .c = max_exp_avg_sq, .g = g,
                      .adam = s };
    ck_parallel_for(n, OPTIM_GRAIN, adam_part, &job);
}
