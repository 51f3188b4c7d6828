// GradKit CKernels — activation statistics for the gradient-health monitor. SPDX-License-Identifier: MIT
#ifndef CK_STATS_H
#define CK_STATS_H

#include "ck_config.h"

/// Sums of x and x^2 in double, in the canonical order of ck_reduce_f32 (the
/// same bits for any thread count). NaN propagates.
void ck_moments_f32(size_t n, const float *x, double *sum, double *sum_squares);

/// The number of i with x[i] < low or x[i] > high (NaN counts as neither).
size_t ck_count_outside_f32(size_t n, const float *x, float low, float high);

/// The number of columns of a rows x columns matrix whose entries are all
/// <= 0 (a ReLU unit that is silent for the whole batch).
size_t ck_count_dead_columns_f32(size_t rows, size_t columns, const float *y);

#endif
