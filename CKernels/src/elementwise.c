// GradKit CKernels — elementwise maps. SPDX-License-Identifier: MIT
//
// Each op is a tiny scalar function. An always_inline loop takes it as a
// constant function pointer, so clang inlines it and vectorizes the loop; the
// op switch sits outside the loops. The same body is compiled for AVX-512,
// AVX2+FMA and portable C, and picked at run time.
#include "ck_elementwise.h"
#include "ck_internal.h"
#include "ck_math.h"

#include <math.h>
#include <string.h>

// ---------------------------------------------------------------- unary forward

typedef float (*unary_scalar)(float x, float a, float b);

CK_INLINE float u_negate(float x, float a, float b) { (void)a; (void)b; return -x; }
CK_INLINE float u_exp(float x, float a, float b) { (void)a; (void)b; return ck_expf(x); }
CK_INLINE float u_log(float x, float a, float b) { (void)a; (void)b; return ck_logf(x); }
CK_INLINE float u_sqrt(float x, float a, float b) { (void)a; (void)b; return __builtin_sqrtf(x); }
CK_INLINE float u_abs(float x, float a, float b) { (void)a; (void)b; return __builtin_fabsf(x); }
CK_INLINE float u_square(float x, float a, float b) { (void)a; (void)b; return x * x; }
CK_INLINE float u_sigmoid(float x, float a, float b) { (void)a; (void)b; return ck_sigmoidf(x); }
CK_INLINE float u_tanh(float x, float a, float b) { (void)a; (void)b; return ck_tanhf(x); }
// Written as x <= 0 ? 0 : x so that NaN (for which every comparison is false)
// passes through, as in PyTorch.
CK_INLINE float u_relu(float x, float a, float b) { (void)a; (void)b; return x <= 0.0f ? 0.0f : x; }
CK_INLINE float u_leaky_relu(float x, float a, float b) { (void)b; return x > 0.0f ? x : a * x; }
CK_INLINE float u_elu(float x, float a, float b) { (void)b; return x > 0.0f ? x : a * ck_expm1f(x); }
CK_INLINE float u_gelu(float x, float a, float b) {
    (void)a; (void)b;
    return x * ck_normal_cdf(x);
}
// 0.5 x (1 + tanh u) = x sigmoid(2u): the same function without the
// cancellation of 1 + tanh u for negative u.
CK_INLINE float u_gelu_tanh(float x, float a, float b) {
    (void)a; (void)b;
    float inner = 0.79788456080286536f * (x + 0.044715f * x * x * x);
    return x * ck_sigmoidf(2.0f * inner);
}
CK_INLINE float u_softplus(float x, float a, float b) {
    float z = a * x;
    return z > b ? x : ck_log1pf(ck_expf(z)) / a;
}
CK_INLINE float u_pow(float x, float a, float b) { (void)b; return powf(x, a); }
CK_INLINE float u_pow2(float x, float a, float b) { (void)a; (void)b; return x * x; }
CK_INLINE float u_clamp(float x, float a, float b) {
    float y = x < a ? a : x; // NaN stays NaN, as torch.clamp
    return y > b ? b : y;
}
CK_INLINE float u_add(float x, float a, float b) { (void)b; return x + a; }
CK_INLINE float u_mul(float x, float a, float b) { (void)b; return x * a; }
CK_INLINE float u_div(float x, float a, float b) { (void)b; return x / a; }
CK_INLINE float u_rsub(float x, float a, float b) { (void)b; return a - x; }
CK_INLINE float u_rdiv(float x, float a, float b) { (void)b; return a / x; }

// Every loop below writes its output y in three runs when `stream` is set:
// normal stores up to y's first 64-byte boundary, whole lines with
// non-temporal stores (ck_stream_line), normal stores for the tail. Without
// `stream` the first run is all of y. The values are the same either way.
CK_INLINE void unary_loop(unary_scalar f, size_t n, float *y, const float *x, float a, float b, int stream) {
    if (y == x) {
        // In place (gradient clipping scales and clamps gradients so): one
        // pointer, or clang's overlap check between y and x sends every
        // in-place call to its scalar loop (8x slower).
        for (size_t i = 0; i < n; ++i) y[i] = f(y[i], a, b);
        return;
    }
    size_t i = stream ? ck_stream_head(y, n) : n;
    for (size_t k = 0; k < i; ++k) y[k] = f(x[k], a, b);
    for (; i + 16 <= n; i += 16) {
        float line[16];
        for (size_t k = 0; k < 16; ++k) line[k] = f(x[i + k], a, b);
        ck_stream_line(y + i, line);
    }
    for (; i < n; ++i) y[i] = f(x[i], a, b);
}

CK_INLINE void unary_body(ck_unary_op op, size_t n, float *y, const float *x, ck_unary_params p, int stream) {
    switch (op) {
    case CK_UNARY_OP_NEGATE: unary_loop(u_negate, n, y, x, p.a, p.b, stream); break;
    case CK_UNARY_OP_EXP: unary_loop(u_exp, n, y, x, p.a, p.b, stream); break;
    case CK_UNARY_OP_LOG: unary_loop(u_log, n, y, x, p.a, p.b, stream); break;
    case CK_UNARY_OP_SQRT: unary_loop(u_sqrt, n, y, x, p.a, p.b, stream); break;
    case CK_UNARY_OP_ABS: unary_loop(u_abs, n, y, x, p.a, p.b, stream); break;
    case CK_UNARY_OP_SQUARE: unary_loop(u_square, n, y, x, p.a, p.b, stream); break;
    case CK_UNARY_OP_SIGMOID: unary_loop(u_sigmoid, n, y, x, p.a, p.b, stream); break;
    case CK_UNARY_OP_TANH: unary_loop(u_tanh, n, y, x, p.a, p.b, stream); break;
    case CK_UNARY_OP_RELU: unary_loop(u_relu, n, y, x, p.a, p.b, stream); break;
    case CK_UNARY_OP_LEAKY_RELU: unary_loop(u_leaky_relu, n, y, x, p.a, p.b, stream); break;
    case CK_UNARY_OP_ELU: unary_loop(u_elu, n, y, x, p.a, p.b, stream); break;
    case CK_UNARY_OP_GELU: unary_loop(u_gelu, n, y, x, p.a, p.b, stream); break;
    case CK_UNARY_OP_GELU_TANH: unary_loop(u_gelu_tanh, n, y, x, p.a, p.b, stream); break;
    case CK_UNARY_OP_SOFTPLUS: unary_loop(u_softplus, n, y, x, p.a, p.b, stream); break;
    case CK_UNARY_OP_POW:
        if (p.a == 2.0f) unary_loop(u_pow2, n, y, x, p.a, p.b, stream);
        else unary_loop(u_pow, n, y, x, p.a, p.b, stream);
        break;
    case CK_UNARY_OP_CLAMP: unary_loop(u_clamp, n, y, x, p.a, p.b, stream); break;
    case CK_UNARY_OP_ADD_SCALAR: unary_loop(u_add, n, y, x, p.a, p.b, stream); break;
    case CK_UNARY_OP_MUL_SCALAR: unary_loop(u_mul, n, y, x, p.a, p.b, stream); break;
    case CK_UNARY_OP_DIV_SCALAR: unary_loop(u_div, n, y, x, p.a, p.b, stream); break;
    case CK_UNARY_OP_RSUB_SCALAR: unary_loop(u_rsub, n, y, x, p.a, p.b, stream); break;
    case CK_UNARY_OP_RDIV_SCALAR: unary_loop(u_rdiv, n, y, x, p.a, p.b, stream); break;
    }
}

// ---------------------------------------------------------------- unary backward

typedef float (*unary_grad)(float dy, float x, float y, float a, float b);

CK_INLINE float d_negate(float dy, float x, float y, float a, float b) { (void)x; (void)y; (void)a; (void)b; return -dy; }
CK_INLINE float d_exp(float dy, float x, float y, float a, float b) { (void)x; (void)a; (void)b; return dy * y; }
CK_INLINE float d_log(float dy, float x, float y, float a, float b) { (void)y; (void)a; (void)b; return dy / x; }
CK_INLINE float d_sqrt(float dy, float x, float y, float a, float b) { (void)x; (void)a; (void)b; return dy / (2.0f * y); }
CK_INLINE float d_abs(float dy, float x, float y, float a, float b) {
    (void)y; (void)a; (void)b;
    return x > 0.0f ? dy : (x < 0.0f ? -dy : 0.0f * dy);
}
CK_INLINE float d_square(float dy, float x, float y, float a, float b) { (void)y; (void)a; (void)b; return dy * 2.0f * x; }
CK_INLINE float d_sigmoid(float dy, float x, float y, float a, float b) { (void)x; (void)a; (void)b; return dy * y * (1.0f - y); }
CK_INLINE float d_tanh(float dy, float x, float y, float a, float b) { (void)x; (void)a; (void)b; return dy * (1.0f - y * y); }
CK_INLINE float d_relu(float dy, float x, float y, float a, float b) { (void)x; (void)a; (void)b; return y > 0.0f ? dy : 0.0f; }
CK_INLINE float d_leaky_relu(float dy, float x, float y, float a, float b) { (void)y; (void)b; return x > 0.0f ? dy : dy * a; }
CK_INLINE float d_elu(float dy, float x, float y, float a, float b) { (void)y; (void)b; return x > 0.0f ? dy : dy * a * ck_expf(x); }
CK_INLINE float d_gelu(float dy, float x, float y, float a, float b) {
    (void)y; (void)a; (void)b;
    return dy * (ck_normal_cdf(x) + x * ck_normal_pdf(x));
}
CK_INLINE float d_gelu_tanh(float dy, float x, float y, float a, float b) {
    (void)y; (void)a; (void)b;
    const float k = 0.79788456080286536f, c = 0.044715f;
    // With s = sigmoid(2u): 1 + tanh u = 2s and 1 - tanh^2 u = 4s(1 - s).
    float s = ck_sigmoidf(2.0f * k * (x + c * x * x * x));
    return dy * (s + 2.0f * x * s * (1.0f - s) * k * (1.0f + 3.0f * c * x * x));
}
CK_INLINE float d_softplus(float dy, float x, float y, float a, float b) {
    (void)y;
    float z = a * x;
    return z > b ? dy : dy * ck_sigmoidf(z);
}
CK_INLINE float d_pow(float dy, float x, float y, float a, float b) {
    (void)y; (void)b;
    return a == 0.0f ? 0.0f : dy * a * powf(x, a - 1.0f);
}
CK_INLINE float d_pow2(float dy, float x, float y, float a, float b) { (void)y; (void)a; (void)b; return dy * 2.0f * x; }
CK_INLINE float d_clamp(float dy, float x, float y, float a, float b) { (void)y; return (x >= a && x <= b) ? dy : 0.0f; }
CK_INLINE float d_identity(float dy, float x, float y, float a, float b) { (void)x; (void)y; (void)a; (void)b; return dy; }
CK_INLINE float d_mul(float dy, float x, float y, float a, float b) { (void)x; (void)y; (void)b; return dy * a; }
CK_INLINE float d_div(float dy, float x, float y, float a, float b) { (void)x; (void)y; (void)b; return dy / a; }
CK_INLINE float d_rdiv(float dy, float x, float y, float a, float b) { (void)a; (void)b; return -(dy * y) / x; }

CK_INLINE void unary_grad_loop(unary_grad f, size_t n, float *dx, const float *dy, const float *x,
                               const float *y, float a, float b, int stream) {
    // Absent operands are never read by the ops that leave them NULL; point
    // them at dy so the loop has one shape.
    const float *xs = x ? x : dy, *ys = y ? y : dy;
    size_t i = stream ? ck_stream_head(dx, n) : n;
    for (size_t k = 0; k < i; ++k) dx[k] = f(dy[k], xs[k], ys[k], a, b);
    for (; i + 16 <= n; i += 16) {
        // dy's line is copied first, behind a compiler barrier: otherwise clang
        // turns relu's `y > 0 ? dy : 0` into a masked load of dy from memory,
        // which streams 7% slower here (and up to 30% in this VM's fast state).
        float g[16], line[16];
        __builtin_memcpy(g, dy + i, sizeof g);
        __asm__ volatile("" : : "r"(g) : "memory");
        for (size_t k = 0; k < 16; ++k) line[k] = f(g[k], xs[i + k], ys[i + k], a, b);
        ck_stream_line(dx + i, line);
    }
    for (; i < n; ++i) dx[i] = f(dy[i], xs[i], ys[i], a, b);
}

CK_INLINE void unary_backward_body(ck_unary_op op, size_t n, float *dx, const float *dy, const float *x,
                                   const float *y, ck_unary_params p, int stream) {
    switch (op) {
    case CK_UNARY_OP_NEGATE: unary_grad_loop(d_negate, n, dx, dy, x, y, p.a, p.b, stream); break;
    case CK_UNARY_OP_EXP: unary_grad_loop(d_exp, n, dx, dy, x, y, p.a, p.b, stream); break;
    case CK_UNARY_OP_LOG: unary_grad_loop(d_log, n, dx, dy, x, y, p.a, p.b, stream); break;
    case CK_UNARY_OP_SQRT: unary_grad_loop(d_sqrt, n, dx, dy, x, y, p.a, p.b, stream); break;
    case CK_UNARY_OP_ABS: unary_grad_loop(d_abs, n, dx, dy, x, y, p.a, p.b, stream); break;
    case CK_UNARY_OP_SQUARE: unary_grad_loop(d_square, n, dx, dy, x, y, p.a, p.b, stream); break;
    case CK_UNARY_OP_SIGMOID: unary_grad_loop(d_sigmoid, n, dx, dy, x, y, p.a, p.b, stream); break;
    case CK_UNARY_OP_TANH: unary_grad_loop(d_tanh, n, dx, dy, x, y, p.a, p.b, stream); break;
    case CK_UNARY_OP_RELU: unary_grad_loop(d_relu, n, dx, dy, x, y, p.a, p.b, stream); break;
    case CK_UNARY_OP_LEAKY_RELU: unary_grad_loop(d_leaky_relu, n, dx, dy, x, y, p.a, p.b, stream); break;
    case CK_UNARY_OP_ELU: unary_grad_loop(d_elu, n, dx, dy, x, y, p.a, p.b, stream); break;
    case CK_UNARY_OP_GELU: unary_grad_loop(d_gelu, n, dx, dy, x, y, p.a, p.b, stream); break;
    case CK_UNARY_OP_GELU_TANH: unary_grad_loop(d_gelu_tanh, n, dx, dy, x, y, p.a, p.b, stream); break;
    case CK_UNARY_OP_SOFTPLUS: unary_grad_loop(d_softplus, n, dx, dy, x, y, p.a, p.b, stream); break;
    case CK_UNARY_OP_POW:
        if (p.a == 2.0f) unary_grad_loop(d_pow2, n, dx, dy, x, y, p.a, p.b, stream);
        else unary_grad_loop(d_pow, n, dx, dy, x, y, p.a, p.b, stream);
        break;
    case CK_UNARY_OP_CLAMP: unary_grad_loop(d_clamp, n, dx, dy, x, y, p.a, p.b, stream); break;
    case CK_UNARY_OP_ADD_SCALAR: unary_grad_loop(d_identity, n, dx, dy, x, y, p.a, p.b, stream); break;
    case CK_UNARY_OP_MUL_SCALAR: unary_grad_loop(d_mul, n, dx, dy, x, y, p.a, p.b, stream); break;
    case CK_UNARY_OP_DIV_SCALAR: unary_grad_loop(d_div, n, dx, dy, x, y, p.a, p.b, stream); break;
    case CK_UNARY_OP_RSUB_SCALAR: unary_grad_loop(d_negate, n, dx, dy, x, y, p.a, p.b, stream); break;
    case CK_UNARY_OP_RDIV_SCALAR: unary_grad_loop(d_rdiv, n, dx, dy, x, y, p.a, p.b, stream); break;
    }
}

// ---------------------------------------------------------------- binary rows

typedef float (*binary_scalar)(float a, float b);

CK_INLINE float b_add(float a, float b) { return a + b; }
CK_INLINE float b_sub(float a, float b) { return a - b; }
CK_INLINE float b_mul(float a, float b) { return a * b; }
CK_INLINE float b_div(float a, float b) { return a / b; }
CK_INLINE float b_maximum(float a, float b) { return (a > b || a != a) ? a : b; }
CK_INLINE float b_minimum(float a, float b) { return (a < b || a != a) ? a : b; }
CK_INLINE float b_pow(float a, float b) { return powf(a, b); }
CK_INLINE float b_equal(float a, float b) { return a == b ? 1.0f : 0.0f; }

// y[i] = f(a[i sa], b[i sb]); called with constant strides, so each case
// compiles to its own loop.
CK_INLINE void binary_span(binary_scalar f, size_t n, float *y, const float *a, ptrdiff_t sa, const float *b,
                           ptrdiff_t sb, int stream) {
    size_t i = stream ? ck_stream_head(y, n) : n;
    for (size_t k = 0; k < i; ++k) y[k] = f(a[(ptrdiff_t)k * sa], b[(ptrdiff_t)k * sb]);
    for (; i + 16 <= n; i += 16) {
        float line[16];
        for (size_t k = 0; k < 16; ++k) line[k] = f(a[(ptrdiff_t)(i + k) * sa], b[(ptrdiff_t)(i + k) * sb]);
        ck_stream_line(y + i, line);
    }
    for (; i < n; ++i) y[i] = f(a[(ptrdiff_t)i * sa], b[(ptrdiff_t)i * sb]);
}

// One row of the broadcast: the innermost dimension, with each operand either
// contiguous (stride 1), broadcast (stride 0) or general. A broadcast value is
// copied to a local first, which y cannot alias.
CK_INLINE void binary_row_apply(binary_scalar f, size_t n, float *y, const float *a, ptrdiff_t sa,
                                const float *b, ptrdiff_t sb, int stream) {
    if (sa == 1 && sb == 1) {
        binary_span(f, n, y, a, 1, b, 1, stream);
    } else if (sa == 1 && sb == 0) {
        float bv = b[0];
        binary_span(f, n, y, a, 1, &bv, 0, stream);
    } else if (sa == 0 && sb == 1) {
        float av = a[0];
        binary_span(f, n, y, &av, 0, b, 1, stream);
    } else {
        binary_span(f, n, y, a, sa, b, sb, 0);
    }
}

CK_INLINE void binary_row_body(ck_binary_op op, size_t n, float *y, const float *a, ptrdiff_t sa,
                               const float *b, ptrdiff_t sb, int stream) {
    switch (op) {
    case CK_BINARY_OP_ADD: binary_row_apply(b_add, n, y, a, sa, b, sb, stream); break;
    case CK_BINARY_OP_SUB: binary_row_apply(b_sub, n, y, a, sa, b, sb, stream); break;
    case CK_BINARY_OP_MUL: binary_row_apply(b_mul, n, y, a, sa, b, sb, stream); break;
    case CK_BINARY_OP_DIV: binary_row_apply(b_div, n, y, a, sa, b, sb, stream); break;
    case CK_BINARY_OP_MAXIMUM: binary_row_apply(b_maximum, n, y, a, sa, b, sb, stream); break;
    case CK_BINARY_OP_MINIMUM: binary_row_apply(b_minimum, n, y, a, sa, b, sb, stream); break;
    case CK_BINARY_OP_POW: binary_row_apply(b_pow, n, y, a, sa, b, sb, stream); break;
    case CK_BINARY_OP_EQUAL: binary_row_apply(b_equal, n, y, a, sa, b, sb, stream); break;
    }
}

// Pullback of one row: ga, gb contiguous (NULL to skip), g contiguous.
typedef void (*binary_grad)(float g, float a, float b, float y, float *ga, float *gb);

CK_INLINE float share(float u, float v) { return u > v ? 1.0f : (u == v ? 0.5f : 0.0f); }

CK_INLINE void gb_mul(float g, float a, float b, float y, float *ga, float *gb) { (void)y; *ga = g * b; *gb = g * a; }
CK_INLINE void gb_div(float g, float a, float b, float y, float *ga, float *gb) {
    (void)y; *ga = g / b; *gb = -g * a / (b * b);
}
CK_INLINE void gb_maximum(float g, float a, float b, float y, float *ga, float *gb) {
    (void)y; *ga = g * share(a, b); *gb = g * share(b, a);
}
CK_INLINE void gb_minimum(float g, float a, float b, float y, float *ga, float *gb) {
    (void)y; *ga = g * share(b, a); *gb = g * share(a, b);
}
CK_INLINE void gb_pow(float g, float a, float b, float y, float *ga, float *gb) {
    *ga = b == 0.0f ? 0.0f : g * b * powf(a, b - 1.0f);
    *gb = (a == 0.0f && b >= 0.0f) ? 0.0f : g * y * logf(a);
}

CK_INLINE void binary_grad_row_apply(binary_grad f, size_t n, float *ga, float *gb, const float *g,
                                     const float *a, ptrdiff_t sa, const float *b, ptrdiff_t sb,
                                     const float *y) {
    for (size_t i = 0; i < n; ++i) {
        float da, db;
        f(g[i], a[(ptrdiff_t)i * sa], b[(ptrdiff_t)i * sb], y ? y[i] : 0.0f, &da, &db);
        if (ga) ga[i] = da;
        if (gb) gb[i] = db;
    }
}

CK_INLINE void binary_grad_row_body(ck_binary_op op, size_t n, float *ga, float *gb, const float *g,
                                    const float *a, ptrdiff_t sa, const float *b, ptrdiff_t sb,
                                    const float *y) {
    switch (op) {
    case CK_BINARY_OP_MUL: binary_grad_row_apply(gb_mul, n, ga, gb, g, a, sa, b, sb, y); break;
    case CK_BINARY_OP_DIV: binary_grad_row_apply(gb_div, n, ga, gb, g, a, sa, b, sb, y); break;
    case CK_BINARY_OP_MAXIMUM: binary_grad_row_apply(gb_maximum, n, ga, gb, g, a, sa, b, sb, y); break;
    case CK_BINARY_OP_MINIMUM: binary_grad_row_apply(gb_minimum, n, ga, gb, g, a, sa, b, sb, y); break;
    case CK_BINARY_OP_POW: binary_grad_row_apply(gb_pow, n, ga, gb, g, a, sa, b, sb, y); break;
    default: break;
    }
}

CK_INLINE void fill_body(size_t n, float *y, float value, int stream) {
    size_t i = stream ? ck_stream_head(y, n) : n;
    for (size_t k = 0; k < i; ++k) y[k] = value;
    for (; i + 16 <= n; i += 16) {
        float line[16];
        for (size_t k = 0; k < 16; ++k) line[k] = value;
        ck_stream_line(y + i, line);
    }
    for (; i < n; ++i) y[i] = value;
}

CK_INLINE void axpy_body(size_t n, float *CK_RESTRICT y, float alpha, const float *CK_RESTRICT x) {
    for (size_t i = 0; i < n; ++i) y[i] += alpha * x[i];
}

// ---------------------------------------------------------------- per-ISA entry points

typedef void (*unary_fn)(ck_unary_op, size_t, float *, const float *, ck_unary_params, int stream);
typedef void (*unary_backward_fn)(ck_unary_op, size_t, float *, const float *, const float *, const float *,
                                  ck_unary_params, int stream);
typedef void (*binary_row_fn)(ck_binary_op, size_t, float *, const float *, ptrdiff_t, const float *, ptrdiff_t,
                              int stream);
typedef void (*binary_grad_row_fn)(ck_binary_op, size_t, float *, float *, const float *, const float *,
                                   ptrdiff_t, const float *, ptrdiff_t, const float *);
typedef void (*fill_fn)(size_t, float *, float, int stream);
typedef void (*axpy_fn)(size_t, float *CK_RESTRICT, float, const float *CK_RESTRICT);

typedef struct elementwise_isa {
    unary_fn unary;
    unary_backward_fn unary_backward;
    binary_row_fn binary_row;
    binary_grad_row_fn binary_grad_row;
    fill_fn fill;
    axpy_fn axpy;
} elementwise_isa;

static void unary_portable(ck_unary_op op, size_t n, float *y, const float *x, ck_unary_params p, int stream) { unary_body(op, n, y, x, p, stream); }
static void unary_backward_portable(ck_unary_op op, size_t n, float *dx, const float *dy, const float *x, const float *y, ck_unary_params p, int stream) { unary_backward_body(op, n, dx, dy, x, y, p, stream); }
static void binary_row_portable(ck_binary_op op, size_t n, float *y, const float *a, ptrdiff_t sa, const float *b, ptrdiff_t sb, int stream) { binary_row_body(op, n, y, a, sa, b, sb, stream); }
static void binary_grad_row_portable(ck_binary_op op, size_t n, float *ga, float *gb, const float *g, const float *a, ptrdiff_t sa, const float *b, ptrdiff_t sb, const float *y) { binary_grad_row_body(op, n, ga, gb, g, a, sa, b, sb, y); }
static void fill_portable(size_t n, float *y, float v, int stream) { fill_body(n, y, v, stream); }
static void axpy_portable(size_t n, float *CK_RESTRICT y, float alpha, const float *CK_RESTRICT x) { axpy_body(n, y, alpha, x); }

static const elementwise_isa portable_isa = {
    unary_portable, unary_backward_portable, binary_row_portable, binary_grad_row_portable, fill_portable, axpy_portable,
};

#if CK_HAVE_X86
CK_TARGET_AVX2 static void unary_avx2(ck_unary_op op, size_t n, float *y, const float *x, ck_unary_params p, int stream) { unary_body(op, n, y, x, p, stream); }
CK_TARGET_AVX2 static void unary_backward_avx2(ck_unary_op op, size_t n, float *dx, const float *dy, const float *x, const float *y, ck_unary_params p, int stream) { unary_backward_body(op, n, dx, dy, x, y, p, stream); }
CK_TARGET_AVX2 static void binary_row_avx2(ck_binary_op op, size_t n, float *y, const float *a, ptrdiff_t sa, const float *b, ptrdiff_t sb, int stream) { binary_row_body(op, n, y, a, sa, b, sb, stream); }
CK_TARGET_AVX2 static void binary_grad_row_avx2(ck_binary_op op, size_t n, float *ga, float *gb, const float *g, const float *a, ptrdiff_t sa, const float *b, ptrdiff_t sb, const float *y) { binary_grad_row_body(op, n, ga, gb, g, a, sa, b, sb, y); }
CK_TARGET_AVX2 static void fill_avx2(size_t n, float *y, float v, int stream) { fill_body(n, y, v, stream); }
CK_TARGET_AVX2 static void axpy_avx2(size_t n, float *CK_RESTRICT y, float alpha, const float *CK_RESTRICT x) { axpy_body(n, y, alpha, x); }

CK_TARGET_AVX512 static void unary_avx512(ck_unary_op op, size_t n, float *y, const float *x, ck_unary_params p, int stream) { unary_body(op, n, y, x, p, stream); }
CK_TARGET_AVX512 static void unary_backward_avx512(ck_unary_op op, size_t n, float *dx, const float *dy, const float *x, const float *y, ck_unary_params p, int stream) { unary_backward_body(op, n, dx, dy, x, y, p, stream); }
CK_TARGET_AVX512 static void binary_row_avx512(ck_binary_op op, size_t n, float *y, const float *a, ptrdiff_t sa, const float *b, ptrdiff_t sb, int stream) { binary_row_body(op, n, y, a, sa, b, sb, stream); }
CK_TARGET_AVX512 static void binary_grad_row_avx512(ck_binary_op op, size_t n, float *ga, float *gb, const float *g, const float *a, ptrdiff_t sa, const float *b, ptrdiff_t sb, const float *y) { binary_grad_row_body(op, n, ga, gb, g, a, sa, b, sb, y); }
CK_TARGET_AVX512 static void fill_avx512(size_t n, float *y, float v, int stream) { fill_body(n, y, v, stream); }
CK_TARGET_AVX512 static void axpy_avx512(size_t n, float *CK_RESTRICT y, float alpha, const float *CK_RESTRICT x) { axpy_body(n, y, alpha, x); }

static const elementwise_isa avx2_isa = {
    unary_avx2, unary_backward_avx2, binary_row_avx2, binary_grad_row_avx2, fill_avx2, axpy_avx2,
};
static const elementwise_isa avx512_isa = {
    unary_avx512, unary_backward_avx512, binary_row_avx512, binary_grad_row_avx512, fill_avx512, axpy_avx512,
};
#endif

static const elementwise_isa *isa_table(void) { return CK_ISA_TABLE(portable_isa, avx2_isa, avx512_isa); }

// ---------------------------------------------------------------- drivers

// Elements per part below which splitting across threads costs more than it
// saves: cheap maps stream ~10 GB/s per core, transcendental ones ~1 element/ns.
static size_t unary_grain(ck_unary_op op) {
    switch (op) {
    case CK_UNARY_OP_NEGATE: case CK_UNARY_OP_ABS: case CK_UNARY_OP_SQUARE: case CK_UNARY_OP_RELU:
    case CK_UNARY_OP_LEAKY_RELU: case CK_UNARY_OP_CLAMP: case CK_UNARY_OP_ADD_SCALAR:
    case CK_UNARY_OP_MUL_SCALAR: case CK_UNARY_OP_RSUB_SCALAR:
        return 1u << 16;
    default:
        return 1u << 13;
    }
}

typedef struct unary_job {
    const elementwise_isa *isa;
    ck_unary_op op;
    int stream; // write the output with non-temporal stores
    float *y, *dx;
    const float *x, *dy, *yin;
    ck_unary_params p;
} unary_job;

static void unary_part(void *ctx, size_t begin, size_t end, size_t part) {
    (void)part;
    const unary_job *j = ctx;
    j->isa->unary(j->op, end - begin, j->y + begin, j->x + begin, j->p, j->stream);
    if (j->stream) ck_stream_fence();
}

void ck_unary_f32(ck_unary_op op, size_t n, float *y, const float *x, ck_unary_params params) {
    // In place, the store finds its line in the cache: nothing to save.
    int stream = y != x && ck_streams(2 * n * sizeof(float));
    unary_job job = { .isa = isa_table(), .op = op, .stream = stream, .y = y, .x = x, .p = params };
    ck_parallel_for(n, unary_grain(op), unary_part, &job);
}

static void unary_backward_part(void *ctx, size_t begin, size_t end, size_t part) {
    (void)part;
    const unary_job *j = ctx;
    j->isa->unary_backward(j->op, end - begin, j->dx + begin, j->dy + begin,
                           j->x ? j->x + begin : NULL, j->yin ? j->yin + begin : NULL, j->p, j->stream);
    if (j->stream) ck_stream_fence();
}

void ck_unary_backward_f32(ck_unary_op op, size_t n, float *dx, const float *dy, const float *x, const float *y,
                           ck_unary_params params) {
    size_t operands = 2 + (x != NULL) + (y != NULL);
    int stream = dx != dy && dx != x && dx != y && ck_streams(operands * n * sizeof(float));
    unary_job job = { .isa = isa_table(), .op = op, .stream = stream, .dx = dx, .dy = dy, .x = x, .yin = y,
                      .p = params };
    ck_parallel_for(n, unary_grain(op), unary_backward_part, &job);
}

// Broadcasting: the innermost dimension is a row; the outer dimensions are
// walked with an odometer. Parts split the rows, or the single row.
typedef struct binary_job {
    const elementwise_isa *isa;
    ck_binary_op op;
    int stream;                    // forward: write y with non-temporal stores
    size_t rank, row;              // rank >= 1; row = shape[rank-1]
    size_t shape[CK_MAX_RANK];
    ptrdiff_t sa[CK_MAX_RANK], sb[CK_MAX_RANK];
    float *y, *ga, *gb;
    const float *a, *b, *g, *yin;
} binary_job;

// Offsets of outer row `r` (row-major over shape[0..rank-1)).
static void row_offsets(const binary_job *j, size_t r, ptrdiff_t *oa, ptrdiff_t *ob) {
    ptrdiff_t a = 0, b = 0;
    for (size_t d = j->rank - 1; d-- > 0;) {
        size_t i = r % j->shape[d];
        r /= j->shape[d];
        a += (ptrdiff_t)i * j->sa[d];
        b += (ptrdiff_t)i * j->sb[d];
    }
    *oa = a;
    *ob = b;
}

static void binary_part(void *ctx, size_t begin, size_t end, size_t part) {
    (void)part;
    const binary_job *j = ctx;
    ptrdiff_t ia = j->sa[j->rank - 1], ib = j->sb[j->rank - 1];
    if (j->rank == 1) { // the parts split the single row
        j->isa->binary_row(j->op, end - begin, j->y + begin, j->a + (ptrdiff_t)begin * ia, ia,
                           j->b + (ptrdiff_t)begin * ib, ib, j->stream);
    } else {
        for (size_t r = begin; r < end; ++r) {
            ptrdiff_t oa, ob;
            row_offsets(j, r, &oa, &ob);
            j->isa->binary_row(j->op, j->row, j->y + r * j->row, j->a + oa, ia, j->b + ob, ib, j->stream);
        }
    }
    if (j->stream) ck_stream_fence();
}

static void binary_grad_part(void *ctx, size_t begin, size_t end, size_t part) {
    (void)part;
    const binary_job *j = ctx;
    ptrdiff_t ia = j->sa[j->rank - 1], ib = j->sb[j->rank - 1];
    if (j->rank == 1) {
        j->isa->binary_grad_row(j->op, end - begin, j->ga ? j->ga + begin : NULL, j->gb ? j->gb + begin : NULL,
                                j->g + begin, j->a + (ptrdiff_t)begin * ia, ia, j->b + (ptrdiff_t)begin * ib, ib,
                                j->yin ? j->yin + begin : NULL);
        return;
    }
    for (size_t r = begin; r < end; ++r) {
        ptrdiff_t oa, ob;
        row_offsets(j, r, &oa, &ob);
        size_t o = r * j->row;
        j->isa->binary_grad_row(j->op, j->row, j->ga ? j->ga + o : NULL, j->gb ? j->gb + o : NULL, j->g + o,
                                j->a + oa, ia, j->b + ob, ib, j->yin ? j->yin + o : NULL);
    }
}

static void binary_setup(binary_job *j, size_t rank, const size_t *shape, const ptrdiff_t *sa,
                         const ptrdiff_t *sb, size_t *units, size_t *grain) {
    if (rank == 0) { // one element
        j->rank = 1;
        j->shape[0] = 1;
        j->sa[0] = j->sb[0] = 0;
    } else {
        j->rank = rank;
        for (size_t d = 0; d < rank; ++d) {
            j->shape[d] = shape[d];
            j->sa[d] = sa[d];
            j->sb[d] = sb[d];
        }
    }
    j->row = j->shape[j->rank - 1];
    size_t rows = 1;
    for (size_t d = 0; d + 1 < j->rank; ++d) rows *= j->shape[d];
    size_t element_grain = (j->op == CK_BINARY_OP_POW) ? (1u << 13) : (1u << 16);
    if (j->rank == 1) {
        *units = j->row;
        *grain = element_grain;
    } else {
        *units = rows;
        *grain = j->row == 0 ? rows : ck_max_size(1, element_grain / j->row);
    }
}

// Distinct elements an operand with these strides reads: the extents of the
// dimensions it is not broadcast along.
static size_t operand_elements(const binary_job *j, const ptrdiff_t *strides) {
    size_t count = 1;
    for (size_t d = 0; d < j->rank; ++d) count *= strides[d] != 0 ? j->shape[d] : 1;
    return count;
}

void ck_binary_f32(ck_binary_op op, size_t rank, const size_t *shape, float *y, const float *a,
                   const ptrdiff_t *a_strides, const float *b, const ptrdiff_t *b_strides) {
    binary_job job = { .isa = isa_table(), .op = op, .y = y, .a = a, .b = b };
    size_t units, grain;
    binary_setup(&job, rank, shape, a_strides, b_strides, &units, &grain);
    size_t elements = units * (job.rank == 1 ? 1 : job.row);
    size_t footprint = (elements + operand_elements(&job, job.sa) + operand_elements(&job, job.sb)) * sizeof(float);
    job.stream = y != a && y != b && ck_streams(footprint);
    ck_parallel_for(units, grain, binary_part, &job);
}

void ck_binary_backward_f32(ck_binary_op op, size_t rank, const size_t *shape, float *ga, float *gb,
                            const float *g, const float *a, const ptrdiff_t *a_strides, const float *b,
                            const ptrdiff_t *b_strides, const float *y) {
    binary_job job = { .isa = isa_table(), .op = op, .ga = ga, .gb = gb, .g = g, .a = a, .b = b, .yin = y };
    size_t units, grain;
    binary_setup(&job, rank, shape, a_strides, b_strides, &units, &grain);
    ck_parallel_for(units, grain, binary_grad_part, &job);
}

typedef struct stream_job {
    const elementwise_isa *isa;
    int stream; // fill: non-temporal stores
    float *y;
    const float *x;
    float value;
} stream_job;

static void fill_part(void *ctx, size_t begin, size_t end, size_t part) {
    (void)part;
    const stream_job *j = ctx;
    j->isa->fill(end - begin, j->y + begin, j->value, j->stream);
    if (j->stream) ck_stream_fence();
}

void ck_fill_f32(size_t n, float *y, float value) {
    stream_job job = { .isa = isa_table(), .stream = ck_streams(n * sizeof(float)), .y = y, .value = value };
    ck_parallel_for(n, 1u << 17, fill_part, &job);
}

static void axpy_part(void *ctx, size_t begin, size_t end, size_t part) {
    (void)part;
    const stream_job *j = ctx;
    j->isa->axpy(end - begin, j->y + begin, j->value, j->x + begin);
}

void ck_axpy_f32(size_t n, float *CK_RESTRICT y, float alpha, const float *CK_RESTRICT x) {
    stream_job job = { .isa = isa_table(), .y = y, .x = x, .value = alpha };
    ck_parallel_for(n, 1u << 16, axpy_part, &job);
}
