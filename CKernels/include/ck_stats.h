// GradKit CKernels — activation statistics for the gradient-health monitor. SPDX-License-Identifier: MIT
#ifndef CK_STATS_H
#define CK_STATS_H

#include "ck_config.h"

/// Sums of x and x^2 in double, in fixed blocks of 16 double lanes added
/// pairwise (the same bits for any thread count). NaN propagates.
void ck_moments_f32(size_t n, const float *x, double *sum, double *sum_squares);

/// The size of one update, for the update-to-weight ratio ||after - before|| / ||before||:
/// sums of (after[i] - before[i])^2 and before[i]^2. A diagnostic, so computed
/// in 32 float lanes per block of 4096 elements, blocks combined in double
/// (relative error about 1e-5); the Swift twin follows the same order.
void ck_change_moments_f32(size_t n, const float *after, const float *before, double *sum_squared_change,
                           double *sum_squares_before);

/// ck_change_moments_f32, then before[i] = after[i] (the copy the next step's
/// ratio starts from, made while the block is in cache).
void ck_change_moments_update_f32(size_t n, const float *after, float *before, double *sum_squared_change,
                                  double *sum_squares_before);

/// The number of i with x[i] < low or x[i] > high (NaN counts as neither).
size_t ck_count_outside_f32(size_t n, const float *x, float low, float high);

/// The number of columns of a rows x columns matrix whose entries are all
/// <= 0 (a ReLU unit that is silent for the whole batch).
size_t ck_count_dead_columns_f32(size_t rows, size_t columns, const float *y);

#endif
