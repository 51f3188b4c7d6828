// GradKit CKernels — internal helpers shared by the kernel files. SPDX-License-Identifier: MIT
#ifndef CK_INTERNAL_H
#define CK_INTERNAL_H

#include "ck_config.h"
#include "ck_runtime.h"

#include <stdint.h>

#if defined(__x86_64__)
#define CK_HAVE_X86 1
#include <immintrin.h>
// Per-ISA entry points: one body (an always_inline function) compiled three times.
// min_vector_width(512) keeps clang from preferring 256-bit vectors under
// -march=native, which spilled registers in the GEMM micro-kernel.
#define CK_TARGET_AVX512 \
    __attribute__((target("avx512f,avx512bw,avx512dq,avx512vl,avx2,fma,f16c"), min_vector_width(512)))
#define CK_TARGET_AVX2 __attribute__((target("avx2,fma,f16c")))
// AVX-512 with AVX512_BF16 (vdpbf16ps): only behind ck_bf16_dot_detected().
#define CK_TARGET_AVX512_BF16                                                                                     \
    __attribute__((target("avx512f,avx512bw,avx512dq,avx512vl,avx2,fma,f16c,avx512bf16"), min_vector_width(512)))
#else
#define CK_HAVE_X86 0
#endif

#define CK_INLINE static inline __attribute__((always_inline))

/// A range of a parallel loop: [begin, end) of the caller's units, and `part`,
/// the index of this range (0 ..< parts), usable to pick a per-part workspace.
typedef void (*ck_range_fn)(void *context, size_t begin, size_t end, size_t part);

/// The one parallel-for primitive. Splits [0, n) into
/// parts = min(threads, ceil(n / grain)) contiguous ranges whose boundaries are
/// multiples of `grain`, and runs fn on each. parts == 1 runs on the calling
/// thread with no synchronization. Under OpenMP: a static schedule; otherwise
/// the persistent pool. A call made while the pool is busy (another thread's
/// kernel, or a nested call) runs on the calling thread.
void ck_parallel_for(size_t n, size_t grain, ck_range_fn fn, void *context);

/// This thread's ck_isa_select override as stored (-1: none), and setting it
/// back: for work a pool worker runs on behalf of another thread, whose
/// choice must hold there (the thread-local overrides are per thread).
int ck_isa_override(void);
void ck_isa_set_override(int level);

/// Whether jobs of a few microseconds should be split now: the choice of the
/// process's split controller (ck_split_controller_decide), each call one
/// decision it times. Never changes results, only who computes them.
int ck_parallel_fine_grained(void);

/// The calling thread's subnormal-flushing bits of its floating-point control
/// register, and taking them on (for a worker running another thread's job).
unsigned ck_fp_mode(void);
void ck_fp_adopt_mode(unsigned mode);

/// The number of parts ck_parallel_for(n, grain, ...) will use right now.
size_t ck_parallel_parts(size_t n, size_t grain);

/// The table of per-ISA entry points for the active instruction set: the
/// best of the given ones (NULL where a file has no such path) not above it.
static inline const void *ck_isa_choose(const void *portable, const void *avx2, const void *avx512) {
    ck_isa level = ck_isa_active();
    if (level >= CK_ISA_AVX512 && avx512) return avx512;
    if (level >= CK_ISA_AVX2 && avx2) return avx2;
    return portable;
}

/// ck_isa_choose over a kernel file's three tables, by name: the x86-64 ones
/// are not compiled (nor named) on other architectures.
#if CK_HAVE_X86
#define CK_ISA_TABLE(portable, avx2, avx512) ck_isa_choose(&(portable), &(avx2), &(avx512))
#else
#define CK_ISA_TABLE(portable, avx2, avx512) ((const void *)&(portable))
#endif

/// The canonical block of a long sum (reduce.c, norm.c): rows are summed in
/// blocks of this many elements, each in 16 double lanes, the blocks in order.
/// Depends on the length only, so sums are the same for any thread count.
static inline size_t ck_sum_block_size(size_t extent);

/// Whether an out-of-place kernel whose operands total `footprint` bytes should
/// write with non-temporal stores (see ck_set_streaming_threshold).
static inline int ck_streams(size_t footprint) { return footprint > ck_streaming_threshold(); }

/// Non-temporal stores of whole 64-byte lines (ck_stream_line) for the
/// elementwise loops: y[0 ..< ck_stream_head(y, n)] is written normally, then
/// lines while 16 elements remain, then the tail normally. Lines are never
/// written in part, so no write-combining buffer is flushed half full.
typedef float ck_f32x16 __attribute__((vector_size(64)));

/// Elements before y's first 64-byte boundary, at most n.
static inline size_t ck_stream_head(const float *y, size_t n) {
    size_t into_line = ((uintptr_t)y & 63u) / sizeof(float);
    size_t head = into_line ? 16 - into_line : 0;
    return head < n ? head : n;
}

/// Writes one line (y 64-byte aligned) without reading it first.
static inline __attribute__((always_inline)) void ck_stream_line(float *y, const float *line) {
    ck_f32x16 v;
    __builtin_memcpy(&v, line, sizeof v);
    __builtin_nontemporal_store(v, (ck_f32x16 *)(void *)y);
}

/// Orders this thread's non-temporal stores before what follows (they are
/// weakly ordered on x86): called at the end of a part that streamed, before
/// the part is reported done.
static inline void ck_stream_fence(void) {
#if CK_HAVE_X86
    _mm_sfence();
#else
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
#endif
}

/// Read-only streams (sums, norms) prefetch 4 KiB ahead of the element they
/// add: the hardware prefetcher alone left a single stream per core 8-12%
/// slower at 10^7 elements, in both of this VM's bandwidth states. The address
/// is formed as an integer, since it may lie past the end of the array.
static inline __attribute__((always_inline)) void ck_prefetch_ahead(const float *x) {
    __builtin_prefetch((const void *)((uintptr_t)x + 4096u));
}

static inline size_t ck_min_size(size_t a, size_t b) { return a < b ? a : b; }
static inline size_t ck_max_size(size_t a, size_t b) { return a > b ? a : b; }
static inline size_t ck_round_up(size_t x, size_t m) { return (x + m - 1) / m * m; }
static inline size_t ck_div_up(size_t x, size_t m) { return (x + m - 1) / m; }

static inline size_t ck_sum_block_size(size_t extent) {
    size_t block = ck_round_up(ck_div_up(extent, 1024u), 16u);
    return ck_max_size(block, 4096u);
}

#endif
