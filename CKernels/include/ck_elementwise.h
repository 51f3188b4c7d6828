// GradKit CKernels — elementwise maps, their derivatives, broadcasting. SPDX-License-Identifier: MIT
#ifndef CK_ELEMENTWISE_H
#define CK_ELEMENTWISE_H

#include "ck_config.h"

/// One-input maps y = f(x; a, b). `a` and `b` are the op's scalars:
typedef enum ck_unary_op {
    CK_UNARY_OP_NEGATE = 0,      ///< -x
    CK_UNARY_OP_EXP,             ///< e^x
    CK_UNARY_OP_LOG,             ///< ln x
    CK_UNARY_OP_SQRT,            ///< sqrt x
    CK_UNARY_OP_ABS,             ///< |x|
    CK_UNARY_OP_SQUARE,          ///< x * x
    CK_UNARY_OP_SIGMOID,         ///< 1 / (1 + e^-x)
    CK_UNARY_OP_TANH,            ///< tanh x
    CK_UNARY_OP_RELU,            ///< max(x, 0)
    CK_UNARY_OP_LEAKY_RELU,      ///< x > 0 ? x : a * x          (a: negative slope)
    CK_UNARY_OP_ELU,             ///< x > 0 ? x : a * (e^x - 1)  (a: alpha)
    CK_UNARY_OP_GELU,            ///< x * Phi(x) = 0.5 x erfc(-x / sqrt 2)
    CK_UNARY_OP_GELU_TANH,       ///< 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))
    CK_UNARY_OP_SOFTPLUS,        ///< a x > b ? x : log(1 + e^(a x)) / a  (a: beta, b: threshold)
    CK_UNARY_OP_POW,             ///< x^a
    CK_UNARY_OP_CLAMP,           ///< min(max(x, a), b)
    CK_UNARY_OP_ADD_SCALAR,      ///< x + a
    CK_UNARY_OP_MUL_SCALAR,      ///< x * a
    CK_UNARY_OP_DIV_SCALAR,      ///< x / a
    CK_UNARY_OP_RSUB_SCALAR,     ///< a - x
    CK_UNARY_OP_RDIV_SCALAR,     ///< a / x
} ck_unary_op;

/// The scalars of a unary op; unused fields are ignored.
typedef struct ck_unary_params {
    float a;
    float b;
} ck_unary_params;

/// y[i] = f(x[i]) for i < n.
/// Transcendental functions use vectorizable approximations, within 3 ulp of
/// the correctly rounded result over the finite range, times the function's
/// condition number |x f'(x) / f(x)| where that exceeds 1 (there, half an ulp
/// of input rounding already moves the exact result that much); tested against
/// double-precision libm at enumerated sizes on every code path.
/// Aliasing: y may be x (in place); otherwise they must not overlap.
void ck_unary_f32(ck_unary_op op, size_t n, float *y, const float *x, ck_unary_params params);

/// dx[i] = dy[i] * f'(x[i]), the pullback of ck_unary_f32, reading whichever of
/// x (the input) and y (the forward output) the op needs; the other may be NULL:
///   needs y: EXP, SQRT, SIGMOID, TANH, RELU;  needs x and y: RDIV_SCALAR;
///   needs neither: NEGATE, ADD/MUL/DIV/RSUB_SCALAR;  needs x: all others.
/// Conventions match PyTorch at kinks: relu'(0) = 0, leaky_relu'(0) = a,
/// |x|'(0) = 0, clamp' = 1 on the closed interval [a, b].
/// Aliasing: dx may be dy; otherwise no overlap.
void ck_unary_backward_f32(ck_unary_op op, size_t n, float *dx, const float *dy,
                           const float *x, const float *y, ck_unary_params params);

/// Two-input maps y = f(a, b).
typedef enum ck_binary_op {
    CK_BINARY_OP_ADD = 0,
    CK_BINARY_OP_SUB,
    CK_BINARY_OP_MUL,
    CK_BINARY_OP_DIV,
    CK_BINARY_OP_MAXIMUM,  ///< NaN-propagating, as torch.maximum
    CK_BINARY_OP_MINIMUM,  ///< NaN-propagating, as torch.minimum
    CK_BINARY_OP_POW,      ///< a^b (powf)
    CK_BINARY_OP_EQUAL,    ///< a == b ? 1 : 0
} ck_binary_op;

/// Broadcasting map over a rank-`rank` index space `shape` (the output shape):
///   y[idx] = f(a[idx . a_strides], b[idx . b_strides])
/// y is contiguous row-major; operand strides are in elements and 0 along
/// broadcast dimensions. rank <= CK_MAX_RANK; rank 0 is one element.
/// Aliasing: y may be a or b when that operand is not broadcast (same layout).
void ck_binary_f32(ck_binary_op op, size_t rank, const size_t *shape,
                   float *y, const float *a, const ptrdiff_t *a_strides,
                   const float *b, const ptrdiff_t *b_strides);

/// The pullback of ck_binary_f32 for MUL, DIV, MAXIMUM, MINIMUM and POW, before
/// reduction to the operands' shapes: ga and gb are contiguous with the output's
/// shape (either may be NULL to skip it), g is the output gradient, y the
/// forward output (read by POW only):
///   MUL:     ga = g b                      gb = g a
///   DIV:     ga = g / b                    gb = -g a / (b b)
///   MAXIMUM: ga = g w(a, b)                gb = g w(b, a)
///   MINIMUM: ga = g w(b, a)                gb = g w(a, b)
///            where w(u, v) = u > v ? 1 : (u == v ? 1/2 : 0)  (ties split evenly)
///   POW:     ga = b == 0 ? 0 : g b a^(b-1)  gb = (a == 0 && b >= 0) ? 0 : g y ln a
/// ADD, SUB and EQUAL are not accepted (their pullbacks need no kernel).
void ck_binary_backward_f32(ck_binary_op op, size_t rank, const size_t *shape,
                            float *ga, float *gb, const float *g,
                            const float *a, const ptrdiff_t *a_strides,
                            const float *b, const ptrdiff_t *b_strides,
                            const float *y);

/// y[i] = value for i < n.
void ck_fill_f32(size_t n, float *y, float value);

/// y[i] += alpha * x[i] for i < n. Aliasing: y must not overlap x.
void ck_axpy_f32(size_t n, float *CK_RESTRICT y, float alpha, const float *CK_RESTRICT x);

#endif
