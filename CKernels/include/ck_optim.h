// GradKit CKernels — fused optimizer steps. SPDX-License-Identifier: MIT
//
// One pass per call over n elements of flat buffers: read p, g and the state
// once, write p and the state once. The caller precomputes every step-dependent
// scalar (bias corrections, effective learning rate) once per step, in double,
// and rounds it to float, as PyTorch does with Python scalars.
//
// Common to all: d = gradient_scale * g, where gradient_scale folds a fused
// clipping coefficient (1 when not clipping) and maximize (negative); with a
// nonzero weight_decay (coupled L2), d = d + weight_decay * p.
// Every operation is a separate IEEE rounding in the order written (no fused
// multiply-add), so the Swift twins reproduce the results bit for bit.
// Aliasing: no two arrays may overlap.
#ifndef CK_OPTIM_H
#define CK_OPTIM_H

#include "ck_config.h"

/// SGD (torch.optim.SGD):
///   momentum == 0:  p = p - lr d
///   otherwise:      b = first ? d : momentum b + (1 - dampening) d
///                   u = nesterov ? d + momentum b : b
///                   p = p - lr u
typedef struct ck_sgd_scalars {
    float learning_rate, momentum, weight_decay, gradient_scale;
    float one_minus_dampening; ///< 1 - dampening, computed in double
    bool nesterov;
    bool first; ///< the momentum buffer does not exist yet: it becomes d
} ck_sgd_scalars;

/// momentum_buffer may be NULL when s.momentum == 0.
void ck_sgd_step_f32(size_t n, float *CK_RESTRICT p, float *CK_RESTRICT momentum_buffer,
                     const float *CK_RESTRICT g, ck_sgd_scalars s);

/// AdaGrad (torch.optim.Adagrad):
///   sum = sum + d^2;  p = p - clr d / (sqrt(sum) + epsilon)
/// with clr = lr / (1 + (t - 1) lr_decay) precomputed for the step t.
typedef struct ck_adagrad_scalars {
    float clr, epsilon, weight_decay, gradient_scale;
} ck_adagrad_scalars;

void ck_adagrad_step_f32(size_t n, float *CK_RESTRICT p, float *CK_RESTRICT sum, const float *CK_RESTRICT g,
                         ck_adagrad_scalars s);

/// RMSprop (torch.optim.RMSprop):
///   v = alpha v + (1 - alpha) d^2
///   centered: a = a + (1 - alpha)(d - a);  r = sqrt(v - a^2) + epsilon
///   else:     r = sqrt(v) + epsilon
///   momentum > 0: b = momentum b + d / r;  p = p - lr b
///   else:         p = p - lr d / r
typedef struct ck_rmsprop_scalars {
    float learning_rate, alpha, epsilon, weight_decay, momentum, gradient_scale;
    float one_minus_alpha; ///< computed in double
    bool centered;
} ck_rmsprop_scalars;

/// grad_avg is NULL unless centered; momentum_buffer is NULL unless momentum > 0.
void ck_rmsprop_step_f32(size_t n, float *CK_RESTRICT p, float *CK_RESTRICT square_avg,
                         float *CK_RESTRICT grad_avg, float *CK_RESTRICT momentum_buffer,
                         const float *CK_RESTRICT g, ck_rmsprop_scalars s);

/// Adam and AdamW (torch.optim.Adam / AdamW), at step t:
///   p = decay_factor p                (AdamW: 1 - lr weight_decay; Adam: 1)
///   m = lerp(m, d, 1 - beta1)          (torch's lerp: m + w (d - m) for w < 1/2,
///                                      else d - (d - m)(1 - w))
///   v = beta2 v + (1 - beta2) d^2
///   amsgrad: v_max = max(v_max, v), and v_max replaces v below
///   p = p - step_size m / (sqrt(v) / bias_correction2_sqrt + epsilon)
/// with step_size = lr / (1 - beta1^t), bias_correction2_sqrt = sqrt(1 - beta2^t).
/// weight_decay is the coupled (L2) term of Adam; 0 for AdamW.
typedef struct ck_adam_scalars {
    float beta2, epsilon, weight_decay, gradient_scale;
    float one_minus_beta1, one_minus_beta2; ///< computed in double
    float step_size, bias_correction2_sqrt, decay_factor;
    bool amsgrad;
} ck_adam_scalars;

/// How the AVX-512 Adam and SGD-with-momentum loops compute each 16 elements whose gradient or state is
/// small enough that an operation of the step may meet a subnormal: 1 in double, where no Float
/// subnormal is an operand (each Float operation reproduced bit for bit); 0 in the plain vector
/// loop; -1 (the default) 1 where this CPU was measured to compute subnormal operands slowly (Intel:
/// a microcode assist per instruction), else 0. Results are the same either way.
void ck_optim_set_subnormal_path(int mode);
/// The path in effect (0 or 1; 0 without AVX-512); measures once when the mode is -1.
int ck_optim_subnormal_path(void);

/// max_exp_avg_sq is NULL unless amsgrad.
void ck_adam_step_f32(size_t n, float *CK_RESTRICT p, float *CK_RESTRICT exp_avg, float *CK_RESTRICT exp_avg_sq,
                      float *CK_RESTRICT max_exp_avg_sq, const float *CK_RESTRICT g, ck_adam_scalars s);

#endif
