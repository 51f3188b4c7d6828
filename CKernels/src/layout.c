// GradKit CKernels — transposes, strided copies, row gathers. SPDX-License-Identifier: MIT
#include "ck_layout.h"
#include "ck_internal.h"

#include <string.h>

#define TRANSPOSE_TILE 16u

typedef struct layout_job {
    size_t rows, cols, columns, rank;
    size_t shape[CK_MAX_RANK];
    ptrdiff_t strides[CK_MAX_RANK];
    float *y;
    const float *x;
    const int64_t *indices;
} layout_job;

// Tiles of 16 x 16 keep both the reads and the writes within a few cache lines.
static void transpose_part(void *ctx, size_t begin, size_t end, size_t part) {
    (void)part;
    const layout_job *j = ctx;
    size_t tiles_r = ck_div_up(j->rows, TRANSPOSE_TILE), tiles_c = ck_div_up(j->cols, TRANSPOSE_TILE);
    for (size_t t = begin; t < end; ++t) {
        size_t b = t / (tiles_r * tiles_c), rest = t % (tiles_r * tiles_c);
        size_t r0 = (rest / tiles_c) * TRANSPOSE_TILE, c0 = (rest % tiles_c) * TRANSPOSE_TILE;
        size_t r1 = ck_min_size(r0 + TRANSPOSE_TILE, j->rows), c1 = ck_min_size(c0 + TRANSPOSE_TILE, j->cols);
        const float *x = j->x + b * j->rows * j->cols;
        float *y = j->y + b * j->rows * j->cols;
        for (size_t c = c0; c < c1; ++c)
            for (size_t r = r0; r < r1; ++r) y[c * j->rows + r] = x[r * j->cols + c];
    }
}

void ck_transpose_f32(size_t batch, size_t rows, size_t cols, float *CK_RESTRICT y, const float *CK_RESTRICT x) {
    if (batch == 0 || rows == 0 || cols == 0) return;
    layout_job job = { .rows = rows, .cols = cols, .y = y, .x = x };
    size_t tiles = batch * ck_div_up(rows, TRANSPOSE_TILE) * ck_div_up(cols, TRANSPOSE_TILE);
    ck_parallel_for(tiles, 256, transpose_part, &job);
}

// Rows of the strided copy: every index of shape[0..rank-1), each a run of
// shape[rank-1] elements with stride strides[rank-1].
static void strided_part(void *ctx, size_t begin, size_t end, size_t part) {
    (void)part;
    const layout_job *j = ctx;
    size_t row = j->shape[j->rank - 1];
    ptrdiff_t step = j->strides[j->rank - 1];
    for (size_t r = begin; r < end; ++r) {
        ptrdiff_t offset = 0;
        size_t rest = r;
        for (size_t d = j->rank - 1; d-- > 0;) {
            offset += (ptrdiff_t)(rest % j->shape[d]) * j->strides[d];
            rest /= j->shape[d];
        }
        const float *x = j->x + offset;
        float *y = j->y + r * row;
        if (step == 1) {
            memcpy(y, x, row * sizeof(float));
        } else if (step == 0) {
            float v = x[0];
            for (size_t i = 0; i < row; ++i) y[i] = v;
        } else {
            for (size_t i = 0; i < row; ++i) y[i] = x[(ptrdiff_t)i * step];
        }
    }
}

void ck_strided_copy_f32(size_t rank, const size_t *shape, float *CK_RESTRICT y, const float *CK_RESTRICT x,
                         const ptrdiff_t *x_strides) {
    layout_job job = { .y = y, .x = x };
    if (rank == 0) {
        y[0] = x[0];
        return;
    }
    job.rank = rank;
    size_t rows = 1;
    for (size_t d = 0; d < rank; ++d) {
        job.shape[d] = shape[d];
        job.strides[d] = x_strides[d];
        if (d + 1 < rank) rows *= shape[d];
    }
    size_t row = shape[rank - 1];
    if (rows == 0 || row == 0) return;
    ck_parallel_for(rows, ck_max_size(1, (1u << 16) / row), strided_part, &job);
}

static void gather_part(void *ctx, size_t begin, size_t end, size_t part) {
    (void)part;
    const layout_job *j = ctx;
    for (size_t i = begin; i < end; ++i) {
        memcpy(j->y + i * j->columns, j->x + (size_t)j->indices[i] * j->columns, j->columns * sizeof(float));
    }
}

void ck_gather_rows_f32(size_t count, size_t columns, float *CK_RESTRICT y, const float *CK_RESTRICT x,
                        const int64_t *rows) {
    if (count == 0 || columns == 0) return;
    layout_job job = { .columns = columns, .y = y, .x = x, .indices = rows };
    ck_parallel_for(count, ck_max_size(1, (1u << 16) / columns), gather_part, &job);
}

// Parts split the columns, so every part walks the indices in order and
// repeated rows accumulate in the same order for any thread count.
static void scatter_part(void *ctx, size_t begin, size_t end, size_t part) {
    (void)part;
    const layout_job *j = ctx;
    for (size_t i = 0; i < j->rows; ++i) {
        float *y = j->y + (size_t)j->indices[i] * j->columns;
        const float *x = j->x + i * j->columns;
        for (size_t c = begin; c < end; ++c) y[c] += x[c];
    }
}

void ck_scatter_add_rows_f32(size_t count, size_t columns, float *CK_RESTRICT y, const float *CK_RESTRICT x,
                             const int64_t *rows) {
    if (count == 0 || columns == 0) return;
    layout_job job = { .rows = count, .columns = columns, .y = y, .x = x, .indices = rows };
    ck_parallel_for(columns, ck_max_size(64, (1u << 16) / count), scatter_part, &job);
}
