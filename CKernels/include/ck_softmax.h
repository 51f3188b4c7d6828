// GradKit CKernels — softmax family and the fused cross-entropy. SPDX-License-Identifier: MIT
#ifndef CK_SOFTMAX_H
#define CK_SOFTMAX_H

#include "ck_config.h"

/// Softmax along the middle axis of x viewed as [outer, extent, inner]:
///   y = exp(x - max) / sum(exp(x - max))          (numerically stable)
/// Aliasing: y may be x; otherwise no overlap.
void ck_softmax_f32(size_t outer, size_t extent, size_t inner, float *y, const float *x);

/// Log-softmax along the middle axis:  y = x - max - log(sum(exp(x - max))).
void ck_log_softmax_f32(size_t outer, size_t extent, size_t inner, float *y, const float *x);

/// Pullback of ck_softmax_f32:  dx = y * (dy - sum(dy * y)).  dx may be dy.
void ck_softmax_backward_f32(size_t outer, size_t extent, size_t inner,
                             float *dx, const float *dy, const float *y);

/// Pullback of ck_log_softmax_f32:  dx = dy - exp(y) * sum(dy).  dx may be dy.
void ck_log_softmax_backward_f32(size_t outer, size_t extent, size_t inner,
                                 float *dx, const float *dy, const float *y);

/// Softmax cross-entropy with integer labels, one row per example:
///   losses[r] = logsumexp(logits[r, :]) - logits[r, labels[r]]
///   probabilities[r, :] = softmax(logits[r, :])      (kept for the pullback)
/// Labels must lie in [0, classes); the caller checks them.
/// Aliasing: probabilities may be logits; losses must not overlap either.
void ck_softmax_cross_entropy_f32(size_t rows, size_t classes, float *losses,
                                  float *probabilities, const float *logits,
                                  const int64_t *labels);

/// Its pullback:  dlogits[r, c] = scale * (probabilities[r, c] - (c == labels[r]))
/// with scale = (upstream gradient) / rows for a mean. dlogits may be probabilities.
void ck_softmax_cross_entropy_backward_f32(size_t rows, size_t classes, float *dlogits,
                                           const float *probabilities,
                                           const int64_t *labels, float scale);

#endif
