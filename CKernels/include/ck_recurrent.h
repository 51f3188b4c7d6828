// GradKit CKernels — the fused gate arithmetic of LSTM and GRU cells, one time step. SPDX-License-Identifier: MIT
#ifndef CK_RECURRENT_H
#define CK_RECURRENT_H

#include "ck_config.h"

// Each kernel handles one time step for `batch` rows of `hidden` units. The
// matrix products (the input projection of every step, x W_ihᵀ + b_ih, and
// this step's recurrent one, h W_hhᵀ + b_hh) are GEMMs the caller runs; these
// kernels do everything elementwise between them, forward and backward, in one
// pass. Gate blocks follow PyTorch's order inside each row of 4H (LSTM: i, f,
// g, o) or 3H (GRU: r, z, n) preactivations.
//
// `x_gates` (and `dx_gates`) rows are `ldx` (`ld_dx`) elements apart, so that a
// step's slice of a [batch, time, gates] projection is read in place; `dh_out`
// rows are `ld_dh_out` apart likewise. Every other array is contiguous with
// the shape given. Sigmoid and tanh are ck_math.h's approximations (within 2.5
// and 1.4 ulp); the rest is plain IEEE arithmetic in the order written, never
// contracted to FMA, so a twin doing the same operations matches bit for bit.

/// LSTM forward. For each row r and unit j, with a = x_gates[r] + h_gates[r]:
///   i = σ(a_i)  f = σ(a_f)  g = tanh(a_g)  o = σ(a_o)
///   c[r] = f c_prev[r] + i g          h[r] = o tanh(c[r])
///   saved[r] = (i, f, g, o, tanh c[r])              (5H per row)
/// Shapes: x_gates [batch, 4H] (rows ldx apart), h_gates [batch, 4H],
/// c_prev, c, h [batch, H], saved [batch, 5H].
/// Aliasing: no two arguments overlap.
void ck_lstm_cell_forward_f32(size_t batch, size_t hidden,
                              float *CK_RESTRICT h, float *CK_RESTRICT c, float *CK_RESTRICT saved,
                              const float *CK_RESTRICT x_gates, ptrdiff_t ldx,
                              const float *CK_RESTRICT h_gates, const float *CK_RESTRICT c_prev);

/// LSTM backward, the pullback of one forward step given its `saved` values.
/// With dh = dh_out[r] + dh_next[r] (the gradient of h_t from the layer's output
/// and from step t+1) and dc[r] the gradient of c_t from step t+1:
///   dct  = dc + dh o (1 - tc tc)                      (tc = tanh c_t)
///   da_i = dct g (i (1 - i))      da_f = dct c_prev (f (1 - f))
///   da_g = dct i (1 - g g)        da_o = dh tc (o (1 - o))
///   dx_gates[r] = dh_gates[r] = (da_i, da_f, da_g, da_o)
///   dc[r] = dct f                                     (the gradient of c_{t-1})
/// Shapes: dx_gates [batch, 4H] (rows ld_dx apart), dh_gates [batch, 4H],
/// dc, dh_next, c_prev [batch, H], dh_out [batch, H] (rows ld_dh_out apart),
/// saved [batch, 5H].
/// Aliasing: no two arguments overlap (dc is read and written in place).
void ck_lstm_cell_backward_f32(size_t batch, size_t hidden,
                               float *CK_RESTRICT dx_gates, ptrdiff_t ld_dx, float *CK_RESTRICT dh_gates,
                               float *CK_RESTRICT dc, const float *CK_RESTRICT dh_out, ptrdiff_t ld_dh_out,
                               const float *CK_RESTRICT dh_next, const float *CK_RESTRICT saved,
                               const float *CK_RESTRICT c_prev);

/// GRU forward (PyTorch's cell: the reset gate scales the recurrent product):
///   r = σ(x_r + h_r)   z = σ(x_z + h_z)   n = tanh(x_n + r h_n)
///   h[r] = (h_prev[r] - n) z + n
///   saved[r] = (r, z, n, h_n)                         (4H per row)
/// where x_* and h_* are the blocks of x_gates[r] and h_gates[r].
/// Shapes: x_gates [batch, 3H] (rows ldx apart), h_gates [batch, 3H],
/// h_prev, h [batch, H], saved [batch, 4H].
/// Aliasing: no two arguments overlap.
void ck_gru_cell_forward_f32(size_t batch, size_t hidden,
                             float *CK_RESTRICT h, float *CK_RESTRICT saved,
                             const float *CK_RESTRICT x_gates, ptrdiff_t ldx,
                             const float *CK_RESTRICT h_gates, const float *CK_RESTRICT h_prev);

/// GRU backward, the pullback of one forward step given its `saved` values.
/// With dy = dh_out[r] + dh[r] (the gradient of h_t from the output and from
/// step t+1):
///   da_n = dy (1 - z) (1 - n n)   da_z = dy (h_prev - n) (z (1 - z))
///   da_r = da_n h_n (r (1 - r))
///   dx_gates[r] = (da_r, da_z, da_n)      dh_gates[r] = (da_r, da_z, da_n r)
///   dh[r] = dy z        (the gradient of h_{t-1} through the update gate; the
///                        caller adds dh_gates W_hh)
/// Shapes: dx_gates [batch, 3H] (rows ld_dx apart), dh_gates [batch, 3H],
/// dh, h_prev [batch, H], dh_out [batch, H] (rows ld_dh_out apart),
/// saved [batch, 4H].
/// Aliasing: no two arguments overlap (dh is read and written in place).
void ck_gru_cell_backward_f32(size_t batch, size_t hidden,
                              float *CK_RESTRICT dx_gates, ptrdiff_t ld_dx, float *CK_RESTRICT dh_gates,
                              float *CK_RESTRICT dh, const float *CK_RESTRICT dh_out, ptrdiff_t ld_dh_out,
                              const float *CK_RESTRICT saved, const float *CK_RESTRICT h_prev);

#endif
