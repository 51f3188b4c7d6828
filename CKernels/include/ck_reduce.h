// GradKit CKernels — reductions. SPDX-License-Identifier: MIT
#ifndef CK_REDUCE_H
#define CK_REDUCE_H

#include "ck_config.h"

typedef enum ck_reduce_op {
    CK_REDUCE_OP_SUM = 0, ///< scale * sum, accumulated in double
    CK_REDUCE_OP_MAX,     ///< NaN-propagating maximum
    CK_REDUCE_OP_MIN,     ///< NaN-propagating minimum
} ck_reduce_op;

/// Reduces the middle axis of x viewed as [outer, extent, inner]:
///   y[o*inner + i] = reduce_{r < extent} x[(o*extent + r)*inner + i]
/// SUM multiplies the double-precision total by `scale` (1 for a sum, 1/extent
/// for a mean) before rounding to float; MAX and MIN ignore `scale`.
/// Deterministic: the summation order depends on the sizes only, never on the
/// thread count. With inner == 1 each output sums fixed blocks of 16 double
/// lanes (lane j takes elements j, j+16, ...), then the lanes pairwise, then the
/// blocks in order; with inner > 1 each output sums in r order.
/// extent == 0 gives 0 for SUM and -inf / +inf for MAX / MIN.
/// Aliasing: y must not overlap x.
void ck_reduce_f32(ck_reduce_op op, size_t outer, size_t extent, size_t inner,
                   float *CK_RESTRICT y, const float *CK_RESTRICT x, double scale);

#endif
