// GradKit CKernels — norms and clipping of gradient sets. SPDX-License-Identifier: MIT
#ifndef CK_NORM_H
#define CK_NORM_H

#include "ck_config.h"

/// Which power sum a norm needs.
typedef enum ck_norm_kind {
    CK_NORM_KIND_SQUARES = 0, ///< sum x^2        (p = 2)
    CK_NORM_KIND_ABS,         ///< sum |x|        (p = 1)
    CK_NORM_KIND_MAX_ABS,     ///< max |x|        (p = infinity; NaN propagates)
    CK_NORM_KIND_POWER,       ///< sum |x|^p      (any p > 0)
} ck_norm_kind;

/// Per-segment power sums, then their combination:
///   partials[s] = sum_i |segments[s][i]|^p  (or max |.| for MAX_ABS), in double
///   returns partials[0] + partials[1] + ... in segment order (max for MAX_ABS)
/// Deterministic: each segment is summed in fixed blocks (ck_reduce_f32's block
/// sizes) of 32 double lanes added pairwise, whatever the thread count.
/// The norm is the result's 1/p-th power (the caller takes it).
/// partials: `count` doubles the caller owns (it also gets per-segment norms).
double ck_norm_segments_f32(ck_norm_kind kind, size_t count, const float *const *segments,
                            const size_t *lengths, double p, double *partials);

/// True when every x[i] is finite.
bool ck_all_finite_f32(size_t n, const float *x);

/// Adaptive gradient clipping (Brock et al. 2021, NFNets), unit-wise over
/// `rows` units of `columns` elements (a weight's output rows; a vector is one
/// unit):
///   limit = clip_factor * max(||w_row||, epsilon)
///   ||g_row|| > limit:  g_row = g_row * limit / max(||g_row||, 1e-6)
/// Norms are Euclidean, accumulated in double. Returns the number of units clipped.
/// Aliasing: g must not overlap w.
size_t ck_agc_f32(size_t rows, size_t columns, float *CK_RESTRICT g, const float *CK_RESTRICT w,
                  float clip_factor, float epsilon);

#endif
