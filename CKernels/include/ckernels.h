// GradKit CKernels — umbrella header. SPDX-License-Identifier: MIT
#ifndef CKERNELS_H
#define CKERNELS_H

#include "ck_config.h"
#include "ck_runtime.h"
#include "ck_gemm.h"
#include "ck_elementwise.h"
#include "ck_reduce.h"
#include "ck_softmax.h"
#include "ck_layout.h"
#include "ck_optim.h"
#include "ck_norm.h"
#include "ck_stats.h"
#include "ck_recurrent.h"

#endif
