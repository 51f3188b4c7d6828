// GradKit CKernels — data movement: transposes, strided copies, row gathers. SPDX-License-Identifier: MIT
#ifndef CK_LAYOUT_H
#define CK_LAYOUT_H

#include "ck_config.h"

/// Batched 2-D transpose:  y[b][c][r] = x[b][r][c]  for a batch of rows x cols
/// matrices stored back to back. Aliasing: y must not overlap x.
void ck_transpose_f32(size_t batch, size_t rows, size_t cols,
                      float *CK_RESTRICT y, const float *CK_RESTRICT x);

/// Strided gather into a contiguous array, for permutations and broadcasts:
///   y[idx] = x[idx . x_strides]   over the index space `shape` (rank <= CK_MAX_RANK)
/// Strides may be 0 (broadcast). Aliasing: y must not overlap x.
void ck_strided_copy_f32(size_t rank, const size_t *shape,
                         float *CK_RESTRICT y, const float *CK_RESTRICT x,
                         const ptrdiff_t *x_strides);

/// y[i, :] = x[rows[i], :] for i < count; x and y have `columns` columns.
/// Indices must be valid; the caller checks them. Aliasing: no overlap.
void ck_gather_rows_f32(size_t count, size_t columns, float *CK_RESTRICT y,
                        const float *CK_RESTRICT x, const int64_t *rows);

/// y[rows[i], :] += x[i, :] for i < count, in increasing i (repeated indices
/// accumulate deterministically). Aliasing: no overlap.
void ck_scatter_add_rows_f32(size_t count, size_t columns, float *CK_RESTRICT y,
                             const float *CK_RESTRICT x, const int64_t *rows);

#endif
