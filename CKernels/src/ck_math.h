// GradKit CKernels — vectorizable single-precision math. SPDX-License-Identifier: MIT
//
// libm's expf/logf/tanhf are scalar calls that stop the vectorizer. These are
// straight-line arithmetic and selects, so a loop calling them vectorizes for
// any target. Accuracy is checked against libm by the test suite (the Swift
// twins call libm): within 3 ulp over the finite range.
#ifndef CK_MATH_H
#define CK_MATH_H

#include <stdint.h>

static inline uint32_t ck_bits(float f) { uint32_t u; __builtin_memcpy(&u, &f, 4); return u; }
static inline float ck_from_bits(uint32_t u) { float f; __builtin_memcpy(&f, &u, 4); return f; }

/// scale * e^r for |r| <= ln2/2: Taylor polynomial of degree 7 (truncation
/// < 6e-9 relative). `scale` is a power of two and a constant at every call,
/// so the coefficients fold to constants and scaling them is exact.
static inline float ck_exp_taylor(float r, float scale) {
    float p = scale / 5040.0f;
    p = p * r + scale / 720.0f;
    p = p * r + scale / 120.0f;
    p = p * r + scale / 24.0f;
    p = p * r + scale / 6.0f;
    p = p * r + scale * 0.5f;
    p = p * r + scale;
    p = p * r + scale;
    return p;
}

/// e^(hi + lo) for a two-float argument with |lo| <= ulp(hi) (ck_expf below is
/// the case lo = 0); lo is folded into the small remainder r, where it is not lost.
/// Needed where the argument is itself a rounded product (e^(-x^2/2)): e^a
/// turns an absolute error in a into the same relative error in the result.
static inline float ck_expf2(float hi, float lo) {
    float x = hi;
    float xc = x < -150.0f ? -150.0f : (x > 150.0f ? 150.0f : x);
    xc = (x == x) ? xc : 0.0f;
    const float magic = 12582912.0f;
    float n = (xc * 1.44269504088896341f + magic) - magic;
    float r = xc - n * 0.693359375f;
    r = r - n * -2.12194440e-4f;
    r = r + lo;
    float p = ck_exp_taylor(r, 1.0f);
    int32_t ni = (int32_t)n;
    int32_t half = ni / 2;
    float s1 = ck_from_bits((uint32_t)(half + 127) << 23);
    float s2 = ck_from_bits((uint32_t)(ni - half + 127) << 23);
    float result = (p * s1) * s2;
    return (x == x) ? result : x;
}

/// e^x: reduction x = n ln2 + r, |r| <= ln2/2 (Cody-Waite split of ln2), Taylor
/// polynomial of degree 7 (truncation < 6e-9 relative), scaled by 2^n in two
/// halves so results that overflow become inf and tiny ones become subnormal.
static inline float ck_expf(float x) { return ck_expf2(x, 0.0f); }

/// The exact product a*b as hi + lo (Dekker's split; no FMA needed, so every
/// target computes the same bits).
static inline void ck_two_product(float a, float b, float *hi, float *lo) {
    const float split = 4097.0f; // 2^12 + 1
    float p = a * b;
    float ca = split * a, cb = split * b;
    float ah = ca - (ca - a), bh = cb - (cb - b);
    float al = a - ah, bl = b - bh;
    *hi = p;
    *lo = ((ah * bh - p) + ah * bl + al * bh) + al * bl;
}

/// The exact sum a + b as hi + lo (Knuth's two-sum).
static inline void ck_two_sum(float a, float b, float *hi, float *lo) {
    float s = a + b;
    float bb = s - a;
    *hi = s;
    *lo = (a - (s - bb)) + (b - bb);
}

/// ln x. x = 2^k m with m in [sqrt(1/2), sqrt(2)), ln m = 2 atanh(s) with
/// s = (m-1)/(m+1), |s| < 0.172, series to s^11. Subnormals are scaled first.
static inline float ck_logf(float x) {
    int sub = x < 1.17549435e-38f;
    float xs = sub ? x * 8388608.0f : x;
    int32_t kadj = sub ? -23 : 0;
    uint32_t ix = ck_bits(xs) - 0x3f3504f3u;
    int32_t k = ((int32_t)ix >> 23) + kadj;
    float m = ck_from_bits((ix & 0x007fffffu) + 0x3f3504f3u);
    float f = m - 1.0f;
    float s = f / (2.0f + f);
    float z = s * s;
    float p = 1.0f / 11.0f;
    p = p * z + 1.0f / 9.0f;
    p = p * z + 1.0f / 7.0f;
    p = p * z + 1.0f / 5.0f;
    p = p * z + 1.0f / 3.0f;
    float logm = f - s * (f - 2.0f * z * p); // = 2s + 2s z p, written to keep f's bits
    float kf = (float)k;
    float result = kf * 0.693359375f + (logm + kf * -2.12194440e-4f);
    result = (x == 0.0f) ? -__builtin_inff() : result;
    result = (x == __builtin_inff()) ? x : result;
    result = (x < 0.0f || x != x) ? __builtin_nanf("") : result;
    return result;
}

/// e^x - 1 without cancellation: Taylor of degree 10 for |x| < 1, else e^x - 1.
static inline float ck_expm1f(float x) {
    float p = 1.0f / 39916800.0f;
    p = p * x + 1.0f / 3628800.0f;
    p = p * x + 1.0f / 362880.0f;
    p = p * x + 1.0f / 40320.0f;
    p = p * x + 1.0f / 5040.0f;
    p = p * x + 1.0f / 720.0f;
    p = p * x + 1.0f / 120.0f;
    p = p * x + 1.0f / 24.0f;
    p = p * x + 1.0f / 6.0f;
    p = p * x + 0.5f;
    float small = x + x * (x * p);
    float large = ck_expf(x) - 1.0f;
    return __builtin_fabsf(x) < 1.0f ? small : large;
}

/// ln(1 + x), accurate for small x: log(u) * x / (u - 1) with u = 1 + x (Goldberg).
static inline float ck_log1pf(float x) {
    float u = 1.0f + x;
    float d = u - 1.0f;
    float q = d == 0.0f ? 1.0f : x / d;
    float result = ck_logf(u) * q;
    result = (d == 0.0f) ? x : result;
    return (x == __builtin_inff()) ? x : result;
}

/// e^x for x in [-40, 89] (callers clamp; NaN gives NaN): the reduction and
/// polynomial of ck_expf2, with the integer n read from the bits of the
/// rounding sum (no float-to-int conversion) and one scale by 2^(n-1), the
/// polynomial carrying the other factor 2. About half the work of ck_expf,
/// for the maps whose exp is most of their cost (sigmoid, tanh).
static inline float ck_exp_bounded(float x) {
    const float magic = 12582912.0f; // 1.5 * 2^23: t's low bits hold n
    float t = x * 1.44269504088896341f + magic;
    float n = t - magic;
    float r = x - n * 0.693359375f;
    r = r - n * -2.12194440e-4f;
    float p = ck_exp_taylor(r, 2.0f);
    float scale = ck_from_bits((ck_bits(t) - 0x4B400000u + 126u) << 23); // 2^(n-1), n in [-58, 128]
    return p * scale;
}

/// tanh x. |x| < 0.625: x + x^3 P(x^2), P a degree-4 least-squares fit on
/// Chebyshev nodes (Scripts/fit_tanh.py; truncation 0.08 ulp); beyond: 1 - 2 / (1 + e^(2|x|)),
/// 2|x| capped at 20 where tanh rounds to 1. Sign restored; NaN kept.
/// Within 1.4 ulp of the correctly rounded value over all floats (checked
/// exhaustively against double tanh by Scripts/exhaustive_math.c).
static inline float ck_tanhf(float x) {
    float ax = __builtin_fabsf(x);
    float s = ax * ax;
    float p = -0.005704042501747608f;
    p = p * s + 0.020637862384319305f;
    p = p * s - 0.05373915657401085f;
    p = p * s + 0.133314311504364f;
    p = p * s - 0.3333328068256378f;
    float small = ax + ax * (s * p);
    float twice = 2.0f * ax;
    twice = twice < 20.0f ? twice : 20.0f; // NaN becomes 20 here; `small` keeps it
    float large = 1.0f - 2.0f / (1.0f + ck_exp_bounded(twice));
    float t = !(ax >= 0.625f) ? small : large;
    return __builtin_copysignf(t, x);
}

/// 1 / (1 + e^-x): exact limits 0 and 1 at -inf and +inf; within 2.5 ulp
/// where the result is normal (Scripts/exhaustive_math.c checks every float). The
/// exponent is capped at [-40, 89]: beyond, 1 + e^-x is 1 or infinite.
static inline float ck_sigmoidf(float x) {
    float a = -x;
    a = a > -40.0f ? a : -40.0f;
    a = a < 89.0f ? a : 89.0f;
    float result = 1.0f / (1.0f + ck_exp_bounded(a));
    return x == x ? result : x;
}

/// Numerical Recipes' erfcc polynomial: erfc z = t e^(-z^2 + P(t)) for z >= 0,
/// t = 1 / (1 + z/2), fractional error below 1.2e-7.
static inline float ck_erfc_poly(float t) {
    float p = 0.17087277f;
    p = p * t - 0.82215223f;
    p = p * t + 1.48851587f;
    p = p * t - 1.13520398f;
    p = p * t + 0.27886807f;
    p = p * t - 0.18628806f;
    p = p * t + 0.09678418f;
    p = p * t + 0.37409196f;
    p = p * t + 1.00002368f;
    p = p * t - 1.26551223f;
    return p;
}

/// Phi(x) = erfc(-x / sqrt 2) / 2, the standard normal CDF. The exponent
/// -x^2/2 is formed exactly (two-product) and passed to ck_expf2, so the far
/// left tail keeps its relative accuracy.
static inline float ck_normal_cdf(float x) {
    float z = __builtin_fabsf(x) * 0.70710678118654752f;
    float t = 1.0f / (1.0f + 0.5f * z);
    float sq_hi, sq_lo, arg_hi, arg_lo;
    ck_two_product(x, x, &sq_hi, &sq_lo);
    ck_two_sum(ck_erfc_poly(t), -0.5f * sq_hi, &arg_hi, &arg_lo);
    float tail = 0.5f * t * ck_expf2(arg_hi, arg_lo - 0.5f * sq_lo); // Phi(-|x|)
    tail = z > 14.0f ? 0.0f : tail;
    float far = x >= 0.0f ? 1.0f - tail : tail;
    // |x| < 1: the series 1/2 + x/sqrt(2 pi) sum_n (-w)^n / (n! (2n+1)), w = x^2/2,
    // nine terms (truncation < 3e-10); the fit above is only 1.2e-7 accurate.
    float w = 0.5f * x * x;
    float sum = 1.0f / 685440.0f;
    sum = sum * -w + 1.0f / 75600.0f;
    sum = sum * -w + 1.0f / 9360.0f;
    sum = sum * -w + 1.0f / 1320.0f;
    sum = sum * -w + 1.0f / 216.0f;
    sum = sum * -w + 1.0f / 42.0f;
    sum = sum * -w + 1.0f / 10.0f;
    sum = sum * -w + 1.0f / 3.0f;
    sum = sum * -w + 1.0f;
    float near = 0.5f + x * 0.39894228040143268f * sum;
    return __builtin_fabsf(x) < 1.0f ? near : far;
}

/// phi(x) = e^(-x^2/2) / sqrt(2 pi), with the exponent formed exactly.
static inline float ck_normal_pdf(float x) {
    float sq_hi, sq_lo;
    ck_two_product(x, x, &sq_hi, &sq_lo);
    float pdf = 0.39894228040143268f * ck_expf2(-0.5f * sq_hi, -0.5f * sq_lo);
    return __builtin_fabsf(x) > 20.0f ? 0.0f : pdf; // also keeps +-inf from making NaN
}

#endif
