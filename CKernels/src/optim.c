// GradKit CKernels — fused optimizer steps. SPDX-License-Identifier: MIT
//
// Branch-free where the options are scalars (a select per element is free in
// a memory-bound loop); a separate loop only where an option adds an array.
#include "ck_internal.h"
#include "ck_optim.h"

#include <math.h>
#include <stdatomic.h>
#include <string.h>
#include <time.h>

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

CK_TARGET_AVX512 static void sgd_avx512(size_t n, float *p, float *b, const float *g, ck_sgd_scalars s);
CK_TARGET_AVX512 static void adagrad_avx512(size_t n, float *p, float *sum, const float *g, ck_adagrad_scalars s) { adagrad_body(n, p, sum, g, s); }
CK_TARGET_AVX512 static void rmsprop_avx512(size_t n, float *p, float *sq, float *ga, float *b, const float *g, ck_rmsprop_scalars s) { rmsprop_dispatch(n, p, sq, ga, b, g, s); }
CK_TARGET_AVX512 static void adam_avx512(size_t n, float *p, float *m, float *v, float *vmax, const float *g, ck_adam_scalars s);
static const optim_isa avx512_isa = { sgd_avx512, adagrad_avx512, rmsprop_avx512, adam_avx512 };

// ---------------------------------------------------------------- Adam and SGD near and below Float's normal range
//
// Intel cores take a microcode assist (about 100 ns on Emerald Rapids) for each multiplication,
// division, square root or fused multiply-add with a subnormal operand or result, lanes that hold
// no subnormal included: once the moments of dying units decay through the range below 2^-126 (at
// beta1 per step), Adam's vector loop took several times as long. Additions, comparisons and the
// conversions between Float and double handle subnormals without one. So the AVX-512 kernel looks at
// each 16 elements first (integer compares of the bits), and computes those where the gradient or a
// moment is small enough that some operation of the step may meet a subnormal in double,
// where every Float value is a normal number: each Float operation of adam_body, in its order, is the
// double operation rounded to Float by a conversion. That is the Float result: the double result of
// +, -, *, / and sqrt on Float values, rounded to Float, is the correctly rounded Float result (53 >=
// 2 * 24 + 2 bits), subnormal results included. The look only picks the speed: either way every
// bit equals the plain loop's, and the Swift twin's (SGD with momentum likewise: its buffer decays at
// the momentum per step); a subnormal it does not foresee (a subnormal
// parameter, or a small moment over a huge denominator) only costs its assist. Whether the CPU has the
// slow path is measured once (ck_optim_subnormal_path); where it has not, under flushing, under a
// rounding mode other than to nearest and with a floating-point exception unmasked (MXCSR), the
// plain loop runs.

// The double operation's result rounded to Float, as a double.
CK_INLINE CK_TARGET_AVX512 __m512d exact_round(__m512d x) { return _mm512_cvtps_pd(_mm512_cvtpd_ps(x)); }

#define EXACT_MUL(a, b) exact_round(_mm512_mul_pd((a), (b)))
#define EXACT_ADD(a, b) exact_round(_mm512_add_pd((a), (b)))
#define EXACT_SUB(a, b) exact_round(_mm512_sub_pd((a), (b)))
#define EXACT_DIV(a, b) exact_round(_mm512_div_pd((a), (b)))
#define EXACT_SCALAR(x) _mm512_set1_pd((double)(x))

// MXCSR in its default state: no flushing, rounding to nearest, every exception masked. The paths in
// double reproduce Float arithmetic in this mode only.
#define MXCSR_DEFAULT 0x1F80u
CK_INLINE int fp_mode_is_default(void) { return (_mm_getcsr() & 0xFFC0u) == MXCSR_DEFAULT; }

// 16 floats from x + i: all of them (`full`, a constant where inlined) or the `lanes`, the rest zero.
CK_INLINE CK_TARGET_AVX512 __m512 load16(const float *x, size_t i, __mmask16 lanes, int full) {
    return full ? _mm512_loadu_ps(x + i) : _mm512_maskz_loadu_ps(lanes, x + i);
}

CK_INLINE CK_TARGET_AVX512 void store16(float *x, size_t i, __mmask16 lanes, int full, __m512 value) {
    if (full) _mm512_storeu_ps(x + i, value);
    else _mm512_mask_storeu_ps(x + i, lanes, value);
}

// Half h (0: lanes 0-7, 1: lanes 8-15) of x in double, and two such halves back as Float.
CK_INLINE CK_TARGET_AVX512 __m512d exact_half(__m512 x, int h) {
    return _mm512_cvtps_pd(h ? _mm512_extractf32x8_ps(x, 1) : _mm512_castps512_ps256(x));
}

CK_INLINE CK_TARGET_AVX512 __m512 exact_join(__m512d low, __m512d high) {
    return _mm512_insertf32x8(_mm512_castps256_ps512(_mm512_cvtpd_ps(low)), _mm512_cvtpd_ps(high), 1);
}

// adam_body's operations, in its order, on 8 elements held in double.
CK_INLINE CK_TARGET_AVX512 void adam_exact8(__m512d *p, __m512d *m, __m512d *v, __m512d *vmax, __m512d g,
                                             ck_adam_scalars s) {
    __m512d pi = EXACT_MUL(*p, EXACT_SCALAR(s.decay_factor));
    __m512d d = EXACT_MUL(g, EXACT_SCALAR(s.gradient_scale));
    if (s.weight_decay != 0.0f) d = EXACT_ADD(d, EXACT_MUL(EXACT_SCALAR(s.weight_decay), pi));
    __m512d difference = EXACT_SUB(d, *m), mi;
    float weight = s.one_minus_beta1;
    if (weight < 0.5f) mi = EXACT_ADD(*m, EXACT_MUL(EXACT_SCALAR(weight), difference));
    else mi = EXACT_SUB(d, EXACT_MUL(difference, EXACT_SCALAR(1.0f - weight)));
    __m512d vi = EXACT_ADD(EXACT_MUL(*v, EXACT_SCALAR(s.beta2)), EXACT_MUL(EXACT_MUL(EXACT_SCALAR(s.one_minus_beta2), d), d));
    __m512d vd = vi;
    if (s.amsgrad) {
        __mmask8 take = _mm512_cmp_pd_mask(vi, *vmax, _CMP_GT_OQ) | _mm512_cmp_pd_mask(vi, vi, _CMP_UNORD_Q);
        vd = _mm512_mask_blend_pd(take, *vmax, vi);
        *vmax = vd;
    }
    __m512d root = exact_round(_mm512_sqrt_pd(vd));
    __m512d denom = EXACT_ADD(EXACT_DIV(root, EXACT_SCALAR(s.bias_correction2_sqrt)), EXACT_SCALAR(s.epsilon));
    *p = EXACT_ADD(pi, EXACT_DIV(EXACT_MUL(EXACT_SCALAR(-s.step_size), mi), denom));
    *m = mi;
    *v = vi;
}

// Lanes whose magnitude is nonzero and below the threshold's (both as bits).
CK_INLINE CK_TARGET_AVX512 __mmask16 below(__m512 x, __m512i threshold) {
    __m512i magnitude = _mm512_and_si512(_mm512_castps_si512(x), _mm512_set1_epi32(0x7fffffff));
    return _mm512_mask_cmplt_epu32_mask(_mm512_test_epi32_mask(magnitude, magnitude), magnitude, threshold);
}

static inline __m512i CK_TARGET_AVX512 below_bits(double x) {
    float f = x < 0x1p127 ? (float)x : 0x1p127f;
    int32_t bits;
    memcpy(&bits, &f, sizeof bits);
    return _mm512_set1_epi32(bits);
}

static uint64_t optim_now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

// Nanoseconds of `count` dependent multiplications by one of a vector holding `x` (volatile: not folded).
CK_TARGET_AVX512 static uint64_t multiply_chain_ns(float x, int count) {
    volatile float one = 1.0f;
    __m512 value = _mm512_set1_ps(x), factor = _mm512_set1_ps(one);
    uint64_t start = optim_now_ns();
    for (int i = 0; i < count; ++i) {
        value = _mm512_mul_ps(value, factor);
        __asm__ volatile("" : "+v"(value));
    }
    uint64_t elapsed = optim_now_ns() - start;
    return elapsed;
}

// Whether this core takes a slow path for subnormal operands: 64 dependent multiplications of a
// subnormal against 64 of a normal number, best of 5 each (about 20 µs where it does, once), in the
// default floating-point mode (no flushing, exceptions masked, rounding to nearest).
CK_TARGET_AVX512 static int measure_subnormal_assist(void) {
    unsigned mode = _mm_getcsr();
    _mm_setcsr(MXCSR_DEFAULT);
    uint64_t subnormal = UINT64_MAX, normal = UINT64_MAX;
    for (int round = 0; round < 5; ++round) {
        uint64_t a = multiply_chain_ns(1e-40f, 64), b = multiply_chain_ns(1.0f, 64);
        if (a < subnormal) subnormal = a;
        if (b < normal) normal = b;
    }
    _mm_setcsr(mode);
    return subnormal > 4 * normal + 200;
}

// The elements i ..< i + 16 (only the `lanes` of them) of adam_body with AVX-512 intrinsics, the same
// operations in the same order, or with adam_exact8 if the gradient or a moment is below its
// threshold (small_g, small_m, small_v, as bits).
CK_INLINE CK_TARGET_AVX512 void adam16(size_t i, __mmask16 lanes, int full, float *p, float *m, float *v, float *vmax,
                                      const float *g, ck_adam_scalars s, const __m512i small[3]) {
    __m512 pv = load16(p, i, lanes, full), mv = load16(m, i, lanes, full), vv = load16(v, i, lanes, full);
    __m512 gv = load16(g, i, lanes, full), wv = s.amsgrad ? load16(vmax, i, lanes, full) : _mm512_setzero_ps();
    if (below(gv, small[0]) | below(mv, small[1]) | below(vv, small[2])) {
        __m512d pd[2], md[2], vd[2], wd[2];
        for (int h = 0; h < 2; ++h) {
            pd[h] = exact_half(pv, h), md[h] = exact_half(mv, h), vd[h] = exact_half(vv, h), wd[h] = exact_half(wv, h);
            adam_exact8(&pd[h], &md[h], &vd[h], &wd[h], exact_half(gv, h), s);
        }
        pv = exact_join(pd[0], pd[1]), mv = exact_join(md[0], md[1]), vv = exact_join(vd[0], vd[1]);
        wv = exact_join(wd[0], wd[1]);
    } else {
        __m512 pi = _mm512_mul_ps(pv, _mm512_set1_ps(s.decay_factor));
        __m512 d = _mm512_mul_ps(gv, _mm512_set1_ps(s.gradient_scale));
        if (s.weight_decay != 0.0f) d = _mm512_add_ps(d, _mm512_mul_ps(_mm512_set1_ps(s.weight_decay), pi));
        __m512 difference = _mm512_sub_ps(d, mv);
        __m512 mi = s.one_minus_beta1 < 0.5f
            ? _mm512_add_ps(mv, _mm512_mul_ps(_mm512_set1_ps(s.one_minus_beta1), difference))
            : _mm512_sub_ps(d, _mm512_mul_ps(difference, _mm512_set1_ps(1.0f - s.one_minus_beta1)));
        __m512 vi = _mm512_add_ps(_mm512_mul_ps(vv, _mm512_set1_ps(s.beta2)),
                                  _mm512_mul_ps(_mm512_mul_ps(_mm512_set1_ps(s.one_minus_beta2), d), d));
        __m512 vd = vi;
        if (s.amsgrad) {
            __mmask16 take = _mm512_cmp_ps_mask(vi, wv, _CMP_GT_OQ) | _mm512_cmp_ps_mask(vi, vi, _CMP_UNORD_Q);
            wv = vd = _mm512_mask_blend_ps(take, wv, vi);
        }
        __m512 denom = _mm512_add_ps(_mm512_div_ps(_mm512_sqrt_ps(vd), _mm512_set1_ps(s.bias_correction2_sqrt)),
                                     _mm512_set1_ps(s.epsilon));
        pv = _mm512_add_ps(pi, _mm512_div_ps(_mm512_mul_ps(_mm512_set1_ps(-s.step_size), mi), denom));
        mv = mi;
        vv = vi;
    }
    store16(p, i, lanes, full, pv);
    store16(m, i, lanes, full, mv);
    store16(v, i, lanes, full, vv);
    if (s.amsgrad) store16(vmax, i, lanes, full, wv);
}

CK_TARGET_AVX512 static void adam_avx512(size_t n, float *p, float *m, float *v, float *vmax, const float *g,
                                         ck_adam_scalars s) {
    if (!fp_mode_is_default() || !ck_optim_subnormal_path()) {
        adam_dispatch(n, p, m, v, vmax, g, s);
        return;
    }
    // Below these magnitudes an operation of the step may meet a subnormal: the first moment times
    // (1 - beta1) or the step size, the second times beta2, the gradient times the gradient scale,
    // (1 - beta2) d and (1 - beta2) d d. Twice as high, for the next step's decay.
    double weight = s.one_minus_beta1 < 0.5f ? s.one_minus_beta1 : 1.0 - s.one_minus_beta1;
    double m_factor = fmin(fmin(weight, s.step_size), 1.0), scale = fabs((double)s.gradient_scale);
    double d_small = fmax(fmax(0x1p-126, 0x1p-126 / s.one_minus_beta2), sqrt(0x1p-126 / s.one_minus_beta2));
    const __m512i small[3] = {
        below_bits(scale > 0 && s.one_minus_beta2 > 0 ? 2 * d_small / fmin(scale, 1.0) : 0x1p-100),
        below_bits(m_factor > 0 ? 0x1p-125 / m_factor : 0x1p-100),
        below_bits(s.beta2 > 0 ? 0x1p-125 / s.beta2 : 0x1p-100),
    };
    size_t i = 0;
    for (; i + 16 <= n; i += 16) adam16(i, 0xffff, 1, p, m, v, vmax, g, s, small);
    if (i < n) adam16(i, (__mmask16)((1u << (n - i)) - 1u), 0, p, m, v, vmax, g, s, small);
}

// sgd_body's momentum step (not the first), in its order, on 8 elements held in double.
CK_INLINE CK_TARGET_AVX512 void sgd_exact8(__m512d *p, __m512d *b, __m512d g, ck_sgd_scalars s) {
    __m512d d = EXACT_MUL(g, EXACT_SCALAR(s.gradient_scale));
    if (s.weight_decay != 0.0f) d = EXACT_ADD(d, EXACT_MUL(EXACT_SCALAR(s.weight_decay), *p));
    __m512d buffer = EXACT_ADD(EXACT_MUL(*b, EXACT_SCALAR(s.momentum)), EXACT_MUL(EXACT_SCALAR(s.one_minus_dampening), d));
    __m512d u = s.nesterov ? EXACT_ADD(d, EXACT_MUL(EXACT_SCALAR(s.momentum), buffer)) : buffer;
    *p = EXACT_ADD(*p, EXACT_MUL(EXACT_SCALAR(-s.learning_rate), u));
    *b = buffer;
}

// The elements i ..< i + 16 (the `lanes` of them) of sgd_body's momentum step with AVX-512
// intrinsics, or with sgd_exact8 if the gradient or the momentum buffer is small (as adam16).
CK_INLINE CK_TARGET_AVX512 void sgd16(size_t i, __mmask16 lanes, int full, float *p, float *b, const float *g,
                                     ck_sgd_scalars s, __m512i small_g, __m512i small_b) {
    __m512 pv = load16(p, i, lanes, full), bv = load16(b, i, lanes, full), gv = load16(g, i, lanes, full);
    if (below(gv, small_g) | below(bv, small_b)) {
        __m512d pd[2], bd[2];
        for (int h = 0; h < 2; ++h) {
            pd[h] = exact_half(pv, h), bd[h] = exact_half(bv, h);
            sgd_exact8(&pd[h], &bd[h], exact_half(gv, h), s);
        }
        pv = exact_join(pd[0], pd[1]), bv = exact_join(bd[0], bd[1]);
    } else {
        __m512 momentum = _mm512_set1_ps(s.momentum);
        __m512 d = _mm512_mul_ps(gv, _mm512_set1_ps(s.gradient_scale));
        if (s.weight_decay != 0.0f) d = _mm512_add_ps(d, _mm512_mul_ps(_mm512_set1_ps(s.weight_decay), pv));
        __m512 buffer = _mm512_add_ps(_mm512_mul_ps(bv, momentum), _mm512_mul_ps(_mm512_set1_ps(s.one_minus_dampening), d));
        __m512 u = s.nesterov ? _mm512_add_ps(d, _mm512_mul_ps(momentum, buffer)) : buffer;
        pv = _mm512_add_ps(pv, _mm512_mul_ps(_mm512_set1_ps(-s.learning_rate), u));
        bv = buffer;
    }
    store16(p, i, lanes, full, pv);
    store16(b, i, lanes, full, bv);
}

CK_TARGET_AVX512 static void sgd_avx512(size_t n, float *p, float *b, const float *g, ck_sgd_scalars s) {
    if (s.momentum == 0.0f || s.first || !fp_mode_is_default() || !ck_optim_subnormal_path()) {
        sgd_dispatch(n, p, b, g, s);
        return;
    }
    // Below these magnitudes an operation of the step may meet a subnormal: the buffer times the
    // momentum or the learning rate, the gradient times the gradient scale and then those factors.
    double factor = fmin(fmin(fabs((double)s.momentum), fabs((double)s.learning_rate)), 1.0);
    double d_factor = fmin(factor, fabs((double)s.one_minus_dampening)) * fabs((double)s.gradient_scale);
    __m512i small_b = below_bits(factor > 0 ? 0x1p-125 / factor : 0x1p-100);
    __m512i small_g = below_bits(d_factor > 0 ? 0x1p-125 / fmin(d_factor, 1.0) : 0x1p-100);
    size_t i = 0;
    for (; i + 16 <= n; i += 16) sgd16(i, 0xffff, 1, p, b, g, s, small_g, small_b);
    if (i < n) sgd16(i, (__mmask16)((1u << (n - i)) - 1u), 0, p, b, g, s, small_g, small_b);
}
#endif

static _Atomic int optim_subnormal_mode = -1;     // as set: -1 measure, 0 plain loop, 1 in double
static _Atomic int optim_subnormal_measured = -1; // the measurement, once taken

void ck_optim_set_subnormal_path(int mode) { optim_subnormal_mode = mode < 0 ? -1 : mode > 0; }

int ck_optim_subnormal_path(void) {
#if CK_HAVE_X86
    if (ck_isa_active() < CK_ISA_AVX512) return 0;
    int mode = optim_subnormal_mode;
    if (mode >= 0) return mode;
    int measured = optim_subnormal_measured;
    if (measured < 0) { // threads measuring at once keep the first result stored
        int expected = -1;
        measured = measure_subnormal_assist();
        if (!atomic_compare_exchange_strong(&optim_subnormal_measured, &expected, measured)) measured = expected;
    }
    return measured;
#else
    return 0;
#endif
}

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
