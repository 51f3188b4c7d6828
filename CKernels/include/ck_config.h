// GradKit CKernels — shared definitions. SPDX-License-Identifier: MIT
//
// Conventions for every kernel in this target:
//   * Names are ck_<noun>_<verb>_f32; enum values carry their enum's name as prefix.
//   * Arguments: sizes, then outputs and in-out state, then inputs, then a small
//     by-value struct of scalars precomputed by the caller. GEMM keeps BLAS order.
//   * size_t for counts, ptrdiff_t for strides; strides are in elements.
//   * Kernels never allocate and never keep a pointer after they return: the
//     caller (Swift) owns every buffer, workspaces included.
//   * Shape checks happen in Swift before the call; kernels trust their sizes.
#ifndef CK_CONFIG_H
#define CK_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CK_RESTRICT __restrict

/// The largest rank the strided (broadcasting, permuting) kernels accept after
/// the caller has merged contiguous dimensions.
#define CK_MAX_RANK 8

#endif
