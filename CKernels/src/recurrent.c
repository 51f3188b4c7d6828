// GradKit CKernels — fused LSTM and GRU cell steps. SPDX-License-Identifier: MIT
//
// One row (a batch element) at a time: each row body is an always_inline loop
// over the hidden units that clang vectorizes, compiled for AVX-512, AVX2+FMA
// and portable C and picked at run time; rows are split across threads.
#include "ck_recurrent.h"
#include "ck_internal.h"
#include "ck_math.h"

// The arithmetic below is written in the order the Swift twins use: no
// multiply-add may be fused into one rounding (ck_math.h's functions, parsed
// above, keep their own setting: their error is part of their ulp bounds).
#pragma clang fp contract(off)

// ---------------------------------------------------------------- row bodies

CK_INLINE void lstm_forward_row(size_t H, float *CK_RESTRICT h, float *CK_RESTRICT c, float *CK_RESTRICT saved,
                                const float *CK_RESTRICT xg, const float *CK_RESTRICT hg,
                                const float *CK_RESTRICT cp) {
    for (size_t j = 0; j < H; ++j) {
        float i = ck_sigmoidf(xg[j] + hg[j]);
        float f = ck_sigmoidf(xg[H + j] + hg[H + j]);
        float g = ck_tanhf(xg[2 * H + j] + hg[2 * H + j]);
        float o = ck_sigmoidf(xg[3 * H + j] + hg[3 * H + j]);
        float cell = f * cp[j] + i * g;
        float tc = ck_tanhf(cell);
        c[j] = cell;
        h[j] = o * tc;
        saved[j] = i;
        saved[H + j] = f;
        saved[2 * H + j] = g;
        saved[3 * H + j] = o;
        saved[4 * H + j] = tc;
    }
}

CK_INLINE void lstm_backward_row(size_t H, float *CK_RESTRICT dxg, float *CK_RESTRICT dhg, float *CK_RESTRICT dc,
                                 const float *CK_RESTRICT dh_out, const float *CK_RESTRICT dh_next,
                                 const float *CK_RESTRICT saved, const float *CK_RESTRICT cp) {
    for (size_t j = 0; j < H; ++j) {
        float i = saved[j], f = saved[H + j], g = saved[2 * H + j], o = saved[3 * H + j], tc = saved[4 * H + j];
        float dh = dh_out[j] + dh_next[j];
        float dct = dc[j] + dh * o * (1.0f - tc * tc);
        float dai = dct * g * (i * (1.0f - i));
        float daf = dct * cp[j] * (f * (1.0f - f));
        float dag = dct * i * (1.0f - g * g);
        float dao = dh * tc * (o * (1.0f - o));
        dc[j] = dct * f;
        dxg[j] = dai;
        dxg[H + j] = daf;
        dxg[2 * H + j] = dag;
        dxg[3 * H + j] = dao;
        dhg[j] = dai;
        dhg[H + j] = daf;
        dhg[2 * H + j] = dag;
        dhg[3 * H + j] = dao;
    }
}

CK_INLINE void gru_forward_row(size_t H, float *CK_RESTRICT h, float *CK_RESTRICT saved,
                               const float *CK_RESTRICT xg, const float *CK_RESTRICT hg,
                               const float *CK_RESTRICT hp) {
    for (size_t j = 0; j < H; ++j) {
        float r = ck_sigmoidf(xg[j] + hg[j]);
        float z = ck_sigmoidf(xg[H + j] + hg[H + j]);
        float hn = hg[2 * H + j];
        float n = ck_tanhf(xg[2 * H + j] + r * hn);
        h[j] = (hp[j] - n) * z + n;
        saved[j] = r;
        saved[H + j] = z;
        saved[2 * H + j] = n;
        saved[3 * H + j] = hn;
    }
}

CK_INLINE void gru_backward_row(size_t H, float *CK_RESTRICT dxg, float *CK_RESTRICT dhg, float *CK_RESTRICT dh,
                                const float *CK_RESTRICT dh_out, const float *CK_RESTRICT saved,
                                const float *CK_RESTRICT hp) {
    for (size_t j = 0; j < H; ++j) {
        float r = saved[j], z = saved[H + j], n = saved[2 * H + j], hn = saved[3 * H + j];
        float dy = dh_out[j] + dh[j];
        float dan = dy * (1.0f - z) * (1.0f - n * n);
        float daz = dy * (hp[j] - n) * (z * (1.0f - z));
        float dar = dan * hn * (r * (1.0f - r));
        dh[j] = dy * z;
        dxg[j] = dar;
        dxg[H + j] = daz;
        dxg[2 * H + j] = dan;
        dhg[j] = dar;
        dhg[H + j] = daz;
        dhg[2 * H + j] = dan * r;
    }
}

// ---------------------------------------------------------------- per-ISA entry points

// The job of one call: every kernel's arguments, each kernel reading its own.
typedef struct recurrent_job {
    size_t hidden;
    ptrdiff_t ldx, ld_dh_out;
    float *h, *c, *saved_out, *dx_gates, *dh_gates, *dstate;
    const float *x_gates, *h_gates, *prev, *dh_out, *dh_next, *saved;
} recurrent_job;

typedef void (*rows_fn)(const recurrent_job *, size_t begin, size_t end);

// Rows [begin, end) of each kernel. The gate blocks of a row are 4H (LSTM) or
// 3H (GRU) apart in the gate arrays, 5H or 4H in `saved`.
CK_INLINE void lstm_forward_rows(const recurrent_job *j, size_t begin, size_t end) {
    size_t H = j->hidden;
    for (size_t r = begin; r < end; ++r)
        lstm_forward_row(H, j->h + r * H, j->c + r * H, j->saved_out + r * 5 * H, j->x_gates + (ptrdiff_t)r * j->ldx,
                         j->h_gates + r * 4 * H, j->prev + r * H);
}

CK_INLINE void lstm_backward_rows(const recurrent_job *j, size_t begin, size_t end) {
    size_t H = j->hidden;
    for (size_t r = begin; r < end; ++r)
        lstm_backward_row(H, j->dx_gates + (ptrdiff_t)r * j->ldx, j->dh_gates + r * 4 * H, j->dstate + r * H,
                          j->dh_out + (ptrdiff_t)r * j->ld_dh_out, j->dh_next + r * H, j->saved + r * 5 * H,
                          j->prev + r * H);
}

CK_INLINE void gru_forward_rows(const recurrent_job *j, size_t begin, size_t end) {
    size_t H = j->hidden;
    for (size_t r = begin; r < end; ++r)
        gru_forward_row(H, j->h + r * H, j->saved_out + r * 4 * H, j->x_gates + (ptrdiff_t)r * j->ldx,
                        j->h_gates + r * 3 * H, j->prev + r * H);
}

CK_INLINE void gru_backward_rows(const recurrent_job *j, size_t begin, size_t end) {
    size_t H = j->hidden;
    for (size_t r = begin; r < end; ++r)
        gru_backward_row(H, j->dx_gates + (ptrdiff_t)r * j->ldx, j->dh_gates + r * 3 * H, j->dstate + r * H,
                         j->dh_out + (ptrdiff_t)r * j->ld_dh_out, j->saved + r * 4 * H, j->prev + r * H);
}

typedef struct recurrent_isa {
    rows_fn lstm_forward, lstm_backward, gru_forward, gru_backward;
} recurrent_isa;

static void lstm_forward_portable(const recurrent_job *j, size_t b, size_t e) { lstm_forward_rows(j, b, e); }
static void lstm_backward_portable(const recurrent_job *j, size_t b, size_t e) { lstm_backward_rows(j, b, e); }
static void gru_forward_portable(const recurrent_job *j, size_t b, size_t e) { gru_forward_rows(j, b, e); }
static void gru_backward_portable(const recurrent_job *j, size_t b, size_t e) { gru_backward_rows(j, b, e); }

static const recurrent_isa portable_isa = {
    lstm_forward_portable, lstm_backward_portable, gru_forward_portable, gru_backward_portable,
};

#if CK_HAVE_X86
CK_TARGET_AVX2 static void lstm_forward_avx2(const recurrent_job *j, size_t b, size_t e) { lstm_forward_rows(j, b, e); }
CK_TARGET_AVX2 static void lstm_backward_avx2(const recurrent_job *j, size_t b, size_t e) { lstm_backward_rows(j, b, e); }
CK_TARGET_AVX2 static void gru_forward_avx2(const recurrent_job *j, size_t b, size_t e) { gru_forward_rows(j, b, e); }
CK_TARGET_AVX2 static void gru_backward_avx2(const recurrent_job *j, size_t b, size_t e) { gru_backward_rows(j, b, e); }

CK_TARGET_AVX512 static void lstm_forward_avx512(const recurrent_job *j, size_t b, size_t e) { lstm_forward_rows(j, b, e); }
CK_TARGET_AVX512 static void lstm_backward_avx512(const recurrent_job *j, size_t b, size_t e) { lstm_backward_rows(j, b, e); }
CK_TARGET_AVX512 static void gru_forward_avx512(const recurrent_job *j, size_t b, size_t e) { gru_forward_rows(j, b, e); }
CK_TARGET_AVX512 static void gru_backward_avx512(const recurrent_job *j, size_t b, size_t e) { gru_backward_rows(j, b, e); }

static const recurrent_isa avx2_isa = {
    lstm_forward_avx2, lstm_backward_avx2, gru_forward_avx2, gru_backward_avx2,
};
static const recurrent_isa avx512_isa = {
    lstm_forward_avx512, lstm_backward_avx512, gru_forward_avx512, gru_backward_avx512,
};
#endif

static const recurrent_isa *isa_table(void) { return CK_ISA_TABLE(portable_isa, avx2_isa, avx512_isa); }

// ---------------------------------------------------------------- drivers

// Units (rows x hidden) per part below which a split costs more than it saves:
// the forward evaluates five transcendental functions a unit (~1 unit/ns per
// core), the backward a dozen plain operations.
enum { FORWARD_GRAIN_UNITS = 2048, BACKWARD_GRAIN_UNITS = 8192 };

typedef struct recurrent_call {
    rows_fn rows;
    const recurrent_job *job;
} recurrent_call;

static void recurrent_part(void *context, size_t begin, size_t end, size_t part) {
    (void)part;
    const recurrent_call *call = context;
    call->rows(call->job, begin, end);
}

static void run_rows(rows_fn rows, const recurrent_job *job, size_t batch, size_t grain_units) {
    if (batch == 0 || job->hidden == 0) return;
    recurrent_call call = { rows, job };
    ck_parallel_for(batch, ck_max_size(1, grain_units / job->hidden), recurrent_part, &call);
}

void ck_lstm_cell_forward_f32(size_t batch, size_t hidden, float *CK_RESTRICT h, float *CK_RESTRICT c,
                              float *CK_RESTRICT saved, const float *CK_RESTRICT x_gates, ptrdiff_t ldx,
                              const float *CK_RESTRICT h_gates, const float *CK_RESTRICT c_prev) {
    recurrent_job job = { .hidden = hidden, .ldx = ldx, .h = h, .c = c, .saved_out = saved,
                          .x_gates = x_gates, .h_gates = h_gates, .prev = c_prev };
    run_rows(isa_table()->lstm_forward, &job, batch, FORWARD_GRAIN_UNITS);
}

void ck_lstm_cell_backward_f32(size_t batch, size_t hidden, float *CK_RESTRICT dx_gates, ptrdiff_t ld_dx,
                               float *CK_RESTRICT dh_gates, float *CK_RESTRICT dc, const float *CK_RESTRICT dh_out,
                               ptrdiff_t ld_dh_out, const float *CK_RESTRICT dh_next,
                               const float *CK_RESTRICT saved, const float *CK_RESTRICT c_prev) {
    recurrent_job job = { .hidden = hidden, .ldx = ld_dx, .ld_dh_out = ld_dh_out, .dx_gates = dx_gates,
                          .dh_gates = dh_gates, .dstate = dc, .dh_out = dh_out, .dh_next = dh_next,
                          .saved = saved, .prev = c_prev };
    run_rows(isa_table()->lstm_backward, &job, batch, BACKWARD_GRAIN_UNITS);
}

void ck_gru_cell_forward_f32(size_t batch, size_t hidden, float *CK_RESTRICT h, float *CK_RESTRICT saved,
                             const float *CK_RESTRICT x_gates, ptrdiff_t ldx, const float *CK_RESTRICT h_gates,
                             const float *CK_RESTRICT h_prev) {
    recurrent_job job = { .hidden = hidden, .ldx = ldx, .h = h, .saved_out = saved, .x_gates = x_gates,
                          .h_gates = h_gates, .prev = h_prev };
    run_rows(isa_table()->gru_forward, &job, batch, FORWARD_GRAIN_UNITS);
}

void ck_gru_cell_backward_f32(size_t batch, size_t hidden, float *CK_RESTRICT dx_gates, ptrdiff_t ld_dx,
                              float *CK_RESTRICT dh_gates, float *CK_RESTRICT dh, const float *CK_RESTRICT dh_out,
                              ptrdiff_t ld_dh_out, const float *CK_RESTRICT saved,
                              const float *CK_RESTRICT h_prev) {
    recurrent_job job = { .hidden = hidden, .ldx = ld_dx, .ld_dh_out = ld_dh_out, .dx_gates = dx_gates,
                          .dh_gates = dh_gates, .dstate = dh, .dh_out = dh_out, .saved = saved, .prev = h_prev };
    run_rows(isa_table()->gru_backward, &job, batch, BACKWARD_GRAIN_UNITS);
}
