// GradKit CKernels — threads, instruction sets, build facts. SPDX-License-Identifier: MIT
#ifndef CK_RUNTIME_H
#define CK_RUNTIME_H

#include "ck_config.h"

/// Instruction-set levels with a dedicated code path.
typedef enum ck_isa {
    CK_ISA_PORTABLE = 0, ///< plain C, whatever the compiler flags allow
    CK_ISA_AVX2 = 1,     ///< AVX2 + FMA (x86-64)
    CK_ISA_AVX512 = 2,   ///< AVX-512 F/BW/DQ/VL (x86-64)
} ck_isa;

/// The best level this CPU (and OS) supports; detected once.
ck_isa ck_isa_detected(void);

/// The level kernels called on this thread use: the detected one unless this
/// thread lowered it with ck_isa_select.
ck_isa ck_isa_active(void);

/// Makes kernels called on this thread use `requested`, clamped to what the CPU
/// supports; returns the level now active. Other threads are unaffected. For
/// tests and benchmarks that exercise every code path.
ck_isa ck_isa_select(ck_isa requested);

/// Ends this thread's ck_isa_select: back to the detected level.
void ck_isa_clear(void);

/// Number of threads parallel kernels use (the calling thread included).
size_t ck_threads_get(void);

/// Sets the thread count; 0 restores the default (the CPUs this process may use).
/// Under OpenMP the count is passed to each parallel region; otherwise the
/// persistent pool grows on demand and never shrinks (idle workers sleep).
void ck_threads_set(size_t count);

/// Whether products of a few microseconds (SGEMM below 2 MFLOP, a linear
/// layer's backward pair) may be split over threads; default on. Off suits
/// machines where handing work between cores is slow (some shared VMs).
/// Never changes results. No effect under OpenMP, which never splits them.
void ck_threads_set_fine_grained(int enabled);
int ck_threads_fine_grained(void);

/// Out-of-place elementwise kernels (maps, their backward rules, broadcast
/// binary ops, fill) whose operands total more than this many bytes write the
/// output with non-temporal stores: at that size the output leaves the cache
/// before anyone reads it, and a normal store would first read each line of it
/// from memory (write-allocate) only to overwrite it. Default: the last-level
/// cache (ck_streaming_threshold_default). 0 streams every such call, SIZE_MAX
/// none. Never changes results.
void ck_set_streaming_threshold(size_t bytes);
size_t ck_streaming_threshold(void);

/// The largest cache CPU 0 reports (Linux sysfs; the last-level cache one
/// core sees), or 32 MiB where none is reported.
size_t ck_streaming_threshold_default(void);

/// The default thread count: CPUs in this process's affinity mask.
size_t ck_threads_default(void);

/// True when compiled with -fopenmp (the NativeOpenMP trait).
bool ck_build_openmp(void);

/// True when compiled for the build machine's CPU (-march=native).
bool ck_build_native(void);

/// Writes the CPU's brand string (cpuid leaves 0x80000002-4), NUL-terminated,
/// into `buffer`; writes "unknown" where the CPU does not report one.
void ck_cpu_brand(char *buffer, size_t capacity);

/// True when the CPU reports AVX512_BF16 (cpuid leaf 7 subleaf 1, EAX bit 5:
/// vdpbf16ps, vcvtneps2bf16) and the OS saves the AVX-512 registers (XCR0).
/// CK_GEMM_PRECISION_BF16's order is the one it computes; the GEMM uses it
/// through ck_bf16_dot_detected (ck_gemm.h).
bool ck_cpu_has_avx512_bf16(void);

/// True when the CPU reports AMX-BF16 and AMX-TILE (cpuid leaf 7, EDX bits 22
/// and 24) and the OS enables the tile state (XCR0 bits 17 and 18). For
/// information only: no kernel uses AMX.
bool ck_cpu_has_amx_bf16(void);

#endif
